/**
 * `ctrdbg build` (build a debuggable containerd, verify it, write its manifest) and
 * `ctrdbg build --verify BIN` (tell whether any containerd binary can be debugged).
 */

import { type BinaryBuild, type BuildResult, buildContainerd } from '../debugbuild/buildContainerd.js';
import { type BinaryReport, delveSupport, inspectBinary } from '../debugbuild/debugInfo.js';
import { createBuildProgress, normalizeArch } from '../debugbuild/goBuild.js';
import { knownDelves, resolveTool } from '../debugbuild/toolchain.js';
import { ExitCode, usageError } from '../errors.js';
import { createLogger, formatBytes, formatTable, mark, style } from '../util/output.js';
import type { CommandOutput } from './output.js';

export type { BuildResult };

export interface BuildCommandOptions {
  src?: string;
  arch?: string;
  out?: string;
  verify?: string;
  go?: string;
  dlv?: string;
  withShim?: boolean;
  json?: boolean;
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
    ['file', report.platform],
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

function formatBuild(result: BinaryBuild): string {
  const { manifest } = result;
  const version =
    manifest.containerd.line ??
    [manifest.containerd.version, manifest.containerd.revision].filter(Boolean).join(' ');
  const git = manifest.source.git
    ? ` @ ${manifest.source.git.commit.slice(0, 12)}${manifest.source.git.dirty ? ' (dirty)' : ''}`
    : '';
  return [
    `${mark.ok()} built ${style.bold(result.binary)} (${formatBytes(manifest.binary.size)}, ${manifest.binary.arch}) in ${(manifest.durationMs / 1000).toFixed(1)}s`,
    `  ${manifest.binary.fileName === 'containerd' ? 'containerd' : 'version   '}  ${version || 'unknown version'}`,
    `  source      ${manifest.source.root}${git}`,
    `  command     ${manifest.command.display}`,
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
  // A binary that cannot run on a supported node is its own class (15); otherwise not debuggable (6).
  const exitCode = report.platformProblems.length ? ExitCode.wrongPlatform : ExitCode.notDebuggable;
  return {
    data: report,
    text: formatReport(report),
    ...(report.debuggable ? {} : { exitCode }),
  };
}

export async function buildCommand(
  options: BuildCommandOptions,
): Promise<CommandOutput<BuildResult | BinaryReport>> {
  if (options.verify !== undefined) {
    if (options.src !== undefined || options.out !== undefined || options.withShim) {
      throw usageError('--verify checks an existing binary and takes no --src, --out or --with-shim.', {
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
    ...(options.withShim ? { withShim: true } : {}),
    logger,
    // Created lazily by runBuild: a progress display started before argument checks could outlive a failure.
    progress: (label) => createBuildProgress(logger, { quiet: json, label }),
  });
  const debuggable =
    result.manifest.verification.debuggable && (result.shim?.manifest.verification.debuggable ?? true);
  return {
    data: result,
    text: [formatBuild(result), ...(result.shim ? ['', formatBuild(result.shim)] : [])].join('\n'),
    ...(debuggable ? {} : { exitCode: ExitCode.notDebuggable }),
  };
}
