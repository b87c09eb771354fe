/**
 * The lab: a local, disposable node that behaves like a minikube node for everything ctrdbg does.
 *
 * - The node's "installed" containerd is Debian's stock, stripped /usr/bin/containerd, copied into the
 *   lab's node root and run (root, state and socket inside the lab) by a small service wrapper
 *   (scripts/lab/lab-service) that stands in for systemctl.
 * - A real OpenSSH server on 127.0.0.1 (own host key, key-only login) for the lab user, who has
 *   passwordless sudo like minikube's `docker` user. The host key is pinned in the lab's known_hosts.
 * - A containerd source tree that builds (GOPATH mode over Debian's packaged source) for `ctrdbg build`.
 *
 * Two flavours: the default ("stock": bookworm's 1.6.20 without CRI, Go 1.19, Delve 1.20.2) and `--cri`
 * (src/lab/criLab.ts: trixie's 1.7.24 with CRI, Go 1.24, Delve 1.24, and a kubelet stand-in). A lab keeps its
 * flavour for life; `lab:NAME` targets either.
 */
import { chmod, copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { labRoot, scriptsDir } from '../config.js';
import { environmentError, inputError, nodeError } from '../errors.js';
import {
  LAB_USER,
  type LabFlavor,
  type LabPaths,
  type LabState,
  labFlavor,
  labPaths,
  readLabState,
} from '../nodes/labNodes.js';
import { run, runChecked } from '../util/exec.js';
import { exists, isAlive, sha256File, sleep, waitFor } from '../util/fsx.js';
import { freeLoopbackPort, readBanner } from '../util/net.js';
import type { Logger } from '../util/output.js';
import { buildLabImage, importLabImage, LAB_IMAGE, PAUSE_IMAGE } from './labImage.js';
import { labProcesses, readProc } from './procs.js';

const SUDOERS_FILE = '/etc/sudoers.d/ctrdbg-lab';
const STOCK_CONTAINERD = '/usr/bin/containerd';
const SSHD = '/usr/sbin/sshd';

function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw environmentError('The lab needs root: it creates a UNIX user, runs sshd and runs containerd.', {
      hint: 'Run it as root (e.g. sudo ctrdbg lab up).',
    });
  }
}

async function ensureUser(log: Logger): Promise<void> {
  const id = await run('id', ['-u', LAB_USER]);
  if (id.exitCode !== 0) {
    log.step(`creating lab user ${LAB_USER}`);
    await runChecked('useradd', ['--create-home', '--shell', '/bin/bash', LAB_USER], (d) =>
      environmentError(`Could not create the lab user ${LAB_USER}: ${d}`),
    );
  }
  // '*' (not '!'): no password login, but not "locked", which sshd would refuse without PAM.
  await runChecked('usermod', ['-p', '*', LAB_USER], (d) => environmentError(`usermod failed: ${d}`));
  const sudoers = `# ctrdbg lab: passwordless sudo for the lab user, as minikube's docker user has.\n${LAB_USER} ALL=(ALL) NOPASSWD:ALL\n`;
  const current = await readFile(SUDOERS_FILE, 'utf8').catch(() => '');
  if (current !== sudoers) {
    const tmp = `${SUDOERS_FILE}.tmp`;
    await writeFile(tmp, sudoers, { mode: 0o440 });
    await runChecked('visudo', ['-cf', tmp], (d) => environmentError(`sudoers check failed: ${d}`));
    await runChecked('mv', [tmp, SUDOERS_FILE], (d) => environmentError(d));
  }
}

async function ensureKeys(paths: LabPaths): Promise<void> {
  for (const [key, comment] of [
    [paths.ssh.hostKey, 'ctrdbg-lab-host'],
    [paths.ssh.clientKey, 'ctrdbg-lab-client'],
  ] as const) {
    if (!(await exists(key))) {
      await runChecked('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', key], (d) =>
        environmentError(`ssh-keygen failed: ${d}`),
      );
    }
  }
  const clientPub = await readFile(`${paths.ssh.clientKey}.pub`, 'utf8');
  await writeFile(paths.ssh.authorizedKeys, clientPub, { mode: 0o644 });
  await chmod(paths.ssh.authorizedKeys, 0o644);
}

async function ensureNode(
  paths: LabPaths,
  log: Logger,
  original: { binary: string; what: string; config: string },
): Promise<void> {
  const n = paths.node;
  for (const d of [
    'usr/bin',
    'usr/local/sbin',
    'etc/containerd',
    'etc/ctrdbg-lab',
    'run/containerd',
    'var/log',
    'var/lib/containerd',
    'opt/ctrdbg',
  ]) {
    await mkdir(join(n.root, d), { recursive: true, mode: 0o755 });
  }
  if (!(await exists(n.binary))) {
    if (!(await exists(original.binary))) {
      throw environmentError(
        `${original.binary} is missing: the lab runs ${original.what} as the node's original.`,
        {
          hint: "Install it (apt-get install containerd), or run 'make deps'.",
        },
      );
    }
    log.step(`installing the node's containerd (${original.what}, ${original.binary})`);
    await copyFile(original.binary, n.binary);
    await chmod(n.binary, 0o755);
  }
  await copyFile(join(scriptsDir, 'lab/lab-service'), n.service);
  await chmod(n.service, 0o755);
  await writeFile(n.config, original.config);
  if (!(await exists(n.envFile))) await writeFile(n.envFile, 'LOG_LEVEL=info\n');
}

function stockConfig(paths: LabPaths): string {
  const n = paths.node;
  return [
    '# The lab node: everything containerd owns lives under the lab directory.',
    'version = 2',
    `root = "${join(n.root, 'var/lib/containerd')}"`,
    `state = "${join(n.root, 'run/containerd/state')}"`,
    '[grpc]',
    `  address = "${n.socket}"`,
    '[ttrpc]',
    `  address = "${n.socket}.ttrpc"`,
    '[debug]',
    '  address = ""',
    '',
  ].join('\n');
}

function sshdConfig(paths: LabPaths, port: number): string {
  return [
    '# sshd for a ctrdbg lab: loopback only, key-only login for the lab user.',
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${paths.ssh.hostKey}`,
    `PidFile ${paths.ssh.pidFile}`,
    `AuthorizedKeysFile ${paths.ssh.authorizedKeys}`,
    `AllowUsers ${LAB_USER}`,
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin no',
    'UsePAM no',
    'StrictModes yes',
    'AllowTcpForwarding local',
    'X11Forwarding no',
    'PrintMotd no',
    'Subsystem sftp internal-sftp',
    '',
  ].join('\n');
}

async function sshdPid(paths: LabPaths): Promise<number> {
  const pid = Number((await readFile(paths.ssh.pidFile, 'utf8').catch(() => '0')).trim());
  return isAlive(pid) ? pid : 0;
}

async function startSshd(paths: LabPaths, log: Logger): Promise<number> {
  if (!(await exists(SSHD))) {
    throw environmentError(`${SSHD} is missing.`, { hint: "Install openssh-server, or run 'make deps'." });
  }
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 }); // privilege separation directory
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freeLoopbackPort();
    await writeFile(paths.ssh.config, sshdConfig(paths, port));
    const test = await run(SSHD, ['-t', '-f', paths.ssh.config]);
    if (test.exitCode !== 0) throw environmentError(`sshd rejected the lab's configuration: ${test.stderr}`);
    log.step(`starting sshd on 127.0.0.1:${port}`);
    const started = await run(SSHD, ['-f', paths.ssh.config, '-E', paths.ssh.log]);
    if (started.exitCode !== 0) throw environmentError(`sshd did not start: ${started.stderr}`);
    const banner = await waitFor(
      async () => (await readBanner('127.0.0.1', port, 1000)) ?? undefined,
      5000,
      () => environmentError(`sshd did not answer on 127.0.0.1:${port}`),
    ).catch(() => undefined);
    if (banner?.startsWith('SSH-2.0')) {
      const hostPub = (await readFile(`${paths.ssh.hostKey}.pub`, 'utf8'))
        .trim()
        .split(/\s+/)
        .slice(0, 2)
        .join(' ');
      await writeFile(paths.ssh.knownHosts, `[127.0.0.1]:${port} ${hostPub}\n`, { mode: 0o644 });
      return port;
    }
    // Port taken in between, most likely: stop whatever started and try another.
    const pid = await sshdPid(paths);
    if (pid) process.kill(pid, 'SIGTERM');
  }
  throw environmentError('sshd did not come up on a loopback port after 3 attempts.', {
    hint: `Look at ${paths.ssh.log}.`,
  });
}

async function service(paths: LabPaths, action: string): Promise<{ out: string; ok: boolean }> {
  const result = await run(paths.node.service, [action], { timeout: 60_000 });
  return { out: `${result.stdout}\n${result.stderr}`.trim(), ok: result.exitCode === 0 };
}

export async function containerdMainPid(paths: LabPaths): Promise<number> {
  if (!(await exists(paths.node.service))) return 0;
  const { out } = await service(paths, 'main-pid');
  return Number(out.split('\n')[0]) || 0;
}

export interface LabUpResult {
  name: string;
  created: boolean;
  status: LabStatus;
}

/**
 * Brings a lab up. Idempotent: what already runs is left as it is. `cri` asks for the CRI flavour; a lab
 * that exists keeps the flavour it was made with (asking for the other one is an error).
 */
export async function labUp(
  name: string,
  log: Logger,
  options: { cri?: boolean } = {},
): Promise<LabUpResult> {
  requireRoot();
  const paths = labPaths(name);
  const previous = await readLabState(paths);
  const flavor: LabFlavor = options.cri ? 'cri' : labFlavor(previous);
  if (previous && labFlavor(previous) !== flavor) {
    throw inputError(`The lab '${name}' is a ${labFlavor(previous)} lab; it cannot become a ${flavor} lab.`, {
      hint: `Use another name (ctrdbg lab up --cri makes one named 'cri'), or remove it first: ctrdbg lab down --name ${name} --purge.`,
    });
  }
  const cri = flavor === 'cri' ? await import('./criLab.js') : undefined;
  const lane = cri
    ? await (await import('../debugbuild/toolchain.js')).requireTrixieLane('`ctrdbg lab up --cri`')
    : undefined;
  if (previous?.laneKey && lane && previous.laneKey !== lane.key) {
    log.warn(
      `the lab '${name}' was made from trixie lane ${previous.laneKey}, now ${lane.key} is installed: its node keeps the older containerd. Recreate it (ctrdbg lab down --name ${name} --purge) to follow the lane.`,
    );
  }
  await mkdir(paths.ssh.dir, { recursive: true, mode: 0o755 });
  await chmod(labRoot(), 0o755).catch(() => {});
  await chmod(paths.dir, 0o755);
  await ensureUser(log);
  await ensureKeys(paths);
  const original =
    cri && lane
      ? {
          binary: lane.containerd.binary,
          what: `Debian trixie's stock ${lane.containerd.version} with CRI`,
          config: cri.criConfig(paths),
        }
      : { binary: STOCK_CONTAINERD, what: "Debian's stock containerd", config: stockConfig(paths) };
  await ensureNode(paths, log, original);
  if (cri && lane) await cri.installCriNodeFiles(paths, lane, log);
  const { writeLabTree } = await import('../debugbuild/goBuild.js');
  if (!(await exists(join(paths.tree, 'ctrdbg-tree.json'))))
    log.step(`writing the lab's containerd source tree to ${paths.tree}`);
  // Rewritten every time (only what changed): the marker follows the installed lane.
  await writeLabTree(paths.tree, cri && lane ? cri.criTreeSource(lane) : undefined);

  let port = previous?.ssh.port ?? 0;
  if (!(await sshdPid(paths)) || !(await readBanner('127.0.0.1', port, 1000))) {
    port = await startSshd(paths, log);
  }

  if (!(await containerdMainPid(paths))) {
    log.step('starting containerd');
    const started = await service(paths, 'start');
    if (!started.ok) {
      throw nodeError(`The lab's containerd did not start: ${started.out}`, {
        hint: `Look at ${paths.node.log}.`,
      });
    }
  }
  if (cri && lane) {
    await cri.importCriImages(paths);
    await cri.installKubelet(paths, lane, log);
  } else {
    const archive = await buildLabImage(join(paths.dir, 'images'));
    await importLabImage(paths.node.socket, archive);
  }
  const state: LabState = {
    format: 1,
    name,
    createdAt: previous?.createdAt ?? new Date().toISOString(),
    ssh: { host: '127.0.0.1', port, user: LAB_USER },
    stockSha256: previous?.stockSha256 ?? (await sha256File(original.binary)),
    flavor,
    ...(lane ? { laneKey: previous?.laneKey ?? lane.key } : {}),
  };
  await writeFile(paths.stateFile, `${JSON.stringify(state, null, 2)}\n`);
  return { name, created: previous === undefined, status: await labStatus(name) };
}

export interface LabStatus {
  name: string;
  dir: string;
  up: boolean;
  target: string;
  ssh: {
    host: string;
    port: number;
    user: string;
    keyPath: string;
    knownHostsPath: string;
    reachable: boolean;
    banner?: string;
    sshdPid: number;
  };
  containerd: {
    running: boolean;
    pid: number;
    binary: string;
    version?: string;
    sha256?: string;
    isStock?: boolean;
    debuggable?: boolean;
    debugProblems?: string[];
    socket: string;
    serving: boolean;
    traced: boolean;
  };
  tree: string;
  /** An image in containerd's default namespace, for triggers: ctr run --rm IMAGE ID /hello hi. */
  image: string;
  flavor?: LabFlavor;
  /** CRI labs: the kubelet stand-in on the node (`<kubelet> run-pod`), the pause image, the CRI namespace. */
  cri?: { kubelet: string; sandboxImage: string; namespace: string; podLogs: string; shim: string };
}

export async function labStatus(name: string): Promise<LabStatus> {
  const paths = labPaths(name);
  const state = await readLabState(paths);
  if (!state) {
    throw inputError(`There is no lab named '${name}'.`, {
      hint: `Create it with: ctrdbg lab up${name === 'default' ? '' : ` --name ${name}`}`,
    });
  }
  const pid = await sshdPid(paths);
  const banner = pid ? await readBanner('127.0.0.1', state.ssh.port, 2000) : undefined;
  const cpid = await containerdMainPid(paths);
  const containerd: LabStatus['containerd'] = {
    running: cpid > 0,
    pid: cpid,
    binary: paths.node.binary,
    socket: paths.node.socket,
    serving: false,
    traced: false,
  };
  if (cpid) {
    const exe = `/proc/${cpid}/exe`;
    const proc = await readProc(cpid);
    containerd.traced = (proc?.tracerPid ?? 0) !== 0;
    const version = await run(exe, ['--version'], { timeout: 10_000 });
    containerd.version = version.stdout.trim();
    containerd.sha256 = await sha256File(exe);
    containerd.isStock = containerd.sha256 === state.stockSha256;
    const { inspectBinary } = await import('../debugbuild/debugInfo.js');
    const report = await inspectBinary(exe);
    containerd.debuggable = report.debuggable;
    containerd.debugProblems = report.problems;
    const answer = await run('ctr', ['-a', paths.node.socket, 'version'], { timeout: 10_000 });
    containerd.serving = answer.exitCode === 0;
  }
  const reachable = Boolean(banner?.startsWith('SSH-2.0'));
  const flavor = labFlavor(state);
  return {
    name,
    dir: paths.dir,
    up: reachable && containerd.serving,
    target: name === 'default' ? 'lab' : `lab:${name}`,
    ssh: {
      host: state.ssh.host,
      port: state.ssh.port,
      user: state.ssh.user,
      keyPath: paths.ssh.clientKey,
      knownHostsPath: paths.ssh.knownHosts,
      reachable,
      ...(banner ? { banner } : {}),
      sshdPid: pid,
    },
    containerd,
    tree: paths.tree,
    image: LAB_IMAGE,
    flavor,
    ...(flavor === 'cri'
      ? {
          cri: {
            kubelet: paths.node.kubelet,
            sandboxImage: PAUSE_IMAGE,
            namespace: 'k8s.io',
            podLogs: paths.node.podLogs,
            shim: paths.node.shim,
          },
        }
      : {}),
  };
}

export interface LabDownResult {
  name: string;
  stopped: { pid: number; what: string }[];
  removed: boolean;
}

/**
 * Stops exactly what the lab started: a debugger still attached to the lab's containerd (SIGTERM, which
 * makes a headless dlv detach), containerd and its shims, sshd and its sessions. `purge` also deletes the
 * lab directory.
 */
export async function labDown(
  name: string,
  options: { purge?: boolean },
  log: Logger,
): Promise<LabDownResult> {
  requireRoot();
  const paths = labPaths(name);
  if (!(await exists(paths.dir))) {
    throw inputError(`There is no lab named '${name}'.`, {
      hint: 'Nothing to do; `ctrdbg lab status` lists nothing either.',
    });
  }
  const stopped: LabDownResult['stopped'] = [];
  const cpid = await containerdMainPid(paths);
  const state = await readLabState(paths);
  if (cpid && labFlavor(state) === 'cri' && !(await readProc(cpid))?.tracerPid) {
    // Pods a kubelet run left behind: their processes live in their own mount namespaces, out of sight of
    // the lab-directory scan below, and each holds a /dev/shm mount in the lab; CRI removes them first.
    const { removeCriPods } = await import('./criLab.js');
    for (const id of await removeCriPods(paths)) stopped.push({ pid: 0, what: `pod ${id.slice(0, 12)}` });
  }
  if (cpid) {
    const tracer = (await readProc(cpid))?.tracerPid ?? 0;
    if (tracer) {
      log.step(`detaching the debugger (pid ${tracer}) from containerd`);
      process.kill(tracer, 'SIGTERM');
      await waitFor(
        async () => ((await readProc(cpid))?.tracerPid ? undefined : true),
        15_000,
        () => nodeError(`The debugger ${tracer} did not detach from containerd ${cpid}.`),
      );
      stopped.push({ pid: tracer, what: 'debugger' });
    }
    log.step(`stopping containerd (pid ${cpid})`);
    const result = await service(paths, 'stop');
    if (!result.ok) log.warn(result.out);
    stopped.push({ pid: cpid, what: 'containerd' });
  }
  const spid = await sshdPid(paths);
  const roots = spid ? [spid] : [];
  for (const p of await labProcesses(paths.dir, roots)) {
    const what = (p.exe || p.cmdline).split('/').pop()?.split(' ')[0] ?? String(p.pid);
    log.step(`stopping ${what} (pid ${p.pid})`);
    try {
      process.kill(p.pid, 'SIGTERM');
    } catch {
      // already gone
    }
    stopped.push({ pid: p.pid, what });
  }
  const left = await waitFor(
    async () => {
      const procs = await labProcesses(paths.dir, roots);
      return procs.length === 0 ? [] : undefined;
    },
    10_000,
    () => nodeError('lab processes are still running'),
  ).catch(async () => labProcesses(paths.dir, roots));
  for (const p of left) {
    process.kill(p.pid, 'SIGKILL');
  }
  if (left.length) await sleep(200);
  await rm(paths.ssh.pidFile, { force: true });
  if (options.purge) await rm(paths.dir, { recursive: true, force: true });
  return { name, stopped, removed: Boolean(options.purge) };
}
