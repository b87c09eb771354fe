package main

// Arming on the node, next to dlv: the places ctrdbg asked for are looked up and the breakpoints created over
// loopback, so the time containerd is held to arm does not grow with the SSH link's round trips.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// resolvePoint finds where one PointSpec lands in the attached binary.
func resolvePoint(c *dlvClient, p PointSpec) ResolvedPoint {
	out := ResolvedPoint{Key: p.Key}
	locs, err := c.findLocation(p.Function)
	if err != nil || len(locs) == 0 {
		if err != nil && !isNotFound(err) {
			out.Error = err.Error()
		} else {
			out.Missing = true
		}
		return out
	}
	entry := locs[0]
	out.Function = p.Function
	if entry.Function != nil {
		out.Function = entry.Function.Name
		out.Optimized = entry.Function.Optimized
	}
	switch p.At {
	case "", "entry":
		at := entry
		if p.LineOffset > 0 {
			lines, err := c.findLocation(fmt.Sprintf("%s:%d", entry.File, entry.Line+p.LineOffset))
			if err != nil || len(lines) == 0 {
				out.Error = fmt.Sprintf("no code at %s:%d (lineOffset %d in %s)", entry.File, entry.Line+p.LineOffset, p.LineOffset, p.Function)
				return out
			}
			at = lines[0]
		}
		out.Found, out.File, out.Line = true, at.File, at.Line
		out.Addrs = at.PCs
		if len(out.Addrs) == 0 {
			out.Addrs = []uint64{at.PC}
		}
	case "return":
		resolveReturns(c, entry, &out)
	case "after-call":
		resolveAfterCall(c, p, entry, &out)
	default:
		out.Error = fmt.Sprintf("unknown point kind %q", p.At)
	}
	return out
}

// errNoCallee is the error of an after-call point whose function makes no direct call to any of the callees
// (src/delve/agentProtocol.ts names it too; ctrdbg turns it into "callee X is not called from F").
const errNoCallee = "callee not called"

// resolveReturns places the point on the function's RET instructions. Delve's FunctionReturnLocations also lists
// each `CALL runtime.deferreturn` before a RET, where deferred calls have not run yet (they may still change named
// results): a return would stop twice, the first time too early. The RETs alone see every return exactly once.
func resolveReturns(c *dlvClient, entry location, out *ResolvedPoint) {
	addrs, err := c.functionReturnLocations(out.Function)
	if err != nil || len(addrs) == 0 {
		out.Error = fmt.Sprintf("no return locations for %s: %v", out.Function, err)
		return
	}
	var lines map[uint64]int
	if code, err := c.disassemble(entry.PC, 0); err == nil {
		addrs, lines = returnInstructions(code, addrs)
	}
	out.Found, out.Addrs = true, addrs
	if line, ok := lines[addrs[0]]; ok {
		out.File, out.Line = entry.File, line
	} else if at, _ := c.findLocation(fmt.Sprintf("*%#x", addrs[0])); len(at) > 0 {
		out.File, out.Line = at[0].File, at[0].Line
	}
}

// returnInstructions keeps the addresses that are return instructions (all of them when none is: a
// disassembly this code does not read), with the line of each.
func returnInstructions(code []asmInstruction, addrs []uint64) ([]uint64, map[uint64]int) {
	rets := map[uint64]int{}
	for _, ins := range code {
		if kind, _ := controlFlow(ins); kind == flowReturn {
			rets[ins.Loc.PC] = ins.Loc.Line
		}
	}
	var kept []uint64
	for _, a := range addrs {
		if _, ok := rets[a]; ok {
			kept = append(kept, a)
		}
	}
	if len(kept) == 0 {
		return addrs, rets
	}
	return kept, rets
}

// resolveAfterCall places the point where the function goes on after its first call to one of the callees
// returns: there the call's results are assigned. Found from the call's destination in the function's
// disassembly, not from a line number, so it survives edits to the function.
func resolveAfterCall(c *dlvClient, p PointSpec, entry location, out *ResolvedPoint) {
	code, err := c.disassemble(entry.PC, 0)
	if err != nil {
		out.Error = fmt.Sprintf("cannot disassemble %s: %v", out.Function, err)
		return
	}
	call := findCall(code, p.Callees)
	if call < 0 {
		out.Error = errNoCallee
		return
	}
	ins := code[call]
	stops := afterCallStops(code, call)
	if len(stops) == 0 {
		out.Error = fmt.Sprintf("the call to %s at line %d is the function's last statement", ins.DestLoc.Function.Name, ins.Loc.Line)
		return
	}
	// The line shown is the one the function goes on with: the last of them in the source (for
	// `if x, err = f(); err != nil {`, the statement after the if; the branch body is a stop too).
	primary := stops[0]
	for _, s := range stops[1:] {
		if s.Loc.Line > primary.Loc.Line {
			primary = s
		}
	}
	out.Found, out.File, out.Line = true, primary.Loc.File, primary.Loc.Line
	out.Callee, out.CallLine = ins.DestLoc.Function.Name, ins.Loc.Line
	for _, s := range stops {
		out.Addrs = append(out.Addrs, s.Loc.PC)
	}
}

// findCall is the index of the first direct call to one of the callees, or -1. (A call through an interface or
// a func value has no destination in the disassembly: it cannot be found this way.)
func findCall(code []asmInstruction, callees []string) int {
	wanted := map[string]bool{}
	for _, callee := range callees {
		wanted[callee] = true
	}
	for i, ins := range code {
		if kind, _ := controlFlow(ins); kind == flowCall && ins.DestLoc != nil && ins.DestLoc.Function != nil && wanted[ins.DestLoc.Function.Name] {
			return i
		}
	}
	return -1
}

// afterCallStops follows the code from the call's return address along every path (both ways at each
// conditional branch, into each jump's target) to the first instruction of another line of the same file: the
// statements that run next. A line such as `if cntr, err = f(); err != nil {` assigns, tests and branches on the
// call's own line, so the next line in memory is the branch body, which runs only on failure; following the
// branches finds both it and the statement after the if, and each return from the call passes exactly one stop.
// Paths that return or call a function that never returns (a panic) end without a stop.
func afterCallStops(code []asmInstruction, call int) []asmInstruction {
	index := make(map[uint64]int, len(code))
	for i, ins := range code {
		index[ins.Loc.PC] = i
	}
	file, line := code[call].Loc.File, code[call].Loc.Line
	var stops []asmInstruction
	seen := map[int]bool{}
	work := []int{call + 1}
	for len(work) > 0 {
		i := work[len(work)-1]
		work = work[:len(work)-1]
		if i < 0 || i >= len(code) || seen[i] {
			continue
		}
		seen[i] = true
		ins := code[i]
		if ins.Loc.File == file && ins.Loc.Line != 0 && ins.Loc.Line != line {
			stops = append(stops, ins)
			continue
		}
		kind, target := controlFlow(ins)
		jump := func() {
			if j, ok := index[target]; ok && target != 0 {
				work = append(work, j)
			}
		}
		switch kind {
		case flowReturn, flowStop, flowIndirect:
		case flowJump:
			jump()
		case flowBranch:
			jump()
			work = append(work, i+1)
		case flowCall:
			if ins.DestLoc == nil || ins.DestLoc.Function == nil || !neverReturns(ins.DestLoc.Function.Name) {
				work = append(work, i+1)
			}
		default:
			work = append(work, i+1)
		}
	}
	sort.Slice(stops, func(a, b int) bool { return stops[a].Loc.PC < stops[b].Loc.PC })
	return stops
}

type flow int

const (
	flowNext     flow = iota
	flowCall          // call (returns to the next instruction)
	flowJump          // unconditional jump to target
	flowBranch        // conditional: target or the next instruction
	flowIndirect      // jump to a register or memory: not followed
	flowReturn        // return from the function
	flowStop          // a trap: the path ends
)

// controlFlow classifies an instruction in Delve's GNU syntax (the agent's Disassemble flavour), for amd64
// (AT&T: `callq`, `jmpq $0x…`, `jne $0x…`, `retq`) and arm64 (`bl`, `b .+0x…`, `b.ne`, `cbz`, `tbnz`, `ret`),
// with the branch's target address when it has one.
func controlFlow(ins asmInstruction) (flow, uint64) {
	fields := strings.Fields(strings.ToLower(ins.Text))
	for len(fields) > 1 && (fields[0] == "bnd" || fields[0] == "notrack" || fields[0] == "rep" || fields[0] == "repz" || fields[0] == "repnz") {
		fields = fields[1:]
	}
	if len(fields) == 0 {
		return flowNext, 0
	}
	op := fields[0]
	target := func() uint64 {
		if ins.DestLoc != nil && ins.DestLoc.PC != 0 {
			return ins.DestLoc.PC
		}
		return branchTarget(ins.Loc.PC, fields[len(fields)-1])
	}
	switch {
	case op == "ret" || op == "retq" || op == "retl":
		return flowReturn, 0
	case op == "ud2" || op == "int3" || op == "hlt" || op == "brk" || op == "udf":
		return flowStop, 0
	case op == "call" || op == "callq" || op == "lcall" || op == "bl" || op == "blr":
		return flowCall, 0
	case op == "jmp" || op == "jmpq" || op == "ljmp" || op == "b":
		if t := target(); t != 0 {
			return flowJump, t
		}
		return flowIndirect, 0
	case op == "br":
		return flowIndirect, 0
	case strings.HasPrefix(op, "j") || strings.HasPrefix(op, "b.") || op == "cbz" || op == "cbnz" || op == "tbz" || op == "tbnz":
		return flowBranch, target()
	}
	return flowNext, 0
}

// branchTarget reads a branch operand: `$0x4a2b3c` (amd64), `0x4a2b3c`, or `.+0x20` / `.-0x20` (arm64, from the
// instruction's own address); 0 when it is none of them (a register, memory).
func branchTarget(pc uint64, operand string) uint64 {
	operand = strings.TrimPrefix(strings.TrimSuffix(operand, ","), "$")
	sign := int64(0)
	switch {
	case strings.HasPrefix(operand, ".+"):
		sign, operand = 1, operand[2:]
	case strings.HasPrefix(operand, ".-"):
		sign, operand = -1, operand[2:]
	}
	if !strings.HasPrefix(operand, "0x") {
		return 0
	}
	n, err := strconv.ParseUint(operand[2:], 16, 64)
	if err != nil {
		return 0
	}
	switch sign {
	case 1:
		return pc + n
	case -1:
		return pc - n
	}
	return n
}

// neverReturns: the runtime's panics and throws, where a path after a call ends.
func neverReturns(fn string) bool {
	for _, prefix := range []string{"runtime.gopanic", "runtime.panic", "runtime.goPanic", "runtime.throw", "runtime.fatal"} {
		if strings.HasPrefix(fn, prefix) {
			return true
		}
	}
	return false
}

func isNotFound(err error) bool {
	m := strings.ToLower(err.Error())
	return strings.Contains(m, "could not find") || strings.Contains(m, "not found") || strings.Contains(m, "no such")
}

// createBreakpoints creates each spec's breakpoints and remembers their requests (a re-arm recreates them).
func createBreakpoints(d *debuggee, specs []BreakpointSpec) []CreatedBreakpoint {
	out := make([]CreatedBreakpoint, 0, len(specs))
	for _, spec := range specs {
		created := CreatedBreakpoint{Key: spec.Key}
		requests := []map[string]interface{}{}
		if len(spec.Addrs) == 0 {
			r := copyRequest(spec.Request)
			r["file"], r["line"] = spec.File, spec.Line
			requests = append(requests, r)
		}
		for i, addr := range spec.Addrs {
			r := copyRequest(spec.Request)
			r["addr"] = addr
			if name, ok := r["name"].(string); ok && name != "" && i > 0 {
				r["name"] = fmt.Sprintf("%sAt%d", name, i+1)
			}
			requests = append(requests, r)
		}
		for _, r := range requests {
			bp, err := d.client.createBreakpoint(r)
			if err != nil {
				created.Error = err.Error()
				break
			}
			created.IDs = append(created.IDs, bp.ID)
			logical := spec.Logical
			if logical == 0 {
				logical = bp.ID
			}
			d.armed[bp.ID] = &armedBreakpoint{logical: logical, request: r}
		}
		out = append(out, created)
	}
	return out
}

func copyRequest(r map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(r)+2)
	for k, v := range r {
		out[k] = v
	}
	return out
}
