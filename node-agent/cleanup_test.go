package main

import (
	"reflect"
	"testing"
	"time"
)

func TestSafeDetachClearsSettlesAndNeverKills(t *testing.T) {
	f, address := startFakeDelve(t, 1, 2, -1, -2)
	cleared, err := safeDetach(address, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if cleared != 2 {
		t.Fatalf("cleared %d breakpoints, want 2 (positive ids only)", cleared)
	}
	calls, ids, kills := f.snapshot()
	if !reflect.DeepEqual(ids, []int{1, 2}) {
		t.Errorf("cleared ids %v, want [1 2]", ids)
	}
	if !reflect.DeepEqual(kills, []bool{false}) {
		t.Errorf("Detach calls with Kill %v, want exactly one with Kill:false", kills)
	}
	want := []string{"State", "ListBreakpoints", "ClearBreakpoint", "ClearBreakpoint", "Command continue", "Command halt", "Detach"}
	if !reflect.DeepEqual(calls, want) {
		t.Errorf("calls %v, want %v", calls, want)
	}
}

func TestSafeDetachFailsOnPurposeUnderTheFaultSwitch(t *testing.T) {
	f, address := startFakeDelve(t, 1)
	t.Setenv("CTRDBG_AGENT_FAULT", "cleanup")
	if _, err := safeDetach(address, time.Second); err == nil {
		t.Fatal("want an error")
	}
	if calls, _, _ := f.snapshot(); len(calls) != 0 {
		t.Errorf("the failed cleanup still called dlv: %v", calls)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, good := range []string{"127.0.0.1:0", "127.0.0.1:4000"} {
		if _, _, err := loopbackOnly(good); err != nil {
			t.Errorf("%s: %v", good, err)
		}
	}
	for _, bad := range []string{"0.0.0.0:4000", "10.0.0.1:1", "localhost:1", "[::1]:1", "127.0.0.1:x", "127.0.0.1"} {
		if _, _, err := loopbackOnly(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestProtocolDescriptionNamesEveryReason(t *testing.T) {
	d := describeProtocol()
	if d.Version != ProtocolVersion || len(d.ExitReasons) != 4 || len(d.RelayActions) != 3 {
		t.Errorf("unexpected description %+v", d)
	}
}

func TestStopWithoutARecordingIsANoOp(t *testing.T) {
	d := &debuggee{pid: 1}
	d.requestStop() // a `stop` before any `record` (sets check): must not panic
	d.stopRecording(time.Millisecond)
}
