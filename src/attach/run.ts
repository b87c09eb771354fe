/**
 * `ctrdbg attach`: Delve on the node's running containerd, named breakpoint sets armed, every hit recorded —
 * and whatever way it ends (the trigger finished, --max-hits, --duration, Ctrl-C, an error, a dropped
 * connection, this process killed) breakpoints are cleared and Delve detaches without killing containerd.
 *
 * Everything that can be refused is checked before containerd is touched: the options, the sets, the record
 * file, the hand-over port, the node (sudo, not traced, a debug build).
 */
import { performance } from 'node:perf_hooks';
import { type ResolvedSet, suggestMisses } from '../breakpoints/resolve.js';
import { type BreakpointSet, findBreakpointSet, loadBreakpointSets } from '../breakpoints/sets.js';
import type { FollowSpec } from '../delve/agentProtocol.js';
import { type NodeDebugger, startNodeDebugger } from '../delve/nodeDebugger.js';
import { waitServing } from '../deploy/binarySwap.js';
import { checkRunningDebuggable } from '../deploy/nodeBinaryGuard.js';
import { readNodeState } from '../deploy/nodeState.js';
import { ensureAgent, nodeDlvPath } from '../deploy/nodeTools.js';
import { type OpenedNode, openNode } from '../deploy/openNode.js';
import type { NodeProbe } from '../deploy/probe.js';
import { serviceControl } from '../deploy/service.js';
import { inputError, usageError } from '../errors.js';
import type { RemoteHost } from '../nodes/remoteHost.js';
import type { TargetOptions } from '../nodes/resolveTarget.js';
import type { Target } from '../nodes/target.js';
import {
  type ArmedBreakpoint,
  type ArmedLocation,
  explainStops,
  type FollowedShim,
  type RecordOutcome,
  recordHits,
  type StopKinds,
} from '../record/recorder.js';
import { maskCommandLine } from '../record/redact.js';
import type { EndReason, EndRecord, HitRecord } from '../recording/format.js';
import { checkRecordPath, createRecordingWriter, type RecordingWriter } from '../recording/writer.js';
import { interruptOnSignals } from '../util/interrupt.js';
import type { Logger } from '../util/output.js';
import { armSets } from './arm.js';
import { bindHandoverPort, type HandoverOutcome, type HandoverPort, serveHandover } from './handover.js';
import { sessionHeader } from './header.js';
import { type RunningTrigger, startTrigger, TRIGGER_GRACE_MS, type TriggerResult } from './trigger.js';

export interface AttachOptions extends TargetOptions {
  set: string[];
  setsDir?: string;
  record?: string;
  /** Replace an existing --record file. */
  force?: boolean;
  trigger?: string;
  triggerOnNode?: boolean;
  maxHits?: number;
  /** Seconds. */
  duration?: number;
  interactive?: boolean;
  /** Local port for the interactive hand-over (0 = any free one). */
  port?: number;
  noRedact?: boolean;
  /** Where `--interactive` writes .vscode/launch.json (default: the current directory). */
  vscodeDir?: string;
}

export interface AttachResult {
  target: string;
  containerd: { pid: number; pidAfter: number; serving: boolean; traced: boolean; version: string };
  sets: string[];
  armed: { name: string; function: string; file: string; line: number; optimized: boolean }[];
  unresolved: { set: string; entry: string; suggestions: string[] }[];
  notes: string[];
  haltWindowMs: number;
  /**
   * The attach pause as the agent measured it on the node: from dlv's attach to the first continue, dlv's own
   * part of it (attach and reading the binary), and the lookup and creation of the breakpoints.
   */
  pause?: { pausedMs: number; dlvAttachMs: number; resolveMs: number; createMs: number };
  hits: number;
  /** Hits the node could not buffer because ctrdbg read too slowly (never silently: counted here and in the end record). */
  dropped: number;
  /** Times a breakpoint was re-created to keep Delve's replies small. */
  rearms: number;
  /** The most hit bytes that waited on the node for ctrdbg at once (containerd never waits for ctrdbg). */
  queuedPeakBytes: number;
  /** Returns left out because they succeeded (onlyFailures entries). */
  filtered: number;
  /** Shims followed (shim sets): each attached, armed and left again like containerd. */
  followed?: FollowedShim[];
  perBreakpoint: Record<string, number>;
  stops: number;
  /** What the stops were, and in words why they differ from the hits (undefined when they do not). */
  stopKinds?: StopKinds;
  stopsExplained?: string;
  /** The longest time containerd was held stopped at once, hand-over included. */
  maxStoppedMs: number;
  reason: EndReason;
  message?: string;
  detached: boolean;
  record?: string;
  trigger?: TriggerResult & { shownAs: string };
  interactive?: {
    port: number;
    dlvConnect: string;
    launchJson?: string;
    clients: number;
    requests: { action: string; request?: string }[];
    holdsMs: number[];
  };
}

export interface AttachHooks {
  onHit?: (hit: HitRecord) => void;
  onArmed?: (info: { armed: number; haltWindowMs: number }) => void;
  /** The hand-over began; `text` tells the user how to connect (print it, also with --json). */
  onHandover?: (info: { port: number; launchJson?: string; text: string }) => void;
}

export function chooseSets(names: string[], setsDir: string | undefined): BreakpointSet[] {
  if (!names.length) {
    throw usageError('Which breakpoints? attach needs at least one --set.', {
      hint: 'List them with: ctrdbg sets list',
    });
  }
  const all = loadBreakpointSets(setsDir ? { setsDir } : {});
  const chosen = [...new Set(names)].map((n) => findBreakpointSet(all, n));
  return chosen;
}

function checkOptions(options: AttachOptions): void {
  if (options.maxHits !== undefined && (!Number.isInteger(options.maxHits) || options.maxHits < 1)) {
    throw usageError('--max-hits must be a whole number of at least 1.');
  }
  if (options.duration !== undefined && !(options.duration > 0))
    throw usageError('--duration must be a positive number of seconds.');
  if (options.force && !options.record) throw usageError('--force only applies to --record FILE.');
  if (options.record) checkRecordPath(options.record, options.force);
}

/** What the node looked like when the attach began, and how it was armed. */
interface Attached {
  target: Target;
  host: RemoteHost;
  probe: NodeProbe;
  dbg: NodeDebugger;
  sets: BreakpointSet[];
  locations: Map<number, ArmedLocation>;
  breakpoints: ArmedBreakpoint[];
  resolved: ResolvedSet[];
  follow?: FollowSpec;
  unresolved: AttachResult['unresolved'];
  notes: string[];
  writer: RecordingWriter | undefined;
  /** performance.now() when dlv attached (containerd paused) and when recording started. */
  pausedAt: number;
  startedAt: number;
  resolveMs: number;
  createMs: number;
  manifest: Record<string, unknown> | null;
}

export async function runAttach(
  spec: string | undefined,
  options: AttachOptions,
  log: Logger,
  hooks: AttachHooks = {},
): Promise<AttachResult> {
  const sets = chooseSets(options.set, options.setsDir);
  checkOptions(options);
  const handoverPort = options.interactive ? await bindHandoverPort(options.port) : undefined;
  const interrupt = interruptOnSignals(
    log,
    'stopping: clearing breakpoints and detaching…',
    'still detaching from containerd — please wait (it must not be left stopped)',
  );
  let host: RemoteHost | undefined;
  let attached: Attached | undefined;
  try {
    const opened = await openNode(spec, options, {
      log,
      refuseTraced:
        'End that debugging session first (Ctrl-C in its `ctrdbg attach`, or `exit` in dlv), then attach again.',
    });
    host = opened.host;
    attached = await attach(opened, sets, options, log);
    const haltWindowMs = performance.now() - attached.pausedAt;
    hooks.onArmed?.({ armed: attached.locations.size, haltWindowMs });
    const run = await record(attached, options, interrupt.signal, handoverPort, log, hooks);
    const finished = await finish(attached, run, log);
    run.trigger = await endTrigger(run.runningTrigger, run.reason, Boolean(options.interactive), log);
    writeEnd(attached, run, finished);
    const a = attached;
    attached = undefined;
    if (run.failure && run.reason !== 'connection-lost') throw run.failure;
    return {
      target: a.target.spec,
      containerd: { pid: a.probe.pid, ...finished, version: a.probe.version },
      sets: sets.map((s) => s.name),
      armed: a.breakpoints.map((b) => ({
        name: b.name,
        function: b.function,
        file: b.file,
        line: b.line,
        optimized: b.optimized,
      })),
      unresolved: a.unresolved,
      notes: a.notes,
      haltWindowMs: Math.round(haltWindowMs),
      ...(run.outcome
        ? {
            pause: {
              pausedMs: run.outcome.pausedMs,
              dlvAttachMs: run.outcome.dlvAttachMs,
              resolveMs: Math.round(a.resolveMs * 10) / 10,
              createMs: Math.round(a.createMs * 10) / 10,
            },
          }
        : {}),
      hits: run.outcome?.hits ?? 0,
      dropped: run.outcome?.dropped ?? 0,
      rearms: run.outcome?.rearms ?? 0,
      queuedPeakBytes: run.outcome?.queuedPeakBytes ?? 0,
      filtered: run.outcome?.filtered ?? 0,
      perBreakpoint: run.outcome?.perBreakpoint ?? {},
      ...(a.follow ? { followed: run.followed } : {}),
      stops: run.outcome?.stops ?? 0,
      ...(run.outcome
        ? {
            stopKinds: run.outcome.stopKinds,
            stopsExplained: explainStops(run.outcome.hits, run.outcome.stops, run.outcome.stopKinds),
          }
        : {}),
      maxStoppedMs: Math.round(run.maxStoppedMs * 10) / 10,
      reason: run.reason,
      ...(run.message ? { message: run.message } : {}),
      detached: finished.detached,
      ...(options.record ? { record: options.record } : {}),
      ...(run.trigger ? { trigger: run.trigger } : {}),
      ...(run.handover && handoverPort
        ? {
            interactive: {
              port: handoverPort.port,
              dlvConnect: `dlv connect 127.0.0.1:${handoverPort.port}`,
              ...(run.launchJson ? { launchJson: run.launchJson } : {}),
              clients: run.handover.clients,
              requests: run.handover.requests.map((r) => ({
                action: r.action,
                ...(r.request ? { request: r.request } : {}),
              })),
              holdsMs: run.handover.holdsMs.map((h) => Math.round(h)),
            },
          }
        : {}),
    };
  } finally {
    interrupt.dispose();
    handoverPort?.close();
    if (attached) {
      // An error before or during arming: still clear and detach.
      const result = await attached.dbg
        .stop()
        .catch((error: Error) => ({ detached: false, errors: [error.message] }));
      if (!result.detached)
        log.warn(`detach reported: ${'errors' in result ? result.errors.join('; ') : 'unknown'}`);
      attached.writer?.close();
    }
    await host?.close();
  }
}

/** Checks the node, attaches dlv (containerd pauses here) and arms every set. */
async function attach(
  { host, target, probe }: OpenedNode,
  sets: BreakpointSet[],
  options: AttachOptions,
  log: Logger,
): Promise<Attached> {
  const state = await readNodeState(host, target);
  await checkRunningDebuggable(host, target, probe, state);
  const dlvPath = await nodeDlvPath(host, target);
  const agentPath = await ensureAgent(host, target, probe.goArch, log);
  log.step(`attaching dlv to containerd pid ${probe.pid} on ${target.endpoint.label}`);

  // From here containerd is paused (headless attach without --continue) until the first continue.
  const pausedAt = performance.now();
  const dbg = await startNodeDebugger(host, { spec: target.spec, pid: probe.pid, agentPath, dlvPath, log });
  const base = { target, host, probe, dbg, sets, pausedAt, manifest: state.installed?.manifest ?? null };
  let armed: Awaited<ReturnType<typeof armSets>>;
  try {
    armed = await armSets(dbg, sets, log, probe.version, target.node.socket);
  } catch (error) {
    await dbg.stop().catch(() => undefined);
    throw error;
  }
  // Entries of other containerd versions (`versions:` in the set) are not misses.
  const unresolved = armed.resolved.flatMap((r) =>
    r.entries
      .filter((e) => e.locations.length === 0 && e.notInVersion === undefined)
      .map((e) => ({ set: r.set, entry: e.entry, suggestions: e.suggestions })),
  );
  let notes = [...new Set(armed.resolved.flatMap((r) => r.notes))];
  if (armed.locations.size === 0) {
    // Nothing to record: containerd will be detached anyway, so the (slow) nearest-name search may run now.
    const client = await dbg.client().catch(() => undefined);
    if (client) {
      await suggestMisses(client, sets, armed.resolved).catch(() => undefined);
      notes = [...new Set(armed.resolved.flatMap((r) => r.notes))];
      for (const u of unresolved)
        u.suggestions =
          armed.resolved.find((r) => r.set === u.set)?.entries.find((e) => e.entry === u.entry)
            ?.suggestions ?? [];
    }
    await dbg.stop().catch(() => undefined);
    throw inputError(
      `None of the functions in ${sets.map((s) => s.name).join(', ')} exist in this containerd.`,
      {
        hint: `${notes.join(' ')} Closest names: ${
          unresolved
            .flatMap((u) => u.suggestions)
            .slice(0, 3)
            .join(', ') || 'none'
        }. See: ctrdbg sets check ${target.spec}`.trim(),
      },
    );
  }
  for (const u of unresolved)
    log.warn(
      `${u.set}/${u.entry}: not in this binary${u.suggestions.length ? ` (closest: ${u.suggestions.slice(0, 2).join(', ')})` : ''}`,
    );
  let writer: RecordingWriter | undefined;
  if (options.record) {
    writer = createRecordingWriter(options.record, { force: options.force });
    writer.writeHeader(
      sessionHeader({
        target,
        probe,
        manifest: base.manifest,
        delveVersion: dbg.delveVersion,
        sets,
        breakpoints: armed.breakpoints,
        redact: !options.noRedact,
        ...(options.trigger ? { trigger: maskCommandLine(options.trigger) } : {}),
      }),
    );
  }
  return {
    ...base,
    locations: armed.locations,
    breakpoints: armed.breakpoints,
    resolved: armed.resolved,
    ...(armed.follow ? { follow: armed.follow } : {}),
    unresolved,
    notes,
    writer,
    startedAt: performance.now(),
    resolveMs: armed.resolveMs,
    createMs: armed.createMs,
  };
}

interface RunOutcome {
  reason: EndReason;
  message?: string;
  outcome?: RecordOutcome;
  failure?: unknown;
  runningTrigger?: { trigger: RunningTrigger; shownAs: string };
  trigger?: TriggerResult & { shownAs: string };
  maxStoppedMs: number;
  followed: FollowedShim[];
  handover?: HandoverOutcome;
  launchJson?: string;
}

/**
 * Records until a stop condition, then stops the trigger if it still runs. Every stop condition aborts the
 * recording loop, which ends with containerd stopped and not resumed; the caller then clears and detaches.
 */
async function record(
  a: Attached,
  options: AttachOptions,
  interrupt: AbortSignal,
  handoverPort: HandoverPort | undefined,
  log: Logger,
  hooks: AttachHooks,
): Promise<RunOutcome> {
  const controller = new AbortController();
  let reason: EndReason = 'interrupted';
  let message: string | undefined;
  const stop = (why: EndReason, text?: string) => {
    if (controller.signal.aborted) return;
    reason = why;
    message = text;
    controller.abort(why);
  };
  if (interrupt.aborted) stop('interrupted');
  interrupt.addEventListener('abort', () => stop('interrupted'), { once: true });
  a.host.onClose((error) => stop('connection-lost', error?.message ?? 'the SSH connection closed'));
  a.dbg.onLost((why) => stop('connection-lost', why));
  const timer = options.duration ? setTimeout(() => stop('duration'), options.duration * 1000) : undefined;
  const masked = options.trigger ? maskCommandLine(options.trigger) : undefined;

  let outcome: RecordOutcome | undefined;
  let failure: unknown;
  let trigger: RunningTrigger | undefined;
  let handover: HandoverOutcome | undefined;
  let launchJson: string | undefined;
  const followed: FollowedShim[] = [];
  try {
    const recording = recordHits({
      dbg: a.dbg,
      armed: a.locations,
      writer: a.writer,
      fieldNameRedaction: !options.noRedact,
      // --interactive records the first hit, then hands containerd over, stopped there.
      maxHits: options.interactive ? 1 : options.maxHits,
      signal: controller.signal,
      startedAt: a.startedAt,
      ...(a.follow ? { follow: a.follow, primaryPid: a.probe.pid, primaryBinary: a.probe.binary } : {}),
      onFollowed: (f) => {
        followed.push(f);
        if (f.error) log.warn(`shim pid ${f.pid}${f.id ? ` (${f.id})` : ''}: not followed: ${f.error}`);
        else
          log.step(
            `following shim pid ${f.pid}${f.id ? ` (${f.id})` : ''}: ${f.armed} breakpoints armed, held ${Math.round(f.heldMs)} ms${f.existing ? ' (it was running already)' : ''}`,
          );
      },
      ...(hooks.onHit ? { onHit: hooks.onHit } : {}),
      onPanic: (what) => log.warn(`containerd stopped at ${what}`),
    }).then(
      (o) => {
        outcome = o;
        if (o.reason === 'max-hits' && !options.interactive) reason = 'max-hits';
      },
      (error: unknown) => {
        failure = error;
      },
    );
    if (options.interactive) log.step('waiting for the first hit (Ctrl-C to give up)');
    // The trigger starts only once everything is armed and containerd runs again.
    if (options.trigger && masked) {
      trigger = startTrigger(
        a.host,
        a.target,
        options.trigger,
        { shownAs: masked.text, onNode: Boolean(options.triggerOnNode) },
        log,
      );
      void trigger.done.then((r) => {
        if (options.interactive) return;
        stop(
          'trigger-finished',
          r.exitCode === 0 ? undefined : `the trigger exited with ${r.exitCode ?? r.signal}`,
        );
      });
    }
    await recording;
    if (options.interactive && outcome?.reason === 'max-hits' && handoverPort && !failure) {
      launchJson = await writeLaunchJson(a, handoverPort.port, options);
      hooks.onHandover?.({
        port: handoverPort.port,
        ...(launchJson ? { launchJson } : {}),
        text: handoverText(a, handoverPort.port, launchJson),
      });
      handover = await serveHandover({
        port: handoverPort,
        dbg: a.dbg,
        stoppedSince: outcome.lastStopAt ?? performance.now(),
        signal: controller.signal,
        log,
      });
      reason = handover.reason === 'interrupted' ? 'interactive-ended' : handover.reason;
      message = handover.message ?? message;
    }
  } finally {
    if (timer) clearTimeout(timer);
  }
  if (failure) {
    reason = reason === 'connection-lost' ? reason : 'error';
    message = (failure as Error).message;
  }
  const holds = handover?.holdsMs ?? [];
  return {
    reason,
    ...(message ? { message } : {}),
    ...(outcome ? { outcome } : {}),
    ...(failure ? { failure } : {}),
    ...(trigger && masked ? { runningTrigger: { trigger, shownAs: masked.text } } : {}),
    maxStoppedMs: Math.max(outcome?.maxStoppedMs ?? 0, ...holds),
    followed,
    ...(handover ? { handover } : {}),
    ...(launchJson ? { launchJson } : {}),
  };
}

function handoverText(a: Attached, port: number, launchJson: string | undefined): string {
  return [
    '',
    'containerd is stopped at the first hit. Connect a debugger to it:',
    `  dlv connect 127.0.0.1:${port}`,
    "  Leave dlv with 'exit' (any answers): ctrdbg's relay never lets it kill containerd, it detaches instead.",
    ...(launchJson ? [`  VS Code: the "ctrdbg attach: ${a.target.spec}" entry in ${launchJson}`] : []),
    'Press Ctrl-C here to clear the breakpoints, detach and leave containerd running.',
  ].join('\n');
}

async function writeLaunchJson(
  a: Attached,
  port: number,
  options: AttachOptions,
): Promise<string | undefined> {
  const manifest = (await readNodeState(a.host, a.target)).installed?.manifest as
    | { source?: { sourceRoots?: string[] } }
    | undefined;
  const root = manifest?.source?.sourceRoots?.[0];
  if (!root) return undefined;
  const { attachLaunchConfig, mergeLaunchJson } = await import('../editor/launchJson.js');
  const merged = await mergeLaunchJson(options.vscodeDir ?? process.cwd(), [
    attachLaunchConfig({ target: a.target.spec, port, localRoot: root, remoteRoot: root }),
  ]);
  return merged.path;
}

/** Clears breakpoints and detaches, then checks containerd from the node: same PID, untraced, serving. */
async function finish(
  a: Attached,
  run: RunOutcome,
  log: Logger,
): Promise<{ pidAfter: number; serving: boolean; traced: boolean; detached: boolean }> {
  log.step('clearing breakpoints and detaching');
  const stopped = await a.dbg.stop();
  for (const e of stopped.errors) log.warn(e);
  let pidAfter = 0;
  let serving = false;
  let traced = false;
  if (run.reason !== 'connection-lost') {
    pidAfter = await serviceControl(a.host, a.target.service)
      .mainPid()
      .catch(() => 0);
    serving = pidAfter > 0 && (await waitServing(a.host, a.target, 10_000));
    const tracer = await a.host
      .exec(`awk '/^TracerPid:/{print $2}' /proc/${a.probe.pid}/status`, { sudo: true })
      .catch(() => undefined);
    traced = Number(tracer?.stdout.trim() ?? 0) !== 0;
    if (pidAfter !== a.probe.pid)
      log.warn(`containerd's pid changed: ${a.probe.pid} → ${pidAfter || 'none'}`);
  }
  return { pidAfter, serving, traced, detached: stopped.detached };
}

/**
 * A trigger still running when the recording ended gets SIGTERM to its process group, and SIGKILL after the
 * grace period. After a hand-over it first gets that grace period to finish by itself: its calls were held at
 * the breakpoint and complete once containerd runs again.
 */
async function endTrigger(
  running: RunOutcome['runningTrigger'],
  reason: EndReason,
  interactive: boolean,
  log: Logger,
): Promise<RunOutcome['trigger']> {
  if (!running) return undefined;
  const { trigger, shownAs } = running;
  if (trigger.running && interactive) {
    await Promise.race([trigger.done, new Promise((r) => setTimeout(r, TRIGGER_GRACE_MS).unref())]);
  }
  if (trigger.running)
    log.warn(
      `the trigger was still running when recording stopped (${reason}): stopping it (SIGTERM to its process group)`,
    );
  const result = await trigger.stop();
  if (result.stoppedBy)
    log.warn(
      `stopped the trigger with ${result.stoppedBy}${result.stoppedBy === 'SIGKILL' ? ' (it ignored SIGTERM)' : ''}`,
    );
  return { ...result, command: shownAs, shownAs };
}

function writeEnd(
  a: Attached,
  run: RunOutcome,
  node: { pidAfter: number; serving: boolean; detached: boolean },
): void {
  const end: EndRecord = {
    type: 'end',
    t: Math.round(performance.now() - a.startedAt),
    wall: new Date().toISOString(),
    reason: run.reason,
    ...(run.message ? { message: run.message } : {}),
    hits: run.outcome?.hits ?? 0,
    perBreakpoint: run.outcome?.perBreakpoint ?? {},
    dropped: run.outcome?.dropped ?? 0,
    ...(run.outcome ? { stops: run.outcome.stops } : {}),
    ...(run.outcome?.filtered ? { filtered: run.outcome.filtered } : {}),
    ...(run.outcome?.queuedPeakBytes ? { queuedPeakBytes: run.outcome.queuedPeakBytes } : {}),
    detached: node.detached,
    containerdPid: node.pidAfter || a.probe.pid,
    containerdServing: node.serving,
    maxStoppedMs: Math.round(run.maxStoppedMs * 10) / 10,
    ...(run.trigger
      ? {
          trigger: {
            exitCode: run.trigger.exitCode,
            ...(run.trigger.signal ? { signal: run.trigger.signal } : {}),
            ...(run.trigger.stoppedBy ? { stoppedBy: run.trigger.stoppedBy } : {}),
          },
        }
      : {}),
  };
  a.writer?.writeEnd(end);
  a.writer?.close();
}
