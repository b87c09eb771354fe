/**
 * Swapping containerd's binary on a node without ever leaving it without a working containerd:
 *
 *   1. back the original up once (kept across repeated setups; never overwritten);
 *   2. upload the new binary beside the original under a temporary name, check its sha256 on the node,
 *      rename it into place (atomic on one filesystem) — the running daemon keeps its old image;
 *   3. restart through the service manager, wait until the socket answers, and check the new main PID's
 *      /proc/PID/exe has the uploaded sha256;
 *   4. if it does not come up, put the original back and restart it, then say so.
 *
 * An interruption before 3 leaves the old daemon running; during 3 the restart runs detached on the node.
 */
import { basename, dirname } from 'node:path';
import { nodeError } from '../errors.js';
import type { RemoteHost } from '../target/remoteHost.js';
import { shellQuote } from '../target/remoteHost.js';
import type { Target } from '../target/target.js';
import { sleep } from '../util/fsx.js';
import type { Logger } from '../util/output.js';
import { backupPath, type NodeState, readNodeState, writeNodeState } from './nodeState.js';
import { type NodeProbe, probeNode, remoteSha256 } from './probe.js';
import { serviceControl } from './service.js';

export interface SwapResult {
  pidBefore: number;
  pidAfter: number;
  binary: string;
  sha256: string;
  backedUp: boolean;
  restarted: boolean;
  unchanged: boolean;
}

/** Waits until containerd's socket answers on the node (ctr if the node has it, else the socket file). */
export async function waitServing(host: RemoteHost, target: Target, timeoutMs = 30_000): Promise<boolean> {
  const sock = shellQuote(target.node.socket);
  const check = `if command -v ctr >/dev/null 2>&1; then timeout 5 ctr -a ${sock} version >/dev/null 2>&1; else test -S ${sock}; fi`;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await host.exec(check, { sudo: true, timeoutMs: 10_000 })).code === 0) return true;
    await sleep(250);
  }
  return false;
}

/** Records the original binary and backs it up, once. */
export async function ensureBackup(
  host: RemoteHost,
  target: Target,
  probe: NodeProbe,
  state: NodeState,
  log: Logger,
): Promise<boolean> {
  const backup = backupPath(target);
  if (state.original && (await remoteSha256(host, backup)) === state.original.sha256) return false;
  // Without a record, the binary on disk now is the node's own (ctrdbg never installed anything yet).
  const path = state.original?.path ?? probe.binary;
  const sha = await remoteSha256(host, path);
  if (!sha) throw nodeError(`Cannot read ${path} on the node to back it up.`);
  if (state.installed && sha === state.installed.sha256 && !state.original) {
    throw nodeError('The node runs a ctrdbg build but its original binary was never backed up.', {
      hint: "Reinstall the node's containerd package, then run setup again.",
    });
  }
  log.step(`backing up the original ${path} → ${backup}`);
  await host.execChecked(
    `mkdir -p ${shellQuote(dirname(backup))} && cp -p ${shellQuote(path)} ${shellQuote(`${backup}.tmp`)} && mv -f ${shellQuote(`${backup}.tmp`)} ${shellQuote(backup)}`,
    { sudo: true },
  );
  if ((await remoteSha256(host, backup)) !== sha)
    throw nodeError(`The backup at ${backup} does not match ${path}.`);
  state.original = { path, sha256: sha, version: probe.version, backup, savedAt: new Date().toISOString() };
  await writeNodeState(host, target, state);
  return true;
}

export interface InstallOptions {
  localBinary: string;
  sha256: string;
  version: string;
  manifest?: Record<string, unknown> | null;
  logLevel?: string;
  onProgress?: (sent: number, total: number) => void;
}

export async function installBinary(
  host: RemoteHost,
  target: Target,
  options: InstallOptions,
  log: Logger,
): Promise<SwapResult> {
  const service = serviceControl(host, target.service);
  const probe = await probeNode(host, target);
  const state = await readNodeState(host, target);
  const backedUp = await ensureBackup(host, target, probe, state, log);
  const path = state.original?.path ?? probe.binary;

  const levelChange = await service.setLogLevel(options.logLevel);
  if (levelChange.changed) log.step(`log level ${options.logLevel ?? 'default'} (${levelChange.path})`);
  const onDisk = await remoteSha256(host, path);
  if (onDisk === options.sha256 && probe.runningSha256 === options.sha256 && !levelChange.changed) {
    return {
      pidBefore: probe.pid,
      pidAfter: probe.pid,
      binary: path,
      sha256: options.sha256,
      backedUp,
      restarted: false,
      unchanged: true,
    };
  }

  if (onDisk !== options.sha256) {
    state.pending = { step: 'upload', sha256: options.sha256, startedAt: new Date().toISOString() };
    await writeNodeState(host, target, state);
    log.step(`uploading ${basename(options.localBinary)} → ${path}`);
    await host.upload(options.localBinary, path, {
      sudo: true,
      mode: 0o755,
      ...(options.onProgress ? { onProgress: (p) => options.onProgress?.(p.sent, p.total) } : {}),
    });
  }
  state.pending = { step: 'restart', sha256: options.sha256, startedAt: new Date().toISOString() };
  await writeNodeState(host, target, state);

  log.step(`restarting containerd (${service.description})`);
  const failure = await restartAndVerify(host, target, options.sha256).catch((error: Error) => error);
  if (failure instanceof Error) {
    log.warn(`the new containerd did not come up (${failure.message}); putting the original back`);
    await rollback(host, target, state, log);
    const tail = await service.recentLog(6).catch(() => '');
    throw nodeError(
      `The debug containerd did not come up on ${target.endpoint.label}: ${failure.message}. The original binary was put back and is running again.`,
      {
        hint: `Check the build matches the node (arch, version, config).${tail ? ` containerd's log ends with: ${tail.trim().split('\n').slice(-3).join(' | ')}` : ''}`,
      },
    );
  }
  delete state.pending;
  state.installed = {
    sha256: options.sha256,
    version: options.version,
    installedAt: new Date().toISOString(),
    manifest: options.manifest ?? null,
  };
  if (options.logLevel) state.logLevel = { path: levelChange.path, level: options.logLevel };
  else delete state.logLevel;
  await writeNodeState(host, target, state);
  return {
    pidBefore: probe.pid,
    pidAfter: failure,
    binary: path,
    sha256: options.sha256,
    backedUp,
    restarted: true,
    unchanged: false,
  };
}

/** Restarts and returns the new main PID once its image has the expected sha256 and the socket answers. */
export async function restartAndVerify(host: RemoteHost, target: Target, sha256: string): Promise<number> {
  const service = serviceControl(host, target.service);
  await service.restart();
  if (!(await waitServing(host, target))) throw new Error('its socket did not answer within 30 s');
  const pid = await service.mainPid();
  if (!pid) throw new Error('the service reports no main PID');
  const running = await remoteSha256(host, `/proc/${pid}/exe`);
  if (running !== sha256)
    throw new Error(`PID ${pid} runs a binary with sha256 ${running ?? 'unknown'}, not ${sha256}`);
  return pid;
}

async function rollback(host: RemoteHost, target: Target, state: NodeState, log: Logger): Promise<void> {
  const original = state.original;
  if (!original) throw nodeError('No backup of the original binary is recorded; cannot roll back.');
  await host.execChecked(
    `cp -p ${shellQuote(original.backup)} ${shellQuote(`${original.path}.ctrdbg-tmp`)} && mv -f ${shellQuote(`${original.path}.ctrdbg-tmp`)} ${shellQuote(original.path)}`,
    { sudo: true },
  );
  try {
    await restartAndVerify(host, target, original.sha256);
  } catch (error) {
    // Last resort: make sure *something* runs.
    await serviceControl(host, target.service)
      .start()
      .catch(() => {});
    throw nodeError(`Rolling back to the original containerd failed too: ${(error as Error).message}`, {
      hint: `Log in to the node and check ${target.service.kind === 'systemd' ? `systemctl status ${target.service.unit}` : 'the lab service'}.`,
    });
  }
  delete state.pending;
  delete state.installed;
  await writeNodeState(host, target, state);
  log.step('the original containerd is running again');
}

export interface RestoreResult {
  restored: boolean;
  path: string;
  sha256: string;
  pid: number;
  logLevelRemoved: boolean;
  purged: string[];
}

/** Puts the original binary back (byte-identical, checked), undoes the log level, restarts, verifies. */
export async function restoreOriginal(
  host: RemoteHost,
  target: Target,
  options: { purge?: boolean },
  log: Logger,
): Promise<RestoreResult> {
  const state = await readNodeState(host, target);
  const service = serviceControl(host, target.service);
  const purged: string[] = [];
  if (!state.original) {
    throw nodeError(`ctrdbg has not changed ${target.endpoint.label}: there is nothing to restore.`, {
      hint: 'Run `ctrdbg doctor` to see what the node runs.',
    });
  }
  const original = state.original;
  const backupSha = await remoteSha256(host, original.backup);
  if (backupSha !== original.sha256) {
    throw nodeError(
      `The backup ${original.backup} is missing or damaged (sha256 ${backupSha ?? 'unreadable'}, expected ${original.sha256}).`,
      {
        hint: "Reinstall the node's containerd package to get the original back.",
      },
    );
  }
  const onDisk = await remoteSha256(host, original.path);
  if (onDisk !== original.sha256) {
    log.step(`putting the original back at ${original.path}`);
    await host.execChecked(
      `cp -p ${shellQuote(original.backup)} ${shellQuote(`${original.path}.ctrdbg-tmp`)} && mv -f ${shellQuote(`${original.path}.ctrdbg-tmp`)} ${shellQuote(original.path)}`,
      { sudo: true },
    );
  }
  const level = await service.setLogLevel(undefined);
  if (level.changed) log.step(`removed the log-level setting (${level.path})`);
  const pidNow = await service.mainPid();
  const runningSha = pidNow ? await remoteSha256(host, `/proc/${pidNow}/exe`) : undefined;
  let pid = pidNow;
  if (runningSha !== original.sha256 || level.changed || !pidNow) {
    log.step('restarting containerd');
    pid = await restartAndVerify(host, target, original.sha256);
  }
  delete state.installed;
  delete state.pending;
  delete state.logLevel;
  if (options.purge) {
    for (const root of state.source?.roots ?? []) {
      // Only trees ctrdbg itself created on the node: on the lab the node's path *is* the local tree.
      if (!root.created || root.path.split('/').filter(Boolean).length < 2) continue;
      await host.execChecked(`rm -rf ${shellQuote(root.path)}`, { sudo: true });
      purged.push(root.path);
    }
    delete state.source;
    const bin = `${target.node.ctrdbgDir}/bin`;
    await host.execChecked(`rm -rf ${shellQuote(bin)}`, { sudo: true });
    purged.push(bin);
    delete state.dlv;
    delete state.agent;
  }
  await writeNodeState(host, target, state);
  return {
    restored: onDisk !== original.sha256,
    path: original.path,
    sha256: original.sha256,
    pid,
    logLevelRemoved: level.changed,
    purged,
  };
}
