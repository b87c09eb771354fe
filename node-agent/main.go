// Command ctrdbg-agent is ctrdbg's helper on the node: one static binary, run as root through `sudo -n` over an
// SSH exec channel.
//
//	ctrdbg-agent dlv --pid PID --listen 127.0.0.1:PORT -- /usr/bin/dlv      (watchdog.go)
//	    Starts `dlv attach PID --headless --api-version=2 --accept-multiclient` on the loopback address only and
//	    watches over it. When the SSH channel goes away (stdin reaches EOF) or the agent gets SIGTERM, SIGHUP or
//	    SIGINT, it clears every breakpoint, detaches without killing the target, and only if that fails sends
//	    SIGTERM to dlv (a headless dlv detaches on it). It never SIGKILLs dlv: the int3 instructions of
//	    breakpoints still set would stay in the target and the next hit would kill it with SIGTRAP.
//
//	ctrdbg-agent relay 127.0.0.1:PORT                                       (relay.go)
//	    Copies stdin/stdout to and from dlv, as root so Delve's same-user check (kept on) accepts it. It speaks
//	    both protocols a headless dlv serves (JSON-RPC and DAP) and never forwards a request that would kill or
//	    restart the target: ending the session becomes ctrdbg's safe detach, kill and restart get an error.
//
//	ctrdbg-agent scope --pid PID FUNCTION…                                   (scope.go)
//	    Prints the names each function can use (parameters, locals, its package's variables, package names),
//	    read from the DWARF of /proc/PID/exe without stopping the process.
//
//	ctrdbg-agent protocol | version
//
// The events are defined in protocol.go. Standard library only, so it cross-builds with CGO_ENABLED=0.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

const version = "2"

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
		os.Exit(runWatchdog(os.Args[2:]))
	case "relay":
		os.Exit(runRelay(os.Args[2:]))
	case "scope":
		os.Exit(runScope(os.Args[2:]))
	case "protocol":
		line, _ := json.Marshal(describeProtocol())
		fmt.Println(string(line))
	case "version", "--version":
		fmt.Printf("ctrdbg-agent %s (protocol %d)\n", version, ProtocolVersion)
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
  ctrdbg-agent dlv --pid PID --listen 127.0.0.1:0 [--ready-timeout 60s] [--cleanup-timeout 20s] [--log-file F] [--log-dlv] [--queue-mb 64] -- DLV [DLV-FLAGS…]
  ctrdbg-agent relay 127.0.0.1:PORT
  ctrdbg-agent scope --pid PID|--binary FILE FUNCTION…
  ctrdbg-agent protocol
  ctrdbg-agent version
`)
}

// eventWriter writes one JSON object per line, whole lines only (several goroutines may emit).
type eventWriter struct {
	mu  sync.Mutex
	out io.Writer
}

func (w *eventWriter) emit(event interface{}) {
	line, err := json.Marshal(event)
	if err != nil {
		logf("cannot encode event: %v", err)
		return
	}
	logf("event %s", line)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.out.Write(append(line, '\n'))
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
