/**
 * Building a debuggable containerd, end to end: the source tree detected, the toolchain chosen, go.mod
 * checked, the build run, the binary verified, the manifest written. `ctrdbg build` and `ctrdbg setup` call it.
 * With `withShim`, the runc shim (containerd-shim-runc-v2) is built from the same tree with the same Go and
 * verified the same way, with a manifest of its own.
 */
import { join } from 'node:path';
import { cacheDir, packageVersion } from '../config.js';
import type { Logger } from '../util/output.js';
import { inspectBinary } from './debugInfo.js';
import {
  type Arch,
  type BuildPlan,
  type BuildProgress,
  type BuiltBinary,
  checkTreeGo,
  detectSourceTree,
  localArch,
  normalizeArch,
  planBuild,
  runBuild,
  SHIM_BINARY,
  type SourceTree,
} from './goBuild.js';
import {
  type BuildManifest,
  type ContainerdVersion,
  gitState,
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  runContainerdVersion,
  runShimVersion,
  writeManifest,
} from './manifest.js';
import { describeTool, type LaneName, type ResolvedTool, resolveTool } from './toolchain.js';

export interface BuildContainerdOptions {
  src: string | undefined;
  arch?: string;
  /** Defaults to `<cacheDir>/builds/<arch>`. */
  out?: string;
  logger: Logger;
  progress?: (label: string) => BuildProgress;
  timeoutMs?: number;
  /** --go / --dlv: see src/debugbuild/toolchain.ts for the order ctrdbg picks them in. */
  go?: string;
  dlv?: string;
  /** Also build containerd-shim-runc-v2 (`--with-shim`); `shimOnly` builds nothing else. */
  withShim?: boolean;
  shimOnly?: boolean;
}

export interface BinaryBuild {
  binary: string;
  manifestPath: string;
  manifest: BuildManifest;
}

export interface BuildResult extends BinaryBuild {
  /** With `withShim`: the shim built from the same tree, verified the same way. */
  shim?: BinaryBuild;
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
  const context: BuildContext = { tree, arch, go, dlv, outDir: options.out ?? defaultOutDir(arch, lane) };
  const shim =
    options.withShim || options.shimOnly ? await buildOne(context, SHIM_BINARY, options) : undefined;
  if (options.shimOnly && shim) return shim;
  const containerd = await buildOne(context, 'containerd', options);
  return { ...containerd, ...(shim ? { shim } : {}) };
}

interface BuildContext {
  tree: SourceTree;
  arch: ReturnType<typeof normalizeArch>;
  go: ResolvedTool;
  dlv: ResolvedTool | undefined;
  outDir: string;
}

async function buildOne(
  { tree, arch, go, dlv, outDir }: BuildContext,
  binary: BuiltBinary,
  options: BuildContainerdOptions,
): Promise<BinaryBuild> {
  const plan: BuildPlan = planBuild(tree, {
    arch,
    outDir,
    binary,
    ...(go.source === 'path' ? {} : { go: go.path }),
    ...(go.version ? { goVersion: go.version } : {}),
  });
  options.logger.info(
    `Building ${binary} for linux/${arch} from ${tree.kind === 'checkout' ? 'the checkout' : 'the lab tree'} ${tree.root}`,
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
  if (arch === localArch())
    containerd =
      binary === SHIM_BINARY
        ? await runShimVersion(plan.outputBinary)
        : await runContainerdVersion(plan.outputBinary);
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

  const mainPackage =
    binary === SHIM_BINARY
      ? tree.kind === 'gopath'
        ? (tree.marker.shimPackage ?? null)
        : `github.com/containerd/containerd/cmd/${SHIM_BINARY}`
      : tree.kind === 'gopath'
        ? tree.marker.package
        : 'github.com/containerd/containerd/cmd/containerd';
  const manifest: BuildManifest = {
    format: MANIFEST_FORMAT,
    formatVersion: MANIFEST_VERSION,
    ctrdbgVersion: packageVersion(),
    binary: {
      path: plan.outputBinary,
      fileName: binary,
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
      package: mainPackage,
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
