/**
 * `replay --diff A B`: what changed between two hits, path by path, in reading order (recorded expressions,
 * parameters, receiver, locals). Hits of different breakpoints are compared on the paths both have. A value
 * reached both as a recorded expression and inside a parameter (`req.Container.ID`) is one path, shown once.
 * Changes of addresses only (pointers, channels) say nothing about the request and are hidden unless `all`.
 */
import type { HitRecord, RecordedValue } from '../recording/format.js';
import { style } from '../util/output.js';
import { displayChildren, hitSections, type SectionId, shortType, valueText } from './render.js';
import type { View } from './terminal.js';
import { childPath, formatDuration, formatOffset } from './values.js';

export interface FlatValue {
  section: SectionId;
  text: string;
  /** The entry the path is under (an expression, a parameter, the receiver's name, a local). */
  root: string;
  /** The entry is collapsed by default (the receiver, context plumbing): its changes are summarised. */
  collapsed: boolean;
}

/** A hit's values as `path → text`, in reading order; each path once (the first section that has it wins). */
export function flattenHit(hit: HitRecord): Map<string, FlatValue> {
  const out = new Map<string, FlatValue>();
  const walk = (path: string, at: Omit<FlatValue, 'text'>, value: RecordedValue, depth: number) => {
    const put = (p: string, text: string) => {
      if (!out.has(p)) out.set(p, { ...at, text });
    };
    const children = displayChildren(value);
    const own = valueText(value);
    if (children.length === 0 || depth > 32) {
      put(path, own || shortType(value.type));
      return;
    }
    // A pointer to a scalar shows its pointee at the pointer's own path: the value, not the address, is
    // what the path holds then.
    if (own !== '' && !children.some((c) => childPath(path, c.name) === path)) put(path, own);
    for (const child of children) walk(childPath(path, child.name), at, child, depth + 1);
  };
  for (const section of hitSections(hit, [])) {
    for (const entry of section.entries) {
      const at = {
        section: section.id,
        root: section.id === 'receiver' ? 'receiver' : entry.label,
        collapsed: entry.collapsed,
      };
      if (entry.value === undefined) {
        if (!out.has(entry.label))
          out.set(entry.label, { ...at, text: `<error: ${entry.error ?? 'no value'}>` });
      } else walk(entry.label, at, entry.value, 0);
    }
  }
  return out;
}

export interface Change {
  op: 'added' | 'removed' | 'changed';
  path: string;
  section: SectionId;
  /** The entry the path is under; `collapsed` when that entry is summarised by default. */
  root: string;
  collapsed?: boolean;
  before?: string;
  after?: string;
  /** Only addresses differ (pointers, channels): hidden unless --all. */
  addressOnly?: boolean;
}

export interface DiffHitRef {
  seq: number;
  t: number;
  goroutine: number;
  breakpoint: string;
}

export interface DiffData {
  file: string;
  a: DiffHitRef;
  b: DiffHitRef;
  sameBreakpoint: boolean;
  /** B's time minus A's (negative: B came first). */
  deltaMs: number;
  changes: Change[];
  /** Address-only changes left out (0 with --all). */
  hiddenAddressChanges: number;
  /** Across breakpoints: paths only one hit has, not compared. */
  onlyInA: number;
  onlyInB: number;
}

const ADDRESS = /0x[0-9a-f]+/g;

export function isAddressOnly(before: string, after: string): boolean {
  return before !== after && before.replace(ADDRESS, '0x') === after.replace(ADDRESS, '0x');
}

const SECTION_ORDER: SectionId[] = ['expressions', 'results', 'parameters', 'receiver', 'locals'];
const SECTION_TITLE: Record<SectionId, string> = {
  expressions: 'recorded expressions',
  results: 'results',
  parameters: 'parameters',
  receiver: 'receiver',
  locals: 'locals',
};

function where(v: FlatValue): Pick<Change, 'section' | 'root' | 'collapsed'> {
  return v.collapsed
    ? { section: v.section, root: v.root, collapsed: true }
    : { section: v.section, root: v.root };
}

/** Every change from `a` to `b`; across breakpoints only on common paths. */
export function diffHits(
  a: HitRecord,
  b: HitRecord,
): { changes: Change[]; onlyInA: number; onlyInB: number } {
  const before = flattenHit(a);
  const after = flattenHit(b);
  const same = a.breakpoint.name === b.breakpoint.name;
  const changes: Change[] = [];
  let onlyInA = 0;
  let onlyInB = 0;
  for (const [path, value] of before) {
    const next = after.get(path);
    if (next === undefined) {
      if (same) changes.push({ op: 'removed', path, ...where(value), before: value.text });
      else onlyInA++;
    } else if (next.text !== value.text) {
      const change: Change = {
        op: 'changed',
        path,
        ...where(value),
        before: value.text,
        after: next.text,
      };
      if (isAddressOnly(value.text, next.text)) change.addressOnly = true;
      changes.push(change);
    }
  }
  for (const [path, value] of after) {
    if (before.has(path)) continue;
    if (same) changes.push({ op: 'added', path, ...where(value), after: value.text });
    else onlyInB++;
  }
  // Reading order: by section, then where the path sits in the hit (its first appearance in a or b).
  const position = new Map<string, number>();
  let i = 0;
  for (const p of before.keys()) position.set(p, i++);
  for (const p of after.keys()) if (!position.has(p)) position.set(p, i++);
  changes.sort(
    (x, y) =>
      SECTION_ORDER.indexOf(x.section) - SECTION_ORDER.indexOf(y.section) ||
      (position.get(x.path) ?? 0) - (position.get(y.path) ?? 0),
  );
  return { changes, onlyInA, onlyInB };
}

function ref(hit: HitRecord): DiffHitRef {
  return { seq: hit.seq, t: hit.t, goroutine: hit.goroutine.id, breakpoint: hit.breakpoint.name };
}

export interface DiffOptions {
  /** Show address-only changes too. */
  all?: boolean;
  /** Entries whose changes are listed one by one although collapsed by default ('receiver', 'ctx', 'all'). */
  expand?: readonly string[];
  /** How the view tells a reader to expand `name`. */
  expandHint?: (name: string) => string;
}

export function diffView(
  session: { path: string },
  a: HitRecord,
  b: HitRecord,
  options: DiffOptions = {},
): View<DiffData> {
  const all = options.all === true;
  const expand = options.expand ?? [];
  const hint = options.expandHint ?? ((name: string) => `--expand ${name}`);
  const found = diffHits(a, b);
  const shown = all ? found.changes : found.changes.filter((c) => !c.addressOnly);
  const hidden = found.changes.length - shown.length;
  const open = (c: Change) => !c.collapsed || expand.includes('all') || expand.includes(c.root);
  const same = a.breakpoint.name === b.breakpoint.name;
  const delta = b.t - a.t;
  const when =
    delta === 0
      ? `hit ${b.seq} came at the same time`
      : `hit ${b.seq} came ${formatDuration(Math.abs(delta))} ${delta > 0 ? 'after' : 'before'} hit ${a.seq}`;
  const lines = [
    style.bold(
      same
        ? `hit ${a.seq} → hit ${b.seq}  ${a.breakpoint.name}`
        : `hit ${a.seq} ${a.breakpoint.name} → hit ${b.seq} ${b.breakpoint.name}`,
    ),
    `goroutine ${a.goroutine.id} → ${b.goroutine.id}, ${formatOffset(a.t)} → ${formatOffset(b.t)} (${when})`,
  ];
  if (!same) {
    lines.push(
      `different breakpoints: compared on the paths both hits have (${found.onlyInA} only in hit ${a.seq}, ${found.onlyInB} only in hit ${b.seq})`,
    );
  }
  if (shown.length === 0) lines.push('', `no differences${same ? '' : ' on the common paths'}`);
  let section: SectionId | undefined;
  const summarised = new Set<string>();
  for (const c of shown) {
    if (c.section !== section) {
      section = c.section;
      lines.push('', style.bold(SECTION_TITLE[section]));
    }
    if (!open(c)) {
      // The receiver and context plumbing change between any two calls (counters, timestamps): one line.
      if (summarised.has(c.root)) continue;
      summarised.add(c.root);
      const n = shown.filter((x) => x.root === c.root).length;
      lines.push(style.dim(`  ~ ${c.root}: ${n} change${n === 1 ? '' : 's'} (${hint(c.root)} lists them)`));
    } else if (c.op === 'added') lines.push(style.green(`  + ${c.path} = ${c.after}`));
    else if (c.op === 'removed') lines.push(style.red(`  - ${c.path} = ${c.before}`));
    else lines.push(style.yellow(`  ~ ${c.path}: ${c.before} → ${c.after}`));
  }
  const counts = same
    ? (['added', 'removed', 'changed'] as const).map(
        (op) => `${shown.filter((c) => c.op === op).length} ${op}`,
      )
    : [`${shown.length} changed`];
  const tail =
    hidden > 0 ? `; ${hidden} address-only change${hidden === 1 ? '' : 's'} hidden (--all shows them)` : '';
  lines.push('', counts.join(', ') + tail);
  return {
    data: {
      file: session.path,
      a: ref(a),
      b: ref(b),
      sameBreakpoint: same,
      deltaMs: Math.round(delta * 1000) / 1000,
      changes: shown,
      hiddenAddressChanges: hidden,
      onlyInA: found.onlyInA,
      onlyInB: found.onlyInB,
    },
    text: lines.join('\n'),
  };
}
