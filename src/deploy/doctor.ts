/**
 * `ctrdbg doctor`: the debugging guide's checks, automated. Each check says ✔/✘ and, when it fails, what to
 * do. Checks that do not apply to a node (the CRI plugin of a containerd built without one, the cluster
 * runtime off minikube) are listed as not applicable rather than passed. Every check asks the running
 * daemon or its binary, never the kind of node.
 */
import { delveSupport, inspectBinary, parseDelveVersion } from '../debugbuild/debugInfo.js';
import { isCtrdbgError } from '../errors.js';
import type { RemoteHost } from '../nodes/remoteHost.js';
import { resolveTarget, type TargetOptions } from '../nodes/resolveTarget.js';
import { connectHost } from '../nodes/ssh/sshHost.js';
import { shellQuote } from '../util/shell.js';
import { waitServing } from './binarySwap.js';
import { type NodeState, readNodeState } from './nodeState.js';
import {
  daemonConfigPath,
  fetchNodeFile,
  fetchRunningBinary,
  type NodeProbe,
  probeNode,
  remoteSha256,
  semverOf,
} from './probe.js';
import { serviceControl } from './service.js';
import { describeRunningShims, locateNodeShim, runningShims, type ShimLocation } from './shimLocate.js';

export type CheckStatus = 'ok' | 'fail' | 'warn';

export interface Check {
  id: string;
  title: string;
  status: CheckStatus;
  detail: string;
  hint?: string;
  /** For failures that come from a ctrdbg error: its class, which decides doctor's exit code. */
  errorKind?: string;
  /** What the check found, for `--json` (the shim check: path, sha256, whose it is, debuggable, running shims). */
  facts?: Record<string, unknown>;
}

export interface DoctorResult {
  target: string;
  ok: boolean;
  checks: Check[];
  notApplicable: { id: string; title: string; why: string }[];
}

export interface DoctorOptions extends TargetOptions {
  /** A local source tree (or build manifest's) version to compare with. */
  src?: string;
}

/**
 * The node's containerd version against the source's. A version that reads no number (containerd down, an
 * unknown binary) is said as such: "Check out v<nothing>" would send the user to a tag that does not exist.
 */
export function versionCheck(nodeVersion: string, compareWith: string | undefined, spec: string): Check {
  const title = 'version matches the source';
  if (!compareWith)
    return {
      id: 'version',
      title,
      status: 'warn',
      detail: `node ${nodeVersion || 'reports no version'}; no source to compare with`,
      hint: 'Pass --src DIR, or run ctrdbg setup (it records the source version).',
    };
  const node = semverOf(nodeVersion);
  const source = semverOf(compareWith);
  const same = node !== undefined && node === source;
  const detail = `node ${node ?? JSON.stringify(nodeVersion || 'no version')}, source ${source ?? compareWith}`;
  if (same) return { id: 'version', title, status: 'ok', detail };
  return {
    id: 'version',
    title,
    status: 'fail',
    detail,
    hint: !node
      ? `The node's containerd reports no version number (${JSON.stringify(nodeVersion || 'nothing')}): check that it runs (ctrdbg doctor ${spec}), or what runs there after \`ctrdbg restore ${spec}\`.`
      : !source
        ? `The source reports no version number (${JSON.stringify(compareWith)}): pass --src with a containerd tree checked out at v${node}.`
        : `Check out v${node} in the source tree and run ctrdbg setup again.`,
  };
}

/** Free space below which pulls and snapshots start failing in practice. */
const MIN_FREE_BYTES = 1024 ** 3;

export async function doctor(spec: string | undefined, options: DoctorOptions): Promise<DoctorResult> {
  const checks: Check[] = [];
  const notApplicable: DoctorResult['notApplicable'] = [];
  const add = (c: Check) => checks.push(c);
  const target = await resolveTarget(spec, options);

  let host: RemoteHost;
  try {
    host = await connectHost(target.endpoint);
    add({
      id: 'reachable',
      title: 'node reachable over SSH',
      status: 'ok',
      detail: `${target.endpoint.user}@${target.endpoint.host}:${target.endpoint.port}, host key pinned`,
    });
  } catch (error) {
    add(failed('reachable', 'node reachable over SSH', error));
    return { target: target.spec, ok: false, checks, notApplicable };
  }
  try {
    try {
      await host.checkSudo();
      add({
        id: 'sudo',
        title: 'passwordless sudo',
        status: 'ok',
        detail: `sudo -n works for ${target.endpoint.user}`,
      });
    } catch (error) {
      add(failed('sudo', 'passwordless sudo', error));
      return { target: target.spec, ok: false, checks, notApplicable };
    }
    const service = serviceControl(host, target.service);
    let probe: NodeProbe | undefined;
    try {
      probe = await probeNode(host, target, { requireRunning: false });
    } catch (error) {
      add(failed('probe', 'node facts', error));
    }
    const localArchOk = probe && ['amd64', 'arm64'].includes(probe.goArch);
    add({
      id: 'arch',
      title: 'architecture',
      status: localArchOk ? 'ok' : 'fail',
      detail: probe ? `${probe.arch} (${probe.goArch}), ${probe.os}, kernel ${probe.kernel}` : 'unknown',
      ...(localArchOk ? {} : { hint: 'ctrdbg builds containerd for amd64 and arm64 nodes.' }),
    });
    const active = await service.isActive();
    add({
      id: 'service',
      title: 'containerd service active',
      status: active && probe?.pid ? 'ok' : 'fail',
      detail: active
        ? `${service.description}, main pid ${probe?.pid}`
        : `${service.description} is not active`,
      ...(active
        ? {}
        : {
            hint:
              target.service.kind === 'systemd'
                ? `sudo systemctl start ${target.service.unit}`
                : 'ctrdbg lab up',
          }),
    });
    const serving = active ? await waitServing(host, target, 5_000) : false;
    add({
      id: 'socket',
      title: 'containerd socket answers',
      status: serving ? 'ok' : 'fail',
      detail: `${target.node.socket}${serving ? '' : ' does not answer'}`,
      ...(serving
        ? {}
        : {
            hint: `Look at containerd's log: ${target.service.kind === 'systemd' ? `journalctl -u ${target.service.unit}` : 'the lab log'}.`,
          }),
    });

    const state = await readNodeState(host, target);
    let goVersion: string | null = null;
    if (probe?.pid) {
      try {
        const local = await fetchRunningBinary(host, probe);
        const report = await inspectBinary(local, { expectedArch: probe.goArch, delveVersion: null });
        goVersion = report.goVersion;
        add({
          id: 'debuggable',
          title: 'running binary debuggable',
          status: report.debuggable ? 'ok' : 'fail',
          detail: report.debuggable
            ? `${probe.binary}: DWARF present, containerd packages built with -N -l (${report.goVersion ?? 'go ?'})`
            : `${probe.binary}: ${report.problems.join('; ')}`,
          ...(report.debuggable ? {} : { hint: `Run: ctrdbg setup ${target.spec}` }),
        });
      } catch (error) {
        add(failed('debuggable', 'running binary debuggable', error));
      }
    }

    const nodeVersion = probe?.version ?? '';
    const builtFrom = (state.installed?.manifest as { containerd?: { version?: string | null } } | undefined)
      ?.containerd?.version;
    const compareWith = options.src ? await treeVersion(options.src) : (builtFrom ?? undefined);
    add(versionCheck(nodeVersion, compareWith, target.spec));

    add(await delveCheck(host, target, state, goVersion));

    const ptrace = await host.exec('cat /proc/sys/kernel/yama/ptrace_scope 2>/dev/null || echo none');
    const scope = ptrace.stdout.trim();
    const traced = probe?.tracerPid ?? 0;
    const ptraceOk = (scope === 'none' || ['0', '1', '2'].includes(scope)) && traced === 0;
    add({
      id: 'ptrace',
      title: 'ptrace allowed, not traced already',
      status: ptraceOk ? 'ok' : 'fail',
      detail: `ptrace_scope ${scope === 'none' ? 'n/a (no Yama)' : scope}, TracerPid ${traced}`,
      ...(ptraceOk
        ? {}
        : {
            hint: traced
              ? `pid ${traced} traces containerd already: quit that debugger with 'exit -c'.`
              : 'Set kernel.yama.ptrace_scope to 1 (3 forbids ptrace until reboot).',
          }),
    });

    const df = await host.exec(`df -Pk ${shellQuote(target.node.containerdRoot)} | tail -n1`, { sudo: true });
    const freeKb = Number(df.stdout.trim().split(/\s+/)[3] ?? 0);
    add({
      id: 'disk',
      title: "free space under containerd's root",
      status: freeKb * 1024 >= MIN_FREE_BYTES ? 'ok' : 'fail',
      detail: `${(freeKb / 1024 / 1024).toFixed(1)} GiB free at ${target.node.containerdRoot}`,
      ...(freeKb * 1024 >= MIN_FREE_BYTES
        ? {}
        : { hint: 'Free some space: ctr images prune, or crictl rmi --prune.' }),
    });

    add(await shimCheck(host, target, probe, state));

    const cri = await criPluginCheck(host, target, probe);
    if ('why' in cri) notApplicable.push(cri);
    else add(cri);
    if (target.minikube) {
      const ok = target.minikube.runtime === 'containerd';
      add({
        id: 'runtime',
        title: 'cluster runtime is containerd',
        status: ok ? 'ok' : 'fail',
        detail: `profile ${target.minikube.profile}: ${target.minikube.runtime}`,
      });
    } else {
      notApplicable.push({
        id: 'runtime',
        title: 'cluster runtime is containerd',
        why: 'not a minikube node',
      });
    }

    const level = await service.logLevel();
    const debugAddr = await debugAddress(host, probe);
    const tcpDebug = /^(tcp:|[\d.]+:\d+|\[?[:\w]+\]?:\d+)/.test(debugAddr ?? '');
    add({
      id: 'debug',
      title: 'log level and debug socket',
      status: tcpDebug ? 'fail' : 'ok',
      detail: `log level ${level ?? 'default (info)'}${state.logLevel ? ` via ${state.logLevel.path}` : ''}; debug socket ${debugAddr || 'off'}`,
      ...(tcpDebug ? { hint: 'The [debug] address serves pprof: bind it to a unix socket, never TCP.' } : {}),
    });
  } finally {
    await host.close();
  }
  return { target: target.spec, ok: checks.every((c) => c.status !== 'fail'), checks, notApplicable };
}

/**
 * Names the Delve on the node, the Go range it supports, and whether that covers the Go the running containerd
 * was built with; and where it came from (setup records it: a local dlv, or a build from Delve's source).
 */
async function delveCheck(
  host: RemoteHost,
  target: Awaited<ReturnType<typeof resolveTarget>>,
  state: NodeState,
  goVersion: string | null,
): Promise<Check> {
  const id = 'dlv';
  const title = 'Delve on the node fits the running binary';
  const dlvPath = state.dlv?.path ?? `${target.node.ctrdbgDir}/bin/dlv`;
  const setupHint = `Run: ctrdbg setup ${target.spec} (it ships, or builds from Delve's source, a dlv for the node that supports the binary's Go; --dlv-src DIR names the source).`;
  const present = await host.exec(`test -e ${shellQuote(dlvPath)}`, { sudo: true });
  if (present.code !== 0)
    return { id, title, status: 'fail', detail: `no dlv at ${dlvPath}`, hint: setupHint };
  const out = await host.exec(`${shellQuote(dlvPath)} version`, { sudo: true });
  const version = out.code === 0 ? parseDelveVersion(out.stdout) : undefined;
  if (!version) {
    const said = (out.stderr || out.stdout).trim().split('\n').slice(-1)[0] ?? '';
    return {
      id,
      title,
      status: 'fail',
      detail: `${dlvPath} does not run on the node (exit ${out.code}${said ? `: ${said}` : ''})`,
      hint: setupHint,
    };
  }
  const support = delveSupport(version, goVersion ?? undefined);
  const range = support.supportedGo ? `supports Go ${support.supportedGo}` : 'supports an unknown Go range';
  const origin = state.dlv?.origin ? `; ${state.dlv.origin}` : '';
  const fit =
    goVersion === null
      ? "the running containerd's Go version is unknown"
      : support.supported === false
        ? `containerd was built with ${goVersion}: it does not fit`
        : support.supported
          ? `containerd was built with ${goVersion}: it fits`
          : `containerd was built with ${goVersion}: not known to fit`;
  return {
    id,
    title,
    status: support.supported === false ? 'fail' : support.supported ? 'ok' : 'warn',
    detail: `Delve ${version} at ${dlvPath} ${range}; ${fit}${origin}`,
    ...(support.supported ? {} : { hint: setupHint }),
  };
}

/**
 * The shim containerd starts for new pods, found as containerd finds it (shimLocate.ts); whose it is (the
 * node's own, or ctrdbg's debug build from `setup --with-shim`) and whether it is debuggable, by the same check
 * `build --verify` makes; how many shims run, and how many of them a binary since replaced; and runc.
 */
async function shimCheck(
  host: RemoteHost,
  target: Awaited<ReturnType<typeof resolveTarget>>,
  probe: NodeProbe | undefined,
  state: NodeState,
): Promise<Check> {
  const id = 'shim';
  const title = 'shim and runc present';
  if (!probe?.pid) return { id, title, status: 'fail', detail: 'containerd is not running' };
  let location: ShimLocation;
  try {
    location = await locateNodeShim(host, target, probe);
  } catch (error) {
    return failed(id, title, error);
  }
  const runc = await host.exec('command -v runc', { sudo: true });
  if (runc.code !== 0)
    return {
      id,
      title,
      status: 'fail',
      detail: `${location.path} (${location.why}); runc: missing`,
      hint: 'Install runc on the node.',
    };
  const sha = (await remoteSha256(host, location.path)) ?? '';
  const whose =
    sha && sha === state.shim?.installed?.sha256
      ? `ctrdbg's debug build (setup --with-shim, ${state.shim.installed.installedAt})`
      : sha && sha === state.shim?.original?.sha256
        ? "the node's original"
        : state.shim?.installed
          ? `not the debug build ctrdbg installed (sha256 ${sha.slice(0, 12)}…)`
          : "the node's own";
  let debuggable = '';
  let isDebuggable: boolean | undefined;
  try {
    const report = await inspectBinary(await fetchNodeFile(host, location.path, sha), {
      expectedArch: probe.goArch,
      delveVersion: null,
    });
    isDebuggable = report.debuggable;
    debuggable = report.debuggable
      ? 'debuggable (DWARF, -N -l)'
      : `not debuggable (${report.problems[0] ?? 'unknown'}): \`ctrdbg setup ${target.spec} --with-shim\` to debug shims`;
  } catch (error) {
    debuggable = `not inspected (${(error as Error).message})`;
  }
  const shims = await runningShims(host, location.path);
  const running = describeRunningShims(shims);
  return {
    id,
    title,
    status: 'ok',
    facts: {
      path: location.path,
      why: location.why,
      sha256: sha,
      debugBuild: Boolean(sha && sha === state.shim?.installed?.sha256),
      original: Boolean(sha && sha === state.shim?.original?.sha256),
      debuggable: isDebuggable ?? null,
      running: shims,
    },
    detail: [
      `${location.path} (${location.why}), ${whose}, ${debuggable}; ${running}`,
      ...location.warnings,
      `runc ${runc.stdout.trim()}`,
    ].join('; '),
  };
}

function failed(id: string, title: string, error: unknown): Check {
  if (isCtrdbgError(error)) {
    return {
      id,
      title,
      status: 'fail',
      detail: error.message,
      errorKind: error.kind,
      ...(error.hint ? { hint: error.hint } : {}),
    };
  }
  return { id, title, status: 'fail', detail: String((error as Error).message ?? error) };
}

async function debugAddress(host: RemoteHost, probe: NodeProbe | undefined): Promise<string | undefined> {
  if (!probe?.pid) return undefined;
  const config = await daemonConfigPath(host, probe.pid);
  const r = await host.exec(
    `awk '/^\\[debug\\]/{d=1;next} /^\\[/{d=0} d && $1=="address"{print $3}' ${shellQuote(config)} 2>/dev/null`,
    { sudo: true },
  );
  return r.stdout.trim().replace(/^"|"$/g, '') || undefined;
}

async function treeVersion(src: string): Promise<string | undefined> {
  const { detectSourceTree } = await import('../debugbuild/goBuild.js');
  const tree = await detectSourceTree(src);
  if (tree.kind === 'gopath') return tree.marker.version;
  const { gitState } = await import('../debugbuild/manifest.js');
  return (await gitState(tree.root))?.describe ?? undefined;
}

/** One row of `ctr plugins ls`: TYPE ID PLATFORMS STATUS. */
export interface PluginRow {
  type: string;
  id: string;
  status: string;
}

export function parsePluginList(output: string): PluginRow[] {
  return output
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols.length >= 4)
    .map((cols) => ({ type: cols[0] ?? '', id: cols[1] ?? '', status: cols[cols.length - 1] ?? '' }));
}

/**
 * "CRI plugin loaded", asked of the running daemon (`ctr plugins ls`, with the node's own ctr when it has one
 * beside containerd). Listed and ok: ✔. Listed with another status, or disabled in the config: ✘. Not listed
 * at all: this containerd was built without CRI (Debian bookworm's 1.6.20) — not applicable, except on a
 * minikube node, whose kubelet needs it.
 */
async function criPluginCheck(
  host: RemoteHost,
  target: Awaited<ReturnType<typeof resolveTarget>>,
  probe: NodeProbe | undefined,
): Promise<Check | { id: string; title: string; why: string }> {
  const id = 'cri';
  const title = 'CRI plugin loaded';
  if (!probe?.pid) return { id, title, status: 'fail', detail: 'containerd is not running' };
  const beside = probe.binary.replace(/\/[^/]*$/, '');
  const ctr = `$( [ -x ${shellQuote(`${beside}/ctr`)} ] && echo ${shellQuote(`${beside}/ctr`)} || echo ctr )`;
  const listed = await host.exec(`${ctr} -a ${shellQuote(target.node.socket)} plugins ls`, { sudo: true });
  if (listed.code !== 0) {
    return {
      id,
      title,
      status: 'fail',
      detail: `ctr plugins ls failed: ${(listed.stderr || listed.stdout).trim().split('\n').slice(-1)[0] ?? ''}`,
      hint: 'Install ctr (it comes with containerd) on the node.',
    };
  }
  const row = parsePluginList(listed.stdout).find(
    (p) => p.type === 'io.containerd.grpc.v1' && p.id === 'cri',
  );
  if (row?.status === 'ok')
    return { id, title, status: 'ok', detail: 'io.containerd.grpc.v1 cri: ok (ctr plugins ls)' };
  if (row) {
    return {
      id,
      title,
      status: 'fail',
      detail: `io.containerd.grpc.v1 cri: ${row.status}`,
      hint: `See why: ctr -a ${target.node.socket} plugins ls -d id==cri, and containerd's log; check the [plugins."io.containerd.grpc.v1.cri"] section of its config.`,
    };
  }
  const config = await daemonConfigPath(host, probe.pid);
  const disabled = await host.exec(
    `grep -E '^[[:space:]]*disabled_plugins[[:space:]]*=.*"(io\\.containerd\\.grpc\\.v1\\.)?cri"' ${shellQuote(config)}`,
    { sudo: true },
  );
  if (disabled.code === 0) {
    return {
      id,
      title,
      status: 'fail',
      detail: `disabled in ${config}: ${disabled.stdout.trim()}`,
      hint: 'Remove "cri" from disabled_plugins and restart containerd.',
    };
  }
  if (target.minikube) {
    return {
      id,
      title,
      status: 'fail',
      detail: 'ctr plugins ls lists no io.containerd.grpc.v1 cri: this containerd has no CRI plugin',
      hint: 'kubelet needs CRI: check disabled_plugins and the [plugins."io.containerd.grpc.v1.cri"] section of containerd\'s config, or put back a containerd built with CRI (the node\'s original: ctrdbg restore).',
    };
  }
  return {
    id,
    title,
    why: 'the running containerd has no CRI plugin (ctr plugins ls lists none): it was built without one, like Debian bookworm’s 1.6.20',
  };
}
