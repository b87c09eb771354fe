package main

import "encoding/json"

// The agent's protocol with ctrdbg: one JSON object per line. The watchdog (`ctrdbg-agent dlv`) writes its events
// on stdout; a relay (`ctrdbg-agent relay`) writes its notices on stderr, since its stdout is the debugger
// stream. src/delve/agentProtocol.ts mirrors these types; `ctrdbg-agent protocol` prints the names below so a
// test on the TypeScript side can check that both still agree.

// ProtocolVersion changes whenever an event, a command, a field or a reason changes meaning.
const ProtocolVersion = 3

// Event names.
const (
	EventReady     = "ready"
	EventError     = "error"
	EventExit      = "exit"
	EventRelay     = "relay"
	EventResolved  = "resolved"
	EventCreated   = "created"
	EventRecording = "recording"
	EventHit       = "hit"
	EventDropped   = "dropped"
	EventFailed    = "failed"
	EventFollowed  = "followed"
)

// Commands ctrdbg sends on the watchdog's stdin, one JSON object per line (its end still means "ctrdbg is gone").
const (
	CmdResolve = "resolve"
	CmdCreate  = "create"
	CmdRecord  = "record"
	CmdStop    = "stop"
)

var commands = []string{CmdResolve, CmdCreate, CmdRecord, CmdStop}

// Command is one line ctrdbg sends. ID comes back in the answer.
type Command struct {
	Cmd string `json:"cmd"`
	ID  int    `json:"id"`
	// resolve
	Points []PointSpec `json:"points,omitempty"`
	// Also list the binary's package names (for expressions: see packageNames).
	Packages bool `json:"packages,omitempty"`
	// create
	Breakpoints []BreakpointSpec `json:"breakpoints,omitempty"`
	// record
	MaxHits    int         `json:"maxHits,omitempty"`
	ReturnInfo *loadConfig `json:"returnInfo,omitempty"`
	// Re-create a breakpoint once Delve's per-goroutine hit count map holds this many goroutines (0 = never):
	// Delve copies that map into every stop's answer, which otherwise grows with every new goroutine that hits.
	RearmAfter int `json:"rearmAfter,omitempty"`
	// Follow shims: when containerd stops at one of these breakpoints, attach to every new shim of this containerd
	// (socket) before it serves a request, and arm it with FollowCreate.
	Follow *FollowSpec `json:"follow,omitempty"`
}

// FollowSpec says which breakpoints mean "a shim may have just started" and what to arm in each new shim.
type FollowSpec struct {
	Breakpoints []int            `json:"breakpoints"`
	Socket      string           `json:"socket"`
	Points      []PointSpec      `json:"points"`
	Create      []BreakpointSpec `json:"create"`
}

// PointSpec is one place to resolve in the binary: a function's entry (plus lines), its returns, or the line
// after a call it makes.
type PointSpec struct {
	Key        string   `json:"key"`
	Function   string   `json:"function"`
	At         string   `json:"at"` // "entry" (default), "return", "after-call"
	LineOffset int      `json:"lineOffset,omitempty"`
	Callees    []string `json:"callees,omitempty"`
}

// ResolvedPoint is where a PointSpec landed, or why it did not.
type ResolvedPoint struct {
	Key       string   `json:"key"`
	Found     bool     `json:"found"`
	Function  string   `json:"function,omitempty"`
	File      string   `json:"file,omitempty"`
	Line      int      `json:"line,omitempty"`
	Optimized bool     `json:"optimized,omitempty"`
	Addrs     []uint64 `json:"addrs,omitempty"`
	Callee    string   `json:"callee,omitempty"`
	CallLine  int      `json:"callLine,omitempty"`
	// Missing: the function is not in this binary. Error: it is, but the point could not be placed.
	Missing bool   `json:"missing,omitempty"`
	Error   string `json:"error,omitempty"`
}

// BreakpointSpec is one Delve breakpoint to create: `request` is an api.Breakpoint as ctrdbg built it (capture,
// condition, name), placed at each of `addrs`, or at `file:line` when addrs is empty.
type BreakpointSpec struct {
	Key string `json:"key"`
	// The id ctrdbg knows this breakpoint by in every process (shims: the same id in each); 0 = Delve's first id.
	Logical int                    `json:"logical,omitempty"`
	Addrs   []uint64               `json:"addrs,omitempty"`
	File    string                 `json:"file,omitempty"`
	Line    int                    `json:"line,omitempty"`
	Request map[string]interface{} `json:"request"`
}

// CreatedBreakpoint answers one BreakpointSpec: the Delve ids (one per address).
type CreatedBreakpoint struct {
	Key   string `json:"key"`
	IDs   []int  `json:"ids"`
	Error string `json:"error,omitempty"`
}

// ResolvedEvent and CreatedEvent answer resolve and create.
type ResolvedEvent struct {
	Event  string          `json:"event"`
	ID     int             `json:"id"`
	Pid    int             `json:"pid"`
	Points []ResolvedPoint `json:"points"`
	// The binary's package names, when asked for.
	Packages []string `json:"packages,omitempty"`
	Ms       float64  `json:"ms"`
}

type CreatedEvent struct {
	Event       string              `json:"event"`
	ID          int                 `json:"id"`
	Pid         int                 `json:"pid"`
	Breakpoints []CreatedBreakpoint `json:"breakpoints"`
	Ms          float64             `json:"ms"`
}

// FailedEvent: a command could not be carried out.
type FailedEvent struct {
	Event   string `json:"event"`
	ID      int    `json:"id"`
	Cmd     string `json:"cmd"`
	Message string `json:"message"`
}

// RecordingEvent: the recording loop of one debugged process started or stopped.
type RecordingEvent struct {
	Event string `json:"event"`
	State string `json:"state"` // "started" or "stopped"
	Pid   int    `json:"pid"`
	// started: how long the process has been stopped since dlv attached, and dlv's own attach.
	PausedMs    float64 `json:"pausedMs,omitempty"`
	DlvAttachMs float64 `json:"dlvAttachMs,omitempty"`
	// stopped:
	Reason  string `json:"reason,omitempty"` // "max-hits", "stopped", "exited", "error"
	Message string `json:"message,omitempty"`
	Hits    int    `json:"hits,omitempty"`
	Stops   int    `json:"stops,omitempty"`
	// Stops that were the agent's own halt ending the loop (no thread at a breakpoint of ctrdbg's).
	HaltStops     int            `json:"haltStops,omitempty"`
	Dropped       int            `json:"dropped,omitempty"`
	MaxHoldUs     int64          `json:"maxHoldUs,omitempty"`
	TotalHoldUs   int64          `json:"totalHoldUs,omitempty"`
	Rearms        int            `json:"rearms,omitempty"`
	PerBreakpoint map[string]int `json:"perBreakpoint,omitempty"`
	// The most hit bytes that waited on the node for ctrdbg at once.
	QueuedPeakBytes int `json:"queuedPeakBytes,omitempty"`
}

// HitEvent: one thread stopped at one of ctrdbg's breakpoints. Thread is Delve's api.Thread as it came, minus
// the breakpoint's hit counts; Breakpoint is the id ctrdbg created (a re-armed breakpoint keeps it).
type HitEvent struct {
	Event      string          `json:"event"`
	Pid        int             `json:"pid"`
	Breakpoint int             `json:"bp"`
	Stop       int             `json:"stop"`
	T          float64         `json:"t"`    // ms since the recording started
	Wall       string          `json:"wall"` // RFC 3339
	HoldUs     int64           `json:"holdUs"`
	Thread     json.RawMessage `json:"thread"`
}

// DroppedEvent: hits that could not be queued because ctrdbg did not read fast enough (per breakpoint).
type DroppedEvent struct {
	Event         string         `json:"event"`
	Count         int            `json:"count"`
	PerBreakpoint map[string]int `json:"perBreakpoint"`
}

// FollowedEvent: a shim the agent attached to (or could not), while containerd was held at a follow breakpoint.
type FollowedEvent struct {
	Event  string `json:"event"`
	Pid    int    `json:"pid"`
	Binary string `json:"binary"`
	ID     string `json:"id,omitempty"` // the shim's -id
	Error  string `json:"error,omitempty"`
	// How long the shim was stopped to attach and arm it, and whether it had started before the recording.
	HeldMs   float64 `json:"heldMs"`
	Existing bool    `json:"existing,omitempty"`
	// What was armed in it: point key → Delve ids, or why not.
	Breakpoints []CreatedBreakpoint `json:"breakpoints,omitempty"`
	Points      []ResolvedPoint     `json:"points,omitempty"`
}

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
	Event           string  `json:"event"`
	Listen          string  `json:"listen"`
	DlvPid          int     `json:"dlvPid"`
	TargetPid       int     `json:"targetPid"`
	AgentVersion    string  `json:"agentVersion"`
	ProtocolVersion int     `json:"protocolVersion"`
	DelveVersion    string  `json:"delveVersion"`
	APIVersion      int     `json:"apiVersion"`
	DlvAttachMs     float64 `json:"dlvAttachMs"`
}

// ErrorEvent: the watchdog could not start (no such process, already traced, dlv failed to start).
type ErrorEvent struct {
	Event     string `json:"event"`
	Message   string `json:"message"`
	TracerPid int    `json:"tracerPid,omitempty"`
	// What dlv printed (its last lines) and how it exited, when dlv itself failed: its words say why.
	DlvOutput []string `json:"dlvOutput,omitempty"`
	DlvExit   string   `json:"dlvExit,omitempty"`
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
	// dlv-exited: the last lines dlv printed before it exited.
	DlvOutput []string `json:"dlvOutput,omitempty"`
	Message   string   `json:"message,omitempty"`
	// The shims the agent followed, and how each was left.
	Followed []FollowedExit `json:"followed,omitempty"`
}

// FollowedExit is how a followed shim was left.
type FollowedExit struct {
	Pid      int         `json:"pid"`
	Binary   string      `json:"binary"`
	Reason   ExitReason  `json:"reason"`
	Cleared  int         `json:"cleared"`
	Target   TargetState `json:"target"`
	DlvError string      `json:"dlvError,omitempty"`
	Message  string      `json:"message,omitempty"`
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
	Commands     []string      `json:"commands"`
	ExitReasons  []ExitReason  `json:"exitReasons"`
	RelayActions []RelayAction `json:"relayActions"`
}

func describeProtocol() protocolDescription {
	return protocolDescription{
		Version:      ProtocolVersion,
		Events:       []string{EventReady, EventError, EventExit, EventRelay, EventResolved, EventCreated, EventRecording, EventHit, EventDropped, EventFailed, EventFollowed},
		Commands:     commands,
		ExitReasons:  exitReasons,
		RelayActions: relayActions,
	}
}
