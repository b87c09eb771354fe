package main

// The safe way to leave a target, over Delve's JSON-RPC API: stop it if it runs, clear every breakpoint, settle any
// pending trap, Detach{Kill:false}. The watchdog runs it when ctrdbg goes away; a relay runs it when a client asks
// to end the session. It is the only implementation of that sequence.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"os"
	"time"
)

// Minimal mirrors of the Delve API types the cleanup needs (service/rpc2/server.go, service/api/types.go).
type delveState struct {
	Running bool
	Exited  bool
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

// stopRunningTarget stops a target that a (now gone) client had resumed. Delve's halt is kill(pid, SIGTRAP) on
// Linux, and if it reaches a target that has just stopped at a breakpoint by itself, the SIGTRAP stays pending and
// later kills it. Under load the target stops at the next hit within milliseconds, so wait for that first; only a
// target still running after a while (no hits coming) is halted, and that halt finds it running.
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
// either pending lets the kernel deliver SIGTRAP to the target, which dies of it. So: resume with no breakpoints
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
			if cont.State.Exited {
				return errors.New("the target exited")
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

// faultInjected lets the integration tests drive the fallback paths for real: CTRDBG_AGENT_FAULT=cleanup makes the
// RPC cleanup fail at once, as it would with a wedged dlv. Nothing sets it outside the tests.
func faultInjected(name string) bool {
	return os.Getenv("CTRDBG_AGENT_FAULT") == name
}

// safeDetach connects to dlv at address and leaves the target the safe way. Returns how many breakpoints it
// cleared (-1 when it got no further than connecting).
func safeDetach(address string, timeout time.Duration) (int, error) {
	if faultInjected("cleanup") {
		return -1, errors.New("cleanup failed on purpose (CTRDBG_AGENT_FAULT=cleanup)")
	}
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
		// Positive ids are clients' breakpoints; Delve's internal panic/throw ones go away with the detach.
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
