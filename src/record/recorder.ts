/**
 * The recording loop: continue → a stop with the values Delve captured at the hit (one round trip) →
 * continue again at once → write the hit while containerd runs. Every thread stopped at one of our
 * breakpoints is a hit (concurrent callers stop together). The loop never leaves containerd stopped by
 * choice: it ends on abort (halted, then the caller clears and detaches) or at --max-hits (already stopped).
 */
import { performance } from 'node:perf_hooks';
import type { DelveClient } from '../delve/rpcClient.js';
import { nodeError } from '../errors.js';
import type { HitRecord, RecordedBreakpoint, RecordedExpression } from '../recording/format.js';
import type { RecordingWriter } from '../recording/writer.js';
import {
  convertArguments,
  convertStack,
  convertVariable,
  convertVariables,
  type StoppedThread,
  stoppedThreads,
} from './delveValues.js';
import { type RedactionRules, redactExpressions, redactValues } from './redact.js';

/**
 * How long an ended recording waits for a natural stop before halting (see recordHits). Short: a halt that
 * does meet a natural stop leaves a SIGTRAP pending, and the agent's safe detach absorbs that before it detaches
 * (settleAndStop in node-agent/cleanup.go); the wait only makes that rarer.
 */
export const ABORT_GRACE_MS = 250;

/** One set entry armed at a location: what it records there. */
export interface ArmedBreakpoint extends RecordedBreakpoint {
  /** Set-level redaction paths for this entry. */
  redact: string[];
  /** Whether the entry asked for parameters / locals, and how many stack frames. */
  loadArgs: boolean;
  loadLocals: boolean;
  stack: number;
}

/**
 * One Delve breakpoint and every entry it serves: entries of several sets that stop at the same place share
 * one breakpoint (Delve allows one per address), which captures the union of what they ask for. Each hit is
 * written once per entry it serves, with that entry's own expressions, and redacted with the rules of all of
 * them (a shared capture must not leak what one entry redacts through another).
 */
export interface ArmedLocation {
  id: number;
  entries: ArmedBreakpoint[];
  /** The redaction paths of every served entry. */
  redact: string[];
}

export interface RecordOptions {
  client: DelveClient;
  armed: Map<number, ArmedLocation>;
  writer?: RecordingWriter | undefined;
  fieldNameRedaction: boolean;
  maxHits?: number | undefined;
  signal: AbortSignal;
  /** performance.now() at the session's start: hit times are relative to it. */
  startedAt: number;
  onHit?: (hit: HitRecord) => void;
  onPanic?: (what: string) => void;
}

export interface RecordOutcome {
  hits: number;
  perBreakpoint: Record<string, number>;
  reason: 'aborted' | 'max-hits';
  stops: number;
  /** Longest time containerd stayed stopped for one stop, as seen by the client (ms). */
  maxStoppedMs: number;
  totalStoppedMs: number;
  redacted: number;
  /** performance.now() when the last stop was observed (an --interactive hand-over's hold starts there). */
  lastStopAt?: number;
}

interface PendingHit {
  hit: HitRecord;
  observedAt: number;
}

export async function recordHits(options: RecordOptions): Promise<RecordOutcome> {
  const { client, armed, writer, signal } = options;
  const perBreakpoint: Record<string, number> = {};
  let seq = 0;
  let stops = 0;
  let maxStoppedMs = 0;
  let totalStoppedMs = 0;
  let redactedCount = 0;
  let lastStopAt: number | undefined;
  let pending: PendingHit[] = [];

  const flush = (continuedAt: number) => {
    if (pending.length) {
      const stopped = continuedAt - (pending[0]?.observedAt ?? continuedAt);
      maxStoppedMs = Math.max(maxStoppedMs, stopped);
      totalStoppedMs += stopped;
    }
    for (const p of pending) {
      p.hit.stoppedMs = round(continuedAt - p.observedAt);
      writer?.writeHit(p.hit);
      options.onHit?.(p.hit);
    }
    pending = [];
  };

  // Ending a recording halts a running target, but Delve's halt (kill(pid, SIGTRAP) on Linux) must not reach a
  // target that has just stopped at a hit by itself: the SIGTRAP would stay pending and kill containerd later.
  // So an abort first gives the outstanding continue a grace period to end at a natural hit (recorded as usual);
  // only a target with no hits coming is halted. Between continues the target is always stopped.
  const graceful = new AbortController();
  let graceTimer: NodeJS.Timeout | undefined;
  const onAbort = () => {
    graceTimer = setTimeout(() => graceful.abort(signal.reason), ABORT_GRACE_MS);
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await loop();
  } finally {
    if (graceTimer) clearTimeout(graceTimer);
    signal.removeEventListener('abort', onAbort);
  }

  async function loop(): Promise<RecordOutcome> {
    for (;;) {
      if (signal.aborted) {
        flush(performance.now());
        return done('aborted');
      }
      const continuing = client.continue({ signal: graceful.signal });
      flush(performance.now());
      const result = await continuing;
      const observedAt = performance.now();
      // A continue ended by our halt can still carry threads stopped at breakpoints: record them too; the
      // loop's top then ends the recording (the abort is what made us halt).
      if (result.state.exited) {
        throw nodeError(`containerd exited while being debugged (status ${result.state.exitStatus}).`, {
          hint: 'Look at its log; the service manager should restart it.',
        });
      }
      stops++;
      lastStopAt = observedAt;
      const wall = new Date().toISOString();
      for (const stop of stoppedThreads(result.state)) {
        const location = armed.get(stop.breakpoint.id);
        if (!location) {
          if (stop.breakpoint.id < 0)
            options.onPanic?.(
              `${stop.breakpoint.name || 'runtime'} at ${stop.thread.file}:${stop.thread.line}`,
            );
          continue;
        }
        for (const bp of servedEntries(stop, location)) {
          seq++;
          perBreakpoint[bp.name] = (perBreakpoint[bp.name] ?? 0) + 1;
          const hit = toHit(
            stop,
            bp,
            seq,
            round(observedAt - options.startedAt),
            wall,
            options.fieldNameRedaction,
            location.redact,
          );
          redactedCount += hit.redacted;
          pending.push({ hit: hit.record, observedAt });
          if (options.maxHits !== undefined && seq >= options.maxHits) break;
        }
        if (options.maxHits !== undefined && seq >= options.maxHits) break;
      }
      if (options.maxHits !== undefined && seq >= options.maxHits) {
        // Stay stopped: the caller clears breakpoints and detaches from this fully stopped state.
        flush(performance.now());
        return done('max-hits');
      }
    }
  }

  function done(reason: RecordOutcome['reason']): RecordOutcome {
    return {
      hits: seq,
      perBreakpoint,
      reason,
      stops,
      maxStoppedMs: round(maxStoppedMs),
      totalStoppedMs: round(totalStoppedMs),
      redacted: redactedCount,
      ...(lastStopAt !== undefined ? { lastStopAt } : {}),
    };
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/**
 * The entries a stop at a shared breakpoint counts for. An entry with a condition counts only when its own
 * condition held: the breakpoint's condition is the disjunction, and each entry's condition is captured as a
 * value at the stop (see toBreakpointRequest in src/attach/arm.ts).
 */
export function servedEntries(stop: StoppedThread, location: ArmedLocation): ArmedBreakpoint[] {
  if (location.entries.length === 1) return location.entries;
  const values = new Map((stop.info.variables ?? []).map((v) => [v.name, v]));
  return location.entries.filter((e) => !e.condition || values.get(e.condition)?.value === 'true');
}

export function toHit(
  stop: StoppedThread,
  bp: ArmedBreakpoint,
  seq: number,
  t: number,
  wall: string,
  fieldNames: boolean,
  sharedRedact: readonly string[] = bp.redact,
): { record: HitRecord; redacted: number } {
  const rules: RedactionRules = { paths: [...new Set([...bp.redact, ...sharedRedact])], fieldNames };
  const info = stop.info;
  const byName = new Map((info.variables ?? []).map((v) => [v.name, v]));
  const expressions: RecordedExpression[] = bp.expressions.map((expr) => {
    const v = byName.get(expr);
    if (!v) return { expr, error: 'not evaluated at this stop' };
    if (v.unreadable) return { expr, error: v.unreadable };
    return { expr, value: convertVariable(v, { name: expr }) };
  });
  // Results are dropped: at a function's entry (where set entries stop unless they give a lineOffset) they
  // are not assigned yet and read as garbage. A result that matters later in a function can still be
  // recorded by name in the entry's `record:` list.
  const args = redactValues(bp.loadArgs ? convertArguments(info.arguments) : [], rules);
  const locals = redactValues(bp.loadLocals ? convertVariables(info.locals) : [], rules);
  const exprs = redactExpressions(expressions, rules);
  const stack = convertStack(info.stacktrace).slice(0, bp.stack);
  const top = stack[0];
  const goroutine = stop.goroutine;
  const goroutineFunction = goroutine?.startLoc?.function?.name ?? goroutine?.goStatementLoc?.function?.name;
  return {
    record: {
      type: 'hit',
      seq,
      t,
      wall,
      breakpoint: { id: bp.id, name: bp.name, set: bp.set },
      goroutine: {
        id: goroutine?.id ?? stop.thread.goroutineID,
        ...(goroutineFunction ? { function: goroutineFunction } : {}),
      },
      thread: stop.thread.id,
      stoppedMs: 0,
      location: {
        function: stop.thread.function?.name ?? top?.function ?? bp.function,
        file: stop.thread.file || top?.file || bp.file,
        line: stop.thread.line || top?.line || bp.line,
      },
      stack,
      args: args.values,
      locals: locals.values,
      expressions: exprs.expressions,
    },
    redacted: args.count + locals.count + exprs.count,
  };
}
