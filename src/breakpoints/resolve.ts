/**
 * Resolves breakpoint sets against the binary Delve is attached to: which candidate functions exist, where they
 * are (file:line), whether they were optimised, and — when nothing matches — the closest names the binary does
 * have. Talks to Delve only through the narrow `FunctionLocator` interface (DelveClient satisfies it), so the
 * scoring and bookkeeping are testable with a fake.
 *
 * Every call here needs a stopped target: callers halt first and keep the window short.
 */
import type { Breakpoint, BreakpointRequest, LoadConfig, Location } from '../delve/types.js';
import { isCtrdbgError } from '../errors.js';
import { editDistance } from '../util/editDistance.js';
import type { BreakpointEntry, BreakpointSet, SetLoadConfig } from './sets.js';
import { inVersionRange } from './versions.js';

/** The part of DelveClient that resolution needs. */
export interface FunctionLocator {
  listFunctions(filter: string): Promise<string[]>;
  findLocation(loc: string): Promise<Location[]>;
}

export interface ResolvedLocation {
  candidate: string;
  function: string;
  file: string;
  line: number;
  /** Compiled with optimisations: recorded values may be missing or wrong. */
  optimized: boolean;
  pcs: number;
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
  errors: { candidate: string; message: string }[];
  /**
   * Set when nothing matched and the binary's containerd is outside the entry's `versions`: the entry belongs
   * to another release line (e.g. `>=2.0`), which is not a failure.
   */
  notInVersion?: string;
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

/**
 * Resolves one set. Per candidate: an anchored ListFunctions (exists?), then FindLocation for the function, then
 * for a line offset FindLocation of `file:line+offset`. Misses get suggestions from functions with the same name
 * elsewhere, or else from the same package by edit distance.
 */
export async function resolveSet(
  locator: FunctionLocator,
  set: BreakpointSet,
  options: ResolveOptions = {},
): Promise<ResolvedSet> {
  const notes: string[] = [];
  const entries: ResolvedEntry[] = [];
  if (set.process !== 'containerd')
    notes.push(
      `the set's functions run in ${set.process}, a separate process from containerd; attach to it instead`,
    );
  // One anchored alternation for the whole set: each ListFunctions scans every function in the binary, and all
  // of this happens while containerd is halted.
  const all = [...new Set(set.entries.flatMap((e) => e.candidates))];
  const present = new Set(await locator.listFunctions(`^(${all.map(goRegexpQuote).join('|')})$`));
  let criPresent: boolean | undefined;
  for (const entry of set.entries) {
    const resolved: ResolvedEntry = {
      set: set.name,
      entry: entry.name,
      locations: [],
      missing: [],
      suggestions: [],
      errors: [],
    };
    for (const candidate of entry.candidates) {
      if (!present.has(candidate)) {
        resolved.missing.push(candidate);
        continue;
      }
      try {
        resolved.locations.push(await locate(locator, candidate, entry.lineOffset));
      } catch (error) {
        resolved.errors.push({
          candidate,
          message: isCtrdbgError(error) || error instanceof Error ? error.message : String(error),
        });
      }
    }
    const version = options.containerdVersion;
    if (
      resolved.locations.length === 0 &&
      entry.versions &&
      version &&
      !inVersionRange(version, entry.versions)
    ) {
      resolved.notInVersion = entry.versions;
    } else if (resolved.locations.length === 0) {
      let explained = false;
      if (entry.candidates.every(isCriFunction)) {
        criPresent ??= (await locator.listFunctions(CRI_PACKAGES_FILTER)).length > 0;
        if (!criPresent) {
          explained = true;
          const note =
            'no CRI in this binary: no pkg/cri or internal/cri package (containerd built without the CRI plugin, ' +
            "e.g. Debian bookworm's 1.6.20 and the default lab); use lab-create or tasks-create, or the CRI lab (ctrdbg lab up --cri)";
          if (!notes.includes(note)) notes.push(note);
        }
      }
      // Without CRI, same-named methods elsewhere (an OpenTelemetry `Start`) would only mislead; the nearest
      // names worth showing are containerd's own services, which the CRI plugin calls into.
      resolved.suggestions = explained
        ? await suggestServices(locator, entry.candidates)
        : await suggest(locator, entry.candidates);
    }
    entries.push(resolved);
  }
  return {
    set: set.name,
    entries,
    complete: entries.every((e) => e.locations.length > 0 || e.notInVersion !== undefined),
    notes,
  };
}

async function locate(locator: FunctionLocator, fn: string, lineOffset: number): Promise<ResolvedLocation> {
  const [loc] = await locator.findLocation(fn);
  if (!loc) throw new Error(`Delve found no location for ${fn}`);
  const at = lineOffset === 0 ? loc : (await locator.findLocation(`${loc.file}:${loc.line + lineOffset}`))[0];
  if (!at)
    throw new Error(`no code at ${loc.file}:${loc.line + lineOffset} (lineOffset ${lineOffset} in ${fn})`);
  return {
    candidate: fn,
    function: at.function?.name ?? fn,
    file: at.file,
    line: at.line,
    optimized: at.function?.optimized ?? loc.function?.optimized ?? false,
    pcs: at.pcs?.length ?? (at.pc ? 1 : 0),
  };
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
  locator: FunctionLocator,
  sets: readonly BreakpointSet[],
  options: ResolveOptions = {},
): Promise<SetsCheck> {
  const resolved: ResolvedSet[] = [];
  for (const set of sets) resolved.push(await resolveSet(locator, set, options));
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

/**
 * The CreateBreakpoint request for one resolved location of an entry. Values are captured by Delve at the stop
 * (`variables`, `LoadArgs`, `LoadLocals`, `stacktrace`, `goroutine`), so a hit costs one round trip.
 */
export function toBreakpointRequest(
  entry: BreakpointEntry,
  location: ResolvedLocation,
  name: string,
  options: { tracepoint?: boolean } = {},
): BreakpointRequest {
  return {
    name,
    file: location.file,
    line: location.line,
    Cond: entry.condition,
    continue: options.tracepoint ?? false,
    goroutine: entry.goroutine,
    stacktrace: entry.stack,
    variables: entry.record,
    LoadArgs: toLoadConfig(entry.loadArgs),
    LoadLocals: toLoadConfig(entry.loadLocals),
  };
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
