/**
 * The terminal views of a recorded session: summary, list and one hit. Each view returns `{ data, text }`
 * (data for --json); nothing here prints. How values read is render.ts; which hits match is selection.ts;
 * the diff is diff.ts and the statistics stats.ts.
 */
import type { HitRecord, RecordedValue } from '../recording/format.js';
import type { RecordingFile } from '../recording/reader.js';
import { formatBytes, formatTable, style } from '../util/output.js';
import {
  displayChildren,
  expressionInline,
  frameText,
  hitSections,
  shortType,
  treeLines,
  valueText,
} from './render.js';
import { baseName, formatDuration, formatOffset, shortFunction } from './values.js';

export interface View<T> {
  data: T;
  text: string;
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
  stoppedMs: number;
  /** Each recorded expression's inline value (render.ts inlineValue). */
  recorded: Array<{ expr: string; value: string }>;
}

export interface ListData {
  file: string;
  filter: string[];
  total: number;
  /** Hits that match the filter (all hits without one). */
  matching: number;
  /** Position of the first listed hit among the matching ones (0-based), and how many are listed. */
  offset: number;
  shown: number;
  hits: ListEntry[];
}

/** Each value in a list row is cut to this many characters, the recorded column to LIST_RECORDED_WIDTH. */
export const LIST_VALUE_WIDTH = 40;
export const LIST_RECORDED_WIDTH = 110;

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
    stoppedMs: hit.stoppedMs,
    recorded: hit.expressions.map((e) => ({ expr: e.expr, value: expressionInline(e, 2048) })),
  };
}

/**
 * Fixed column widths for list rows, known before any hit is read: pages of one listing line up, and a
 * listing can be streamed.
 */
export interface ListColumns {
  seq: number;
  time: number;
  breakpoint: number;
  goroutine: number;
  /** A recording that followed shims: which process each hit is from. */
  process?: number;
}

export function listColumns(session: Pick<RecordingFile, 'header' | 'hitCount'>): ListColumns {
  const names = session.header.breakpoints.map((b) => b.name.length);
  const followed = session.header.breakpoints.some((b) => b.process && b.process !== 'containerd');
  return {
    seq: Math.max(1, String(session.hitCount).length),
    time: 10,
    breakpoint: Math.max(10, ...names),
    goroutine: 9,
    ...(followed ? { process: 18 } : {}),
  };
}

/** A hit's process as a column: `containerd 812`, `shim 4410` (containerd-shim-runc-v2). */
export function processLabel(hit: Pick<HitRecord, 'process'>): string {
  if (!hit.process) return '';
  const binary = hit.process.binary.split('/').pop() ?? hit.process.binary;
  return `${binary.startsWith('containerd-shim') ? 'shim' : binary} ${hit.process.pid}`;
}

function cutTo(text: string, width: number): string {
  return text.length > width ? `${text.slice(0, width - 1)}…` : text;
}

export function listHeading(columns: ListColumns): string {
  return [
    '#'.padEnd(columns.seq),
    'time'.padEnd(columns.time),
    ...(columns.process ? ['process'.padEnd(columns.process)] : []),
    'breakpoint'.padEnd(columns.breakpoint),
    'goroutine'.padEnd(columns.goroutine),
    'recorded',
  ].join('  ');
}

export function listRow(hit: HitRecord, columns: ListColumns): string {
  const recorded = hit.expressions
    .map((e) => `${e.expr}=${expressionInline(e, LIST_VALUE_WIDTH)}`)
    .join('  ');
  return [
    String(hit.seq).padEnd(columns.seq),
    formatOffset(hit.t).padEnd(columns.time),
    ...(columns.process ? [processLabel(hit).padEnd(columns.process)] : []),
    hit.breakpoint.name.padEnd(columns.breakpoint),
    `g${hit.goroutine.id}`.padEnd(columns.goroutine),
    cutTo(recorded, LIST_RECORDED_WIDTH),
  ].join('  ');
}

export function listTitle(total: number, matching: number, filter: readonly string[]): string {
  return filter.length > 0
    ? `${matching} of ${total} hits match ${filter.map((f) => JSON.stringify(f)).join(' and ')}`
    : `${total} hits`;
}

/** Warnings under a list: what the recording lacks. */
export function listNotes(session: Pick<RecordingFile, 'truncated' | 'end'>): string[] {
  const notes: string[] = [];
  if (session.truncated)
    notes.push(`${style.yellow('!')} the cut-short last line (line ${session.truncated.line}) is not shown`);
  if (!session.end) notes.push(`${style.yellow('!')} no end record: the recording did not finish`);
  return notes;
}

/** The hits `indices` (the matching ones, in file order), from position `offset`, at most `limit` of them. */
export function listView(
  session: RecordingFile,
  indices: readonly number[],
  filter: readonly string[],
  page: { offset?: number; limit?: number } = {},
): View<ListData> {
  const offset = Math.min(page.offset ?? 0, indices.length);
  const end = page.limit === undefined ? indices.length : Math.min(indices.length, offset + page.limit);
  const columns = listColumns(session);
  const entries: ListEntry[] = [];
  const rows: string[] = [];
  for (let i = offset; i < end; i++) {
    const hit = session.readHitAt(indices[i] ?? 0);
    entries.push(listEntry(hit));
    rows.push(listRow(hit, columns));
  }
  const total = session.hitCount;
  let heading = listTitle(total, indices.length, filter);
  if (offset > 0 || end < indices.length) {
    heading += entries.length
      ? ` (showing ${offset + 1}–${end}${filter.length ? ' of those' : ''})`
      : ' (none from there)';
  }
  const lines = [style.bold(heading)];
  if (indices.length === 0) lines.push(filter.length ? noMatchText(filter) : '(no hits)');
  else if (rows.length) lines.push(listHeading(columns), ...rows);
  if (end < indices.length) {
    const next = session.meta().seq[indices[end] ?? 0];
    lines.push(`… ${indices.length - end} more: --from ${next} for the next ones`);
  }
  lines.push(...listNotes(session));
  return {
    data: {
      file: session.path,
      filter: [...filter],
      total,
      matching: indices.length,
      offset,
      shown: entries.length,
      hits: entries,
    },
    text: lines.join('\n'),
  };
}

/** What to say when a filter matches nothing (never "end of the recording"). */
export function noMatchText(filter: readonly string[]): string {
  return `no hit matches ${filter.map((f) => JSON.stringify(f)).join(' and ')}: a bare word searches names and recorded values, EXPR=VALUE one expression (see --help)`;
}

// ---- one hit -----------------------------------------------------------------------------------------------

export function renderValueTree(value: RecordedValue, indent: string, label = value.name): string[] {
  const type = value.type ? ` ${style.dim(shortType(value.type))}` : '';
  const text = valueText(value);
  const lines = [`${indent}${label}${type}${text !== '' ? ` = ${text}` : ''}`];
  for (const child of displayChildren(value)) lines.push(...renderValueTree(child, `${indent}  `));
  return lines;
}

export interface HitData {
  file: string;
  hits: number;
  hit: HitRecord;
}

export interface HitViewOptions {
  /** Entries to show whole: 'receiver', a parameter's name, or 'all'. */
  expand?: readonly string[];
  /** How the view tells a reader to expand `name` (the CLI's flag; the interactive command). */
  expandHint?: (name: string) => string;
}

/** The lines of one hit, top down by what matters: expressions, parameters, receiver, locals, stack. */
export function hitLines(
  session: Pick<RecordingFile, 'hitCount'>,
  hit: HitRecord,
  options: HitViewOptions = {},
): string[] {
  const hint = options.expandHint ?? ((name: string) => `--expand ${name}`);
  const lines: string[] = [];
  lines.push(style.bold(`hit ${hit.seq} of ${session.hitCount}  ${formatOffset(hit.t)}  ${hit.wall}`));
  lines.push(
    formatTable([
      ['breakpoint', `${hit.breakpoint.name} (id ${hit.breakpoint.id}, set ${hit.breakpoint.set})`],
      [
        'goroutine',
        `${hit.goroutine.id}${hit.goroutine.function ? ` (${shortFunction(hit.goroutine.function)})` : ''}, thread ${hit.thread}`,
      ],
      ...(hit.process ? [['process', `${hit.process.pid} ${hit.process.binary}`]] : []),
      ['stopped', `${hit.stoppedMs} ms`],
      [
        'location',
        `${shortFunction(hit.location.function)}  ${baseName(hit.location.file)}:${hit.location.line}`,
      ],
      ['', `${hit.location.file}:${hit.location.line}`],
    ]),
  );
  for (const section of hitSections(hit, options.expand ?? [])) {
    if ((section.id === 'receiver' || section.id === 'results') && section.entries.length === 0) continue;
    lines.push('', style.bold(section.title));
    if (section.entries.length === 0) lines.push('  (none)');
    for (const entry of section.entries) {
      if (entry.value === undefined) {
        lines.push(`  ${entry.label} ${style.red(`<error: ${entry.error ?? 'no value'}>`)}`);
      } else if (entry.collapsed) {
        const v = entry.value;
        const text = valueText(v);
        const hidden = treeLines(v) - 1;
        lines.push(
          `  ${entry.label}${v.type ? ` ${style.dim(shortType(v.type))}` : ''}${text ? ` = ${text}` : ''}` +
            (hidden > 0
              ? style.dim(
                  `  (${hidden} line${hidden === 1 ? '' : 's'} collapsed: ${hint(section.id === 'receiver' ? 'receiver' : entry.label)})`,
                )
              : ''),
        );
      } else lines.push(...renderValueTree(entry.value, '  ', entry.label));
    }
  }
  lines.push('', style.bold('stack'));
  if (hit.stack.length === 0) lines.push('  (not recorded)');
  hit.stack.forEach((frame, i) => {
    const dir = frame.file.slice(0, frame.file.length - baseName(frame.file).length);
    lines.push(`  ${String(i).padStart(2)}  ${frameText(frame)}  ${style.dim(dir)}`);
  });
  return lines;
}

/** One hit; `session` needs only its path and hit count (a seeked read has no full index). */
export function hitView(
  session: Pick<RecordingFile, 'path' | 'hitCount'>,
  hit: HitRecord,
  options: HitViewOptions = {},
): View<HitData> {
  return {
    data: { file: session.path, hits: session.hitCount, hit },
    text: hitLines(session, hit, options).join('\n'),
  };
}
