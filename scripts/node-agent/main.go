// Command ctrdbg-agent is ctrdbg's helper on the node: one static binary, run as root through `sudo -n` over an
// SSH exec channel. It has two jobs.
//
//	ctrdbg-agent dlv --pid PID --listen 127.0.0.1:PORT -- /usr/bin/dlv
//	    Starts `dlv attach PID --headless --api-version=2 --accept-multiclient` on the loopback address only and
//	    watches over it. When the SSH channel goes away (stdin reaches EOF) or the agent gets SIGTERM, SIGHUP or
//	    SIGINT, it clears every breakpoint, detaches without killing containerd, and only if that fails sends
//	    SIGTERM to dlv (a headless dlv detaches on SIGTERM). It never SIGKILLs dlv while breakpoints may still be
//	    set: their int3 instructions would stay in containerd and the next hit would kill it with SIGTRAP.
//
//	ctrdbg-agent relay 127.0.0.1:PORT
//	    Copies stdin/stdout to and from that loopback port. Run as root, like dlv, so Delve's same-user check
//	    (on by default) accepts the connection without being turned off.
//
// stdout carries one JSON object per line for ctrdbg ({"event":"ready",…}); dlv's own output goes to stderr.
// Standard library only, so it cross-builds with CGO_ENABLED=0 for any node.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const version = "1"

// Exit codes, distinct so ctrdbg can tell the outcomes apart.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitTerminated  = 3 // cleanup over RPC failed; dlv was stopped with SIGTERM and exited
	exitDlvLeftOver = 4 // dlv did not exit; it is still running (reported with its pid)
)

func main() {
	// When the SSH channel closes, stdout and stderr become broken pipes. A Go program that writes to fd 1 or 2
	// then dies of SIGPIPE unless SIGPIPE is ignored — and a dead watchdog cannot detach dlv. Writes get EPIPE.
	signal.Ignore(syscall.SIGPIPE)
	if len(os.Args) < 2 {
		usage()
		os.Exit(exitUsage)
	}
	switch os.Args[1] {
	case "dlv":
		os.Exit(runDlv(os.Args[2:]))
	case "relay":
		os.Exit(runRelay(os.Args[2:]))
	case "version", "--version":
		fmt.Println("ctrdbg-agent " + version)
	case "help", "-h", "--help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "ctrdbg-agent: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(exitUsage)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  ctrdbg-agent dlv --pid PID --listen 127.0.0.1:PORT [--ready-timeout 60s] [--cleanup-timeout 20s] -- DLV [DLV-FLAGS…]
  ctrdbg-agent relay 127.0.0.1:PORT
  ctrdbg-agent version
`)
}

var stdoutMu sync.Mutex

// emit writes one JSON event line on stdout, where ctrdbg reads it.
func emit(event string, fields map[string]interface{}) {
	if fields == nil {
		fields = map[string]interface{}{}
	}
	fields["event"] = event
	line, _ := json.Marshal(fields)
	logf("event %s", line)
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	os.Stdout.Write(append(line, '\n'))
}

// logOut is stderr, plus the --log-file on the node when given: what the watchdog did must be readable after
// the SSH channel that carried its stderr is gone.
var logOut io.Writer = bestEffort{os.Stderr}

// bestEffort never fails: once the SSH channel is gone, stderr is a broken pipe, and the agent must go on to
// clean up rather than stop at its first log line.
type bestEffort struct{ w io.Writer }

func (b bestEffort) Write(p []byte) (int, error) {
	b.w.Write(p)
	return len(p), nil
}

func logf(format string, args ...interface{}) {
	fmt.Fprintf(logOut, "%s ctrdbg-agent: "+format+"\n", append([]interface{}{time.Now().Format("15:04:05.000")}, args...)...)
}

// loopbackOnly accepts only 127.0.0.1:PORT: Delve must never listen on, or be reached from, another address.
func loopbackOnly(addr string) (string, int, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("bad address %q: %v", addr, err)
	}
	if host != "127.0.0.1" {
		return "", 0, fmt.Errorf("refusing address %q: only 127.0.0.1 is allowed", addr)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	return host, port, nil
}

// tracerPid reads TracerPid from /proc/PID/status (0 = not traced).
func tracerPid(pid int) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "TracerPid:") {
			return strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "TracerPid:")))
		}
	}
	return 0, errors.New("no TracerPid line")
}

func runDlv(args []string) int {
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
		emit("error", map[string]interface{}{"message": fmt.Sprintf("process %d not found: %v", *pid, err)})
		return exitFailure
	} else if tp != 0 {
		msg := fmt.Sprintf("process %d is already traced by PID %d", *pid, tp)
		logf("%s", msg)
		emit("error", map[string]interface{}{"message": msg, "tracerPid": tp})
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
		emit("error", map[string]interface{}{"message": fmt.Sprintf("cannot start dlv: %v", err)})
		return exitFailure
	}

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
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

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
			return stopDlv(cmd, exited, "", *cleanupTimeout)
		}
		emit("ready", map[string]interface{}{"listen": address, "dlvPid": cmd.Process.Pid, "targetPid": *pid, "agentVersion": version})
	case err := <-exited:
		msg := fmt.Sprintf("dlv exited before listening: %v", err)
		logf("%s", msg)
		emit("error", map[string]interface{}{"message": msg})
		return exitFailure
	case <-time.After(*readyTimeout):
		logf("dlv did not listen within %s", *readyTimeout)
		emit("error", map[string]interface{}{"message": "dlv did not start listening in time"})
		return stopDlv(cmd, exited, "", *cleanupTimeout)
	case sig := <-signals:
		logf("got %s before dlv was ready", sig)
		return stopDlv(cmd, exited, "", *cleanupTimeout)
	case <-stdinClosed:
		logf("stdin closed before dlv was ready")
		return stopDlv(cmd, exited, "", *cleanupTimeout)
	}

	select {
	case err := <-exited:
		// A client detached (or dlv died): nothing is left to clean up.
		emit("exit", map[string]interface{}{"reason": "dlv-exited", "dlvError": errText(err)})
		return exitOK
	case sig := <-signals:
		logf("got %s: clearing breakpoints and detaching", sig)
		return stopDlv(cmd, exited, address, *cleanupTimeout)
	case <-stdinClosed:
		logf("stdin closed (the SSH channel is gone): clearing breakpoints and detaching")
		return stopDlv(cmd, exited, address, *cleanupTimeout)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// stopDlv ends dlv the safe way: clear breakpoints and detach over RPC, SIGTERM only as the fallback.
func stopDlv(cmd *exec.Cmd, exited chan error, address string, timeout time.Duration) int {
	cleared := -1
	if address != "" {
		n, err := cleanupOverRPC(address, timeout)
		cleared = n
		if err == nil {
			select {
			case <-exited:
				emit("exit", map[string]interface{}{"reason": "detached", "cleared": n})
				return exitOK
			case <-time.After(timeout):
				logf("dlv did not exit after Detach")
			}
		} else {
			logf("cleanup over RPC failed: %v", err)
		}
	}
	// Fallback: a headless dlv that gets SIGTERM detaches from the target without killing it.
	logf("sending SIGTERM to dlv (pid %d)", cmd.Process.Pid)
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		emit("exit", map[string]interface{}{"reason": "sigterm", "cleared": cleared, "dlvError": errText(err)})
		return exitTerminated
	case <-time.After(timeout):
	}
	// dlv ignores SIGTERM. Killing it now would leave int3 instructions in the target if breakpoints are still
	// set, so leave it running and say so; ctrdbg reports the pid for a human to handle.
	msg := fmt.Sprintf("dlv (pid %d) did not exit after SIGTERM; left running", cmd.Process.Pid)
	logf("%s", msg)
	emit("exit", map[string]interface{}{"reason": "dlv-left-running", "dlvPid": cmd.Process.Pid, "message": msg})
	return exitDlvLeftOver
}

// Minimal mirrors of the Delve API types the cleanup needs (service/rpc2/server.go, service/api/types.go).
type delveState struct {
	Running bool
}
type stateOut struct {
	State *delveState
}
type commandOut struct {
	State delveState
}
type delveBreakpoint struct {
	ID int `json:"id"`
}
type listBreakpointsOut struct {
	Breakpoints []delveBreakpoint
}

func call(client *rpc.Client, method string, args interface{}, reply interface{}, timeout time.Duration) error {
	c := client.Go("RPCServer."+method, args, reply, make(chan *rpc.Call, 1))
	select {
	case <-c.Done:
		return c.Error
	case <-time.After(timeout):
		return fmt.Errorf("%s: no answer within %s", method, timeout)
	}
}

// cleanupOverRPC halts the target if it runs, clears ctrdbg's breakpoints (positive ids; Delve's internal
// panic/throw breakpoints go away with the detach) and detaches without killing. Returns how many were cleared.
// stopRunningTarget stops a target that a (now gone) client had resumed. Delve's halt is kill(pid, SIGTRAP) on
// Linux, and if it reaches a target that has just stopped at a breakpoint by itself, the SIGTRAP stays pending
// and later kills containerd. Under load the target stops at the next hit within milliseconds, so wait for that
// first; only a target still running after a while (no hits coming) is halted, and that halt finds it running.
func stopRunningTarget(client *rpc.Client, timeout time.Duration) error {
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		var st stateOut
		if err := call(client, "State", map[string]interface{}{"NonBlocking": true}, &st, timeout); err != nil {
			return err
		}
		if st.State == nil || !st.State.Running {
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	var out commandOut
	if err := call(client, "Command", map[string]interface{}{"name": "halt"}, &out, timeout); err != nil {
		return fmt.Errorf("halt: %v", err)
	}
	return nil
}

// settleAndStop leaves the target stopped with no signal pending, so that a detach delivers nothing to it.
// Two kinds of SIGTRAP can be pending after a stop: a "phantom" breakpoint hit (a thread executed an int3 just as
// the target stopped; Delve rewinds its PC, but only while attached and resuming) and Delve's own halt, which on
// Linux is kill(pid, SIGTRAP) and stays pending when it reaches a target that had already stopped. A detach with
// either pending lets the kernel deliver SIGTRAP to containerd, which dies of it. So: resume with no breakpoints
// left; a continue that returns by itself has just consumed a pending trap, so resume again; once the target has
// been running for a while, nothing can stop it but our halt, and that halt finds it running.
func settleAndStop(client *rpc.Client, timeout time.Duration) error {
	for attempt := 0; attempt < 8; attempt++ {
		var cont commandOut
		running := client.Go("RPCServer.Command", map[string]interface{}{"name": "continue"}, &cont, make(chan *rpc.Call, 1))
		select {
		case <-running.Done:
			if running.Error != nil {
				return running.Error
			}
			continue // it stopped on its own: a pending trap was consumed
		case <-time.After(200 * time.Millisecond):
		}
		var halted commandOut
		if err := call(client, "Command", map[string]interface{}{"name": "halt"}, &halted, timeout); err != nil {
			return fmt.Errorf("halt: %v", err)
		}
		select {
		case <-running.Done:
			return running.Error
		case <-time.After(timeout):
			return fmt.Errorf("continue did not return after halt within %s", timeout)
		}
	}
	return fmt.Errorf("the target kept stopping on its own")
}

func cleanupOverRPC(address string, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	left := func() time.Duration {
		d := time.Until(deadline)
		if d < time.Second {
			return time.Second
		}
		return d
	}
	conn, err := net.DialTimeout("tcp", address, 5*time.Second)
	if err != nil {
		return -1, err
	}
	client := jsonrpc.NewClient(conn)
	defer client.Close()

	var st stateOut
	if err := call(client, "State", map[string]interface{}{"NonBlocking": true}, &st, left()); err != nil {
		return -1, err
	}
	if st.State != nil && st.State.Running {
		if err := stopRunningTarget(client, left()); err != nil {
			return -1, err
		}
	}
	var list listBreakpointsOut
	if err := call(client, "ListBreakpoints", map[string]interface{}{}, &list, left()); err != nil {
		return -1, err
	}
	cleared := 0
	for _, bp := range list.Breakpoints {
		if bp.ID <= 0 {
			continue
		}
		var out map[string]interface{}
		if err := call(client, "ClearBreakpoint", map[string]interface{}{"Id": bp.ID}, &out, left()); err != nil {
			return cleared, fmt.Errorf("clear breakpoint %d: %v", bp.ID, err)
		}
		cleared++
	}
	if err := settleAndStop(client, left()); err != nil {
		return cleared, fmt.Errorf("settle: %v", err)
	}
	var out map[string]interface{}
	err = call(client, "Detach", map[string]interface{}{"Kill": false}, &out, left())
	if err != nil && !isConnectionClosed(err) {
		return cleared, fmt.Errorf("detach: %v", err)
	}
	return cleared, nil
}

// isConnectionClosed: dlv exits right after Detach, sometimes before its answer is written.
func isConnectionClosed(err error) bool {
	return errors.Is(err, rpc.ErrShutdown) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

func runRelay(args []string) int {
	if len(args) != 1 {
		usage()
		return exitUsage
	}
	if _, _, err := loopbackOnly(args[0]); err != nil {
		logf("%v", err)
		return exitUsage
	}
	conn, err := net.DialTimeout("tcp", args[0], 10*time.Second)
	if err != nil {
		logf("cannot connect to %s: %v", args[0], err)
		return exitFailure
	}
	done := make(chan string, 2)
	go func() {
		io.Copy(conn, os.Stdin)
		// The client closed its side: pass the half-close on so dlv sees EOF and drops this client.
		if tcp, ok := conn.(*net.TCPConn); ok {
			tcp.CloseWrite()
		}
		done <- "stdin"
	}()
	go func() {
		io.Copy(os.Stdout, conn)
		done <- "dlv"
	}()
	first := <-done
	if first == "stdin" {
		// Give dlv a moment to finish answering, then stop either way.
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
	}
	conn.Close()
	return exitOK
}
