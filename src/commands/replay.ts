/**
 * `ctrdbg replay FILE`: the terminal replay of a recorded session. One view per call: summary (default),
 * --list / --filter (paged on a terminal, or --from/--limit), --goto N, --diff A B, --stats [EXPR],
 * --html OUT, or the interactive mode on a TTY.
 */
import { stdin, stdout } from 'node:process';
import { createInterface } from 'node:readline';
import { usageError } from '../errors.js';
import type { HitRecord } from '../recording/format.js';
import type { RecordingFile } from '../recording/reader.js';
import { openRecording } from '../recording/reader.js';
import { seekHit } from '../recording/tailSeek.js';
import { diffView } from '../replay/diff.js';
import { Pager, pageLinesOf } from '../replay/pager.js';
import { HitMatcher, parseFilter, selectHits } from '../replay/selection.js';
import {
  hitView,
  listColumns,
  listHeading,
  listNotes,
  listRow,
  listTitle,
  listView,
  noMatchText,
  summaryView,
} from '../replay/terminal.js';
import { style } from '../util/output.js';
import type { CommandOutput } from './output.js';

export interface ReplayOptions {
  list?: boolean;
  goto?: string;
  filter?: string[];
  diff?: string[];
  /** `--stats` alone is `true`; each `--stats EXPR` adds an expression. */
  stats?: boolean | string[];
  json?: boolean;
  html?: string;
  maxHits?: number;
  interactive?: boolean;
  /** --list: start at the first matching hit whose number is at least this. */
  from?: string;
  /** --list: at most this many hits. */
  limit?: string;
  /** --diff: show address-only changes too. */
  all?: boolean;
  /** --goto: entries to show whole; --diff: entries whose changes are listed ('receiver', a parameter, 'all'). */
  expand?: string[];
}

/** Where the interactive mode and the pager read and write (a TTY normally; streams in tests). */
export interface ReplayIo {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  isTTY: boolean;
  /** Lines per page when paging; defaults to the terminal's height. */
  pageLines?: number;
}

function parseSeq(flag: string, text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw usageError(`${flag} expects a hit number (1, 2, …), got "${text}"`);
  }
  return n;
}

function parseCount(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(String(text).trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw usageError(`${flag} expects a positive number, got "${text}"`);
  }
  return n;
}

export async function replayCommand(
  file: string,
  options: ReplayOptions,
  io: ReplayIo = { input: stdin, output: stdout, isTTY: Boolean(stdout.isTTY && stdin.isTTY) },
): Promise<CommandOutput> {
  const filterTexts = options.filter ?? [];
  const stats = options.stats === undefined || options.stats === false ? undefined : options.stats;
  const views = [
    options.list,
    options.goto !== undefined,
    options.diff !== undefined,
    options.html !== undefined,
    stats !== undefined,
  ].filter(Boolean);
  if (views.length > 1) throw usageError('choose one of --list, --goto, --diff, --stats, --html');
  if (options.interactive && options.json) throw usageError('--interactive cannot be combined with --json');
  if (options.interactive && !io.isTTY && io.input === stdin) {
    throw usageError('--interactive needs a terminal', {
      hint: 'Use --list, --goto N, --stats or --json when piping.',
    });
  }
  const from = parseCount('--from', options.from);
  const limit = parseCount('--limit', options.limit);
  if (
    (from !== undefined || limit !== undefined) &&
    !(options.list || (filterTexts.length && views.length === 0))
  )
    throw usageError('--from and --limit page a listing: use them with --list (or --filter)');
  if (options.all && options.diff === undefined)
    throw usageError('--all goes with --diff (it shows address-only changes)');

  if (options.goto !== undefined) {
    const seq = parseSeq('--goto', options.goto);
    const viewOptions = { expand: options.expand ?? [] };
    // The fast path: seek to the one line, counting lines from the nearer end of the file.
    const sought = seekHit(file, seq);
    if (sought) return hitView({ path: file, hitCount: sought.hitCount }, sought.hit, viewOptions);
    // The file breaks the contiguous-seq rule: index it whole and look the seq up.
    const session = openRecording(file);
    try {
      return hitView(session, session.readHit(seq), viewOptions);
    } finally {
      session.close();
    }
  }

  if (options.diff !== undefined) {
    if (options.diff.length !== 2) throw usageError('--diff expects two hit numbers: --diff A B');
    const [a, b] = options.diff.map((d) => parseSeq('--diff', d)) as [number, number];
    const diffOptions = { all: options.all === true, expand: options.expand ?? [] };
    const sa = seekHit(file, a);
    const sb = sa && seekHit(file, b);
    if (sa && sb) return diffView({ path: file }, sa.hit, sb.hit, diffOptions);
    const session = openRecording(file);
    try {
      return diffView(session, session.readHit(a), session.readHit(b), diffOptions);
    } finally {
      session.close();
    }
  }

  const session = openRecording(file, { hitMeta: true });
  try {
    // Parsed against the session's recorded expressions (they are filter keys too).
    const filter = parseFilter(session.header, filterTexts);
    if (options.html !== undefined) {
      const { writeHtmlReport } = await import('../replay/htmlReport.js');
      return await writeHtmlReport(session, options.html, {
        filter: filterTexts,
        ...(options.maxHits !== undefined ? { maxHits: options.maxHits } : {}),
      });
    }
    if (stats !== undefined) {
      const { statsView } = await import('../replay/stats.js');
      return statsView(session, filter, filterTexts, stats === true ? [] : stats);
    }
    const listing = options.list || filter !== undefined;
    // On a terminal with no view asked for, the interactive mode; --filter alone is a (filtered) list.
    if (options.interactive || (io.isTTY && !options.json && !listing)) {
      const { runInteractive } = await import('../replay/interactive.js');
      await runInteractive(session, {
        input: io.input,
        output: io.output,
        filter: filterTexts,
        pageLines: io.pageLines ?? (io.isTTY ? pageLinesOf(io.output, 0) : 0),
        expand: options.expand ?? [],
      });
      return { data: null, text: '' };
    }
    if (listing) {
      const indices = selectHits(session, filter);
      const offset = from === undefined ? 0 : firstAtOrAfter(session, indices, from);
      if (io.isTTY && !options.json && limit === undefined) {
        await pageList(session, filter, filterTexts, from ?? 1, io);
        return { data: null, text: '' };
      }
      return listView(session, indices, filterTexts, { offset, ...(limit !== undefined ? { limit } : {}) });
    }
    return summaryView(session);
  } finally {
    session.close();
  }
}

/** Position in `indices` of the first hit numbered `seq` or more. */
function firstAtOrAfter(session: RecordingFile, indices: readonly number[], seq: number): number {
  const meta = session.meta();
  const at = indices.findIndex((i) => (meta.seq[i] ?? 0) >= seq);
  return at < 0 ? indices.length : at;
}

/**
 * `--list` on a terminal: a page at a time, reading hits only as pages are shown (the first page of a
 * 100,000-hit listing appears at once); Enter for the next page, q to stop.
 */
async function pageList(
  session: RecordingFile,
  filter: ReturnType<typeof parseFilter>,
  filterTexts: readonly string[],
  fromSeq: number,
  io: ReplayIo,
): Promise<void> {
  const write = (text: string) => io.output.write(text);
  const meta = session.meta();
  const columns = listColumns(session);
  const matcher = new HitMatcher(session, filter);
  const start = meta.seq.findIndex((s) => s >= fromSeq);
  let next = start < 0 ? session.hitCount : start;
  /** Seqs of the rows produced so far (the pager reads one row ahead of what it shows). */
  const seqs: number[] = [];
  let heading = true;
  const source = (count: number): string[] => {
    const lines: string[] = [];
    if (heading) {
      heading = false;
      lines.push(listHeading(columns));
    }
    while (lines.length < count && next < session.hitCount) {
      const index = next++;
      const read: { hit?: HitRecord } = {};
      if (!matcher.matches(index, (h) => (read.hit = h))) continue;
      const hit = read.hit ?? session.readHitAt(index);
      lines.push(listRow(hit, columns));
      seqs.push(hit.seq);
    }
    return lines;
  };
  const total = session.hitCount;
  write(
    `${style.bold(filterTexts.length ? `hits matching ${filterTexts.map((f) => JSON.stringify(f)).join(' and ')} (of ${total})` : listTitle(total, total, []))}\n`,
  );
  const pager = new Pager({ write, pageLines: io.pageLines ?? pageLinesOf(io.output, 24) });
  let more = pager.show(source, (shown) => {
    const rows = shown - 1;
    return `${rows} hits listed, up to #${seqs[rows - 1] ?? 0} of ${total}`;
  });
  if (seqs.length === 0) write(`${filterTexts.length ? noMatchText(filterTexts) : '(no hits)'}\n`);
  if (more) {
    const rl = createInterface({ input: io.input, terminal: false });
    try {
      for await (const line of rl) {
        if (!pager.answer(line)) break;
        more = pager.active;
        if (!more) break;
      }
    } finally {
      rl.close();
    }
  }
  const notes = listNotes(session);
  if (!pager.active && notes.length) write(`${notes.join('\n')}\n`);
}
