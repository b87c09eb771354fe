/**
 * The interactive terminal replay: a cursor over the (filtered) hits, driven by short commands read line by
 * line. It only needs a readable and a writable stream, so tests drive it with plain streams, no TTY.
 *
 *   n, next, <enter>   next hit            p, prev    previous hit
 *   g N, goto N        hit N (by seq)      f X, filter X   keep hits matching X (no X: all)
 *   l, list            list the hits       s, summary      the session summary
 *   d N, diff N        diff the current hit with hit N     h, help, ?      this help
 *   q, quit, Ctrl-D    leave
 */
import { createInterface } from 'node:readline';
import { isCtrdbgError } from '../errors.js';
import type { RecordingFile } from '../recording/reader.js';
import { diffView, hitView, listView, parseFilter, selectHits, summaryView } from './terminal.js';

export interface InteractiveOptions {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  /** Initial filter expressions (from --filter). */
  filter?: string[];
  prompt?: string;
}

const HELP = [
  'commands:',
  '  n, next (or Enter)   next hit            p, prev           previous hit',
  '  g N, goto N          show hit N          f X, filter X     only hits matching X (f alone: all)',
  '  l, list              list the hits       s, summary        session summary',
  '  d N, diff N          diff current hit with hit N',
  '  h, help              this help           q, quit           leave',
].join('\n');

/** Runs until `quit` or the end of input. Errors in a command are shown and the session goes on. */
export async function runInteractive(session: RecordingFile, options: InteractiveOptions): Promise<void> {
  const { output } = options;
  const write = (text: string) => output.write(text.endsWith('\n') ? text : `${text}\n`);
  const meta = session.meta();
  let filterExprs = options.filter ?? [];
  let selection = selectHits(meta, filterExprs.length ? parseFilter(filterExprs) : undefined);
  /** Position in `selection`; -1 before the first hit. */
  let cursor = -1;

  const show = (position: number) => {
    const index = selection[position];
    if (index === undefined) return;
    cursor = position;
    const shownAs = filterExprs.length ? `  [${position + 1}/${selection.length} matching]` : '';
    write(`${hitView(session, session.readHitAt(index)).text}${shownAs}`);
  };

  write(summaryView(session).text);
  write(
    `\n${selection.length} hits${filterExprs.length ? ` match ${filterExprs.join(', ')}` : ''}. Type n for the first, h for help.`,
  );

  const rl = createInterface({ input: options.input, terminal: false });
  const prompt = options.prompt ?? 'replay> ';
  output.write(prompt);
  for await (const raw of rl) {
    const line = raw.trim();
    const [word = '', ...rest] = line.split(/\s+/);
    const arg = rest.join(' ');
    try {
      switch (word.toLowerCase()) {
        case '':
        case 'n':
        case 'next':
          if (cursor + 1 >= selection.length) write('(end of the recording: no next hit)');
          else show(cursor + 1);
          break;
        case 'p':
        case 'prev':
        case 'previous':
          if (cursor <= 0) write('(start of the recording: no previous hit)');
          else show(cursor - 1);
          break;
        case 'g':
        case 'goto': {
          const seq = Number(arg);
          const index = session.indexOfSeq(seq);
          const position = selection.indexOf(index);
          if (position >= 0) show(position);
          else {
            // Outside the filter: show it anyway, and continue from the nearest matching hit.
            write(hitView(session, session.readHitAt(index)).text);
            cursor = selection.findIndex((i) => i > index) - 1;
            if (cursor < -1) cursor = selection.length - 1;
          }
          break;
        }
        case 'f':
        case 'filter':
          filterExprs = arg === '' ? [] : [arg];
          selection = selectHits(meta, filterExprs.length ? parseFilter(filterExprs) : undefined);
          cursor = -1;
          write(
            filterExprs.length
              ? `${selection.length} of ${meta.seq.length} hits match ${arg}`
              : `filter cleared: ${selection.length} hits`,
          );
          break;
        case 'l':
        case 'list':
          write(listView(session, selection, filterExprs).text);
          break;
        case 's':
        case 'summary':
          write(summaryView(session).text);
          break;
        case 'd':
        case 'diff': {
          const current = selection[cursor];
          if (current === undefined) write('(go to a hit first: n or goto N)');
          else write(diffView(session, session.readHitAt(current), session.readHit(Number(arg))).text);
          break;
        }
        case 'h':
        case 'help':
        case '?':
          write(HELP);
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
    output.write(prompt);
  }
}
