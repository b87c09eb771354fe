/**
 * ctrdbg's own tools on the node: the agent (built here for the node's arch, cached by source hash) and the
 * dlv setup installed. What runs them is src/delve/nodeDebugger.ts.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { cacheDir, projectRoot } from '../config.js';
import { environmentError, nodeError } from '../errors.js';
import type { RemoteHost } from '../nodes/remoteHost.js';
import type { Target } from '../nodes/target.js';
import { run } from '../util/exec.js';
import { exists, sha256File } from '../util/fsx.js';
import type { Logger } from '../util/output.js';
import { shellJoin } from '../util/shell.js';
import { checkRunsOnNode } from './nodeBinaryGuard.js';
import { binDir, readNodeState, writeNodeState } from './nodeState.js';
import { remoteSha256 } from './probe.js';

/** The node agent's Go module (watchdog, relay, cleanup). */
export const agentSourceDir = join(projectRoot, 'node-agent');

/** Builds the agent for the node's arch (cached by source hash). */
export async function buildAgent(goArch: string): Promise<string> {
  const src = agentSourceDir;
  const files = (await readdir(src)).filter(
    (f) => f === 'go.mod' || (f.endsWith('.go') && !f.endsWith('_test.go')),
  );
  const digest = createHash('sha256');
  for (const file of files.sort()) digest.update(file).update(await readFile(join(src, file)));
  const hash = digest.digest('hex').slice(0, 16);
  const dir = join(cacheDir(), 'agent', `${goArch}-${hash}`);
  const out = join(dir, 'ctrdbg-agent');
  if (await exists(out)) return out;
  await mkdir(dir, { recursive: true });
  const result = await run('go', ['build', '-trimpath', '-o', `${out}.tmp`, '.'], {
    cwd: src,
    env: {
      CGO_ENABLED: '0',
      GOOS: 'linux',
      GOARCH: goArch,
      GO111MODULE: 'on',
      GOFLAGS: '-mod=mod',
      GOPROXY: 'off',
    },
    timeout: 300_000,
  });
  if (result.exitCode !== 0)
    throw environmentError(`Building ctrdbg-agent for ${goArch} failed: ${result.stderr.trim()}`, {
      hint: 'Install golang-go.',
    });
  await rename(`${out}.tmp`, out);
  return out;
}

/** Puts the agent on the node if it is missing or different; returns its path there. */
export async function ensureAgent(
  host: RemoteHost,
  target: Target,
  goArch: string,
  log: Logger,
): Promise<string> {
  const local = await buildAgent(goArch);
  const sha = await sha256File(local);
  const path = `${binDir(target)}/ctrdbg-agent`;
  if ((await remoteSha256(host, path)) !== sha) {
    await checkRunsOnNode(host, target, goArch, local, {
      what: 'ctrdbg-agent',
      hint: `The agent is cross-built with CGO_ENABLED=0 GOOS=linux GOARCH=${goArch}; remove ${dirname(local)} and try again, and report it if it happens again.`,
    });
    log.step(`installing ctrdbg-agent on the node (${path})`);
    await host.execChecked(shellJoin(['mkdir', '-p', binDir(target)]), { sudo: true });
    await host.upload(local, path, { sudo: true, mode: 0o755 });
    const state = await readNodeState(host, target);
    state.agent = { path, sha256: sha };
    await writeNodeState(host, target, state);
  }
  return path;
}

/** The dlv the node has (from setup), or a clear error. */
export async function nodeDlvPath(host: RemoteHost, target: Target): Promise<string> {
  const state = await readNodeState(host, target);
  const path = state.dlv?.path ?? `${binDir(target)}/dlv`;
  if (!(await remoteSha256(host, path))) {
    throw nodeError(`There is no dlv on ${target.endpoint.label} (${path}).`, {
      hint: `Run: ctrdbg setup ${target.spec}`,
    });
  }
  return path;
}
