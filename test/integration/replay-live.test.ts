/**
 * Replay of a live lab recording (real containerd, dlv and sshd): golden transcripts of --goto, --list, --diff
 * and --stats with what differs between runs masked, and what the recorder writes now: no results among the
 * parameters, channels with a real length and capacity. The trigger creates two namespaces (one with a
 * label) and runs a container, so the diff compares two calls of one breakpoint, as a person would.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HitRecord, RecordedValue } from '../../src/recording/format.js';
import { ctrdbg, ctrdbgJson, repoRoot } from '../helpers/cli.js';
import { type LabStatusJson, labEnv, labStatus } from '../helpers/lab.js';

let env: Record<string, string>;
let lab: LabStatusJson;
let work: string;
let file: string;
// Fixed-length unique names keep the transcripts' truncation stable.
const tag = randomBytes(4).toString('hex');
const golden = (name: string) => join(repoRoot, 'test', 'golden', name);

/** What differs between two runs of the same trigger, masked. */
function mask(text: string): string {
  return (
    text
      .replaceAll(file, '<session>')
      .replaceAll(tag, '<tag>')
      .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z/g, '<wall>')
      .replace(/\+\d+(\.\d+)?m?s\b/g, '+<t>')
      // A duration is ms or s depending on the machine's speed: one mask for both.
      .replace(/\b\d+(\.\d+)? (ms|s|min)\b/g, '<d>')
      .replace(/\bg\d+\b/g, 'g<n>')
      .replace(/goroutine \d+( →) \d+/g, 'goroutine <n>$1 <n>')
      .replace(/goroutine {3}\d+/g, 'goroutine   <n>')
      .replace(/thread \d+/g, 'thread <n>')
      .replace(/0x[0-9a-f]+/g, '0x…')
      .replace(/fifo\/[^"\s]*/g, 'fifo/<…>')
      .replace(/\(\d+ lines? collapsed/g, '(<n> lines collapsed')
      .replace(/\b\d+ (changes?|changed)\b/g, '<n> $1')
      // Two requests can even share an address (the allocator reuses freed memory): the count is not stable.
      .replace(/; \d+ address-only changes? hidden \(--all shows them\)/, '')
  );
}

/** For tables: masked cells change column widths, so runs of spaces are normalised too (indentation stays). */
function maskTable(text: string): string {
  return mask(text)
    .split('\n')
    .map((line) => {
      const indent = /^ */.exec(line)?.[0] ?? '';
      return indent + line.slice(indent.length).replace(/ {2,}/g, '  ');
    })
    .join('\n');
}

/** --stats with its timing columns masked: rates, stop times and which stops were slowest vary by run. */
function maskStats(text: string): string {
  const lines = maskTable(text).split('\n');
  const out: string[] = [];
  let section = '';
  for (const line of lines) {
    if (/^(per breakpoint|hits per |slowest stops|distinct values)/.test(line)) section = line;
    if (/^hits per /.test(section) && /^ +\+/.test(line)) {
      if (!out.at(-1)?.includes('<buckets>')) out.push('  <buckets>');
      continue;
    }
    if (/^slowest/.test(section) && /^ {2}\d+ /.test(line)) {
      const last = out.at(-1) ?? '';
      const m = /^ {2}<(\d+) stops>$/.exec(last);
      if (m) out[out.length - 1] = `  <${Number(m[1]) + 1} stops>`;
      else out.push('  <1 stops>');
      continue;
    }
    out.push(
      line
        .replace(/^(hits on .*), [\d.]+ hits\/s$/, '$1, <r> hits/s')
        .replace(/^(\d+ hits.*), [\d.]+ hits\/s$/, '$1, <r> hits/s')
        .replace(/^( {2}lab-create\/\S+ {2}\d+ {2}\d+%).*$/, '$1  <rate> <stopped>'),
    );
  }
  return out.join('\n');
}

async function transcript(args: string[], masker = mask): Promise<string> {
  const r = await ctrdbg(['replay', file, ...args], { env });
  expect(r.exitCode, r.stderr).toBe(0);
  return `$ ctrdbg replay <session> ${args.join(' ')}\n${masker(r.stdout)}`;
}

function walk(values: RecordedValue[], visit: (v: RecordedValue) => void): void {
  for (const v of values) {
    visit(v);
    walk(v.children ?? [], visit);
  }
}

beforeAll(async () => {
  env = labEnv();
  work = await mkdtemp(join(tmpdir(), 'ctrdbg-replay-live-'));
  const setup = await ctrdbg(['setup', 'lab'], { env });
  expect(setup.exitCode, setup.stderr).toBe(0);
  lab = await labStatus('default', env);
  file = join(work, 'two-namespaces.jsonl');
  const trigger = [
    `ctr -a $CTRDBG_SOCKET namespaces create nsa-${tag}`,
    `ctr -a $CTRDBG_SOCKET namespaces create nsb-${tag} team=replay`,
    `ctr -a $CTRDBG_SOCKET run --rm ${lab.image} run-${tag} /hello replay`,
  ].join(' && ');
  const { exitCode, data, stderr } = await ctrdbgJson<{ hits: number }>(
    ['attach', 'lab', '--set', 'lab-create', '--record', file, '--trigger', trigger],
    { env },
  );
  expect(exitCode, stderr).toBe(0);
  expect(data.hits).toBe(4);
}, 600_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('a live recording replays by what matters', () => {
  it('the recorder wrote no results among the parameters and real channel sizes', () => {
    const hits = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((l) => l.type === 'hit') as HitRecord[];
    expect(hits).toHaveLength(4);
    const chans: RecordedValue[] = [];
    for (const hit of hits) {
      // namespaces/containers/tasks (*local).Create return (*Response, error): Delve lists ~r0, ~r1.
      expect(hit.args.map((a) => a.name)).not.toContain('~r0');
      expect(hit.args.map((a) => a.name)).not.toContain('~r1');
      expect(hit.args[0]?.name).toBe('l');
      walk(hit.args, (v) => {
        if (v.kind === 'chan') chans.push(v);
      });
    }
    // The receiver's event exchange holds channels; none shows runtime.hchan's field count any more.
    expect(chans.length).toBeGreaterThan(0);
    for (const c of chans) {
      if (c.value === 'nil') continue;
      expect(c.len, JSON.stringify(c)).toBeLessThanOrEqual(c.cap ?? -1);
    }
  });

  it('golden: --goto (expressions, parameters, receiver collapsed, no ~r) and --list', async () => {
    const goto = await transcript(['--goto', '2']);
    expect(goto).not.toContain('~r');
    expect(goto.indexOf('recorded expressions')).toBeLessThan(goto.indexOf('\nparameters'));
    expect(goto.indexOf('\nparameters')).toBeLessThan(goto.indexOf('\nreceiver'));
    await expect(goto).toMatchFileSnapshot(golden('live-lab-goto.txt'));
    await expect(await transcript(['--list'], maskTable)).toMatchFileSnapshot(golden('live-lab-list.txt'));
  });

  it('golden: --diff of the two namespace creations, and across breakpoints', async () => {
    // The receiver (the namespaces service) is one object: whether its bbolt counters moved between the
    // two calls depends on the run, so its summary line is left out of the transcript.
    // The totals count the receiver's changes too (a path under it is removed in some runs): masked as well.
    const noReceiver = (t: string) =>
      mask(t)
        .replace(/\nreceiver\n {2}~ receiver: .*\n/, '')
        .replace(/^(\d+ added), \d+ removed,/m, '$1, <n> removed,');
    const diff = await transcript(['--diff', '1', '2'], noReceiver);
    expect(diff).toContain('~ req.Namespace.Name: "nsa-<tag>" → "nsb-<tag>"');
    expect(diff).toContain('~ ctx: <n> changes (--expand ctx lists them)');
    await expect(diff).toMatchFileSnapshot(golden('live-lab-diff.txt'));
    const across = await transcript(['--diff', '2', '3'], noReceiver);
    expect(across).toContain('different breakpoints: compared on the paths both hits have');
  });

  it('golden: --stats and --stats EXPR; a bare word finds every hit that recorded it', async () => {
    await expect(
      await transcript(['--stats', '--stats', 'req.Namespace.Name', '--stats', 'r.ContainerID'], maskStats),
    ).toMatchFileSnapshot(golden('live-lab-stats.txt'));
    const found = await ctrdbgJson<{ matching: number; hits: { seq: number }[] }>(
      ['replay', file, '--filter', tag],
      { env },
    );
    expect(found.data.hits.map((h) => h.seq)).toEqual([1, 2, 3, 4]);
    const one = await ctrdbgJson<{ hits: { seq: number }[] }>(
      ['replay', file, '--filter', `req.Namespace.Name=nsb-${tag}`],
      { env },
    );
    expect(one.data.hits.map((h) => h.seq)).toEqual([2]);
  });
});
