package main

// The recording loop, on the node: continue → a stop with the values Delve captured at the hit → continue
// again at once → hand the hit to the emitter, which never makes the loop wait for ctrdbg. Every thread stopped at
// one of ctrdbg's breakpoints is a hit (concurrent callers stop together). The loop ends at --max-hits (the process
// stays stopped there, for a hand-over or the detach), on "stop" (a natural stop is awaited briefly, else halt),
// or when the process exits.

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"
)

// armedBreakpoint is one Delve breakpoint ctrdbg created, and what re-creates it.
type armedBreakpoint struct {
	logical int // the id ctrdbg knows it by
	request map[string]interface{}
}

// debuggee is one process dlv is attached to (containerd, or a followed shim).
type debuggee struct {
	pid      int
	binary   string
	address  string
	client   *dlvClient
	armed    map[int]*armedBreakpoint // Delve's current id → breakpoint
	attached time.Time                // when dlv started attaching (the process is stopped from about then)
	dlvReady time.Time
	dlv      *dlvProcess

	mu        sync.Mutex
	recording bool
	stopReq   chan struct{}
	stopOnce  sync.Once
	done      chan struct{}
}

// recordOptions are what `record` asked for.
type recordOptions struct {
	maxHits    int
	returnInfo *loadConfig
	rearmAfter int
	follow     *follower
	// Hit times count from here (a followed shim's hits share containerd's clock); zero = this loop's start.
	epoch time.Time
}

// abortGrace: on "stop", how long the outstanding continue may take to end at a natural stop before a halt.
// Delve's halt is kill(pid, SIGTRAP); one that reaches a process which has just stopped by itself stays pending,
// and the safe detach absorbs it (settleAndStop) — the wait only makes that rarer.
const abortGrace = 250 * time.Millisecond

// requestStop asks a running loop to end; a debuggee that never recorded has nothing to stop.
func (d *debuggee) requestStop() {
	d.mu.Lock()
	stopReq := d.stopReq
	d.mu.Unlock()
	if stopReq == nil {
		return
	}
	d.stopOnce.Do(func() { close(stopReq) })
}

// record runs the loop until it ends; it emits "recording started", the hits, and "recording stopped".
func (d *debuggee) record(events *emitter, opts recordOptions) {
	d.mu.Lock()
	if d.recording {
		d.mu.Unlock()
		return
	}
	d.recording = true
	d.stopReq = make(chan struct{})
	d.stopOnce = sync.Once{}
	d.done = make(chan struct{})
	d.mu.Unlock()
	defer close(d.done)

	started := time.Now()
	epoch := opts.epoch
	if epoch.IsZero() {
		epoch = started
	}
	events.control(RecordingEvent{
		Event:       EventRecording,
		State:       "started",
		Pid:         d.pid,
		PausedMs:    ms(started.Sub(d.attached)),
		DlvAttachMs: ms(d.dlvReady.Sub(d.attached)),
	})
	end := RecordingEvent{Event: EventRecording, State: "stopped", Pid: d.pid, PerBreakpoint: map[string]int{}}
	finish := func(reason string, err error) {
		end.Reason = reason
		if err != nil {
			end.Message = err.Error()
		}
		end.Dropped = events.droppedTotal()
		end.QueuedPeakBytes = events.peakBytes()
		events.control(end)
	}

	var pending []HitEvent
	heldSince := time.Now() // the process is stopped now (attached, armed)
	flush := func(holdUs int64) {
		for i := range pending {
			pending[i].HoldUs = holdUs
			pending[i].Thread = stripHitCounts(pending[i].Thread)
			events.hit(pending[i].Breakpoint, pending[i])
		}
		pending = pending[:0]
	}
	for {
		select {
		case <-d.stopReq:
			// Stopped between stops: the last stop's hits still go out (the process stays stopped for the detach).
			flush(time.Since(heldSince).Microseconds())
			finish("stopped", nil)
			return
		default:
		}
		call := d.client.continueTarget(opts.returnInfo)
		// The process runs again from here: the hold of the last stop ends.
		hold := time.Since(heldSince)
		holdUs := hold.Microseconds()
		if len(pending) > 0 {
			end.TotalHoldUs += holdUs
			if holdUs > end.MaxHoldUs {
				end.MaxHoldUs = holdUs
			}
		}
		flush(holdUs)

		var result *continueOut
		var callErr error
		halted := false
		select {
		case <-call.Done:
			callErr = call.Error
			result = call.Reply.(*continueOut)
		case <-d.stopReq:
			// Give the outstanding continue a moment to end at a natural stop (recorded as usual), else halt.
			select {
			case <-call.Done:
			case <-time.After(abortGrace):
				halted = true
				if err := d.client.halt(); err != nil {
					logf("pid %d: halt: %v", d.pid, err)
				}
				<-call.Done
			}
			callErr = call.Error
			result = call.Reply.(*continueOut)
		}
		heldSince = time.Now()
		if callErr != nil {
			finish("error", callErr)
			return
		}
		state := result.State
		if state.Exited {
			finish("exited", errors.New("the process exited with status "+strconv.Itoa(state.ExitStatus)))
			return
		}
		end.Stops++
		wall := heldSince.UTC().Format(time.RFC3339Nano)
		t := ms(heldSince.Sub(epoch))
		followed := false
		hitsBefore := end.Hits
		seen := map[int]bool{}
		// Re-armed after every thread of this stop is read: several threads can stop at one breakpoint together.
		rearm := map[int]bool{}
		for _, raw := range state.Threads {
			// Most threads are not at a breakpoint: skip them without decoding.
			if !bytes.Contains(raw, []byte(`"breakPoint":{`)) {
				continue
			}
			var head threadHead
			if err := json.Unmarshal(raw, &head); err != nil || head.BreakPoint == nil || seen[head.ID] {
				continue
			}
			seen[head.ID] = true
			armed := d.armed[head.BreakPoint.ID]
			if armed == nil {
				// Delve's own breakpoints have negative ids: the process hit an unrecovered panic or a fatal throw.
				// ctrdbg says so; another client's breakpoints are not ours to record.
				if head.BreakPoint.ID < 0 {
					pending = append(pending, HitEvent{Event: EventHit, Pid: d.pid, Breakpoint: head.BreakPoint.ID, Stop: end.Stops, T: t, Wall: wall, Thread: raw})
				}
				continue
			}
			if opts.follow != nil && opts.follow.isTrigger(armed.logical) {
				followed = true
				continue
			}
			end.Hits++
			end.PerBreakpoint[strconv.Itoa(armed.logical)]++
			pending = append(pending, HitEvent{
				Event: EventHit, Pid: d.pid, Breakpoint: armed.logical, Stop: end.Stops, T: t, Wall: wall,
				Thread: raw, // trimmed in flush, once the process runs again
			})
			if opts.rearmAfter > 0 && len(head.BreakPoint.HitCount) >= opts.rearmAfter {
				rearm[head.BreakPoint.ID] = true
			}
			if opts.maxHits > 0 && end.Hits >= opts.maxHits {
				break
			}
		}
		for id := range rearm {
			if d.rearm(id) {
				end.Rearms++
			}
		}
		if halted && end.Hits == hitsBefore {
			// This stop is the halt that ends the loop, not a hit: the summary says so.
			end.HaltStops++
		}
		if followed {
			opts.follow.attachNewShims(events)
		}
		if opts.maxHits > 0 && end.Hits >= opts.maxHits {
			// Stay stopped: the caller hands over or detaches from this fully stopped state.
			flush(0)
			finish("max-hits", nil)
			return
		}
	}
}

// rearm clears breakpoint id and creates it again with the same request, while the process is stopped anyway:
// a fresh breakpoint has an empty per-goroutine hit count map. Hits keep the id ctrdbg knows.
func (d *debuggee) rearm(id int) bool {
	armed := d.armed[id]
	if armed == nil {
		return false
	}
	if err := d.client.clearBreakpoint(id); err != nil {
		logf("pid %d: re-arm: clear %d: %v", d.pid, id, err)
		return false
	}
	delete(d.armed, id)
	bp, err := d.client.createBreakpoint(armed.request)
	if err != nil {
		// The location is unarmed now; say so in the log, and keep recording the others.
		logf("pid %d: re-arm: create again: %v", d.pid, err)
		return false
	}
	d.armed[bp.ID] = armed
	return true
}

// stripHitCounts keeps what ctrdbg reads of a stopped thread (its place, goroutine, breakpoint and the values
// captured there), and of its breakpoint only the identity: Delve's per-goroutine hit counts grow with every
// goroutine that ever hit, and nobody needs them.
func stripHitCounts(raw json.RawMessage) json.RawMessage {
	var thread map[string]json.RawMessage
	if json.Unmarshal(raw, &thread) != nil {
		return raw
	}
	out := map[string]json.RawMessage{}
	for _, k := range []string{"id", "pc", "file", "line", "goroutineID", "breakPointInfo"} {
		if v, ok := thread[k]; ok {
			out[k] = v
		}
	}
	if fn, ok := thread["function"]; ok {
		var f struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(fn, &f) == nil {
			out["function"], _ = json.Marshal(f)
		}
	}
	if bp, ok := thread["breakPoint"]; ok {
		var fields map[string]json.RawMessage
		if json.Unmarshal(bp, &fields) == nil {
			keep := map[string]json.RawMessage{}
			for _, k := range []string{"id", "name", "addr", "file", "line", "functionName"} {
				if v, ok := fields[k]; ok {
					keep[k] = v
				}
			}
			out["breakPoint"], _ = json.Marshal(keep)
		}
	}
	trimmed, err := json.Marshal(out)
	if err != nil {
		return raw
	}
	return trimmed
}

func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
