/**
 * attach + record against the lab's real containerd, dlv and sshd. The recorded values must equal what the
 * trigger sent, and every way a recording can end — trigger done, max hits, Ctrl-C, kill -9 of ctrdbg, a dropped
 * SSH connection — must leave the same containerd PID running, untraced, and serving.
 */

import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ctrdbg, ctrdbgJson, mainJs, repoRoot } from '../helpers/cli.js';
import { type LabStatusJson, labEnv, labStatus } from '../helpers/lab.js';

let env: Record<string, string>;
let lab: LabStatusJson;
let work: string;
let sock: string;
let n = 0;
const unique = (prefix: string) => `${prefix}-${process.pid}-${Date.now() % 100000}-${n++}`;

function tracerPid(pid: number): number {
  return Number(/^TracerPid:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? -1);
}

function readSession(path: string) {
  const lines = readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  return {
    header: lines[0],
    hits: lines.filter((l) => l.type === 'hit'),
    end: lines.find((l) => l.type === 'end'),
  };
}

const exprValue = (hit: { expressions: { expr: string; value?: { value?: string } }[] }, expr: string) =>
  hit.expressions.find((e) => e.expr === expr)?.value?.value;

async function ctrOk(): Promise<boolean> {
  return (await execa('ctr', ['-a', sock, 'version'], { reject: false, timeout: 10_000 })).exitCode === 0;
}

/** Polls until containerd is untraced and answering, for at most `ms`; returns how long it took. */
async function healthyWithin(pid: number, ms: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (tracerPid(pid) === 0 && (await ctrOk())) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`containerd ${pid} not healthy after ${ms} ms (TracerPid ${tracerPid(pid)})`);
}

/**
 * Starts an attach that runs until stopped, resolving once its breakpoints are armed. The child is wrapped:
 * execa's child is itself a promise, and returning it from an async function would wait for its exit.
 */
async function startAttach(args: string[]): Promise<{ child: ResultPromise }> {
  const child = execa(process.execPath, [mainJs, 'attach', 'lab', '--set', 'lab-create', ...args], {
    env: { ...env, NO_COLOR: '1' },
    reject: false,
  });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`attach did not arm in 90 s:\n${err}`)), 90_000);
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if (/breakpoints armed/.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    });
    void child.then((r) => reject(new Error(`attach exited early (${r.exitCode}):\n${err}`)));
  });
  return { child };
}

beforeAll(async () => {
  env = labEnv();
  work = await mkdtemp(join(tmpdir(), 'ctrdbg-attach-'));
  const setup = await ctrdbg(['setup', 'lab'], { env });
  expect(setup.exitCode, setup.stderr).toBe(0);
  lab = await labStatus('default', env);
  sock = lab.containerd.socket;
  expect(lab.containerd.debuggable).toBe(true);
}, 600_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('attach records what the trigger sent', () => {
  it('namespaces, containers and tasks created by ctr, one hit per call, with the sent values', async () => {
    // Fixed-length unique names keep the replay transcript's truncation stable for the golden below.
    const tag = randomBytes(4).toString('hex');
    const ns = `golden-ns-${tag}`;
    const id = `golden-run-${tag}`;
    const file = join(work, 'lab-create.jsonl');
    const trigger = `ctr -a $CTRDBG_SOCKET namespaces create ${ns} && ctr -a $CTRDBG_SOCKET run --rm ${lab.image} ${id} /hello from-test`;
    const { exitCode, data, stderr } = await ctrdbgJson<{
      hits: number;
      reason: string;
      detached: boolean;
      containerd: { pid: number; pidAfter: number; serving: boolean; traced: boolean };
    }>(['attach', 'lab', '--set', 'lab-create', '--record', file, '--trigger', trigger], { env });
    expect(exitCode, stderr).toBe(0);
    expect(stderr).toContain('trigger│ hello from the ctrdbg lab: from-test');
    expect(data).toMatchObject({ hits: 3, reason: 'trigger-finished', detached: true });
    expect(data.containerd).toMatchObject({
      pid: lab.containerd.pid,
      pidAfter: lab.containerd.pid,
      serving: true,
      traced: false,
    });

    expect(statSync(file).mode & 0o777).toBe(0o600);
    const { header, hits, end } = readSession(file);
    expect(header).toMatchObject({
      type: 'header',
      format: 'ctrdbg-session',
      version: 1,
      sets: ['lab-create'],
      trigger,
    });
    expect(header.containerd.sha256).toBe(lab.containerd.sha256);
    expect(header.breakpoints.map((b: { entry: string }) => b.entry)).toEqual([
      'namespaces-create',
      'containers-create',
      'tasks-create',
    ]);
    expect(hits.map((h) => h.breakpoint.name)).toEqual([
      'lab-create/namespaces-create',
      'lab-create/containers-create',
      'lab-create/tasks-create',
    ]);
    expect(hits.map((h) => h.seq)).toEqual([1, 2, 3]);
    expect(exprValue(hits[0], 'req.Namespace.Name')).toBe(ns);
    expect(exprValue(hits[1], 'req.Container.ID')).toBe(id);
    expect(exprValue(hits[1], 'req.Container.Image')).toBe(lab.image);
    expect(exprValue(hits[1], 'req.Container.Runtime.Name')).toBe('io.containerd.runc.v2');
    expect(exprValue(hits[2], 'r.ContainerID')).toBe(id);
    expect(exprValue(hits[2], 'r.Stdout')).toMatch(new RegExp(`/${id}-stdout$`));
    expect(exprValue(hits[2], 'r.Terminal')).toBe('false');
    expect(hits[0].location.function).toBe(
      'github.com/containerd/containerd/services/namespaces.(*local).Create',
    );
    expect(hits[0].stack.length).toBeGreaterThan(3);
    expect(hits[0].args.map((a: { name: string }) => a.name)).toContain('req');
    expect(end).toMatchObject({
      type: 'end',
      reason: 'trigger-finished',
      hits: 3,
      dropped: 0,
      detached: true,
      containerdServing: true,
      containerdPid: lab.containerd.pid,
    });

    // The recording replays: the first hit with its values, as JSON.
    const replay = await ctrdbgJson<{
      hit: { seq: number; expressions: { expr: string; value?: { value?: string } }[] };
    }>(['replay', file, '--goto', '1'], { env });
    expect(replay.exitCode).toBe(0);
    expect(JSON.stringify(replay.data)).toContain(ns);

    // Golden transcript of the live recording, with what differs between runs masked.
    const list = await ctrdbg(['replay', file, '--list'], { env });
    expect(list.exitCode).toBe(0);
    const masked = list.stdout
      .replaceAll(file, '<session>')
      .replaceAll(tag, '<tag>')
      .replace(/\+\d+(\.\d+)?m?s\b/g, '+<t>')
      .replace(/\bg\d+\b/g, 'g<n>')
      .replace(/fifo\/[^"\s]*/g, 'fifo/<…>')
      .replace(/ {2,}/g, '  ');
    await expect(masked).toMatchFileSnapshot(join(repoRoot, 'test/golden/live-lab-create-list.txt'));
  });

  it('20 concurrent callers on one breakpoint: every call recorded exactly once', async () => {
    const prefix = unique('cc');
    const file = join(work, 'concurrent.jsonl');
    const trigger = `for i in $(seq 1 20); do ctr -a $CTRDBG_SOCKET namespaces create ${prefix}-$i & done; wait`;
    const { exitCode, data, stderr } = await ctrdbgJson<{
      hits: number;
      stops: number;
      containerd: { pidAfter: number; serving: boolean };
    }>(['attach', 'lab', '--set', 'lab-create', '--record', file, '--trigger', trigger], { env });
    expect(exitCode, stderr).toBe(0);
    expect(data.hits).toBe(20);
    const names = readSession(file).hits.map((h) => exprValue(h, 'req.Namespace.Name'));
    expect(new Set(names).size).toBe(20);
    expect([...names].sort()).toEqual(Array.from({ length: 20 }, (_, i) => `${prefix}-${i + 1}`).sort());
    expect(data.containerd).toMatchObject({ pidAfter: lab.containerd.pid, serving: true });
  });

  it('repeated attach / record / detach cycles leave the same containerd, untraced and serving', async () => {
    for (let cycle = 0; cycle < 4; cycle++) {
      const r = await ctrdbgJson<{ hits: number; reason: string }>(
        [
          'attach',
          'lab',
          '--set',
          'lab-create',
          '--max-hits',
          '1',
          '--trigger',
          `ctr -a $CTRDBG_SOCKET namespaces create ${unique('cy')}`,
        ],
        { env },
      );
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.data.hits).toBe(1);
      expect(tracerPid(lab.containerd.pid)).toBe(0);
      expect(await ctrOk()).toBe(true);
    }
    expect((await labStatus('default', env)).containerd.pid).toBe(lab.containerd.pid);
  });
});

describe('--interactive hands over to a debugger', () => {
  it('stops at the first hit, serves dlv on a local port, writes launch.json, and detaches on Ctrl-C', async () => {
    const vscodeDir = join(work, 'ws');
    const { child } = await startAttach(['--interactive', '--vscode-dir', vscodeDir]);
    let out = '';
    child.stderr?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const ns = unique('ia');
    const caller = execa('ctr', ['-a', sock, 'namespaces', 'create', ns], { reject: false });
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no hand-over:\n${out}`)), 60_000);
      const poll = setInterval(() => {
        const m = /dlv connect 127\.0\.0\.1:(\d+)/.exec(out);
        if (m) {
          clearInterval(poll);
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      }, 100);
    });
    expect(out).toContain('exit -c');
    // A second Delve client through the hand-over port sees containerd stopped at our breakpoint.
    const { connectTcp } = await import('../../src/delve/rpcClient.js');
    const client = await connectTcp('127.0.0.1', port);
    const state = await client.state();
    expect(state.Running).toBe(false);
    const atBreakpoint = (state.Threads ?? []).find((t) => t.breakPoint && t.breakPoint.id > 0);
    expect(atBreakpoint?.function?.name).toBe(
      'github.com/containerd/containerd/services/namespaces.(*local).Create',
    );
    const value = await client.eval('req.Namespace.Name', {
      GoroutineID: atBreakpoint?.goroutineID ?? -1,
      Frame: 0,
    });
    expect(value.value).toBe(ns);
    client.close();
    const launch = JSON.parse(readFileSync(join(vscodeDir, '.vscode/launch.json'), 'utf8'));
    expect(launch.configurations[0]).toMatchObject({ type: 'go', request: 'attach', mode: 'remote', port });
    child.kill('SIGINT');
    const result = await child;
    expect(result.exitCode, out).toBe(0);
    expect((await caller).exitCode).toBe(0);
    await healthyWithin(lab.containerd.pid, 5_000);
  });
});

describe('every way out leaves containerd running', () => {
  it('Ctrl-C (SIGINT) ends the recording with an end record and a clean detach', async () => {
    const file = join(work, 'sigint.jsonl');
    const { child } = await startAttach(['--record', file]);
    await execa('ctr', ['-a', sock, 'namespaces', 'create', unique('si')]);
    child.kill('SIGINT');
    const result = await child;
    expect(result.exitCode, String(result.stderr)).toBe(0);
    expect(readSession(file).end).toMatchObject({ reason: 'interrupted', hits: 1, detached: true });
    await healthyWithin(lab.containerd.pid, 5_000);
  });

  it('Delve listens on the node loopback only while attached', async () => {
    const { child } = await startAttach([]);
    try {
      const ss = await execa('ss', ['-ltnpH']);
      const dlv = ss.stdout.split('\n').filter((l) => l.includes('"dlv"'));
      expect(dlv.length).toBeGreaterThan(0);
      for (const line of dlv) expect(line.split(/\s+/)[3]).toMatch(/^127\.0\.0\.1:\d+$/);
    } finally {
      child.kill('SIGINT');
      await child;
    }
    await healthyWithin(lab.containerd.pid, 5_000);
  });

  it('kill -9 of ctrdbg mid-recording: containerd untraced and serving within 5 s', async () => {
    const { child } = await startAttach(['--record', join(work, 'killed.jsonl')]);
    // Keep callers hitting the breakpoint while the client dies.
    const load = execa(
      'sh',
      ['-c', `for i in $(seq 1 30); do ctr -a ${sock} namespaces create ${unique('k9')}-$i; done`],
      { reject: false },
    );
    await new Promise((r) => setTimeout(r, 700));
    child.kill('SIGKILL');
    await child;
    const took = await healthyWithin(lab.containerd.pid, 5_000);
    expect(took).toBeLessThan(5_000);
    const finished = await load;
    expect(finished.exitCode).toBe(0);
    expect((await labStatus('default', env)).containerd.pid).toBe(lab.containerd.pid);
  });

  it('a dropped SSH connection mid-recording: containerd untraced and serving within 5 s', async () => {
    const file = join(work, 'dropped.jsonl');
    const { child } = await startAttach(['--record', file]);
    // Drop the connection on the node's side: every sshd process of the lab's sessions (the privileged
    // monitor and the unprivileged child that holds the socket and the commands' pipes).
    const sshdPid = Number(readFileSync(join(lab.dir, 'ssh/sshd.pid'), 'utf8'));
    const tree = (await execa('ps', ['-e', '-o', 'pid=,ppid=,comm='])).stdout
      .split('\n')
      .map((l) => l.trim().split(/\s+/));
    const sessions = new Set<number>();
    let grew = true;
    while (grew) {
      grew = false;
      for (const [pid, ppid, comm] of tree) {
        const p = Number(pid);
        if (comm === 'sshd' && !sessions.has(p) && (Number(ppid) === sshdPid || sessions.has(Number(ppid)))) {
          sessions.add(p);
          grew = true;
        }
      }
    }
    expect(sessions.size).toBeGreaterThan(0);
    for (const pid of sessions) process.kill(pid, 'SIGKILL');
    const took = await healthyWithin(lab.containerd.pid, 5_000);
    expect(took).toBeLessThan(5_000);
    const result = await child;
    expect(readSession(file).end?.reason).toBe('connection-lost');
    expect(String(result.stderr)).not.toContain('Error: ');
    expect((await labStatus('default', env)).containerd.pid).toBe(lab.containerd.pid);
  });
});

describe('ending under concurrent load, repeatedly (the SIGTRAP-after-detach class)', () => {
  it('kill -9 and Ctrl-C while 8 callers keep hitting the breakpoint: the same containerd survives every round', async () => {
    for (let round = 0; round < 6; round++) {
      const { child } = await startAttach(['--record', join(work, `stress-${round}.jsonl`)]);
      // 8 callers in a loop, so threads are at (or just executing) the int3 when the recording ends.
      const load = execa(
        'sh',
        [
          '-c',
          `for w in $(seq 1 8); do (for i in $(seq 1 15); do ctr -a ${sock} namespaces create ${unique('st')}-$w-$i; done) & done; wait`,
        ],
        { reject: false },
      );
      await new Promise((r) => setTimeout(r, 600 + 150 * round));
      child.kill(round % 2 === 0 ? 'SIGKILL' : 'SIGINT');
      await child;
      await healthyWithin(lab.containerd.pid, 5_000);
      expect((await load).exitCode, `round ${round}`).toBe(0);
      expect(tracerPid(lab.containerd.pid)).toBe(0);
    }
    expect((await labStatus('default', env)).containerd.pid).toBe(lab.containerd.pid);
  });
});

describe('bad input: a clear error and the node untouched', () => {
  const untouched = async () => {
    expect(tracerPid(lab.containerd.pid)).toBe(0);
    expect(await ctrOk()).toBe(true);
    expect((await labStatus('default', env)).containerd.pid).toBe(lab.containerd.pid);
  };

  it('a set whose functions are not in the binary', async () => {
    const dir = join(work, 'sets-unknown');
    await execa('mkdir', ['-p', dir]);
    await writeFile(
      join(dir, 'nope.yaml'),
      'schema: ctrdbg.breakpoint-set/v1\nname: nope\nentries:\n  - name: missing\n    candidates:\n      - github.com/containerd/containerd/services/namespaces.(*local).Craete\n',
    );
    const r = await ctrdbg(['attach', 'lab', '--sets-dir', dir, '--set', 'nope', '--max-hits', '1'], { env });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain('None of the functions in nope exist in this containerd');
    expect(r.stderr).toContain('namespaces.(*local).Create');
    await untouched();
  });

  it('a broken set file names the file and line', async () => {
    const dir = join(work, 'sets-broken');
    await execa('mkdir', ['-p', dir]);
    await writeFile(
      join(dir, 'broken.yaml'),
      'schema: ctrdbg.breakpoint-set/v1\nname: broken\nentries:\n  - name: x\n    candidates: [a.b\n',
    );
    const r = await ctrdbg(['attach', 'lab', '--sets-dir', dir, '--set', 'lab-create'], { env });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/broken\.yaml:\d+:\d+/);
    await untouched();
  });

  it('an unknown set name lists the ones that exist', async () => {
    const r = await ctrdbg(['attach', 'lab', '--set', 'cri-creat'], { env });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain('cri-create');
    await untouched();
  });

  it('containerd not running', async () => {
    const service = join(lab.dir, 'node/usr/local/sbin/lab-service');
    await execa(service, ['stop']);
    try {
      const r = await ctrdbg(['attach', 'lab', '--set', 'lab-create'], { env });
      expect(r.exitCode).toBe(11);
      expect(r.stderr).toContain('containerd is not running on lab');
    } finally {
      await execa(service, ['start']);
    }
    lab = await labStatus('default', env);
  });

  it('a stripped (stock) containerd is refused before attaching', async () => {
    expect((await ctrdbg(['restore', 'lab'], { env })).exitCode).toBe(0);
    const stock = await labStatus('default', env);
    try {
      const r = await ctrdbg(['attach', 'lab', '--set', 'lab-create'], { env });
      expect(r.exitCode).toBe(6);
      expect(r.stderr).toContain('is not a debug build');
      expect(r.stderr).toContain('ctrdbg setup lab');
      expect(tracerPid(stock.containerd.pid)).toBe(0);
    } finally {
      expect((await ctrdbg(['setup', 'lab', '--skip-build'], { env })).exitCode).toBe(0);
    }
  });

  it('sets check resolves lab-create and explains cri-create', async () => {
    const { exitCode, data } = await ctrdbgJson<{
      sets: { set: string; complete: boolean; notes: string[]; entries: { suggestions: string[] }[] }[];
    }>(['sets', 'check', 'lab', '--set', 'lab-create', '--set', 'cri-create'], { env });
    expect(exitCode).toBe(0);
    const byName = Object.fromEntries(data.sets.map((s) => [s.set, s]));
    expect(byName['lab-create']?.complete, JSON.stringify(byName['lab-create'])).toBe(true);
    expect(byName['cri-create']?.complete).toBe(false);
    expect(byName['cri-create']?.notes.join(' ')).toMatch(/no CRI/i);
    expect(byName['cri-create']?.entries.some((e) => e.suggestions.length > 0)).toBe(true);
  });
});
