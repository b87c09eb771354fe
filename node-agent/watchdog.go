package main

// `ctrdbg-agent dlv`: dlv attached to the target, listening on loopback only; the commands ctrdbg sends on stdin
// (resolve, create, record, stop: session.go); and a watchdog tied to the SSH channel that started it. When that
// channel goes away (stdin reaches EOF) or the agent gets SIGTERM, SIGHUP or SIGINT, every recording loop is
// stopped and every debugged process (containerd, followed shims) is left the safe way.

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// dlvProcess is one dlv the agent started, attached to one process.
type dlvProcess struct {
	cmd    *exec.Cmd
	exited chan error
	output *outputTail
}

// outputTail keeps the last lines dlv printed: when dlv fails, its own words ("could not open debug info") are
// the cause, not the connection it reset on its way out.
type outputTail struct {
	mu    sync.Mutex
	lines []string
}

const outputTailLines = 20

func (o *outputTail) add(line string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lines = append(o.lines, line)
	if len(o.lines) > outputTailLines {
		o.lines = o.lines[len(o.lines)-outputTailLines:]
	}
}

func (o *outputTail) snapshot() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.lines...)
}

// dlvCause is the line of dlv's output that says why it failed: its last one that is not the listening notice.
func dlvCause(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.Contains(line, "API server listening at:") {
			continue
		}
		return strings.TrimPrefix(line, "Error: ")
	}
	return ""
}

// startFailure is the error event for a dlv that did not become usable: dlv's own words and exit status when
// it exits within `wait` (it usually does, right after printing why), else what the agent saw.
func (p *dlvProcess) startFailure(err error, wait time.Duration) ErrorEvent {
	ev := ErrorEvent{Event: EventError, Message: err.Error()}
	if p == nil {
		return ev
	}
	exited := false
	select {
	case e := <-p.exited:
		p.exited <- e
		exited = true
		ev.DlvExit = exitStatusText(e)
	case <-time.After(wait):
	}
	ev.DlvOutput = p.output.snapshot()
	if cause := dlvCause(ev.DlvOutput); cause != "" {
		if exited {
			ev.Message = fmt.Sprintf("dlv exited (%s): %s", ev.DlvExit, cause)
		} else {
			ev.Message = fmt.Sprintf("%v; dlv said: %s", err, cause)
		}
	}
	return ev
}

func exitStatusText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

type watchdogConfig struct {
	dlvPath        string
	dlvArgs        []string
	logDlv         bool
	readyTimeout   time.Duration
	cleanupTimeout time.Duration
}

// startDlv attaches a headless dlv to pid on 127.0.0.1 and waits until it listens. The process is stopped from
// the attach on, until something continues it.
func startDlv(cfg watchdogConfig, pid int, stop <-chan struct{}) (*dlvProcess, string, error) {
	args := []string{"attach", strconv.Itoa(pid), "--headless", "--listen", "127.0.0.1:0", "--api-version=2", "--accept-multiclient"}
	if cfg.logDlv {
		args = append(args, "--log", "--log-output=debugger")
	}
	args = append(args, cfg.dlvArgs...)
	cmd := exec.Command(cfg.dlvPath, args...)
	// Own process group: a Ctrl-C delivered to the SSH session's group must reach the agent, which decides, not
	// dlv. Pdeathsig: if the agent itself is killed, dlv gets SIGTERM and detaches instead of lingering.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.Stdin = nil
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	cmd.Stderr = cmd.Stdout
	logf("starting %s %s", cfg.dlvPath, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("cannot start dlv: %v", err)
	}
	p := &dlvProcess{cmd: cmd, exited: make(chan error, 1), output: &outputTail{}}
	ready := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		scanner := bufio.NewScanner(stdout)
		scanner.Buffer(make([]byte, 64*1024), 1024*1024)
		const marker = "API server listening at:"
		for scanner.Scan() {
			line := scanner.Text()
			// Kept first: the log below can block on a full stderr (an SSH reader that stopped reading).
			p.output.add(line)
			fmt.Fprintf(logOut, "dlv[%d]: %s\n", pid, line)
			if i := strings.Index(line, marker); i >= 0 {
				select {
				case ready <- strings.TrimSpace(line[i+len(marker):]):
				default:
				}
			}
		}
	}()
	go func() {
		// Not cmd.Wait: it closes the pipe as soon as dlv exits, and dlv's last words (why it failed) could be
		// lost. The reader gets them first — but the exit is never held up long by a reader stuck on the log.
		state, err := cmd.Process.Wait()
		select {
		case <-scanned:
		case <-time.After(2 * time.Second):
		}
		stdout.Close()
		if err == nil && !state.Success() {
			err = &exec.ExitError{ProcessState: state}
		}
		p.exited <- err
	}()
	select {
	case address := <-ready:
		if _, _, err := loopbackOnly(address); err != nil {
			return p, "", fmt.Errorf("dlv listens on %q, not loopback", address)
		}
		return p, address, nil
	case err := <-p.exited:
		p.exited <- err
		return p, "", fmt.Errorf("dlv exited before listening: %v", err)
	case <-time.After(cfg.readyTimeout):
		return p, "", fmt.Errorf("dlv did not start listening in time")
	case <-stop:
		return p, "", errStopped
	}
}

var errStopped = fmt.Errorf("stopped before dlv was ready")

type versionOut struct {
	DelveVersion string
	APIVersion   int
}

func runWatchdog(args []string) int {
	fs := flag.NewFlagSet("dlv", flag.ContinueOnError)
	pid := fs.Int("pid", 0, "PID of the process to attach to")
	listen := fs.String("listen", "", "127.0.0.1:0 (dlv's API server is on a free loopback port)")
	readyTimeout := fs.Duration("ready-timeout", 60*time.Second, "how long to wait for dlv to listen")
	cleanupTimeout := fs.Duration("cleanup-timeout", 20*time.Second, "bound on clearing breakpoints and detaching")
	logFile := fs.String("log-file", "", "also append this agent's log to this file (rotated past 20 MB)")
	logDlv := fs.Bool("log-dlv", false, "log dlv's debugger layer too (verbose: every breakpoint, every continue)")
	queueMB := fs.Int("queue-mb", 64, "hits kept for ctrdbg while it does not read, before they are counted as dropped")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	rest := fs.Args()
	events := newEmitter(os.Stdout, *queueMB<<20)
	defer events.close()
	if *pid <= 0 || *listen == "" || len(rest) == 0 {
		logf("dlv needs --pid, --listen and, after --, the dlv binary")
		usage()
		return exitUsage
	}
	if _, _, err := loopbackOnly(*listen); err != nil {
		logf("%v", err)
		return exitUsage
	}
	if tp, err := tracerPid(*pid); err != nil {
		logf("process %d: %v", *pid, err)
		events.control(ErrorEvent{Event: EventError, Message: fmt.Sprintf("process %d not found: %v", *pid, err)})
		return exitFailure
	} else if tp != 0 {
		msg := fmt.Sprintf("process %d is already traced by PID %d", *pid, tp)
		logf("%s", msg)
		events.control(ErrorEvent{Event: EventError, Message: msg, TracerPid: tp})
		return exitFailure
	}
	if *logFile != "" {
		// One old generation is kept: the log must stay readable after a bad night, not fill the node.
		if info, err := os.Stat(*logFile); err == nil && info.Size() > 20<<20 {
			os.Rename(*logFile, *logFile+".1")
		}
		f, err := os.OpenFile(*logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			logf("cannot open --log-file: %v", err)
			return exitUsage
		}
		defer f.Close()
		logOut = io.MultiWriter(f, bestEffort{os.Stderr})
	}
	cfg := watchdogConfig{dlvPath: rest[0], dlvArgs: rest[1:], logDlv: *logDlv, readyTimeout: *readyTimeout, cleanupTimeout: *cleanupTimeout}

	// Signals before anything can block, so an early SIGTERM still goes through cleanup.
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT)
	stdinClosed := make(chan struct{})
	commands := make(chan Command, 16)
	go readCommands(os.Stdin, commands, stdinClosed)

	// Until dlv is ready, a signal or the end of stdin stops the start (then the usual cleanup runs).
	earlyStop := make(chan struct{})
	readyDone := make(chan struct{})
	go func() {
		select {
		case sig := <-signals:
			logf("got %s before dlv was ready", sig)
			close(earlyStop)
		case <-stdinClosed:
			logf("stdin closed before dlv was ready")
			close(earlyStop)
		case <-readyDone:
		}
	}()
	attached := time.Now()
	dlv, address, err := startDlv(cfg, *pid, earlyStop)
	close(readyDone)
	s := &session{events: events, cfg: cfg, debuggees: map[int]*debuggee{}}
	if err != nil {
		if err != errStopped {
			ev := dlv.startFailure(err, 3*time.Second)
			logf("%s", ev.Message)
			events.control(ev)
		}
		if dlv != nil {
			return s.stopDlv(dlv, "", *pid, "before ready")
		}
		return exitFailure
	}
	primary := &debuggee{pid: *pid, binary: exeOf(*pid), address: address, armed: map[int]*armedBreakpoint{}, attached: attached, dlv: dlv}
	client, err := dialDelve(address)
	var dv versionOut
	if err == nil {
		// dlv prints its address before it has attached and read the binary; it answers once it has.
		err = client.call("GetVersion", map[string]interface{}{}, &dv, 60*time.Second)
	}
	primary.dlvReady = time.Now()
	if err != nil {
		// Usually dlv failed its attach after it started listening and reset this connection on its way out.
		ev := dlv.startFailure(fmt.Errorf("cannot talk to dlv: %v", err), 3*time.Second)
		logf("%s", ev.Message)
		events.control(ev)
		return s.stopDlv(dlv, address, *pid, "no client")
	}
	primary.client = client
	s.primary = primary
	s.debuggees[*pid] = primary
	events.control(ReadyEvent{
		Event: EventReady, Listen: address, DlvPid: dlv.cmd.Process.Pid, TargetPid: *pid, AgentVersion: version,
		ProtocolVersion: ProtocolVersion, DelveVersion: firstLine(dv.DelveVersion), APIVersion: dv.APIVersion,
		DlvAttachMs: ms(primary.dlvReady.Sub(attached)),
	})
	go s.serve(commands)

	select {
	case err := <-dlv.exited:
		// A client detached it (a relay's safe detach included), or dlv died: nothing is left to clean up.
		state := targetState(*pid)
		logf("dlv exited by itself (%v); target %+v", err, state)
		s.stopFollowed()
		events.control(ExitEvent{Event: EventExit, Reason: ExitDlvExited, Cleared: -1, Target: state, DlvError: errText(err), DlvOutput: dlv.output.snapshot()})
		return exitOK
	case sig := <-signals:
		logf("got %s: clearing breakpoints and detaching", sig)
		return s.shutdown("signal " + signalName(sig))
	case <-stdinClosed:
		logf("stdin closed (the SSH channel is gone): clearing breakpoints and detaching")
		return s.shutdown("stdin-closed")
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(strings.TrimPrefix(s, "Version:"))
}

func exeOf(pid int) string {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(exe, " (deleted)")
}

// readCommands turns stdin's lines into commands until EOF, which closes `closed`.
func readCommands(in io.Reader, commands chan<- Command, closed chan<- struct{}) {
	scanner := bufio.NewScanner(in)
	scanner.Buffer(make([]byte, 64*1024), 16<<20)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if line == "" {
			continue
		}
		var c Command
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			logf("not a command: %q", truncate(line, 200))
			continue
		}
		commands <- c
	}
	close(closed)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func signalName(sig os.Signal) string {
	if s, ok := sig.(syscall.Signal); ok {
		switch s {
		case syscall.SIGTERM:
			return "SIGTERM"
		case syscall.SIGHUP:
			return "SIGHUP"
		case syscall.SIGINT:
			return "SIGINT"
		}
	}
	return sig.String()
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
