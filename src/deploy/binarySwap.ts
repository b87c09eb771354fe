/**
 * Swapping containerd's binary on a node without ever leaving it without a working containerd. A setup is a
 * transaction over four steps, each logged, with the node state saying where it is (`pending`):
 *
 *   upload   the new binary beside the old one under a temporary name, its sha256 checked on the node;
 *   swap     renamed into place (atomic on one filesystem) — the running daemon keeps its old image;
 *   restart  through the service manager, run detached on the node so a cut connection cannot stop it between
 *            stop and start;
 *   verify   the socket answers and the new main PID's /proc/PID/exe has the uploaded sha256.
 *
 * An interrupt (Ctrl-C) or an error before the restart puts back the binary that was running before: it still
 * runs, so nothing is restarted. Once the restart has begun it is finished and verified; a new daemon that does
 * not come up is rolled back to the binary that ran before (not necessarily the original) and restarted. Every
 * ending leaves one verified state, says which in `current`, and clears `pending`. The original is backed up
 * once and never overwritten; the binary that ran before is kept as `containerd.previous` for the rollback.
 */
import { basename, dirname } from 'node:path';
import { interruptedError, nodeError } from '../errors.js';
import type { RemoteHost } from '../nodes/remoteHost.js';
import type { Target } from '../nodes/target.js';
import { sleep } from '../util/fsx.js';
import type { Logger } from '../util/output.js';
import { shellQuote } from '../util/shell.js';
import {
  backupPath,
  type NodeState,
  previousPath,
  readNodeState,
  type SwapStep,
  writeNodeState,
} from './nodeState.js';
import { type NodeProbe, probeNode, remoteSha256 } from './probe.js';
import { copyAtomically } from './remoteFiles.js';
import { serviceControl } from './service.js';
import { restoreShim, type ShimRestoreResult } from './shimSwap.js';

export interface SwapResult {
  pidBefore: number;
  pidAfter: number;
  binary: string;
  sha256: string;
  backedUp: boolean;
  restarted: boolean;
  unchanged: boolean;
  /** An interrupted swap from an earlier setup that this one found and repaired first. */
  repaired?: string;
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
  await copyAtomically(host, path, backup);
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
  /** Ctrl-C: ends the swap at the next safe point, in one verified state (see the file comment). */
  signal?: AbortSignal;
}

/** A swap that did not end with the new binary: the node runs the binary from before, verified. */
export class SwapUndone extends Error {
  constructor(
    readonly step: SwapStep,
    readonly interrupted: boolean,
    readonly reason: Error,
    readonly pid: number,
  ) {
    super(reason.message);
  }
}

export async function installBinary(
  host: RemoteHost,
  target: Target,
  options: InstallOptions,
  log: Logger,
): Promise<SwapResult> {
  const service = serviceControl(host, target.service);
  let state = await readNodeState(host, target);
  const repaired = state.pending ? await repairInterruptedSwap(host, target, log) : undefined;
  if (repaired) state = await readNodeState(host, target);
  const probe = await probeNode(host, target);
  const backedUp = await ensureBackup(host, target, probe, state, log);
  const path = state.original?.path ?? probe.binary;
  const previousLevel = await service.logLevel();
  const onDisk = await remoteSha256(host, path);
  const wantLevel = options.logLevel;
  if (onDisk === options.sha256 && probe.runningSha256 === options.sha256 && previousLevel === wantLevel) {
    // Already running and verified earlier; an install record lost by an older ctrdbg is written again.
    if (state.installed?.sha256 !== options.sha256)
      state.installed = {
        sha256: options.sha256,
        version: options.version,
        installedAt: new Date().toISOString(),
        manifest: options.manifest ?? null,
      };
    state.current = { outcome: 'unchanged', at: new Date().toISOString(), runningSha256: options.sha256 };
    await writeNodeState(host, target, state);
    return {
      pidBefore: probe.pid,
      pidAfter: probe.pid,
      binary: path,
      sha256: options.sha256,
      backedUp,
      restarted: false,
      unchanged: true,
      ...(repaired ? { repaired } : {}),
    };
  }

  // What runs now is what a rollback puts back: keep a copy unless it is the original (backed up already).
  const previous = {
    sha256: probe.runningSha256,
    path,
    version: probe.version,
    ...(previousLevel ? { logLevel: previousLevel } : {}),
  };
  if (probe.runningSha256 !== state.original?.sha256 && probe.runningSha256 !== options.sha256) {
    const copy = previousPath(target);
    if ((await remoteSha256(host, copy)) !== probe.runningSha256) {
      // The file on disk is normally the running image; after an odd manual change it may not be.
      const source = onDisk === probe.runningSha256 ? path : `/proc/${probe.pid}/exe`;
      log.step(`keeping the running binary for a rollback → ${copy}`);
      await copyAtomically(host, source, copy);
    }
  }
  const pending = (step: SwapStep) => {
    state.pending = {
      step,
      sha256: options.sha256,
      startedAt: state.pending?.startedAt ?? new Date().toISOString(),
      previous,
      install: {
        version: options.version,
        manifest: options.manifest ?? null,
        ...(wantLevel ? { logLevel: wantLevel } : {}),
      },
    };
    return writeNodeState(host, target, state);
  };
  const interrupted = () => options.signal?.aborted === true;
  const staging = `${dirname(path)}/.${basename(path)}.ctrdbg-new`;
  let step: SwapStep = 'upload';
  try {
    await pending('upload');
    if (onDisk !== options.sha256) {
      log.step(`uploading ${basename(options.localBinary)} → ${staging}`);
      await host.upload(options.localBinary, staging, {
        sudo: true,
        mode: 0o755,
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.onProgress ? { onProgress: (p) => options.onProgress?.(p.sent, p.total) } : {}),
      });
    }
    if (interrupted()) throw interruptedError('interrupted');
    step = 'swap';
    await pending('swap');
    log.step(`swapping it into place (${path})`);
    if (onDisk !== options.sha256)
      await host.execChecked(`mv -f ${shellQuote(staging)} ${shellQuote(path)}`, { sudo: true });
    const level = await service.setLogLevel(wantLevel);
    if (level.changed) log.step(`log level ${wantLevel ?? 'default'} (${level.path})`);
    if (interrupted()) throw interruptedError('interrupted');
  } catch (error) {
    // Before the restart the old daemon still runs: putting its binary back is all a rollback needs.
    const reason = error instanceof Error ? error : new Error(String(error));
    log.warn(
      `${interrupted() ? 'interrupted' : 'failed'} at the ${step} step: putting back the binary that was running (nothing was restarted)`,
    );
    await host.exec(`rm -f ${shellQuote(staging)}`, { sudo: true }).catch(() => undefined);
    const pid = await putBack(host, target, state, previous, log, { restart: false });
    await settle(host, target, state, {
      outcome: 'rolled-back',
      runningSha256: previous.sha256,
      ...(interrupted() ? { interruptedAt: step } : { failedAt: step, message: reason.message }),
    });
    throw new SwapUndone(step, interrupted(), reason, pid);
  }

  // From here the restart is carried through whatever happens: stopping half way would leave no containerd.
  step = 'restart';
  await pending('restart');
  const logMark = await service.logMark().catch(() => undefined);
  log.step(`restarting containerd (${service.description})`);
  let pidAfter: number;
  try {
    await service.restart();
    const wasInterrupted = interrupted();
    step = 'verify';
    await pending('verify');
    log.step('verifying the new containerd (socket, /proc/PID/exe sha256)');
    pidAfter = await verifyRunning(host, target, options.sha256);
    if (wasInterrupted || interrupted())
      log.warn(
        `interrupted during the ${wasInterrupted ? 'restart' : 'verify'} step: the restart had begun, so ctrdbg finished it; the new containerd is verified (pid ${pidAfter}). Run \`ctrdbg restore ${target.spec}\` to go back.`,
      );
  } catch (error) {
    const reason = error instanceof Error ? error : new Error(String(error));
    const tail = await service.recentLog(6, logMark).catch(() => '');
    log.warn(
      `the new containerd did not come up (${reason.message}); putting back the binary that was running`,
    );
    const pid = await putBack(host, target, state, previous, log, { restart: true });
    await settle(host, target, state, {
      outcome: 'rolled-back',
      runningSha256: previous.sha256,
      failedAt: step,
      message: reason.message,
    });
    throw nodeError(
      `The debug containerd did not come up on ${target.endpoint.label}: ${reason.message}. The binary that was running before was put back and runs again (pid ${pid}).`,
      {
        hint: `Check the build matches the node (arch, version, config).${tail.trim() ? ` containerd's log from this start ends with: ${tail.trim().split('\n').slice(-3).join(' | ')}` : ''}`,
      },
    );
  }
  state.installed = {
    sha256: options.sha256,
    version: options.version,
    installedAt: new Date().toISOString(),
    manifest: options.manifest ?? null,
  };
  if (wantLevel) state.logLevel = { path: (await service.setLogLevel(wantLevel)).path, level: wantLevel };
  else delete state.logLevel;
  await settle(host, target, state, {
    outcome: 'installed',
    runningSha256: options.sha256,
    ...(interrupted() ? { interruptedAt: 'restart' as const } : {}),
  });
  return {
    pidBefore: probe.pid,
    pidAfter,
    binary: path,
    sha256: options.sha256,
    backedUp,
    restarted: true,
    unchanged: false,
    ...(repaired ? { repaired } : {}),
  };
}

/** Ends a swap: `pending` cleared, `current` written, in one state write. */
async function settle(
  host: RemoteHost,
  target: Target,
  state: NodeState,
  last: Omit<NonNullable<NodeState['current']>, 'at'>,
): Promise<void> {
  delete state.pending;
  state.current = { ...last, at: new Date().toISOString() };
  await writeNodeState(host, target, state);
}

/** Waits for the socket, then returns the main PID once its image has the expected sha256. */
async function verifyRunning(host: RemoteHost, target: Target, sha256: string): Promise<number> {
  const service = serviceControl(host, target.service);
  if (!(await waitServing(host, target))) throw new Error('its socket did not answer within 30 s');
  const pid = await service.mainPid();
  if (!pid) throw new Error('the service reports no main PID');
  const running = await remoteSha256(host, `/proc/${pid}/exe`);
  if (running !== sha256)
    throw new Error(`PID ${pid} runs a binary with sha256 ${running ?? 'unknown'}, not ${sha256}`);
  return pid;
}

/** Restarts and returns the new main PID once its image has the expected sha256 and the socket answers. */
export async function restartAndVerify(host: RemoteHost, target: Target, sha256: string): Promise<number> {
  await serviceControl(host, target.service).restart();
  return verifyRunning(host, target, sha256);
}

/**
 * Puts the binary that was running before a swap back on disk (from the original's backup or the kept copy)
 * with its log level, restarts when asked (or when what runs is not it), and verifies it serves.
 */
async function putBack(
  host: RemoteHost,
  target: Target,
  state: NodeState,
  previous: NonNullable<NodeState['pending']>['previous'],
  log: Logger,
  options: { restart: boolean },
): Promise<number> {
  const service = serviceControl(host, target.service);
  const source =
    previous.sha256 === state.original?.sha256
      ? (state.original?.backup ?? backupPath(target))
      : previousPath(target);
  if ((await remoteSha256(host, previous.path)) !== previous.sha256) {
    if ((await remoteSha256(host, source)) !== previous.sha256)
      throw nodeError(
        `Cannot roll back: the copy ${source} of the binary that ran before is missing or damaged.`,
        {
          hint: `Run \`ctrdbg restore ${target.spec}\` to put the node's original containerd back.`,
        },
      );
    await copyAtomically(host, source, previous.path);
  }
  await service.setLogLevel(previous.logLevel);
  const pid = await service.mainPid();
  const running = pid ? await remoteSha256(host, `/proc/${pid}/exe`) : undefined;
  try {
    if (options.restart || running !== previous.sha256) {
      log.step('restarting the containerd that ran before');
      return await restartAndVerify(host, target, previous.sha256);
    }
    return await verifyRunning(host, target, previous.sha256);
  } catch (error) {
    // Last resort: make sure *something* runs.
    await service.start().catch(() => {});
    throw nodeError(
      `Rolling back to the containerd that ran before failed too: ${(error as Error).message}`,
      {
        hint: `Log in to the node and check ${target.service.kind === 'systemd' ? `systemctl status ${target.service.unit}` : 'the lab service'}.`,
      },
    );
  }
}

/**
 * A swap that an earlier ctrdbg never finished (it was killed, or lost the node): find what runs and make the
 * state say so. The new binary running and serving is adopted; otherwise the binary from before is put back and
 * verified. Returns a sentence for the user, or undefined when nothing was pending.
 */
export async function repairInterruptedSwap(
  host: RemoteHost,
  target: Target,
  log: Logger,
): Promise<string | undefined> {
  const state = await readNodeState(host, target);
  const pending = state.pending;
  if (!pending) return undefined;
  // A pending record from before this format (no `previous`) can only be undone towards the original.
  const previous =
    pending.previous ??
    (state.original
      ? { sha256: state.original.sha256, path: state.original.path, version: state.original.version }
      : undefined);
  log.warn(
    `an earlier setup stopped at its ${pending.step} step (${pending.startedAt}); repairing the node first`,
  );
  const service = serviceControl(host, target.service);
  const pid = await service.mainPid();
  const running = pid ? await remoteSha256(host, `/proc/${pid}/exe`) : undefined;
  const serving = pid ? await waitServing(host, target, 10_000) : false;
  await host
    .exec(
      `rm -f ${shellQuote(`${dirname(previous?.path ?? '/')}/.${basename(previous?.path ?? 'x')}.ctrdbg-new`)}`,
      { sudo: true },
    )
    .catch(() => undefined);
  if (running === pending.sha256 && serving) {
    state.installed = {
      sha256: pending.sha256,
      version: pending.install?.version ?? '',
      installedAt: new Date().toISOString(),
      manifest: pending.install?.manifest ?? null,
    };
    if (pending.install?.logLevel)
      state.logLevel = {
        path: (await service.setLogLevel(pending.install.logLevel)).path,
        level: pending.install.logLevel,
      };
    await settle(host, target, state, {
      outcome: 'repaired',
      runningSha256: pending.sha256,
      message: 'the new binary was running: adopted',
    });
    return `the debug build from the interrupted setup was running and serving (pid ${pid}): recorded it as installed`;
  }
  if (!previous)
    throw nodeError('An interrupted setup left no record of the binary that ran before.', {
      hint: "Reinstall the node's containerd package.",
    });
  const putPid = await putBack(host, target, state, previous, log, {
    restart: running !== previous.sha256 || !serving,
  });
  if (previous.sha256 !== state.installed?.sha256 && previous.sha256 === state.original?.sha256)
    delete state.installed;
  await settle(host, target, state, {
    outcome: 'repaired',
    runningSha256: previous.sha256,
    message: 'the binary from before was put back',
  });
  return `put back the binary that ran before the interrupted setup (pid ${putPid})`;
}

export interface RestoreResult {
  /** false when ctrdbg never replaced containerd (only its shim): containerd was left as it runs. */
  containerdChanged: boolean;
  restored: boolean;
  /** ctrdbg never replaced anything on this node (containerd nor shim): nothing was put back or restarted. */
  nothingToRestore: boolean;
  /** The original's path and sha256 (or what runs, when containerd was never changed). */
  path: string;
  sha256: string;
  /** containerd's main pid after the restore (0: not running). */
  pid: number;
  logLevelRemoved: boolean;
  purged: string[];
  /** The runc shim, when `setup --with-shim` ever replaced it: its original is back, byte-identical. */
  shim?: ShimRestoreResult;
}

/**
 * Puts the original binaries back (byte-identical, checked): the runc shim when ctrdbg replaced it (no restart:
 * running shims keep theirs), and containerd (its log level undone, restarted, verified).
 */
export async function restoreOriginal(
  host: RemoteHost,
  target: Target,
  options: { purge?: boolean },
  log: Logger,
): Promise<RestoreResult> {
  const service = serviceControl(host, target.service);
  const pidBefore = await service.mainPid();
  if (pidBefore) {
    const tracer = await host.exec(`awk '/^TracerPid:/{print $2}' /proc/${pidBefore}/status`, { sudo: true });
    const tracerPid = Number(tracer.stdout.trim()) || 0;
    if (tracerPid) {
      throw nodeError(
        `containerd (pid ${pidBefore}) is being traced by pid ${tracerPid}: restoring would restart it under the debugger.`,
        {
          hint: 'End that debugging session first (Ctrl-C in `ctrdbg attach`, or `exit` in dlv), then run restore again.',
        },
      );
    }
  }
  if ((await readNodeState(host, target)).pending) await repairInterruptedSwap(host, target, log);
  const shim = await restoreShim(host, target, log);
  const state = await readNodeState(host, target);
  const purged: string[] = [];
  if (!state.original) {
    // ctrdbg never swapped containerd here (at most the shim, a setup cut short before containerd's swap):
    // restoring it is done already, a no-op that says so, not a failure.
    const pid = await service.mainPid();
    const exe = pid ? (await host.exec(`readlink /proc/${pid}/exe`, { sudo: true })).stdout.trim() : '';
    if (options.purge) {
      const bin = `${target.node.ctrdbgDir}/bin`;
      await host.execChecked(`rm -rf ${shellQuote(bin)}`, { sudo: true });
      purged.push(bin);
      delete state.dlv;
      delete state.agent;
      await writeNodeState(host, target, state);
    }
    return {
      containerdChanged: false,
      restored: false,
      nothingToRestore: !shim,
      path: exe,
      sha256: (pid ? await remoteSha256(host, `/proc/${pid}/exe`) : undefined) ?? '',
      pid,
      logLevelRemoved: false,
      purged,
      ...(shim ? { shim } : {}),
    };
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
    await copyAtomically(host, original.backup, original.path);
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
  state.current = { outcome: 'restored', at: new Date().toISOString(), runningSha256: original.sha256 };
  await host.exec(`rm -f ${shellQuote(previousPath(target))}`, { sudo: true });
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
    containerdChanged: true,
    restored: onDisk !== original.sha256,
    nothingToRestore: false,
    path: original.path,
    sha256: original.sha256,
    pid,
    logLevelRemoved: level.changed,
    purged,
    ...(shim ? { shim } : {}),
  };
}
