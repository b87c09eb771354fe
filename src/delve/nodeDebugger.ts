/**
 * Delve on the node, reached over SSH, with containerd's safety tied to the SSH connection:
 *
 *   sudo ctrdbg-agent dlv --pid P --listen 127.0.0.1:0 -- dlv     (exec channel #1: the watchdog and the recorder)
 *   sudo ctrdbg-agent relay 127.0.0.1:PORT                        (exec channel #2..n: one per debugger client)
 *
 * The agent does the work that must not wait for the SSH link: it resolves and creates breakpoints next to dlv, and
 * runs the recording loop itself, streaming hits back (commands on its stdin, events on its stdout; the protocol is
 * src/delve/agentProtocol.ts). dlv listens on the node's loopback only. Debugger clients (`dlv connect`, VS Code,
 * ctrdbg's own for the hand-over and `sets check`) reach it through a root relay rather than an SSH port forward:
 * Delve's same-user check (kept on) refuses loopback connections from another UNIX user, which is what sshd's
 * forwarded connections are; the relay also keeps every client from killing or restarting containerd
 * (node-agent/relay.go). When channel #1 closes — our exit, a killed client, a dropped connection — the agent stops
 * the loop, clears every breakpoint and detaches without killing anything. Installing the agent and dlv on the node
 * is src/deploy/nodeTools.ts.
 */
import { appendFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { type CtrdbgError, delveError, nodeError, notDebuggableError } from '../errors.js';
import type { RemoteHost, RemoteProcess } from '../nodes/remoteHost.js';
import type { Logger } from '../util/output.js';
import { shellJoin } from '../util/shell.js';
import {
  type AgentCommand,
  type AgentEvent,
  agentLineReader,
  type CreatedEvent,
  type DroppedEvent,
  type ErrorEvent,
  type ExitEvent,
  exitLeftTargetDetached,
  type FollowedEvent,
  type HitEvent,
  type ReadyEvent,
  type RecordingEvent,
  type RelayNotice,
  type ResolvedEvent,
} from './agentProtocol.js';
import { type DelveClient, delveClientFromStream } from './rpcClient.js';

/** One raw connection to dlv through a relay, and what the relay reports about its client's requests. */
export interface DebuggerStream {
  stream: Duplex;
  /** The relay's notices: a request carried out as a safe detach, one refused, the client gone. */
  onNotice(listener: (notice: RelayNotice) => void): void;
  /** Resolves when the relay process on the node has exited. */
  closed: Promise<void>;
}

/** What the agent's recording loop reports: every hit, dropped hits, and its start and end. */
export interface RecordingListeners {
  onHit(hit: HitEvent): void;
  onRecording(event: RecordingEvent): void;
  onDropped?(event: DroppedEvent): void;
  onFollowed?(event: FollowedEvent): void;
}

type Answer<C extends AgentCommand['cmd']> = C extends 'resolve'
  ? ResolvedEvent
  : C extends 'create'
    ? CreatedEvent
    : undefined;

type CommandBody = AgentCommand extends infer C ? (C extends { id: number } ? Omit<C, 'id'> : never) : never;

export interface NodeDebugger {
  /** dlv's loopback address on the node, e.g. "127.0.0.1:41235". */
  listen: string;
  dlvPid: number;
  pid: number;
  delveVersion: string;
  /** dlv's own attach (start → listening), as the agent measured it. */
  dlvAttachMs: number;
  /**
   * Sends a command to the agent; resolve and create answer with their event, record and stop at once (their
   * outcome arrives as recording events). A `failed` answer rejects.
   */
  command<B extends CommandBody>(body: B, timeoutMs?: number): Promise<Answer<B['cmd']>>;
  /** Listens to the recording loop's events (several listeners may listen). */
  subscribe(listeners: RecordingListeners): () => void;
  /** ctrdbg's own Delve client, through a relay, opened on first use (the hand-over, `sets check`). */
  client(): Promise<DelveClient>;
  /** A new raw stream to dlv through a relay (for a second client such as `dlv connect` or VS Code). */
  openStream(): Promise<DebuggerStream>;
  /**
   * Ends the session without killing containerd: the recording loop is stopped, then the watchdog's stdin is
   * closed, and the agent leaves every process the safe way (halt if running, clear every breakpoint, settle
   * pending traps, Detach{Kill:false}; SIGTERM to dlv only as the fallback). `detached` comes from /proc on the
   * node (TracerPid 0), as the agent reports it.
   */
  stop(): Promise<{
    detached: boolean;
    cleared: number;
    agentExit: ExitEvent | undefined;
    errors: string[];
  }>;
  /** Fires once if the watchdog channel ends unexpectedly. */
  onLost(listener: (reason: string) => void): void;
}

export interface StartOptions {
  /** The target as the user names it (`lab`), for hints that say what to run. */
  spec?: string;
  pid: number;
  agentPath: string;
  dlvPath: string;
  log: Logger;
  readyTimeoutMs?: number;
}

export async function startNodeDebugger(host: RemoteHost, options: StartOptions): Promise<NodeDebugger> {
  const { pid, agentPath, dlvPath, log } = options;
  // The agent keeps its log (and dlv's debugger log) on the node: what the watchdog did must be readable after
  // the SSH channel that carried its stderr is gone.
  const logFile = `${agentPath.replace(/\/bin\/ctrdbg-agent$/, '')}/agent.log`;
  const command = shellJoin([
    agentPath,
    'dlv',
    '--pid',
    String(pid),
    '--listen',
    '127.0.0.1:0',
    '--log-file',
    logFile,
    // dlv's own debugger log costs time at every stop and grows fast: only when asked for.
    ...(process.env.CTRDBG_DEBUG ? ['--log-dlv'] : []),
    '--',
    dlvPath,
  ]);
  const agent = await host.spawn(command, { sudo: true });
  let stderr = '';
  agent.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 65536) stderr = stderr.slice(-32768);
  });
  const lostListeners: ((reason: string) => void)[] = [];
  let stopping = false;
  let exitEvent: ExitEvent | undefined;
  let exited = false;
  const answers = new Map<number, { resolve: (e: AgentEvent) => void; reject: (e: Error) => void }>();
  const recordingListeners = new Set<RecordingListeners>();

  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  const ready = new Promise<ReadyEvent>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          delveError(`dlv did not start on the node within ${readyTimeoutMs / 1000} s.`, {
            hint: `Its output: ${stderr.trim().split('\n').slice(-3).join(' | ') || 'none'}`,
          }),
        ),
      readyTimeoutMs,
    );
    agent.stream.on(
      'data',
      agentLineReader((e: AgentEvent) => {
        if (e.event !== 'hit') log.debug(`agent: ${JSON.stringify(e).slice(0, 300)}`);
        // CTRDBG_AGENT_TRACE=FILE: every event the agent sent, hits included, one JSON line each (for debugging a set).
        if (process.env.CTRDBG_AGENT_TRACE)
          appendFileSync(process.env.CTRDBG_AGENT_TRACE, `${JSON.stringify(e)}\n`);
        switch (e.event) {
          case 'ready':
            clearTimeout(timer);
            resolve(e);
            break;
          case 'error':
            clearTimeout(timer);
            reject(dlvStartError(pid, e, stderr, options.spec));
            break;
          case 'exit':
            exitEvent = e;
            break;
          case 'resolved':
          case 'created':
          case 'failed': {
            const waiting = answers.get(e.id);
            answers.delete(e.id);
            if (!waiting) break;
            if (e.event === 'failed')
              waiting.reject(delveError(`The agent could not ${e.cmd}: ${e.message}`));
            else waiting.resolve(e);
            break;
          }
          case 'hit':
            for (const l of recordingListeners) l.onHit(e);
            break;
          case 'recording':
            for (const l of recordingListeners) l.onRecording(e);
            break;
          case 'dropped':
            for (const l of recordingListeners) l.onDropped?.(e);
            break;
          case 'followed':
            for (const l of recordingListeners) l.onFollowed?.(e);
            break;
        }
      }),
    );
    void agent.exited.then(({ code }) => {
      exited = true;
      clearTimeout(timer);
      for (const w of answers.values())
        w.reject(delveError(`the agent on the node exited (${code}) before it answered`));
      answers.clear();
      reject(
        delveError(`dlv exited on the node before it was ready (exit ${code}).`, {
          hint: hintFor('', stderr),
        }),
      );
      // dlv that died by itself said why in its last lines (the agent passes them on).
      const said =
        exitEvent?.reason === 'dlv-exited'
          ? exitEvent.dlvOutput?.filter((l) => l.trim() && !l.includes('API server listening at:')).at(-1)
          : undefined;
      if (!stopping)
        for (const l of lostListeners)
          l(`the debugger on the node exited (${code})${said ? `; dlv said: ${said}` : ''}`);
    });
  });
  const readyEvent = await ready;
  const listen = readyEvent.listen;
  if (!/^127\.0\.0\.1:\d+$/.test(listen)) {
    agent.end();
    throw nodeError(`The agent reported a non-loopback address (${listen}); refusing to use it.`);
  }
  if (readyEvent.apiVersion !== 2)
    throw delveError(`dlv on the node speaks API v${readyEvent.apiVersion}, not v2.`);

  const relays: RemoteProcess[] = [];
  // Set once a relay carried out a client's request to end the session: dlv is detached and exiting.
  let relayDetached: RelayNotice | undefined;
  const openStream = async (): Promise<DebuggerStream> => {
    const relay = await host.spawn(shellJoin([agentPath, 'relay', listen]), { sudo: true });
    relays.push(relay);
    const listeners: ((notice: RelayNotice) => void)[] = [];
    relay.stderr.on(
      'data',
      agentLineReader((e) => {
        if (e.event !== 'relay') return;
        log.debug(`relay: ${e.action} ${e.request ?? ''}`.trim());
        if (e.action === 'detached') relayDetached ??= e;
        for (const l of listeners) l(e);
      }),
    );
    return {
      stream: relay.stream,
      onNotice: (listener) => listeners.push(listener),
      closed: relay.exited.then(() => undefined),
    };
  };
  let ownClient: Promise<DelveClient> | undefined;
  let nextId = 1;

  return {
    listen,
    dlvPid: readyEvent.dlvPid,
    pid,
    delveVersion: readyEvent.delveVersion,
    dlvAttachMs: readyEvent.dlvAttachMs,
    command(body, timeoutMs = 120_000) {
      if (exited) return Promise.reject(delveError('the agent on the node is gone'));
      const id = nextId++;
      const line = `${JSON.stringify({ ...body, id })}\n`;
      const answered = body.cmd === 'resolve' || body.cmd === 'create';
      const done = answered
        ? new Promise<AgentEvent>((resolve, reject) => {
            const timer = setTimeout(() => {
              answers.delete(id);
              reject(delveError(`The agent did not answer ${body.cmd} within ${timeoutMs / 1000} s.`));
            }, timeoutMs);
            answers.set(id, {
              resolve: (e) => {
                clearTimeout(timer);
                resolve(e);
              },
              reject: (e) => {
                clearTimeout(timer);
                reject(e);
              },
            });
          })
        : Promise.resolve(undefined);
      agent.stream.write(line);
      return done as Promise<never>;
    },
    subscribe(listeners) {
      recordingListeners.add(listeners);
      return () => recordingListeners.delete(listeners);
    },
    client() {
      ownClient ??= openStream().then((s) =>
        delveClientFromStream(s.stream, { endpoint: `${host.endpoint.label} ${listen}`, logger: log }),
      );
      return ownClient;
    },
    openStream,
    onLost(listener) {
      lostListeners.push(listener);
    },
    async stop() {
      stopping = true;
      const errors: string[] = [];
      if (ownClient) (await ownClient.catch(() => undefined))?.close();
      for (const relay of relays) relay.end();
      // The agent stops its loop, clears, settles and detaches (unless a relay did already), then exits.
      if (!exited) {
        agent.stream.write(`${JSON.stringify({ cmd: 'stop', id: nextId++ })}\n`);
        agent.end();
      }
      const timeout = new Promise<'timeout'>((resolve) =>
        setTimeout(() => resolve('timeout'), 60_000).unref(),
      );
      const outcome = await Promise.race([agent.exited, timeout]);
      if (outcome === 'timeout') errors.push('the agent did not exit within 60 s');
      const exit = exitEvent;
      if (!exit && outcome !== 'timeout')
        errors.push(
          `the agent exited without saying how it left containerd${stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`,
        );
      if (exit?.reason === 'dlv-left-running')
        errors.push(exit.message ?? `dlv (pid ${exit.dlvPid}) is still running on the node`);
      else if (exit && !exitLeftTargetDetached(exit))
        errors.push(
          exit.target.alive
            ? `containerd is still traced by pid ${exit.target.tracerPid} after the agent's ${exit.reason}`
            : `containerd (pid ${pid}) is gone after the agent's ${exit.reason}`,
        );
      // A shim that is gone ended with its pod (ctrdbg never kills one); one still traced is a failure.
      for (const f of exit?.followed ?? []) {
        if (f.target.alive && f.target.tracerPid !== 0)
          errors.push(
            `the shim ${f.pid} (${f.binary}) is still traced by pid ${f.target.tracerPid} after the agent's ${f.reason}`,
          );
        if (f.reason === 'dlv-left-running')
          errors.push(f.message ?? `dlv for the shim ${f.pid} is still running`);
      }
      return {
        detached: exitLeftTargetDetached(exit),
        cleared: Math.max(relayDetached?.cleared ?? 0, exit?.cleared ?? 0),
        agentExit: exit,
        errors,
      };
    },
  };
}

/**
 * The error for a dlv that did not start: dlv's own words decide what it is. A binary without DWARF is not a
 * Delve failure but a containerd that is no debug build (exit 6), whatever connection dlv reset on its way out.
 */
export function dlvStartError(
  pid: number,
  event: Pick<ErrorEvent, 'message' | 'dlvOutput' | 'dlvExit'>,
  stderr: string,
  spec = 'TARGET',
): CtrdbgError {
  const said = (event.dlvOutput ?? []).filter((l) => l.trim() && !l.includes('API server listening at:'));
  const text = `${event.message}\n${said.join('\n')}`;
  if (/could not open debug info|no debug info|debug info.*(stripped|missing)|DWARF/i.test(text)) {
    return notDebuggableError(
      `containerd (pid ${pid}) has no debug information: dlv could not attach (${event.message}).`,
      {
        hint: `It is not a debug build (stripped, like a distribution's containerd). Install one with: ctrdbg setup ${spec}; \`ctrdbg doctor ${spec}\` shows what runs.`,
        details: { dlvOutput: event.dlvOutput ?? [], dlvExit: event.dlvExit ?? null },
      },
    );
  }
  return delveError(`dlv could not attach to containerd (pid ${pid}): ${event.message}`, {
    hint: hintFor(text, said.length ? said.join('\n') : stderr),
    details: { dlvOutput: event.dlvOutput ?? [], dlvExit: event.dlvExit ?? null },
  });
}

function hintFor(message: string, stderr: string): string {
  const text = `${message}\n${stderr}`;
  if (/operation not permitted|ptrace/i.test(text)) {
    return 'ptrace was refused: check kernel.yama.ptrace_scope (ctrdbg doctor) and that nothing else traces containerd.';
  }
  if (/already traced|TracerPid/i.test(text))
    return 'Another debugger is attached: quit it with `exit -c` first.';
  if (/could not find|no such process/i.test(text))
    return 'containerd restarted meanwhile: run the command again.';
  if (/version of Go|too old|too new/i.test(text))
    return 'This Delve does not support the Go version containerd was built with.';
  return `dlv said: ${stderr.trim().split('\n').slice(-3).join(' | ') || 'nothing'}`;
}
