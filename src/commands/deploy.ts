/** `ctrdbg setup`, `restore` and `doctor`: rendering and exit codes around src/deploy/. */

import { type RestoreResult, restoreOriginal } from '../deploy/binarySwap.js';
import { type DoctorOptions, type DoctorResult, doctor } from '../deploy/doctor.js';
import { openNode } from '../deploy/openNode.js';
import { type SetupOptions, type SetupResult, setupNode } from '../deploy/setupNode.js';
import { describeRunningShims } from '../deploy/shimLocate.js';
import { ExitCode } from '../errors.js';
import type { TargetOptions } from '../nodes/resolveTarget.js';
import { createLogger, formatBytes, formatTable, mark, style } from '../util/output.js';
import type { CommandOutput } from './output.js';

export async function setupCommand(
  spec: string | undefined,
  options: SetupOptions & { json?: boolean },
): Promise<CommandOutput<SetupResult>> {
  const log = createLogger({ quiet: options.json });
  const result = await setupNode(spec, options, log);
  const lines = [
    `${mark.ok()} ${style.bold(result.target)} runs the debug containerd (pid ${result.node.pidAfter}, ${result.binary.version})${result.shim ? ' and has the debug shim for new pods' : ''}`,
    '',
    ...(result.changed.length
      ? result.changed.map((c) => `  • ${c}`)
      : ['  nothing changed: the node already had this build']),
    '',
    `  source: ${result.source.map((s) => `${s.remoteRoot} (${s.files} files, ${s.sent} sent, ${formatBytes(s.wireBytes)} on the wire)`).join('; ') || 'not synced'}`,
    `  dlv:    ${result.dlv.path} (Delve ${result.dlv.version}, supports Go ${result.dlv.supportsGo ?? '?'}; ${result.dlv.description})`,
    `          ${result.dlv.built ? '' : `${result.dlv.local}, `}${result.dlv.why}`,
    ...(result.shim
      ? [
          `  shim:   ${result.shim.path} (${result.shim.why}; ${result.shim.version}; ${result.shim.description})`,
          `          ${describeRunningShims(result.shim.running)}; new pods get ${result.shim.unchanged ? 'this' : 'the new'} file, running shims keep theirs`,
        ]
      : []),
    '',
    `Next: ctrdbg attach ${result.target} --set <name>   (ctrdbg sets list)`,
  ];
  return { data: result, text: lines.join('\n') };
}

export async function restoreCommand(
  spec: string | undefined,
  options: TargetOptions & { purge?: boolean; json?: boolean },
): Promise<CommandOutput<RestoreResult & { target: string }>> {
  const log = createLogger({ quiet: options.json });
  const { target, host } = await openNode(spec, options, { log, requireRunning: false });
  try {
    const result = await restoreOriginal(host, target, { purge: options.purge }, log);
    if (result.nothingToRestore) {
      const text = [
        `${mark.ok()} ${style.bold(target.spec)}: nothing to restore — ctrdbg never replaced its containerd, so nothing was changed${result.pid ? ` (pid ${result.pid} runs on, sha256 ${result.sha256.slice(0, 12)}…)` : ' (containerd is not running)'}.`,
        ...result.purged.map((p) => `  • removed ${p}`),
      ].join('\n');
      return { data: { target: target.spec, ...result }, text };
    }
    const shim = result.shim;
    const text = [
      result.containerdChanged
        ? `${mark.ok()} ${style.bold(target.spec)} runs its original containerd again (pid ${result.pid}, sha256 ${result.sha256.slice(0, 12)}…, byte-identical)`
        : `${mark.ok()} ${style.bold(target.spec)}: ctrdbg never replaced its containerd (pid ${result.pid} runs ${result.path})`,
      ...(result.containerdChanged
        ? [result.restored ? `  • put back ${result.path}` : `  • ${result.path} was already the original`]
        : []),
      ...(shim
        ? [
            shim.restored
              ? `  • put back the original shim ${shim.path} (sha256 ${shim.sha256.slice(0, 12)}…, byte-identical)`
              : `  • the shim ${shim.path} was already the original`,
            `    ${describeRunningShims(shim.running)}; new pods get the original`,
          ]
        : []),
      ...(result.logLevelRemoved ? ['  • removed the log-level setting'] : []),
      ...result.purged.map((p) => `  • removed ${p}`),
    ].join('\n');
    return { data: { target: target.spec, ...result }, text };
  } finally {
    await host.close();
  }
}

export async function doctorCommand(
  spec: string | undefined,
  options: DoctorOptions & { json?: boolean },
): Promise<CommandOutput<DoctorResult>> {
  const result = await doctor(spec, options);
  const symbol = (s: string) => (s === 'ok' ? mark.ok() : s === 'warn' ? mark.warn() : mark.bad());
  const rows = result.checks.map((c) => [
    symbol(c.status),
    c.title,
    c.detail + (c.hint && c.status !== 'ok' ? `\n${' '.repeat(4)}${style.dim(`→ ${c.hint}`)}` : ''),
  ]);
  const na = result.notApplicable.map((n) => `  – ${n.title}: not applicable (${n.why})`);
  const text = [
    `doctor ${style.bold(result.target)}`,
    '',
    formatTable(rows),
    ...(na.length ? ['', ...na] : []),
  ].join('\n');
  // The first failure decides the exit code: unreachable (7), no sudo (10), … else "node" (11).
  const firstFailure = result.checks.find((c) => c.status === 'fail');
  const kind = firstFailure?.errorKind as keyof typeof ExitCode | undefined;
  return {
    data: result,
    text,
    exitCode: result.ok ? 0 : kind && kind in ExitCode ? ExitCode[kind] : ExitCode.node,
  };
}
