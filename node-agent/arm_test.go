package main

import (
	"reflect"
	"testing"
)

const file = "/src/container_create.go"

// ins builds one instruction of the function under test (GNU syntax, as the agent asks Delve for it).
func ins(pc uint64, line int, text string, dest ...string) asmInstruction {
	i := asmInstruction{Loc: location{PC: pc, File: file, Line: line}, Text: text}
	if len(dest) == 1 {
		i.DestLoc = &location{Function: &struct {
			Name      string `json:"name"`
			Optimized bool   `json:"optimized"`
		}{Name: dest[0]}}
	}
	return i
}

func pcs(stops []asmInstruction) []uint64 {
	var out []uint64
	for _, s := range stops {
		out = append(out, s.Loc.PC)
	}
	return out
}

// Go 1.24's code for `if cntr, err = c.client.NewContainer(ctx, id, opts...); err != nil {` (amd64, -N -l): the
// call, its results stored, the test and both branches on the call's line. The next line in memory (264) is
// the error branch; the statement after the if (266) is the jump's target.
func TestAfterCallFindsBothWaysOfAnIfOnTheCallsLine(t *testing.T) {
	code := []asmInstruction{
		ins(0x100, 262, "mov 0x1dd0(%rsp),%rcx"),
		ins(0x108, 263, "callq $containerd.(*Client).NewContainer", "containerd.(*Client).NewContainer"),
		ins(0x10d, 263, "mov %rax,0x1d58(%rsp)"),
		ins(0x115, 263, "test %rdx,%rdx"),
		ins(0x118, 263, "jne $0x11f"),
		ins(0x11a, 263, "jmpq $0x140"),
		ins(0x11f, 264, "movups %xmm15,0xd20(%rsp)"),
		ins(0x128, 264, "retq"),
		ins(0x140, 266, "movups %xmm15,0xd20(%rsp)"),
	}
	code[5].DestLoc = &location{PC: 0x140}
	call := findCall(code, []string{"other.F", "containerd.(*Client).NewContainer"})
	if call != 1 {
		t.Fatalf("findCall = %d, want 1", call)
	}
	if got := pcs(afterCallStops(code, call)); !reflect.DeepEqual(got, []uint64{0x11f, 0x140}) {
		t.Fatalf("stops = %#x, want [0x11f 0x140]", got)
	}
}

// `image, err := c.localResolve(ref)`, then `if err != nil {` on the next line: the results go through write
// barriers (both paths join again on the call's line) and the code goes on at the next line, once.
func TestAfterCallFollowsWriteBarriersToTheNextLine(t *testing.T) {
	code := []asmInstruction{
		ins(0x200, 97, "callq $server.(*criService).localResolve", "server.(*criService).localResolve"),
		ins(0x205, 97, "callq $0xdf9fc2", "runtime.duffcopy"),
		ins(0x20a, 97, "cmpl $0x0,runtime.writeBarrier"),
		ins(0x211, 97, "je $0x215"),
		ins(0x213, 97, "jmp $0x217"),
		ins(0x215, 97, "jmp $0x230"),
		ins(0x217, 97, "callq $runtime.wbMove", "runtime.wbMove"),
		ins(0x21c, 97, "jmp $0x230"),
		ins(0x230, 97, "mov %rax,0xc40(%rsp)"),
		ins(0x238, 98, "cmpq $0x0,0xc40(%rsp)"),
	}
	if got := pcs(afterCallStops(code, 0)); !reflect.DeepEqual(got, []uint64{0x238}) {
		t.Fatalf("stops = %#x, want [0x238]", got)
	}
}

// A bounds check on the call's line jumps to an out-of-line panic: that path ends there, with no stop at
// whatever line follows the panic call in memory.
func TestAfterCallEndsPathsAtPanics(t *testing.T) {
	code := []asmInstruction{
		ins(0x300, 50, "callq $pkg.f", "pkg.f"),
		ins(0x305, 50, "cmp %rcx,%rax"),
		ins(0x308, 50, "jae $0x400"),
		ins(0x30a, 51, "mov %rax,%rbx"),
		ins(0x3f0, 70, "retq"),
		ins(0x400, 50, "callq $runtime.panicIndex", "runtime.panicIndex"),
		ins(0x405, 72, "nop"),
	}
	if got := pcs(afterCallStops(code, 0)); !reflect.DeepEqual(got, []uint64{0x30a}) {
		t.Fatalf("stops = %#x, want [0x30a]", got)
	}
}

// arm64's GNU syntax: `bl` calls, `cbnz` and `b` with targets relative to the instruction.
func TestAfterCallReadsArm64Branches(t *testing.T) {
	code := []asmInstruction{
		ins(0x1000, 263, "bl .+0x4000", "containerd.(*Client).NewContainer"),
		ins(0x1004, 263, "str x0, [sp,#56]"),
		ins(0x1008, 263, "cbnz x1, .+0x8"),
		ins(0x100c, 263, "b .+0x14"),
		ins(0x1010, 264, "mov x0, x1"),
		ins(0x1014, 264, "ret"),
		ins(0x1020, 266, "mov x2, x3"),
	}
	if call := findCall(code, []string{"containerd.(*Client).NewContainer"}); call != 0 {
		t.Fatalf("findCall = %d, want 0", call)
	}
	if got := pcs(afterCallStops(code, 0)); !reflect.DeepEqual(got, []uint64{0x1010, 0x1020}) {
		t.Fatalf("stops = %#x, want [0x1010 0x1020]", got)
	}
}

func TestFindCallIgnoresCallsToOtherFunctionsAndJumps(t *testing.T) {
	code := []asmInstruction{
		ins(0x10, 1, "jmp $0x20", "pkg.F"),
		ins(0x15, 2, "callq $pkg.g", "pkg.g"),
	}
	if call := findCall(code, []string{"pkg.F"}); call != -1 {
		t.Fatalf("findCall = %d, want -1 (a jump inside F is not a call to F)", call)
	}
}

// FunctionReturnLocations lists each RET and the `CALL runtime.deferreturn` before it; only the RETs are kept.
func TestReturnPointsAreTheReturnInstructions(t *testing.T) {
	code := []asmInstruction{
		ins(0x2d3, 163, "callq $runtime.deferreturn", "runtime.deferreturn"),
		ins(0x2d8, 163, "mov 0x8(%rsp),%rax"),
		ins(0x2f8, 163, "retq"),
		ins(0x380, 344, "callq $runtime.deferreturn", "runtime.deferreturn"),
		ins(0x3a5, 344, "retq"),
	}
	kept, lines := returnInstructions(code, []uint64{0x2f8, 0x3a5, 0x2d3, 0x380})
	if !reflect.DeepEqual(kept, []uint64{0x2f8, 0x3a5}) {
		t.Fatalf("kept = %#x, want [0x2f8 0x3a5]", kept)
	}
	if lines[0x3a5] != 344 {
		t.Fatalf("line of 0x3a5 = %d, want 344", lines[0x3a5])
	}
	// A disassembly that shows no return instruction (another syntax): every address is kept.
	if kept, _ := returnInstructions(code[:2], []uint64{0x2d3}); !reflect.DeepEqual(kept, []uint64{0x2d3}) {
		t.Fatalf("kept = %#x, want [0x2d3]", kept)
	}
}

func TestBranchTargets(t *testing.T) {
	for _, c := range []struct {
		pc      uint64
		operand string
		want    uint64
	}{
		{0, "$0x2ad3906", 0x2ad3906},
		{0, "0x40", 0x40},
		{0x1000, ".+0x14", 0x1014},
		{0x1000, ".-0x10", 0xff0},
		{0, "*%rax", 0},
		{0, "x0", 0},
	} {
		if got := branchTarget(c.pc, c.operand); got != c.want {
			t.Errorf("branchTarget(%#x, %q) = %#x, want %#x", c.pc, c.operand, got, c.want)
		}
	}
}
