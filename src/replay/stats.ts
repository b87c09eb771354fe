/**
 * `replay --stats [EXPR]`: one streaming pass over the (filtered) hits: hits per breakpoint and per second,
 * the slowest stops, and for each EXPR the distinct values it took. Only the metadata index is held for
 * every hit; a hit's line is read only when a filter term or an EXPR needs its values, and only for hits of
 * breakpoints that record that EXPR.
 */
import { usageError } from '../errors.js';
import type { HitRecord } from '../recording/format.js';
import type { RecordingFile } from '../recording/reader.js';
import type { CompiledFilter } from './filter.js';
import { expressionInline } from './render.js';
import { HitMatcher, recordedExpressions } from './selection.js';
import type { View } from './terminal.js';
import { formatDuration, formatOffset } from './values.js';

export interface BreakpointStats {
  name: string;
  hits: number;
  /** Share of the counted hits, 0..1. */
  share: number;
  /** Hits per second over the span of the counted hits. */
  perSecond: number;
  stoppedMs: { median: number; max: number };
}

export interface ValueStats {
  expr: string;
  /** Counted hits that recorded the expression. */
  hits: number;
  distinct: number;
  /** Most frequent first; at most STATS_MAX_VALUES. */
  values: Array<{ value: string; count: number; firstSeq: number }>;
}

export interface StatsData {
  file: string;
  filter: string[];
  hits: number;
  goroutines: number;
  span: { firstMs: number; lastMs: number; durationMs: number } | null;
  perSecond: number;
  breakpoints: BreakpointStats[];
  timeline: { bucketMs: number; buckets: Array<{ fromMs: number; hits: number }> };
  slowest: Array<{ seq: number; t: number; stoppedMs: number; breakpoint: string; goroutine: number }>;
  values: ValueStats[];
}

export const STATS_SLOWEST = 10;
export const STATS_MAX_VALUES = 20;
const MAX_BUCKETS = 40;
const NICE_BUCKETS_MS = [
  1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000, 3_600_000,
];

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;

export function statsView(
  session: RecordingFile,
  filter: CompiledFilter | undefined,
  filterTexts: readonly string[],
  exprs: readonly string[],
): View<StatsData> {
  const recorded = recordedExpressions(session.header);
  for (const e of exprs) {
    if (!recorded.includes(e)) {
      throw usageError(`--stats ${e}: no breakpoint of ${session.path} records that expression`, {
        hint: recorded.length
          ? `Recorded expressions: ${recorded.join(', ')}.`
          : 'This recording has no recorded expressions.',
      });
    }
  }
  const meta = session.meta();
  // Which breakpoints (by index into meta.breakpoints) record each EXPR: other hits are never read.
  const records = exprs.map((e) => {
    const names = new Set(
      session.header.breakpoints.filter((b) => b.expressions.includes(e)).map((b) => b.name),
    );
    return meta.breakpoints.map((b) => names.has(b.name));
  });
  const matcher = new HitMatcher(session, filter);
  const perBp = new Map<number, number[]>();
  const goroutines = new Set<number>();
  const times: number[] = [];
  const slowest: Array<{ index: number; stoppedMs: number }> = [];
  const values = exprs.map(() => ({
    hits: 0,
    counts: new Map<string, { count: number; firstSeq: number }>(),
  }));

  for (let i = 0; i < session.hitCount; i++) {
    const read: { hit?: HitRecord } = {};
    if (!matcher.matches(i, (h) => (read.hit = h))) continue;
    const bp = meta.breakpoint[i] ?? 0;
    const stopped = meta.stoppedMs[i] ?? 0;
    let list = perBp.get(bp);
    if (!list) {
      list = [];
      perBp.set(bp, list);
    }
    list.push(stopped);
    goroutines.add(meta.goroutine[i] ?? 0);
    times.push(meta.t[i] ?? 0);
    // Keep the slowest few in a small sorted array: no sort of every hit.
    if (slowest.length < STATS_SLOWEST || stopped > (slowest[slowest.length - 1]?.stoppedMs ?? 0)) {
      slowest.push({ index: i, stoppedMs: stopped });
      slowest.sort((a, b) => b.stoppedMs - a.stoppedMs || a.index - b.index);
      if (slowest.length > STATS_SLOWEST) slowest.pop();
    }
    exprs.forEach((expr, k) => {
      if (!records[k]?.[bp]) return;
      read.hit ??= session.readHitAt(i);
      const e = read.hit.expressions.find((x) => x.expr === expr);
      if (!e) return;
      const acc = values[k]!;
      acc.hits++;
      const text = expressionInline(e, 200);
      const seen = acc.counts.get(text);
      if (seen) seen.count++;
      else acc.counts.set(text, { count: 1, firstSeq: meta.seq[i] ?? 0 });
    });
  }

  const n = times.length;
  const first = times[0] ?? 0;
  const last = times[n - 1] ?? 0;
  const duration = last - first;
  const seconds = duration > 0 ? duration / 1000 : 0;
  const rate = (count: number) => (seconds > 0 ? round3(count / seconds) : 0);
  const breakpoints: BreakpointStats[] = [...perBp.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([bp, stops]) => ({
      name: meta.breakpoints[bp]?.name ?? '',
      hits: stops.length,
      share: n ? round3(stops.length / n) : 0,
      perSecond: rate(stops.length),
      stoppedMs: { median: round3(median(stops)), max: round3(Math.max(...stops)) },
    }));
  // Header order (the sets' order), not first-hit order.
  const order = session.header.breakpoints.map((b) => b.name);
  breakpoints.sort((a, b) => (order.indexOf(a.name) + 1 || 1e9) - (order.indexOf(b.name) + 1 || 1e9));

  const bucketMs =
    NICE_BUCKETS_MS.find((ms) => Math.floor(duration / ms) + 1 <= MAX_BUCKETS) ??
    Math.ceil(duration / MAX_BUCKETS / 3_600_000) * 3_600_000;
  const origin = Math.floor(first / bucketMs) * bucketMs;
  const buckets: Array<{ fromMs: number; hits: number }> = [];
  if (n > 0) {
    const count = Math.floor((last - origin) / bucketMs) + 1;
    for (let b = 0; b < count; b++) buckets.push({ fromMs: origin + b * bucketMs, hits: 0 });
    for (const t of times) {
      const bucket = buckets[Math.floor((t - origin) / bucketMs)];
      if (bucket) bucket.hits++;
    }
  }

  const data: StatsData = {
    file: session.path,
    filter: [...filterTexts],
    hits: n,
    goroutines: goroutines.size,
    span: n ? { firstMs: first, lastMs: last, durationMs: round3(duration) } : null,
    perSecond: rate(n),
    breakpoints,
    timeline: { bucketMs, buckets },
    slowest: slowest.map(({ index, stoppedMs }) => ({
      seq: meta.seq[index] ?? 0,
      t: meta.t[index] ?? 0,
      stoppedMs,
      breakpoint: meta.breakpoints[meta.breakpoint[index] ?? 0]?.name ?? '',
      goroutine: meta.goroutine[index] ?? 0,
    })),
    values: exprs.map((expr, k) => {
      const acc = values[k]!;
      const sorted = [...acc.counts.entries()]
        .map(([value, c]) => ({ value, count: c.count, firstSeq: c.firstSeq }))
        .sort((a, b) => b.count - a.count || a.firstSeq - b.firstSeq);
      return { expr, hits: acc.hits, distinct: sorted.length, values: sorted.slice(0, STATS_MAX_VALUES) };
    }),
  };
  return { data, text: statsText(data, session.hitCount) };
}

function table(rows: string[][], right: number[] = []): string[] {
  const widths: number[] = [];
  for (const r of rows)
    r.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, c.length);
    });
  return rows.map((r) =>
    r
      .map((c, i) =>
        i === r.length - 1 && !right.includes(i)
          ? c
          : right.includes(i)
            ? c.padStart(widths[i] ?? 0)
            : c.padEnd(widths[i] ?? 0),
      )
      .join('  ')
      .trimEnd(),
  );
}

/** `+0s`, `+15s`, `+2m30s`: where a time bucket starts. */
function bucketLabel(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `+${s}s`;
  const m = Math.floor(s / 60);
  return `+${m}m${s % 60 ? `${s % 60}s` : ''}`;
}

function statsText(d: StatsData, total: number): string {
  const lines: string[] = [];
  const of = d.filter.length
    ? ` (of ${total}; filter ${d.filter.map((f) => JSON.stringify(f)).join(' and ')})`
    : '';
  if (!d.span) {
    lines.push(`0 hits${of}`);
    return lines.join('\n');
  }
  lines.push(
    `${d.hits} hits${of} on ${d.goroutines} goroutine${d.goroutines === 1 ? '' : 's'} over ${formatDuration(d.span.durationMs)} (${formatOffset(d.span.firstMs)} … ${formatOffset(d.span.lastMs)}), ${d.perSecond.toFixed(1)} hits/s`,
  );
  lines.push('', 'per breakpoint');
  lines.push(
    ...table(
      [
        ['  breakpoint', 'hits', 'share', 'hits/s', 'stopped median', 'max'],
        ...d.breakpoints.map((b) => [
          `  ${b.name}`,
          String(b.hits),
          `${Math.round(b.share * 100)}%`,
          String(b.perSecond),
          `${b.stoppedMs.median} ms`,
          `${b.stoppedMs.max} ms`,
        ]),
      ],
      [1, 2, 3, 4, 5],
    ),
  );
  const bucket = d.timeline.bucketMs;
  lines.push('', `hits per ${bucket === 1000 ? 'second' : formatDuration(bucket).replace(/\.0+ /, ' ')}`);
  const peak = Math.max(...d.timeline.buckets.map((b) => b.hits), 1);
  for (const b of d.timeline.buckets) {
    const bar = '█'.repeat(Math.round((b.hits / peak) * 40)) || (b.hits > 0 ? '▏' : '');
    lines.push(
      `  ${bucketLabel(b.fromMs).padStart(8)}  ${String(b.hits).padStart(String(peak).length)}  ${bar}`,
    );
  }
  lines.push('', `slowest stops (containerd held at the breakpoint)`);
  lines.push(
    ...table(
      [
        ['  #', 'stopped', 'breakpoint', 'goroutine', 'time'],
        ...d.slowest.map((s) => [
          `  ${s.seq}`,
          `${s.stoppedMs} ms`,
          s.breakpoint,
          `g${s.goroutine}`,
          formatOffset(s.t),
        ]),
      ],
      [1],
    ),
  );
  for (const v of d.values) {
    lines.push(
      '',
      `distinct values of ${v.expr}: ${v.distinct} in ${v.hits} hit${v.hits === 1 ? '' : 's'}${v.distinct > v.values.length ? ` (the ${v.values.length} most frequent)` : ''}`,
    );
    if (v.values.length === 0) lines.push('  (no hit recorded it)');
    lines.push(
      ...table(
        [['  count', 'first', 'value'], ...v.values.map((x) => [`  ${x.count}`, `#${x.firstSeq}`, x.value])],
        [0],
      ),
    );
  }
  return lines.join('\n');
}
