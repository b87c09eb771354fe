/**
 * The terminal views of a recorded session: summary, list, one hit, diff of two hits, and the filter
 * language they share. Each view returns `{ data, text }` (data for --json); nothing here prints.
 */
import { inputError, usageError } from '../errors.js';
import type { HitRecord, RecordedValue } from '../recording/format.js';
import type { HitMeta } from '../recording/hitMeta.js';
import type { RecordingFile } from '../recording/reader.js';
import { formatBytes, formatTable, style } from '../util/output.js';
import {
  baseName,
  displayChildren,
  flattenHit,
  formatDuration,
  formatOffset,
  formatValue,
  previewExpressions,
  shortFunction,
  shortType,
} from './values.js';

export interface View<T> {
  data: T;
  text: string;
}

// ---- filter ------------------------------------------------------------------------------------------------

/** One hit's identifying fields, as the metadata index holds them. */
export interface HitKey {
  seq: number;
  goroutine: number;
  breakpoint: { id: number; name: string; set: string };
  location: { function: string; file: string; line: number };
}

export type HitPredicate = (hit: HitKey) => boolean;

const FILTER_KEYS = ['set', 'bp', 'breakpoint', 'function', 'func', 'goroutine', 'g', 'file', 'seq'] as const;

/**
 * Parses filter expressions; several are ANDed. `key=value` with keys set, bp|breakpoint (name or entry),
 * function|func (substring), goroutine|g, file (substring), seq (N or A-B); a bare word is a
 * case-insensitive substring of the breakpoint name, set, function or file.
 */
export function parseFilter(expressions: readonly string[]): HitPredicate {
  const terms = expressions
    .flatMap((e) => e.split(','))
    .map((e) => e.trim())
    .filter((e) => e !== '');
  const predicates = terms.map((term): HitPredicate => {
    const eq = term.indexOf('=');
    if (eq < 0) {
      const needle = term.toLowerCase();
      return (h) =>
        h.breakpoint.name.toLowerCase().includes(needle) ||
        h.breakpoint.set.toLowerCase().includes(needle) ||
        h.location.function.toLowerCase().includes(needle) ||
        h.location.file.toLowerCase().includes(needle);
    }
    const key = term.slice(0, eq).trim().toLowerCase();
    const value = term.slice(eq + 1).trim();
    switch (key) {
      case 'set':
        return (h) => h.breakpoint.set === value;
      case 'bp':
      case 'breakpoint':
        return (h) =>
          h.breakpoint.name === value ||
          h.breakpoint.name.endsWith(`/${value}`) ||
          String(h.breakpoint.id) === value;
      case 'function':
      case 'func':
        return (h) => h.location.function.includes(value);
      case 'file':
        return (h) => h.location.file.includes(value);
      case 'goroutine':
      case 'g': {
        const id = Number(value);
        if (!Number.isInteger(id)) throw usageError(`--filter ${term}: goroutine must be a number`);
        return (h) => h.goroutine === id;
      }
      case 'seq': {
        const m = /^(\d+)(?:-(\d+))?$/.exec(value);
        if (!m) throw usageError(`--filter ${term}: seq must be N or A-B`);
        const from = Number(m[1]);
        const to = m[2] === undefined ? from : Number(m[2]);
        return (h) => h.seq >= from && h.seq <= to;
      }
      default:
        throw usageError(`unknown filter key "${key}" in --filter ${term}`, {
          hint: `Use one of ${FILTER_KEYS.join(', ')}, or a bare word to match breakpoint/set/function/file.`,
        });
    }
  });
  return (hit) => predicates.every((p) => p(hit));
}

export function hitKeyAt(meta: HitMeta, index: number): HitKey {
  return {
    seq: meta.seq[index] ?? 0,
    goroutine: meta.goroutine[index] ?? 0,
    breakpoint: meta.breakpoints[meta.breakpoint[index] ?? 0] ?? { id: 0, name: '', set: '' },
    location: meta.locations[meta.location[index] ?? 0] ?? { function: '', file: '', line: 0 },
  };
}

/** Indices (file order) of the hits that pass `filter`. */
export function selectHits(meta: HitMeta, filter: HitPredicate | undefined): number[] {
  const out: number[] = [];
  for (let i = 0; i < meta.seq.length; i++) if (!filter || filter(hitKeyAt(meta, i))) out.push(i);
  return out;
}

// ---- summary -----------------------------------------------------------------------------------------------

export interface SummaryData {
  file: string;
  bytes: number;
  format: { name: string; version: number };
  createdAt: string;
  ctrdbgVersion: string;
  target: RecordingFile['header']['target'];
  containerd: RecordingFile['header']['containerd'];
  delve?: RecordingFile['header']['delve'];
  sets: string[];
  trigger?: string;
  redaction: RecordingFile['header']['redaction'];
  hits: number;
  span: { firstMs: number; lastMs: number; durationMs: number } | null;
  goroutines: number;
  breakpoints: Array<{
    id: number;
    name: string;
    set: string;
    function: string;
    file: string;
    line: number;
    hits: number;
  }>;
  end: RecordingFile['end'] | null;
  truncated: RecordingFile['truncated'] | null;
  warnings: string[];
}

export function summaryView(session: RecordingFile): View<SummaryData> {
  const meta = session.meta();
  const { header, end, truncated } = session;
  const counts = new Map<string, number>();
  for (let i = 0; i < meta.seq.length; i++) {
    const name = meta.breakpoints[meta.breakpoint[i] ?? 0]?.name ?? '';
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  const breakpoints = header.breakpoints.map((b) => ({
    id: b.id,
    name: b.name,
    set: b.set,
    function: b.function,
    file: b.file,
    line: b.line,
    hits: counts.get(b.name) ?? 0,
  }));
  // Hits on a breakpoint the header does not list (should not happen) still deserve a row.
  for (const key of meta.breakpoints) {
    if (!breakpoints.some((b) => b.name === key.name)) {
      breakpoints.push({ ...key, function: '', file: '', line: 0, hits: counts.get(key.name) ?? 0 });
    }
  }
  const n = meta.seq.length;
  const span =
    n === 0
      ? null
      : {
          firstMs: meta.t[0] ?? 0,
          lastMs: meta.t[n - 1] ?? 0,
          durationMs: (meta.t[n - 1] ?? 0) - (meta.t[0] ?? 0),
        };
  const warnings: string[] = [];
  if (truncated)
    warnings.push(
      `the last line (line ${truncated.line}, ${truncated.bytes} bytes) was ${truncated.reason} and was skipped`,
    );
  if (!end) warnings.push('no end record: the recorder did not finish (killed, or still recording)');
  if (end && end.hits !== n) warnings.push(`the end record counts ${end.hits} hits, the file holds ${n}`);
  if (end && end.dropped > 0) warnings.push(`the recorder dropped ${end.dropped} hits`);
  const data: SummaryData = {
    file: session.path,
    bytes: session.size,
    format: { name: header.format, version: header.version },
    createdAt: header.createdAt,
    ctrdbgVersion: header.ctrdbgVersion,
    target: header.target,
    containerd: header.containerd,
    ...(header.delve ? { delve: header.delve } : {}),
    sets: header.sets,
    ...(header.trigger !== undefined ? { trigger: header.trigger } : {}),
    redaction: header.redaction,
    hits: n,
    span,
    goroutines: new Set(meta.goroutine).size,
    breakpoints,
    end: end ?? null,
    truncated: truncated ?? null,
    warnings,
  };

  const c = header.containerd;
  const rows: string[][] = [
    ['session', `${session.path} (${formatBytes(session.size)}, format v${header.version})`],
    ['recorded', `${header.createdAt} by ctrdbg ${header.ctrdbgVersion}`],
    [
      'target',
      `${header.target.spec} (${header.target.kind}, ${header.target.user}@${header.target.host}:${header.target.port})`,
    ],
    [
      'containerd',
      `${c.version}${c.revision ? ` (revision ${c.revision})` : ''}${c.goVersion ? `, ${c.goVersion}` : ''}, pid ${c.pid}`,
    ],
    ['  binary', c.binary],
    ['  sha256', c.sha256],
  ];
  if (c.buildId) rows.push(['  build-id', c.buildId]);
  if (header.delve) rows.push(['delve', `${header.delve.version} (API v${header.delve.apiVersion})`]);
  rows.push(['sets', header.sets.join(', ') || '(none)']);
  if (header.trigger !== undefined) rows.push(['trigger', header.trigger]);
  rows.push([
    'redaction',
    header.redaction.enabled
      ? `on (${header.redaction.rules.length} rules)`
      : style.yellow('off: values were recorded as they were'),
  ]);
  rows.push([
    'hits',
    span
      ? `${n} on ${data.goroutines} goroutines over ${formatDuration(span.durationMs)} (${formatOffset(span.firstMs)} … ${formatOffset(span.lastMs)})`
      : '0',
  ]);
  rows.push([
    'end',
    end
      ? `${end.reason}${end.message ? `: ${end.message}` : ''} at ${formatOffset(end.t)}; ${end.detached ? 'detached' : style.red('NOT detached')}` +
        (end.containerdServing === undefined
          ? ''
          : end.containerdServing
            ? ', containerd serving'
            : style.red(', containerd NOT serving'))
      : style.yellow('missing (the recorder did not finish)'),
  ]);
  rows.push([
    'truncated',
    truncated
      ? style.yellow(`yes: line ${truncated.line} (${truncated.bytes} bytes) ${truncated.reason}; skipped`)
      : 'no',
  ]);
  const table = formatTable([
    ['breakpoint', 'set', 'hits', 'location'],
    ...breakpoints.map((b) => [
      b.name,
      b.set,
      String(b.hits),
      b.function ? `${shortFunction(b.function)}  ${baseName(b.file)}:${b.line}` : '',
    ]),
  ]);
  const warningText = warnings.length
    ? `\n\n${warnings.map((w) => `${style.yellow('!')} ${w}`).join('\n')}`
    : '';
  return { data, text: `${formatTable(rows)}\n\n${table}${warningText}` };
}

// ---- list --------------------------------------------------------------------------------------------------

export interface ListEntry {
  seq: number;
  t: number;
  breakpoint: string;
  set: string;
  goroutine: number;
  function: string;
  file: string;
  line: number;
  preview: string;
}

export interface ListData {
  file: string;
  filter: string[];
  total: number;
  shown: number;
  hits: ListEntry[];
}

export function listEntry(hit: HitRecord): ListEntry {
  return {
    seq: hit.seq,
    t: hit.t,
    breakpoint: hit.breakpoint.name,
    set: hit.breakpoint.set,
    goroutine: hit.goroutine.id,
    function: hit.location.function,
    file: hit.location.file,
    line: hit.location.line,
    preview: previewExpressions(hit, 1_000),
  };
}

export function listView(
  session: RecordingFile,
  indices: readonly number[],
  filter: readonly string[],
): View<ListData> {
  const entries: ListEntry[] = [];
  const rows: string[][] = [];
  for (const index of indices) {
    const hit = session.readHitAt(index);
    entries.push(listEntry(hit));
    rows.push([
      String(hit.seq),
      formatOffset(hit.t),
      hit.breakpoint.name,
      `g${hit.goroutine.id}`,
      `${shortFunction(hit.location.function)}:${hit.location.line}`,
      previewExpressions(hit),
    ]);
  }
  const total = session.hitCount;
  const heading =
    filter.length > 0
      ? `${indices.length} of ${total} hits match ${filter.map((f) => JSON.stringify(f)).join(' and ')}`
      : `${total} hits`;
  const body = rows.length
    ? formatTable([['#', 'time', 'breakpoint', 'goroutine', 'where', 'recorded'], ...rows])
    : '(no hits)';
  const notes: string[] = [];
  if (session.truncated)
    notes.push(`${style.yellow('!')} the cut-short last line (line ${session.truncated.line}) is not shown`);
  if (!session.end) notes.push(`${style.yellow('!')} no end record: the recording did not finish`);
  return {
    data: { file: session.path, filter: [...filter], total, shown: entries.length, hits: entries },
    text: `${style.bold(heading)}\n${body}${notes.length ? `\n${notes.join('\n')}` : ''}`,
  };
}

// ---- one hit -----------------------------------------------------------------------------------------------

export function renderValueTree(value: RecordedValue, indent: string, label = value.name): string[] {
  const type = value.type ? ` ${style.dim(shortType(value.type))}` : '';
  const text = formatValue(value);
  const lines = [`${indent}${label}${type}${text !== '' && text !== '{…}' ? ` = ${text}` : ''}`];
  for (const child of displayChildren(value)) lines.push(...renderValueTree(child, `${indent}  `));
  return lines;
}

export interface HitData {
  file: string;
  hits: number;
  hit: HitRecord;
}

/** One hit; `session` needs only its path and hit count (a seeked read has no full index). */
export function hitView(session: Pick<RecordingFile, 'path' | 'hitCount'>, hit: HitRecord): View<HitData> {
  const lines: string[] = [];
  lines.push(style.bold(`hit ${hit.seq} of ${session.hitCount}  ${formatOffset(hit.t)}  ${hit.wall}`));
  lines.push(
    formatTable([
      ['breakpoint', `${hit.breakpoint.name} (id ${hit.breakpoint.id}, set ${hit.breakpoint.set})`],
      [
        'goroutine',
        `${hit.goroutine.id}${hit.goroutine.function ? ` (${shortFunction(hit.goroutine.function)})` : ''}, thread ${hit.thread}`,
      ],
      ['stopped', `${hit.stoppedMs} ms`],
      ['location', hit.location.function],
      ['', `${hit.location.file}:${hit.location.line}`],
    ]),
  );
  lines.push('', style.bold('stack'));
  hit.stack.forEach((frame, i) => {
    lines.push(`  ${String(i).padStart(2)}  ${frame.function}`, `      ${frame.file}:${frame.line}`);
  });
  const section = (title: string, values: RecordedValue[]) => {
    lines.push('', style.bold(title));
    if (values.length === 0) lines.push('  (none)');
    for (const v of values) lines.push(...renderValueTree(v, '  '));
  };
  section('args', hit.args);
  section('locals', hit.locals);
  lines.push('', style.bold('expressions'));
  if (hit.expressions.length === 0) lines.push('  (none)');
  for (const e of hit.expressions) {
    if (e.value === undefined) lines.push(`  ${e.expr} ${style.red(`<error: ${e.error ?? 'no value'}>`)}`);
    else lines.push(...renderValueTree(e.value, '  ', e.expr));
  }
  return { data: { file: session.path, hits: session.hitCount, hit }, text: lines.join('\n') };
}

// ---- diff --------------------------------------------------------------------------------------------------

export interface Change {
  op: 'added' | 'removed' | 'changed';
  path: string;
  before?: string;
  after?: string;
}

export interface DiffData {
  file: string;
  breakpoint: string;
  a: { seq: number; t: number; goroutine: number };
  b: { seq: number; t: number; goroutine: number };
  changes: Change[];
}

export function diffHits(a: HitRecord, b: HitRecord): Change[] {
  const before = flattenHit(a);
  const after = flattenHit(b);
  const changes: Change[] = [];
  for (const [path, value] of before) {
    const next = after.get(path);
    if (next === undefined) changes.push({ op: 'removed', path, before: value });
    else if (next !== value) changes.push({ op: 'changed', path, before: value, after: next });
  }
  for (const [path, value] of after) if (!before.has(path)) changes.push({ op: 'added', path, after: value });
  // Keep the order people read a hit in (args, locals, expressions), then by path.
  const rank = (p: string) => (p.startsWith('args') ? 0 : p.startsWith('locals') ? 1 : 2);
  return changes.sort(
    (x, y) => rank(x.path) - rank(y.path) || (x.path < y.path ? -1 : x.path > y.path ? 1 : 0),
  );
}

export function diffView(session: Pick<RecordingFile, 'path'>, a: HitRecord, b: HitRecord): View<DiffData> {
  if (a.breakpoint.name !== b.breakpoint.name) {
    throw inputError(
      `--diff compares two hits of the same breakpoint: hit ${a.seq} is ${a.breakpoint.name}, hit ${b.seq} is ${b.breakpoint.name}`,
      { hint: `List the hits of one breakpoint with --filter bp=${a.breakpoint.name} --list.` },
    );
  }
  const changes = diffHits(a, b);
  const lines = [
    style.bold(`hit ${a.seq} → hit ${b.seq}  ${a.breakpoint.name}`),
    `goroutine ${a.goroutine.id} → ${b.goroutine.id}, ${formatOffset(a.t)} → ${formatOffset(b.t)} (${formatDuration(b.t - a.t)} later)`,
    '',
  ];
  if (changes.length === 0) lines.push('no differences in args, locals or expressions');
  for (const c of changes) {
    if (c.op === 'added') lines.push(style.green(`+ ${c.path} = ${c.after}`));
    else if (c.op === 'removed') lines.push(style.red(`- ${c.path} = ${c.before}`));
    else lines.push(style.yellow(`~ ${c.path}: ${c.before} → ${c.after}`));
  }
  const counts = (['added', 'removed', 'changed'] as const).map(
    (op) => `${changes.filter((c) => c.op === op).length} ${op}`,
  );
  lines.push('', counts.join(', '));
  return {
    data: {
      file: session.path,
      breakpoint: a.breakpoint.name,
      a: { seq: a.seq, t: a.t, goroutine: a.goroutine.id },
      b: { seq: b.seq, t: b.t, goroutine: b.goroutine.id },
      changes,
    },
    text: lines.join('\n'),
  };
}
