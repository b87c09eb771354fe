package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeDlv writes a shell script that stands in for dlv: it prints `lines` and exits with `code`.
func fakeDlv(t *testing.T, code int, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dlv")
	// A quoted here-document prints every line as it is, quotes included.
	script := "#!/bin/sh\ncat <<'END'\n" + strings.Join(lines, "\n") + "\nEND\nexit " + strconv.Itoa(code) + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

const noDebugInfo = "could not attach to pid 4242: could not open debug info - debuggee must not be built with 'go run' or -ldflags='-s -w', which strip debug info"

func TestStartFailureSaysWhatDlvSaidNotTheResetConnection(t *testing.T) {
	// dlv 1.20 listens first, then attaches: on a stripped binary it prints why and exits, resetting the agent's
	// first connection. The error event carries dlv's words and exit status.
	cfg := watchdogConfig{dlvPath: fakeDlv(t, 1, "API server listening at: 127.0.0.1:1", noDebugInfo), readyTimeout: 10 * time.Second}
	p, address, err := startDlv(cfg, 4242, make(chan struct{}))
	if err != nil || address != "127.0.0.1:1" {
		t.Fatalf("startDlv: %q, %v", address, err)
	}
	ev := p.startFailure(errors.New("cannot talk to dlv: read: connection reset by peer"), 5*time.Second)
	if ev.Message != "dlv exited (exit status 1): "+noDebugInfo {
		t.Errorf("message %q", ev.Message)
	}
	if ev.DlvExit != "exit status 1" || !reflect.DeepEqual(ev.DlvOutput, []string{"API server listening at: 127.0.0.1:1", noDebugInfo}) {
		t.Errorf("dlv exit %q, output %q", ev.DlvExit, ev.DlvOutput)
	}
	// Still there for the cleanup that follows: it must see dlv gone, not wait for it.
	select {
	case <-p.exited:
	default:
		t.Error("the exit status was consumed")
	}
}

func TestStartFailureBeforeListening(t *testing.T) {
	cfg := watchdogConfig{dlvPath: fakeDlv(t, 1, "Error: could not attach to pid 4242: operation not permitted"), readyTimeout: 10 * time.Second}
	p, _, err := startDlv(cfg, 4242, make(chan struct{}))
	if err == nil || !strings.Contains(err.Error(), "dlv exited before listening") {
		t.Fatalf("startDlv error %v", err)
	}
	ev := p.startFailure(err, 5*time.Second)
	if ev.Message != "dlv exited (exit status 1): could not attach to pid 4242: operation not permitted" {
		t.Errorf("message %q", ev.Message)
	}
}

func TestDlvCauseSkipsTheListeningNotice(t *testing.T) {
	if got := dlvCause([]string{"API server listening at: 127.0.0.1:5", ""}); got != "" {
		t.Errorf("cause %q", got)
	}
	tail := &outputTail{}
	for i := 0; i < 30; i++ {
		tail.add(string(rune('a' + i%26)))
	}
	if n := len(tail.snapshot()); n != outputTailLines {
		t.Errorf("kept %d lines", n)
	}
}
