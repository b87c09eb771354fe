/**
 * Arming: every set resolved against the running binary in one lookup on the node (the agent, next to dlv), and
 * one Delve breakpoint per place. Entries of different sets (or of one set) that stop at the same place share that
 * breakpoint — Delve keeps one per address and refuses a second ("Breakpoint exists at …") — and it captures the
 * union of what they ask for. Return points are breakpoints on every return instruction, with the results loaded.
 */

import { delveExpression, delveExpressions } from '../breakpoints/delveExpression.js';
import {
  breakpointName,
  entryPoints,
  type ResolvedLocation,
  type ResolvedSet,
  resolveSets,
  toLoadConfig,
} from '../breakpoints/resolve.js';
import {
  type BreakpointEntry,
  type BreakpointSet,
  isRedacted,
  parseBreakpointSet,
  resultRoot,
  type SetLoadConfig,
} from '../breakpoints/sets.js';
import type { BreakpointSpec, FollowSpec, PointSpec } from '../delve/agentProtocol.js';
import type { NodeDebugger } from '../delve/nodeDebugger.js';
import type { BreakpointRequest } from '../delve/types.js';
import { delveError, inputError } from '../errors.js';
import type { ArmedBreakpoint, ArmedLocation } from '../record/recorder.js';
import type { Logger } from '../util/output.js';

/**
 * Where containerd has started a task's shim and is about to send it Create: the agent holds containerd there,
 * attaches to the new shim and arms it first. 1.7 (runtime/v2) and 2.x (core/runtime/v2).
 */
export const SHIM_FOLLOW_CANDIDATES = [
  'github.com/containerd/containerd/runtime/v2.(*shimTask).Create',
  'github.com/containerd/containerd/v2/core/runtime/v2.(*shimTask).Create',
];

/** The trigger as a set of its own, resolved with the others (nothing is recorded at it). */
function followTriggerSet(): BreakpointSet {
  return parseBreakpointSet(
    [
      'schema: ctrdbg.breakpoint-set/v1',
      'name: ctrdbg-follow',
      'description: where containerd has started a shim and not yet sent it Create',
      'entries:',
      '  - name: shim-started',
      `    candidates: [${SHIM_FOLLOW_CANDIDATES.map((c) => `'${c}'`).join(', ')}]`,
      '',
    ].join('\n'),
    '(built in: shim following)',
  );
}

/** Breakpoints in shims get ids from here on (the same in every shim), apart from containerd's own. */
const SHIM_IDS_FROM = 100_000;

export interface Armed {
  /** Delve breakpoint id → the place and the entries it serves (a return point has one id per return). */
  locations: Map<number, ArmedLocation>;
  /** Every armed entry, in set order (the recording's header lists these). */
  breakpoints: ArmedBreakpoint[];
  resolved: ResolvedSet[];
  /** How long resolving and creating took on the node. */
  resolveMs: number;
  createMs: number;
  /** Sets of shim processes: the agent follows every shim of this containerd and arms them there. */
  follow?: FollowSpec;
}

interface Planned {
  location: ResolvedLocation;
  served: { set: BreakpointSet; entry: BreakpointEntry; record: string[]; index: number }[];
}

/**
 * Results are read from a return point's arguments (Delve lists them there, flagged as return arguments); this is
 * how deep when the entry does not say (loadResults).
 */
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
  // Expressions over unnamed results (`~r0.Process`) are read from the loaded results: Delve cannot parse them.
  const variables = [
    ...new Set([
      ...served.flatMap((s) => [...s.entry.params, ...s.record.filter((e) => !resultRoot(e))]),
      ...attribution,
    ]),
  ];
  const atReturn = location.at === 'return';
  // Delve loads results with the arguments' configuration: at a return, the deepest any entry asks for.
  const args = served
    .flatMap((s): (SetLoadConfig | false)[] => [
      s.entry.loadArgs,
      atReturn ? (s.entry.loadResults ?? RESULTS_LOAD) : false,
    ])
    .reduce(widerLoad, false);
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

/**
 * A request's expressions and condition as Delve evaluates them fastest, and the expressions as written, in the
 * order sent: Delve answers in that order, and names a value by its own reading of the expression (through an
 * interface, `rio.out` comes back as `data.out`), so values are matched by position.
 */
function fasterRequest(
  request: BreakpointRequest,
  packages: ReadonlySet<string> | undefined,
): { request: BreakpointRequest; original: string[] } {
  const original = request.variables ?? [];
  const { sent } = delveExpressions(original, packages);
  const cond = request.Cond ? delveExpression(request.Cond, packages ?? new Set()) : request.Cond;
  return {
    request: { ...request, variables: sent, Cond: packages ? cond : request.Cond },
    original,
  };
}

export async function armSets(
  dbg: NodeDebugger,
  allSets: BreakpointSet[],
  log: Logger,
  /** The running containerd's `--version` line: entries of other versions (`versions:`) are not misses. */
  containerdVersion?: string,
  /** containerd's socket on the node (shims name it on their command line): needed for shim sets. */
  socket?: string,
): Promise<Armed> {
  const sets = allSets.filter((s) => s.process === 'containerd');
  const shimSets = allSets.filter((s) => s.process !== 'containerd');
  const trigger = shimSets.length ? followTriggerSet() : undefined;
  const resolver = agentResolver(dbg, { packages: true });
  const resolvedAll = await resolveSets(resolver, trigger ? [...sets, trigger] : sets, {
    ...(containerdVersion ? { containerdVersion } : {}),
    suggest: false,
  });
  const resolved = resolvedAll.slice(0, sets.length);
  const triggerResolved = trigger ? resolvedAll[sets.length] : undefined;
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
  const names: string[][] = [];
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
  const triggerLocations = triggerResolved?.entries[0]?.locations ?? [];
  if (trigger && triggerLocations.length === 0)
    throw inputError(
      `Cannot follow shims in this containerd: none of ${SHIM_FOLLOW_CANDIDATES.join(', ')} is in the binary.`,
      { hint: 'Shim sets need containerd 1.7 or 2.x; check the binary with `ctrdbg sets check TARGET`.' },
    );
  const triggerSpecs: BreakpointSpec[] = triggerLocations.map((l, i) => ({
    key: `ctrdbg-follow-${i}`,
    addrs: l.addrs,
    request: {
      name: `ctrdbgFollowShim${i || ''}`,
      Cond: '',
      continue: false,
      goroutine: false,
      stacktrace: 0,
    },
  }));
  const created =
    specs.length + triggerSpecs.length
      ? await dbg.command({ cmd: 'create', breakpoints: [...specs, ...triggerSpecs] })
      : { breakpoints: [], ms: 0 };
  const triggerIds = created.breakpoints.slice(specs.length).flatMap((b) => {
    if (b.error) throw delveError(`Delve refused the shim-follow breakpoint: ${b.error}`);
    return b.ids;
  });
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
      ...(names[i]?.length ? { variables: names[i] } : {}),
    };
    for (const id of answer.ids) locations.set(id, { ...armed, id });
    breakpoints.push(...entries);
  }
  const follow =
    shimSets.length && socket
      ? shimFollow(shimSets, triggerIds, socket, resolver.packages, locations, breakpoints)
      : undefined;
  if (shimSets.length && !socket) throw delveError("Shim sets need containerd's socket on the node.");
  return {
    locations,
    breakpoints,
    resolved,
    resolveMs: resolver.resolveMs,
    createMs: created.ms,
    ...(follow ? { follow } : {}),
  };
}

/**
 * The follow spec for shim sets: one point per candidate, one breakpoint per distinct place (entries at one place
 * share it), each with an id of ctrdbg's that is the same in every shim. Adds what the recorder needs to
 * `locations` and `breakpoints`.
 */
function shimFollow(
  shimSets: BreakpointSet[],
  triggerIds: number[],
  socket: string,
  packages: ReadonlySet<string> | undefined,
  locations: Map<number, ArmedLocation>,
  breakpoints: ArmedBreakpoint[],
): FollowSpec {
  const places = new Map<
    string,
    {
      point: PointSpec;
      served: { set: BreakpointSet; entry: BreakpointEntry; record: string[]; index: number }[];
    }
  >();
  for (const set of shimSets)
    for (const entry of set.entries) {
      const record = entry.record.filter((expr) => !isRedacted(expr, entry.redact));
      for (const [index, point] of entryPoints(set, entry).entries()) {
        const place = JSON.stringify([point.function, point.at, point.lineOffset, point.callees]);
        const p = places.get(place) ?? { point: { ...point, key: place }, served: [] };
        p.served.push({ set, entry, record, index });
        places.set(place, p);
      }
    }
  const points: PointSpec[] = [];
  const create: BreakpointSpec[] = [];
  let next = SHIM_IDS_FROM;
  for (const { point, served } of places.values()) {
    const id = next++;
    const first = served[0]!;
    const shared = sharedBreakpointRequest(
      served,
      { file: '', line: 0, at: point.at ?? 'entry' },
      breakpointName(first.set.name, first.entry.name, id - SHIM_IDS_FROM),
    );
    const { request: fast, original } = fasterRequest(shared, packages);
    const { file: _f, line: _l, ...request } = fast;
    points.push(point);
    create.push({ key: point.key, logical: id, request });
    const entries = served.map(
      ({ set, entry, record, index }): ArmedBreakpoint => ({
        id,
        // As in containerd: the first candidate's name is the entry's, another candidate's gets #N.
        name: `${set.name}/${entry.name}${index > 0 ? `#${index + 1}` : ''}`,
        set: set.name,
        entry: entry.name,
        function: point.function,
        file: '',
        line: 0,
        optimized: false,
        expressions: record,
        ...(entry.condition ? { condition: entry.condition } : {}),
        ...(entry.at !== 'entry' ? { at: entry.at } : {}),
        process: set.process,
        redact: entry.redact,
        params: entry.params,
        loadArgs: entry.loadArgs !== false,
        loadLocals: entry.loadLocals !== false,
        stack: entry.stack,
        onlyFailures: entry.onlyFailures,
      }),
    );
    locations.set(id, {
      id,
      entries,
      redact: [...new Set(entries.flatMap((e) => e.redact))],
      ...(original.length ? { variables: original } : {}),
    });
    breakpoints.push(...entries);
  }
  return { breakpoints: triggerIds, socket, points, create };
}
