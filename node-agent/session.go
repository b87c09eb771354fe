package main

// The agent's side of an attach: the commands ctrdbg sends (resolve, create, record, stop), the debugged processes
// (containerd, and shims it follows), and the way out that leaves every one of them running and untraced.

import (
	"fmt"
	"sync"
	"syscall"
	"time"
)

type session struct {
	events    *emitter
	cfg       watchdogConfig
	mu        sync.Mutex
	primary   *debuggee
	debuggees map[int]*debuggee
	follow    *follower
	closing   bool      // shutting down: no new debuggee
	epoch     time.Time // when the recording started: every process's hit times count from it
}

func (s *session) serve(commands <-chan Command) {
	for c := range commands {
		d := s.primary
		switch c.Cmd {
		case CmdResolve, CmdCreate:
			if d.isRecording() {
				s.events.control(FailedEvent{Event: EventFailed, ID: c.ID, Cmd: c.Cmd, Message: "the process is running (recording); stop first"})
				continue
			}
			started := time.Now()
			if c.Cmd == CmdResolve {
				points := make([]ResolvedPoint, 0, len(c.Points))
				for _, p := range c.Points {
					points = append(points, resolvePoint(d.client, p))
				}
				answer := ResolvedEvent{Event: EventResolved, ID: c.ID, Pid: d.pid, Points: points}
				if c.Packages {
					names, err := d.client.packageNames()
					if err != nil {
						logf("pid %d: ListPackagesBuildInfo: %v", d.pid, err)
					}
					answer.Packages = names
				}
				answer.Ms = ms(time.Since(started))
				s.events.control(answer)
			} else {
				created := createBreakpoints(d, c.Breakpoints)
				s.events.control(CreatedEvent{Event: EventCreated, ID: c.ID, Pid: d.pid, Breakpoints: created, Ms: ms(time.Since(started))})
			}
		case CmdRecord:
			s.epoch = time.Now()
			opts := recordOptions{maxHits: c.MaxHits, returnInfo: c.ReturnInfo, rearmAfter: c.RearmAfter, epoch: s.epoch}
			if c.Follow != nil {
				s.follow = newFollower(s, c.Follow, c.ReturnInfo, c.RearmAfter)
				opts.follow = s.follow
			}
			go d.record(s.events, opts)
			if s.follow != nil {
				go s.follow.attachExisting(s.events)
			}
		case CmdStop:
			for _, dd := range s.all() {
				dd.requestStop()
			}
		default:
			s.events.control(FailedEvent{Event: EventFailed, ID: c.ID, Cmd: c.Cmd, Message: "unknown command"})
		}
	}
}

func (s *session) all() []*debuggee {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*debuggee, 0, len(s.debuggees))
	for _, d := range s.debuggees {
		out = append(out, d)
	}
	return out
}

func (d *debuggee) isRecording() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.recording && !closedChan(d.done)
}

func closedChan(c chan struct{}) bool {
	if c == nil {
		return true
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// stopRecording asks a debuggee's loop to end and waits for it (bounded): the safe detach must not race a loop
// that could continue the process again.
func (d *debuggee) stopRecording(timeout time.Duration) {
	d.mu.Lock()
	recording, done := d.recording, d.done
	d.mu.Unlock()
	if !recording || done == nil {
		return
	}
	d.requestStop()
	select {
	case <-done:
	case <-time.After(timeout):
		logf("pid %d: the recording loop did not stop within %s", d.pid, timeout)
	}
}

// shutdown leaves every debugged process the safe way and reports how, in the last event.
func (s *session) shutdown(trigger string) int {
	followed := []FollowedExit{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	// A shim being attached right now either finishes (and is detached below) or leaves by itself.
	s.follow.stop(30 * time.Second)
	for _, d := range s.all() {
		d.stopRecording(5 * time.Second)
	}
	for _, d := range s.all() {
		if d == s.primary {
			continue
		}
		wg.Add(1)
		go func(d *debuggee) {
			defer wg.Done()
			reason, cleared, dlvErr, msg := s.detach(d)
			mu.Lock()
			followed = append(followed, FollowedExit{Pid: d.pid, Binary: d.binary, Reason: reason, Cleared: cleared, Target: targetState(d.pid), DlvError: dlvErr, Message: msg})
			mu.Unlock()
		}(d)
	}
	wg.Wait()
	reason, cleared, dlvErr, msg := s.detach(s.primary)
	exit := ExitEvent{Event: EventExit, Reason: reason, Cleared: cleared, Target: targetState(s.primary.pid), Trigger: trigger, DlvError: dlvErr, Message: msg}
	if reason == ExitDlvLeftRunning {
		exit.DlvPid = s.primary.dlv.cmd.Process.Pid
	}
	if len(followed) > 0 {
		exit.Followed = followed
	}
	s.events.control(exit)
	switch reason {
	case ExitTerminated:
		return exitTerminated
	case ExitDlvLeftRunning:
		return exitDlvLeftOver
	}
	return exitOK
}

// stopFollowed detaches the followed shims when containerd's dlv went away by itself.
func (s *session) stopFollowed() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.follow.stop(30 * time.Second)
	for _, d := range s.all() {
		if d != s.primary {
			d.stopRecording(5 * time.Second)
			s.detach(d)
		}
	}
}

// detach ends one dlv the safe way: the RPC cleanup, SIGTERM only as the fallback, never SIGKILL.
func (s *session) detach(d *debuggee) (ExitReason, int, string, string) {
	return s.detachDlv(d.dlv, d.address, d.pid)
}

func (s *session) detachDlv(p *dlvProcess, address string, pid int) (ExitReason, int, string, string) {
	// dlv may have gone already: a client (through a relay) detached it just before ctrdbg left.
	select {
	case err := <-p.exited:
		p.exited <- err
		return ExitDlvExited, -1, errText(err), ""
	default:
	}
	cleared := -1
	if address != "" {
		n, err := safeDetach(address, s.cfg.cleanupTimeout)
		cleared = n
		if err == nil {
			select {
			case <-p.exited:
				return ExitDetached, n, "", ""
			case <-time.After(s.cfg.cleanupTimeout):
				logf("dlv for %d did not exit after Detach", pid)
			}
		} else {
			logf("pid %d: cleanup over RPC failed: %v", pid, err)
		}
	}
	// Fallback: a headless dlv that gets SIGTERM detaches from the target without killing it.
	logf("sending SIGTERM to dlv (pid %d)", p.cmd.Process.Pid)
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		return ExitTerminated, cleared, errText(err), ""
	case <-time.After(s.cfg.cleanupTimeout):
	}
	// dlv ignores SIGTERM. Killing it now would leave int3 instructions in the target if breakpoints are still
	// set, so leave it running and say so; ctrdbg reports the pid for a human to handle.
	msg := fmt.Sprintf("dlv (pid %d) did not exit after SIGTERM; left running", p.cmd.Process.Pid)
	logf("%s", msg)
	return ExitDlvLeftRunning, cleared, "", msg
}

// stopDlv ends a dlv that never became a debuggee (a failed start).
func (s *session) stopDlv(p *dlvProcess, address string, pid int, trigger string) int {
	reason, cleared, dlvErr, msg := s.detachDlv(p, address, pid)
	s.events.control(ExitEvent{Event: EventExit, Reason: reason, Cleared: cleared, Target: targetState(pid), Trigger: trigger, DlvError: dlvErr, Message: msg})
	if reason == ExitDetached {
		return exitFailure
	}
	if reason == ExitTerminated {
		return exitTerminated
	}
	return exitDlvLeftOver
}
