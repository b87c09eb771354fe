/**
 * The CRI flavour of the lab (`ctrdbg lab up --cri`, target `lab:cri`): what a minikube node has, from
 * Debian trixie's archive (scripts/bootstrap-trixie), on this machine.
 *
 * - The node's original containerd is trixie's stock, stripped 1.7.24 with CRI, with trixie's
 *   containerd-shim-runc-v2 and ctr beside it; runc is the system's (trixie's needs glibc 2.38).
 * - Its config enables CRI with a `sandbox_image` the lab builds offline (ctrdbg.lab/pause:1, imported into the
 *   `k8s.io` namespace with ctrdbg.lab/hello:1), host-network pods (no CNI), the lab's shim and runc, and every
 *   path CRI would otherwise share with the machine (CNI dirs, the streaming port, /opt/containerd) inside the lab.
 * - The source tree builds from trixie's 1.7.24 library with scripts/lab/containerd-cri-main, stamped with the
 *   stock binary's version, in the trixie lane (Go 1.24; Delve 1.24 goes to the node).
 * - A kubelet stand-in (scripts/lab/kubelet, built against trixie's CRI API) is installed on the node with the
 *   node's defaults: `<node>/usr/local/bin/ctrdbg-kubelet run-pod | pull | create-orphan | remove-pods`.
 */
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDir, scriptsDir } from '../config.js';
import type { LabTreeSource } from '../debugbuild/goBuild.js';
import type { TrixieLane } from '../debugbuild/toolchain.js';
import { environmentError } from '../errors.js';
import type { LabPaths } from '../nodes/labNodes.js';
import { run, runChecked } from '../util/exec.js';
import { exists, sha256File, waitFor } from '../util/fsx.js';
import type { Logger } from '../util/output.js';
import { buildLabImage, HELLO, importLabImage, PAUSE } from './labImage.js';

/** CRI's containerd namespace: every pod, container and image kubelet deals with lives there. */
export const CRI_NAMESPACE = 'k8s.io';
const RUNC = '/usr/sbin/runc';
const KUBELET_PACKAGE = 'ctrdbg.lab/kubelet';

/** The tree `setup lab:cri` builds: trixie's library, our main with CRI, the stock binary's version stamp. */
export function criTreeSource(lane: TrixieLane): LabTreeSource {
  return {
    mainGo: join(scriptsDir, 'lab', 'containerd-cri-main', 'main.go'),
    shimMainGo: join(scriptsDir, 'lab', 'containerd-shim-runc-v2-main', 'main.go'),
    gocode: lane.gocode,
    version: lane.containerd.version,
    revision: lane.containerd.revision,
    toolchain: 'trixie',
    ...(lane.containerdGoMod ? { goVersion: lane.containerdGoMod } : {}),
  };
}

export function criConfig(paths: LabPaths): string {
  const n = paths.node;
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return [
    '# The CRI lab node: containerd 1.7 with CRI; everything it owns lives under the lab directory.',
    'version = 2',
    `root = "${join(n.root, 'var/lib/containerd')}"`,
    `state = "${join(n.root, 'run/containerd/state')}"`,
    '[grpc]',
    `  address = "${n.socket}"`,
    '[ttrpc]',
    `  address = "${n.socket}.ttrpc"`,
    '[debug]',
    '  address = ""',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = "${join(n.root, 'opt/containerd')}"`,
    `[${cri}]`,
    // The lab's own pause image, imported into k8s.io: no registry needed.
    `  sandbox_image = "${PAUSE.ref}"`,
    // Port 0: every CRI lab on the machine gets its own streaming port (exec/attach/port-forward).
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    '  enable_selinux = false',
    '  disable_apparmor = true',
    // CRI gives sandboxes oom_score_adj -998; lowering a score needs CAP_SYS_RESOURCE, which these machines'
    // root lacks. Restricted, CRI never goes below containerd's own score (what kind and rootless nodes do).
    '  restrict_oom_score_adj = true',
    `[${cri}.containerd]`,
    '  snapshotter = "overlayfs"',
    '  default_runtime_name = "runc"',
    `[${cri}.containerd.runtimes.runc]`,
    '  runtime_type = "io.containerd.runc.v2"',
    // The node's own shim (trixie's 1.7.24), not whichever containerd-shim-runc-v2 is first on PATH.
    `  runtime_path = "${n.shim}"`,
    `[${cri}.containerd.runtimes.runc.options]`,
    `  BinaryName = "${RUNC}"`,
    '  SystemdCgroup = false',
    // Pods use the host network; CNI is configured (empty) inside the lab so CRI never reads the machine's.
    `[${cri}.cni]`,
    `  bin_dir = "${n.cniBin}"`,
    `  conf_dir = "${n.cniConf}"`,
    `[${cri}.registry]`,
    `  config_path = "${join(n.root, 'etc/containerd/certs.d')}"`,
    '',
  ].join('\n');
}

/** Copies `from` to `to` unless it is there already, byte for byte. */
async function installFile(from: string, to: string, mode = 0o755): Promise<boolean> {
  if ((await exists(to)) && (await sha256File(to)) === (await sha256File(from))) return false;
  const tmp = `${to}.tmp`;
  await copyFile(from, tmp);
  await chmod(tmp, mode);
  await rename(tmp, to);
  return true;
}

/** The node's shim and ctr (trixie's, matching its containerd), and the directories CRI writes to. */
export async function installCriNodeFiles(paths: LabPaths, lane: TrixieLane, log: Logger): Promise<void> {
  const n = paths.node;
  for (const d of [
    n.cniBin,
    n.cniConf,
    n.podLogs,
    join(n.root, 'opt/containerd'),
    join(n.root, 'etc/containerd/certs.d'),
  ])
    await mkdir(d, { recursive: true, mode: 0o755 });
  // Like the node's containerd, its shim is installed once: after that it is the node's own, which
  // `setup --with-shim` may replace (and `restore` put back); a second `lab up` must not undo that behind its back.
  if (!(await exists(n.shim))) {
    log.step(`installing trixie's shim at ${n.shim}`);
    await installFile(lane.containerd.shim, n.shim);
  }
  if (await installFile(lane.containerd.ctr, n.ctr)) log.step(`installing trixie's ctr at ${n.ctr}`);
}

/** Builds (once per source and lane) the kubelet stand-in with the lane's Go in GOPATH mode. */
export async function buildKubelet(lane: TrixieLane, log: Logger): Promise<string> {
  const main = join(scriptsDir, 'lab', 'kubelet', 'main.go');
  const hash = createHash('sha256')
    .update(await readFile(main))
    .update(lane.key)
    .digest('hex')
    .slice(0, 16);
  const dir = join(cacheDir(), 'kubelet', hash);
  const out = join(dir, 'ctrdbg-kubelet');
  if (await exists(out)) return out;
  const pkgDir = join(dir, 'gopath', 'src', KUBELET_PACKAGE);
  await mkdir(pkgDir, { recursive: true });
  await copyFile(main, join(pkgDir, 'main.go'));
  log.step(`building the kubelet stand-in with ${lane.go.version} (GOPATH mode, trixie's CRI API)`);
  await runChecked(
    lane.go.path,
    ['build', '-trimpath', '-o', `${out}.tmp`, KUBELET_PACKAGE],
    (d) =>
      environmentError(`Building the kubelet stand-in failed: ${d}`, {
        hint: 'Re-run scripts/bootstrap-trixie.',
      }),
    {
      cwd: pkgDir,
      env: {
        CGO_ENABLED: '0',
        GO111MODULE: 'off',
        GOFLAGS: '',
        GOTOOLCHAIN: 'local',
        GOPATH: `${join(dir, 'gopath')}:${lane.gocode}`,
      },
      timeout: 600_000,
    },
  );
  await rename(`${out}.tmp`, out);
  return out;
}

/**
 * Installs the stand-in on the node: the binary, and a wrapper with this node's defaults (its containerd socket
 * and pod log root) the way kubelet reads its node's config, so it also works as `attach --trigger-on-node`.
 */
export async function installKubelet(paths: LabPaths, lane: TrixieLane, log: Logger): Promise<void> {
  const n = paths.node;
  await mkdir(join(n.root, 'usr/local/bin'), { recursive: true, mode: 0o755 });
  await mkdir(join(n.root, 'usr/local/lib/ctrdbg'), { recursive: true, mode: 0o755 });
  await installFile(await buildKubelet(lane, log), n.kubeletBinary);
  const wrapper = [
    '#!/bin/sh',
    "# The CRI lab's kubelet stand-in (scripts/lab/kubelet in ctrdbg) with this node's defaults:",
    "# containerd's socket and the pod log root, as kubelet would read them from its node's config.",
    `: "\${CTRDBG_SOCKET:=${n.socket}}"`,
    `: "\${CTRDBG_POD_LOG_ROOT:=${n.podLogs}}"`,
    'export CTRDBG_SOCKET CTRDBG_POD_LOG_ROOT',
    `exec ${n.kubeletBinary} "$@"`,
    '',
  ].join('\n');
  if ((await readFile(n.kubelet, 'utf8').catch(() => '')) !== wrapper) {
    await writeFile(n.kubelet, wrapper, { mode: 0o755 });
    await chmod(n.kubelet, 0o755);
  }
}

/** The pause and hello images in `k8s.io` (CRI's), and hello in `default` too, for plain ctr triggers. */
export async function importCriImages(paths: LabPaths): Promise<void> {
  const images = join(paths.dir, 'images');
  const ctr = paths.node.ctr;
  for (const spec of [PAUSE, HELLO]) {
    const archive = await buildLabImage(images, spec);
    await importLabImage(paths.node.socket, archive, { ref: spec.ref, namespace: CRI_NAMESPACE, ctr });
  }
  await importLabImage(paths.node.socket, await buildLabImage(images, HELLO), { ref: HELLO.ref, ctr });
}

/**
 * Removes every pod the way kubelet does when pods are deleted (the stand-in's remove-pods: StopPodSandbox,
 * RemovePodSandbox), so CRI also unmounts each pod's /dev/shm; then kills whatever task is left in `k8s.io`.
 * Returns the pods' and tasks' ids. Best effort: used by `lab down`.
 */
export async function removeCriPods(paths: LabPaths): Promise<string[]> {
  const removed: string[] = [];
  if (await exists(paths.node.kubelet)) {
    const r = await run(paths.node.kubelet, ['remove-pods', '--timeout', '60s'], {
      timeout: 90_000,
      env: { CTRDBG_SOCKET: paths.node.socket },
    });
    for (const m of r.stdout.matchAll(/^RemovePodSandbox (\S+)/gm)) removed.push(m[1] ?? '');
  }
  const ctr = (args: string[]) =>
    run(paths.node.ctr, ['-a', paths.node.socket, '-n', CRI_NAMESPACE, ...args], { timeout: 30_000 });
  const listed = await ctr(['tasks', 'ls', '-q']);
  const ids = listed.exitCode === 0 ? listed.stdout.split('\n').filter(Boolean) : [];
  for (const id of ids) {
    await ctr(['tasks', 'kill', '--all', '--signal', 'SIGKILL', id]);
    // CRI's event monitor deletes a sandbox's task once it exits; delete what it leaves (a container's).
    await waitFor(
      async () => {
        const left = await ctr(['tasks', 'ls', '-q']);
        if (!left.stdout.split('\n').includes(id)) return true;
        await ctr(['tasks', 'delete', id]);
        return undefined;
      },
      10_000,
      () => new Error(`task ${id} did not stop`),
    ).catch(() => undefined);
  }
  return [...removed, ...ids];
}
