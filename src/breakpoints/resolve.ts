/**
 * Resolves breakpoint sets against the binary Delve is attached to: which candidate functions exist, where each
 * entry's point lands (its entry, its returns, or the line after a call — file:line and addresses), whether it was
 * optimised, and — when nothing matches — the closest names the binary does have.
 *
 * The lookup goes through a `PointResolver`: on a node that is the agent, next to dlv, in one round trip for every
 * set (src/delve/nodeDebugger.ts); `locatorResolver` builds one from any `FunctionLocator` (a DelveClient, a test's
 * fake). Suggestions for misses need `listFunctions`, which walks every function in the binary: they are asked for
 * separately (`suggestMisses`), never while an attach holds containerd for arming.
 *
 * Every call here needs a stopped target: callers halt first and keep the window short.
 */
import { NO_CALLEE_ERROR, type PointSpec, type ResolvedPoint } from '../delve/agentProtocol.js';
import type { Breakpoint, LoadConfig, Location } from '../delve/types.js';
import { isCtrdbgError } from '../errors.js';
import { editDistance } from '../util/editDistance.js';
import type { BreakpointEntry, BreakpointSet, SetLoadConfig } from './sets.js';
import { inVersionRange } from './versions.js';

/** The part of DelveClient that suggestions (and `locatorResolver`) need. */
export interface FunctionLocator {
  listFunctions(filter: string): Promise<string[]>;
  findLocation(loc: string): Promise<Location[]>;
}

/** Looks many points up at once (the agent does it next to dlv). */
export interface PointResolver {
  resolvePoints(points: PointSpec[]): Promise<ResolvedPoint[]>;
}

export interface ResolvedLocation {
  candidate: string;
  function: string;
  file: string;
  line: number;
  /** Compiled with optimisations: recorded values may be missing or wrong. */
  optimized: boolean;
  /** Where the breakpoint goes: one or more addresses (a function returns at every RET). */
  addrs: number[];
  pcs: number;
  at: 'entry' | 'return' | 'after-call';
  /** at: after-call — the callee found, and the line of the call. */
  callee?: string;
  callLine?: number;
  /** The line of each address, when it has several (filled in by `sets check`). */
  lines?: number[];
}

export interface ResolvedEntry {
  set: string;
  entry: string;
  /** Every candidate found in the binary; all of them are armed. */
  locations: ResolvedLocation[];
  /** Candidates that are not in this binary (normal across versions). */
  missing: string[];
  /** When nothing matched: the closest function names the binary has, best first. */
  suggestions: string[];
  /** Candidates that exist but could not be located (e.g. line offset past the function). */
  errors: ResolveError[];
  /**
   * Set when nothing matched and the binary's containerd is outside the entry's `versions`: the entry belongs
   * to another release line (e.g. `>=2.0`), which is not a failure.
   */
  notInVersion?: string;
}

export interface ResolveError {
  candidate: string;
  message: string;
  /** at: after-call — the function exists but calls none of the callees (directly) in this binary. */
  calleeNotCalled?: { function: string; callees: string[] };
}

export interface ResolvedSet {
  set: string;
  entries: ResolvedEntry[];
  /** True when every entry resolved to at least one location, or is not in this version. */
  complete: boolean;
  /** Explanations that apply to the whole set (e.g. "no CRI in this binary"). */
  notes: string[];
}

export interface SetsCheck {
  sets: ResolvedSet[];
  /** Locations in total, and entries without any. */
  armed: number;
  unresolvedEntries: number;
  /** Entries that exist only in other containerd versions (not counted as unresolved). */
  notInVersion: number;
  optimizedLocations: number;
}

export interface ResolveOptions {
  /** The binary's `containerd --version` line (or version): decides "not in this version". */
  containerdVersion?: string;
}

/** A Go function name split as Delve prints it: `pkg/path.(*Recv).Method`, `pkg/path.Recv.Method`, `pkg/path.Func`. */
export interface FunctionNameParts {
  pkg: string;
  receiver: string | undefined;
  pointer: boolean;
  name: string;
}

export function splitFunctionName(full: string): FunctionNameParts {
  const slash = full.lastIndexOf('/');
  const dot = full.indexOf('.', slash + 1);
  if (dot < 0) return { pkg: '', receiver: undefined, pointer: false, name: full };
  const pkg = full.slice(0, dot);
  const rest = full.slice(dot + 1);
  const ptr = /^\(\*([^)]+)\)\.(.+)$/.exec(rest);
  if (ptr) return { pkg, receiver: ptr[1], pointer: true, name: ptr[2]! };
  const value = /^([^.]+)\.(.+)$/.exec(rest);
  // `Func.func1` (a closure) also matches; that is harmless for ranking.
  if (value) return { pkg, receiver: value[1], pointer: false, name: value[2]! };
  return { pkg, receiver: undefined, pointer: false, name: rest };
}

/**
 * How close a function in the binary is to a wanted one; higher is closer. The method/function name weighs most
 * (the same method in another package is usually the answer across versions), then the receiver, then how many
 * trailing package path segments agree (`cri/server` vs `cri/sbserver`).
 */
export function similarity(wanted: string, actual: string): number {
  const w = splitFunctionName(wanted);
  const a = splitFunctionName(actual);
  // A difference of case only (CreateContainer vs createContainer, an exported wrapper) counts half.
  const folded = editDistance(w.name.toLowerCase(), a.name.toLowerCase());
  const exact = editDistance(w.name, a.name);
  const nameScore = 1 - (folded + 0.5 * (exact - folded)) / Math.max(w.name.length, a.name.length, 1);
  const receiverScore =
    w.receiver === undefined && a.receiver === undefined
      ? 1
      : w.receiver !== undefined && a.receiver !== undefined
        ? 1 - editDistance(w.receiver, a.receiver) / Math.max(w.receiver.length, a.receiver.length)
        : 0;
  const wSeg = w.pkg.split('/').reverse();
  const aSeg = a.pkg.split('/').reverse();
  let shared = 0;
  for (let i = 0; i < Math.min(wSeg.length, aSeg.length); i++) {
    if (wSeg[i] === aSeg[i]) shared++;
    else break;
  }
  const lastSegmentScore =
    1 -
    editDistance(wSeg[0] ?? '', aSeg[0] ?? '') / Math.max((wSeg[0] ?? '').length, (aSeg[0] ?? '').length, 1);
  const pkgScore = Math.min(shared, 4) / 4 + 0.5 * lastSegmentScore;
  return 6 * nameScore + 2 * receiverScore + pkgScore;
}

/** The `limit` names closest to `wanted`, best first, ties broken alphabetically for stable output. */
export function rankClosest(wanted: string, names: readonly string[], limit = 5): string[] {
  return [...new Set(names)]
    .filter((n) => n !== wanted)
    .map((n) => ({ n, s: similarity(wanted, n) }))
    .sort((x, y) => y.s - x.s || x.n.localeCompare(y.n))
    .slice(0, limit)
    .map((x) => x.n);
}

/** Escapes a literal for Go's regexp (RE2 syntax; the same metacharacters as JavaScript's). */
export function goRegexpQuote(text: string): string {
  return text.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}

/** True when the set's candidates are CRI functions (so "no CRI in this binary" explains a miss). */
export function isCriFunction(name: string): boolean {
  return /\/(pkg|internal)\/cri\//.test(name);
}

const CRI_PACKAGES_FILTER = '/(pkg|internal)/cri/';

/** The points one entry asks for: one per candidate function. */
export function entryPoints(set: BreakpointSet, entry: BreakpointEntry): PointSpec[] {
  return entry.candidates.map((candidate) => ({
    key: pointKey(set.name, entry.name, candidate),
    function: candidate,
    at: entry.at,
    ...(entry.at === 'entry' && entry.lineOffset ? { lineOffset: entry.lineOffset } : {}),
    ...(entry.at === 'after-call' && entry.after ? { callees: entry.after } : {}),
  }));
}

const pointKey = (set: string, entry: string, candidate: string) => `${set}\u0000${entry}\u0000${candidate}`;

/** A PointResolver over a FunctionLocator: entry points and line offsets through FindLocation. */
export function locatorResolver(locator: FunctionLocator): PointResolver {
  return {
    async resolvePoints(points) {
      const out: ResolvedPoint[] = [];
      for (const p of points) {
        if ((p.at ?? 'entry') !== 'entry') {
          out.push({ key: p.key, found: false, error: `${p.at} points need the node agent` });
          continue;
        }
        try {
          const [loc] = await locator.findLocation(p.function);
          if (!loc) {
            out.push({ key: p.key, found: false, missing: true });
            continue;
          }
          const at = p.lineOffset
            ? (await locator.findLocation(`${loc.file}:${loc.line + p.lineOffset}`))[0]
            : loc;
          if (!at) {
            out.push({
              key: p.key,
              found: false,
              error: `no code at ${loc.file}:${loc.line + (p.lineOffset ?? 0)} (lineOffset ${p.lineOffset} in ${p.function})`,
            });
            continue;
          }
          out.push({
            key: p.key,
            found: true,
            function: at.function?.name ?? p.function,
            file: at.file,
            line: at.line,
            optimized: at.function?.optimized ?? loc.function?.optimized ?? false,
            addrs: at.pcs?.length ? at.pcs : [at.pc],
          });
        } catch (error) {
          const message = isCtrdbgError(error) || error instanceof Error ? error.message : String(error);
          out.push(
            /could not find|not found/i.test(message)
              ? { key: p.key, found: false, missing: true }
              : { key: p.key, found: false, error: message },
          );
        }
      }
      return out;
    },
  };
}

/** A resolver from whatever the caller has: the agent's, or one over a FunctionLocator. */
function asResolver(source: PointResolver | FunctionLocator): PointResolver {
  return 'resolvePoints' in source ? source : locatorResolver(source);
}

/**
 * Resolves several sets with one lookup of every point, then suggestions for misses when `source` can list
 * functions (a FunctionLocator) and `suggest` is not false.
 */
export async function resolveSets(
  source: PointResolver | FunctionLocator,
  sets: readonly BreakpointSet[],
  options: ResolveOptions & { suggest?: FunctionLocator | false } = {},
): Promise<ResolvedSet[]> {
  const points = sets.flatMap((set) => set.entries.flatMap((entry) => entryPoints(set, entry)));
  const byKey = new Map((await asResolver(source).resolvePoints(points)).map((p) => [p.key, p]));
  const resolved = sets.map((set) => interpretSet(set, byKey, options));
  const locator =
    options.suggest === false
      ? undefined
      : (options.suggest ?? ('listFunctions' in source ? source : undefined));
  if (locator) await suggestMisses(locator, sets, resolved);
  return resolved;
}

/** Resolves one set (see resolveSets). */
export async function resolveSet(
  source: PointResolver | FunctionLocator,
  set: BreakpointSet,
  options: ResolveOptions & { suggest?: FunctionLocator | false } = {},
): Promise<ResolvedSet> {
  const [resolved] = await resolveSets(source, [set], options);
  return resolved as ResolvedSet;
}

function interpretSet(
  set: BreakpointSet,
  byKey: Map<string, ResolvedPoint>,
  options: ResolveOptions,
): ResolvedSet {
  const notes: string[] = [];
  if (set.process !== 'containerd')
    notes.push(
      `the set's functions run in ${set.process}, a separate process from containerd; attach follows it with --with-shim`,
    );
  const entries = set.entries.map((entry): ResolvedEntry => {
    const resolved: ResolvedEntry = {
      set: set.name,
      entry: entry.name,
      locations: [],
      missing: [],
      suggestions: [],
      errors: [],
    };
    for (const candidate of entry.candidates) {
      const p = byKey.get(pointKey(set.name, entry.name, candidate));
      if (!p || p.missing) resolved.missing.push(candidate);
      else if (!p.found && p.error === NO_CALLEE_ERROR && entry.after)
        resolved.errors.push(calleeNotCalled(candidate, p.function ?? candidate, entry.after));
      else if (!p.found) resolved.errors.push({ candidate, message: p.error ?? 'not found' });
      else
        resolved.locations.push({
          candidate,
          function: p.function ?? candidate,
          file: p.file ?? '',
          line: p.line ?? 0,
          optimized: p.optimized ?? false,
          addrs: p.addrs ?? [],
          pcs: p.addrs?.length ?? 0,
          at: entry.at,
          ...(p.callee ? { callee: p.callee } : {}),
          ...(p.callLine ? { callLine: p.callLine } : {}),
        });
    }
    const version = options.containerdVersion;
    if (
      resolved.locations.length === 0 &&
      entry.versions &&
      version &&
      !inVersionRange(version, entry.versions)
    )
      resolved.notInVersion = entry.versions;
    return resolved;
  });
  return {
    set: set.name,
    entries,
    complete: entries.every((e) => e.locations.length > 0 || e.notInVersion !== undefined),
    notes,
  };
}

/**
 * "callee X is not called from F in this version": the after-call point's function exists, and makes no direct
 * call to any of the callees. (A call through an interface or a func value has no destination to find.)
 */
export function calleeNotCalled(candidate: string, fn: string, callees: readonly string[]): ResolveError {
  const names = [...new Set(callees.map(shortName))];
  return {
    candidate,
    message: `callee ${names.join(' or ')} is not called from ${shortName(fn)} in this version (no direct call to it: renamed, removed, or called through an interface)`,
    calleeNotCalled: { function: fn, callees: [...callees] },
  };
}

/** `github.com/containerd/containerd/pkg/cri/server.(*criService).localResolve` → `server.(*criService).localResolve`. */
export function shortName(fn: string): string {
  return fn.slice(fn.lastIndexOf('/') + 1);
}

/**
 * Fills in the closest names for entries that resolved to nothing, and explains a binary without CRI. Walks the
 * binary's functions (ListFunctions): not for the window in which an attach holds containerd to arm.
 */
export async function suggestMisses(
  locator: FunctionLocator,
  sets: readonly BreakpointSet[],
  resolved: ResolvedSet[],
): Promise<void> {
  let criPresent: boolean | undefined;
  for (const [i, set] of sets.entries()) {
    const result = resolved[i];
    if (!result) continue;
    for (const entry of result.entries) {
      if (entry.locations.length > 0 || entry.notInVersion !== undefined || entry.errors.length > 0) continue;
      const spec = set.entries.find((e) => e.name === entry.entry);
      if (!spec) continue;
      let explained = false;
      if (spec.candidates.every(isCriFunction)) {
        criPresent ??= (await locator.listFunctions(CRI_PACKAGES_FILTER)).length > 0;
        if (!criPresent) {
          explained = true;
          const note =
            'no CRI in this binary: no pkg/cri or internal/cri package (containerd built without the CRI plugin, ' +
            "e.g. Debian bookworm's 1.6.20 and the default lab); use lab-create or tasks-create, or the CRI lab (ctrdbg lab up --cri)";
          if (!result.notes.includes(note)) result.notes.push(note);
        }
      }
      // Without CRI, same-named methods elsewhere (an OpenTelemetry `Start`) would only mislead; the nearest
      // names worth showing are containerd's own services, which the CRI plugin calls into.
      entry.suggestions = explained
        ? await suggestServices(locator, spec.candidates)
        : await suggest(locator, spec.candidates);
    }
  }
}

async function suggest(locator: FunctionLocator, candidates: readonly string[]): Promise<string[]> {
  const pool = new Set<string>();
  // 1. The same function/method name in any package: how most renames across versions look.
  for (const name of new Set(candidates.map((c) => splitFunctionName(c).name))) {
    for (const fn of await locator.listFunctions(`\\.${goRegexpQuote(name)}$`)) pool.add(fn);
  }
  // 2. Else everything in the candidates' packages, ranked by edit distance.
  if (pool.size === 0) {
    for (const pkg of new Set(candidates.map((c) => splitFunctionName(c).pkg).filter((p) => p !== ''))) {
      for (const fn of await locator.listFunctions(`^${goRegexpQuote(pkg)}\\.`)) pool.add(fn);
    }
  }
  const ranked = new Map<string, number>();
  for (const candidate of candidates) {
    for (const name of pool) ranked.set(name, Math.max(ranked.get(name) ?? 0, similarity(candidate, name)));
  }
  return [...ranked.entries()]
    .sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]))
    .slice(0, 5)
    .map(([n]) => n);
}

/** The first word of a Go name: CreateContainer → Create, PullImage → Pull, createContainerLoggers → create. */
function verbOf(name: string): string {
  return /^[A-Za-z][a-z0-9]*/.exec(name)?.[0] ?? name;
}

/** For CRI functions in a binary without CRI: containerd's gRPC services (and runtime) with the same verb. */
async function suggestServices(locator: FunctionLocator, candidates: readonly string[]): Promise<string[]> {
  // Only the first letter's case differs between Go's exported and unexported names: [Cc]reate (RE2 and JS alike).
  const verbs = [...new Set(candidates.map((c) => verbOf(splitFunctionName(c).name)))].map(
    (v) => `[${v.charAt(0).toUpperCase()}${v.charAt(0).toLowerCase()}]${goRegexpQuote(v.slice(1))}`,
  );
  const pool = await locator.listFunctions(
    `^github\\.com/containerd/containerd(/v2)?/(services|plugins/services)/[a-z]+\\.\\(\\*local\\)\\.(${verbs.join('|')})[A-Za-z0-9_]*$`,
  );
  // A service whose noun is in the wanted name comes first: CreateContainer → containers.(*local).Create.
  const nounBonus = (candidate: string, name: string) => {
    const noun = splitFunctionName(name).pkg.split('/').pop()?.replace(/s$/, '') ?? '';
    return noun && splitFunctionName(candidate).name.toLowerCase().includes(noun) ? 3 : 0;
  };
  const ranked = new Map<string, number>();
  for (const candidate of candidates) {
    for (const name of pool)
      ranked.set(
        name,
        Math.max(ranked.get(name) ?? 0, similarity(candidate, name) + nounBonus(candidate, name)),
      );
  }
  return [...ranked.entries()]
    .sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]))
    .slice(0, 3)
    .map(([n]) => n);
}

/** Resolves several sets; this is what `ctrdbg sets check TARGET` prints. The target must be halted. */
export async function checkSets(
  source: PointResolver | FunctionLocator,
  sets: readonly BreakpointSet[],
  options: ResolveOptions & { suggest?: FunctionLocator | false } = {},
): Promise<SetsCheck> {
  const resolved = await resolveSets(source, sets, options);
  const entries = resolved.flatMap((s) => s.entries);
  const locations = entries.flatMap((e) => e.locations);
  return {
    sets: resolved,
    armed: locations.length,
    unresolvedEntries: entries.filter((e) => e.locations.length === 0 && e.notInVersion === undefined).length,
    notInVersion: entries.filter((e) => e.notInVersion !== undefined).length,
    optimizedLocations: locations.filter((l) => l.optimized).length,
  };
}

/** Delve's LoadConfig for a set's loadArgs/loadLocals. */
export function toLoadConfig(config: SetLoadConfig | false): LoadConfig | null {
  if (config === false) return null;
  return {
    FollowPointers: config.followPointers,
    MaxVariableRecurse: config.depth,
    MaxStringLen: config.maxString,
    MaxArrayValues: config.maxArray,
    MaxStructFields: config.maxStructFields,
  };
}

/**
 * A Delve breakpoint name: letters and digits only, not a number (api.ValidBreakpointName), unique per session
 * through `index`.
 */
export function breakpointName(set: string, entry: string, index: number): string {
  const pascal = (s: string) =>
    s
      .split(/[^A-Za-z0-9]+/)
      .filter(Boolean)
      .map((w) => w[0]!.toUpperCase() + w.slice(1))
      .join('');
  return `ctrdbg${pascal(set)}${pascal(entry)}${index > 0 ? String(index + 1) : ''}`;
}

/** Clears breakpoints ctrdbg created (positive ids only: Delve's own -1/-2 panic/throw breakpoints stay). */
export async function clearUserBreakpoints(client: {
  listBreakpoints(): Promise<Breakpoint[]>;
  clearBreakpoint(id: number): Promise<unknown>;
}): Promise<number> {
  let cleared = 0;
  for (const bp of await client.listBreakpoints()) {
    if (bp.id > 0) {
      await client.clearBreakpoint(bp.id);
      cleared++;
    }
  }
  return cleared;
}
