/** The interactive replay, driven through plain (non-TTY) streams. */
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { replayCommand } from '../../src/commands/replay.js';

const sample = join(resolve(import.meta.dirname, '..'), 'fixtures', 'sessions', 'sample.jsonl');

beforeAll(() => {
  process.env.NO_COLOR = '1';
});

/** Feeds `commands` one line at a time and returns everything written, split at the prompts. */
async function drive(
  commands: string[],
  options: { filter?: string[]; interactive?: boolean; isTTY?: boolean; pageLines?: number } = {},
) {
  const input = new PassThrough();
  const output = new PassThrough();
  let text = '';
  output.on('data', (d: Buffer) => {
    text += d.toString();
  });
  const done = replayCommand(
    sample,
    { interactive: options.interactive ?? true, ...(options.filter ? { filter: options.filter } : {}) },
    {
      input,
      output,
      isTTY: options.isTTY ?? false,
      ...(options.pageLines !== undefined ? { pageLines: options.pageLines } : {}),
    },
  );
  for (const c of commands) input.write(`${c}\n`);
  input.end();
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([
    done.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('interactive replay did not finish within 10 s')), 10_000);
    }),
  ]);
  // screens[0] is the banner; screens[i] is the answer to commands[i - 1].
  return { result, screens: text.split('replay> ') };
}

describe('interactive replay', () => {
  it('next, prev, goto, filter, list, diff, expand, stats, help and quit', async () => {
    const { result, screens } = await drive([
      'n',
      'next',
      'p',
      'goto 9',
      'filter set=tasks-create',
      'n',
      'n',
      'list',
      'diff 11',
      'g 42',
      'bogus',
      'h',
      'e receiver',
      'st taskID',
      'q',
      'n', // after quit: never read
    ]);
    expect(result).toEqual({ data: null, text: '' });
    expect(screens[0]).toContain('session     ');
    expect(screens[0]).toContain('12 hits. Type n for the first, h for help.');
    expect(screens[1]).toMatch(/^hit 1 of 12 /);
    expect(screens[2]).toMatch(/^hit 2 of 12 /);
    expect(screens[3]).toMatch(/^hit 1 of 12 /);
    expect(screens[4]).toMatch(/^hit 9 of 12 /);
    expect(screens[4]).toContain('req.Container.ID string = "c3"');
    // What matters first: the recorded expressions come before the parameters, the receiver is one line.
    expect(screens[4]!.indexOf('recorded expressions')).toBeLessThan(screens[4]!.indexOf('parameters'));
    expect(screens[4]).toContain('l *containers.local = 0xc000012378  (5 lines collapsed: e receiver)');
    expect(screens[5]).toBe('3 of 12 hits match set=tasks-create; n for the first\n');
    expect(screens[6]).toMatch(/^hit 5 of 12 [\s\S]*\[1\/3 matching\]/);
    expect(screens[7]).toMatch(/^hit 7 of 12 [\s\S]*\[2\/3 matching\]/);
    expect(screens[8]).toContain('3 of 12 hits match "set=tasks-create"');
    expect(screens[9]).toContain('hit 7 → hit 11  tasks-create/shim-create');
    expect(screens[9]).toContain('~ taskID: "c2" → "c3"');
    expect(screens[10]).toBe(`error: hit 42 is out of range: ${sample} has 12 hits (1–12)\n`);
    expect(screens[11]).toBe('unknown command "bogus" (h for help)\n');
    expect(screens[12]).toContain('g N, goto N');
    expect(screens[13]).toMatch(/^hit 7 of 12 /);
    expect(screens[13]).toContain('  m *v2.TaskManager = 0xc000012378\n    db *metadata.DB');
    expect(screens[14]).toContain('distinct values of taskID: 3 in 3 hits');
    expect(screens).toHaveLength(16);
  });

  it('starts with the --filter given and stops at the ends of the matching hits', async () => {
    const { screens } = await drive(['p', 'n', 'n', 'n', 'p', 'p', 'f clear', 'l'], {
      filter: ['goroutine=88'],
    });
    expect(screens[0]).toContain('2 hits match goroutine=88.');
    expect(screens[1]).toBe('(no previous hit: type n for the first)\n');
    expect(screens[2]).toMatch(/^hit 8 of 12 /);
    expect(screens[3]).toMatch(/^hit 12 of 12 /);
    expect(screens[4]).toBe('(no next hit: hit 12 is the last matching one)\n');
    expect(screens[5]).toMatch(/^hit 8 of 12 /);
    expect(screens[6]).toBe('(no previous hit: hit 8 is the first matching one)\n');
    expect(screens[7]).toBe('filter cleared: 12 hits\n');
    expect(screens[8]).toMatch(/^12 hits\n/);
  });

  it('a filter that matches nothing says so, never "end of the recording"', async () => {
    const { screens } = await drive(['f no-such-value', 'n', 'p', 'f c3', 'n']);
    expect(screens[1]).toBe(
      'no hit matches "no-such-value" (0 of 12); f clear drops the filter, f shows the language\n',
    );
    const empty =
      'no hits match the filter "no-such-value": change it with f TEXT, or clear it with f clear\n';
    expect(screens[2]).toBe(empty);
    expect(screens[3]).toBe(empty);
    // A bare word searches the recorded values: c3 is a container ID, recorded by three breakpoints.
    expect(screens[4]).toBe('3 of 12 hits match c3; n for the first\n');
    expect(screens[5]).toMatch(/^hit 9 of 12 /);
  });

  it('a bare command gives its usage', async () => {
    const { screens } = await drive(['f', 'g', 'd', 'e', 'n', 'e', 'd']);
    expect(screens[1]).toContain('no filter (12 hits)\nFilter terms (comma-separated');
    expect(screens[1]).toContain('EXPR=VALUE');
    expect(screens[1]).toContain('f clear drops the filter.');
    expect(screens[2]).toBe('usage: g N (a hit number, 1–12)\n');
    expect(screens[3]).toBe('usage: d N [all] (what changed from the current hit to hit N)\n');
    expect(screens[4]).toBe('(go to a hit first: n or g N)\n');
    expect(screens[6]).toBe('usage: e NAME: collapsed here: ctx, receiver (e all shows everything)\n');
    expect(screens[7]).toBe('usage: d N [all] (what changed from the current hit to hit N)\n');
  });

  it('pages a hit taller than the terminal: Enter for more, q stops, a command ends the paging', async () => {
    const { screens } = await drive(['g 3', '', '', 'q', 'g 3', '', 'n'], { pageLines: 10 });
    // The page's "-- more --" line is the prompt: the answers come back in one screen until the paging ends.
    const paged = screens[1]!;
    const pages = paged.split(/-- more \((\d+) of (\d+) lines\): Enter for the next page, q to stop --\n/);
    expect(paged).toMatch(/^hit 3 of 12 /);
    expect(paged).toContain('-- more (10 of ');
    expect(paged).toContain('-- more (20 of ');
    expect(paged).toContain('-- more (30 of ');
    expect(pages.length).toBeGreaterThan(6);
    // After q, the prompt; `g 3` pages again, and `n` ends that paging and shows hit 4.
    expect(screens[2]).toMatch(/^hit 3 of 12 /);
    expect(screens[2]).toContain('-- more (20 of ');
    expect(screens[2]).toContain('hit 4 of 12');
  });

  it('is the default view on a terminal, and ends at the end of input', async () => {
    const { result, screens } = await drive(['n'], { interactive: false, isTTY: true });
    expect(result.text).toBe('');
    expect(screens[1]).toMatch(/^hit 1 of 12 /);
  });
});

describe('--list on a terminal', () => {
  async function listed(lines: string[], options: { filter?: string[]; from?: string } = {}) {
    const input = new PassThrough();
    const output = new PassThrough();
    let text = '';
    output.on('data', (d: Buffer) => {
      text += d.toString();
    });
    const done = replayCommand(
      sample,
      { list: true, ...options },
      { input, output, isTTY: true, pageLines: 4 },
    );
    for (const l of lines) input.write(`${l}\n`);
    input.end();
    const result = await done;
    return { result, text };
  }

  it('pages: a page at a time, Enter for the next, q to stop', async () => {
    const { result, text } = await listed(['', 'q']);
    expect(result).toEqual({ data: null, text: '' });
    const rows = text.split('\n').filter((l) => /^\d+ +\+/.test(l));
    // Heading + 3 rows, then 4 rows; q stops before the third page.
    expect(rows.map((r) => Number(r.split(' ')[0]))).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(text).toContain('-- more (3 hits listed, up to #3 of 12): Enter for the next page, q to stop --');
    expect(text).toContain('-- more (7 hits listed, up to #7 of 12)');
  });

  it('with --from and a filter, and says when nothing matches', async () => {
    const { text } = await listed([''], { filter: ['set=tasks-create'], from: '6' });
    expect(
      text
        .split('\n')
        .filter((l) => /^\d+ +\+/.test(l))
        .map((r) => Number(r.split(' ')[0])),
    ).toEqual([7, 11]);
    const none = await listed([], { filter: ['no-such-thing'] });
    expect(none.text).toContain('no hit matches "no-such-thing"');
  });
});
