/**
 * The VM lab: a real Debian node booted with QEMU — systemd, sshd on :22, user `docker` with passwordless sudo,
 * Debian's containerd as `containerd.service` — the closest thing to minikube's kvm2 driver that can be built
 * offline, and the place where setup/restore's systemd path runs for real.
 *
 * - Image: src/lab/vmImage.ts (debootstrap + mkfs.ext4 -d), built once under `<lab>/vm/`.
 * - Disk: a qcow2 overlay on the built image, so the image stays pristine; `--reset` starts from it again.
 * - QEMU: KVM only when a probe proves it works (on nested hosts /dev/kvm can exist and still abort with
 *   `-cpu host`), TCG otherwise; direct kernel boot, virtio disk, user-mode network with `restrict=on`
 *   (the guest reaches nothing) and one forward, 127.0.0.1:<free port> → guest :22 (loopback only).
 * - Down: `systemctl poweroff` over SSH, wait for QEMU to exit, only then SIGTERM, then SIGKILL.
 *
 * State: `<lab>/vm.json` (its presence is what makes `lab:NAME` a VM lab).
 */
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { environmentError, inputError, isCtrdbgError, nodeError, unreachableError } from '../errors.js';
import { labelOf, readVmState, type VmPaths, type VmState, vmEndpoint, vmPaths } from '../nodes/labNodes.js';
import type { RemoteHost, SshEndpoint } from '../nodes/remoteHost.js';
import { connectHost } from '../nodes/ssh/sshHost.js';
import { SYSTEMD_SOCKET, SYSTEMD_UNIT } from '../nodes/target.js';
import { run, runChecked } from '../util/exec.js';
import { exists, isAlive, sleep } from '../util/fsx.js';
import { freeLoopbackPort, readBanner } from '../util/net.js';
import type { Logger } from '../util/output.js';
import type { LabStatus } from './lab.js';
import { buildVmImage, readImageRecord, VM_USER, type VmImageRecord } from './vmImage.js';

const MEMORY_MB = 2048;
const CPUS = 2;
const SSH_WAIT_MS = 300_000;
const POWEROFF_WAIT_MS = 90_000;

function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw environmentError('The VM lab needs root: it builds its image with debootstrap and chroot.', {
      hint: 'Run it as root (e.g. sudo ctrdbg lab up --vm).',
    });
  }
}

/** The QEMU process of this lab, if it runs: the pidfile's PID, checked against its command line. */
async function qemuPid(paths: VmPaths): Promise<number> {
  const pid = Number((await readFile(paths.pidFile, 'utf8').catch(() => '0')).trim());
  if (!isAlive(pid)) return 0;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  // A recycled PID must never be mistaken for (and killed as) our QEMU.
  return cmdline.includes(paths.overlay) ? pid : 0;
}

/** Every QEMU process using this lab's disk, whatever its pidfile says (for `down`'s final check). */
async function qemuProcesses(paths: VmPaths): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.startsWith('qemu-system') && cmdline.includes(paths.overlay)) pids.push(Number(entry));
  }
  return pids;
}

async function ensureKeys(paths: VmPaths, newHostKey: boolean): Promise<void> {
  await mkdir(join(paths.dir, 'ssh'), { recursive: true, mode: 0o700 });
  await mkdir(paths.image.dir, { recursive: true, mode: 0o700 });
  if (newHostKey) {
    await rm(paths.image.hostKey, { force: true });
    await rm(`${paths.image.hostKey}.pub`, { force: true });
  }
  for (const [key, comment] of [
    [paths.image.clientKey, 'ctrdbg-vm-client'],
    [paths.image.hostKey, 'ctrdbg-vm-host'],
  ] as const) {
    if (!(await exists(key))) {
      await runChecked('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', key], (d) =>
        environmentError(`ssh-keygen failed: ${d}`),
      );
    }
  }
}

/**
 * KVM is used only if it demonstrably runs a guest: the image's kernel, with no root file system, must
 * reach its "cannot mount root" panic within a few seconds under `-accel kvm -cpu host`. On hosts where
 * /dev/kvm exists but is unusable QEMU aborts or crawls, and TCG is used instead.
 */
export async function probeKvm(paths: VmPaths, log: Logger): Promise<boolean> {
  const forced = process.env.CTRDBG_VM_ACCEL;
  if (forced === 'tcg' || forced === 'kvm') return forced === 'kvm';
  if (!(await exists('/dev/kvm'))) return false;
  const args = [
    '-accel',
    'kvm',
    '-cpu',
    'host',
    '-m',
    '256',
    '-nodefaults',
    '-display',
    'none',
    '-no-reboot',
    '-serial',
    'stdio',
    '-kernel',
    paths.image.kernel,
    '-append',
    'console=ttyS0 panic=-1 root=/dev/nonexistent',
  ];
  log.debug(`KVM probe: qemu-system-x86_64 ${args.join(' ')}`);
  const result = await run('qemu-system-x86_64', args, { timeout: 8_000 });
  const works = /Kernel panic|VFS: Unable to mount root/.test(result.stdout);
  log.step(`KVM ${works ? 'works' : 'is not usable here'}: ${works ? 'using it' : 'using TCG (slower)'}`);
  return works;
}

function qemuArgs(paths: VmPaths, port: number, kvm: boolean): string[] {
  return [
    '-name',
    `ctrdbg-${paths.dir.split('/').pop()}`,
    ...(kvm ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,thread=multi']),
    '-m',
    String(MEMORY_MB),
    '-smp',
    String(CPUS),
    '-nodefaults',
    '-display',
    'none',
    '-kernel',
    paths.image.kernel,
    '-initrd',
    paths.image.initrd,
    '-append',
    'root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet',
    '-drive',
    `file=${paths.overlay},if=virtio,format=qcow2`,
    // restrict=on: the guest reaches nothing outside; the one forward listens on the host's loopback only.
    '-netdev',
    `user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${port}-:22`,
    '-device',
    'virtio-net-pci,netdev=n0',
    '-serial',
    `file:${paths.console}`,
    '-pidfile',
    paths.pidFile,
    '-daemonize',
  ];
}

async function ensureOverlay(
  paths: VmPaths,
  image: VmImageRecord,
  previous: VmState | undefined,
  reset: boolean,
) {
  const fresh =
    reset || !previous || previous.imageBuiltAt !== image.builtAt || !(await exists(paths.overlay));
  if (!fresh) return false;
  await rm(paths.overlay, { force: true });
  await runChecked(
    'qemu-img',
    ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', paths.image.disk, paths.overlay],
    (d) => environmentError(`qemu-img create failed: ${d}`, { hint: 'Install qemu-utils.' }),
  );
  return true;
}

async function startQemu(
  paths: VmPaths,
  kvm: boolean,
  log: Logger,
): Promise<{ pid: number; port: number; args: string[] }> {
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freeLoopbackPort();
    const args = qemuArgs(paths, port, kvm);
    await rm(paths.pidFile, { force: true });
    await writeFile(paths.console, '');
    log.step(
      `booting the VM (${kvm ? 'KVM' : 'TCG'}, ${MEMORY_MB} MiB, ${CPUS} CPUs), SSH forwarded from 127.0.0.1:${port}`,
    );
    const result = await run('qemu-system-x86_64', args, { timeout: 60_000 });
    if (result.exitCode === 0) {
      const pid = await qemuPid(paths);
      if (pid) return { pid, port, args };
    }
    // Most likely the port was taken between the probe and QEMU's bind: try another.
    if (!/host forwarding|hostfwd|Address already in use/i.test(result.stderr) || attempt === 3) {
      throw environmentError(`QEMU did not start: ${result.stderr.trim() || `exit ${result.exitCode}`}`, {
        hint: `Command: qemu-system-x86_64 ${args.join(' ')}`,
      });
    }
  }
  throw environmentError('QEMU did not start after 3 attempts.');
}

async function consoleTail(paths: VmPaths, lines = 12): Promise<string> {
  const text = await readFile(paths.console, 'utf8').catch(() => '');
  return text.replace(/\r/g, '').trim().split('\n').slice(-lines).join('\n');
}

/**
 * Waits for a real login, not just a port: QEMU's forward accepts connections before the guest runs sshd.
 * Then waits for containerd.service, which setup needs. Progress every 10 s; QEMU dying ends the wait.
 */
async function waitReady(paths: VmPaths, endpoint: SshEndpoint, pid: number, log: Logger): Promise<number> {
  const start = Date.now();
  let lastNote = start;
  let phase = 'SSH';
  for (;;) {
    if (!isAlive(pid)) {
      throw nodeError('QEMU exited while the VM was booting.', {
        hint: `The console ends with:\n${await consoleTail(paths)}`,
      });
    }
    const waited = Date.now() - start;
    if (waited > SSH_WAIT_MS) {
      throw unreachableError(`The VM did not get ready (${phase}) within ${SSH_WAIT_MS / 1000} s.`, {
        hint: `Its console (${paths.console}) ends with:\n${await consoleTail(paths)}`,
      });
    }
    if (Date.now() - lastNote >= 10_000) {
      lastNote = Date.now();
      log.info(`  waiting for ${phase} … ${Math.round(waited / 1000)} s`);
    }
    const banner = await readBanner(endpoint.host, endpoint.port, 3000);
    if (banner?.startsWith('SSH-2.0')) {
      phase = 'containerd.service';
      const host = await connectHost({ ...endpoint, readyTimeoutMs: 15_000 }).catch((error: unknown) => {
        // A wrong key or host key will not fix itself by waiting.
        if (isCtrdbgError(error) && (error.kind === 'auth' || error.kind === 'hostKey')) throw error;
        return undefined;
      });
      if (host) {
        try {
          const active = await host.exec('systemctl is-active containerd.service', { timeoutMs: 15_000 });
          if (active.stdout.trim() === 'active') return Date.now() - start;
        } finally {
          await host.close();
        }
      }
    }
    await sleep(1000);
  }
}

export interface VmUpOptions {
  rebuild?: boolean;
  /** Discard the node's changes (the overlay) and boot the pristine image. */
  reset?: boolean;
}

export interface VmUpResult {
  name: string;
  created: boolean;
  built: boolean;
  booted: boolean;
  seconds: { build?: number; boot?: number };
  status: VmLabStatus;
}

export async function vmUp(name: string, options: VmUpOptions, log: Logger): Promise<VmUpResult> {
  requireRoot();
  const paths = vmPaths(name);
  if (await exists(join(paths.dir, 'lab.json'))) {
    throw inputError(`The lab '${name}' is a process lab, not a VM lab.`, {
      hint: 'Pick another name: ctrdbg lab up --vm --name vm',
    });
  }
  const previous = await readVmState(name);
  const running = await qemuPid(paths);
  if (running && previous && !options.rebuild && !options.reset) {
    log.step(`the VM is already running (QEMU pid ${running})`);
    const status = await vmStatus(name);
    if (status.up) return { name, created: false, built: false, booted: false, seconds: {}, status };
    throw nodeError(`The VM lab '${name}' runs (QEMU pid ${running}) but does not answer over SSH.`, {
      hint: `Restart it: ctrdbg lab down --name ${name} && ctrdbg lab up --vm --name ${name}`,
    });
  }
  if (running) await vmDown(name, {}, log);

  let image = options.rebuild ? undefined : await readImageRecord(paths.image);
  let buildSeconds: number | undefined;
  if (!image) {
    await ensureKeys(paths, true);
    image = await buildVmImage(paths.image, { hostname: `ctrdbg-${name}` }, log);
    buildSeconds = image.seconds;
  } else {
    await ensureKeys(paths, false);
    log.step(`using the VM image built ${image.builtAt} (${paths.image.disk})`);
  }
  await chmod(paths.dir, 0o755);
  if (!(await exists(join(paths.tree, 'ctrdbg-tree.json')))) {
    log.step(`writing the lab's containerd source tree to ${paths.tree}`);
    const { writeLabTree } = await import('../debugbuild/goBuild.js');
    await writeLabTree(paths.tree);
  }
  if (await ensureOverlay(paths, image, previous, Boolean(options.reset || options.rebuild))) {
    log.step(`fresh node disk ${paths.overlay} on top of the image`);
  }

  const kvm = await probeKvm(paths, log);
  const bootStart = Date.now();
  const { pid, port, args } = await startQemu(paths, kvm, log);
  // Pinned from the key made at build time: the forward's port changes on every boot, the key does not.
  const hostPub = image.hostKeyPub.split(/\s+/).slice(0, 2).join(' ');
  await writeFile(paths.knownHosts, `[127.0.0.1]:${port} ${hostPub}\n`, { mode: 0o644 });
  const state: VmState = {
    format: 1,
    kind: 'vm',
    name,
    createdAt: previous?.createdAt ?? new Date().toISOString(),
    ssh: { host: '127.0.0.1', port, user: VM_USER },
    qemu: { pid, accel: kvm ? 'kvm' : 'tcg', startedAt: new Date().toISOString(), command: args },
    imageBuiltAt: image.builtAt,
    stockSha256: image.stockSha256,
  };
  // Written before the wait, so `down` finds this QEMU even if the boot never completes.
  await writeFile(paths.stateFile, `${JSON.stringify(state, null, 2)}\n`);
  log.step(`QEMU pid ${pid}; waiting for SSH and containerd (console: ${paths.console})`);
  try {
    await waitReady(paths, vmEndpoint(name, state), pid, log);
  } catch (error) {
    log.warn('the VM did not come up; stopping QEMU so nothing is left running');
    await stopQemu(paths, pid, log).catch(() => {});
    throw error;
  }
  const bootSeconds = Math.round((Date.now() - bootStart) / 100) / 10;
  log.step(`VM ready in ${bootSeconds} s`);
  return {
    name,
    created: previous === undefined,
    built: buildSeconds !== undefined,
    booted: true,
    seconds: { ...(buildSeconds !== undefined ? { build: buildSeconds } : {}), boot: bootSeconds },
    status: await vmStatus(name),
  };
}

export interface VmLabStatus extends LabStatus {
  vm: {
    qemuPid: number;
    accel: string;
    disk: string;
    image: string;
    imageBuiltAt: string;
    console: string;
    unit: string;
  };
}

export async function vmStatus(name: string): Promise<VmLabStatus> {
  const paths = vmPaths(name);
  const state = await readVmState(name);
  if (!state) {
    throw inputError(`There is no VM lab named '${name}'.`, {
      hint: `Create it with: ctrdbg lab up --vm --name ${name}`,
    });
  }
  const pid = await qemuPid(paths);
  const banner = pid ? await readBanner('127.0.0.1', state.ssh.port, 3000) : undefined;
  const containerd: VmLabStatus['containerd'] = {
    running: false,
    pid: 0,
    binary: '/usr/bin/containerd',
    socket: SYSTEMD_SOCKET,
    serving: false,
    traced: false,
  };
  let reachable = false;
  if (banner?.startsWith('SSH-2.0')) {
    let host: RemoteHost | undefined;
    try {
      host = await connectHost(vmEndpoint(name, state));
      reachable = true;
      const cpid =
        Number((await host.exec(`systemctl show -p MainPID --value ${SYSTEMD_UNIT}`)).stdout.trim()) || 0;
      if (cpid) {
        const facts = await host.exec(
          `sha256sum /proc/${cpid}/exe | cut -d' ' -f1; /proc/${cpid}/exe --version 2>&1 | head -n1; awk '/^TracerPid:/{print $2}' /proc/${cpid}/status; timeout 10 ctr -a ${SYSTEMD_SOCKET} version >/dev/null 2>&1 && echo serving`,
          { sudo: true, timeoutMs: 30_000 },
        );
        const [sha = '', version = '', tracer = '0', serving = ''] = facts.stdout.split('\n');
        containerd.running = true;
        containerd.pid = cpid;
        containerd.sha256 = sha.trim();
        containerd.version = version.trim();
        containerd.isStock = sha.trim() === state.stockSha256;
        containerd.traced = (Number(tracer) || 0) !== 0;
        containerd.serving = serving.trim() === 'serving';
      }
    } catch {
      reachable = false;
    } finally {
      await host?.close();
    }
  }
  return {
    name,
    dir: paths.dir,
    up: reachable && containerd.serving,
    target: labelOf(name),
    ssh: {
      host: state.ssh.host,
      port: state.ssh.port,
      user: state.ssh.user,
      keyPath: paths.image.clientKey,
      knownHostsPath: paths.knownHosts,
      reachable,
      ...(banner ? { banner } : {}),
      sshdPid: 0,
    },
    containerd,
    tree: paths.tree,
    image: '',
    vm: {
      qemuPid: pid,
      accel: state.qemu.accel,
      disk: paths.overlay,
      image: paths.image.disk,
      imageBuiltAt: state.imageBuiltAt,
      console: paths.console,
      unit: SYSTEMD_UNIT,
    },
  };
}

/** SIGTERM (QEMU exits, flushing the disk), then SIGKILL if it ignores that; bounded. */
async function stopQemu(paths: VmPaths, pid: number, log: Logger): Promise<void> {
  for (const [signal, waitMs] of [
    ['SIGTERM', 15_000],
    ['SIGKILL', 5_000],
  ] as const) {
    if (!isAlive(pid)) break;
    log.step(`sending ${signal} to QEMU (pid ${pid})`);
    try {
      process.kill(pid, signal);
    } catch {
      // gone in between
    }
    const deadline = Date.now() + waitMs;
    while (isAlive(pid) && Date.now() < deadline) await sleep(200);
  }
  await rm(paths.pidFile, { force: true });
}

export interface VmDownResult {
  name: string;
  stopped: { pid: number; what: string }[];
  removed: boolean;
  /** How QEMU ended: a clean guest poweroff, or a signal after the poweroff timed out. */
  how?: 'poweroff' | 'SIGTERM' | 'SIGKILL';
  seconds?: number;
}

/** Powers the VM off cleanly over SSH, waits for QEMU to exit, and signals it only when that times out. */
export async function vmDown(name: string, options: { purge?: boolean }, log: Logger): Promise<VmDownResult> {
  requireRoot();
  const paths = vmPaths(name);
  const state = await readVmState(name);
  if (!state && !(await exists(paths.image.dir))) {
    throw inputError(`There is no VM lab named '${name}'.`, { hint: 'Nothing to do.' });
  }
  const result: VmDownResult = { name, stopped: [], removed: false };
  const pid = await qemuPid(paths);
  if (pid && state) {
    const start = Date.now();
    log.step(`powering the VM off (sudo systemctl poweroff over SSH)`);
    try {
      const host = await connectHost({ ...vmEndpoint(name, state), readyTimeoutMs: 15_000 });
      // The connection drops as the guest goes down; that is expected, not an error.
      await host.exec('systemctl poweroff', { sudo: true, timeoutMs: 15_000 }).catch(() => undefined);
      await host.close().catch(() => {});
    } catch (error) {
      log.warn(`could not log in to power off cleanly (${(error as Error).message})`);
    }
    let lastNote = Date.now();
    while (isAlive(pid) && Date.now() - start < POWEROFF_WAIT_MS) {
      if (Date.now() - lastNote >= 10_000) {
        lastNote = Date.now();
        log.info(`  waiting for QEMU to exit … ${Math.round((Date.now() - start) / 1000)} s`);
      }
      await sleep(250);
    }
    if (isAlive(pid)) {
      log.warn(`the guest did not power off within ${POWEROFF_WAIT_MS / 1000} s`);
      await stopQemu(paths, pid, log);
      result.how = isAlive(pid) ? 'SIGKILL' : 'SIGTERM';
    } else {
      result.how = 'poweroff';
    }
    result.seconds = Math.round((Date.now() - start) / 100) / 10;
    result.stopped.push({ pid, what: 'qemu' });
  }
  // Anything else still using this lab's disk (a QEMU whose pidfile was lost) goes too.
  for (const other of await qemuProcesses(paths)) {
    await stopQemu(paths, other, log);
    result.stopped.push({ pid: other, what: 'qemu' });
  }
  const left = await qemuProcesses(paths);
  if (left.length) {
    throw nodeError(`QEMU is still running (pid ${left.join(', ')}) after SIGKILL.`, {
      hint: 'Check the processes with: ps -fp ' + left.join(','),
    });
  }
  await rm(paths.pidFile, { force: true });
  if (options.purge) {
    await rm(paths.dir, { recursive: true, force: true });
    result.removed = true;
  }
  return result;
}
