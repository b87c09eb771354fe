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

/** A CRI lab recording of stdio + stdio-shim: hits of containerd and of the pod's shim. */
const shimSample = relative(process.cwd(), join(root, 'test', 'fixtures', 'sessions', 'shim-stdio.jsonl'));

describe('golden transcripts', () => {
  it('a recording that followed a shim: --list has a process column, --goto names the process', async () => {
    const parts = [
      await transcript('--list', { list: true }, shimSample),
      await transcript('--goto 7', { goto: '7' }, shimSample),
    ];
    const text = parts.join('\n');
    expect(text).toMatch(/^7 +\+1\.835s +shim 9882 +stdio-shim\/copy-pipes/m);
    expect(text).toMatch(/^2 +\+1\.466s +containerd 20848 +stdio\/new-container-io/m);
    await expect(text).toMatchFileSnapshot(golden('replay-shim-list-goto.txt'));
  });
  it('summary', async () => {
    await expect(await transcript('', {})).toMatchFileSnapshot(golden('replay-summary.txt'));
  });
  it('--list, --list --from/--limit', async () => {
    const parts = [
      await transcript('--list', { list: true }),
      await transcript('--list --from 4 --limit 3', { list: true, from: '4', limit: '3' }),
    ];
    await expect(parts.join('\n')).toMatchFileSnapshot(golden('replay-list.txt'));
  });
  it('--goto 3: expressions, parameters, receiver collapsed, locals, stack', async () => {
    await expect(await transcript('--goto 3', { goto: '3' })).toMatchFileSnapshot(golden('replay-goto.txt'));
  });
  it('--goto 1 --expand receiver --expand ctx (a nil map reads nil, channels their real length)', async () => {
    await expect(
      await transcript('--goto 8 --expand receiver --expand ctx', { goto: '8', expand: ['receiver', 'ctx'] }),
    ).toMatchFileSnapshot(golden('replay-goto-expand.txt'));
  });
  it('--goto 5 (an expression that failed)', async () => {
    await expect(await transcript('--goto 5', { goto: '5' })).toMatchFileSnapshot(
      golden('replay-goto-error.txt'),
    );
  });
  it('--diff: one breakpoint, reversed, across breakpoints, --all', async () => {
    const parts = [
      await transcript('--diff 2 3', { diff: ['2', '3'] }),
      await transcript('--diff 9 2', { diff: ['9', '2'] }),
      await transcript('--diff 4 5', { diff: ['4', '5'] }),
      await transcript('--diff 2 3 --all', { diff: ['2', '3'], all: true }),
    ];
    await expect(parts.join('\n')).toMatchFileSnapshot(golden('replay-diff.txt'));
  });
  it('--stats, --stats EXPR, with --filter', async () => {
    const parts = [
      await transcript('--stats', { stats: true }),
      await transcript('--stats req.Container.Image --stats r.ContainerID', {
        stats: ['req.Container.Image', 'r.ContainerID'],
      }),
      await transcript('--stats taskID --filter g=41', { stats: ['taskID'], filter: ['g=41'] }),
    ];
    await expect(parts.join('\n')).toMatchFileSnapshot(golden('replay-stats.txt'));
  });
  it('--filter by set, goroutine, name, recorded value, one expression', async () => {
    const parts = [
      await transcript('--filter set=tasks-create', { filter: ['set=tasks-create'] }),
      await transcript('--filter goroutine=41', { filter: ['goroutine=41'] }),
      await transcript('--filter create-container', { filter: ['create-container'] }),
      await transcript('--filter create-task --filter g=88', { filter: ['create-task', 'g=88'] }),
      await transcript('--filter alpine', { filter: ['alpine'] }),
      await transcript('--filter r.ContainerID=c1', { filter: ['r.ContainerID=c1'] }),
      await transcript('--filter "req.Container.Image~BUSYBOX, g=63"', {
        filter: ['req.Container.Image~BUSYBOX, g=63'],
      }),
      await transcript('--filter taskID!=c1', { filter: ['taskID!=c1'] }),
      await transcript('--filter "r.Stdout=/run/containerd/fifo/5110*"', {
        filter: ['r.Stdout=/run/containerd/fifo/5110*'],
      }),
      await transcript('--filter nothing-records-this', { filter: ['nothing-records-this'] }),
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
    await expect(
      await transcript('--stats taskID --json', { stats: ['taskID'], json: true }),
    ).toMatchFileSnapshot(golden('replay-stats-json.txt'));
  });
  it('the --goto JSON hit is the recorded line, unchanged', async () => {
    const out = await replayCommand(sample, { goto: '4', json: true }, notTty());
    const line = readFileSync(sample, 'utf8').split('\n')[4]!;
    expect((out.data as { hit: unknown }).hit).toEqual(JSON.parse(line));
  });
});

describe('recordings made before results and channels were fixed', () => {
  let dir: string;
  let old: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ctrdbg-views-old-'));
    old = join(dir, 'old.jsonl');
    // What the recorder wrote before: results among the arguments (garbage at the entry), and channels with
    // runtime.hchan's field count as their length.
    const lines = readFileSync(sample, 'utf8').split('\n');
    const hit = JSON.parse(lines[1]!);
    hit.args.push(
      {
        name: '~r0',
        type: '*github.com/containerd/containerd/api/services/namespaces/v1.CreateNamespaceResponse',
        kind: 'ptr',
        value: '0xc0003731d0',
        children: [
          {
            name: '',
            type: 'v1.CreateNamespaceResponse',
            kind: 'struct',
            children: [
              {
                name: 'Labels',
                type: 'map[string]string',
                kind: 'map',
                len: 7308895112555033000,
                truncated: true,
                children: [],
              },
            ],
          },
        ],
      },
      { name: '~r1', type: 'error', kind: 'interface', value: 'nil' },
    );
    const text = JSON.stringify(hit)
      .replace('"value":"0xc0000ac5a0","len":0,"cap":0', '"value":"0xc0000ac5a0","len":11,"cap":0')
      .replace(
        '{"name":"closed","type":"chan struct {}","kind":"chan","value":"nil"}',
        '{"name":"closed","type":"chan struct {}","kind":"chan","value":"0x0","len":0,"cap":0}',
      );
    lines[1] = text;
    writeFileSync(old, lines.join('\n'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('hides ~r results and shows no made-up channel sizes', async () => {
    const out = await replayCommand(old, { goto: '1', expand: ['receiver'] }, notTty());
    expect(out.text).not.toContain('~r');
    expect(out.text).toContain('events chan go-events.Event = 0xc0000ac5a0\n');
    expect(out.text).toContain('closed chan struct {} = nil\n');
    expect(out.text).toContain('queue chan go-events.Event = 0xc0000ac600 len 2, cap 64');
    const diff = await replayCommand(old, { diff: ['1', '8'] }, notTty());
    expect(diff.text).not.toContain('~r');
    // The receiver's changes are one line unless asked for.
    expect(diff.text).toContain('  ~ receiver: 1 change (--expand receiver lists them)');
    const listed = await replayCommand(old, { diff: ['1', '8'], expand: ['receiver'] }, notTty());
    expect(listed.text).toContain('  ~ l.publisher.events: 0xc0000ac5a0 → 0xc0000ac5a0 len 0, cap 0');
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
    expect((await failure(sample, { diff: ['2'] })).kind).toBe('usage');
    const filter = await failure(sample, { filter: ['colour=red'] });
    expect([filter.kind, filter.message]).toEqual([
      'usage',
      'unknown filter key "colour" in --filter colour=red',
    ]);
    // The hint names the keys and the expressions this recording has.
    expect(filter.hint).toContain('set, bp, function, file, goroutine (g), seq, process');
    expect(filter.hint).toContain('req.Namespace.Name');
    expect((await failure(sample, { list: true, goto: '1' })).kind).toBe('usage');
    expect((await failure(sample, { list: true, stats: true })).message).toBe(
      'choose one of --list, --goto, --diff, --stats, --html',
    );
  });

  it('misleading replay messages: unknown --stats expression, --from/--limit/--all out of place, bad numbers', async () => {
    const stats = await failure(sample, { stats: ['req.Nope'] });
    expect([stats.kind, stats.message]).toEqual([
      'usage',
      `--stats req.Nope: no breakpoint of ${sample} records that expression`,
    ]);
    expect(stats.hint).toContain('Recorded expressions: req.Namespace.Name, req.Namespace.Labels');
    expect((await failure(sample, { goto: '1', limit: '3' })).message).toBe(
      '--from and --limit page a listing: use them with --list (or --filter)',
    );
    expect((await failure(sample, { list: true, limit: '0' })).message).toBe(
      '--limit expects a positive number, got "0"',
    );
    expect((await failure(sample, { list: true, all: true })).message).toBe(
      '--all goes with --diff (it shows address-only changes)',
    );
    expect((await failure(sample, { filter: ['g=x'] })).message).toBe(
      '--filter g=x: goroutine must be a number',
    );
    expect((await failure(sample, { filter: ['seq=3-'] })).message).toBe(
      '--filter seq=3-: seq must be N or A-B',
    );
    expect((await failure(sample, { filter: ['r.Stdout="unterminated'] })).message).toBe(
      '--filter r.Stdout="unterminated: the quoted value is not valid JSON',
    );
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
