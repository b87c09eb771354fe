/**
 * Integration tests share one real lab node (sshd on 127.0.0.1, the lab user with sudo, containerd),
 * kept in its own lab root so a developer's own labs are never touched. It is brought up once here
 * through the real CLI and brought down at the end.
 */

import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ctrdbg } from '../helpers/cli.js';

/** Overridable so two runs on one machine (e.g. a slow suite under development) never share a lab. */
export const TEST_LAB_ROOT = process.env.CTRDBG_TEST_LAB_ROOT || '/var/lib/ctrdbg/test-labs';
/**
 * Builds are cached across runs (Go's own cache makes a rebuild a link step); config is per run. Overridable
 * like the lab root, so two runs on one machine never build into one cache at once.
 */
export const TEST_CACHE_DIR = process.env.CTRDBG_TEST_CACHE_DIR || '/var/lib/ctrdbg/test-cache';

declare module 'vitest' {
  export interface ProvidedContext {
    labRoot: string;
    cacheDir: string;
    configDir: string;
  }
}

export async function setup(project: TestProject): Promise<() => Promise<void>> {
  const configDir = await mkdtemp(join(tmpdir(), 'ctrdbg-test-config-'));
  process.env.CTRDBG_LAB_ROOT = TEST_LAB_ROOT;
  project.provide('labRoot', TEST_LAB_ROOT);
  project.provide('cacheDir', TEST_CACHE_DIR);
  project.provide('configDir', configDir);
  const env = {
    CTRDBG_LAB_ROOT: TEST_LAB_ROOT,
    CTRDBG_CACHE_DIR: TEST_CACHE_DIR,
    CTRDBG_CONFIG_DIR: configDir,
  };
  // A lab that was already up (another run in progress, or a developer's) is left as it was.
  const before = await ctrdbg(['lab', 'status'], { env });
  const up = await ctrdbg(['lab', 'up'], { env });
  if (up.exitCode !== 0) throw new Error(`lab up failed (exit ${up.exitCode}):\n${up.stdout}\n${up.stderr}`);
  return async () => {
    if (before.exitCode === 0) return;
    const down = await ctrdbg(['lab', 'down'], { env });
    if (down.exitCode !== 0) process.stderr.write(`lab down failed:\n${down.stdout}\n${down.stderr}\n`);
  };
}
