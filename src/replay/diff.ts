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
}

/** A hit's values as `path → text`, in reading order; each path once (the first section that has it wins). */
export function flattenHit(hit: HitRecord): Map<string, FlatValue> {
  const out = new Map<string, FlatValue>();
  const put = (path: string, section: SectionId, text: string) => {
    if (!out.has(path)) out.set(path, { section, text });
  };
  const walk = (path: string, section: SectionId, value: RecordedValue, depth: number) => {
    const children = displayChildren(value);
    const own = valueText(value);
    if (children.length === 0 || depth > 32) {
      put(path, section, own || shortType(value.type));
      return;
    }
    if (own !== '') put(path, section, own);
    for (const child of children) walk(childPath(path, child.name), section, child, depth + 1);
  };
  for (const section of hitSections(hit, ['all'])) {
    for (const entry of section.entries) {
      if (entry.value === undefined) put(entry.label, section.id, `<error: ${entry.error ?? 'no value'}>`);
      else walk(entry.label, section.id, entry.value, 0);
    }
  }
  return out;
}

export interface Change {
  op: 'added' | 'removed' | 'changed';
  path: string;
  section: SectionId;
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

const SECTION_ORDER: SectionId[] = ['expressions', 'parameters', 'receiver', 'locals'];
const SECTION_TITLE: Record<SectionId, string> = {
  expressions: 'recorded expressions',
  parameters: 'parameters',
  receiver: 'receiver',
  locals: 'locals',
};

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
      if (same) changes.push({ op: 'removed', path, section: value.section, before: value.text });
      else onlyInA++;
    } else if (next.text !== value.text) {
      const change: Change = {
        op: 'changed',
        path,
        section: value.section,
        before: value.text,
        after: next.text,
      };
      if (isAddressOnly(value.text, next.text)) change.addressOnly = true;
      changes.push(change);
    }
  }
  for (const [path, value] of after) {
    if (before.has(path)) continue;
    if (same) changes.push({ op: 'added', path, section: value.section, after: value.text });
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

export function diffView(
  session: { path: string },
  a: HitRecord,
  b: HitRecord,
  options: { all?: boolean } = {},
): View<DiffData> {
  const all = options.all === true;
  const found = diffHits(a, b);
  const shown = all ? found.changes : found.changes.filter((c) => !c.addressOnly);
  const hidden = found.changes.length - shown.length;
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
  for (const c of shown) {
    if (c.section !== section) {
      section = c.section;
      lines.push('', style.bold(SECTION_TITLE[section]));
    }
    if (c.op === 'added') lines.push(style.green(`  + ${c.path} = ${c.after}`));
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
