/**
 * Golden transcripts of `ctrdbg replay` over the committed sample session: every view, as text and as
 * --json. The sample is deterministic, so nothing is masked. Regenerate after an intended change with
 * `npx vitest run --project unit -u test/unit/replay-views.test.ts` and review the diff of test/golden/.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ReplayOptions, replayCommand } from '../../src/commands/replay.js';
import { CtrdbgError } from '../../src/errors.js';

const root = resolve(import.meta.dirname, '..', '..');
const golden = (name: string) => join(root, 'test', 'golden', name);
// The path as a person in the repository root types it: that is what the views print.
const sample = relative(process.cwd(), join(root, 'test', 'fixtures', 'sessions', 'sample.jsonl'));
const notTty = () => ({ input: new PassThrough(), output: new PassThrough(), isTTY: false });

beforeAll(() => {
  process.env.NO_COLOR = '1';
});

async function transcript(args: string, options: ReplayOptions, file = sample): Promise<string> {
  const out = await replayCommand(file, options, notTty());
  const body = options.json ? JSON.stringify(out.data, null, 2) : out.text;
  return `$ ctrdbg replay ${file} ${args}`.trimEnd() + `\n${body}\n`;
}

describe('golden transcripts', () => {
  it('summary', async () => {
    await expect(await transcript('', {})).toMatchFileSnapshot(golden('replay-summary.txt'));
  });
  it('--list', async () => {
    await expect(await transcript('--list', { list: true })).toMatchFileSnapshot(golden('replay-list.txt'));
  });
  it('--goto 3 (redacted, unreadable and truncated values)', async () => {
    await expect(await transcript('--goto 3', { goto: '3' })).toMatchFileSnapshot(golden('replay-goto.txt'));
  });
  it('--goto 5 (an expression that failed)', async () => {
    await expect(await transcript('--goto 5', { goto: '5' })).toMatchFileSnapshot(
      golden('replay-goto-error.txt'),
    );
  });
  it('--diff 2 3', async () => {
    await expect(await transcript('--diff 2 3', { diff: ['2', '3'] })).toMatchFileSnapshot(
      golden('replay-diff.txt'),
    );
  });
  it('--filter by set, goroutine, substring', async () => {
    const parts = [
      await transcript('--filter set=tasks-create', { filter: ['set=tasks-create'] }),
      await transcript('--filter goroutine=41', { filter: ['goroutine=41'] }),
      await transcript('--filter create-container', { filter: ['create-container'] }),
      await transcript('--filter create-task --filter g=88', { filter: ['create-task', 'g=88'] }),
    ];
    await expect(parts.join('\n')).toMatchFileSnapshot(golden('replay-filter.txt'));
  });
  it('--json views', async () => {
    await expect(await transcript('--json', { json: true })).toMatchFileSnapshot(
      golden('replay-summary-json.txt'),
    );
    await expect(
      await transcript('--list --filter set=lab-create --json', {
        list: true,
        filter: ['set=lab-create'],
        json: true,
      }),
    ).toMatchFileSnapshot(golden('replay-list-json.txt'));
    await expect(await transcript('--goto 9 --json', { goto: '9', json: true })).toMatchFileSnapshot(
      golden('replay-goto-json.txt'),
    );
    await expect(await transcript('--diff 2 9 --json', { diff: ['2', '9'], json: true })).toMatchFileSnapshot(
      golden('replay-diff-json.txt'),
    );
  });
  it('the --goto JSON hit is the recorded line, unchanged', async () => {
    const out = await replayCommand(sample, { goto: '4', json: true }, notTty());
    const line = readFileSync(sample, 'utf8').split('\n')[4]!;
    expect((out.data as { hit: unknown }).hit).toEqual(JSON.parse(line));
  });
});

describe('a recording that was cut short', () => {
  let dir: string;
  let killed: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ctrdbg-views-'));
    killed = join(dir, 'killed.jsonl');
    const lines = readFileSync(sample, 'utf8').split('\n');
    // The recorder died writing hit 12: no end record, a partial last line.
    writeFileSync(killed, `${lines.slice(0, 12).join('\n')}\n${lines[12]!.slice(0, 300)}`);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('summary and list say so and show the complete hits', async () => {
    const summary = await replayCommand(killed, {}, notTty());
    expect(summary.text).toContain(
      'truncated   yes: line 13 (300 bytes) cut short (no final newline, not valid JSON); skipped',
    );
    expect(summary.text).toContain('end         missing (the recorder did not finish)');
    expect(summary.text).toContain('hits        11 on 4 goroutines');
    expect(summary.data).toMatchObject({ hits: 11, end: null, truncated: { line: 13, bytes: 300 } });
    const list = await replayCommand(killed, { list: true }, notTty());
    expect(list.text).toContain('! the cut-short last line (line 13) is not shown');
    expect(list.text.split('\n').filter((l) => /^\d+ +\+/.test(l))).toHaveLength(11);
  });
});

describe('bad input', () => {
  async function failure(file: string, options: ReplayOptions): Promise<CtrdbgError> {
    try {
      await replayCommand(file, options, notTty());
    } catch (error) {
      expect(error).toBeInstanceOf(CtrdbgError);
      return error as CtrdbgError;
    }
    throw new Error('expected the command to fail');
  }

  it('--goto out of range, --goto not a number, --diff of different breakpoints, unknown filter key', async () => {
    const out = await failure(sample, { goto: '99' });
    expect([out.kind, out.exitCode, out.message]).toEqual([
      'input',
      3,
      `hit 99 is out of range: ${sample} has 12 hits (1–12)`,
    ]);
    expect((await failure(sample, { goto: 'last' })).kind).toBe('usage');
    const diff = await failure(sample, { diff: ['2', '4'] });
    expect(diff.message).toContain('two hits of the same breakpoint');
    expect((await failure(sample, { diff: ['2'] })).kind).toBe('usage');
    const filter = await failure(sample, { filter: ['colour=red'] });
    expect([filter.kind, filter.message]).toEqual([
      'usage',
      'unknown filter key "colour" in --filter colour=red',
    ]);
    expect((await failure(sample, { list: true, goto: '1' })).kind).toBe('usage');
  });

  it('missing file, not a session, newer version', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctrdbg-views-bad-'));
    try {
      expect((await failure(join(dir, 'gone.jsonl'), {})).message).toContain('session file not found');
      expect((await failure(join(root, 'package.json'), { goto: '1' })).message).toContain(
        'is not a ctrdbg session file',
      );
      const newer = join(dir, 'newer.jsonl');
      copyFileSync(sample, newer);
      const text = readFileSync(newer, 'utf8').replace('"version":1,', '"version":2,');
      writeFileSync(newer, text);
      const error = await failure(newer, { list: true });
      expect(error.message).toContain('made by a newer ctrdbg');
      expect(error.hint).toContain('Upgrade ctrdbg');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
