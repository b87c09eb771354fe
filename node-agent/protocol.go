package main

// The agent's protocol with ctrdbg: one JSON object per line. The watchdog (`ctrdbg-agent dlv`) writes its events
// on stdout; a relay (`ctrdbg-agent relay`) writes its notices on stderr, since its stdout is the debugger
// stream. src/delve/agentProtocol.ts mirrors these types; `ctrdbg-agent protocol` prints the names below so a
// test on the TypeScript side can check that both still agree.

// ProtocolVersion changes whenever an event, a field or a reason changes meaning.
const ProtocolVersion = 2

// Event names.
const (
	EventReady = "ready"
	EventError = "error"
	EventExit  = "exit"
	EventRelay = "relay"
)

// ExitReason says how the watchdog ended, i.e. what became of dlv. Whether containerd is still traced is
// reported separately, from /proc, in ExitEvent.Target.
type ExitReason string

const (
	// ExitDetached: breakpoints cleared and Detach{Kill:false} over RPC; dlv exited.
	ExitDetached ExitReason = "detached"
	// ExitTerminated: the RPC cleanup failed, so dlv got SIGTERM (a headless dlv detaches on it) and exited.
	ExitTerminated ExitReason = "terminated"
	// ExitDlvExited: dlv exited by itself: a client detached it, or it died.
	ExitDlvExited ExitReason = "dlv-exited"
	// ExitDlvLeftRunning: dlv did not exit after SIGTERM; it was left running (never SIGKILLed: its int3s would
	// stay in the target).
	ExitDlvLeftRunning ExitReason = "dlv-left-running"
)

var exitReasons = []ExitReason{ExitDetached, ExitTerminated, ExitDlvExited, ExitDlvLeftRunning}

// RelayAction says what a relay did about a client's request.
type RelayAction string

const (
	// RelayDetached: a request to end the session (Detach, with or without Kill; DAP disconnect with
	// terminateDebuggee) was carried out as ctrdbg's safe detach: breakpoints cleared, Detach{Kill:false}.
	RelayDetached RelayAction = "detached"
	// RelayRefused: a request that would kill or restart the target got an error back.
	RelayRefused RelayAction = "refused"
	// RelayClientLeft: the client closed its connection.
	RelayClientLeft RelayAction = "client-left"
)

var relayActions = []RelayAction{RelayDetached, RelayRefused, RelayClientLeft}

// TargetState is the debugged process as /proc shows it.
type TargetState struct {
	Alive     bool `json:"alive"`
	TracerPid int  `json:"tracerPid"`
}

// ReadyEvent: dlv is attached and listens on Listen (always 127.0.0.1:PORT).
type ReadyEvent struct {
	Event           string `json:"event"`
	Listen          string `json:"listen"`
	DlvPid          int    `json:"dlvPid"`
	TargetPid       int    `json:"targetPid"`
	AgentVersion    string `json:"agentVersion"`
	ProtocolVersion int    `json:"protocolVersion"`
}

// ErrorEvent: the watchdog could not start (no such process, already traced, dlv failed to start).
type ErrorEvent struct {
	Event     string `json:"event"`
	Message   string `json:"message"`
	TracerPid int    `json:"tracerPid,omitempty"`
}

// ExitEvent: the last event of a watchdog that got as far as starting dlv.
type ExitEvent struct {
	Event   string      `json:"event"`
	Reason  ExitReason  `json:"reason"`
	Cleared int         `json:"cleared"` // breakpoints cleared by the agent; -1 when unknown
	Target  TargetState `json:"target"`
	// Why the watchdog started cleaning up: "stdin-closed", "signal SIGTERM", … ("" when dlv exited by itself).
	Trigger  string `json:"trigger,omitempty"`
	DlvPid   int    `json:"dlvPid,omitempty"`
	DlvError string `json:"dlvError,omitempty"`
	Message  string `json:"message,omitempty"`
}

// RelayNotice: what a relay did about one client request, or that the client left.
type RelayNotice struct {
	Event    string      `json:"event"`
	Action   RelayAction `json:"action"`
	Protocol string      `json:"protocol"` // "json-rpc" or "dap"
	Request  string      `json:"request,omitempty"`
	Cleared  int         `json:"cleared,omitempty"`
	Message  string      `json:"message,omitempty"`
}

// protocolDescription is what `ctrdbg-agent protocol` prints.
type protocolDescription struct {
	Version      int           `json:"version"`
	Events       []string      `json:"events"`
	ExitReasons  []ExitReason  `json:"exitReasons"`
	RelayActions []RelayAction `json:"relayActions"`
}

func describeProtocol() protocolDescription {
	return protocolDescription{
		Version:      ProtocolVersion,
		Events:       []string{EventReady, EventError, EventExit, EventRelay},
		ExitReasons:  exitReasons,
		RelayActions: relayActions,
	}
}
