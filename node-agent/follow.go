package main

// Following shims. A container's stdio is set up in containerd-shim-runc-v2, a process of its own that containerd
// starts for each pod (a pod's containers share it). With a `follow` spec, the agent attaches a dlv of its own to
// every shim of this containerd: those already running when the recording starts, and each new one while
// containerd is held at a trigger breakpoint (containerd has started the shim but not yet sent it Create), so the
// shim is armed before it serves that request. Every shim gets the same breakpoints, with the ids ctrdbg gave
// them, and its own recording loop; its hits carry its pid. The way out (session.shutdown) detaches every one.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

type follower struct {
	s          *session
	spec       *FollowSpec
	triggers   map[int]bool
	returnInfo *loadConfig
	rearmAfter int

	mu       sync.Mutex
	known    map[int]bool // shims attached, being attached, or given up on
	closing  bool
	inflight sync.WaitGroup // follows under way (shutdown waits for them)
}

func newFollower(s *session, spec *FollowSpec, returnInfo *loadConfig, rearmAfter int) *follower {
	f := &follower{s: s, spec: spec, triggers: map[int]bool{}, returnInfo: returnInfo, rearmAfter: rearmAfter, known: map[int]bool{}}
	for _, id := range spec.Breakpoints {
		f.triggers[id] = true
	}
	return f
}

func (f *follower) isTrigger(id int) bool { return f != nil && f.triggers[id] }

// attachNewShims runs while containerd is stopped at a trigger: every shim of this containerd not seen yet is
// attached and armed before containerd goes on.
func (f *follower) attachNewShims(events *emitter) {
	if f == nil {
		return
	}
	for _, pid := range f.claim(shimsOf(f.spec.Socket)) {
		f.follow(pid, events, false)
	}
}

// attachExisting attaches, in the background, to the shims that were running before the recording started.
func (f *follower) attachExisting(events *emitter) {
	pids := f.claim(shimsOf(f.spec.Socket))
	var wg sync.WaitGroup
	for _, pid := range pids {
		wg.Add(1)
		go func(pid int) {
			defer wg.Done()
			f.follow(pid, events, true)
		}(pid)
	}
	wg.Wait()
}

// claim marks pids as known and returns those that were not.
func (f *follower) claim(pids []int) []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing {
		return nil
	}
	out := []int{}
	for _, pid := range pids {
		if !f.known[pid] {
			f.known[pid] = true
			f.inflight.Add(1)
			out = append(out, pid)
		}
	}
	return out
}

// stop: no shim is attached from now on (the session is shutting down); waits, bounded, for follows under way.
func (f *follower) stop(timeout time.Duration) {
	if f == nil {
		return
	}
	f.mu.Lock()
	f.closing = true
	f.mu.Unlock()
	done := make(chan struct{})
	go func() {
		f.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		logf("shims still being attached after %s", timeout)
	}
}

// follow attaches a dlv to one shim, resolves and creates the spec's breakpoints there, and starts its loop.
func (f *follower) follow(pid int, events *emitter, existing bool) {
	started := time.Now()
	ev := FollowedEvent{Event: EventFollowed, Pid: pid, Binary: exeOf(pid), ID: shimID(pid), Existing: existing}
	fail := func(err error) {
		ev.Error = err.Error()
		ev.HeldMs = ms(time.Since(started))
		logf("shim %d: %v", pid, err)
		events.control(ev)
	}
	defer f.inflight.Done()
	if tp, _ := tracerPid(pid); tp != 0 {
		fail(fmt.Errorf("already traced by pid %d", tp))
		return
	}
	dlv, address, err := startDlv(f.s.cfg, pid, nil)
	if err != nil {
		if dlv != nil {
			f.s.detachDlv(dlv, "", pid)
		}
		fail(err)
		return
	}
	d := &debuggee{pid: pid, binary: ev.Binary, address: address, armed: map[int]*armedBreakpoint{}, attached: started, dlv: dlv}
	client, err := dialDelve(address)
	if err == nil {
		var dv versionOut
		err = client.call("GetVersion", map[string]interface{}{}, &dv, 60*time.Second)
	}
	d.dlvReady = time.Now()
	if err != nil {
		f.s.detachDlv(dlv, address, pid)
		fail(fmt.Errorf("cannot talk to its dlv: %v", err))
		return
	}
	d.client = client
	if !f.s.add(d) {
		// The session is shutting down: leave this shim at once.
		f.s.detach(d)
		return
	}
	resolved := map[string]ResolvedPoint{}
	for _, p := range f.spec.Points {
		r := resolvePoint(client, p)
		resolved[r.Key] = r
		ev.Points = append(ev.Points, r)
	}
	specs := make([]BreakpointSpec, 0, len(f.spec.Create))
	for _, c := range f.spec.Create {
		r, ok := resolved[c.Key]
		if !ok || !r.Found {
			continue
		}
		c.Addrs = r.Addrs
		specs = append(specs, c)
	}
	ev.Breakpoints = createBreakpoints(d, specs)
	ev.HeldMs = ms(time.Since(started))
	events.control(ev)
	go d.record(events, recordOptions{returnInfo: f.returnInfo, rearmAfter: f.rearmAfter, epoch: f.s.epoch})
}

// add registers a followed debuggee unless the session is leaving.
func (s *session) add(d *debuggee) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.debuggees[d.pid] = d
	return true
}

// shimsOf lists the shim processes serving the containerd at socket: a shim's command line names containerd's
// address (`-address <socket>`).
func shimsOf(socket string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	pids := []int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		args := cmdlineOf(pid)
		if len(args) == 0 || !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		for i, a := range args {
			if (a == "-address" || a == "--address") && i+1 < len(args) && args[i+1] == socket {
				pids = append(pids, pid)
				break
			}
			if strings.HasPrefix(a, "-address=") && strings.TrimPrefix(a, "-address=") == socket {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

func cmdlineOf(pid int) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(data) == 0 {
		return nil
	}
	return strings.Split(string(bytes.TrimRight(data, "\x00")), "\x00")
}

// shimID is the shim's `-id` (the sandbox or task it was started for).
func shimID(pid int) string {
	args := cmdlineOf(pid)
	for i, a := range args {
		if a == "-id" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}
