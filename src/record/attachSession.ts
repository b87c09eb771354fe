/**
 * `ctrdbg attach`: Delve on the node's running containerd, named breakpoint sets armed, every hit recorded —
 * and whatever way it ends (the trigger finished, --max-hits, --duration, Ctrl-C, an error, a dropped
 * connection, this process killed) breakpoints are cleared and Delve detaches without killing containerd.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { performance } from 'node:perf_hooks';
import { breakpointName, type ResolvedSet, resolveSet, toBreakpointRequest } from '../breakpoints/resolve.js';
import {
  type BreakpointSet,
  findBreakpointSet,
  isRedacted,
  loadBreakpointSets,
} from '../breakpoints/sets.js';
import { inspectBinary } from '../build/debugInfo.js';
import { packageVersion } from '../config.js';
import { ensureAgent, type NodeDebugger, nodeDlvPath, startNodeDebugger } from '../delve/server.js';
import { waitServing } from '../deploy/binarySwap.js';
import { readNodeState } from '../deploy/nodeState.js';
import { fetchRunningBinary, probeNode } from '../deploy/probe.js';
import { serviceControl } from '../deploy/service.js';
import { inputError, nodeError, notDebuggableError, usageError } from '../errors.js';
import type { RemoteHost } from '../target/remoteHost.js';
import { resolveTarget, type TargetOptions } from '../target/resolveTarget.js';
import { connectHost } from '../target/sshHost.js';
import type { Target } from '../target/target.js';
import type { Logger } from '../util/output.js';
import { type ArmedBreakpoint, type RecordOutcome, recordHits } from './recorder.js';
import { describeRules } from './redact.js';
import { createSessionWriter, type SessionWriter } from './sessionFile.js';
import {
  type EndReason,
  type HitRecord,
  SESSION_FORMAT,
  SESSION_VERSION,
  type SessionHeader,
} from './sessionFormat.js';

export interface AttachOptions extends TargetOptions {
  set: string[];
  setsDir?: string;
  record?: string;
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
  hits: number;
  perBreakpoint: Record<string, number>;
  stops: number;
  maxStoppedMs: number;
  reason: EndReason;
  message?: string;
  detached: boolean;
  record?: string;
  trigger?: { command: string; exitCode: number | null };
  interactive?: { port: number; dlvConnect: string; launchJson?: string };
}

export interface AttachHooks {
  onHit?: (hit: HitRecord) => void;
  onArmed?: (info: { armed: number; haltWindowMs: number }) => void;
  onHandover?: (info: { port: number; launchJson?: string }) => void;
}

/** Ctrl-C: the first one stops recording cleanly; later ones only say that detaching is under way. */
function interruptSignal(log: Logger): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) {
      log.warn('still detaching from containerd — please wait (it must not be left stopped)');
      return;
    }
    log.warn('stopping: clearing breakpoints and detaching…');
    controller.abort('interrupted');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('SIGHUP', onSignal);
    },
  };
}

export function chooseSets(names: string[], setsDir: string | undefined): BreakpointSet[] {
  if (!names.length) {
    throw usageError('Which breakpoints? attach needs at least one --set.', {
      hint: 'List them with: ctrdbg sets list',
    });
  }
  const all = loadBreakpointSets(setsDir ? { setsDir } : {});
  const chosen = [...new Set(names)].map((n) => findBreakpointSet(all, n));
  const shim = chosen.filter((s) => s.process !== 'containerd');
  if (shim.length) {
    throw inputError(
      `Set ${shim.map((s) => s.name).join(', ')} targets ${shim[0]?.process}, a separate process from containerd.`,
      {
        hint: 'attach debugs containerd itself; pick sets whose process is containerd (ctrdbg sets list).',
      },
    );
  }
  return chosen;
}

interface Armed {
  armed: Map<number, ArmedBreakpoint>;
  resolved: ResolvedSet[];
}

async function arm(
  dbg: NodeDebugger,
  sets: BreakpointSet[],
  log: Logger,
  containerdVersion: string,
): Promise<Armed> {
  const armed = new Map<number, ArmedBreakpoint>();
  const resolved: ResolvedSet[] = [];
  for (const set of sets) {
    const r = await resolveSet(dbg.client, set, { containerdVersion });
    resolved.push(r);
    for (const entry of r.entries) {
      const spec = set.entries.find((e) => e.name === entry.entry);
      if (!spec) continue;
      // Redacted expressions are never even requested from Delve.
      const record = spec.record.filter((expr) => !isRedacted(expr, spec.redact));
      for (const [i, location] of entry.locations.entries()) {
        const name = breakpointName(set.name, spec.name, i);
        const bp = await dbg.client.createBreakpoint(
          toBreakpointRequest({ ...spec, record }, location, name),
        );
        armed.set(bp.id, {
          id: bp.id,
          name: `${set.name}/${spec.name}${i > 0 ? `#${i + 1}` : ''}`,
          set: set.name,
          entry: spec.name,
          function: location.function,
          file: location.file,
          line: location.line,
          optimized: location.optimized,
          expressions: record,
          ...(spec.condition ? { condition: spec.condition } : {}),
          redact: spec.redact,
        });
        if (location.optimized)
          log.warn(`${location.function} was compiled with optimisations: values may be missing`);
      }
    }
  }
  return { armed, resolved };
}

export async function attachSession(
  spec: string | undefined,
  options: AttachOptions,
  log: Logger,
  hooks: AttachHooks = {},
): Promise<AttachResult> {
  const sets = chooseSets(options.set, options.setsDir);
  if (options.maxHits !== undefined && (!Number.isInteger(options.maxHits) || options.maxHits < 1)) {
    throw usageError('--max-hits must be a whole number of at least 1.');
  }
  if (options.duration !== undefined && !(options.duration > 0))
    throw usageError('--duration must be a positive number of seconds.');
  const target = await resolveTarget(spec, options);
  const host = await connectHost(target.endpoint);
  let dbg: NodeDebugger | undefined;
  let writer: SessionWriter | undefined;
  const interrupt = interruptSignal(log);
  try {
    await host.checkSudo();
    const probe = await probeNode(host, target);
    if (probe.tracerPid) {
      throw nodeError(`containerd (pid ${probe.pid}) is traced by pid ${probe.tracerPid} already.`, {
        hint: 'Quit that debugger first (with `exit -c` in dlv), then attach again.',
      });
    }
    const state = await readNodeState(host, target);
    // Attaching to a stripped or optimised containerd only yields errors: check first (cheap when setup
    // recorded this very binary).
    if (state.installed?.sha256 !== probe.runningSha256) {
      const report = await inspectBinary(await fetchRunningBinary(host, probe), {
        expectedArch: probe.goArch,
        delveVersion: null,
      });
      if (!report.debuggable) {
        throw notDebuggableError(
          `containerd on ${target.endpoint.label} (${probe.binary}) is not a debug build: ${report.problems.join('; ')}.`,
          {
            hint: `Install one with: ctrdbg setup ${target.spec}`,
          },
        );
      }
    }
    const dlvPath = await nodeDlvPath(host, target);
    const agentPath = await ensureAgent(host, target, probe.goArch, log);
    log.step(`attaching dlv to containerd pid ${probe.pid} on ${target.endpoint.label}`);

    // From here containerd is paused (headless attach without --continue) until the first continue.
    const pausedAt = performance.now();
    dbg = await startNodeDebugger(host, { pid: probe.pid, agentPath, dlvPath, log });
    const { armed, resolved } = await arm(dbg, sets, log, probe.version);
    // Entries of other containerd versions (`versions:` in the set) are not misses.
    const unresolved = resolved.flatMap((r) =>
      r.entries
        .filter((e) => e.locations.length === 0 && e.notInVersion === undefined)
        .map((e) => ({ set: r.set, entry: e.entry, suggestions: e.suggestions })),
    );
    const notes = [...new Set(resolved.flatMap((r) => r.notes))];
    if (armed.size === 0) {
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

    const startedAt = performance.now();
    if (options.record) {
      writer = createSessionWriter(options.record);
      writer.writeHeader(
        sessionHeader(
          target,
          probe,
          state.installed?.manifest ?? null,
          dbg.delveVersion,
          sets,
          armed,
          options,
        ),
      );
    }
    const base = { target, probe, armed, resolved, unresolved, notes, sets };

    if (options.interactive) {
      return await interactive(
        host,
        dbg,
        writer,
        interrupt.signal,
        startedAt,
        pausedAt,
        base,
        options,
        log,
        hooks,
      );
    }

    // Stop conditions: all of them abort the recording loop, which halts (if running) and returns.
    const controller = new AbortController();
    let reason = 'interrupted' as EndReason;
    let message: string | undefined;
    const stop = (why: EndReason, text?: string) => {
      if (controller.signal.aborted) return;
      reason = why;
      message = text;
      controller.abort(why);
    };
    interrupt.signal.addEventListener('abort', () => stop('interrupted'), { once: true });
    host.onClose((error) => stop('connection-lost', error?.message ?? 'the SSH connection closed'));
    dbg.onLost((why) => stop('connection-lost', why));
    const timer = options.duration ? setTimeout(() => stop('duration'), options.duration * 1000) : undefined;

    const haltWindowMs = performance.now() - pausedAt;
    hooks.onArmed?.({ armed: armed.size, haltWindowMs });
    let triggerResult: AttachResult['trigger'];
    let outcome: RecordOutcome | undefined;
    let failure: unknown;
    const recording = recordHits({
      client: dbg.client,
      armed,
      writer,
      fieldNameRedaction: !options.noRedact,
      maxHits: options.maxHits,
      signal: controller.signal,
      startedAt,
      ...(hooks.onHit ? { onHit: hooks.onHit } : {}),
      onPanic: (what) => log.warn(`containerd stopped at ${what}`),
    }).then(
      (o) => {
        outcome = o;
        if (o.reason === 'max-hits') reason = 'max-hits';
      },
      (error: unknown) => {
        failure = error;
      },
    );
    // The trigger starts only once everything is armed and containerd runs again.
    const trigger = options.trigger
      ? runTrigger(host, target, options.trigger, Boolean(options.triggerOnNode), log).then((code) => {
          triggerResult = { command: options.trigger as string, exitCode: code };
          stop('trigger-finished', code === 0 ? undefined : `the trigger exited with ${code}`);
        })
      : undefined;
    await recording;
    if (timer) clearTimeout(timer);
    if (failure) {
      reason = reason === 'connection-lost' ? reason : 'error';
      message = (failure as Error).message;
    }
    const finished = await finish(
      host,
      target,
      dbg,
      probe.pid,
      writer,
      {
        reason,
        message,
        hits: outcome?.hits ?? 0,
        perBreakpoint: outcome?.perBreakpoint ?? {},
        startedAt,
      },
      log,
    );
    dbg = undefined;
    writer = undefined;
    if (trigger && reason !== 'trigger-finished')
      log.warn('the trigger was still running when recording stopped');
    if (failure && reason !== 'connection-lost') throw failure;
    return {
      target: target.spec,
      containerd: { pid: probe.pid, ...finished, version: probe.version },
      sets: sets.map((s) => s.name),
      armed: [...armed.values()].map((a) => ({
        name: a.name,
        function: a.function,
        file: a.file,
        line: a.line,
        optimized: a.optimized,
      })),
      unresolved,
      notes,
      haltWindowMs: Math.round(haltWindowMs),
      hits: outcome?.hits ?? 0,
      perBreakpoint: outcome?.perBreakpoint ?? {},
      stops: outcome?.stops ?? 0,
      maxStoppedMs: outcome?.maxStoppedMs ?? 0,
      reason,
      ...(message ? { message } : {}),
      detached: finished.detached,
      ...(options.record ? { record: options.record } : {}),
      ...(triggerResult ? { trigger: triggerResult } : {}),
    };
  } finally {
    interrupt.dispose();
    if (dbg) {
      // An error before or during arming: still clear and detach.
      const result = await dbg.stop().catch((error: Error) => ({ detached: false, errors: [error.message] }));
      if (!result.detached)
        log.warn(`detach reported: ${'errors' in result ? result.errors.join('; ') : 'unknown'}`);
    }
    if (writer) writer.close();
    await host.close();
  }
}

async function finish(
  host: RemoteHost,
  target: Target,
  dbg: NodeDebugger,
  pid: number,
  writer: SessionWriter | undefined,
  end: {
    reason: EndReason;
    message: string | undefined;
    hits: number;
    perBreakpoint: Record<string, number>;
    startedAt: number;
  },
  log: Logger,
): Promise<{ pidAfter: number; serving: boolean; traced: boolean; detached: boolean }> {
  log.step('clearing breakpoints and detaching');
  const stopped = await dbg.stop();
  for (const e of stopped.errors) log.warn(e);
  let pidAfter = 0;
  let serving = false;
  let traced = false;
  if (end.reason !== 'connection-lost') {
    pidAfter = await serviceControl(host, target.service)
      .mainPid()
      .catch(() => 0);
    serving = pidAfter > 0 && (await waitServing(host, target, 10_000));
    const tracer = await host
      .exec(`awk '/^TracerPid:/{print $2}' /proc/${pid}/status`, { sudo: true })
      .catch(() => undefined);
    traced = Number(tracer?.stdout.trim() ?? 0) !== 0;
    if (pidAfter !== pid) log.warn(`containerd's pid changed: ${pid} → ${pidAfter || 'none'}`);
  }
  writer?.writeEnd({
    type: 'end',
    t: Math.round(performance.now() - end.startedAt),
    wall: new Date().toISOString(),
    reason: end.reason,
    ...(end.message ? { message: end.message } : {}),
    hits: end.hits,
    perBreakpoint: end.perBreakpoint,
    dropped: 0,
    detached: stopped.detached,
    containerdPid: pidAfter || pid,
    containerdServing: serving,
  });
  writer?.close();
  return { pidAfter, serving, traced, detached: stopped.detached };
}

function sessionHeader(
  target: Target,
  probe: Awaited<ReturnType<typeof probeNode>>,
  manifest: Record<string, unknown> | null,
  delveVersion: string,
  sets: BreakpointSet[],
  armed: Map<number, ArmedBreakpoint>,
  options: AttachOptions,
): SessionHeader {
  const rules = {
    paths: [...new Set(sets.flatMap((s) => s.entries.flatMap((e) => e.redact)))],
    fieldNames: !options.noRedact,
  };
  const parts = probe.version.split(/\s+/);
  const buildId = (manifest?.binary as { buildId?: string } | undefined)?.buildId;
  const goVersion = (manifest?.binary as { goVersion?: string } | undefined)?.goVersion;
  return {
    type: 'header',
    format: SESSION_FORMAT,
    version: SESSION_VERSION,
    createdAt: new Date().toISOString(),
    ctrdbgVersion: packageVersion(),
    target: {
      spec: target.spec,
      kind: target.kind,
      host: target.endpoint.host,
      port: target.endpoint.port,
      user: target.endpoint.user,
      ...(target.minikube ? { node: target.minikube.machine } : {}),
    },
    containerd: {
      pid: probe.pid,
      binary: probe.binary,
      version: parts[2] ?? probe.version,
      ...(parts[3] ? { revision: parts[3] } : {}),
      sha256: probe.runningSha256,
      ...(buildId ? { buildId } : {}),
      ...(goVersion ? { goVersion } : {}),
    },
    buildManifest: manifest,
    delve: { version: delveVersion, apiVersion: 2 },
    sets: sets.map((s) => s.name),
    breakpoints: [...armed.values()].map(({ redact: _r, ...b }) => b),
    redaction: { enabled: !options.noRedact, rules: describeRules(rules) },
    ...(options.trigger ? { trigger: options.trigger } : {}),
  };
}

/** Runs the trigger locally (sh -c) or on the node (through sudo); its output goes to stderr, prefixed. */
async function runTrigger(
  host: RemoteHost,
  target: Target,
  command: string,
  onNode: boolean,
  log: Logger,
): Promise<number | null> {
  log.step(`trigger${onNode ? ' (on the node)' : ''}: ${command}`);
  // The trigger's own output always reaches stderr, also with --json (stdout then carries only the result).
  const show = (text: string) => {
    const lines = text
      .split('\n')
      .filter(Boolean)
      .map((l) => `  trigger│ ${l}`);
    if (lines.length) process.stderr.write(`${lines.join('\n')}\n`);
  };
  if (onNode) {
    const r = await host.exec(command, {
      sudo: true,
      timeoutMs: 3_600_000,
      env: { CTRDBG_SOCKET: target.node.socket },
    });
    show(r.stdout);
    show(r.stderr);
    return r.code;
  }
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', command], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        CTRDBG_TARGET: target.spec,
        CTRDBG_SOCKET: target.node.socket,
        CTRDBG_NODE_HOST: target.endpoint.host,
      },
    });
    child.stdout.on('data', (d: Buffer) => show(d.toString()));
    child.stderr.on('data', (d: Buffer) => show(d.toString()));
    child.on('error', () => resolve(127));
    child.on('exit', (code) => resolve(code));
  });
}

/**
 * --interactive: run until the first hit, record it, then hand over: a local port relayed to dlv on the node
 * for `dlv connect` and VS Code, kept open until Ctrl-C, then the same safe detach.
 */
async function interactive(
  host: RemoteHost,
  dbg: NodeDebugger,
  writer: SessionWriter | undefined,
  interrupt: AbortSignal,
  startedAt: number,
  pausedAt: number,
  base: {
    target: Target;
    probe: Awaited<ReturnType<typeof probeNode>>;
    armed: Map<number, ArmedBreakpoint>;
    unresolved: AttachResult['unresolved'];
    notes: string[];
    sets: BreakpointSet[];
  },
  options: AttachOptions,
  log: Logger,
  hooks: AttachHooks,
): Promise<AttachResult> {
  const controller = new AbortController();
  interrupt.addEventListener('abort', () => controller.abort('interrupted'), { once: true });
  host.onClose(() => controller.abort('connection-lost'));
  const haltWindowMs = performance.now() - pausedAt;
  hooks.onArmed?.({ armed: base.armed.size, haltWindowMs });
  log.step('waiting for the first hit (Ctrl-C to give up)');
  const outcome = await recordHits({
    client: dbg.client,
    armed: base.armed,
    writer,
    fieldNameRedaction: !options.noRedact,
    maxHits: 1,
    signal: controller.signal,
    startedAt,
    ...(hooks.onHit ? { onHit: hooks.onHit } : {}),
  });
  let server: Server | undefined;
  let port = 0;
  let launchJson: string | undefined;
  if (outcome.reason === 'max-hits') {
    server = createServer((socket) => {
      dbg.openStream().then(
        (stream) => {
          socket.pipe(stream).pipe(socket);
          socket.on('close', () => stream.end());
          stream.on('close', () => socket.destroy());
          socket.on('error', () => stream.end());
        },
        () => socket.destroy(),
      );
    });
    await new Promise<void>((resolve, reject) =>
      server?.once('error', reject).listen(options.port ?? 0, '127.0.0.1', resolve),
    );
    const address = server.address();
    port = typeof address === 'object' && address ? address.port : 0;
    const manifest = (await readNodeState(host, base.target)).installed?.manifest as
      | { source?: { sourceRoots?: string[] } }
      | undefined;
    const root = manifest?.source?.sourceRoots?.[0];
    if (root) {
      const { attachLaunchConfig, mergeLaunchJson } = await import('../commands/vscode.js');
      const merged = await mergeLaunchJson(options.vscodeDir ?? process.cwd(), [
        attachLaunchConfig({ target: base.target.spec, port, localRoot: root, remoteRoot: root }),
      ]);
      launchJson = merged.path;
    }
    hooks.onHandover?.({ port, ...(launchJson ? { launchJson } : {}) });
    log.info(
      [
        '',
        `containerd is stopped at the first hit. Connect a debugger to it:`,
        `  dlv connect 127.0.0.1:${port}`,
        `  Quit dlv with 'exit -c' (continue) — a plain 'exit' offers to kill containerd: answer n.`,
        ...(launchJson ? [`  VS Code: the "ctrdbg attach: ${base.target.spec}" entry in ${launchJson}`] : []),
        'Press Ctrl-C here to clear the breakpoints, detach and leave containerd running.',
      ].join('\n'),
    );
    await new Promise<void>((resolve) => {
      if (controller.signal.aborted) resolve();
      controller.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    server.close();
  }
  const reason: EndReason = outcome.reason === 'max-hits' ? 'interactive-ended' : 'interrupted';
  const finished = await finish(
    host,
    base.target,
    dbg,
    base.probe.pid,
    writer,
    { reason, message: undefined, hits: outcome.hits, perBreakpoint: outcome.perBreakpoint, startedAt },
    log,
  );
  return {
    target: base.target.spec,
    containerd: { pid: base.probe.pid, ...finished, version: base.probe.version },
    sets: base.sets.map((s) => s.name),
    armed: [...base.armed.values()].map((a) => ({
      name: a.name,
      function: a.function,
      file: a.file,
      line: a.line,
      optimized: a.optimized,
    })),
    unresolved: base.unresolved,
    notes: base.notes,
    haltWindowMs: Math.round(haltWindowMs),
    hits: outcome.hits,
    perBreakpoint: outcome.perBreakpoint,
    stops: outcome.stops,
    maxStoppedMs: outcome.maxStoppedMs,
    reason,
    detached: finished.detached,
    ...(options.record ? { record: options.record } : {}),
    interactive: { port, dlvConnect: `dlv connect 127.0.0.1:${port}`, ...(launchJson ? { launchJson } : {}) },
  };
}
