/**
 * The systemd path, for real: a Debian VM under QEMU (`lab up --vm`: systemd, sshd on :22, user docker with
 * passwordless sudo, Debian's containerd as containerd.service). Through a stand-in `minikube` describing it
 * as a kvm2 profile (so minikube's real resolution code runs) and through `lab:NAME`: setup swaps the binary
 * and writes the log level into a systemd drop-in, doctor checks, attach records with a trigger run on the
 * node while dlv listens on the VM's loopback only (same-user check on), restore brings Debian's binary back
 * byte-identical, and the VM reboots clean. Then `lab down` leaves no QEMU.
 *
 * The image is cached under the test lab root, so only the first run on a machine builds it.
 */
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ctrdbg, ctrdbgJson, repoRoot } from '../helpers/cli.js';
import { type LabStatusJson, sshExec } from '../helpers/lab.js';

const VM = 'vmtest';
/** A VM driver's node answers SSH on `minikube ip`:22; this address forwards to QEMU's loopback forward. */
const VM_IP = '127.0.0.23';
const PROFILE = 'vmnode';
const SOCK = '/run/containerd/containerd.sock';
const DROP_IN = '/etc/systemd/system/containerd.service.d/50-ctrdbg.conf';

let env: Record<string, string>;
let work: string;
let vm: LabStatusJson & { vm: { qemuPid: number } };
let stockSha: string;
let forwarder: Server | undefined;
let debugSha: string;
const suiteStart = Date.now();
const timings: Record<string, number> = {};

async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const start = Date.now();
  try {
    return await fn();
  } finally {
    timings[what] = Math.round((Date.now() - start) / 100) / 10;
  }
}

async function status(): Promise<typeof vm> {
  const { data } = await ctrdbgJson<typeof vm>(['lab', 'status', '--name', VM], { env });
  return data;
}

/** Runs a command in the VM as docker (sshExec checks the pinned host key). */
async function onVm(command: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return sshExec(vm, command);
}

async function vmSha(path: string): Promise<string> {
  return (await onVm(`sudo sha256sum ${path} | cut -d' ' -f1`)).stdout.trim();
}

async function mainPid(): Promise<number> {
  return Number((await onVm('systemctl show -p MainPID --value containerd')).stdout.trim());
}

async function qemuProcesses(): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.startsWith('qemu-system') && cmdline.includes(`/${VM}/vm/`)) pids.push(Number(entry));
  }
  return pids;
}

/** The node's systemd view of containerd after a restore: Debian's binary, no drop-in, no --log-level. */
async function expectStock(): Promise<void> {
  // One login for all the facts: every SSH handshake costs a second or two on a TCG guest.
  const facts = await onVm(
    [
      'sudo sha256sum /usr/bin/containerd | cut -d" " -f1',
      'sudo sha256sum /proc/$(systemctl show -p MainPID --value containerd)/exe | cut -d" " -f1',
      `test -e ${DROP_IN} && echo drop-in || echo no-drop-in`,
      'systemctl show -p ExecStart containerd | grep -c -- --log-level || true',
      'systemctl is-active containerd',
    ].join('; '),
  );
  expect(facts.stdout.trim().split('\n')).toEqual([stockSha, stockSha, 'no-drop-in', '0', 'active']);
}

interface SetupJson {
  target: string;
  node: { pidBefore: number; pidAfter: number };
  binary: { sha256: string };
  swap: { backedUp: boolean; restarted: boolean; binary: string };
  source: { remoteRoot: string; files: number; sent: number }[];
  dlv: { path: string };
}

interface DoctorJson {
  ok: boolean;
  checks: { id: string; status: string; detail: string; hint?: string }[];
  notApplicable: { id: string }[];
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ctrdbg-vm-'));
  env = {
    CTRDBG_LAB_ROOT: inject('labRoot'),
    // Its own build output: the VM's tree is not the process lab's, and the suites must not swap binaries.
    CTRDBG_CACHE_DIR: join(inject('cacheDir'), 'vm'),
    CTRDBG_CONFIG_DIR: join(work, 'config'),
  };
}, 60_000);

afterAll(async () => {
  await new Promise<void>((resolve) => (forwarder ? forwarder.close(() => resolve()) : resolve()));
  // Whatever failed above, no QEMU is left behind for the next suite.
  if ((await qemuProcesses()).length) await ctrdbg(['lab', 'down', '--name', VM], { env });
  await rm(work, { recursive: true, force: true });
  timings.suite = Math.round((Date.now() - suiteStart) / 100) / 10;
  process.stderr.write(`vm suite timings (s): ${JSON.stringify(timings)}\n`);
}, 180_000);

describe('VM lab: the systemd path on a real Debian node', () => {
  it('lab up --vm builds the image once, boots it, and forwards SSH on loopback only', async () => {
    const { exitCode, data, stderr } = await timed('up', () =>
      ctrdbgJson<{ built: boolean; seconds: { build?: number; boot?: number }; status: typeof vm }>(
        ['lab', 'up', '--vm', '--name', VM, '--reset'],
        { env, timeout: 1_500_000 },
      ),
    );
    expect(exitCode, stderr).toBe(0);
    if (data.seconds.build !== undefined) timings.imageBuild = data.seconds.build;
    timings.boot = data.seconds.boot ?? 0;
    vm = data.status;
    expect(vm.up).toBe(true);
    expect(vm.target).toBe(`lab:${VM}`);
    expect(vm.ssh.user).toBe('docker');
    expect(vm.containerd).toMatchObject({ running: true, serving: true, isStock: true, traced: false });
    stockSha = vm.containerd.sha256 as string;
    expect(await vmSha('/usr/bin/containerd')).toBe(stockSha);
    // QEMU's one forward: 127.0.0.1 only, and the guest's network is restricted.
    const cmdline = (await readFile(`/proc/${vm.vm.qemuPid}/cmdline`, 'utf8')).split('\0');
    const netdev = cmdline[cmdline.indexOf('-netdev') + 1] ?? '';
    expect(netdev).toContain('restrict=on');
    expect(netdev).toContain(`hostfwd=tcp:127.0.0.1:${vm.ssh.port}-:22`);
    // Key-only sshd, the host key pinned from the build.
    expect(
      (await onVm('sudo sshd -T | grep -Ei "^(passwordauthentication|kbdinteractiveauthentication)"')).stdout,
    ).toMatch(
      /passwordauthentication no[\s\S]*kbdinteractiveauthentication no|kbdinteractiveauthentication no[\s\S]*passwordauthentication no/,
    );
    const status2 = await ctrdbg(['lab', 'status', '--name', VM], { env });
    expect(status2.exitCode).toBe(0);
    expect(status2.stdout).toContain('systemd containerd.service');
  }, 1_600_000);

  it('setup minikube (stand-in kvm2 profile): binary swapped, drop-in log level, restart, source, dlv', async () => {
    // What minikube keeps per machine: the key it made and libmachine's config.json naming the SSH user.
    const machineDir = join(work, '.minikube', 'machines', PROFILE);
    await mkdir(machineDir, { recursive: true });
    await copyFile(vm.ssh.keyPath, join(machineDir, 'id_rsa'));
    await writeFile(
      join(machineDir, 'config.json'),
      JSON.stringify({ ConfigVersion: 3, Driver: { MachineName: PROFILE, SSHUser: 'docker', SSHPort: 22 } }),
    );
    // `minikube ssh -- cat /etc/ssh/ssh_host_*` answers with the VM's real key, read inside the VM.
    const hostKeyPub = (await onVm('cat /etc/ssh/ssh_host_ed25519_key.pub')).stdout.trim();
    expect(hostKeyPub).toMatch(/^ssh-ed25519 /);
    const node = {
      Name: '',
      IP: VM_IP,
      Port: 8443,
      ContainerRuntime: 'containerd',
      ControlPlane: true,
      Worker: true,
    };
    const config = {
      profileList: {
        invalid: [],
        valid: [
          {
            Name: PROFILE,
            Status: 'Running',
            Config: {
              Name: PROFILE,
              Driver: 'kvm2',
              KubernetesConfig: {
                KubernetesVersion: 'v1.30.0',
                ClusterName: PROFILE,
                ContainerRuntime: 'containerd',
              },
              Nodes: [node],
            },
          },
        ],
      },
      machines: { [PROFILE]: { ip: VM_IP, keyPath: join(machineDir, 'id_rsa'), hostKeyPub } },
    };
    await writeFile(join(work, 'standin.json'), JSON.stringify(config));
    forwarder = createServer((client) => {
      const upstream = connect(vm.ssh.port, '127.0.0.1');
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => forwarder?.once('error', reject).listen(22, VM_IP, resolve));
    env = {
      ...env,
      CTRDBG_STANDIN_CONFIG: join(work, 'standin.json'),
      PATH: `${join(repoRoot, 'test/fixtures/standin')}:${process.env.PATH}`,
    };

    const before = await mainPid();
    const { exitCode, data, stderr } = await timed('setupMinikube', () =>
      ctrdbgJson<SetupJson>(['setup', `minikube:${PROFILE}`, '--src', vm.tree, '--log-level', 'debug'], {
        env,
      }),
    );
    expect(exitCode, stderr).toBe(0);
    debugSha = data.binary.sha256;
    expect(data.target).toBe(`minikube:${PROFILE}`);
    expect(data.swap).toMatchObject({ backedUp: true, restarted: true, binary: '/usr/bin/containerd' });
    const log = await readFile(join(work, 'standin.json.log'), 'utf8');
    expect(log).toContain(`minikube ip -p ${PROFILE} -n ${PROFILE}`);
    expect(log).toContain(`minikube ssh-key -p ${PROFILE} -n ${PROFILE}`);

    // The new main PID runs the uploaded binary; the file on disk is it too.
    const pid = await mainPid();
    expect(pid).not.toBe(before);
    expect(pid).toBe(data.node.pidAfter);
    expect(await vmSha(`/proc/${pid}/exe`)).toBe(debugSha);
    expect(await vmSha('/usr/bin/containerd')).toBe(debugSha);
    // The log level went through a systemd drop-in, and systemd runs containerd with it.
    expect((await onVm(`cat ${DROP_IN}`)).stdout).toContain('--log-level debug');
    expect((await onVm('systemctl show -p ExecStart containerd')).stdout).toContain('--log-level debug');
    expect((await onVm(`tr '\\0' ' ' < /proc/${pid}/cmdline`)).stdout).toContain('--log-level debug');
    // Source at the same absolute paths; Debian's containerd source was in the image already.
    expect(data.source.map((s) => s.remoteRoot)).toEqual([join(vm.tree, 'src'), '/usr/share/gocode/src']);
    const gocode = data.source[1];
    timings.gocodeFilesSent = gocode?.sent ?? -1;
    expect(gocode?.files).toBeGreaterThan(1000);
    expect(gocode?.sent ?? 0).toBeLessThan((gocode?.files ?? 0) / 10);
    expect((await onVm(`test -d ${join(vm.tree, 'src')}`)).code).toBe(0);
    expect(data.dlv.path).toBe('/var/lib/minikube/ctrdbg/bin/dlv');
    expect((await onVm(`sudo ${data.dlv.path} version`)).stdout).toContain('Delve Debugger');
  }, 900_000);

  it('doctor minikube: every check passes but CRI (Debian builds containerd without it), with its hint', async () => {
    const { data, stderr } = await timed('doctorMinikube', () =>
      ctrdbgJson<DoctorJson>(['doctor', `minikube:${PROFILE}`], { env }),
    );
    const notOk = data.checks.filter((c) => c.status !== 'ok');
    expect(
      notOk.map((c) => c.id),
      stderr,
    ).toEqual(['cri']);
    expect(notOk[0]?.hint).toContain('io.containerd.grpc.v1.cri');
    expect(data.checks.find((c) => c.id === 'runtime')?.status).toBe('ok');
    expect(data.ok).toBe(false);
  }, 600_000);

  it('restore minikube brings back Debian binary byte-identical and removes the drop-in', async () => {
    const { exitCode, stderr } = await timed('restoreMinikube', () =>
      ctrdbgJson(['restore', `minikube:${PROFILE}`], { env }),
    );
    expect(exitCode, stderr).toBe(0);
    await expectStock();
  }, 300_000);

  it('setup lab:NAME on the VM and doctor: all green, CRI not applicable', async () => {
    const setup = await timed('setupLab', () =>
      ctrdbgJson<SetupJson>(['setup', `lab:${VM}`, '--skip-build', '--log-level', 'debug'], { env }),
    );
    expect(setup.exitCode, setup.stderr).toBe(0);
    expect(setup.data.binary.sha256).toBe(debugSha);
    expect(setup.data.dlv.path).toBe('/var/lib/ctrdbg/bin/dlv');
    expect(await vmSha(`/proc/${await mainPid()}/exe`)).toBe(debugSha);
    expect((await onVm('systemctl show -p ExecStart containerd')).stdout).toContain('--log-level debug');

    const { data, exitCode, stderr } = await timed('doctorLab', () =>
      ctrdbgJson<DoctorJson>(['doctor', `lab:${VM}`], { env }),
    );
    expect(
      data.checks.filter((c) => c.status !== 'ok'),
      stderr,
    ).toEqual([]);
    expect(data.ok).toBe(true);
    expect(exitCode).toBe(0);
    expect(data.notApplicable.map((n) => n.id)).toContain('cri');
  }, 900_000);

  it('attach records a trigger run on the node; dlv on loopback only, same-user check on', async () => {
    const ns = `vmns-${process.pid}-${Date.now() % 100000}`;
    const file = join(work, 'vm.jsonl');
    // The trigger runs on the node while dlv is attached: it also shows dlv's sockets and command line.
    const trigger = `ctr -a ${SOCK} namespaces create ${ns} && ss -ltnp | grep '"dlv"' && ps -o args= -C dlv`;
    const pid = await mainPid();
    const { exitCode, data, stderr } = await timed('attach', () =>
      ctrdbgJson<{
        hits: number;
        reason: string;
        containerd: { pidAfter: number; serving: boolean; traced: boolean };
      }>(
        [
          'attach',
          `lab:${VM}`,
          '--set',
          'lab-create',
          '--record',
          file,
          '--trigger-on-node',
          '--trigger',
          trigger,
        ],
        { env },
      ),
    );
    expect(exitCode, stderr).toBe(0);
    expect(data).toMatchObject({ hits: 1, reason: 'trigger-finished' });
    expect(data.containerd).toMatchObject({ pidAfter: pid, serving: true, traced: false });
    const lines = (await readFile(file, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const hit = lines.find((l) => l.type === 'hit');
    const name = hit.expressions.find((e: { expr: string }) => e.expr === 'req.Namespace.Name')?.value?.value;
    expect(name).toBe(ns);

    const triggerOut = stderr
      .split('\n')
      .filter((l) => l.includes('trigger│'))
      .map((l) => l.replace(/^.*trigger│ /, ''));
    const listening = triggerOut.filter((l) => l.startsWith('LISTEN'));
    expect(listening.length, stderr).toBeGreaterThan(0);
    for (const l of listening) expect(l.split(/\s+/)[3], l).toMatch(/^127\.0\.0\.1:\d+$/);
    const dlvArgs = triggerOut.filter((l) => /\bdlv\b.*\battach\b/.test(l));
    expect(dlvArgs.length, stderr).toBeGreaterThan(0);
    for (const l of dlvArgs) expect(l).not.toContain('only-same-user');
    // After the detach containerd runs on, untraced.
    expect((await onVm(`awk '/^TracerPid/{print $2}' /proc/${pid}/status`)).stdout.trim()).toBe('0');
    expect((await onVm(`sudo ctr -a ${SOCK} namespaces ls -q`)).stdout).toContain(ns);
  }, 600_000);

  it('restore lab:NAME: Debian binary byte-identical, drop-in gone; a reboot comes up clean', async () => {
    const restore = await timed('restoreLab', () => ctrdbgJson(['restore', `lab:${VM}`], { env }));
    expect(restore.exitCode, restore.stderr).toBe(0);
    await expectStock();

    await timed('reboot', async () => {
      // The SSH session dies with the guest's shutdown: its result does not matter.
      await Promise.race([
        onVm('sudo systemctl reboot').catch(() => undefined),
        new Promise((r) => setTimeout(r, 20_000)),
      ]);
      await new Promise((r) => setTimeout(r, 5000));
      const deadline = Date.now() + 300_000;
      for (;;) {
        const s = await status().catch(() => undefined);
        if (s?.up) {
          vm = s;
          break;
        }
        if (Date.now() > deadline) throw new Error('the VM did not come back within 300 s of the reboot');
        await new Promise((r) => setTimeout(r, 3000));
      }
    });
    expect(vm.containerd).toMatchObject({ running: true, serving: true, isStock: true });
    await expectStock();
  }, 600_000);

  it('lab down powers the VM off cleanly and leaves no QEMU', async () => {
    const qemu = vm.vm.qemuPid;
    const { exitCode, data, stderr } = await timed('down', () =>
      ctrdbgJson<{ how: string; stopped: { pid: number }[] }>(['lab', 'down', '--name', VM], { env }),
    );
    expect(exitCode, stderr).toBe(0);
    expect(data.how).toBe('poweroff');
    expect(data.stopped.map((s) => s.pid)).toContain(qemu);
    expect(await qemuProcesses()).toEqual([]);
    const after = await ctrdbg(['lab', 'status', '--name', VM], { env });
    expect(after.exitCode).toBe(11);
  }, 300_000);
});
