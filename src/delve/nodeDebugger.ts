/**
 * Delve on the node, reached over SSH, with containerd's safety tied to the SSH connection:
 *
 *   sudo ctrdbg-agent dlv --pid P --listen 127.0.0.1:0 -- dlv     (exec channel #1: the watchdog)
 *   sudo ctrdbg-agent relay 127.0.0.1:PORT                        (exec channel #2..n: one per RPC client)
 *
 * dlv listens on the node's loopback only. Clients reach it through a root relay rather than an SSH port
 * forward because Delve's same-user check (kept on) refuses loopback connections from another UNIX user,
 * which is what sshd's forwarded connections are (the login user, not root). The relay also keeps every client
 * from killing or restarting containerd (node-agent/relay.go). When channel #1 closes — our exit, a killed
 * client, a dropped connection — the agent clears every breakpoint and detaches without killing containerd.
 * Installing the agent and dlv on the node is src/deploy/nodeTools.ts.
 */
import type { Duplex } from 'node:stream';
import { parseDelveVersion } from '../debugbuild/debugInfo.js';
import { delveError, nodeError } from '../errors.js';
import type { RemoteHost, RemoteProcess } from '../nodes/remoteHost.js';
import type { Logger } from '../util/output.js';
import { shellJoin } from '../util/shell.js';
import {
  type AgentEvent,
  agentLineReader,
  type ExitEvent,
  exitLeftTargetDetached,
  type ReadyEvent,
  type RelayNotice,
} from './agentProtocol.js';
import type { DelveClient } from './rpcClient.js';
import { delveClientFromStream } from './rpcClient.js';

/** One raw connection to dlv through a relay, and what the relay reports about its client's requests. */
export interface DebuggerStream {
  stream: Duplex;
  /** The relay's notices: a request carried out as a safe detach, one refused, the client gone. */
  onNotice(listener: (notice: RelayNotice) => void): void;
  /** Resolves when the relay process on the node has exited. */
  closed: Promise<void>;
}

export interface NodeDebugger {
  client: DelveClient;
  /** dlv's loopback address on the node, e.g. "127.0.0.1:41235". */
  listen: string;
  dlvPid: number;
  pid: number;
  delveVersion: string;
  /** A new raw stream to dlv through a relay (for a second client such as `dlv connect` or VS Code). */
  openStream(): Promise<DebuggerStream>;
  /**
   * Ends the session without killing containerd: a Detach through our relay, which the relay carries out as the
   * safe detach (halt if running, clear every breakpoint, settle pending traps, Detach{Kill:false}); then, whatever
   * happened, the watchdog's stdin is closed, which makes the agent do the same on the node if it is still needed.
   * `detached` comes from /proc on the node (TracerPid 0), as the agent reports it.
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
    '--',
    dlvPath,
  ]);
  log.debug(`node: sudo ${command}`);
  const agent = await host.spawn(command, { sudo: true });
  let stderr = '';
  agent.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 65536) stderr = stderr.slice(-32768);
  });
  const lostListeners: ((reason: string) => void)[] = [];
  let stopping = false;
  let exitEvent: ExitEvent | undefined;

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
        if (e.event === 'ready') {
          clearTimeout(timer);
          resolve(e);
        } else if (e.event === 'error') {
          clearTimeout(timer);
          reject(
            delveError(`dlv could not attach to containerd (pid ${pid}): ${e.message}`, {
              hint: hintFor(e.message, stderr),
            }),
          );
        } else if (e.event === 'exit') {
          exitEvent = e;
        }
      }),
    );
    void agent.exited.then(({ code }) => {
      clearTimeout(timer);
      reject(
        delveError(`dlv exited on the node before it was ready (exit ${code}).`, {
          hint: hintFor('', stderr),
        }),
      );
      if (!stopping) for (const l of lostListeners) l(`the debugger on the node exited (${code})`);
    });
  });
  const readyEvent = await ready;
  const listen = readyEvent.listen;
  if (!/^127\.0\.0\.1:\d+$/.test(listen)) {
    agent.end();
    throw nodeError(`The agent reported a non-loopback address (${listen}); refusing to use it.`);
  }
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
  const own = await openStream();
  const client = delveClientFromStream(own.stream, {
    endpoint: `${host.endpoint.label} ${listen}`,
    logger: log,
  });
  const version = await client.getVersion();
  if (version.APIVersion !== 2)
    throw delveError(`dlv on the node speaks API v${version.APIVersion}, not v2.`);

  return {
    client,
    listen,
    dlvPid: readyEvent.dlvPid,
    pid,
    // DelveVersion is dlv's whole banner ("Version: 1.20.2\nBuild: …"); keep the number.
    delveVersion: parseDelveVersion(version.DelveVersion) ?? version.DelveVersion.split('\n')[0] ?? '',
    openStream,
    onLost(listener) {
      lostListeners.push(listener);
    },
    async stop() {
      stopping = true;
      const errors: string[] = [];
      // Nothing to detach when a relay did it already (a hand-over client's `exit`) or dlv is gone.
      if (!client.closed && !relayDetached && !exitEvent) {
        try {
          // The relay turns this into the safe detach (node-agent/cleanup.go).
          await client.detach(false, { timeoutMs: 60_000 });
        } catch (error) {
          errors.push(`detach through the relay: ${(error as Error).message}`);
        }
        client.close();
      }
      for (const relay of relays) relay.end();
      // Closing stdin makes the agent clean up on its own if the detach did not happen, then exit.
      agent.end();
      const timeout = new Promise<'timeout'>((resolve) =>
        setTimeout(() => resolve('timeout'), 45_000).unref(),
      );
      const outcome = await Promise.race([agent.exited, timeout]);
      if (outcome === 'timeout') errors.push('the agent did not exit within 45 s');
      const exit = exitEvent;
      if (exit?.reason === 'dlv-left-running')
        errors.push(exit.message ?? `dlv (pid ${exit.dlvPid}) is still running on the node`);
      else if (exit && !exitLeftTargetDetached(exit))
        errors.push(
          exit.target.alive
            ? `containerd is still traced by pid ${exit.target.tracerPid} after the agent's ${exit.reason}`
            : `containerd (pid ${pid}) is gone after the agent's ${exit.reason}`,
        );
      return {
        detached: exitLeftTargetDetached(exit),
        cleared: Math.max(relayDetached?.cleared ?? 0, exit?.cleared ?? 0),
        agentExit: exit,
        errors,
      };
    },
  };
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
