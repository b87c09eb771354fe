/**
 * "3 hits in 4 stops" explained: the recording loop (ctrdbg's side) counts what each stop was — a recorded
 * hit, a shared breakpoint whose entries' conditions all failed, an onlyFailures return that succeeded, a panic,
 * the agent's final halt — and the summary says it in words. Driven with the agent's events, as the agent
 * streams them.
 */
import { describe, expect, it } from 'vitest';
import type { AgentEvent, HitEvent, RecordingEvent } from '../../src/delve/agentProtocol.js';
import {
  type ArmedBreakpoint,
  type ArmedLocation,
  explainStops,
  type RecordOutcome,
  recordHits,
} from '../../src/record/recorder.js';

function entry(name: string, extra: Partial<ArmedBreakpoint> = {}): ArmedBreakpoint {
  return {
    id: 1,
    name,
    set: 's',
    entry: name,
    function: 'p.F',
    file: 'f.go',
    line: 1,
    optimized: false,
    expressions: [],
    redact: [],
    params: [],
    loadArgs: false,
    loadLocals: false,
    stack: 0,
    onlyFailures: false,
    ...extra,
  };
}

/** Feeds `events` to recordHits as the agent would, after its `record` command. */
async function record(armed: Map<number, ArmedLocation>, events: AgentEvent[]): Promise<RecordOutcome> {
  let listeners: { onHit(e: HitEvent): void; onRecording(e: RecordingEvent): void } | undefined;
  const dbg = {
    subscribe(l: typeof listeners) {
      listeners = l;
      return () => undefined;
    },
    onLost() {},
    async command(body: { cmd: string }) {
      if (body.cmd === 'record')
        queueMicrotask(() => {
          for (const e of events) {
            if (e.event === 'hit') listeners?.onHit(e);
            if (e.event === 'recording') listeners?.onRecording(e);
          }
        });
      return undefined;
    },
  };
  return recordHits({
    dbg: dbg as never,
    armed,
    fieldNameRedaction: true,
    signal: new AbortController().signal,
    startedAt: 0,
  });
}

const hit = (bp: number, stop: number, variables: { name: string; value: string }[] = []): HitEvent => ({
  event: 'hit',
  pid: 1,
  bp,
  stop,
  t: stop,
  wall: '2026-01-01T00:00:00Z',
  holdUs: 100,
  thread: { id: stop, goroutineID: 10 + stop, file: 'f.go', line: 1, breakPointInfo: { variables } },
});

describe('what the stops were', () => {
  it('3 hits in 4 stops: the 4th was the halt that ended the recording', async () => {
    const armed = new Map([[1, { id: 1, entries: [entry('a')], redact: [] }]]);
    const outcome = await record(armed, [
      { event: 'recording', state: 'started', pid: 1 },
      hit(1, 1),
      hit(1, 2),
      hit(1, 3),
      { event: 'recording', state: 'stopped', pid: 1, reason: 'stopped', hits: 3, stops: 4, haltStops: 1 },
    ]);
    expect(outcome.hits).toBe(3);
    expect(outcome.stopKinds).toEqual({
      recorded: 3,
      hitThreads: 3,
      noEntry: 0,
      filtered: 0,
      halts: 1,
      panics: 0,
      shimHits: 0,
    });
    expect(explainStops(outcome.hits, outcome.stops, outcome.stopKinds)).toBe(
      '1 stop was the halt that ended the recording',
    );
  });

  it('a shared breakpoint whose entries all refused, callers stopped together, one stop for two entries', async () => {
    const shared: ArmedLocation = {
      id: 1,
      entries: [entry('x', { condition: 'a == 1' }), entry('y', { condition: 'b == 2' })],
      redact: [],
    };
    const outcome = await record(new Map([[1, shared]]), [
      { event: 'recording', state: 'started', pid: 1 },
      // stop 1: neither condition held (the breakpoint's condition is their disjunction, evaluated per stop).
      hit(1, 1, [
        { name: 'a == 1', value: 'false' },
        { name: 'b == 2', value: 'false' },
      ]),
      // stop 2: two callers stopped together; the second counts for both entries.
      hit(1, 2, [
        { name: 'a == 1', value: 'true' },
        { name: 'b == 2', value: 'false' },
      ]),
      hit(1, 2, [
        { name: 'a == 1', value: 'true' },
        { name: 'b == 2', value: 'true' },
      ]),
      { event: 'recording', state: 'stopped', pid: 1, reason: 'stopped', hits: 3, stops: 2 },
    ]);
    expect(outcome.hits).toBe(3);
    expect(outcome.stopKinds).toMatchObject({ recorded: 1, hitThreads: 2, noEntry: 1, halts: 0 });
    expect(explainStops(outcome.hits, outcome.stops, outcome.stopKinds)).toBe(
      "1 stop was at a shared breakpoint where no entry's own condition held; " +
        '1 hit came in a stop with another (callers stopped together); ' +
        '1 hit was one stop counted for another entry (sets sharing a breakpoint)',
    );
  });

  it('onlyFailures returns that succeeded, a panic, and a stop at no breakpoint of ours', () => {
    expect(
      explainStops(1, 5, {
        recorded: 1,
        hitThreads: 1,
        noEntry: 0,
        filtered: 2,
        halts: 0,
        panics: 1,
        shimHits: 0,
      }),
    ).toBe(
      '2 stops were at onlyFailures returns that succeeded (left out); 1 stop was at a panic or fatal error; ' +
        "1 stop was at no breakpoint of ctrdbg's (another client's breakpoint or halt)",
    );
  });

  it('one hit per stop needs no explanation', () => {
    expect(
      explainStops(2, 2, {
        recorded: 2,
        hitThreads: 2,
        noEntry: 0,
        filtered: 0,
        halts: 0,
        panics: 0,
        shimHits: 0,
      }),
    ).toBeUndefined();
  });
});
