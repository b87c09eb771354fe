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
  options: { filter?: string[]; interactive?: boolean; isTTY?: boolean } = {},
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
    { input, output, isTTY: options.isTTY ?? false },
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
  it('next, prev, goto, filter, list, diff, help and quit', async () => {
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
    expect(screens[5]).toBe('3 of 12 hits match set=tasks-create\n');
    expect(screens[6]).toMatch(/^hit 5 of 12 [\s\S]*\[1\/3 matching\]/);
    expect(screens[7]).toMatch(/^hit 7 of 12 [\s\S]*\[2\/3 matching\]/);
    expect(screens[8]).toContain('3 of 12 hits match "set=tasks-create"');
    expect(screens[9]).toContain('hit 7 → hit 11  tasks-create/shim-create');
    expect(screens[9]).toContain('~ args.taskID: "c2" → "c3"');
    expect(screens[10]).toBe('error: hit 42 is out of range: ' + sample + ' has 12 hits (1–12)\n');
    expect(screens[11]).toBe('unknown command "bogus" (h for help)\n');
    expect(screens[12]).toContain('g N, goto N');
    expect(screens).toHaveLength(14);
  });

  it('starts with the --filter given and stops at the ends of the recording', async () => {
    const { screens } = await drive(['p', 'n', 'n', 'n', 'f', 'l'], { filter: ['goroutine=88'] });
    expect(screens[0]).toContain('2 hits match goroutine=88.');
    expect(screens[1]).toBe('(start of the recording: no previous hit)\n');
    expect(screens[2]).toMatch(/^hit 8 of 12 /);
    expect(screens[3]).toMatch(/^hit 12 of 12 /);
    expect(screens[4]).toBe('(end of the recording: no next hit)\n');
    expect(screens[5]).toBe('filter cleared: 12 hits\n');
    expect(screens[6]).toMatch(/^12 hits\n/);
  });

  it('is the default view on a terminal, and ends at the end of input', async () => {
    const { result, screens } = await drive(['n'], { interactive: false, isTTY: true });
    expect(result.text).toBe('');
    expect(screens[1]).toMatch(/^hit 1 of 12 /);
  });
});
