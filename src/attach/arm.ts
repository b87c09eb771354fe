/**
 * Arming: every set resolved against the running binary, and one Delve breakpoint per location. Entries of
 * different sets (or of one set) that stop at the same file:line share that breakpoint — Delve keeps one per
 * address and refuses a second ("Breakpoint exists at …") — and it captures the union of what they ask for.
 */
import {
  breakpointName,
  type ResolvedLocation,
  type ResolvedSet,
  resolveSet,
  toLoadConfig,
} from '../breakpoints/resolve.js';
import {
  type BreakpointEntry,
  type BreakpointSet,
  isRedacted,
  type SetLoadConfig,
} from '../breakpoints/sets.js';
import type { DelveClient } from '../delve/rpcClient.js';
import type { BreakpointRequest } from '../delve/types.js';
import type { ArmedBreakpoint, ArmedLocation } from '../record/recorder.js';
import type { Logger } from '../util/output.js';

export interface Armed {
  /** Delve breakpoint id → the location and the entries it serves. */
  locations: Map<number, ArmedLocation>;
  /** Every armed entry, in set order (the session header lists these). */
  breakpoints: ArmedBreakpoint[];
  resolved: ResolvedSet[];
}

interface Planned {
  location: ResolvedLocation;
  served: { set: BreakpointSet; entry: BreakpointEntry; record: string[]; index: number }[];
}

/** The deeper of two load configurations, field by field (false = not loaded). */
function widerLoad(a: SetLoadConfig | false, b: SetLoadConfig | false): SetLoadConfig | false {
  if (a === false) return b;
  if (b === false) return a;
  const wider = (x: number, y: number) => (x < 0 || y < 0 ? -1 : Math.max(x, y));
  return {
    depth: Math.max(a.depth, b.depth),
    maxString: Math.max(a.maxString, b.maxString),
    maxArray: Math.max(a.maxArray, b.maxArray),
    maxStructFields: wider(a.maxStructFields, b.maxStructFields),
    followPointers: a.followPointers || b.followPointers,
  };
}

/**
 * One CreateBreakpoint request for every entry at a location. Values are captured by Delve at the stop, so a
 * hit costs one round trip. With several entries: the union of their expressions; the condition is their
 * disjunction (none when any entry has none), and each entry's own condition is captured as a value so the
 * recorder can tell which entries a stop counts for.
 */
export function sharedBreakpointRequest(
  served: { entry: BreakpointEntry; record: string[] }[],
  location: ResolvedLocation,
  name: string,
): BreakpointRequest {
  const conditions = served.map((s) => s.entry.condition);
  const condition =
    conditions.every((c) => c !== '') && conditions.length > 0
      ? served.length === 1
        ? conditions[0]!
        : [...new Set(conditions)].map((c) => `(${c})`).join(' || ')
      : '';
  const attribution = served.length > 1 ? conditions.filter((c) => c !== '') : [];
  const variables = [...new Set([...served.flatMap((s) => s.record), ...attribution])];
  return {
    name,
    file: location.file,
    line: location.line,
    Cond: condition,
    continue: false,
    goroutine: served.some((s) => s.entry.goroutine),
    stacktrace: Math.max(...served.map((s) => s.entry.stack)),
    variables,
    LoadArgs: toLoadConfig(served.map((s) => s.entry.loadArgs).reduce(widerLoad, false)),
    LoadLocals: toLoadConfig(served.map((s) => s.entry.loadLocals).reduce(widerLoad, false)),
  };
}

export async function armSets(
  client: DelveClient,
  sets: BreakpointSet[],
  log: Logger,
  /** The running containerd's `--version` line: entries of other versions (`versions:`) are not misses. */
  containerdVersion?: string,
): Promise<Armed> {
  const resolved: ResolvedSet[] = [];
  const plan = new Map<string, Planned>();
  for (const set of sets) {
    const r = await resolveSet(client, set, containerdVersion ? { containerdVersion } : {});
    resolved.push(r);
    for (const entry of r.entries) {
      const spec = set.entries.find((e) => e.name === entry.entry);
      if (!spec) continue;
      // Redacted expressions are never even requested from Delve.
      const record = spec.record.filter((expr) => !isRedacted(expr, spec.redact));
      for (const [index, location] of entry.locations.entries()) {
        const key = `${location.file}:${location.line}`;
        const planned = plan.get(key) ?? { location, served: [] };
        planned.served.push({ set, entry: spec, record, index });
        plan.set(key, planned);
      }
    }
  }
  const locations = new Map<number, ArmedLocation>();
  const breakpoints: ArmedBreakpoint[] = [];
  for (const { location, served } of plan.values()) {
    const first = served[0]!;
    const bp = await client.createBreakpoint(
      sharedBreakpointRequest(
        served,
        location,
        breakpointName(first.set.name, first.entry.name, first.index),
      ),
    );
    const entries = served.map(
      ({ set, entry, record, index }): ArmedBreakpoint => ({
        id: bp.id,
        name: `${set.name}/${entry.name}${index > 0 ? `#${index + 1}` : ''}`,
        set: set.name,
        entry: entry.name,
        function: location.function,
        file: location.file,
        line: location.line,
        optimized: location.optimized,
        expressions: record,
        ...(entry.condition ? { condition: entry.condition } : {}),
        redact: entry.redact,
        loadArgs: entry.loadArgs !== false,
        loadLocals: entry.loadLocals !== false,
        stack: entry.stack,
      }),
    );
    if (entries.length > 1)
      log.step(`${entries.map((e) => e.name).join(' and ')} share one breakpoint at ${location.function}`);
    if (location.optimized)
      log.warn(`${location.function} was compiled with optimisations: values may be missing`);
    locations.set(bp.id, { id: bp.id, entries, redact: [...new Set(entries.flatMap((e) => e.redact))] });
    breakpoints.push(...entries);
  }
  return { locations, breakpoints, resolved };
}
