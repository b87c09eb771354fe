/**
 * Breakpoint sets: named, versioned YAML files that say where to stop in containerd and what to record there,
 * by fully qualified function name, so one set works across containerd versions (breakpoint-sets/README.md has
 * the schema). Loading validates everything and reports errors as file:line:column.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { z } from 'zod';
import { breakpointSetsDir } from '../config.js';
import { inputError } from '../errors.js';
import { editDistance } from '../util/editDistance.js';
import { parseGoExpr } from './goExpr.js';
import { parseVersionRange } from './versions.js';

export const BREAKPOINT_SET_SCHEMA = 'ctrdbg.breakpoint-set/v1';

const slug = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]*$/, 'must be lower-case letters, digits and dashes (e.g. "cri-create")');

/** A Go function as Delve names it: `import/path.Func`, `import/path.(*Type).Method`, `import/path.Type.Method`. */
const functionName = z
  .string()
  .min(1)
  .regex(/^\S+\.\S+$/, 'must be a fully qualified Go function name like "github.com/x/y.(*T).M" (no spaces)');

const loadConfig = z.strictObject({
  /** Levels of nested structs/pointers to read (Delve's MaxVariableRecurse). */
  depth: z.number().int().min(0).max(10).default(1),
  /** Bytes of each string (MaxStringLen). */
  maxString: z
    .number()
    .int()
    .min(0)
    .max(1 << 20)
    .default(64),
  /** Elements of each slice/array/map (MaxArrayValues). */
  maxArray: z.number().int().min(0).max(10_000).default(16),
  /** Fields of each struct; -1 = all (MaxStructFields). */
  maxStructFields: z.number().int().min(-1).default(-1),
  followPointers: z.boolean().default(true),
});

export type SetLoadConfig = z.infer<typeof loadConfig>;

const entrySchema = z.strictObject({
  name: slug,
  description: z.string().optional(),
  /** Every candidate that exists in the binary is armed; the others are reported, not fatal. */
  candidates: z.array(functionName).min(1, 'needs at least one candidate function'),
  /**
   * Where in the function to stop: its entry (plus `lineOffset` lines), every return (`return`: the results are
   * recorded), or the line after its first call to one of `after` (`after-call`), found from the binary's code.
   */
  at: z.enum(['entry', 'return', 'after-call']).default('entry'),
  /** at: after-call — the function called, by its names across versions, like `candidates`. */
  after: z.array(functionName).min(1, 'needs at least one callee').optional(),
  /** at: return — record only the returns whose error result (the last) is not nil. */
  onlyFailures: z.boolean().default(false),
  /**
   * at: return — how deep the results are read (default: depth 1, strings ≤ 256 bytes). Delve reads results
   * and parameters with one configuration, so the parameters (the receiver too) are read as deep.
   */
  loadResults: loadConfig.optional(),
  /** Lines into the function body (0 = entry, where only parameters are assigned). */
  lineOffset: z.number().int().min(0).max(10_000).default(0),
  /** A Delve condition expression; empty = always stop. */
  condition: z.string().default(''),
  /** Expressions evaluated at each hit (Delve loads them with its fixed config: depth 1, strings ≤ 64 bytes). */
  record: z.array(z.string().min(1)).default([]),
  /**
   * Parameters to record by name, loaded like `record` expressions (depth 1): the lean way to see a request
   * without the method's receiver. A receiver is recorded only when named here (or by loadArgs).
   */
  params: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a parameter name')).default([]),
  /** Every argument, the receiver included, with this configuration (costly on big receivers); false = none. */
  loadArgs: z.union([z.literal(false), loadConfig]).default(false),
  loadLocals: z.union([z.literal(false), loadConfig]).default(false),
  /** Stack frames recorded per hit; 0 = none. Each frame costs a stack walk while containerd is stopped. */
  stack: z.number().int().min(0).max(100).default(0),
  /** Record the goroutine (id, start location) at each hit; its id is always recorded. */
  goroutine: z.boolean().default(false),
  /** Expressions (paths such as `r.Auth`) whose values are never recorded, in args, locals or record. */
  redact: z.array(z.string().min(1)).default([]),
  /**
   * The containerd versions the entry exists in (`>=2.0`, `>=1.7 <2.0`); outside them a miss is shown as
   * "not in this version", not as a failure. Left out: every version.
   */
  versions: z
    .string()
    .refine((v) => parseVersionRange(v) !== undefined, {
      message: 'must be comparators like ">=2.0" or ">=1.7 <2.0"',
    })
    .optional(),
});

const setSchema = z.strictObject({
  schema: z.literal(BREAKPOINT_SET_SCHEMA, {
    error: `must be "${BREAKPOINT_SET_SCHEMA}" (the only schema this ctrdbg reads)`,
  }),
  name: slug,
  description: z.string().default(''),
  /** The process the functions live in. Shim functions run in containerd-shim-runc-v2, not containerd. */
  process: z.enum(['containerd', 'containerd-shim-runc-v2']).default('containerd'),
  entries: z.array(entrySchema).min(1, 'needs at least one entry'),
});

export type BreakpointEntry = z.infer<typeof entrySchema>;

export interface BreakpointSet extends z.infer<typeof setSchema> {
  /** The file the set was read from, or "<inline>". */
  source: string;
  /** True for the sets shipped with ctrdbg. */
  builtin: boolean;
}

/** One problem in a set file, with its position (1-based). */
export interface SetProblem {
  file: string;
  line: number;
  column: number;
  message: string;
}

export function formatProblem(p: SetProblem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.message}`;
}

/**
 * The unnamed result an expression starts from (`~r0` in `~r0.Process.Args`), or undefined. Delve cannot parse
 * these names; at a return ctrdbg reads such expressions from the results it loaded (loadResults).
 */
export function resultRoot(expr: string): string | undefined {
  return /^\s*\(?\s*(~r\d+)/.exec(expr)?.[1];
}

/** True when `expr` is a redacted path or inside one (`r.Auth`, `r.Auth.Password`, `(r.Auth)`). */
export function isRedacted(expr: string, redact: readonly string[]): boolean {
  const normalized = normalizeExpr(expr);
  return redact.some((rule) => {
    const r = normalizeExpr(rule);
    return normalized === r || normalized.startsWith(`${r}.`) || normalized.startsWith(`${r}[`);
  });
}

function normalizeExpr(expr: string): string {
  return (
    expr
      .replace(/\s+/g, '')
      .replace(/^\(+|\)+$/g, '')
      .replace(/^\*+/, '')
      // A map key with or without quotes: m["k"] and m[k] are one path.
      .replace(/\["([^"\]]*)"\]/g, '[$1]')
  );
}

/**
 * Parses and validates one set's YAML text. Throws an input error listing every problem as file:line:column.
 */
export function parseBreakpointSet(text: string, file = '<inline>', builtin = false): BreakpointSet {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const problems: SetProblem[] = [];
  const at = (offset: number | undefined, message: string) => {
    const pos = lineCounter.linePos(offset ?? 0);
    problems.push({ file, line: pos.line, column: pos.col, message });
  };
  for (const error of [...doc.errors, ...doc.warnings])
    at(error.pos[0], error.message.split('\n')[0] ?? error.code);
  if (problems.length > 0) throw problemsError(file, problems);
  // An empty file (or one of comments only) is no document at all: zod would only say "received null".
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    throw inputError(`${file} is empty: it holds no breakpoint set.`, {
      hint: `A set starts with \`schema: ${BREAKPOINT_SET_SCHEMA}\`, \`name:\` and \`entries:\` (breakpoint-sets/README.md); delete the file if it is not meant to be one.`,
    });
  }
  if (!isMap(doc.contents)) {
    at(
      doc.contents.range?.[0],
      `the file holds ${isSeq(doc.contents) ? 'a list' : 'a single value'}, not a breakpoint set (a mapping with schema, name and entries)`,
    );
    throw problemsError(file, problems);
  }

  const raw = doc.toJS() as unknown;
  // Expressions are checked on the raw entries, so their problems are listed with the schema's ones.
  checkExpressions(raw, doc.contents, at);
  const result = setSchema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
      const node = nodeAt(doc.contents, path);
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) {
          const keyNode = keyNodeAt(node, key);
          at(
            keyNode?.range?.[0] ?? node?.range?.[0],
            `unknown field "${key}"${where(path)}${suggestKey(key)}`,
          );
        }
      } else {
        at(node?.range?.[0] ?? nearestRange(doc.contents, path), `${issue.message}${where(path)}`);
      }
    }
    throw problemsError(file, problems);
  }
  const set: BreakpointSet = { ...result.data, source: file, builtin };
  checkSemantics(set, doc.contents, at);
  if (problems.length > 0) throw problemsError(file, problems);
  return set;
}

/** Checks zod cannot express: unique entry names, nothing recorded that is also redacted. */
function checkSemantics(
  set: BreakpointSet,
  root: Node | null,
  at: (offset: number | undefined, message: string) => void,
): void {
  const names = new Set<string>();
  set.entries.forEach((entry, i) => {
    if (names.has(entry.name))
      at(nodeAt(root, ['entries', i, 'name'])?.range?.[0], `duplicate entry name "${entry.name}"`);
    names.add(entry.name);
    const seen = new Set<string>();
    entry.candidates.forEach((candidate, j) => {
      if (seen.has(candidate))
        at(nodeAt(root, ['entries', i, 'candidates', j])?.range?.[0], `duplicate candidate "${candidate}"`);
      seen.add(candidate);
    });
    entry.record.forEach((expr, j) => {
      if (isRedacted(expr, entry.redact))
        at(
          nodeAt(root, ['entries', i, 'record', j])?.range?.[0],
          `"${expr}" is redacted in this entry and can never be recorded; remove it from record`,
        );
    });
    entry.params.forEach((param, j) => {
      if (isRedacted(param, entry.redact))
        at(
          nodeAt(root, ['entries', i, 'params', j])?.range?.[0],
          `parameter "${param}" is redacted in this entry and can never be recorded; remove it from params`,
        );
    });
    const entryNode = nodeAt(root, ['entries', i]);
    if (entry.at === 'after-call' && !entry.after)
      at(
        entryNode?.range?.[0],
        `entry "${entry.name}" is at: after-call but names no callee: add after: [...]`,
      );
    if (entry.at !== 'after-call' && entry.after)
      at(
        keyNodeAt(entryNode, 'after')?.range?.[0],
        `"after" only applies to at: after-call (entry "${entry.name}" is at: ${entry.at})`,
      );
    if (entry.onlyFailures && entry.at !== 'return')
      at(
        keyNodeAt(entryNode, 'onlyFailures')?.range?.[0],
        `"onlyFailures" only applies to at: return (a call's error is known when it returns)`,
      );
    if (entry.loadResults && entry.at !== 'return')
      at(
        keyNodeAt(entryNode, 'loadResults')?.range?.[0],
        `"loadResults" only applies to at: return (results exist when the function returns)`,
      );
    entry.record.forEach((expr, j) => {
      const result = resultRoot(expr);
      if (result && entry.at !== 'return')
        at(
          nodeAt(root, ['entries', i, 'record', j])?.range?.[0],
          `"${expr}" reads the result ${result}: results exist only at: return (at ${entry.at} they are not set yet)`,
        );
    });
    if (entry.at !== 'entry' && entry.lineOffset)
      at(
        keyNodeAt(entryNode, 'lineOffset')?.range?.[0],
        `"lineOffset" only applies to at: entry; at: ${entry.at} places the point itself`,
      );
  });
}

/** Every `record:` and `condition:` string of the raw entries, whatever else is wrong with them. */
function checkExpressions(
  raw: unknown,
  root: Node | null,
  at: (offset: number | undefined, message: string) => void,
): void {
  const entries = (raw as { entries?: unknown } | null)?.entries;
  if (!Array.isArray(entries)) return;
  entries.forEach((entry: unknown, i) => {
    const { record, condition } = (entry ?? {}) as { record?: unknown; condition?: unknown };
    if (Array.isArray(record))
      record.forEach((expr: unknown, j) => {
        if (typeof expr === 'string' && expr !== '')
          checkExpression(nodeAt(root, ['entries', i, 'record', j]), expr, 'record expression', at);
      });
    if (typeof condition === 'string' && condition !== '')
      checkExpression(nodeAt(root, ['entries', i, 'condition']), condition, 'condition', at);
  });
}

/**
 * Delve parses `record:` and `condition:` as Go expressions; one that is not (`a +`) would only ever say
 * `<eval error>` at each hit, so it is a load error, pointed at the column where it goes wrong.
 */
function checkExpression(
  node: Node | undefined,
  expr: string,
  what: string,
  at: (offset: number | undefined, message: string) => void,
): void {
  const parsed = parseGoExpr(expr);
  if (parsed.ok) return;
  const start = node?.range?.[0];
  let offset = start;
  if (start !== undefined && isScalar(node)) {
    if (node.type === 'PLAIN') offset = start + parsed.error.offset;
    else if (node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE')
      offset = start + 1 + parsed.error.offset;
  }
  at(offset, `${what} ${JSON.stringify(expr)} is not a Go expression: ${parsed.error.message}`);
}

function where(path: (string | number)[]): string {
  return path.length > 0 ? ` (at ${path.join('.')})` : '';
}

const knownEntryKeys = Object.keys(entrySchema.shape);
const knownSetKeys = Object.keys(setSchema.shape);

function suggestKey(key: string): string {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const known of new Set([...knownEntryKeys, ...knownSetKeys])) {
    const d = editDistance(key.toLowerCase(), known.toLowerCase());
    if (d < bestDistance) {
      best = known;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 3))
    ? `; did you mean "${best}"?`
    : '';
}

function nodeAt(root: Node | null | undefined, path: (string | number)[]): Node | undefined {
  let node: unknown = root;
  for (const key of path) {
    if (
      node &&
      typeof node === 'object' &&
      'items' in node &&
      Array.isArray((node as { items: unknown[] }).items)
    ) {
      const items = (node as { items: unknown[] }).items;
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && p.key.value === key);
        node = pair?.value ?? undefined;
        if (!node) return undefined;
      } else if (typeof key === 'number') {
        node = items[key];
      } else return undefined;
    } else return undefined;
  }
  return node as Node | undefined;
}

function keyNodeAt(mapNode: Node | undefined, key: string): Node | undefined {
  if (!mapNode || !isMap(mapNode)) return undefined;
  const pair = mapNode.items.find((p) => isScalar(p.key) && p.key.value === key);
  return pair?.key as Node | undefined;
}

/** For a missing field the node does not exist: point at its parent. */
function nearestRange(root: Node | null, path: (string | number)[]): number | undefined {
  for (let n = path.length - 1; n >= 0; n--) {
    const node = nodeAt(root, path.slice(0, n));
    if (node?.range) return node.range[0];
  }
  return root?.range?.[0];
}

function problemsError(file: string, problems: SetProblem[]) {
  problems.sort((a, b) => a.line - b.line || a.column - b.column);
  const shown = problems.map(formatProblem);
  return inputError(`invalid breakpoint set ${file}:\n  ${shown.join('\n  ')}`, {
    hint: 'The schema is described in breakpoint-sets/README.md.',
    details: { problems },
  });
}

export interface LoadSetsOptions {
  /** Extra directory of user sets (`--sets-dir`). */
  setsDir?: string;
  /** Replaces the built-in directory (tests). */
  builtinDir?: string;
}

/** Reads every `*.yaml`/`*.yml` in a directory, sorted by file name. */
export function readSetsDir(dir: string, builtin: boolean): BreakpointSet[] {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) throw inputError(`${dir} is not a directory`);
    names = readdirSync(dir);
  } catch (error) {
    if ((error as { kind?: string }).kind) throw error;
    throw inputError(`cannot read breakpoint sets directory ${dir}: ${(error as Error).message}`, {
      cause: error,
      hint: 'Check the --sets-dir path.',
    });
  }
  return names
    .filter((n) => /\.ya?ml$/i.test(n))
    .sort()
    .map((n) => {
      const file = join(dir, n);
      return parseBreakpointSet(readFileSync(file, 'utf8'), file, builtin);
    });
}

/** Built-in sets plus the user's; two sets with one name is an error naming both files. */
export function loadBreakpointSets(options: LoadSetsOptions = {}): BreakpointSet[] {
  const sets = readSetsDir(options.builtinDir ?? breakpointSetsDir, true);
  if (options.setsDir) sets.push(...readSetsDir(resolve(options.setsDir), false));
  const byName = new Map<string, BreakpointSet>();
  for (const set of sets) {
    const other = byName.get(set.name);
    if (other)
      throw inputError(`two breakpoint sets are named "${set.name}": ${other.source} and ${set.source}`, {
        hint: 'Rename one of them (the `name:` field); set names must be unique.',
      });
    byName.set(set.name, set);
  }
  return sets;
}

/** Looks a set up by name, with a list of the known ones when it is missing. */
export function findBreakpointSet(sets: readonly BreakpointSet[], name: string): BreakpointSet {
  const set = sets.find((s) => s.name === name);
  if (!set)
    throw inputError(`no breakpoint set named "${name}"`, {
      hint: `Known sets: ${sets.map((s) => s.name).join(', ')}. \`ctrdbg sets list\` shows them.`,
    });
  return set;
}
