package main

// Following shims (issue: a container's stdio is set up in containerd-shim-runc-v2, a process of its own).
// Filled in by the shim support; a recording without `follow` never uses it.

type follower struct {
	triggers map[int]bool
	attach   func(events *emitter)
}

func (f *follower) isTrigger(id int) bool { return f != nil && f.triggers[id] }

func (f *follower) attachNewShims(events *emitter) {
	if f != nil && f.attach != nil {
		f.attach(events)
	}
}

func newFollower(s *session, spec *FollowSpec, returnInfo *loadConfig, rearmAfter int) *follower {
	f := &follower{triggers: map[int]bool{}}
	for _, id := range spec.Breakpoints {
		f.triggers[id] = true
	}
	return f
}
