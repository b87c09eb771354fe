/**
 * Building a debuggable containerd, end to end: the source tree detected, the toolchain chosen, go.mod
 * checked, the build run, the binary verified, the manifest written. `ctrdbg build` and `ctrdbg setup` call it.
 */
import { join } from 'node:path';
import { cacheDir, packageVersion } from '../config.js';
import type { Logger } from '../util/output.js';
import { inspectBinary } from './debugInfo.js';
import {
  type Arch,
  type BuildProgress,
  checkTreeGo,
  detectSourceTree,
  localArch,
  normalizeArch,
  planBuild,
  runBuild,
} from './goBuild.js';
import {
  type BuildManifest,
  type ContainerdVersion,
  gitState,
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  runContainerdVersion,
  writeManifest,
} from './manifest.js';
import { describeTool, type LaneName, resolveTool } from './toolchain.js';

export interface BuildContainerdOptions {
  src: string | undefined;
  arch?: string;
  /** Defaults to `<cacheDir>/builds/<arch>`. */
  out?: string;
  logger: Logger;
  progress?: () => BuildProgress;
  timeoutMs?: number;
  /** --go / --dlv: see src/debugbuild/toolchain.ts for the order ctrdbg picks them in. */
  go?: string;
  dlv?: string;
}

export interface BuildResult {
  binary: string;
  manifestPath: string;
  manifest: BuildManifest;
}

/** `<cache>/builds/<arch>`; the trixie lane's builds (the CRI lab's 1.7) keep to `<arch>-trixie`. */
export function defaultOutDir(arch: Arch, lane?: LaneName): string {
  return join(cacheDir(), 'builds', lane === 'trixie' ? `${arch}-trixie` : arch);
}

const VERSION_KEY = 'github.com/containerd/containerd/version.Version';
const REVISION_KEY = 'github.com/containerd/containerd/version.Revision';

/**
 * Builds, verifies and writes the manifest. Returns even when the binary is not debuggable (the manifest
 * records why); callers decide whether that is fatal. `setup` calls this directly.
 */
export async function buildContainerd(options: BuildContainerdOptions): Promise<BuildResult> {
  const arch = normalizeArch(options.arch);
  const tree = await detectSourceTree(options.src);
  const lane = tree.kind === 'gopath' ? tree.marker.toolchain : undefined;
  const go = await resolveTool('go', { flag: options.go, lane });
  options.logger.step(`go: ${describeTool(go)}`);
  await checkTreeGo(tree, go, options.logger);
  // Only for the verification's "does this Delve support that Go" line; a missing dlv does not stop a build.
  const dlv = await resolveTool('dlv', { flag: options.dlv, lane }).catch(() => undefined);
  const plan = planBuild(tree, {
    arch,
    outDir: options.out ?? defaultOutDir(arch, lane),
    ...(go.source === 'path' ? {} : { go: go.path }),
    ...(go.version ? { goVersion: go.version } : {}),
  });
  options.logger.info(
    `Building containerd for linux/${arch} from ${tree.kind === 'checkout' ? 'the checkout' : 'the lab tree'} ${tree.root}`,
  );
  const builtAt = new Date().toISOString();
  const run = await runBuild(plan, {
    logger: options.logger,
    progress: options.progress,
    timeoutMs: options.timeoutMs,
  });

  const [verification, git] = await Promise.all([
    inspectBinary(plan.outputBinary, { expectedArch: arch, delveVersion: dlv?.version ?? null }),
    gitState(tree.root),
  ]);

  let containerd: ContainerdVersion | undefined;
  if (arch === localArch()) containerd = await runContainerdVersion(plan.outputBinary);
  if (!containerd && tree.kind === 'gopath') {
    const version = tree.marker.ldflags[VERSION_KEY] ?? tree.marker.version ?? null;
    containerd = {
      version,
      revision: tree.marker.ldflags[REVISION_KEY] ?? null,
      line: null,
      source: 'ldflags',
    };
  }
  if (!containerd && git?.describe) {
    containerd = { version: git.describe, revision: git.commit, line: null, source: 'git-describe' };
  }
  containerd ??= { version: null, revision: null, line: null, source: 'unknown' };

  const manifest: BuildManifest = {
    format: MANIFEST_FORMAT,
    formatVersion: MANIFEST_VERSION,
    ctrdbgVersion: packageVersion(),
    binary: {
      path: plan.outputBinary,
      fileName: 'containerd',
      sha256: verification.sha256,
      size: verification.size,
      arch: verification.arch,
      goVersion: verification.goVersion,
      buildId: verification.buildId,
    },
    containerd,
    source: {
      kind: tree.kind,
      root: tree.root,
      sourceRoots: tree.kind === 'gopath' ? tree.marker.sourceRoots : [tree.root],
      package:
        tree.kind === 'gopath' ? tree.marker.package : 'github.com/containerd/containerd/cmd/containerd',
      git: git ?? null,
    },
    command: { display: plan.display, file: plan.file, args: plan.args, cwd: plan.cwd, env: plan.env },
    toolchain: {
      go: { path: go.path, version: go.version ?? null, source: go.source, why: go.why },
      ...(dlv
        ? { dlv: { path: dlv.path, version: dlv.version ?? null, source: dlv.source, why: dlv.why } }
        : {}),
    },
    builtAt,
    durationMs: run.durationMs,
    verification,
  };
  const manifestPath = await writeManifest(manifest);
  return { binary: plan.outputBinary, manifestPath, manifest };
}
