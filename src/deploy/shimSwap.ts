/**
 * Swapping containerd-shim-runc-v2 on a node (`setup --with-shim`), under the rules containerd's own swap
 * follows (binarySwap.ts): the original backed up once and never overwritten, the new file uploaded under a
 * temporary name and checked by sha256 on the node, renamed into place (atomic), then verified: the file at the
 * path has the uploaded sha256 and runs on the node (`-v`). The node state says which step is under way.
 *
 * A shim needs no restart: containerd starts the file at that path for each new pod, while every shim already
 * running keeps the binary it started with until its pod ends. So the whole shim swap happens before
 * containerd's restart, and any ending of it other than success — Ctrl-C at any step, an error, a shim that does
 * not run — puts back the file that was there, checked by sha256. A setup killed outright is repaired by the next
 * setup or restore: the new file is kept if it is in place and runs, else the one from before is put back.
 */
import { basename, dirname } from 'node:path';
import { parseShimVersion } from '../debugbuild/manifest.js';
import { interruptedError, nodeError } from '../errors.js';
import type { RemoteHost } from '../nodes/remoteHost.js';
import type { Target } from '../nodes/target.js';
import type { Logger } from '../util/output.js';
import { shellQuote } from '../util/shell.js';
import {
  type NodeState,
  readNodeState,
  type ShimState,
  type ShimSwapStep,
  shimBackupPath,
  shimPreviousPath,
  writeNodeState,
} from './nodeState.js';
import { remoteSha256 } from './probe.js';
import { copyAtomically } from './remoteFiles.js';
import { type RunningShim, runningShims, type ShimLocation } from './shimLocate.js';

export interface ShimInstallOptions {
  location: ShimLocation;
  localBinary: string;
  sha256: string;
  version: string;
  manifest?: Record<string, unknown> | null;
  onProgress?: (sent: number, total: number) => void;
  /** Ctrl-C: the shim that was there is put back at the next safe point. */
  signal?: AbortSignal;
}

export interface ShimSwapResult {
  path: string;
  why: string;
  sha256: string;
  /** What was at the path before this swap (the original, or an earlier debug build). */
  previousSha256: string;
  backedUp: boolean;
  unchanged: boolean;
  /** The shim's `-v` on the node, on one line. */
  version: string;
  /** Shims running when the swap ended: those started before it keep their binary. */
  running: RunningShim[];
  /** An interrupted shim swap from an earlier setup that this one repaired first. */
  repaired?: string;
  /** The install record before this swap, for putting it back when the rest of setup fails. */
  installedBefore?: ShimState['installed'];
}

/** A shim swap that did not end with the new file: the one from before is in place, checked by sha256. */
export class ShimSwapUndone extends Error {
  constructor(
    readonly step: ShimSwapStep,
    readonly interrupted: boolean,
    readonly reason: Error,
  ) {
    super(reason.message);
  }
}

const stagingOf = (path: string) => `${dirname(path)}/.${basename(path)}.ctrdbg-new`;

/** Runs the shim's `-v` on the node: the proof that the file runs there. Returns its version on one line. */
async function shimRuns(host: RemoteHost, path: string): Promise<string> {
  const r = await host.exec(`${shellQuote(path)} -v`, { sudo: true, timeoutMs: 15_000 });
  const version = r.code === 0 ? parseShimVersion(r.stdout) : undefined;
  if (!version) {
    const said = (r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ');
    throw new Error(`\`${path} -v\` does not run on the node (exit ${r.code}${said ? `: ${said}` : ''})`);
  }
  return version.line ?? version.version ?? '';
}

async function settleShim(
  host: RemoteHost,
  target: Target,
  state: NodeState,
  shim: ShimState,
  last: Omit<NonNullable<ShimState['current']>, 'at' | 'debug'>,
): Promise<void> {
  delete shim.pending;
  shim.current = { ...last, debug: last.sha256 === shim.installed?.sha256, at: new Date().toISOString() };
  state.shim = shim;
  await writeNodeState(host, target, state);
}

export async function installShim(
  host: RemoteHost,
  target: Target,
  options: ShimInstallOptions,
  log: Logger,
): Promise<ShimSwapResult> {
  let state = await readNodeState(host, target);
  const repaired = state.shim?.pending ? await repairInterruptedShimSwap(host, target, log) : undefined;
  if (repaired) state = await readNodeState(host, target);
  const { path, why } = options.location;
  // containerd runs another file than the one ctrdbg replaced before: fine once that one is the original again.
  if (
    state.shim?.original &&
    state.shim.path !== path &&
    !state.shim.installed &&
    (await remoteSha256(host, state.shim.path)) === state.shim.original.sha256
  ) {
    log.step(`containerd now runs the shim at ${path}; the one at ${state.shim.path} is its original again`);
    delete state.shim;
  }
  if (state.shim?.original && state.shim.path !== path)
    throw nodeError(
      `ctrdbg replaced the shim at ${state.shim.path} before, but containerd now runs ${path} (${why}).`,
      {
        hint: `Run \`ctrdbg restore ${target.spec}\` first (it puts the original back at ${state.shim.path}), then setup again.`,
      },
    );
  const shim: ShimState = { ...(state.shim ?? {}), path, why };
  const installedBefore = shim.installed;
  const onDisk = await remoteSha256(host, path);
  if (!onDisk)
    throw nodeError(`Cannot read ${path} on the node.`, { hint: 'Check the node (permissions, disk).' });

  // The original, once: without a record, the file on disk now is the node's own.
  const backup = shimBackupPath(target);
  let backedUp = false;
  if (!(shim.original && (await remoteSha256(host, backup)) === shim.original.sha256)) {
    if (shim.installed && onDisk === shim.installed.sha256 && !shim.original)
      throw nodeError(`The node runs ctrdbg's debug shim at ${path} but its original was never backed up.`, {
        hint: "Reinstall the node's containerd package (it brings the shim), then run setup again.",
      });
    const version = await shimRuns(host, path).catch(() => 'unknown');
    log.step(`backing up the original ${path} → ${backup}`);
    await copyAtomically(host, path, backup);
    if ((await remoteSha256(host, backup)) !== onDisk)
      throw nodeError(`The backup at ${backup} does not match ${path}.`);
    shim.original = { sha256: onDisk, version, backup, savedAt: new Date().toISOString() };
    state.shim = shim;
    await writeNodeState(host, target, state);
    backedUp = true;
  }
  const original = shim.original as NonNullable<ShimState['original']>;

  if (onDisk === options.sha256) {
    shim.installed ??= {
      sha256: options.sha256,
      version: options.version,
      installedAt: new Date().toISOString(),
      manifest: options.manifest ?? null,
    };
    await settleShim(host, target, state, shim, { outcome: 'unchanged', sha256: onDisk });
    return {
      path,
      why,
      sha256: onDisk,
      previousSha256: onDisk,
      backedUp,
      unchanged: true,
      version: options.version,
      running: await runningShims(host, path),
      ...(repaired ? { repaired } : {}),
      ...(installedBefore ? { installedBefore } : {}),
    };
  }

  // What is there now is what an undo puts back: keep a copy unless it is the original (backed up already).
  if (onDisk !== original.sha256 && (await remoteSha256(host, shimPreviousPath(target))) !== onDisk) {
    log.step(`keeping the shim that is there for a rollback → ${shimPreviousPath(target)}`);
    await copyAtomically(host, path, shimPreviousPath(target));
  }
  const pending = (step: ShimSwapStep) => {
    shim.pending = {
      step,
      sha256: options.sha256,
      startedAt: shim.pending?.startedAt ?? new Date().toISOString(),
      previous: { sha256: onDisk },
      install: { version: options.version, manifest: options.manifest ?? null },
    };
    state.shim = shim;
    return writeNodeState(host, target, state);
  };
  const interrupted = () => options.signal?.aborted === true;
  const staging = stagingOf(path);
  let step: ShimSwapStep = 'upload';
  let version: string;
  try {
    await pending('upload');
    log.step(`uploading the debug shim ${basename(options.localBinary)} → ${staging}`);
    await host.upload(options.localBinary, staging, {
      sudo: true,
      mode: 0o755,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onProgress: (p) => options.onProgress?.(p.sent, p.total) } : {}),
    });
    if (interrupted()) throw interruptedError('interrupted');
    step = 'swap';
    await pending('swap');
    log.step(`swapping the shim into place (${path})`);
    await host.execChecked(`mv -f ${shellQuote(staging)} ${shellQuote(path)}`, { sudo: true });
    if (interrupted()) throw interruptedError('interrupted');
    step = 'verify';
    await pending('verify');
    log.step('verifying the new shim (sha256 of the file, `-v` on the node)');
    const now = await remoteSha256(host, path);
    if (now !== options.sha256)
      throw new Error(`${path} has sha256 ${now ?? 'unreadable'}, not the uploaded ${options.sha256}`);
    version = await shimRuns(host, path);
    if (interrupted()) throw interruptedError('interrupted');
  } catch (error) {
    const reason = error instanceof Error ? error : new Error(String(error));
    log.warn(
      `${interrupted() ? 'interrupted' : 'failed'} at the shim's ${step} step: putting back the shim that was there`,
    );
    await host.exec(`rm -f ${shellQuote(staging)}`, { sudo: true }).catch(() => undefined);
    await putBackShimFile(host, target, shim, onDisk);
    await settleShim(host, target, state, shim, {
      outcome: 'rolled-back',
      sha256: onDisk,
      ...(interrupted() ? { interruptedAt: step } : { failedAt: step, message: reason.message }),
    });
    throw new ShimSwapUndone(step, interrupted(), reason);
  }
  shim.installed = {
    sha256: options.sha256,
    version,
    installedAt: new Date().toISOString(),
    manifest: options.manifest ?? null,
  };
  await settleShim(host, target, state, shim, { outcome: 'installed', sha256: options.sha256 });
  return {
    path,
    why,
    sha256: options.sha256,
    previousSha256: onDisk,
    backedUp,
    unchanged: false,
    version,
    running: await runningShims(host, path),
    ...(repaired ? { repaired } : {}),
    ...(installedBefore ? { installedBefore } : {}),
  };
}

/** Puts the file with `sha256` back at the shim's path, from the original's backup or the kept copy. */
async function putBackShimFile(
  host: RemoteHost,
  target: Target,
  shim: ShimState,
  sha256: string,
): Promise<void> {
  if ((await remoteSha256(host, shim.path)) === sha256) return;
  const source =
    sha256 === shim.original?.sha256
      ? (shim.original?.backup ?? shimBackupPath(target))
      : shimPreviousPath(target);
  if ((await remoteSha256(host, source)) !== sha256)
    throw nodeError(
      `Cannot put the shim back: the copy ${source} of the one that was there is missing or damaged.`,
      {
        hint: `Run \`ctrdbg restore ${target.spec}\` to put the node's original shim back.`,
      },
    );
  await copyAtomically(host, source, shim.path);
  if ((await remoteSha256(host, shim.path)) !== sha256)
    throw nodeError(`Putting the shim back at ${shim.path} failed: its sha256 is not ${sha256}.`, {
      hint: `Run \`ctrdbg restore ${target.spec}\`.`,
    });
}

/**
 * Undoes a shim swap that succeeded, because the rest of the setup (containerd's swap) did not: the shim that
 * was there before goes back, with its install record.
 */
export async function undoShimSwap(
  host: RemoteHost,
  target: Target,
  swap: ShimSwapResult,
  why: string,
  log: Logger,
): Promise<void> {
  if (swap.unchanged) return;
  const state = await readNodeState(host, target);
  const shim = state.shim;
  if (!shim) return;
  log.step(`putting back the shim that was there before (${why})`);
  await putBackShimFile(host, target, shim, swap.previousSha256);
  if (swap.installedBefore) shim.installed = swap.installedBefore;
  else delete shim.installed;
  await settleShim(host, target, state, shim, {
    outcome: 'rolled-back',
    sha256: swap.previousSha256,
    message: why,
  });
}

/** A shim swap an earlier ctrdbg never finished: the new file is kept if it is in place and runs. */
export async function repairInterruptedShimSwap(
  host: RemoteHost,
  target: Target,
  log: Logger,
): Promise<string | undefined> {
  const state = await readNodeState(host, target);
  const shim = state.shim;
  const pending = shim?.pending;
  if (!shim || !pending) return undefined;
  log.warn(
    `an earlier setup stopped at its shim's ${pending.step} step (${pending.startedAt}); repairing the shim first`,
  );
  // The staged file, and what an upload cut short leaves (RemoteHost.upload's temporary name beside it).
  const staged = stagingOf(shim.path);
  const uploads = `${dirname(staged)}/.${basename(staged)}.ctrdbg-upload-`;
  await host
    .exec(`rm -f ${shellQuote(staged)} ${shellQuote(uploads)}*`, { sudo: true })
    .catch(() => undefined);
  const onDisk = await remoteSha256(host, shim.path);
  const version =
    onDisk === pending.sha256 ? await shimRuns(host, shim.path).catch(() => undefined) : undefined;
  if (version) {
    shim.installed = {
      sha256: pending.sha256,
      version,
      installedAt: new Date().toISOString(),
      manifest: pending.install.manifest ?? null,
    };
    await settleShim(host, target, state, shim, {
      outcome: 'repaired',
      sha256: pending.sha256,
      message: 'the new shim was in place and runs: adopted',
    });
    return `the debug shim from the interrupted setup was in place and runs: recorded it as installed`;
  }
  await putBackShimFile(host, target, shim, pending.previous.sha256);
  await settleShim(host, target, state, shim, {
    outcome: 'repaired',
    sha256: pending.previous.sha256,
    message: 'the shim from before was put back',
  });
  return `put back the shim that was there before the interrupted setup (${shim.path})`;
}

export interface ShimRestoreResult {
  path: string;
  restored: boolean;
  sha256: string;
  running: RunningShim[];
}

/** Puts the original shim back, byte-identical (checked); undefined when ctrdbg never replaced it. */
export async function restoreShim(
  host: RemoteHost,
  target: Target,
  log: Logger,
): Promise<ShimRestoreResult | undefined> {
  if ((await readNodeState(host, target)).shim?.pending) await repairInterruptedShimSwap(host, target, log);
  const state = await readNodeState(host, target);
  const shim = state.shim;
  if (!shim?.original) return undefined;
  const original = shim.original;
  const backupSha = await remoteSha256(host, original.backup);
  if (backupSha !== original.sha256)
    throw nodeError(
      `The shim's backup ${original.backup} is missing or damaged (sha256 ${backupSha ?? 'unreadable'}, expected ${original.sha256}).`,
      { hint: "Reinstall the node's containerd package to get the original shim back." },
    );
  const onDisk = await remoteSha256(host, shim.path);
  if (onDisk !== original.sha256) {
    log.step(`putting the original shim back at ${shim.path}`);
    await copyAtomically(host, original.backup, shim.path);
    const now = await remoteSha256(host, shim.path);
    if (now !== original.sha256)
      throw nodeError(
        `Putting the original shim back at ${shim.path} failed: its sha256 is ${now ?? 'unreadable'}.`,
        {
          hint: `Copy ${original.backup} to ${shim.path} by hand.`,
        },
      );
  }
  delete shim.installed;
  await host.exec(`rm -f ${shellQuote(shimPreviousPath(target))}`, { sudo: true });
  await settleShim(host, target, state, shim, { outcome: 'restored', sha256: original.sha256 });
  return {
    path: shim.path,
    restored: onDisk !== original.sha256,
    sha256: original.sha256,
    running: await runningShims(host, shim.path),
  };
}
