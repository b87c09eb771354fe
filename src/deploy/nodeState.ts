/**
 * What ctrdbg changed on a node, kept on the node itself (`<ctrdbgDir>/state.json`, root-owned), so any
 * client — or a later one after an interrupted setup — can restore it.
 */
import { nodeError } from '../errors.js';
import type { RemoteHost } from '../nodes/remoteHost.js';
import type { Target } from '../nodes/target.js';
import { shellQuote } from '../util/shell.js';

export interface NodeState {
  format: 1;
  /** The binary the node had before ctrdbg touched it; backed up once and never overwritten. */
  original?: { path: string; sha256: string; version: string; backup: string; savedAt: string };
  /** The debug binary ctrdbg installed last. */
  installed?: {
    sha256: string;
    version: string;
    installedAt: string;
    manifest?: Record<string, unknown> | null;
  };
  /**
   * Set while a binary swap is under way. A setup that ends in any way other than being killed clears it; one
   * left behind (ctrdbg SIGKILLed, the laptop gone) is repaired by the next setup or restore (see
   * repairInterruptedSwap): `previous` says what ran before, `install` what to record if the new one stays.
   */
  pending?: {
    step: SwapStep;
    sha256: string;
    startedAt: string;
    previous: { sha256: string; path: string; version: string; logLevel?: string };
    install: { version: string; manifest?: Record<string, unknown> | null; logLevel?: string };
  };
  /** What runs now (verified by the last setup or restore), and how it came to be. */
  current?: {
    outcome: 'installed' | 'rolled-back' | 'unchanged' | 'repaired' | 'restored';
    at: string;
    runningSha256: string;
    /** The step an interrupt (Ctrl-C) or error arrived at. */
    interruptedAt?: SwapStep;
    failedAt?: SwapStep;
    message?: string;
  };
  logLevel?: { path: string; level: string };
  /** Synced source roots; `created` = the directory did not exist on the node before ctrdbg synced it. */
  source?: { roots: { path: string; created: boolean }[]; syncedAt: string; files: number; bytes: number };
  /** The dlv setup installed; `origin` says which Delve and why ("built for linux/arm64 from …"). */
  dlv?: { path: string; version: string; sha256?: string; origin?: string };
  agent?: { path: string; sha256: string };
  /** containerd-shim-runc-v2, when `setup --with-shim` ever replaced it (src/deploy/shimSwap.ts). */
  shim?: ShimState;
}

/**
 * The runc shim's own record, kept like containerd's: the original backed up once, what ctrdbg installed, a
 * swap under way, and what is on disk now. Shims that run keep the binary they started with; `current`
 * describes the file new pods get.
 */
export interface ShimState {
  /** The file containerd runs (src/deploy/shimLocate.ts) and how it was found. */
  path: string;
  why: string;
  original?: { sha256: string; version: string; backup: string; savedAt: string };
  installed?: {
    sha256: string;
    version: string;
    installedAt: string;
    manifest?: Record<string, unknown> | null;
  };
  pending?: {
    step: ShimSwapStep;
    sha256: string;
    startedAt: string;
    previous: { sha256: string };
    install: { version: string; manifest?: Record<string, unknown> | null };
  };
  current?: {
    outcome: 'installed' | 'rolled-back' | 'unchanged' | 'repaired' | 'restored';
    at: string;
    sha256: string;
    /** The file on disk is ctrdbg's debug build (else the node's original or another binary). */
    debug: boolean;
    interruptedAt?: ShimSwapStep;
    failedAt?: ShimSwapStep;
    message?: string;
  };
}

/** The steps of a binary swap, in order. */
export const SWAP_STEPS = ['upload', 'swap', 'restart', 'verify'] as const;
export type SwapStep = (typeof SWAP_STEPS)[number];
/** A shim swap has no restart: containerd starts the new file for the next pod. */
export const SHIM_SWAP_STEPS = ['upload', 'swap', 'verify'] as const;
export type ShimSwapStep = (typeof SHIM_SWAP_STEPS)[number];

export const statePath = (target: Target) => `${target.node.ctrdbgDir}/state.json`;
export const backupPath = (target: Target) => `${target.node.ctrdbgDir}/backup/containerd.orig`;
/** The binary that was running when a setup began (when it is not the original), kept for a rollback. */
export const previousPath = (target: Target) => `${target.node.ctrdbgDir}/backup/containerd.previous`;
export const binDir = (target: Target) => `${target.node.ctrdbgDir}/bin`;
export const shimBackupPath = (target: Target) =>
  `${target.node.ctrdbgDir}/backup/containerd-shim-runc-v2.orig`;
export const shimPreviousPath = (target: Target) =>
  `${target.node.ctrdbgDir}/backup/containerd-shim-runc-v2.previous`;

export async function readNodeState(host: RemoteHost, target: Target): Promise<NodeState> {
  const r = await host.exec(`cat ${shellQuote(statePath(target))}`, { sudo: true });
  if (r.code !== 0) return { format: 1 };
  try {
    return JSON.parse(r.stdout) as NodeState;
  } catch (cause) {
    throw nodeError(`ctrdbg's state file on the node is damaged: ${statePath(target)}.`, {
      cause,
      hint: 'Inspect it by hand; the original binary is kept beside it in backup/.',
    });
  }
}

/** Written through a temporary file and a rename, so a cut connection never leaves half a file. */
export async function writeNodeState(host: RemoteHost, target: Target, state: NodeState): Promise<void> {
  const path = statePath(target);
  const dir = target.node.ctrdbgDir;
  await host.execChecked(
    `mkdir -p ${shellQuote(dir)} && chmod 0755 ${shellQuote(dir)} && cat > ${shellQuote(`${path}.tmp`)} && chmod 0644 ${shellQuote(`${path}.tmp`)} && mv -f ${shellQuote(`${path}.tmp`)} ${shellQuote(path)}`,
    { sudo: true, stdin: `${JSON.stringify(state, null, 2)}\n` },
  );
}
