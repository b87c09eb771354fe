/** `ctrdbg attach` and `ctrdbg sets check`: rendering around src/record/attachSession.ts. */

import { agentResolver } from '../attach/arm.js';
import { type AttachOptions, type AttachResult, runAttach } from '../attach/run.js';
import { type ExpressionWarning, expressionWarnings } from '../breakpoints/expressionScope.js';
import { checkSets, type ResolvedLocation, type SetsCheck, shortName } from '../breakpoints/resolve.js';
import { findBreakpointSet, loadBreakpointSets } from '../breakpoints/sets.js';
import { readFunctionScopes } from '../delve/agentScope.js';
import { startNodeDebugger } from '../delve/nodeDebugger.js';
import { checkRunningDebuggable } from '../deploy/nodeBinaryGuard.js';
import { ensureAgent, nodeDlvPath } from '../deploy/nodeTools.js';
import { openNode } from '../deploy/openNode.js';
import { ExitCode } from '../errors.js';
import type { TargetOptions } from '../nodes/resolveTarget.js';
import type { HitRecord } from '../recording/format.js';
import { baseName, expressionsLine, shortFunction } from '../replay/render.js';
import { createLogger, formatTable, mark, style } from '../util/output.js';
import type { CommandOutput } from './output.js';

/** The live line of a hit: the same values, rendered by the same rules, as `replay --list` shows them. */
export function hitLine(hit: HitRecord): string {
  const fn = shortFunction(hit.location.function);
  const file = baseName(hit.location.file);
  const values = expressionsLine(hit, 60, '  ');
  const where = hit.process ? ` [${baseName(hit.process.binary)} ${hit.process.pid}]` : '';
  return `#${hit.seq} +${(hit.t / 1000).toFixed(3)}s${where} ${style.bold(hit.breakpoint.name)} g${hit.goroutine.id} ${fn} ${file}:${hit.location.line} ${style.dim(`(${hit.stoppedMs.toFixed(1)} ms)`)}  ${values}`;
}

export async function attachCommand(
  spec: string | undefined,
  options: AttachOptions & { json?: boolean },
): Promise<CommandOutput<AttachResult>> {
  const log = createLogger({ quiet: options.json });
  const print = (line: string) => (options.json ? process.stderr : process.stdout).write(`${line}\n`);
  const result = await runAttach(spec, options, log, {
    onHit: (hit) => print(hitLine(hit)),
    // The hand-over instructions are what the user acts on: always on stderr, --json or not.
    onHandover: ({ text }) => process.stderr.write(`${text}\n`),
    onArmed: ({ armed, haltWindowMs }) =>
      log.step(
        `${armed} breakpoints armed; containerd was paused ${Math.round(haltWindowMs)} ms to arm them`,
      ),
  });
  const rows = Object.entries(result.perBreakpoint).map(([name, n]) => [name, String(n)]);
  const ok = result.detached && result.containerd.serving && !result.containerd.traced;
  const held =
    result.maxStoppedMs >= 1000
      ? `${(result.maxStoppedMs / 1000).toFixed(1)} s`
      : `${result.maxStoppedMs} ms`;
  const handover = result.interactive;
  const trigger = result.trigger;
  const interrupted = result.reason === 'interrupted' || result.reason === 'interactive-ended';
  const text = [
    '',
    `${result.hits} hit${result.hits === 1 ? '' : 's'} in ${result.stops} stop${result.stops === 1 ? '' : 's'} (${result.reason}${result.message ? `: ${result.message}` : ''}); ${result.stopsExplained ? `${result.stopsExplained}; ` : ''}containerd held stopped ${held} at most${handover ? ' (hand-over included)' : ''}`,
    ...(rows.length ? [formatTable(rows.map((r) => [`  ${r[0]}`, r[1] ?? '']))] : []),
    ...(handover
      ? [
          `  hand-over: ${handover.clients} debugger connection${handover.clients === 1 ? '' : 's'}${handover.requests.length ? `; ${handover.requests.map((r) => `${r.request} ${r.action === 'detached' ? '→ detached without killing' : '→ refused'}`).join(', ')}` : ''}`,
        ]
      : []),
    ...(result.followed
      ? [
          `  shims followed: ${result.followed.filter((f) => !f.error).length}${result.followed.length ? ` (${result.followed.map((f) => `${f.pid}${f.error ? ' not followed' : ''}`).join(', ')})` : ''}${result.detached ? ', each detached like containerd' : ''}`,
        ]
      : []),
    ...(trigger
      ? [
          `  trigger: ${trigger.stoppedBy ? `stopped with ${trigger.stoppedBy} (still running at the end)` : `exited with ${trigger.exitCode ?? trigger.signal}`}${triggerFailed(trigger) ? ` ${mark.bad()} it failed: the hits until then are kept; run it by hand to see why (${trigger.shownAs}); ctrdbg exits ${ExitCode.trigger}` : ''}`,
        ]
      : []),
    `${ok ? mark.ok() : mark.bad()} containerd pid ${result.containerd.pidAfter || result.containerd.pid} ${result.containerd.serving ? 'serving' : 'NOT answering'}, ${result.detached ? 'breakpoints cleared, detached' : 'detach not confirmed'}${result.containerd.pidAfter === result.containerd.pid ? ', same pid' : ''}`,
    ...(result.record ? [`recording: ${result.record}  (ctrdbg replay ${result.record})`] : []),
  ].join('\n');
  const exitCode =
    !ok && result.reason !== 'connection-lost'
      ? ExitCode.node
      : interrupted
        ? ExitCode.interrupted
        : triggerFailed(trigger)
          ? ExitCode.trigger
          : 0;
  return { data: result, text, exitCode };
}

/** Where a return or after-call point landed, after its file:line. */
export function pointText(l: ResolvedLocation): string {
  if (l.at === 'return') return `  at return (${l.pcs} return${l.pcs === 1 ? '' : 's'}; the first shown)`;
  if (l.at !== 'after-call') return '';
  const others = [...new Set(l.lines ?? [])].filter((n) => n !== l.line && n > 0);
  return `  after ${shortName(l.callee ?? '?')} (called at line ${l.callLine ?? '?'})${others.length ? `; also line ${others.join(', ')} (the other way of a branch on the call's line)` : ''}`;
}

/** A trigger that ended by itself with a failure; one ctrdbg stopped (--duration, --max-hits) did not fail. */
function triggerFailed(trigger: AttachResult['trigger']): boolean {
  if (!trigger || trigger.stoppedBy) return false;
  return trigger.exitCode !== 0;
}

export async function setsCheckCommand(
  spec: string | undefined,
  options: TargetOptions & { set?: string[]; setsDir?: string; json?: boolean },
): Promise<CommandOutput<SetsCheck & { target: string; warnings: ExpressionWarning[] }>> {
  const log = createLogger({ quiet: options.json });
  const all = loadBreakpointSets(options.setsDir ? { setsDir: options.setsDir } : {});
  const sets = options.set?.length
    ? options.set.map((n) => findBreakpointSet(all, n))
    : all.filter((s) => s.process === 'containerd');
  const { target, host, probe } = await openNode(spec, options, {
    log,
    refuseTraced:
      'End that debugging session first (Ctrl-C in `ctrdbg attach`, or `exit` in dlv), then check again.',
  });
  try {
    // A stripped containerd is refused before dlv pauses it (dlv would only say it has no debug info).
    await checkRunningDebuggable(host, target, probe);
    const agentPath = await ensureAgent(host, target, probe.goArch, log);
    const dbg = await startNodeDebugger(host, {
      spec: target.spec,
      pid: probe.pid,
      agentPath,
      dlvPath: await nodeDlvPath(host, target),
      log,
    });
    let check: SetsCheck;
    try {
      // Points are looked up by the agent next to dlv; the nearest names for misses through ctrdbg's own client.
      const client = await dbg.client();
      check = await checkSets(agentResolver(dbg), sets, {
        containerdVersion: probe.version,
        suggest: client,
      });
      // An after-call point can have more than one place (both ways of an `if` on the call's line): their lines.
      for (const l of check.sets.flatMap((s) => s.entries.flatMap((e) => e.locations))) {
        if (l.at !== 'after-call' || l.addrs.length < 2) continue;
        l.lines = [];
        for (const addr of l.addrs)
          l.lines.push((await client.findLocation(`*0x${addr.toString(16)}`))[0]?.line ?? 0);
      }
    } finally {
      const stopped = await dbg.stop();
      if (!stopped.detached) log.warn(`detach: ${stopped.errors.join('; ')}`);
    }
    // With containerd running again: the names each found function has, from the binary's DWARF.
    const found = [
      ...new Set(check.sets.flatMap((s) => s.entries.flatMap((e) => e.locations.map((l) => l.function)))),
    ];
    const scopes = found.length ? await readFunctionScopes(host, agentPath, probe.pid, found) : undefined;
    if (scopes?.error)
      log.warn(`could not read the functions' variables (${scopes.error}); expressions are not checked`);
    const warnings = scopes ? expressionWarnings(sets, check.sets, scopes) : [];
    const lines: string[] = [`sets on ${style.bold(target.spec)} (${probe.version})`];
    for (const set of check.sets) {
      lines.push('', `${set.complete ? mark.ok() : mark.bad()} ${style.bold(set.set)}`);
      for (const note of set.notes) lines.push(`    ${style.yellow(note)}`);
      const rows: string[][] = [];
      for (const e of set.entries) {
        if (e.notInVersion !== undefined) {
          rows.push([
            `  ${style.dim('–')} ${e.entry}`,
            style.dim(`not in this version (containerd ${e.notInVersion} only)`),
          ]);
        } else if (e.locations.length === 0 && e.errors.length === 0) {
          rows.push([
            `  ${mark.bad()} ${e.entry}`,
            `not found${e.suggestions.length ? `; nearest: ${e.suggestions.slice(0, 3).join(', ')}` : ''}`,
          ]);
        }
        for (const l of e.locations) {
          rows.push([
            `  ${mark.ok()} ${e.entry}`,
            `${l.function}  ${l.file}:${l.line}${pointText(l)}${l.optimized ? style.yellow('  (optimised)') : ''}`,
          ]);
        }
        for (const err of e.errors)
          rows.push([`  ${mark.bad()} ${e.entry}`, `${err.candidate}: ${err.message}`]);
        for (const w of warnings.filter((w) => w.set === set.set && w.entry === e.entry))
          rows.push([`  ${mark.warn()} ${e.entry}`, style.yellow(`warning: ${w.message}`)]);
      }
      lines.push(formatTable(rows));
    }
    if (warnings.length)
      lines.push(
        '',
        `${mark.warn()} ${warnings.length} expression${warnings.length === 1 ? ' names' : 's name'} a variable the function does not have: fix the set, or \`ctrdbg replay\` will show <eval error> there.`,
      );
    return { data: { target: target.spec, ...check, warnings }, text: lines.join('\n') };
  } finally {
    await host.close();
  }
}
