/**
 * `ctrdbg build` (build a debuggable containerd, verify it, write its manifest) and
 * `ctrdbg build --verify BIN` (tell whether any containerd binary can be debugged).
 */
import { join } from 'node:path';
import { type BinaryReport, delveSupport, inspectBinary } from '../build/debugInfo.js';
import {
  type Arch,
  type BuildProgress,
  checkTreeGo,
  createBuildProgress,
  detectSourceTree,
  localArch,
  normalizeArch,
  planBuild,
  runBuild,
} from '../build/goBuild.js';
import {
  type BuildManifest,
  type ContainerdVersion,
  gitState,
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  runContainerdVersion,
  writeManifest,
} from '../build/manifest.js';
import { describeTool, knownDelves, type LaneName, resolveTool } from '../build/toolchain.js';
import type { CommandOutput } from '../cli/run.js';
import { cacheDir, packageVersion } from '../config.js';
import { ExitCode, usageError } from '../errors.js';
import { createLogger, formatBytes, formatTable, type Logger, mark, style } from '../util/output.js';

export interface BuildCommandOptions {
  src?: string;
  arch?: string;
  out?: string;
  verify?: string;
  go?: string;
  dlv?: string;
  json?: boolean;
}

export interface BuildContainerdOptions {
  src: string | undefined;
  arch?: string;
  /** Defaults to `<cacheDir>/builds/<arch>`. */
  out?: string;
  logger: Logger;
  progress?: () => BuildProgress;
  timeoutMs?: number;
  /** --go / --dlv: see src/build/toolchain.ts for the order ctrdbg picks them in. */
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

/* ------------------------------------------------------------------ rendering */

export function formatReport(report: BinaryReport): string {
  const yesNo = (value: boolean) => (value ? 'yes' : 'no');
  const delve = report.delve;
  const delveText =
    delve.delveVersion === undefined
      ? 'dlv not installed'
      : delve.supported === undefined
        ? `Delve ${delve.delveVersion} (support unknown)`
        : `Delve ${delve.delveVersion} supports Go ${delve.supportedGo} ${delve.supported ? mark.ok() : mark.bad()}`;
  const rows = [
    ['arch', report.arch],
    ['size', formatBytes(report.size)],
    ['sha256', report.sha256],
    ['build id', report.buildId ?? '-'],
    ['go', `${report.goVersion ?? 'not a Go binary'} · ${delveText}`],
    ['stripped', yesNo(report.stripped)],
    ['DWARF', yesNo(report.hasDwarf)],
  ];
  if (report.hasDwarf) {
    rows.push([
      'packages',
      `${report.goPackages} Go packages; containerd's without -N -l: ${report.optimizedContainerdPackages.length || 'none'}; ` +
        `other optimised: ${report.otherOptimizedPackages} (runtime, informational)`,
    ]);
  }
  const verdict = report.debuggable ? style.green('debuggable') : style.red('NOT debuggable');
  const lines = [
    `${style.bold(report.path)}: ${verdict}`,
    formatTable(rows.map(([k, v]) => [`  ${k}`, v ?? ''])),
  ];
  for (const problem of report.problems) lines.push(`${mark.bad()} ${problem}`);
  for (const warning of report.warnings) lines.push(`${mark.warn()} ${warning}`);
  if (report.hint) lines.push(`hint: ${report.hint}`);
  return lines.join('\n');
}

function formatBuild(result: BuildResult): string {
  const { manifest } = result;
  const version =
    manifest.containerd.line ??
    [manifest.containerd.version, manifest.containerd.revision].filter(Boolean).join(' ');
  const git = manifest.source.git
    ? ` @ ${manifest.source.git.commit.slice(0, 12)}${manifest.source.git.dirty ? ' (dirty)' : ''}`
    : '';
  return [
    `${mark.ok()} built ${style.bold(result.binary)} (${formatBytes(manifest.binary.size)}, ${manifest.binary.arch}) in ${(manifest.durationMs / 1000).toFixed(1)}s`,
    `  containerd  ${version || 'unknown version'}`,
    `  source      ${manifest.source.root}${git}`,
    `  manifest    ${result.manifestPath}`,
    '',
    formatReport(manifest.verification),
  ].join('\n');
}

/* ------------------------------------------------------------------ the command */

export async function verifyCommand(
  binary: string,
  options: { arch?: string; dlv?: string } = {},
): Promise<CommandOutput<BinaryReport>> {
  const dlv = options.dlv ? await resolveTool('dlv', { flag: options.dlv }) : undefined;
  const report = await inspectBinary(binary, {
    ...(options.arch ? { expectedArch: normalizeArch(options.arch) } : {}),
    ...(dlv ? { delveVersion: dlv.version ?? null } : {}),
  });
  // PATH's Delve cannot debug this Go: name one on this machine that can (a lane's).
  if (report.delve.supported === false && report.goVersion) {
    const goVersion = report.goVersion;
    const fit = (await knownDelves()).find((d) => delveSupport(d.version, goVersion).supported);
    if (fit)
      report.warnings.push(`Delve ${fit.version} from ${fit.from} supports ${goVersion}: --dlv ${fit.path}`);
  }
  return {
    data: report,
    text: formatReport(report),
    ...(report.debuggable ? {} : { exitCode: ExitCode.notDebuggable }),
  };
}

export async function buildCommand(
  options: BuildCommandOptions,
): Promise<CommandOutput<BuildResult | BinaryReport>> {
  if (options.verify !== undefined) {
    if (options.src !== undefined || options.out !== undefined) {
      throw usageError('--verify checks an existing binary and takes no --src or --out.', {
        hint: 'Run `ctrdbg build --verify BIN` on its own, or `ctrdbg build --src DIR` to build (it verifies too).',
      });
    }
    return verifyCommand(options.verify, { arch: options.arch, dlv: options.dlv });
  }
  const json = Boolean(options.json);
  const logger = createLogger({ quiet: json });
  const result = await buildContainerd({
    src: options.src,
    arch: options.arch,
    out: options.out,
    go: options.go,
    dlv: options.dlv,
    logger,
    // Created lazily by runBuild: a progress display started before argument checks could outlive a failure.
    progress: () => createBuildProgress(logger, { quiet: json }),
  });
  return {
    data: result,
    text: formatBuild(result),
    ...(result.manifest.verification.debuggable ? {} : { exitCode: ExitCode.notDebuggable }),
  };
}
