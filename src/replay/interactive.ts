/**
 * The interactive terminal replay: a cursor over the (filtered) hits, driven by short commands read line by
 * line. It only needs a readable and a writable stream, so tests drive it with plain streams, no TTY. A
 * screen taller than the terminal is paged: Enter shows the next page, q stops, any command ends the paging.
 */
import { createInterface } from 'node:readline';
import { isCtrdbgError, usageError } from '../errors.js';
import type { RecordingFile } from '../recording/reader.js';
import { diffView } from './diff.js';
import type { CompiledFilter } from './filter.js';
import { filterHelp } from './filter.js';
import { arraySource, Pager } from './pager.js';
import { hitSections } from './render.js';
import { describeFilter, parseFilter, selectHits } from './selection.js';
import { hitLines, listView, noMatchText, summaryView } from './terminal.js';

export interface InteractiveOptions {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  /** Initial filter expressions (from --filter). */
  filter?: string[];
  prompt?: string;
  /** Lines per page; 0: never page (not a terminal). */
  pageLines?: number;
  /** Entries shown whole from the start (--expand). */
  expand?: string[];
}

export const INTERACTIVE_HELP = [
  'commands:',
  '  n, next, Enter     next hit                   p, prev          previous hit',
  '  g N, goto N        hit N                      l, list          the (filtered) hits',
  '  f TEXT, filter     keep hits matching TEXT    f clear          all hits again',
  '  f                  the current filter and the filter language',
  '  d N, diff N        what changed from the current hit to hit N (d N all: addresses, receiver, ctx too)',
  '  e NAME, expand     show the current hit with NAME whole (receiver, ctx, all)',
  '  st [EXPR], stats   hits per breakpoint and second, slowest stops, distinct values of EXPR',
  '  s, summary         the session summary        h, help, ?       this help',
  '  q, quit, Ctrl-D    leave',
  'A screen taller than the terminal pages: Enter for the next page, q to stop paging.',
].join('\n');

/** Runs until `quit` or the end of input. Errors in a command are shown and the session goes on. */
export async function runInteractive(session: RecordingFile, options: InteractiveOptions): Promise<void> {
  const { output } = options;
  const write = (text: string) => output.write(text.endsWith('\n') ? text : `${text}\n`);
  const pager = new Pager({ write: (t) => output.write(t), pageLines: options.pageLines ?? 0 });
  const total = session.hitCount;
  let filterTexts = options.filter ?? [];
  let filter: CompiledFilter | undefined = parseFilter(session.header, filterTexts);
  let selection = selectHits(session, filter);
  /** Position in `selection`; -1 before the first hit. */
  let cursor = -1;
  /** The hit on screen (by index), which may lie outside the filter after `goto`. */
  let currentIndex: number | undefined;
  let expand = [...(options.expand ?? [])];

  /** Writes a screen, paged when it is taller than the terminal. */
  const screen = (text: string) => {
    const lines = text.replace(/\n$/, '').split('\n');
    pager.show(arraySource(lines), (shown) => `${shown} of ${lines.length} lines`);
  };
  const showIndex = (index: number, note = '') => {
    currentIndex = index;
    const lines = hitLines(session, session.readHitAt(index), {
      expand,
      expandHint: (name) => `e ${name}`,
    });
    if (note) lines.push(note);
    screen(lines.join('\n'));
  };
  const show = (position: number) => {
    const index = selection[position];
    if (index === undefined) return;
    cursor = position;
    showIndex(index, filterTexts.length ? `[${position + 1}/${selection.length} matching]` : '');
  };
  const emptyFilter = () =>
    `no hits match the filter ${describeFilter(filterTexts)}: change it with f TEXT, or clear it with f clear`;

  write(summaryView(session).text);
  write(
    filterTexts.length && selection.length === 0
      ? `\n${noMatchText(filterTexts)}. Type f to change the filter, h for help.`
      : `\n${selection.length} hits${filterTexts.length ? ` match ${filterTexts.join(', ')}` : ''}. Type n for the first, h for help.`,
  );

  const rl = createInterface({ input: options.input, terminal: false });
  const prompt = options.prompt ?? 'replay> ';
  output.write(prompt);
  for await (const raw of rl) {
    if (pager.active && pager.answer(raw)) {
      if (!pager.active) output.write(prompt);
      continue;
    }
    const line = raw.trim();
    const [word = '', ...rest] = line.split(/\s+/);
    const arg = rest.join(' ');
    try {
      switch (word.toLowerCase()) {
        case '':
        case 'n':
        case 'next':
          if (selection.length === 0)
            write(filterTexts.length ? emptyFilter() : '(the recording has no hits)');
          else if (cursor + 1 >= selection.length)
            write(
              `(no next hit: hit ${session.meta().seq[selection[selection.length - 1] ?? 0]} is the last${filterTexts.length ? ' matching' : ''} one)`,
            );
          else show(cursor + 1);
          break;
        case 'p':
        case 'prev':
        case 'previous':
          if (selection.length === 0)
            write(filterTexts.length ? emptyFilter() : '(the recording has no hits)');
          else if (cursor <= 0)
            write(
              cursor < 0
                ? '(no previous hit: type n for the first)'
                : `(no previous hit: hit ${session.meta().seq[selection[0] ?? 0]} is the first${filterTexts.length ? ' matching' : ''} one)`,
            );
          else show(cursor - 1);
          break;
        case 'g':
        case 'goto': {
          if (arg === '') {
            write(`usage: g N (a hit number, 1–${total})`);
            break;
          }
          if (!/^\d+$/.test(arg)) throw usageError(`goto expects a hit number (1–${total}), got "${arg}"`);
          const index = session.indexOfSeq(Number(arg));
          const position = selection.indexOf(index);
          if (position >= 0) show(position);
          else {
            // Outside the filter: show it anyway, and continue from the nearest matching hit.
            const after = selection.findIndex((i) => i > index);
            cursor = (after < 0 ? selection.length : after) - 1;
            showIndex(
              index,
              filterTexts.length ? `(hit ${arg} does not match the filter; n goes on from here)` : '',
            );
          }
          break;
        }
        case 'f':
        case 'filter': {
          if (arg === '') {
            write(
              `${filterTexts.length ? `filter: ${filterTexts.join(', ')} (${selection.length} of ${total} hits)` : `no filter (${total} hits)`}\n${filterHelp()}\nf clear drops the filter.`,
            );
            break;
          }
          if (arg === 'clear' || arg === 'off' || arg === '-') {
            filterTexts = [];
            filter = undefined;
          } else {
            const next = [arg];
            filter = parseFilter(session.header, next);
            filterTexts = next;
          }
          selection = selectHits(session, filter);
          cursor = -1;
          if (!filterTexts.length) write(`filter cleared: ${selection.length} hits`);
          else if (selection.length === 0)
            write(
              `no hit matches ${JSON.stringify(arg)} (0 of ${total}); f clear drops the filter, f shows the language`,
            );
          else write(`${selection.length} of ${total} hits match ${arg}; n for the first`);
          break;
        }
        case 'l':
        case 'list':
          screen(listView(session, selection, filterTexts).text);
          break;
        case 's':
        case 'summary':
          screen(summaryView(session).text);
          break;
        case 'st':
        case 'stats': {
          const { statsView } = await import('./stats.js');
          screen(statsView(session, filter, filterTexts, arg ? [arg] : []).text);
          break;
        }
        case 'd':
        case 'diff': {
          const [target, all] = rest;
          if (!target) {
            write('usage: d N [all] (what changed from the current hit to hit N)');
            break;
          }
          if (currentIndex === undefined) write('(go to a hit first: n or g N)');
          else if (!/^\d+$/.test(target))
            throw usageError(`diff expects a hit number (1–${total}), got "${target}"`);
          else
            screen(
              diffView(session, session.readHitAt(currentIndex), session.readHit(Number(target)), {
                all: all === 'all',
                expand: all === 'all' ? ['all'] : expand,
                expandHint: () => `d ${target} all`,
              }).text,
            );
          break;
        }
        case 'e':
        case 'expand': {
          if (currentIndex === undefined) {
            write('(go to a hit first: n or g N)');
            break;
          }
          const collapsed = hitSections(session.readHitAt(currentIndex), expand).flatMap((s) =>
            s.entries.filter((e) => e.collapsed).map((e) => (s.id === 'receiver' ? 'receiver' : e.label)),
          );
          if (arg === '') {
            write(
              collapsed.length
                ? `usage: e NAME: collapsed here: ${collapsed.join(', ')} (e all shows everything)`
                : 'nothing is collapsed in this hit',
            );
            break;
          }
          expand = [...expand, arg];
          showIndex(currentIndex);
          break;
        }
        case 'h':
        case 'help':
        case '?':
          write(INTERACTIVE_HELP);
          break;
        case 'q':
        case 'quit':
        case 'exit':
          rl.close();
          return;
        default:
          write(`unknown command "${word}" (h for help)`);
      }
    } catch (error) {
      if (!isCtrdbgError(error)) throw error;
      write(`error: ${error.message}${error.hint ? ` ${error.hint}` : ''}`);
    }
    // While a screen pages, its "-- more --" line is the prompt.
    if (!pager.active) output.write(prompt);
  }
}
