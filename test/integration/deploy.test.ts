/**
 * setup / restore / doctor against the lab (real sshd, sudo, containerd), including the ways a setup can be
 * cut short or refused. After every refusal the node must be exactly as it was: same containerd PID, same
 * binary on disk.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ctrdbg, ctrdbgJson, mainJs, repoRoot } from '../helpers/cli.js';
import { type LabStatusJson, labEnv, labStatus } from '../helpers/lab.js';

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const STOCK = '/usr/bin/containerd';

interface SetupJson {
  target: string;
  node: { pidBefore: number; pidAfter: number };
  binary: { local: string; sha256: string };
  swap: { unchanged: boolean; restarted: boolean; backedUp: boolean };
  source: { remoteRoot: string; files: number; sent: number; deleted: number }[];
  dlv: { path: string; uploaded: boolean };
}

let env: Record<string, string>;
let lab: LabStatusJson;
let work: string;

async function fakeContainerd(
  name: string,
  options: { version?: string; arch?: string } = {},
): Promise<string> {
  const out = join(work, name);
  await execa(
    'go',
    [
      'build',
      '-gcflags=all=-N -l',
      '-ldflags',
      `-X main.version=${options.version ?? '1.6.20~ds1'}`,
      '-o',
      out,
      '.',
    ],
    {
      cwd: join(repoRoot, 'test/fixtures/fake-containerd'),
      env: {
        GOFLAGS: '',
        GO111MODULE: 'on',
        CGO_ENABLED: '0',
        ...(options.arch ? { GOARCH: options.arch } : {}),
      },
    },
  );
  return out;
}

/** The node's observable state; a refused command must not change it. */
async function nodeFacts() {
  const status = await labStatus('default', env);
  return {
    pid: status.containerd.pid,
    sha: sha256(status.containerd.binary),
    serving: status.containerd.serving,
  };
}

beforeAll(async () => {
  env = labEnv();
  work = await mkdtemp(join(tmpdir(), 'ctrdbg-deploy-'));
  lab = await labStatus('default', env);
  // Start from the node's original binary whatever an earlier suite left.
  if (!lab.containerd.isStock) {
    const restored = await ctrdbg(['restore', 'lab'], { env });
    expect(restored.exitCode, restored.stderr).toBe(0);
    lab = await labStatus('default', env);
  }
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('setup, doctor, restore on the lab', () => {
  let first: SetupJson;

  it('setup installs a debuggable build and restarts containerd on it', async () => {
    const result = await ctrdbgJson<SetupJson>(['setup', 'lab'], { env });
    expect(result.exitCode, result.stderr).toBe(0);
    first = result.data;
    const pid = first.node.pidAfter;
    expect(pid).not.toBe(lab.containerd.pid);
    expect(readlinkSync(`/proc/${pid}/exe`)).toBe(lab.containerd.binary);
    expect(sha256(`/proc/${pid}/exe`)).toBe(first.binary.sha256);
    const verify = await ctrdbgJson<{ debuggable: boolean }>(['build', '--verify', `/proc/${pid}/exe`], {
      env,
    });
    expect(verify.exitCode).toBe(0);
    expect(verify.data.debuggable).toBe(true);
    // The source roots the DWARF names exist at the same absolute paths on the node.
    expect(first.source.map((s) => s.remoteRoot)).toEqual([join(lab.tree, 'src'), '/usr/share/gocode/src']);
    expect(first.dlv.path).toMatch(/opt\/ctrdbg\/bin\/dlv$/);
  });

  it('doctor shows every check passing', async () => {
    const { exitCode, data } = await ctrdbgJson<{
      ok: boolean;
      checks: { id: string; status: string; detail: string }[];
    }>(['doctor', 'lab'], { env });
    expect(data.checks.filter((c) => c.status !== 'ok')).toEqual([]);
    expect(data.ok).toBe(true);
    expect(exitCode).toBe(0);
    expect(data.checks.map((c) => c.id)).toEqual(
      expect.arrayContaining([
        'reachable',
        'sudo',
        'arch',
        'service',
        'socket',
        'debuggable',
        'version',
        'dlv',
        'ptrace',
        'disk',
        'shim',
        'debug',
      ]),
    );
  });

  it('setup again sends nothing and keeps the same containerd', async () => {
    const result = await ctrdbgJson<SetupJson>(['setup', 'lab', '--skip-build'], { env });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.data.swap.unchanged).toBe(true);
    expect(result.data.swap.restarted).toBe(false);
    expect(result.data.node.pidAfter).toBe(first.node.pidAfter);
    expect(result.data.source.every((s) => s.sent === 0 && s.deleted === 0)).toBe(true);
    expect(result.data.dlv.uploaded).toBe(false);
  });

  it('the target is remembered: commands without one use it', async () => {
    const { data } = await ctrdbgJson<{ target: string }>(['doctor'], { env });
    expect(data.target).toBe('lab');
  });

  it('restore brings back the stock binary, byte-identical, and it serves', async () => {
    const result = await ctrdbgJson<{ pid: number; restored: boolean }>(['restore', 'lab'], { env });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.data.restored).toBe(true);
    expect(Buffer.compare(readFileSync(lab.containerd.binary), readFileSync(STOCK))).toBe(0);
    expect(sha256(`/proc/${result.data.pid}/exe`)).toBe(sha256(STOCK));
    const facts = await nodeFacts();
    expect(facts.serving).toBe(true);
    expect(facts.pid).toBe(result.data.pid);
  });
});

describe('interrupted and failing setups leave a working containerd', () => {
  const statePath = () => join(lab.dir, 'node/opt/ctrdbg/state.json');
  const nodeState = () =>
    JSON.parse(readFileSync(statePath(), 'utf8')) as {
      pending?: unknown;
      installed?: { sha256: string };
      current?: { outcome: string; interruptedAt?: string; failedAt?: string; runningSha256: string };
    };

  /** One verified state: what runs serves, is what the node state says, and nothing is pending. */
  async function oneVerifiedState(allowed: string[]): Promise<string> {
    const facts = await nodeFacts();
    expect(facts.serving).toBe(true);
    const running = sha256(`/proc/${facts.pid}/exe`);
    expect(allowed).toContain(running);
    expect(facts.sha).toBe(running); // the file on disk is the running binary
    const state = nodeState();
    expect(state.pending).toBeUndefined();
    expect(state.current?.runningSha256).toBe(running);
    if (running === sha256(STOCK)) expect(state.installed).toBeUndefined();
    else expect(state.installed?.sha256).toBe(running);
    return running;
  }

  /** Starts `setup` and delivers `signal` when `when` shows up on its stderr. */
  async function setupInterrupted(when: RegExp, signal: NodeJS.Signals, args: string[] = []) {
    const child = execa(process.execPath, [mainJs, 'setup', 'lab', '--skip-build', ...args], {
      env: { ...env, NO_COLOR: '1' },
      reject: false,
    });
    let err = '';
    let sent = false;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`never saw ${when}:\n${err}`)), 120_000);
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

  it('Ctrl-C at each step (upload, swap, restart, verify): one verified state, then setup and restore succeed', async () => {
    const stock = sha256(STOCK);
    const steps: [string, RegExp][] = [
      ['upload', /upload [1-9]0%/],
      ['swap', /› swapping it into place/],
      ['restart', /› restarting containerd \(/],
      ['verify', /› verifying the new containerd/],
    ];
    // The build `setup --skip-build` installs (the first suite built it).
    const debug = sha256(join(env.CTRDBG_CACHE_DIR!, 'builds', 'amd64', 'containerd'));
    for (const [step, when] of steps) {
      expect((await nodeFacts()).sha, `before ${step}`).toBe(stock);
      const r = await setupInterrupted(when, 'SIGINT');
      expect(r.exitCode, `${step}: ${r.stderr}`).toBe(130);
      expect(r.stderr).toMatch(/interrupted: ending setup at the next safe point/);
      const running = await oneVerifiedState([stock, debug]);
      const last = nodeState().current;
      if (running === stock) {
        // Before the restart: the binary that ran is back, and was never restarted.
        expect(last?.outcome, step).toBe('rolled-back');
        expect(r.stderr).toMatch(
          /setup was interrupted at the (upload|swap) step: the binary that was running before is back in place/,
        );
      } else {
        expect(last?.outcome, step).toBe('installed');
        expect(r.stderr).toContain('the restart had begun, so ctrdbg finished it');
      }
      if (step === 'upload') expect(running).toBe(stock);
      if (step === 'restart' || step === 'verify') expect(running).not.toBe(stock);
      const again = await ctrdbgJson<SetupJson>(['setup', 'lab', '--skip-build'], { env });
      expect(again.exitCode, again.stderr).toBe(0);
      expect(await oneVerifiedState([debug])).toBe(debug);
      const restore = await ctrdbg(['restore', 'lab'], { env });
      expect(restore.exitCode, restore.stderr).toBe(0);
      expect(await oneVerifiedState([stock])).toBe(stock);
    }
  });

  it('a setup killed (SIGKILL) during the restart is repaired by the next setup', async () => {
    const stock = sha256(STOCK);
    const r = await setupInterrupted(/› restarting containerd \(/, 'SIGKILL');
    expect(r.exitCode).not.toBe(0);
    // The detached restart goes on without ctrdbg: the node comes up on one binary or the other.
    expect(nodeState().pending).toBeDefined();
    const again = await ctrdbgJson<SetupJson & { changed: string[] }>(['setup', 'lab', '--skip-build'], {
      env,
    });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/an earlier setup stopped at its (restart|verify) step/);
    expect(again.data.changed.join('\n')).toContain('repaired an interrupted setup');
    await oneVerifiedState([again.data.binary.sha256]);
    const doctor = await ctrdbgJson<{ ok: boolean; checks: { id: string; status: string; hint?: string }[] }>(
      ['doctor', 'lab'],
      { env },
    );
    expect(doctor.data.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(JSON.stringify(doctor.data)).not.toContain('vundefined');
    expect((await ctrdbg(['restore', 'lab'], { env })).exitCode).toBe(0);
    expect(await oneVerifiedState([stock])).toBe(stock);
  });

  it('a client killed during the upload leaves the original running, and restore still works', async () => {
    const before = await nodeFacts();
    await setupInterrupted(/upload [1-9]0%/, 'SIGKILL');
    const after = await nodeFacts();
    expect(after.pid).toBe(before.pid);
    expect(after.sha).toBe(before.sha);
    expect(after.serving).toBe(true);
    const restore = await ctrdbg(['restore', 'lab'], { env });
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect((await nodeFacts()).sha).toBe(sha256(STOCK));
  });

  it('a build that fails to start is rolled back to the debug build that was running, quoting only its own start', async () => {
    const installed = await ctrdbgJson<SetupJson>(['setup', 'lab', '--skip-build'], { env });
    expect(installed.exitCode, installed.stderr).toBe(0);
    const debug = installed.data.binary.sha256;
    const fake = await fakeContainerd('containerd-fails');
    const result = await ctrdbg(['setup', 'lab', '--binary', fake], { env });
    expect(result.exitCode).toBe(11);
    expect(result.stderr).toContain('The binary that was running before was put back and runs again');
    expect(result.stderr).toContain('refusing to start (test fixture)');
    // Earlier starts of the real containerd are not quoted as if they were this one's.
    expect(result.stderr, result.stderr).not.toMatch(/containerd successfully booted|serving\.\.\./);
    const after = await nodeFacts();
    expect(after.serving).toBe(true);
    expect(after.sha).toBe(debug);
    expect(sha256(`/proc/${after.pid}/exe`)).toBe(debug);
    expect(nodeState().current).toMatchObject({ outcome: 'rolled-back', runningSha256: debug });
    // The lab service reports a daemon that dies at once from its restart; systemd would let verify find it.
    expect(['restart', 'verify']).toContain(nodeState().current?.failedAt);
    expect(nodeState().installed?.sha256).toBe(debug);
    const restore = await ctrdbg(['restore', 'lab'], { env });
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect((await nodeFacts()).sha).toBe(sha256(STOCK));
  });
});

describe('bad input: a clear error, a distinct exit code, and the node untouched', () => {
  let before: Awaited<ReturnType<typeof nodeFacts>>;
  beforeAll(async () => {
    before = await nodeFacts();
  });
  const untouched = async () => expect(await nodeFacts()).toEqual(before);

  it('a stripped binary', async () => {
    const r = await ctrdbg(['setup', 'lab', '--binary', STOCK], { env });
    expect(r.exitCode).toBe(6);
    expect(r.stderr).toMatch(/stripped/);
    await untouched();
  });

  it('a binary for another architecture', async () => {
    const fake = await fakeContainerd('containerd-arm64', { arch: 'arm64' });
    const r = await ctrdbg(['setup', 'lab', '--binary', fake], { env });
    expect(r.exitCode).toBe(15);
    expect(r.stderr).toContain('it is for linux/arm64, but the node is linux/amd64');
    await untouched();
  });

  it("a build whose version differs from the node's", async () => {
    const fake = await fakeContainerd('containerd-1.7', { version: 'v1.7.23' });
    const r = await ctrdbg(['setup', 'lab', '--binary', fake], { env });
    expect(r.exitCode).toBe(13);
    expect(r.stderr).toContain('The node runs containerd 1.6.20 but the debug build is 1.7.23');
    expect(r.stderr).toContain('--allow-version-mismatch');
    await untouched();
  });

  it('an unreachable host', async () => {
    const r = await ctrdbg(
      [
        'doctor',
        'ssh://ctrdbglab@127.0.0.1:1',
        '--key',
        lab.ssh.keyPath,
        '--known-hosts',
        lab.ssh.knownHostsPath,
      ],
      { env },
    );
    expect(r.exitCode).toBe(7);
    const d = await ctrdbgJson<{ checks: { id: string; status: string }[] }>(
      ['doctor', 'ssh://ctrdbglab@127.0.0.1:1', '--key', lab.ssh.keyPath],
      { env },
    );
    expect(d.data.checks[0]).toMatchObject({ id: 'reachable', status: 'fail' });
  });

  it('a key the node refuses', async () => {
    const key = join(work, 'other_key');
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    const r = await ctrdbg(
      [
        'setup',
        `ssh://${lab.ssh.user}@127.0.0.1:${lab.ssh.port}`,
        '--key',
        key,
        '--known-hosts',
        lab.ssh.knownHostsPath,
      ],
      { env },
    );
    expect(r.exitCode).toBe(8);
    await untouched();
  });

  it('a host key that does not match the pinned one', async () => {
    const kh = join(work, 'known_hosts_wrong');
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'fake_host')]);
    const pub = (await readFile(join(work, 'fake_host.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
    await writeFile(kh, `[127.0.0.1]:${lab.ssh.port} ${pub}\n`);
    const r = await ctrdbg(
      [
        'setup',
        `ssh://${lab.ssh.user}@127.0.0.1:${lab.ssh.port}`,
        '--key',
        lab.ssh.keyPath,
        '--known-hosts',
        kh,
      ],
      { env },
    );
    expect(r.exitCode).toBe(9);
    await untouched();
  });

  it('an unknown target', async () => {
    const r = await ctrdbg(['setup', 'kind://x'], { env });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain("'kind://x' is not a target ctrdbg knows");
  });

  it('containerd not running', async () => {
    const service = join(lab.dir, 'node/usr/local/sbin/lab-service');
    await execa(service, ['stop']);
    try {
      const r = await ctrdbg(['setup', 'lab', '--skip-build'], { env });
      expect(r.exitCode).toBe(11);
      expect(r.stderr).toContain('containerd is not running on lab');
      expect(sha256(lab.containerd.binary)).toBe(before.sha);
    } finally {
      await execa(service, ['start']);
    }
  });
});

describe('CTRDBG_DEBUG=1 logs every command ctrdbg runs, here and on the node', () => {
  it('for the build, the manifest, the source sync (both listings), the upload and the trigger', async () => {
    // A touched file in the lab's tree makes the build rebuild. (On the lab the node's tree is this tree, so the
    // sync lists both sides and sends nothing; the packer's log line is checked in sourceSync.test.ts.)
    const main = join(lab.tree, 'src', 'ctrdbg.lab', 'containerd', 'main.go');
    const now = new Date();
    await import('node:fs/promises').then((fs) => fs.utimes(main, now, now));
    const setup = await ctrdbg(['setup', 'lab'], { env: { ...env, CTRDBG_DEBUG: '1' } });
    expect(setup.exitCode, setup.stderr).toBe(0);
    const log = setup.stderr;
    const local = (re: RegExp) => expect(log, String(re)).toMatch(new RegExp(`debug: \\$ ${re.source}`, 'm'));
    const remote = (re: RegExp) =>
      expect(log, String(re)).toMatch(new RegExp(`debug: lab: \\$ ${re.source}`, 'm'));
    local(/\S*go build .*-gcflags=.?all=-N -l/); // the build
    local(/git -C \S+ rev-parse --verify HEAD/); // the manifest: the tree's git state…
    local(/\S+\/containerd --version/); // …and the built binary's version line
    local(/sh -c 'cd \S+ && find \. /); // the sync: the local listing…
    remote(/.*find \. /); // …and the node's
    remote(/sudo -n -- .*sha256sum/); // the upload's check
    const attach = await ctrdbg(
      [
        'attach',
        'lab',
        '--set',
        'lab-create',
        '--max-hits',
        '1',
        '--trigger',
        'ctr -a $CTRDBG_SOCKET namespaces create debug-log-ns-1; true',
      ],
      { env: { ...env, CTRDBG_DEBUG: '1' } },
    );
    expect(attach.exitCode, attach.stderr).toBe(0);
    expect(attach.stderr).toContain(
      "debug: $ sh -c 'ctr -a $CTRDBG_SOCKET namespaces create debug-log-ns-1; true'",
    );
    expect(attach.stderr).toMatch(
      /debug: lab: \$ sudo -n -- .*ctrdbg-agent dlv --pid \d+ --listen 127\.0\.0\.1:0/,
    );
    await ctrdbg(['restore', 'lab'], { env });
  });
});
