package main

// Arming on the node, next to dlv: the places ctrdbg asked for are looked up and the breakpoints created over
// loopback, so the time containerd is held to arm does not grow with the SSH link's round trips.

import (
	"fmt"
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
		addrs, err := c.functionReturnLocations(out.Function)
		if err != nil || len(addrs) == 0 {
			out.Error = fmt.Sprintf("no return locations for %s: %v", out.Function, err)
			return out
		}
		at, _ := c.findLocation(fmt.Sprintf("*%#x", addrs[0]))
		out.Found, out.Addrs = true, addrs
		if len(at) > 0 {
			out.File, out.Line = at[0].File, at[0].Line
		}
	case "after-call":
		resolveAfterCall(c, p, entry, &out)
	default:
		out.Error = fmt.Sprintf("unknown point kind %q", p.At)
	}
	return out
}

// resolveAfterCall places the point on the first line after the first call, in the function, to one of the
// callees: there the call has returned and its results are assigned. Found by the call's destination in the
// function's disassembly, not by a line number, so it survives edits to the function.
func resolveAfterCall(c *dlvClient, p PointSpec, entry location, out *ResolvedPoint) {
	code, err := c.disassemble(entry.PC, 0)
	if err != nil {
		out.Error = fmt.Sprintf("cannot disassemble %s: %v", out.Function, err)
		return
	}
	wanted := map[string]bool{}
	for _, callee := range p.Callees {
		wanted[callee] = true
	}
	for i, ins := range code {
		if ins.DestLoc == nil || ins.DestLoc.Function == nil || !strings.HasPrefix(strings.ToUpper(ins.Text), "CALL") {
			continue
		}
		if !wanted[ins.DestLoc.Function.Name] {
			continue
		}
		for _, next := range code[i+1:] {
			if next.Loc.Line != ins.Loc.Line && next.Loc.File == ins.Loc.File {
				out.Found, out.File, out.Line = true, next.Loc.File, next.Loc.Line
				out.Addrs = []uint64{next.Loc.PC}
				out.Callee, out.CallLine = ins.DestLoc.Function.Name, ins.Loc.Line
				return
			}
		}
		out.Error = fmt.Sprintf("the call to %s at line %d is the function's last statement", ins.DestLoc.Function.Name, ins.Loc.Line)
		return
	}
	out.Error = fmt.Sprintf("%s does not call %s in this binary", out.Function, strings.Join(p.Callees, " or "))
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
