/**
 * --interactive: containerd stopped at the first hit, handed over to a debugger the user runs (`dlv connect`,
 * VS Code in `mode: remote`). Each connection to the local port is relayed to dlv on the node through
 * `ctrdbg-agent relay`, which never forwards a request that would kill or restart containerd: a dlv `exit`
 * answered with the defaults becomes a safe detach. While the hand-over lasts, ctrdbg watches containerd
 * (Delve's non-blocking State, a few times a second) and the clients, measures how long containerd is held
 * stopped, and says at once when a client leaves it stopped.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { RelayNotice } from '../delve/agentProtocol.js';
import type { NodeDebugger } from '../delve/nodeDebugger.js';
import { usageError } from '../errors.js';
import type { Logger } from '../util/output.js';

export interface HandoverPort {
  port: number;
  server: Server;
  close(): void;
}

/**
 * Binds the hand-over port before anything touches the node, so a port in use is a usage error and containerd
 * was never stopped for nothing.
 */
export async function bindHandoverPort(port: number | undefined): Promise<HandoverPort> {
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535))
    throw usageError(`--port ${port} is not a TCP port number.`, {
      hint: 'Use 1-65535, or leave --port out.',
    });
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'EADDRINUSE'
          ? usageError(
              `Port ${port} on 127.0.0.1 is already in use, so ctrdbg cannot hand containerd over there.`,
              {
                hint: 'Choose another --port, or leave it out to take any free one. containerd was not touched.',
              },
            )
          : usageError(`Cannot listen on 127.0.0.1:${port}: ${error.message}.`, {
              hint: 'Choose another --port, or leave it out. containerd was not touched.',
            }),
      );
    });
    server.listen(port ?? 0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    server,
    close: () => server.close(),
  };
}

export type HandoverEnd =
  /** The client asked to end the session (dlv `exit`, DAP disconnect): the relay detached safely. */
  | 'handover-detached'
  /** The last client left containerd running: the hand-over is over. */
  | 'handover-ended'
  | 'interrupted'
  | 'duration'
  | 'connection-lost';

export interface HandoverOutcome {
  reason: HandoverEnd;
  message?: string;
  /** Every interval containerd was held stopped during the hand-over (ms), in order. */
  holdsMs: number[];
  /** Requests the relay carried out as a safe detach or refused. */
  requests: RelayNotice[];
  clients: number;
}

export interface HandoverOptions {
  port: HandoverPort;
  dbg: NodeDebugger;
  /** performance.now() when containerd stopped at the hit that started the hand-over. */
  stoppedSince: number;
  /** Aborts with the reason ('interrupted', 'duration', 'connection-lost'). */
  signal: AbortSignal;
  log: Logger;
  /** How often containerd's state is polled. */
  pollMs?: number;
  /** How often a client-less hold is reported again. */
  remindMs?: number;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export async function serveHandover(options: HandoverOptions): Promise<HandoverOutcome> {
  const { dbg, log, port } = options;
  const pollMs = options.pollMs ?? 250;
  const remindMs = options.remindMs ?? 15_000;
  const holdsMs: number[] = [];
  const requests: RelayNotice[] = [];
  let holdStart: number | undefined = options.stoppedSince;
  let connected = 0;
  let clients = 0;
  let lastReminder = 0;
  let resolveEnd: (outcome: Pick<HandoverOutcome, 'reason' | 'message'>) => void = () => {};
  const ended = new Promise<Pick<HandoverOutcome, 'reason' | 'message'>>((resolve) => {
    resolveEnd = resolve;
  });
  let finished = false;
  const end = (reason: HandoverEnd, message?: string) => {
    if (finished) return;
    finished = true;
    resolveEnd(message ? { reason, message } : { reason });
  };

  const heldFor = () => (holdStart === undefined ? 0 : performance.now() - holdStart);
  const observe = (running: boolean) => {
    if (running && holdStart !== undefined) {
      holdsMs.push(performance.now() - holdStart);
      holdStart = undefined;
    } else if (!running && holdStart === undefined) holdStart = performance.now();
  };
  // ctrdbg's own client opens on first use; nothing here may wait before the connection listener is attached
  // (below): a debugger that connects the moment the port is printed must not land on a server nobody serves.
  const state = async (): Promise<boolean | undefined> => {
    try {
      const client = await dbg.client();
      if (client.closed) return undefined;
      const s = await client.state(true, { timeoutMs: 5_000 });
      observe(s.Running);
      return s.Running;
    } catch {
      return undefined;
    }
  };

  const sockets = new Set<Socket>();
  const onConnection = (socket: Socket) => {
    sockets.add(socket);
    clients++;
    connected++;
    log.step(`a debugger connected to the hand-over port (${connected} connected)`);
    dbg.openStream().then(
      (relay) => {
        relay.onNotice((notice) => {
          if (notice.action === 'client-left') return;
          requests.push(notice);
          if (notice.action === 'detached') {
            log.warn(
              `the debugger asked to end the session (${notice.request}): ctrdbg did not let it kill or stop containerd — it cleared ${notice.cleared ?? 0} breakpoints and detached instead; containerd keeps running`,
            );
            end('handover-detached', `the debugger client sent ${notice.request}; detached without killing`);
          } else if (notice.action === 'refused') {
            log.warn(
              `refused the debugger's ${notice.request}: it would kill or restart containerd${notice.message ? ` (${notice.message})` : ''}`,
            );
          }
        });
        socket.pipe(relay.stream).pipe(socket);
        socket.on('close', () => relay.stream.end());
        socket.on('error', () => relay.stream.end());
        // The relay's last words (e.g. the answer to a Detach it carried out) must reach the client: end the
        // socket after them rather than destroying it.
        relay.stream.on('close', () => socket.end());
      },
      (error: Error) => {
        log.warn(`could not relay the debugger to dlv: ${error.message}`);
        socket.destroy();
      },
    );
    socket.on('close', () => {
      sockets.delete(socket);
      connected--;
      if (connected > 0 || finished) return;
      void state().then((running) => {
        if (finished || connected > 0) return;
        if (running === true) {
          log.step(
            'the debugger left containerd running: ending the hand-over (clearing breakpoints, detaching)',
          );
          end('handover-ended', 'the debugger client left containerd running');
        } else if (running === false) {
          lastReminder = performance.now();
          log.warn(
            `the debugger left, and containerd is still STOPPED (held for ${seconds(heldFor())}): connect again (dlv connect 127.0.0.1:${port.port}), or press Ctrl-C here to clear the breakpoints and let it run`,
          );
        }
      });
    });
  };
  port.server.on('connection', onConnection);

  const poll = setInterval(() => {
    void state().then((running) => {
      if (running === false && connected === 0 && clients > 0) {
        const now = performance.now();
        if (now - lastReminder >= remindMs) {
          lastReminder = now;
          log.warn(`containerd has been held stopped for ${seconds(heldFor())} with no debugger connected`);
        }
      }
    });
  }, pollMs);
  const onAbort = () => end(options.signal.reason as HandoverEnd);
  if (options.signal.aborted) onAbort();
  else options.signal.addEventListener('abort', onAbort, { once: true });
  // A relay's safe detach ends dlv, so the watchdog's channel may close just before the relay's notice (it
  // travels on another channel) arrives: give the notice a moment before calling it a lost connection.
  dbg.onLost((why) => {
    setTimeout(() => end('connection-lost', why), 1_000).unref();
  });

  const outcome = await ended;
  clearInterval(poll);
  options.signal.removeEventListener('abort', onAbort);
  port.server.off('connection', onConnection);
  port.close();
  // A client whose request ended the session (a Detach the relay carried out) gets its answer first: the relay
  // writes it, then closes, and its close ends the socket. Only what is still open after that is cut.
  if (outcome.reason === 'handover-detached' && sockets.size > 0) {
    // 'finish': everything written to the socket has reached the system (the relay's close ended it).
    const closed = [...sockets].map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.writableFinished || s.destroyed) resolve();
          s.once('finish', () => resolve());
          s.once('close', () => resolve());
        }),
    );
    await Promise.race([Promise.all(closed), new Promise((r) => setTimeout(r, 5_000).unref())]);
  }
  for (const socket of sockets) socket.destroy();
  if (outcome.reason !== 'handover-detached') await state();
  if (holdStart !== undefined) holdsMs.push(performance.now() - holdStart);
  return { ...outcome, holdsMs, requests, clients };
}
