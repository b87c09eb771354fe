/**
 * Following the shim on the CRI lab, real processes only: a debug containerd and a debug containerd-shim-runc-v2
 * (setup --with-shim), Delve 1.24, the kubelet stand-in running a real pod. One recording answers "why is fd 1
 * of my container a pipe?" — and every way out leaves containerd and every shim serving and untraced. Every
 * wait is on a signal (a line, an exit, a state), never a sleep.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ctrdbg, ctrdbgJson, mainJs } from '../helpers/cli.js';
import { type LabStatusJson, labEnv } from '../helpers/lab.js';

const NAME = 'cri';
const TARGET = `lab:${NAME}`;
const SLOW = 900_000;

interface Value {
  value?: string;
  type?: string;
}
interface Hit {
  type: 'hit';
  seq: number;
  breakpoint: { name: string };
  process?: { pid: number; binary: string };
  stoppedMs: number;
  expressions: { expr: string; value?: Value; error?: string }[];
}

let env: Record<string, string>;
let lab: LabStatusJson & { cri: { kubelet: string } };
let work: string;
let wasUp = false;
let n = 0;
const unique = (prefix: string) => `${prefix}-${process.pid % 10000}-${Date.now() % 100000}-${n++}`;

function tracerPid(pid: number): number {
  return Number(/^TracerPid:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? -1);
}

/** The lab's shims (their command line names the lab's containerd socket). */
function shims(): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => {
      try {
        const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        return args[0]?.endsWith('containerd-shim-runc-v2') && args.includes(lab.containerd.socket);
      } catch {
        return false;
      }
    });
}

function readSession(path: string) {
  const lines = readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  return { header: lines[0], hits: lines.filter((l) => l.type === 'hit') as Hit[], end: lines.at(-1) };
}

const expr = (hit: Hit | undefined, e: string) => hit?.expressions.find((x) => x.expr === e)?.value;

/** A pod whose container keeps running (the pause program), left in place: its fds can be looked at. */
function keptPodTrigger(pod: string): string {
  return [
    process.execPath,
    mainJs,
    `lab kubelet --name ${NAME} run-pod --keep-pod --detach --image ctrdbg.lab/pause:1 --command /pause`,
    `--pod-name ${pod} --json`,
  ].join(' ');
}

/** The pid of a CRI container's task, from the node's own ctr. */
async function taskPid(containerId: string): Promise<number> {
  const ctr = join(lab.dir, 'node/usr/bin/ctr');
  const out = await execa(ctr, ['-a', lab.containerd.socket, '-n', 'k8s.io', 'tasks', 'ls'], {
    timeout: 30_000,
  });
  const row = out.stdout.split('\n').find((l) => l.startsWith(containerId));
  if (!row) throw new Error(`no task ${containerId} in:\n${out.stdout}`);
  return Number(row.trim().split(/\s+/)[1]);
}

async function removePods(): Promise<void> {
  const r = await ctrdbg(['lab', 'kubelet', '--name', NAME, 'remove-pods'], { env });
  expect(r.exitCode, r.stderr).toBe(0);
}

beforeAll(async () => {
  env = labEnv();
  work = await mkdtemp(join(tmpdir(), 'ctrdbg-shim-follow-'));
  wasUp = (await ctrdbg(['lab', 'status', '--name', NAME], { env })).exitCode === 0;
  const up = await ctrdbg(['lab', 'up', '--cri'], { env, timeout: SLOW });
  expect(up.exitCode, `${up.stdout}\n${up.stderr}`).toBe(0);
  await removePods();
  const setup = await ctrdbg(['setup', TARGET, '--with-shim'], { env, timeout: SLOW });
  expect(setup.exitCode, `${setup.stdout}\n${setup.stderr}`).toBe(0);
  lab = (await ctrdbgJson<typeof lab>(['lab', 'status', '--name', NAME], { env })).data;
}, SLOW);

afterAll(async () => {
  await removePods().catch(() => undefined);
  await rm(work, { recursive: true, force: true });
  if (!wasUp) await ctrdbg(['lab', 'down', '--name', NAME], { env });
}, SLOW);

describe('following the shim', () => {
  it('one recording ties the container fds 0, 1 and 2 to what CRI and the shim did', async () => {
    const record = join(work, 'stdio.jsonl');
    const result = await ctrdbg(
      [
        'attach',
        TARGET,
        '--set',
        'stdio',
        '--set',
        'stdio-shim',
        '--record',
        record,
        '--trigger',
        keptPodTrigger(unique('fds')),
      ],
      { env },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/following shim pid \d+/);
    const summary = JSON.parse(
      result.stderr
        .split('\n')
        .find((l) => /trigger│ \{/.test(l))!
        .replace(/^.*?trigger│ /, ''),
    ) as { containerId: string; podSandboxId: string; running: boolean };
    expect(summary.running).toBe(true);
    const { hits, end } = readSession(record);

    // One session, two processes: containerd and the pod's shim, each hit saying which.
    const binaries = new Set(hits.map((h) => h.process?.binary.split('/').pop()));
    expect([...binaries].sort()).toEqual(['containerd', 'containerd-shim-runc-v2']);
    const shimPid = hits.find((h) => h.process?.binary.endsWith('containerd-shim-runc-v2'))!.process!.pid;
    expect(shims()).toContain(shimPid);

    // containerd (CRI): the FIFOs it made for this container, and no stdin asked for.
    const fifos = hits.find((h) => h.breakpoint.name === 'stdio/new-fifos' && expr(h, 'stdin') !== undefined);
    expect(expr(fifos, 'stdin')?.value).toBe('false');
    // The shim: asked for no stdin (so the container gets /dev/null), stdout/stderr pipes copied to those FIFOs.
    const createIo = hits.find(
      (h) =>
        h.breakpoint.name === 'stdio-shim/create-io' &&
        expr(h, 'id')?.value === summary.containerId.slice(0, 64),
    );
    expect(
      createIo,
      JSON.stringify(hits.map((h) => [h.breakpoint.name, expr(h, 'id')?.value])),
    ).toBeDefined();
    expect(expr(createIo, 'stdio.Stdin')?.value).toBe('');
    const copy = hits.find((h) => h.breakpoint.name === 'stdio-shim/copy-pipes');
    expect(copy).toBeDefined();
    // The FIFOs CRI made for this container: the last set made before the shim copied to them.
    const fifoPaths = hits
      .filter((h) => h.breakpoint.name === 'stdio/fifo-paths' && h.seq < copy!.seq)
      .at(-1);
    expect(fifoPaths?.process?.binary).toMatch(/\/containerd$/);
    expect(expr(copy, 'stdin')?.value).toBe('');
    expect(expr(copy, 'rio.in')?.value).toMatch(/^(0|nil|0x0)$/);
    expect(expr(copy, 'stdout')?.value).toBe(expr(fifoPaths, 'config.Stdout')?.value);
    expect(expr(copy, 'stderr')?.value).toBe(expr(fifoPaths, 'config.Stderr')?.value);

    // The container's fds, tied to the recorded values.
    const cpid = await taskPid(summary.containerId);
    expect(readlinkSync(`/proc/${cpid}/fd/0`)).toBe('/dev/null');
    const outFd = expr(copy, 'rio.out.r.file.pfd.Sysfd')?.value;
    const errFd = expr(copy, 'rio.err.r.file.pfd.Sysfd')?.value;
    expect(readlinkSync(`/proc/${cpid}/fd/1`)).toMatch(/^pipe:\[\d+\]$/);
    expect(readlinkSync(`/proc/${cpid}/fd/1`)).toBe(readlinkSync(`/proc/${shimPid}/fd/${outFd}`));
    expect(readlinkSync(`/proc/${cpid}/fd/2`)).toBe(readlinkSync(`/proc/${shimPid}/fd/${errFd}`));

    // Afterwards: containerd and the shim untraced and serving.
    expect(end).toMatchObject({ type: 'end', detached: true, dropped: 0 });
    expect(tracerPid(lab.containerd.pid)).toBe(0);
    expect(tracerPid(shimPid)).toBe(0);
    expect(await taskPid(summary.containerId)).toBe(cpid);

    // Replay names the process of each hit.
    const list = await ctrdbg(['replay', record, '--list'], { env });
    expect(list.exitCode, list.stderr).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`shim ${shimPid}|containerd-shim-runc-v2 ${shimPid}`));
  });

  it.each(['SIGINT', 'SIGKILL'] as const)(
    '%s of ctrdbg while it follows a running shim: containerd and every shim serving, untraced',
    async (signal) => {
      const kept = await ctrdbg(
        [
          'lab',
          'kubelet',
          '--name',
          NAME,
          'run-pod',
          '--keep-pod',
          '--detach',
          '--image',
          'ctrdbg.lab/pause:1',
          '--command',
          '/pause',
        ],
        { env: { ...env }, timeout: 120_000 },
      );
      expect(kept.exitCode, kept.stderr).toBe(0);
      const running = shims();
      expect(running.length).toBeGreaterThan(0);
      const child = execa(process.execPath, [mainJs, 'attach', TARGET, '--set', 'stdio-shim'], {
        env: { ...env, NO_COLOR: '1' },
        reject: false,
      });
      let err = '';
      child.stderr?.on('data', (d: Buffer) => {
        err += d.toString();
      });
      // Armed in every running shim: each reports being followed.
      const deadline = Date.now() + 120_000;
      while ((err.match(/following shim pid \d+/g) ?? []).length < running.length) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no follow:\n${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      for (const pid of running) expect(tracerPid(pid)).not.toBe(0);
      child.kill(signal);
      const done = await child;
      if (signal === 'SIGINT') expect(done.exitCode, err).toBe(130);
      // Within 5 s of ctrdbg's end, nothing is traced any more (the agent notices the closed channel).
      const until = Date.now() + 5_000;
      const traced = () => [lab.containerd.pid, ...running].filter((pid) => tracerPid(pid) !== 0);
      while (traced().length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(traced()).toEqual([]);
      // Serving: containerd answers, and every shim still runs its pod.
      const ctr = join(lab.dir, 'node/usr/bin/ctr');
      const tasks = await execa(ctr, ['-a', lab.containerd.socket, '-n', 'k8s.io', 'tasks', 'ls'], {
        timeout: 30_000,
      });
      expect(tasks.stdout).toMatch(/RUNNING/);
      expect(shims().sort()).toEqual(running.sort());
      await removePods();
    },
  );
});
