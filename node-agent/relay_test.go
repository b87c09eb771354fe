package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

// pipeRelay runs relayConnection with in-memory client pipes; returns the client's ends and the notices.
func pipeRelay(t *testing.T, address string, upstream net.Conn) (io.WriteCloser, *bufio.Reader, *bytes.Buffer, chan struct{}) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	notices := &bytes.Buffer{}
	done := make(chan struct{})
	go func() {
		relayConnection(address, upstream, inR, outW, notices)
		outW.Close()
		close(done)
	}()
	return inW, bufio.NewReader(outR), notices, done
}

func readNotices(t *testing.T, b *bytes.Buffer) []RelayNotice {
	t.Helper()
	var out []RelayNotice
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var n RelayNotice
		if err := json.Unmarshal([]byte(line), &n); err != nil {
			t.Fatalf("notice %q: %v", line, err)
		}
		out = append(out, n)
	}
	return out
}

func waitDone(t *testing.T, done chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the relay did not end")
	}
}

func TestRelayTurnsDetachKillIntoTheSafeDetach(t *testing.T) {
	f, address := startFakeDelve(t, 7)
	upstream, err := net.Dial("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	in, out, notices, done := pipeRelay(t, address, upstream)
	// A harmless request passes through to dlv and its answer comes back.
	fmt.Fprintln(in, `{"method":"RPCServer.State","params":[{"NonBlocking":true}],"id":1}`)
	line, _ := out.ReadString('\n')
	if !strings.Contains(line, `"id":1`) || !strings.Contains(line, `"Running":false`) {
		t.Fatalf("State answer %q", line)
	}
	fmt.Fprintln(in, `{"method":"RPCServer.Detach","params":[{"Kill":true}],"id":2}`)
	line, _ = out.ReadString('\n')
	if !strings.Contains(line, `"id":2`) || !strings.Contains(line, `"error":null`) {
		t.Fatalf("Detach answer %q", line)
	}
	waitDone(t, done)
	_, cleared, kills := f.snapshot()
	if !reflect.DeepEqual(kills, []bool{false}) || !reflect.DeepEqual(cleared, []int{7}) {
		t.Errorf("dlv saw Detach kills %v, cleared %v; want [false], [7]", kills, cleared)
	}
	got := readNotices(t, notices)
	if len(got) != 1 || got[0].Action != RelayDetached || got[0].Request != "Detach{Kill:true}" || got[0].Cleared != 1 {
		t.Errorf("notices %+v", got)
	}
}

func TestRelayRefusesRestartAndGoesOn(t *testing.T) {
	f, address := startFakeDelve(t)
	upstream, err := net.Dial("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	in, out, notices, done := pipeRelay(t, address, upstream)
	fmt.Fprintln(in, `{"method":"RPCServer.Restart","params":[{}],"id":5}`)
	line, _ := out.ReadString('\n')
	if !strings.Contains(line, `"id":5`) || !strings.Contains(line, "ctrdbg refuses Restart") {
		t.Fatalf("Restart answer %q", line)
	}
	fmt.Fprintln(in, `{"method":"RPCServer.State","params":[{"NonBlocking":true}],"id":6}`)
	if line, _ = out.ReadString('\n'); !strings.Contains(line, `"id":6`) {
		t.Fatalf("State after the refusal %q", line)
	}
	in.Close()
	waitDone(t, done)
	if calls, _, _ := f.snapshot(); !reflect.DeepEqual(calls, []string{"State"}) {
		t.Errorf("dlv saw %v; Restart must never reach it", calls)
	}
	got := readNotices(t, notices)
	if len(got) != 2 || got[0].Action != RelayRefused || got[0].Request != "Restart" || got[1].Action != RelayClientLeft {
		t.Errorf("notices %+v", got)
	}
}

func dapSend(t *testing.T, w io.Writer, seq int, command string, args interface{}) {
	t.Helper()
	body, _ := json.Marshal(map[string]interface{}{"seq": seq, "type": "request", "command": command, "arguments": args})
	if _, err := w.Write(frameDAP(body)); err != nil {
		t.Fatal(err)
	}
}

func dapRead(t *testing.T, r *bufio.Reader) map[string]interface{} {
	t.Helper()
	body, err := readDAP(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]interface{}
	json.Unmarshal(body, &m)
	return m
}

func TestRelayDAPRefusesTerminateAndDetachesOnDisconnectTerminate(t *testing.T) {
	f, address := startFakeDelve(t, 3)
	// The DAP side of dlv is not needed: what the relay forwards lands in this pipe.
	upstream, dlvSide := net.Pipe()
	forwarded := make(chan []byte, 4)
	go func() {
		r := bufio.NewReader(dlvSide)
		for {
			body, err := readDAP(r)
			if err != nil {
				close(forwarded)
				return
			}
			forwarded <- body
		}
	}()
	in, out, notices, done := pipeRelay(t, address, upstream)
	dapSend(t, in, 1, "threads", nil)
	if body := <-forwarded; !strings.Contains(string(body), `"threads"`) {
		t.Fatalf("forwarded %s", body)
	}
	dapSend(t, in, 2, "terminate", map[string]interface{}{})
	if m := dapRead(t, out); m["success"] != false || m["request_seq"] != float64(2) || !strings.Contains(fmt.Sprint(m["message"]), "ctrdbg refuses 'terminate'") {
		t.Fatalf("terminate answer %v", m)
	}
	dapSend(t, in, 3, "disconnect", map[string]interface{}{"terminateDebuggee": true})
	var events []string
	for {
		m := dapRead(t, out)
		if m["type"] == "event" {
			events = append(events, fmt.Sprint(m["event"]))
			if m["event"] == "terminated" {
				break
			}
			continue
		}
		if m["command"] != "disconnect" || m["success"] != true {
			t.Fatalf("disconnect answer %v", m)
		}
	}
	waitDone(t, done)
	if !reflect.DeepEqual(events, []string{"output", "terminated"}) {
		t.Errorf("events %v", events)
	}
	if _, cleared, kills := f.snapshot(); !reflect.DeepEqual(kills, []bool{false}) || !reflect.DeepEqual(cleared, []int{3}) {
		t.Errorf("dlv saw Detach kills %v, cleared %v", kills, cleared)
	}
	got := readNotices(t, notices)
	if len(got) != 2 || got[0].Request != "terminate" || got[1].Action != RelayDetached || got[1].Request != "disconnect{terminateDebuggee:true}" {
		t.Errorf("notices %+v", got)
	}
}

func TestDAPFraming(t *testing.T) {
	r := bufio.NewReader(bytes.NewReader(append(frameDAP([]byte(`{"a":1}`)), frameDAP([]byte(`{"b":2}`))...)))
	for _, want := range []string{`{"a":1}`, `{"b":2}`} {
		body, err := readDAP(r)
		if err != nil || string(body) != want {
			t.Fatalf("got %q, %v; want %q", body, err, want)
		}
	}
	if _, err := readDAP(r); err != io.EOF {
		t.Errorf("at the end: %v, want EOF", err)
	}
	if _, err := readDAP(bufio.NewReader(strings.NewReader("Content-Length: x\r\n\r\n"))); err == nil {
		t.Error("a bad Content-Length was accepted")
	}
}
