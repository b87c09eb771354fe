/**
 * Recording, ctrdbg's side: the loop itself runs on the node, in the agent (node-agent/recorder.go: continue →
 * a stop with the values Delve captured → continue again at once), and streams each hit here, where it becomes a
 * hit record — attributed to every entry its breakpoint serves, redacted — and is written to the recording while
 * containerd runs. containerd never waits for this side: the agent queues hits within a bound and counts, never
 * hides, what it could not queue. The loop ends at --max-hits (containerd stays stopped there, for the hand-over
 * or the detach), when asked to stop, or when containerd exits.
 */
import { performance } from 'node:perf_hooks';
import type { FollowSpec, HitEvent, RecordingEvent } from '../delve/agentProtocol.js';
import type { NodeDebugger } from '../delve/nodeDebugger.js';
import type { Thread, Variable } from '../delve/types.js';
import { nodeError } from '../errors.js';
import type { HitRecord, RecordedBreakpoint, RecordedExpression } from '../recording/format.js';
import type { RecordingWriter } from '../recording/writer.js';
import {
  convertStack,
  convertVariable,
  convertVariables,
  type StoppedThread,
  selectPath,
} from './delveValues.js';
import { type RedactionRules, redactExpressions, redactValues } from './redact.js';

/** One set entry armed at a place: what it records there. */
export interface ArmedBreakpoint extends RecordedBreakpoint {
  /** Set-level redaction paths for this entry. */
  redact: string[];
  /** Parameters recorded by name (captured as expressions, written as arguments). */
  params: string[];
  /** Whether the entry asked for every argument / the locals, and how many stack frames. */
  loadArgs: boolean;
  loadLocals: boolean;
  stack: number;
  /** at: return — keep only the returns whose error result is not nil. */
  onlyFailures: boolean;
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
  /** The expressions as the set wrote them, in the order Delve was given them (and answers them). */
  variables?: string[];
}

/** A shim the agent followed (or could not). */
export interface FollowedShim {
  pid: number;
  binary: string;
  id?: string;
  /** Breakpoints armed in it. */
  armed: number;
  heldMs: number;
  existing?: boolean;
  error?: string;
}

export interface RecordOptions {
  dbg: Pick<NodeDebugger, 'command' | 'subscribe' | 'onLost'>;
  armed: Map<number, ArmedLocation>;
  writer?: RecordingWriter | undefined;
  fieldNameRedaction: boolean;
  maxHits?: number | undefined;
  signal: AbortSignal;
  /** performance.now() at the recording's start: hit times are relative to it. */
  startedAt: number;
  /** Re-create a breakpoint after this many distinct goroutines hit it (keeps Delve's answers from growing). */
  rearmAfter?: number;
  onHit?: (hit: HitRecord) => void;
  onPanic?: (what: string) => void;
  /** Shim sets: the agent follows every shim of this containerd; hits then name their process. */
  follow?: FollowSpec;
  primaryPid?: number;
  primaryBinary?: string;
  onFollowed?: (shim: FollowedShim) => void;
  onDropped?: (count: number) => void;
}

export interface RecordOutcome {
  hits: number;
  perBreakpoint: Record<string, number>;
  reason: 'aborted' | 'max-hits' | 'exited' | 'error';
  message?: string;
  stops: number;
  /** Longest time containerd stayed stopped for one stop, as the agent measured it on the node (ms). */
  maxStoppedMs: number;
  totalStoppedMs: number;
  redacted: number;
  /** Hits the agent could not queue because ctrdbg did not read fast enough. */
  dropped: number;
  /** Returns left out because they succeeded (onlyFailures entries). */
  filtered: number;
  rearms: number;
  /** The most hit bytes that waited on the node for ctrdbg at once (a slow or stalled reader). */
  queuedPeakBytes: number;
  /** What the stops were: the ones that recorded hits, and why the others recorded none (see explainStops). */
  stopKinds: StopKinds;
  /** How long containerd was stopped to attach and arm, and dlv's own part of it (ms). */
  pausedMs: number;
  dlvAttachMs: number;
  /** performance.now() when the recording ended with containerd stopped at a hit (the hand-over starts there). */
  lastStopAt?: number;
}

/** Why containerd stopped, counted per stop (one stop can hold several hits: concurrent callers). */
export interface StopKinds {
  /** Stops that recorded at least one hit. */
  recorded: number;
  /** Threads that recorded at least one hit (a stop holds one per caller stopped together). */
  hitThreads: number;
  /** Stops at a shared breakpoint where no entry's own condition held. */
  noEntry: number;
  /** Stops whose returns all succeeded, at onlyFailures entries. */
  filtered: number;
  /** The agent's halt that ended the recording. */
  halts: number;
  /** Unhandled panics or fatal throws Delve stopped at. */
  panics: number;
  /** Hits recorded in followed shims: they stop on their own, not among containerd's stops. */
  shimHits: number;
}

/**
 * Why there were more stops than hits, or more hits than stops, in words for the summary; undefined when each
 * stop recorded exactly one hit. "3 hits in 4 stops" alone reads like a lost hit.
 */
export function explainStops(hits: number, stops: number, kinds: StopKinds): string | undefined {
  const count = (k: number) => `${k} stop${k === 1 ? ' was' : 's were'}`;
  const parts: string[] = [];
  if (kinds.halts) parts.push(`${count(kinds.halts)} the halt that ended the recording`);
  if (kinds.noEntry)
    parts.push(`${count(kinds.noEntry)} at a shared breakpoint where no entry's own condition held`);
  if (kinds.filtered)
    parts.push(`${count(kinds.filtered)} at onlyFailures returns that succeeded (left out)`);
  if (kinds.panics) parts.push(`${count(kinds.panics)} at a panic or fatal error`);
  const other = stops - kinds.recorded - kinds.noEntry - kinds.filtered - kinds.halts - kinds.panics;
  if (other > 0)
    parts.push(`${count(other)} at no breakpoint of ctrdbg's (another client's breakpoint or halt)`);
  const together = kinds.hitThreads - kinds.recorded;
  if (together > 0)
    parts.push(
      `${together} hit${together === 1 ? '' : 's'} came in a stop with another (callers stopped together)`,
    );
  if (kinds.shimHits)
    parts.push(
      `${kinds.shimHits} hit${kinds.shimHits === 1 ? ' was' : 's were'} in followed shims, which stop on their own`,
    );
  const entries = hits - kinds.shimHits - kinds.hitThreads;
  if (entries > 0)
    parts.push(
      `${entries} hit${entries === 1 ? ' was' : 's were'} one stop counted for another entry (sets sharing a breakpoint)`,
    );
  return parts.length ? parts.join('; ') : undefined;
}

/** Each stop counted once, by what it did first: recorded a hit, else served no entry, else was filtered. */
function stopKindsOf(
  sets: Record<'recorded' | 'noEntry' | 'filtered' | 'panics', Set<number>>,
  hitThreads: number,
  halts: number,
  shimHits: number,
): StopKinds {
  const counted = new Set(sets.recorded);
  const only = (set: Set<number>) => {
    const fresh = [...set].filter((s) => !counted.has(s));
    for (const s of fresh) counted.add(s);
    return fresh.length;
  };
  const noEntry = only(sets.noEntry);
  const filtered = only(sets.filtered);
  const panics = only(sets.panics);
  return { recorded: sets.recorded.size, hitThreads, noEntry, filtered, halts, panics, shimHits };
}

/** Delve flags return values (named or `~r0…`) among a function's arguments; at an entry they are garbage. */
const RETURN_ARGUMENT = 16;

export async function recordHits(options: RecordOptions): Promise<RecordOutcome> {
  const { dbg, armed, writer, signal } = options;
  const perBreakpoint: Record<string, number> = {};
  let seq = 0;
  let redacted = 0;
  let dropped = 0;
  let filtered = 0;
  let pausedMs = 0;
  let dlvAttachMs = 0;
  // Per stop number of containerd's loop: what it was, for explainStops (shims' stops are their own).
  const newKinds = () => ({
    recorded: new Set<number>(),
    noEntry: new Set<number>(),
    filtered: new Set<number>(),
    panic: new Set<number>(),
  });
  const kinds = newKinds();
  const shimKinds = newKinds();
  let hitThreads = 0;
  let primaryHits = 0;
  const sentAt = performance.now();
  return new Promise<RecordOutcome>((resolve, reject) => {
    let settled = false;
    const finish = (outcome: RecordOutcome | Error) => {
      if (settled) return;
      settled = true;
      unsubscribe();
      signal.removeEventListener('abort', onAbort);
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const binaries = new Map<number, string>();
    if (options.primaryPid !== undefined)
      binaries.set(options.primaryPid, options.primaryBinary ?? 'containerd');
    const onHitEvent = (event: HitEvent) => {
      const thread = event.thread as Thread;
      // Stops are counted by containerd's loop; a followed shim's hits come from stops of its own.
      const primary = options.primaryPid === undefined || event.pid === options.primaryPid;
      const stops = primary ? kinds : shimKinds;
      if (event.bp < 0) {
        stops.panic.add(event.stop);
        options.onPanic?.(`${thread.breakPoint?.name || 'runtime'} at ${thread.file}:${thread.line}`);
        return;
      }
      const location = armed.get(event.bp);
      if (!location) return;
      const info = thread.breakPointInfo ?? {};
      // Delve answers the expressions in the order given, naming each by its own reading of it.
      const names = location.variables;
      if (names && info.variables?.length === names.length)
        info.variables.forEach((v, i) => {
          v.name = names[i] ?? v.name;
        });
      const stop: StoppedThread = {
        thread,
        breakpoint: { ...(thread.breakPoint as NonNullable<Thread['breakPoint']>), id: event.bp },
        info,
        goroutine: info.goroutine,
      };
      // The agent's clock: hits that waited in its queue keep the time they happened.
      const t = round(event.t + (sentAt - options.startedAt));
      const served = servedEntries(stop, location);
      if (served.length === 0) stops.noEntry.add(event.stop);
      let recordedHere = false;
      for (const bp of served) {
        if (bp.onlyFailures && !returnedError(info.arguments)) {
          filtered++;
          stops.filtered.add(event.stop);
          continue;
        }
        recordedHere = true;
        seq++;
        if (primary) primaryHits++;
        perBreakpoint[bp.name] = (perBreakpoint[bp.name] ?? 0) + 1;
        const hit = toHit(stop, bp, seq, t, event.wall, options.fieldNameRedaction, location.redact);
        hit.record.stoppedMs = round(event.holdUs / 1000);
        if (options.follow) hit.record.process = { pid: event.pid, binary: binaries.get(event.pid) ?? '?' };
        redacted += hit.redacted;
        writer?.writeHit(hit.record);
        options.onHit?.(hit.record);
      }
      if (recordedHere && primary) {
        hitThreads++;
        kinds.recorded.add(event.stop);
      }
    };
    const onRecording = (event: RecordingEvent) => {
      // A followed shim's own loop starting or ending (its pod went away) is not the recording's end.
      if (options.primaryPid !== undefined && event.pid !== options.primaryPid) return;
      if (event.state === 'started') {
        pausedMs = event.pausedMs ?? 0;
        dlvAttachMs = event.dlvAttachMs ?? 0;
        return;
      }
      if (event.reason === 'error') {
        finish(
          nodeError(`The recording on the node stopped: ${event.message ?? 'an error'}.`, {
            hint: 'Check the agent log on the node (<ctrdbg dir>/agent.log); containerd was detached safely.',
          }),
        );
        return;
      }
      if (event.reason === 'exited') {
        finish(
          nodeError(`containerd exited while being debugged (${event.message ?? 'no status'}).`, {
            hint: 'Look at its log; the service manager should restart it.',
          }),
        );
        return;
      }
      finish({
        hits: seq,
        perBreakpoint,
        reason: event.reason === 'max-hits' ? 'max-hits' : 'aborted',
        stops: event.stops ?? 0,
        maxStoppedMs: round((event.maxHoldUs ?? 0) / 1000),
        totalStoppedMs: round((event.totalHoldUs ?? 0) / 1000),
        redacted,
        dropped: Math.max(dropped, event.dropped ?? 0),
        filtered,
        rearms: event.rearms ?? 0,
        queuedPeakBytes: event.queuedPeakBytes ?? 0,
        stopKinds: stopKindsOf(
          { recorded: kinds.recorded, noEntry: kinds.noEntry, filtered: kinds.filtered, panics: kinds.panic },
          hitThreads,
          event.haltStops ?? 0,
          seq - primaryHits,
        ),
        pausedMs,
        dlvAttachMs,
        ...(event.reason === 'max-hits' ? { lastStopAt: performance.now() } : {}),
      });
    };
    const unsubscribe = dbg.subscribe({
      onHit: onHitEvent,
      onRecording,
      onFollowed: (e) => {
        if (!e.error) binaries.set(e.pid, e.binary);
        options.onFollowed?.({
          pid: e.pid,
          binary: e.binary,
          ...(e.id ? { id: e.id } : {}),
          armed: (e.breakpoints ?? []).filter((b) => !b.error && b.ids.length > 0).length,
          heldMs: e.heldMs,
          ...(e.existing ? { existing: true } : {}),
          ...(e.error ? { error: e.error } : {}),
        });
      },
      onDropped: (e) => {
        dropped += e.count;
        options.onDropped?.(e.count);
      },
    });
    dbg.onLost((why) => finish(nodeError(`The debugger on the node went away: ${why}.`)));
    const onAbort = () => {
      void dbg.command({ cmd: 'stop' }).catch(() => undefined);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    dbg
      .command({
        cmd: 'record',
        ...(options.maxHits !== undefined ? { maxHits: options.maxHits } : {}),
        // CTRDBG_REARM_AFTER: tests force re-arming often.
        rearmAfter: options.rearmAfter ?? Number(process.env.CTRDBG_REARM_AFTER ?? 64),
        ...(options.follow ? { follow: options.follow } : {}),
      })
      .catch((error: Error) => finish(error));
  });
}

/** Whether a return's last result (the error, by Go's convention) is set. */
function returnedError(args: readonly Variable[] | undefined): boolean {
  const results = (args ?? []).filter((a) => (a.flags & RETURN_ARGUMENT) !== 0);
  const last = results.at(-1);
  return last !== undefined && convertVariable(last).value !== 'nil';
}

/** The result an expression starts from (`~r0.Process` → ~r0 and `.Process`), among a return's results. */
function resultFor(
  expr: string,
  results: readonly Variable[],
): { variable: Variable; path: string } | undefined {
  const m = /^\s*(~r\d+|[A-Za-z_]\w*)(.*)$/.exec(expr);
  const variable = m ? results.find((r) => r.name === m[1]) : undefined;
  return variable && m ? { variable, path: m[2]!.trim() } : undefined;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/**
 * The entries a stop at a shared breakpoint counts for. An entry with a condition counts only when its own
 * condition held: the breakpoint's condition is the disjunction, and each entry's condition is captured as a
 * value at the stop (see sharedBreakpointRequest in src/attach/arm.ts).
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
  // Results exist only at a return; at an entry Delve still lists them among the arguments, unset.
  const atReturn = bp.at === 'return';
  const delveArgs = info.arguments ?? [];
  const results = atReturn ? delveArgs.filter((a) => (a.flags & RETURN_ARGUMENT) !== 0) : [];
  const expressions: RecordedExpression[] = bp.expressions.map((expr) => {
    // An expression over a result (`~r0.Process.Args`, `retErr`) is read from the results as loaded
    // (loadResults): Delve cannot parse `~r0`, and its own evaluation stops at 64-byte strings.
    const result = atReturn ? resultFor(expr, results) : undefined;
    if (result) {
      const v = selectPath(result.variable, result.path);
      if (typeof v === 'string') return { expr, error: v };
      if (v.unreadable) return { expr, error: v.unreadable };
      return { expr, value: convertVariable(v, { name: expr }) };
    }
    const v = byName.get(expr);
    if (!v) return { expr, error: 'not evaluated at this stop' };
    if (v.unreadable) return { expr, error: v.unreadable };
    return { expr, value: convertVariable(v, { name: expr }) };
  });
  const params = [
    ...bp.params.flatMap((name) => {
      const v = byName.get(name);
      return v ? [convertVariable(v, { name })] : [];
    }),
    ...(bp.loadArgs
      ? convertVariables(
          delveArgs.filter((a) => (a.flags & RETURN_ARGUMENT) === 0 && !bp.params.includes(a.name)),
        )
      : []),
  ];
  const args = redactValues(params, rules);
  const resultValues = redactValues(convertVariables(results), rules);
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
      ...(atReturn
        ? { at: 'return' as const, results: resultValues.values }
        : bp.at === 'after-call'
          ? { at: 'after-call' as const }
          : {}),
    },
    redacted: args.count + locals.count + exprs.count + resultValues.count,
  };
}
