/**
 * `ctrdbg replay FILE`: the terminal replay of a recorded session. One view per call: summary (default),
 * --list / --filter, --goto N, --diff A B, --html OUT, or the interactive mode on a TTY.
 */
import { stdin, stdout } from 'node:process';
import { usageError } from '../errors.js';
import { openRecording } from '../recording/reader.js';
import { seekHit } from '../recording/tailSeek.js';
import { diffView, hitView, listView, parseFilter, selectHits, summaryView } from '../replay/terminal.js';
import type { CommandOutput } from './output.js';

export interface ReplayOptions {
  list?: boolean;
  goto?: string;
  filter?: string[];
  diff?: string[];
  json?: boolean;
  html?: string;
  maxHits?: number;
  interactive?: boolean;
}

/** Where the interactive mode reads commands and writes screens (a TTY normally; streams in tests). */
export interface ReplayIo {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  isTTY: boolean;
}

function parseSeq(flag: string, text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw usageError(`${flag} expects a hit number (1, 2, …), got "${text}"`);
  }
  return n;
}

export async function replayCommand(
  file: string,
  options: ReplayOptions,
  io: ReplayIo = { input: stdin, output: stdout, isTTY: Boolean(stdout.isTTY && stdin.isTTY) },
): Promise<CommandOutput> {
  const filterExprs = options.filter ?? [];
  const views = [
    options.list,
    options.goto !== undefined,
    options.diff !== undefined,
    options.html !== undefined,
  ].filter(Boolean);
  if (views.length > 1) throw usageError('choose one of --list, --goto, --diff, --html');
  if (options.interactive && options.json) throw usageError('--interactive cannot be combined with --json');
  if (options.interactive && !io.isTTY && io.input === stdin) {
    throw usageError('--interactive needs a terminal', {
      hint: 'Use --list, --goto N or --json when piping.',
    });
  }
  // Parse the filter before opening, so a typo fails fast even on a large file.
  const filter = filterExprs.length > 0 ? parseFilter(filterExprs) : undefined;

  if (options.goto !== undefined) {
    // The fast path: seek to the one line, counting lines from the nearer end of the file.
    const seq = parseSeq('--goto', options.goto);
    const sought = seekHit(file, seq);
    if (sought) return hitView({ path: file, hitCount: sought.hitCount }, sought.hit);
    // The file breaks the contiguous-seq rule: index it whole and look the seq up.
    const session = openRecording(file);
    try {
      return hitView(session, session.readHit(seq));
    } finally {
      session.close();
    }
  }

  if (options.diff !== undefined) {
    if (options.diff.length !== 2) throw usageError('--diff expects two hit numbers: --diff A B');
    const [a, b] = options.diff.map((d) => parseSeq('--diff', d)) as [number, number];
    const sa = seekHit(file, a);
    const sb = sa && seekHit(file, b);
    if (sa && sb) return diffView({ path: file }, sa.hit, sb.hit);
    const session = openRecording(file);
    try {
      return diffView(session, session.readHit(a), session.readHit(b));
    } finally {
      session.close();
    }
  }

  const session = openRecording(file, { hitMeta: true });
  try {
    if (options.html !== undefined) {
      const { writeHtmlReport } = await import('../replay/htmlReport.js');
      return await writeHtmlReport(session, options.html, {
        filter: filterExprs,
        ...(options.maxHits !== undefined ? { maxHits: options.maxHits } : {}),
      });
    }
    // On a terminal with no view asked for, the interactive mode; --filter alone is a (filtered) list.
    if (options.interactive || (io.isTTY && !options.json && !options.list && !filter)) {
      const { runInteractive } = await import('../replay/interactive.js');
      await runInteractive(session, { input: io.input, output: io.output, filter: filterExprs });
      return { data: null, text: '' };
    }
    if (options.list || filter) return listView(session, selectHits(session.meta(), filter), filterExprs);
    return summaryView(session);
  } finally {
    session.close();
  }
}
