package main

// The agent's stdout toward ctrdbg, which the recording loop must never wait for: hits go into a bounded queue
// that a writer drains; when it is full (ctrdbg does not keep up, or stopped reading), a hit is not queued but
// counted, per breakpoint, and the counts reach ctrdbg in a "dropped" event and in the recording's end. Control
// events (answers to commands, the end of a recording) are always queued: there are few of them.

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

type emitter struct {
	mu       sync.Mutex
	wake     *sync.Cond
	queue    [][]byte
	bytes    int
	maxBytes int
	dropped  map[int]int // breakpoint → hits not queued since the last "dropped" event
	total    int         // hits not queued, in all
	peak     int         // the most bytes ever waiting for ctrdbg at once
	out      io.Writer
	closed   bool
	drained  chan struct{}
}

func newEmitter(out io.Writer, maxBytes int) *emitter {
	e := &emitter{out: out, maxBytes: maxBytes, dropped: map[int]int{}, drained: make(chan struct{})}
	e.wake = sync.NewCond(&e.mu)
	go e.drain()
	return e
}

func encode(event interface{}) []byte {
	line, err := json.Marshal(event)
	if err != nil {
		logf("cannot encode event: %v", err)
		return nil
	}
	return append(line, '\n')
}

// control queues an event whatever the queue holds.
func (e *emitter) control(event interface{}) {
	line := encode(event)
	if line == nil {
		return
	}
	e.mu.Lock()
	e.queue = append(e.queue, line)
	e.bytes += len(line)
	e.mu.Unlock()
	e.wake.Signal()
}

// hit queues a hit unless the queue is full; then it is counted as dropped for breakpoint bp. Never blocks.
func (e *emitter) hit(bp int, event interface{}) bool {
	line := encode(event)
	e.mu.Lock()
	if line == nil || e.bytes+len(line) > e.maxBytes {
		e.dropped[bp]++
		e.total++
		e.mu.Unlock()
		return false
	}
	e.queue = append(e.queue, line)
	e.bytes += len(line)
	if e.bytes > e.peak {
		e.peak = e.bytes
	}
	e.mu.Unlock()
	e.wake.Signal()
	return true
}

// peakBytes is the most that waited for ctrdbg at once (how far a slow reader fell behind).
func (e *emitter) peakBytes() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.peak
}

// droppedTotal is how many hits could not be queued since the emitter started.
func (e *emitter) droppedTotal() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.total
}

func (e *emitter) drain() {
	for {
		e.mu.Lock()
		for len(e.queue) == 0 && !e.closed {
			e.wake.Wait()
		}
		if len(e.queue) == 0 && e.closed {
			e.mu.Unlock()
			close(e.drained)
			return
		}
		line := e.queue[0]
		e.queue = e.queue[1:]
		e.bytes -= len(line)
		var notice []byte
		// Room again after hits were dropped: say so before the next hits, with the counts.
		if len(e.dropped) > 0 && e.bytes < e.maxBytes/2 {
			counts := map[string]int{}
			n := 0
			for bp, c := range e.dropped {
				counts[itoa(bp)] = c
				n += c
			}
			notice = encode(DroppedEvent{Event: EventDropped, Count: n, PerBreakpoint: counts})
			e.dropped = map[int]int{}
		}
		e.mu.Unlock()
		e.out.Write(line)
		if notice != nil {
			e.out.Write(notice)
		}
	}
}

// close writes out what is queued (the exit event last), waiting at most a few seconds: a reader that is gone
// (a broken SSH channel) fails the writes at once, and a stalled one must not keep the agent from exiting.
func (e *emitter) close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.wake.Broadcast()
	select {
	case <-e.drained:
	case <-time.After(5 * time.Second):
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
