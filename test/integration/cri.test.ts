/**
 * The CRI lab (`ctrdbg lab up --cri`, target lab:cri) against real processes only: sshd, Debian trixie's stock
 * containerd 1.7.24 with CRI and its shim, runc, a debug build from trixie's 1.7.24 source with Go 1.24,
 * Delve 1.24, and the kubelet stand-in driving real pods. Every wait is on a signal (a line, an exit, a
 * state), never a sleep.
 *
 * Also here, because they need the trixie lane rather than a lab: the go.mod check before a build, and the
 * toolchain choice (--go, $CTRDBG_GO, the lab's lane).
 */
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ctrdbg, ctrdbgJson, mainJs, repoRoot } from '../helpers/cli.js';
import { type LabStatusJson, labEnv } from '../helpers/lab.js';

const NAME = 'cri';
const TARGET = `lab:${NAME}`;
const SLOW = 900_000;
const P1 = 'github.com/containerd/containerd';

interface CriStatus extends LabStatusJson {
  flavor: string;
  cri: { kubelet: string; sandboxImage: string; namespace: string; podLogs: string; shim: string };
}

interface Lane {
  go: { path: string; version: string };
  dlv: { path: string; version: string };
  containerd: { binary: string; ctr: string; version: string; line: string };
}

let env: Record<string, string>;
let lab: CriStatus;
let lane: Lane;
let work: string;
let wasUp = false;
let n = 0;
const unique = (prefix: string) => `${prefix}-${process.pid % 10000}-${Date.now() % 100000}-${n++}`;
const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

function tracerPid(pid: number): number {
  return Number(/^TracerPid:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? -1);
}

async function status(): Promise<CriStatus> {
  const { data } = await ctrdbgJson<CriStatus>(['lab', 'status', '--name', NAME], { env });
  return data;
}

/** The node's own ctr (trixie's), against the lab's socket. */
async function nodeCtr(args: string[]) {
  return execa(lane.containerd.ctr, ['-a', lab.containerd.socket, ...args], {
    reject: false,
    timeout: 30_000,
  });
}

interface Value {
  name?: string;
  value?: string;
  len?: number;
  truncated?: boolean;
  redacted?: boolean;
  children?: Value[];
}
interface Hit {
  seq: number;
  breakpoint: { name: string };
  location: { function: string };
  args: Value[];
  expressions: { expr: string; value?: Value; error?: string }[];
}

function readSession(path: string) {
  const text = readFileSync(path, 'utf8');
  const lines = text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  return { text, header: lines[0], hits: lines.filter((l) => l.type === 'hit') as Hit[], end: lines.at(-1) };
}

const expr = (hit: Hit | undefined, e: string) => hit?.expressions.find((x) => x.expr === e)?.value?.value;
/**
 * A loaded argument by path (`config.Stdout`, `r.ContainerId`), read in full from the args (record expressions
 * stop at 64 bytes). A pointer's one child (`*r`) is stepped through.
 */
function arg(hit: Hit | undefined, path: string): string | undefined {
  let level = hit?.args;
  let found: Value | undefined;
  for (const part of path.split('.')) {
    found = level?.find((v) => v.name === part);
    const only = found?.children?.length === 1 ? found.children[0] : undefined;
    level = only?.name?.startsWith('*') ? only.children : found?.children;
  }
  return found?.value;
}

/** The stand-in's --json summary, which reaches attach's stderr as a `trigger│ {…}` line. */
function triggerSummary(stderr: string): Record<string, unknown> & {
  podSandboxId: string;
  containerId: string;
  log: string[];
} {
  const line = stderr.split('\n').find((l) => /trigger│ \{/.test(l));
  if (!line) throw new Error(`no JSON summary from the stand-in in:\n${stderr}`);
  return JSON.parse(line.slice(line.indexOf('{')));
}

beforeAll(async () => {
  env = labEnv();
  work = await mkdtemp(join(tmpdir(), 'ctrdbg-cri-'));
  lane = JSON.parse(
    readFileSync(
      join(process.env.CTRDBG_TOOLCHAIN_DIR || '/var/lib/ctrdbg/toolchains', 'trixie/lane.json'),
      'utf8',
    ),
  ) as Lane;
  wasUp = (await ctrdbg(['lab', 'status', '--name', NAME], { env })).exitCode === 0;
  const up = await ctrdbg(['lab', 'up', '--cri'], { env, timeout: SLOW });
  expect(up.exitCode, `${up.stdout}\n${up.stderr}`).toBe(0);
  lab = await status();
  // Start from the node's original binary whatever an earlier run left.
  if (!lab.containerd.isStock) {
    const restored = await ctrdbg(['restore', TARGET], { env });
    expect(restored.exitCode, restored.stderr).toBe(0);
    lab = await status();
  }
}, SLOW);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
  if (!wasUp) await ctrdbg(['lab', 'down', '--name', NAME], { env });
});

describe('the CRI lab node', () => {
  it("runs Debian trixie's stock, stripped containerd 1.7.24 with the CRI plugin as its original", async () => {
    expect(lab.target).toBe(TARGET);
    expect(lab.flavor).toBe('cri');
    expect(lab.up).toBe(true);
    expect(lab.containerd.version).toBe(lane.containerd.line);
    expect(lab.containerd.version).toMatch(/ 1\.7\.24~ds1 /);
    expect(lab.containerd.isStock).toBe(true);
    expect(lab.containerd.debuggable).toBe(false);
    expect(sha256(lab.containerd.binary)).toBe(sha256(lane.containerd.binary));
    expect(readlinkSync(`/proc/${lab.containerd.pid}/exe`)).toBe(lab.containerd.binary);
    const plugins = await nodeCtr(['plugins', 'ls']);
    expect(plugins.stdout).toMatch(/^io\.containerd\.grpc\.v1\s+cri\s+\S+\s+ok\s*$/m);
    // The sandbox image the CRI config names is in CRI's namespace, built and imported offline.
    const images = await nodeCtr(['-n', 'k8s.io', 'images', 'ls', '-q']);
    expect(images.stdout.split('\n')).toEqual(
      expect.arrayContaining(['ctrdbg.lab/pause:1', 'ctrdbg.lab/hello:1']),
    );
  });

  it('a second `lab up --cri` changes nothing, and a stock lab cannot turn into a CRI lab', async () => {
    const again = await ctrdbgJson<{ created: boolean; status: CriStatus }>(['lab', 'up', '--cri'], { env });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.data.created).toBe(false);
    expect(again.data.status.containerd.pid).toBe(lab.containerd.pid);
    const wrong = await ctrdbg(['lab', 'up', '--cri', '--name', 'default'], { env });
    expect(wrong.exitCode).toBe(3);
    expect(wrong.stderr).toMatch(/is a stock lab; it cannot become a cri lab/);
  });

  it('the kubelet stand-in runs a real pod through CRI and cleans up after it', async () => {
    const pod = unique('standin');
    const result = await ctrdbg(
      [
        'lab',
        'kubelet',
        '--name',
        NAME,
        'run-pod',
        '--pod-name',
        pod,
        '--pod-namespace',
        'ctrdbg-test',
        '--json',
      ],
      { env },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    const calls = result.stdout.split('\n').map((l) => l.split(/\s+/)[0]);
    expect(calls.filter((c) => /^[A-Z]/.test(c ?? ''))).toEqual([
      'RunPodSandbox',
      'ImageStatus',
      'CreateContainer',
      'StartContainer',
      'ContainerStatus',
      'StopPodSandbox',
      'RemovePodSandbox',
    ]);
    const summary = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '{}');
    expect(summary).toMatchObject({ exitCode: 0, pulled: false });
    expect(summary.log.join('\n')).toMatch(/stdout F hello from the ctrdbg lab: pod ctrdbg-test\/.+ says hi/);
    const left = await nodeCtr(['-n', 'k8s.io', 'containers', 'ls', '-q']);
    expect(left.stdout).not.toContain(summary.podSandboxId);
    expect(left.stdout).not.toContain(summary.containerId);
  });

  it('create-orphan: CreateContainer in a made-up sandbox gets NotFound', async () => {
    const result = await ctrdbg(
      ['lab', 'kubelet', '--name', NAME, 'create-orphan', '--sandbox-id', 'made-up-1'],
      {
        env,
      },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/NotFound, as expected: failed to find sandbox id "made-up-1"/);
  });

  it('lab down removes a pod left running, /dev/shm mount and all; lab up brings the node back', async () => {
    const kept = await ctrdbg(
      ['lab', 'kubelet', '--name', NAME, 'run-pod', '--pod-name', unique('kept'), '--keep-pod', '--json'],
      { env },
    );
    expect(kept.exitCode, kept.stderr).toBe(0);
    const { podSandboxId } = JSON.parse(kept.stdout.trim().split('\n').at(-1) ?? '{}');
    const mounts = () =>
      readFileSync('/proc/mounts', 'utf8')
        .split('\n')
        .filter((l) => l.includes(`${lab.dir}/`));
    expect(mounts().some((m) => m.includes(`sandboxes/${podSandboxId}/shm`))).toBe(true);
    const down = await ctrdbgJson<{ stopped: { what: string }[] }>(['lab', 'down', '--name', NAME], { env });
    expect(down.exitCode, down.stderr).toBe(0);
    expect(down.data.stopped.map((s) => s.what)).toContain(`pod ${podSandboxId.slice(0, 12)}`);
    expect(mounts()).toEqual([]);
    const up = await ctrdbg(['lab', 'up', '--cri'], { env });
    expect(up.exitCode, up.stderr).toBe(0);
    lab = await status();
    expect(lab.up).toBe(true);
    expect((await nodeCtr(['-n', 'k8s.io', 'containers', 'ls', '-q'])).stdout.trim()).toBe('');
  });
});

describe('setup, doctor, sets and restore on lab:cri', () => {
  let pid = 0;

  it(
    'setup builds 1.7.24 from trixie’s source with Go 1.24, ships Delve 1.24 and passes the version check',
    async () => {
      const result = await ctrdbg(['setup', TARGET, '--json'], { env, timeout: SLOW });
      expect(result.exitCode, result.stderr).toBe(0);
      const data = JSON.parse(result.stdout) as {
        binary: { version: string; built: boolean };
        node: { pidAfter: number };
        dlv: { version: string; why: string };
      };
      expect(data.binary.built).toBe(true);
      expect(data.binary.version).toBe(lane.containerd.line);
      expect(data.dlv.version).toBe(lane.dlv.version);
      expect(data.dlv.why).toMatch(/trixie lane/);
      // ctrdbg says which toolchain it picked, and why; the build manifest keeps it.
      const manifest = JSON.parse(
        readFileSync(join(inject('cacheDir'), 'builds/amd64-trixie/containerd.manifest.json'), 'utf8'),
      );
      expect(manifest.toolchain.go).toEqual({
        path: lane.go.path,
        version: lane.go.version,
        source: 'lane',
        why: "the trixie lane, the lab's own",
      });
      expect(manifest.command.env).toMatchObject({ GO111MODULE: 'off', GOTOOLCHAIN: 'local' });
      expect(result.stderr).not.toContain('allow-version-mismatch');
      pid = data.node.pidAfter;
      expect(pid).not.toBe(lab.containerd.pid);
      const verify = await ctrdbgJson<{ debuggable: boolean; goVersion: string }>(
        ['build', '--verify', `/proc/${pid}/exe`],
        { env },
      );
      expect(verify.data).toMatchObject({ debuggable: true, goVersion: lane.go.version });
      const plugins = await nodeCtr(['plugins', 'ls']);
      expect(plugins.stdout).toMatch(/^io\.containerd\.grpc\.v1\s+cri\s+\S+\s+ok\s*$/m);
    },
    SLOW,
  );

  it('doctor shows every check passing, CRI plugin loaded among them', async () => {
    const { exitCode, data } = await ctrdbgJson<{
      ok: boolean;
      checks: { id: string; status: string; detail: string }[];
      notApplicable: { id: string }[];
    }>(['doctor', TARGET], { env });
    expect(data.checks.filter((c) => c.status !== 'ok')).toEqual([]);
    expect(exitCode).toBe(0);
    expect(data.checks.find((c) => c.id === 'cri')).toMatchObject({
      status: 'ok',
      detail: expect.stringContaining('io.containerd.grpc.v1 cri: ok'),
    });
    expect(data.checks.find((c) => c.id === 'dlv')?.detail).toContain(`Delve ${lane.dlv.version}`);
    expect(data.checks.find((c) => c.id === 'shim')?.detail).toContain(lab.cri.shim);
    expect(data.notApplicable.map((c) => c.id)).not.toContain('cri');
  });

  it('sets check: every CRI entry of 1.7 resolves, in both CRI servers; 2.x-only entries are "not in this version"', async () => {
    const criSets = ['cri-create', 'sandbox-run', 'image-pull', 'container-start', 'stdio'];
    const { exitCode, data } = await ctrdbgJson<{
      sets: {
        set: string;
        complete: boolean;
        entries: {
          entry: string;
          locations: { function: string; optimized: boolean }[];
          notInVersion?: string;
        }[];
      }[];
    }>(['sets', 'check', TARGET, ...criSets.flatMap((s) => ['--set', s])], { env });
    expect(exitCode).toBe(0);
    for (const set of data.sets) {
      expect(set.complete, set.set).toBe(true);
      for (const e of set.entries) {
        if (e.notInVersion) continue;
        expect(e.locations.length, `${set.set}/${e.entry}`).toBeGreaterThan(0);
        expect(e.locations.some((l) => l.optimized)).toBe(false);
        const fns = e.locations.map((l) => l.function);
        // An entry with a pkg/cri/server candidate must hit sbserver too: 1.7 compiles both.
        if (fns.some((f) => f.startsWith(`${P1}/pkg/cri/server.`)))
          expect(
            fns.some((f) => f.startsWith(`${P1}/pkg/cri/sbserver.`)),
            `${set.set}/${e.entry}`,
          ).toBe(true);
      }
    }
    const entry = (s: string, e: string) =>
      data.sets.find((x) => x.set === s)?.entries.find((x) => x.entry === e);
    expect(entry('image-pull', 'cri-image-service-pull')).toMatchObject({
      notInVersion: '>=2.0',
      locations: [],
    });
    expect(entry('stdio', 'new-fifos')?.locations.map((l) => l.function)).toEqual([
      `${P1}/pkg/cri/io.newFifos`,
    ]);
    expect(entry('sandbox-run', 'sandbox-controller-start')?.locations).toHaveLength(1);
    const text = await ctrdbg(['sets', 'check', TARGET, '--set', 'image-pull'], { env });
    expect(text.stdout).toMatch(/– cri-image-service-pull +not in this version \(containerd >=2\.0 only\)/);
    expect(text.stdout).not.toContain('✘');
  });

  it(
    'one attach records what the stand-in sent: pod, container, image, log path, and the FIFOs CRI made',
    async () => {
      const record = join(work, 'pod.jsonl');
      const pod = { name: unique('web'), namespace: 'shop', uid: `uid-${randomBytes(4).toString('hex')}` };
      const container = 'app';
      const trigger = [
        process.execPath,
        mainJs,
        'lab kubelet run-pod --json',
        `--pod-name ${pod.name} --pod-namespace ${pod.namespace} --pod-uid ${pod.uid}`,
        `--container-name ${container} --label tier=front --annotation owner=ctrdbg-test`,
      ].join(' ');
      const result = await ctrdbg(
        [
          'attach',
          TARGET,
          ...['--set', 'sandbox-run', '--set', 'cri-create', '--set', 'container-start', '--set', 'stdio'],
          '--record',
          record,
          '--trigger',
          trigger,
        ],
        { env },
      );
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/containerd pid \d+ serving, breakpoints cleared, detached, same pid/);
      expect(tracerPid(pid)).toBe(0);
      const sent = triggerSummary(result.stderr);
      const { header, hits, end } = readSession(record);
      expect(header.sets).toEqual(['sandbox-run', 'cri-create', 'container-start', 'stdio']);
      expect(end).toMatchObject({ type: 'end', reason: 'trigger-finished' });
      const at = (name: string) => hits.filter((h) => h.breakpoint.name === name);

      const [sandbox] = at('sandbox-run/run-pod-sandbox');
      expect(sandbox?.location.function).toBe(`${P1}/pkg/cri/server.(*criService).RunPodSandbox`);
      expect(expr(sandbox, 'r.Config.Metadata.Name')).toBe(pod.name);
      expect(expr(sandbox, 'r.Config.Metadata.Namespace')).toBe(pod.namespace);
      expect(expr(sandbox, 'r.Config.Metadata.Uid')).toBe(pod.uid);

      const [create] = at('cri-create/create-container');
      expect(arg(create, 'r.PodSandboxId')).toBe(sent.podSandboxId);
      expect(expr(create, 'r.Config.Metadata.Name')).toBe(container);
      expect(expr(create, 'r.Config.Image.Image')).toBe('ctrdbg.lab/hello:1');
      expect(expr(create, 'r.Config.LogPath')).toBe(`${container}/0.log`);
      expect(expr(create, 'r.SandboxConfig.Metadata.Namespace')).toBe(pod.namespace);
      expect(sent.logFile).toBe(
        join(lab.cri.podLogs, `${pod.namespace}_${pod.name}_${pod.uid}`, container, '0.log'),
      );

      // The FIFOs CRI made for this container: under its state dir, named after the container id.
      const criState = join(lab.dir, 'node/run/containerd/state/io.containerd.grpc.v1.cri/containers');
      const [fifos] = at('stdio/new-fifos');
      expect(arg(fifos, 'id')).toBe(sent.containerId);
      expect(arg(fifos, 'root')).toBe(join(criState, sent.containerId));
      const paths = at('stdio/fifo-paths').find((h) => arg(h, 'config.Stdout')?.includes(sent.containerId));
      const fifoDir = new RegExp(`^${criState}/${sent.containerId}/io/\\d+/${sent.containerId}-`);
      expect(arg(paths, 'config.Stdout')).toMatch(new RegExp(`${fifoDir.source}stdout$`));
      expect(arg(paths, 'config.Stderr')).toMatch(new RegExp(`${fifoDir.source}stderr$`));
      // cio names a stdin FIFO too; CRI's newFifos drops it afterwards for a container without stdin.
      expect(arg(paths, 'config.Stdin')).toMatch(new RegExp(`${fifoDir.source}stdin$`));
      expect(arg(fifos, 'stdin')).toBe('false');

      const [start] = at('container-start/start-container');
      expect(arg(start, 'r.ContainerId')).toBe(sent.containerId);
      const tasks = at('container-start/tasks-start').map((h) => arg(h, 'r.ContainerID'));
      expect(tasks).toEqual(expect.arrayContaining([sent.podSandboxId, sent.containerId]));
      expect(statSync(record).mode & 0o777).toBe(0o600);
    },
    SLOW,
  );

  it('image-pull: a PullImage with Auth{Username, Password} is recorded, the password nowhere, the file 0600', async () => {
    const record = join(work, 'pull.jsonl');
    const password = `pw-${randomBytes(12).toString('hex')}`;
    const username = unique('alice');
    // The password reaches the stand-in through its environment, never a command line (ps, the session's trigger).
    const result = await ctrdbg(
      [
        'attach',
        TARGET,
        '--set',
        'image-pull',
        '--record',
        record,
        '--trigger',
        `${process.execPath} ${mainJs} lab kubelet pull --username ${username} --expect-failure`,
      ],
      { env: { ...env, CTRDBG_PULL_PASSWORD: password } },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/trigger│ +→ failed: .*connection refused/);
    const { text, hits, header } = readSession(record);
    const [pull] = hits.filter((h) => h.breakpoint.name === 'image-pull/pull-image');
    expect(expr(pull, 'r.Image.Image')).toMatch(/^127\.0\.0\.1:\d+\/ctrdbg\/private:1$/);
    expect(pull?.args).toEqual([]); // loadArgs: false: r (and r.Auth) is never even read off the node
    expect(hits.some((h) => h.breakpoint.name === 'image-pull/resolve')).toBe(true);
    expect(header.redaction.rules).toContain('path r.Auth');
    expect(text).not.toContain(password);
    expect(statSync(record).mode & 0o777).toBe(0o600);
  });

  it('the stand-in on the node works as --trigger-on-node (CTRDBG_SOCKET set by attach)', async () => {
    const sandbox = unique('made-up-sandbox');
    const result = await ctrdbg(
      [
        'attach',
        TARGET,
        '--set',
        'cri-create',
        '--trigger-on-node',
        '--trigger',
        `${lab.cri.kubelet} create-orphan --sandbox-id ${sandbox}`,
      ],
      { env },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toContain('trigger (on the node)');
    expect(result.stderr).toMatch(/NotFound, as expected/);
    expect(result.stdout).toMatch(new RegExp(`r\\.PodSandboxId="${sandbox}"`));
  });

  it("restore puts trixie's stock binary back, byte-identical, and it still runs pods", async () => {
    const result = await ctrdbgJson<{ pid: number; sha256: string }>(['restore', TARGET], { env });
    expect(result.exitCode, result.stderr).toBe(0);
    const after = await status();
    expect(after.containerd.isStock).toBe(true);
    expect(sha256(after.containerd.binary)).toBe(sha256(lane.containerd.binary));
    expect(sha256(`/proc/${after.containerd.pid}/exe`)).toBe(sha256(lane.containerd.binary));
    const pod = await ctrdbg(['lab', 'kubelet', '--name', NAME, 'run-pod', '--pod-name', unique('after')], {
      env,
    });
    expect(pod.exitCode, pod.stderr).toBe(0);
  });
});

describe('the Go a tree needs, and which go and dlv ctrdbg picks', () => {
  let tree: string;
  beforeAll(() => {
    tree = join(work, 'newer-go-tree');
    cpSync(join(repoRoot, 'test/fixtures/newer-go-tree'), tree, { recursive: true });
  });

  it('refuses Go 1.19 for a go.mod that says `go 1.24.3`: one paragraph, exit 14', async () => {
    const result = await ctrdbg(['build', '--src', tree, '--out', join(work, 'out-old')], {
      env: { ...env, PATH: `/usr/bin:/bin:/usr/sbin:/sbin` },
    });
    expect(result.exitCode).toBe(14);
    const error = result.stderr.split('\n').find((l) => l.startsWith('error:')) ?? '';
    expect(error).toContain(`${tree} needs Go 1.24.3 or newer`);
    expect(error).toContain('`go 1.24.3`, `toolchain go1.24.9`');
    expect(error).toContain('go1.19.8 (/usr/bin/go, first on PATH)');
    expect(error).toContain(`--go ${lane.go.path} (ctrdbg's trixie lane, ${lane.go.version})`);
    expect(error).toMatch(/https:\/\/go\.dev\/dl/);
    const json = await ctrdbgJson<{ error: { kind: string; details: { needed: string; found: string } } }>(
      ['build', '--src', tree, '--out', join(work, 'out-old')],
      { env: { ...env, PATH: `/usr/bin:/bin:/usr/sbin:/sbin` } },
    );
    expect(json.data.error).toMatchObject({
      kind: 'toolchain',
      details: { needed: '1.24.3', found: 'go1.19.8' },
    });
  });

  it('builds it with --go (trixie’s Go first on PATH for make, GOTOOLCHAIN=local) and warns below its toolchain line', async () => {
    const out = join(work, 'out-new');
    const result = await ctrdbgJson<{
      manifest: {
        toolchain: { go: { path: string; version: string; source: string } };
        binary: { goVersion: string };
      };
    }>(['build', '--src', tree, '--out', out, '--go', lane.go.path], { env });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.data.manifest.toolchain.go).toMatchObject({
      path: lane.go.path,
      version: lane.go.version,
      source: 'flag',
    });
    expect(result.data.manifest.binary.goVersion).toBe(lane.go.version);
    expect(result.stderr).toMatch(
      /suggests Go 1\.24\.9 \(`toolchain go1\.24\.9`\); building with go1\.24\.4/,
    );
    const vars = readFileSync(join(tree, 'bin/make-vars.txt'), 'utf8');
    expect(vars).toContain(`GO_VERSION=${lane.go.version}`);
    expect(vars).toContain('GOTOOLCHAIN=local');
  });

  it('without the trixie lane, `lab up --cri` stops before making anything and says how to get it', async () => {
    const missing = join(work, 'no-toolchains');
    const result = await ctrdbg(['lab', 'up', '--cri', '--name', 'cri-nolane'], {
      env: { ...env, CTRDBG_TOOLCHAIN_DIR: missing },
    });
    expect(result.exitCode).toBe(4);
    expect(result.stderr).toMatch(/needs the trixie toolchain lane .* not installed in .*no-toolchains/);
    expect(result.stderr).toContain('scripts/bootstrap-trixie');
    expect((await ctrdbg(['lab', 'status', '--name', 'cri-nolane'], { env })).exitCode).toBe(3);
  });

  it('takes $CTRDBG_GO when there is no --go, and says so', async () => {
    const result = await ctrdbg(['build', '--src', tree, '--out', join(work, 'out-env')], {
      env: { ...env, CTRDBG_GO: lane.go.path },
    });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toContain(`go: ${lane.go.version} at ${lane.go.path} ($CTRDBG_GO)`);
  });

  it('an explicit dlv that cannot debug the binary is an error naming one that can', async () => {
    const result = await ctrdbg(['setup', TARGET, '--skip-build', '--dlv', '/usr/bin/dlv'], { env });
    expect(result.exitCode).toBe(4);
    expect(result.stderr).toMatch(
      /Delve 1\.20\.2 at \/usr\/bin\/dlv \(--dlv\) supports Go 1\.18–1\.20, not go1\.24\.4: it cannot debug containerd on lab:cri/,
    );
    expect(result.stderr).toContain(`--dlv ${lane.dlv.path}`);
  });
});
