/**
 * Arming: every set resolved against the running binary in one lookup on the node (the agent, next to dlv), and
 * one Delve breakpoint per place. Entries of different sets (or of one set) that stop at the same place share that
 * breakpoint — Delve keeps one per address and refuses a second ("Breakpoint exists at …") — and it captures the
 * union of what they ask for. Return points are breakpoints on every return instruction, with the results loaded.
 */

import { delveExpression, delveExpressions } from '../breakpoints/delveExpression.js';
import {
  breakpointName,
  type ResolvedLocation,
  type ResolvedSet,
  resolveSets,
  toLoadConfig,
} from '../breakpoints/resolve.js';
import {
  type BreakpointEntry,
  type BreakpointSet,
  isRedacted,
  type SetLoadConfig,
} from '../breakpoints/sets.js';
import type { BreakpointSpec, PointSpec } from '../delve/agentProtocol.js';
import type { NodeDebugger } from '../delve/nodeDebugger.js';
import type { BreakpointRequest } from '../delve/types.js';
import { delveError } from '../errors.js';
import type { ArmedBreakpoint, ArmedLocation } from '../record/recorder.js';
import type { Logger } from '../util/output.js';

export interface Armed {
  /** Delve breakpoint id → the place and the entries it serves (a return point has one id per return). */
  locations: Map<number, ArmedLocation>;
  /** Every armed entry, in set order (the recording's header lists these). */
  breakpoints: ArmedBreakpoint[];
  resolved: ResolvedSet[];
  /** How long resolving and creating took on the node. */
  resolveMs: number;
  createMs: number;
}

interface Planned {
  location: ResolvedLocation;
  served: { set: BreakpointSet; entry: BreakpointEntry; record: string[]; index: number }[];
}

/** Results are read from a return point's arguments (Delve lists them there, flagged as return arguments). */
const RESULTS_LOAD: SetLoadConfig = {
  depth: 1,
  maxString: 256,
  maxArray: 16,
  maxStructFields: -1,
  followPointers: true,
};

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
 * One CreateBreakpoint request for every entry at a place. Values are captured by Delve at the stop, so a hit costs
 * one round trip. With several entries: the union of their expressions and parameters; the condition is their
 * disjunction (none when any entry has none), and each entry's own condition is captured as a value so the
 * recorder can tell which entries a stop counts for.
 */
export function sharedBreakpointRequest(
  served: { entry: BreakpointEntry; record: string[] }[],
  location: Pick<ResolvedLocation, 'file' | 'line'> & { at?: ResolvedLocation['at'] },
  name: string,
): BreakpointRequest & { traceReturn?: boolean } {
  const conditions = served.map((s) => s.entry.condition);
  const condition =
    conditions.every((c) => c !== '') && conditions.length > 0
      ? served.length === 1
        ? conditions[0]!
        : [...new Set(conditions)].map((c) => `(${c})`).join(' || ')
      : '';
  const attribution = served.length > 1 ? conditions.filter((c) => c !== '') : [];
  const variables = [
    ...new Set([...served.flatMap((s) => [...s.entry.params, ...s.record]), ...attribution]),
  ];
  const atReturn = location.at === 'return';
  const args = served.map((s) => s.entry.loadArgs).reduce(widerLoad, atReturn ? RESULTS_LOAD : false);
  return {
    name,
    file: location.file,
    line: location.line,
    Cond: condition,
    continue: false,
    goroutine: served.some((s) => s.entry.goroutine),
    stacktrace: Math.max(...served.map((s) => s.entry.stack)),
    variables,
    LoadArgs: toLoadConfig(args),
    LoadLocals: toLoadConfig(served.map((s) => s.entry.loadLocals).reduce(widerLoad, false)),
    ...(atReturn ? { traceReturn: true } : {}),
  };
}

/** The agent as a PointResolver; with `packages`, it also lists the binary's package names (see delveExpression). */
export function agentResolver(dbg: NodeDebugger, options: { packages?: boolean } = {}) {
  return {
    resolveMs: 0,
    packages: undefined as Set<string> | undefined,
    async resolvePoints(points: PointSpec[]) {
      const answer = await dbg.command({
        cmd: 'resolve',
        points,
        ...(options.packages ? { packages: true } : {}),
      });
      this.resolveMs += answer.ms;
      if (answer.packages) this.packages = new Set(answer.packages);
      return answer.points;
    },
  };
}

/** A request's expressions and condition as Delve evaluates them fastest, and the names to map its values back. */
function fasterRequest(
  request: BreakpointRequest,
  packages: ReadonlySet<string> | undefined,
): { request: BreakpointRequest; original: Map<string, string> } {
  const { sent, original } = delveExpressions(request.variables ?? [], packages);
  const cond = request.Cond ? delveExpression(request.Cond, packages ?? new Set()) : request.Cond;
  return {
    request: { ...request, variables: sent, Cond: packages ? cond : request.Cond },
    original,
  };
}

export async function armSets(
  dbg: NodeDebugger,
  sets: BreakpointSet[],
  log: Logger,
  /** The running containerd's `--version` line: entries of other versions (`versions:`) are not misses. */
  containerdVersion?: string,
): Promise<Armed> {
  const resolver = agentResolver(dbg, { packages: true });
  const resolved = await resolveSets(resolver, sets, {
    ...(containerdVersion ? { containerdVersion } : {}),
    suggest: false,
  });
  const plan = new Map<string, Planned>();
  for (const [i, set] of sets.entries()) {
    for (const entry of resolved[i]?.entries ?? []) {
      const spec = set.entries.find((e) => e.name === entry.entry);
      if (!spec) continue;
      // Redacted expressions are never even requested from Delve.
      const record = spec.record.filter((expr) => !isRedacted(expr, spec.redact));
      for (const [index, location] of entry.locations.entries()) {
        const key = `${location.at}:${location.addrs.join(',')}`;
        const planned = plan.get(key) ?? { location, served: [] };
        planned.served.push({ set, entry: spec, record, index });
        plan.set(key, planned);
      }
    }
  }
  const groups = [...plan.entries()];
  const names: Map<string, string>[] = [];
  const specs: BreakpointSpec[] = groups.map(([key, { location, served }]) => {
    const first = served[0]!;
    const shared = sharedBreakpointRequest(
      served,
      location,
      breakpointName(first.set.name, first.entry.name, first.index),
    );
    const { request: fast, original } = fasterRequest(shared, resolver.packages);
    names.push(original);
    const { file: _f, line: _l, ...request } = fast;
    return { key, addrs: location.addrs, request };
  });
  const created = specs.length
    ? await dbg.command({ cmd: 'create', breakpoints: specs })
    : { breakpoints: [], ms: 0 };
  const locations = new Map<number, ArmedLocation>();
  const breakpoints: ArmedBreakpoint[] = [];
  for (const [i, [, { location, served }]] of groups.entries()) {
    const answer = created.breakpoints[i];
    if (!answer || answer.error || answer.ids.length === 0) {
      throw delveError(
        `Delve refused a breakpoint at ${location.function} (${location.file}:${location.line}): ${answer?.error ?? 'no answer'}`,
        { hint: 'Check the set with `ctrdbg sets check TARGET`.' },
      );
    }
    const entries = served.map(
      ({ set, entry, record, index }): ArmedBreakpoint => ({
        id: answer.ids[0]!,
        name: `${set.name}/${entry.name}${index > 0 ? `#${index + 1}` : ''}`,
        set: set.name,
        entry: entry.name,
        function: location.function,
        file: location.file,
        line: location.line,
        optimized: location.optimized,
        expressions: record,
        ...(entry.condition ? { condition: entry.condition } : {}),
        ...(location.at !== 'entry' ? { at: location.at } : {}),
        ...(location.callee ? { callee: location.callee } : {}),
        redact: entry.redact,
        params: entry.params,
        loadArgs: entry.loadArgs !== false,
        loadLocals: entry.loadLocals !== false,
        stack: entry.stack,
        onlyFailures: entry.onlyFailures,
      }),
    );
    if (entries.length > 1)
      log.step(`${entries.map((e) => e.name).join(' and ')} share one breakpoint at ${location.function}`);
    if (location.optimized)
      log.warn(`${location.function} was compiled with optimisations: values may be missing`);
    const armed: ArmedLocation = {
      id: answer.ids[0]!,
      entries,
      redact: [...new Set(entries.flatMap((e) => e.redact))],
      ...(names[i]?.size ? { delveNames: names[i] } : {}),
    };
    for (const id of answer.ids) locations.set(id, { ...armed, id });
    breakpoints.push(...entries);
  }
  return { locations, breakpoints, resolved, resolveMs: resolver.resolveMs, createMs: created.ms };
}
