package main

// (net/rpc serves only methods whose argument and reply types are exported.)
// A stand-in for dlv's JSON-RPC API, just enough for the cleanup sequence, recording every call. The real dlv is
// driven by the TypeScript integration tests; these tests pin down what the relay and the cleanup send.

import (
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"sync"
	"testing"
	"time"
)

type fakeDelve struct {
	mu          sync.Mutex
	calls       []string
	running     bool
	breakpoints []int
	cleared     []int
	detachKills []bool
	halt        chan struct{}
}

type FakeState struct{ Running, Exited bool }
type FakeStateOut struct{ State FakeState }
type FakeCommandIn struct{ Name string }
type FakeCommandOut struct{ State FakeState }
type FakeBreakpoint struct {
	ID int `json:"id"`
}
type FakeListOut struct{ Breakpoints []FakeBreakpoint }
type FakeClearIn struct{ Id int }
type FakeDetachIn struct{ Kill bool }

// RPCServer is the name Delve registers its API under.
type RPCServer struct{ f *fakeDelve }

func (s *RPCServer) record(call string) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.calls = append(s.f.calls, call)
}

func (s *RPCServer) State(_ map[string]interface{}, out *FakeStateOut) error {
	s.record("State")
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	out.State.Running = s.f.running
	return nil
}

func (s *RPCServer) ListBreakpoints(_ map[string]interface{}, out *FakeListOut) error {
	s.record("ListBreakpoints")
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	for _, id := range s.f.breakpoints {
		out.Breakpoints = append(out.Breakpoints, FakeBreakpoint{ID: id})
	}
	return nil
}

func (s *RPCServer) ClearBreakpoint(in FakeClearIn, out *map[string]interface{}) error {
	s.record("ClearBreakpoint")
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.cleared = append(s.f.cleared, in.Id)
	return nil
}

// Command: continue runs until a halt (like a target no breakpoint stops any more); halt stops it.
func (s *RPCServer) Command(in FakeCommandIn, out *FakeCommandOut) error {
	s.record("Command " + in.Name)
	switch in.Name {
	case "continue":
		s.f.mu.Lock()
		s.f.running = true
		s.f.mu.Unlock()
		select {
		case <-s.f.halt:
		case <-time.After(10 * time.Second):
		}
		s.f.mu.Lock()
		s.f.running = false
		s.f.mu.Unlock()
	case "halt":
		s.f.halt <- struct{}{}
	}
	return nil
}

func (s *RPCServer) Detach(in FakeDetachIn, out *map[string]interface{}) error {
	s.record("Detach")
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.detachKills = append(s.f.detachKills, in.Kill)
	return nil
}

func (s *RPCServer) Restart(_ map[string]interface{}, out *map[string]interface{}) error {
	s.record("Restart")
	return nil
}

// startFakeDelve listens on 127.0.0.1 and serves the fake API, one codec per connection (as dlv does).
func startFakeDelve(t *testing.T, breakpoints ...int) (*fakeDelve, string) {
	t.Helper()
	f := &fakeDelve{breakpoints: breakpoints, halt: make(chan struct{}, 1)}
	server := rpc.NewServer()
	if err := server.Register(&RPCServer{f: f}); err != nil {
		t.Fatal(err)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { listener.Close() })
	go func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			go server.ServeCodec(jsonrpc.NewServerCodec(conn))
		}
	}()
	return f, listener.Addr().String()
}

func (f *fakeDelve) snapshot() ([]string, []int, []bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...), append([]int(nil), f.cleared...), append([]bool(nil), f.detachKills...)
}
