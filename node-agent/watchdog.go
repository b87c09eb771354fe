package main

// `ctrdbg-agent dlv`: dlv attached to the target, listening on loopback only, and a watchdog tied to the SSH
// channel that started it.

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type watchdog struct {
	cmd            *exec.Cmd
	exited         chan error
	targetPid      int
	cleanupTimeout time.Duration
	events         *eventWriter
}

func runWatchdog(args []string) int {
	fs := flag.NewFlagSet("dlv", flag.ContinueOnError)
	pid := fs.Int("pid", 0, "PID of the process to attach to")
	listen := fs.String("listen", "", "127.0.0.1:PORT for dlv's API server (port 0 = any free port)")
	readyTimeout := fs.Duration("ready-timeout", 60*time.Second, "how long to wait for dlv to listen")
	cleanupTimeout := fs.Duration("cleanup-timeout", 20*time.Second, "bound on clearing breakpoints and detaching")
	logFile := fs.String("log-file", "", "also append this agent's and dlv's log (debugger layer) to this file")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	rest := fs.Args()
	events := &eventWriter{out: os.Stdout}
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
		events.emit(ErrorEvent{Event: EventError, Message: fmt.Sprintf("process %d not found: %v", *pid, err)})
		return exitFailure
	} else if tp != 0 {
		msg := fmt.Sprintf("process %d is already traced by PID %d", *pid, tp)
		logf("%s", msg)
		events.emit(ErrorEvent{Event: EventError, Message: msg, TracerPid: tp})
		return exitFailure
	}

	dlvArgs := []string{"attach", strconv.Itoa(*pid), "--headless", "--listen", *listen, "--api-version=2", "--accept-multiclient"}
	if *logFile != "" {
		f, err := os.OpenFile(*logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			logf("cannot open --log-file: %v", err)
			return exitUsage
		}
		defer f.Close()
		logOut = io.MultiWriter(f, bestEffort{os.Stderr})
		dlvArgs = append(dlvArgs, "--log", "--log-output=debugger")
	}
	dlvArgs = append(dlvArgs, rest[1:]...)
	cmd := exec.Command(rest[0], dlvArgs...)
	// Own process group: a Ctrl-C delivered to the SSH session's group must reach the agent, which decides, not
	// dlv. Pdeathsig: if the agent itself is killed, dlv gets SIGTERM and detaches instead of lingering.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.Stdin = nil
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf("%v", err)
		return exitFailure
	}
	cmd.Stderr = cmd.Stdout
	logf("starting %s %s", rest[0], strings.Join(dlvArgs, " "))
	if err := cmd.Start(); err != nil {
		logf("cannot start dlv: %v", err)
		events.emit(ErrorEvent{Event: EventError, Message: fmt.Sprintf("cannot start dlv: %v", err)})
		return exitFailure
	}
	w := &watchdog{cmd: cmd, exited: make(chan error, 1), targetPid: *pid, cleanupTimeout: *cleanupTimeout, events: events}

	// Signals before anything can block, so an early SIGTERM still goes through cleanup.
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT)

	ready := make(chan string, 1)
	go func() {
		scanner := bufio.NewScanner(stdout)
		scanner.Buffer(make([]byte, 64*1024), 1024*1024)
		const marker = "API server listening at:"
		for scanner.Scan() {
			line := scanner.Text()
			fmt.Fprintf(logOut, "dlv: %s\n", line)
			if i := strings.Index(line, marker); i >= 0 {
				select {
				case ready <- strings.TrimSpace(line[i+len(marker):]):
				default:
				}
			}
		}
	}()
	go func() { w.exited <- cmd.Wait() }()

	stdinClosed := make(chan struct{})
	go func() {
		// Whatever arrives on stdin is ignored; only its end matters (the SSH channel is gone).
		io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()

	var address string
	select {
	case address = <-ready:
		if _, _, err := loopbackOnly(address); err != nil {
			logf("dlv listens on %q, not loopback: stopping it", address)
			return w.stop("", "dlv not on loopback")
		}
		events.emit(ReadyEvent{Event: EventReady, Listen: address, DlvPid: cmd.Process.Pid, TargetPid: *pid, AgentVersion: version, ProtocolVersion: ProtocolVersion})
	case err := <-w.exited:
		msg := fmt.Sprintf("dlv exited before listening: %v", err)
		logf("%s", msg)
		events.emit(ErrorEvent{Event: EventError, Message: msg})
		return exitFailure
	case <-time.After(*readyTimeout):
		logf("dlv did not listen within %s", *readyTimeout)
		events.emit(ErrorEvent{Event: EventError, Message: "dlv did not start listening in time"})
		return w.stop("", "ready timeout")
	case sig := <-signals:
		logf("got %s before dlv was ready", sig)
		return w.stop("", "signal "+signalName(sig))
	case <-stdinClosed:
		logf("stdin closed before dlv was ready")
		return w.stop("", "stdin-closed")
	}

	select {
	case err := <-w.exited:
		// A client detached it (a relay's safe detach included), or dlv died: nothing is left to clean up.
		state := targetState(*pid)
		logf("dlv exited by itself (%v); target %+v", err, state)
		events.emit(ExitEvent{Event: EventExit, Reason: ExitDlvExited, Cleared: -1, Target: state, DlvError: errText(err)})
		return exitOK
	case sig := <-signals:
		logf("got %s: clearing breakpoints and detaching", sig)
		return w.stop(address, "signal "+signalName(sig))
	case <-stdinClosed:
		logf("stdin closed (the SSH channel is gone): clearing breakpoints and detaching")
		return w.stop(address, "stdin-closed")
	}
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

// stop ends dlv the safe way: the RPC cleanup, SIGTERM only as the fallback, never SIGKILL.
func (w *watchdog) stop(address string, trigger string) int {
	cleared := -1
	if address != "" {
		n, err := safeDetach(address, w.cleanupTimeout)
		cleared = n
		if err == nil {
			select {
			case <-w.exited:
				w.events.emit(ExitEvent{Event: EventExit, Reason: ExitDetached, Cleared: n, Target: targetState(w.targetPid), Trigger: trigger})
				return exitOK
			case <-time.After(w.cleanupTimeout):
				logf("dlv did not exit after Detach")
			}
		} else {
			logf("cleanup over RPC failed: %v", err)
		}
	}
	// Fallback: a headless dlv that gets SIGTERM detaches from the target without killing it.
	logf("sending SIGTERM to dlv (pid %d)", w.cmd.Process.Pid)
	w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-w.exited:
		w.events.emit(ExitEvent{Event: EventExit, Reason: ExitTerminated, Cleared: cleared, Target: targetState(w.targetPid), Trigger: trigger, DlvError: errText(err)})
		return exitTerminated
	case <-time.After(w.cleanupTimeout):
	}
	// dlv ignores SIGTERM. Killing it now would leave int3 instructions in the target if breakpoints are still
	// set, so leave it running and say so; ctrdbg reports the pid for a human to handle.
	msg := fmt.Sprintf("dlv (pid %d) did not exit after SIGTERM; left running", w.cmd.Process.Pid)
	logf("%s", msg)
	w.events.emit(ExitEvent{Event: EventExit, Reason: ExitDlvLeftRunning, Cleared: cleared, Target: targetState(w.targetPid), Trigger: trigger, DlvPid: w.cmd.Process.Pid, Message: msg})
	return exitDlvLeftOver
}
