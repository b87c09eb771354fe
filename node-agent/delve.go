package main

// A small client for dlv's JSON-RPC API (net/rpc/jsonrpc over loopback): typed where the agent decides
// something, raw where it only passes Delve's values on to ctrdbg.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"strings"
	"time"
)

type dlvClient struct {
	rpc *rpc.Client
}

func dialDelve(address string) (*dlvClient, error) {
	conn, err := net.DialTimeout("tcp", address, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &dlvClient{rpc: jsonrpc.NewClient(conn)}, nil
}

func (c *dlvClient) close() { c.rpc.Close() }

// call waits for the answer, up to timeout (0 = no limit: a continue returns when the target stops).
func (c *dlvClient) call(method string, args interface{}, reply interface{}, timeout time.Duration) error {
	done := c.rpc.Go("RPCServer."+method, args, reply, make(chan *rpc.Call, 1)).Done
	if timeout == 0 {
		return (<-done).Error
	}
	select {
	case call := <-done:
		return call.Error
	case <-time.After(timeout):
		return fmt.Errorf("%s: no answer within %s", method, timeout)
	}
}

// loadConfig mirrors api.LoadConfig.
type loadConfig struct {
	FollowPointers     bool
	MaxVariableRecurse int
	MaxStringLen       int
	MaxArrayValues     int
	MaxStructFields    int
}

// location mirrors what the agent reads of api.Location.
type location struct {
	PC       uint64   `json:"pc"`
	File     string   `json:"file"`
	Line     int      `json:"line"`
	PCs      []uint64 `json:"pcs"`
	Function *struct {
		Name      string `json:"name"`
		Optimized bool   `json:"optimized"`
	} `json:"function"`
}

type findLocationOut struct {
	Locations []location
}

func (c *dlvClient) findLocation(loc string) ([]location, error) {
	var out findLocationOut
	err := c.call("FindLocation", map[string]interface{}{
		"Scope": map[string]interface{}{"GoroutineID": -1, "Frame": 0},
		"Loc":   loc, "IncludeNonExecutableLines": false,
	}, &out, 30*time.Second)
	return out.Locations, err
}

// packageNames lists the names a Go expression can use for the binary's packages: the last element of each import
// path, also without a major-version element or suffix (k8s.io/…/runtime/v1 → v1 and runtime; yaml.v3 → yaml).
func (c *dlvClient) packageNames() ([]string, error) {
	var out struct {
		List []struct{ ImportPath string }
	}
	if err := c.call("ListPackagesBuildInfo", map[string]interface{}{"IncludeFiles": false}, &out, 30*time.Second); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	names := []string{}
	add := func(n string) {
		if n != "" && !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for _, p := range out.List {
		parts := strings.Split(p.ImportPath, "/")
		last := parts[len(parts)-1]
		add(last)
		if i := strings.Index(last, ".v"); i > 0 {
			add(last[:i])
		}
		add(strings.TrimPrefix(last, "go-"))
		if len(parts) > 1 && len(last) > 1 && last[0] == 'v' && strings.Trim(last[1:], "0123456789") == "" {
			add(parts[len(parts)-2])
		}
	}
	return names, nil
}

func (c *dlvClient) functionReturnLocations(fn string) ([]uint64, error) {
	var out struct{ Addrs []uint64 }
	err := c.call("FunctionReturnLocations", map[string]interface{}{"FnName": fn}, &out, 30*time.Second)
	return out.Addrs, err
}

// asmInstruction mirrors api.AsmInstruction.
type asmInstruction struct {
	Loc     location
	DestLoc *location
	Text    string
}

func (c *dlvClient) disassemble(start, end uint64) ([]asmInstruction, error) {
	var out struct{ Disassemble []asmInstruction }
	err := c.call("Disassemble", map[string]interface{}{
		"Scope": map[string]interface{}{"GoroutineID": -1, "Frame": 0}, "StartPC": start, "EndPC": end, "Flavour": 0,
	}, &out, 30*time.Second)
	return out.Disassemble, err
}

// createdBreakpoint is what the agent reads back from CreateBreakpoint.
type createdBreakpoint struct {
	ID   int    `json:"id"`
	File string `json:"file"`
	Line int    `json:"line"`
}

// createBreakpoint passes the request (an api.Breakpoint as ctrdbg built it, plus addr) through unchanged.
func (c *dlvClient) createBreakpoint(bp map[string]interface{}) (createdBreakpoint, error) {
	var out struct{ Breakpoint createdBreakpoint }
	err := c.call("CreateBreakpoint", map[string]interface{}{"Breakpoint": bp}, &out, 30*time.Second)
	return out.Breakpoint, err
}

func (c *dlvClient) clearBreakpoint(id int) error {
	var out map[string]interface{}
	return c.call("ClearBreakpoint", map[string]interface{}{"Id": id}, &out, 30*time.Second)
}

// stopState is the part of api.DebuggerState the loop decides on; each thread stays raw for ctrdbg.
type stopState struct {
	Running    bool              `json:"Running"`
	Exited     bool              `json:"exited"`
	ExitStatus int               `json:"exitStatus"`
	Threads    []json.RawMessage `json:"Threads"`
}

// threadHead is what the loop reads of one api.Thread.
type threadHead struct {
	ID          int `json:"id"`
	GoroutineID int `json:"goroutineID"`
	BreakPoint  *struct {
		ID       int               `json:"id"`
		Name     string            `json:"name"`
		HitCount map[string]uint64 `json:"hitCount"`
	} `json:"breakPoint"`
}

// continueTarget resumes the target; the answer comes when it stops (a breakpoint, a halt, its exit).
func (c *dlvClient) continueTarget(returnInfo *loadConfig) *rpc.Call {
	args := map[string]interface{}{"name": "continue"}
	if returnInfo != nil {
		args["ReturnInfoLoadConfig"] = returnInfo
	}
	return c.rpc.Go("RPCServer.Command", args, new(continueOut), make(chan *rpc.Call, 1))
}

// continueOut is the answer to continue, decoded once: each thread stays raw for ctrdbg.
type continueOut struct{ State stopState }

func (c *dlvClient) halt() error {
	var out struct{ State json.RawMessage }
	return c.call("Command", map[string]interface{}{"name": "halt"}, &out, 30*time.Second)
}
