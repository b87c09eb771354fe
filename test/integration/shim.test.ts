/**
 * `setup --with-shim` against real processes only: a CRI lab of its own (lab:shim — trixie's stock containerd
 * 1.7.24 and its stock shim, sshd, runc, the kubelet stand-in running real pods), the shim built from trixie's
 * 1.7.24 source with Go 1.24, and containerd's own Makefile rule for the shim (the make-tree fixture).
 *
 * What it proves: the installed shim is debuggable by the same check `build --verify` makes (DWARF, the build's
 * -N -l), read from the node's file and from a new pod's shim process (/proc/PID/exe); a pod started before keeps
 * the binary it started with; a second setup changes nothing; restore puts the original back byte-identical, also
 * when only one of containerd and the shim was replaced; Ctrl-C at every step, a shim that does not run, a
 * containerd that does not start and a setup killed outright all leave the original shim (or, past containerd's
 * restart, both new binaries). Every wait is on a signal (a line, an exit), never a sleep.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ctrdbg, ctrdbgJson, mainJs, repoRoot } from '../helpers/cli.js';
import { type LabStatusJson, labEnv, labStatus } from '../helpers/lab.js';

const NAME = 'shim';
const TARGET = `lab:${NAME}`;
const SLOW = 900_000;
const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

interface Lane {
  go: { version: string };
  containerd: { binary: string; shim: string; version: string };
}
interface ShimJson {
  path: string;
  why: string;
  sha256: string;
  previousSha256: string;
  backedUp: boolean;
  unchanged: boolean;
  version: string;
  running: { pid: number; replaced: boolean }[];
  built: boolean;
}
interface SetupJson {
  node: { pidBefore: number; pidAfter: number };
  binary: { sha256: string };
  swap: { unchanged: boolean; restarted: boolean };
  shim: ShimJson;
  changed: string[];
}
interface Report {
  debuggable: boolean;
  hasDwarf: boolean;
  goVersion: string;
  mainPackage: string;
  buildSettings: Record<string, string>;
  optimizedContainerdPackages: string[];
  problems: string[];
}
interface NodeStateJson {
  pending?: unknown;
  current?: { outcome: string; runningSha256: string };
  shim?: {
    path: string;
    original?: { sha256: string; backup: string };
    installed?: { sha256: string };
    pending?: { step: string };
    current?: { outcome: string; sha256: string; debug: boolean; interruptedAt?: string; failedAt?: string };
  };
}

let env: Record<string, string>;
let lab: LabStatusJson & { cri: NonNullable<LabStatusJson['cri']> };
let lane: Lane;
let work: string;
let stockShim: string;
let stockContainerd: string;
let wasUp = false;

const shimFile = () => lab.cri.shim;
const nodeState = () =>
  JSON.parse(readFileSync(join(lab.dir, 'node/opt/ctrdbg/state.json'), 'utf8')) as NodeStateJson;
const nodeStateIfAny = () =>
  existsSync(join(lab.dir, 'node/opt/ctrdbg/state.json')) ? nodeState() : undefined;
const debugShimBuild = () => join(env.CTRDBG_CACHE_DIR ?? '', 'builds/amd64-trixie/containerd-shim-runc-v2');
const debugContainerdBuild = () => join(env.CTRDBG_CACHE_DIR ?? '', 'builds/amd64-trixie/containerd');

async function status() {
  return (await labStatus(NAME, env)) as typeof lab;
}

/** What runs and what is on disk, for containerd and the shim. */
async function facts() {
  const s = await status();
  return {
    pid: s.containerd.pid,
    serving: s.containerd.serving,
    containerd: sha256(`/proc/${s.containerd.pid}/exe`),
    containerdFile: sha256(s.containerd.binary),
    shim: sha256(shimFile()),
  };
}

/** The shim process serving a pod sandbox: its cmdline names the sandbox (`-id <id>`). */
function shimOfPod(sandboxId: string): { pid: number; exe: string } {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let exe: string;
    let argv: string[];
    try {
      exe = readlinkSync(`/proc/${entry}/exe`);
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (exe.startsWith(shimFile()) && argv[argv.indexOf('-id') + 1] === sandboxId)
      return { pid: Number(entry), exe };
  }
  throw new Error(`no shim process for sandbox ${sandboxId}`);
}

async function runPod(name: string): Promise<string> {
  const r = await ctrdbg(
    ['lab', 'kubelet', '--name', NAME, 'run-pod', '--pod-name', name, '--keep-pod', '--json'],
    { env },
  );
  expect(r.exitCode, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}').podSandboxId as string;
}

async function verify(path: string) {
  return (await ctrdbgJson<Report>(['build', '--verify', path], { env })).data;
}

async function restoreToStock() {
  const now = await facts();
  if (
    now.containerd !== stockContainerd ||
    now.containerdFile !== stockContainerd ||
    now.shim !== stockShim
  ) {
    const r = await ctrdbg(['restore', TARGET], { env });
    expect(r.exitCode, r.stderr).toBe(0);
  }
  const after = await facts();
  expect(after.containerd).toBe(stockContainerd);
  expect(after.shim).toBe(stockShim);
}

/** Starts `setup` and delivers `signal` when `when` shows up on its stderr. */
async function setupInterrupted(when: RegExp, signal: NodeJS.Signals, args: string[]) {
  const child = execa(process.execPath, [mainJs, 'setup', TARGET, ...args], {
    env: { ...env, NO_COLOR: '1' },
    reject: false,
  });
  let err = '';
  let sent = false;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`never saw ${when}:\n${err}`)), 300_000);
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if (!sent && when.test(err)) {
        sent = true;
        clearTimeout(timer);
        child.kill(signal);
        resolve();
      }
    });
    void child.then(() => reject(new Error(`setup ended before ${when}:\n${err}`)));
  });
  const result = await child;
  return { exitCode: result.exitCode, stderr: String(result.stderr) };
}

async function goBuild(dir: string, out: string, ldflags: string[] = []) {
  await execa('go', ['build', '-gcflags=all=-N -l', ...ldflags, '-o', out, '.'], {
    cwd: dir,
    env: { GOFLAGS: '', GO111MODULE: 'on', CGO_ENABLED: '0' },
  });
  return out;
}

beforeAll(async () => {
  env = labEnv();
  work = await mkdtemp(join(tmpdir(), 'ctrdbg-shim-'));
  lane = JSON.parse(
    readFileSync(
      join(process.env.CTRDBG_TOOLCHAIN_DIR || '/var/lib/ctrdbg/toolchains', 'trixie/lane.json'),
      'utf8',
    ),
  ) as Lane;
  stockShim = sha256(lane.containerd.shim);
  stockContainerd = sha256(lane.containerd.binary);
  wasUp = (await ctrdbg(['lab', 'status', '--name', NAME], { env })).exitCode === 0;
  const up = await ctrdbg(['lab', 'up', '--cri', '--name', NAME], { env, timeout: SLOW });
  expect(up.exitCode, `${up.stdout}\n${up.stderr}`).toBe(0);
  lab = await status();
  // Start from the node's originals whatever an earlier run left, with no pod running.
  await ctrdbg(['lab', 'kubelet', '--name', NAME, 'remove-pods'], { env });
  await restoreToStock();
}, SLOW);

afterAll(async () => {
  await ctrdbg(['lab', 'kubelet', '--name', NAME, 'remove-pods'], { env });
  await rm(work, { recursive: true, force: true });
  if (!wasUp) await ctrdbg(['lab', 'down', '--name', NAME], { env });
});

describe("containerd's Makefile and the shim", () => {
  it('its shim rule ignores GODEBUG=1’s -N -l; `build --with-shim` gets them in (GO_BUILD_FLAGS) and verifies the shim', async () => {
    const tree = join(work, 'make-tree');
    cpSync(join(repoRoot, 'test/fixtures/make-tree'), tree, { recursive: true });
    // The Makefile alone, as a user would run it: an optimised shim.
    await execa('make', ['GODEBUG=1', 'GO_GCFLAGS=', 'bin/containerd-shim-runc-v2'], { cwd: tree });
    const plain = await verify(join(tree, 'bin/containerd-shim-runc-v2'));
    expect(plain.debuggable).toBe(false);
    expect(plain.hasDwarf).toBe(true); // GODEBUG=1 dropped -s -w, but not the optimisation
    expect(plain.optimizedContainerdPackages).toEqual(
      expect.arrayContaining(['main', 'github.com/containerd/containerd/version']),
    );
    const out = join(work, 'out-make');
    const built = await ctrdbgJson<{
      binary: string;
      shim: { binary: string; manifest: { command: { args: string[] }; verification: Report } };
    }>(['build', '--src', tree, '--out', out, '--with-shim'], { env });
    expect(built.exitCode, built.stderr).toBe(0);
    expect(built.data.shim.binary).toBe(join(out, 'containerd-shim-runc-v2'));
    expect(built.data.shim.manifest.command.args).toEqual([
      'GODEBUG=1',
      'GO_GCFLAGS=',
      'GO_BUILD_FLAGS=-gcflags=all="-N -l"',
      'bin/containerd-shim-runc-v2',
    ]);
    expect(readFileSync(join(tree, 'bin/shim-make-vars.txt'), 'utf8')).toContain(
      'GO_BUILD_FLAGS_ORIGIN=command line',
    );
    const shim = await verify(built.data.shim.binary);
    expect(shim).toMatchObject({ debuggable: true, hasDwarf: true, optimizedContainerdPackages: [] });
    expect(built.data.shim.manifest.verification.debuggable).toBe(true);
  });
});

describe('setup --with-shim on the CRI lab', () => {
  let first: SetupJson;
  let before: { sandbox: string; pid: number };

  it(
    'builds the shim from trixie’s source and installs it: the node’s file and a new pod’s shim are debuggable; a pod started before keeps its binary',
    async () => {
      // Backed up once: by this setup unless an earlier run of this file did (restore keeps the backup).
      const hadBackup = nodeStateIfAny()?.shim?.original !== undefined;
      const sandbox = await runPod('before-setup');
      before = { sandbox, pid: shimOfPod(sandbox).pid };
      const started = Date.now();
      const result = await ctrdbgJson<SetupJson>(['setup', TARGET, '--with-shim'], { env, timeout: SLOW });
      expect(result.exitCode, result.stderr).toBe(0);
      process.stderr.write(`setup --with-shim (containerd and shim builds): ${Date.now() - started} ms\n`);
      first = result.data;
      const shim = first.shim;
      expect(shim.path).toBe(shimFile());
      expect(shim.why).toMatch(/^CRI's runtime_path \(plugins\."io\.containerd\.grpc\.v1\.cri"/);
      expect(shim).toMatchObject({
        built: true,
        backedUp: !hadBackup,
        unchanged: false,
        previousSha256: stockShim,
      });
      expect(shim.version).toBe(`containerd-shim-runc-v2 ${lane.containerd.version} 1.7.24~ds1-6+deb13u1`);
      expect(shim.sha256).not.toBe(stockShim);
      expect(sha256(shimFile())).toBe(shim.sha256);
      expect(sha256(debugShimBuild())).toBe(shim.sha256);
      expect(first.changed.join('\n')).toContain('1 shim already running keeps the binary it started with');

      // The installed file, checked on the node the way `build --verify` checks containerd.
      const installed = await verify(shimFile());
      expect(installed).toMatchObject({
        debuggable: true,
        hasDwarf: true,
        goVersion: lane.go.version,
        mainPackage: 'ctrdbg.lab/containerd-shim-runc-v2',
        optimizedContainerdPackages: [],
      });
      expect(installed.buildSettings['-gcflags']).toBe('all=-N -l');
      expect(installed.buildSettings['-ldflags']).not.toMatch(/-[sw]\b/);
      const stock = await verify(lane.containerd.shim);
      expect(stock.debuggable).toBe(false);

      // The original, backed up once, byte for byte; the node state records the shim.
      const state = nodeState();
      expect(state.shim).toMatchObject({
        path: shimFile(),
        original: { sha256: stockShim },
        installed: { sha256: shim.sha256 },
        current: { outcome: 'installed', sha256: shim.sha256, debug: true },
      });
      expect(state.shim?.pending).toBeUndefined();
      expect(sha256(state.shim?.original?.backup ?? '')).toBe(stockShim);

      // A pod started before: its shim still runs trixie's binary, now replaced on disk.
      expect(readlinkSync(`/proc/${before.pid}/exe`)).toBe(`${shimFile()} (deleted)`);
      expect(sha256(`/proc/${before.pid}/exe`)).toBe(stockShim);
      expect(shim.running).toContainEqual({ pid: before.pid, replaced: true });

      // A pod started afterwards by the stand-in gets the debug shim.
      const after = shimOfPod(await runPod('after-setup'));
      expect(after.exe).toBe(shimFile());
      expect(sha256(`/proc/${after.pid}/exe`)).toBe(shim.sha256);
      expect(await verify(`/proc/${after.pid}/exe`)).toMatchObject({
        debuggable: true,
        optimizedContainerdPackages: [],
      });
    },
    SLOW,
  );

  it('doctor names the shim, says it is ctrdbg’s debug build and debuggable, and counts the running shims', async () => {
    const { exitCode, data } = await ctrdbgJson<{
      checks: { id: string; status: string; detail: string; facts?: Record<string, unknown> }[];
    }>(['doctor', TARGET], { env });
    expect(data.checks.filter((c) => c.status !== 'ok')).toEqual([]);
    expect(exitCode).toBe(0);
    const shim = data.checks.find((c) => c.id === 'shim');
    expect(shim?.facts).toMatchObject({
      path: shimFile(),
      sha256: first.shim.sha256,
      debugBuild: true,
      original: false,
      debuggable: true,
    });
    expect(shim?.facts?.running).toContainEqual({ pid: before.pid, replaced: true });
    expect(shim?.detail).toContain("ctrdbg's debug build (setup --with-shim");
    expect(shim?.detail).toMatch(/2 running shims: 1 on this file, 1 on a binary replaced at this path/);
  });

  it('a second setup --with-shim changes nothing', async () => {
    const result = await ctrdbgJson<SetupJson>(['setup', TARGET, '--with-shim'], { env, timeout: SLOW });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.data.changed).toEqual([]);
    expect(result.data.shim).toMatchObject({ unchanged: true, backedUp: false, sha256: first.shim.sha256 });
    expect(result.data.swap.unchanged).toBe(true);
    expect(result.data.node.pidAfter).toBe(first.node.pidAfter);
    const text = await ctrdbg(['setup', TARGET, '--with-shim', '--skip-build'], { env });
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).toContain('nothing changed');
    expect(text.stdout).toContain('and has the debug shim for new pods');
    expect(text.stderr).toContain(`› shim: ${shimFile()} (CRI's runtime_path`);
    expect(text.stdout).toContain(`  shim:   ${shimFile()} (CRI's runtime_path`);
    expect(text.stdout).toContain('new pods get this file, running shims keep theirs');
    expect(nodeState().shim?.current).toMatchObject({ outcome: 'unchanged', debug: true });
  });

  it('setup without --with-shim leaves the debug shim in place and says so', async () => {
    const result = await ctrdbg(['setup', TARGET, '--skip-build'], { env });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toContain(`the debug shim from an earlier --with-shim stays at ${shimFile()}`);
    expect(sha256(shimFile())).toBe(first.shim.sha256);
  });

  it('restore puts the original shim back byte-identical, and containerd; running shims keep theirs', async () => {
    const result = await ctrdbgJson<{
      containerdChanged: boolean;
      restored: boolean;
      shim: {
        path: string;
        restored: boolean;
        sha256: string;
        running: { pid: number; replaced: boolean }[];
      };
    }>(['restore', TARGET], { env });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.data).toMatchObject({ containerdChanged: true, restored: true });
    expect(result.data.shim).toMatchObject({ path: shimFile(), restored: true, sha256: stockShim });
    expect(Buffer.compare(readFileSync(shimFile()), readFileSync(lane.containerd.shim))).toBe(0);
    const now = await facts();
    expect(now).toMatchObject({ containerd: stockContainerd, shim: stockShim, serving: true });
    expect(nodeState().shim).toMatchObject({ current: { outcome: 'restored', debug: false } });
    expect(nodeState().shim?.installed).toBeUndefined();
    // Both pods' shims run on, each on the binary it started with.
    expect(sha256(`/proc/${before.pid}/exe`)).toBe(stockShim);
    expect(result.data.shim.running.every((r) => r.replaced)).toBe(true);
    const doctor = await ctrdbgJson<{
      checks: { id: string; detail: string; facts?: { original: boolean } }[];
    }>(['doctor', TARGET], { env });
    expect(doctor.data.checks.find((c) => c.id === 'shim')?.facts?.original).toBe(true);
    await ctrdbg(['lab', 'kubelet', '--name', NAME, 'remove-pods'], { env });
    // New pods get the original again.
    const again = shimOfPod(await runPod('after-restore'));
    expect(sha256(`/proc/${again.pid}/exe`)).toBe(stockShim);
    await ctrdbg(['lab', 'kubelet', '--name', NAME, 'remove-pods'], { env });
  });

  it('restore when only containerd was replaced leaves the shim as it is', async () => {
    const setup = await ctrdbg(['setup', TARGET, '--skip-build'], { env });
    expect(setup.exitCode, setup.stderr).toBe(0);
    expect(sha256(shimFile())).toBe(stockShim);
    const result = await ctrdbgJson<{ restored: boolean; shim?: { restored: boolean } }>(
      ['restore', TARGET],
      {
        env,
      },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.data.restored).toBe(true);
    expect(result.data.shim?.restored ?? false).toBe(false);
    expect(await facts()).toMatchObject({ containerd: stockContainerd, shim: stockShim });
  });

  it('restore when only the shim was replaced (setup killed before containerd’s swap) puts it back and leaves containerd', async () => {
    const pid = (await facts()).pid;
    const r = await setupInterrupted(/ {2}upload [1-9]0%/, 'SIGKILL', ['--with-shim', '--skip-build']);
    expect(r.exitCode).not.toBe(0);
    expect(sha256(shimFile())).toBe(first.shim.sha256);
    expect(nodeState().shim?.current?.outcome).toBe('installed');
    expect(nodeState().pending).toBeDefined(); // containerd's swap, cut at its upload
    const result = await ctrdbgJson<{ restored: boolean; pid: number; shim: { restored: boolean } }>(
      ['restore', TARGET],
      { env },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.data.restored).toBe(false); // containerd's file was never swapped
    expect(result.data.shim.restored).toBe(true);
    const now = await facts();
    expect(now).toMatchObject({ containerd: stockContainerd, shim: stockShim, serving: true, pid });
    expect(nodeState().pending).toBeUndefined();
  });
});

describe('interrupted and failing setups --with-shim leave the original shim', () => {
  it('Ctrl-C at each of the shim’s steps (upload, swap, verify): the original shim, containerd untouched', async () => {
    const steps: [string, RegExp][] = [
      ['upload', /shim upload [1-9]0%/],
      ['swap', /› swapping the shim into place/],
      ['verify', /› verifying the new shim/],
    ];
    for (const [step, when] of steps) {
      const pid = (await facts()).pid;
      const r = await setupInterrupted(when, 'SIGINT', ['--with-shim', '--skip-build']);
      expect(r.exitCode, `${step}: ${r.stderr}`).toBe(130);
      expect(r.stderr).toMatch(
        /setup was interrupted at the shim's (upload|swap|verify) step: the shim that was there is back in place \(sha256 checked\); containerd was not touched/,
      );
      const now = await facts();
      expect(now, step).toMatchObject({ pid, containerd: stockContainerd, shim: stockShim, serving: true });
      const state = nodeState();
      expect(state.shim?.pending).toBeUndefined();
      expect(state.shim?.current).toMatchObject({ outcome: 'rolled-back', sha256: stockShim, debug: false });
      expect(state.pending).toBeUndefined();
      expect(existsSync(join(lab.dir, 'node/usr/bin/.containerd-shim-runc-v2.ctrdbg-new'))).toBe(false);
    }
  });

  it('Ctrl-C during containerd’s swap undoes the shim’s too; past containerd’s restart both stay new', async () => {
    const debug = sha256(debugContainerdBuild());
    for (const when of [/› swapping it into place \(/, /› restarting containerd \(/]) {
      const r = await setupInterrupted(when, 'SIGINT', ['--with-shim', '--skip-build']);
      expect(r.exitCode, r.stderr).toBe(130);
      const now = await facts();
      expect(now.serving).toBe(true);
      // One transaction up to containerd's restart: both from before, or both new.
      if (now.containerd === stockContainerd) {
        expect(now.shim).toBe(stockShim);
        expect(r.stderr).toContain('The shim that was there before is back too.');
      } else {
        expect(now.containerd).toBe(debug);
        expect(now.shim).toBe(sha256(debugShimBuild()));
        expect(r.stderr).toContain('with the debug shim for new pods');
      }
      if (/restarting/.test(when.source)) expect(now.containerd).toBe(debug);
      expect(nodeState().shim?.pending).toBeUndefined();
      await restoreToStock();
    }
  });

  it('a shim that does not run on the node is rolled back at its verify step (exit 11)', async () => {
    const fake = await goBuild(join(repoRoot, 'test/fixtures/fake-shim'), join(work, 'fake-shim'));
    const pid = (await facts()).pid;
    const r = await ctrdbg(
      ['setup', TARGET, '--skip-build', '--shim-binary', fake, '--allow-version-mismatch'],
      { env },
    );
    expect(r.exitCode, r.stderr).toBe(11);
    expect(r.stderr).toMatch(/setup failed at the shim's verify step \(.*-v` does not run on the node/);
    expect(r.stderr).toContain('fake shim: refusing to run (test fixture)');
    expect(await facts()).toMatchObject({ pid, containerd: stockContainerd, shim: stockShim });
    expect(nodeState().shim?.current).toMatchObject({ outcome: 'rolled-back', failedAt: 'verify' });
  });

  it('a containerd that does not start is rolled back, and the shim with it (exit 11)', async () => {
    const fake = await goBuild(
      join(repoRoot, 'test/fixtures/fake-containerd'),
      join(work, 'fake-containerd'),
      ['-ldflags', `-X main.version=${lane.containerd.version}`],
    );
    const r = await ctrdbg(['setup', TARGET, '--skip-build', '--with-shim', '--binary', fake], { env });
    expect(r.exitCode, r.stderr).toBe(11);
    expect(r.stderr).toContain('The binary that was running before was put back and runs again');
    expect(r.stderr).toContain('The shim that was there before is back too.');
    expect(await facts()).toMatchObject({ containerd: stockContainerd, shim: stockShim, serving: true });
    expect(nodeState().shim?.current).toMatchObject({ outcome: 'rolled-back', sha256: stockShim });
  });

  it('a setup killed during the shim’s upload is repaired by the next setup', async () => {
    const r = await setupInterrupted(/shim upload [1-9]0%/, 'SIGKILL', ['--with-shim', '--skip-build']);
    expect(r.exitCode).not.toBe(0);
    expect(nodeState().shim?.pending).toBeDefined();
    expect(sha256(shimFile())).toBe(stockShim);
    const again = await ctrdbgJson<SetupJson>(['setup', TARGET, '--with-shim', '--skip-build'], { env });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/an earlier setup stopped at its shim's (upload|swap|verify) step/);
    expect(again.data.changed.join('\n')).toContain('repaired an interrupted shim swap');
    expect(sha256(shimFile())).toBe(again.data.shim.sha256);
    expect(nodeState().shim?.pending).toBeUndefined();
    await restoreToStock();
  });

  it('the default lab runs the machine’s own shim: refused before any build, the node untouched', async () => {
    const before = await labStatus('default', env);
    const r = await ctrdbg(['setup', 'lab', '--with-shim'], { env });
    expect(r.exitCode).toBe(11);
    expect(r.stderr).toMatch(
      /lab's containerd runs the machine's own \/usr\/bin\/containerd-shim-runc-v2 .* ctrdbg replaces no file outside a lab's node/,
    );
    expect(r.stderr).toContain('ctrdbg setup lab:cri --with-shim');
    expect(r.stderr).not.toContain('Building');
    const after = await labStatus('default', env);
    expect(after.containerd.pid).toBe(before.containerd.pid);
  });
});
