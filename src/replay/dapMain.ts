/**
 * Runs the replay debug adapter: over stdio (what VS Code starts for a `ctrdbg-replay` launch), or as a TCP
 * server on the loopback interface for debugging the adapter itself and for clients that connect to a port.
 */
import { createServer, type Socket } from 'node:net';
import { stderr, stdin, stdout } from 'node:process';
import { usageError } from '../errors.js';
import { ReplayDebugSession } from './dapSession.js';

/** Serves one client on stdin/stdout; resolves when it disconnects or closes the stream. */
export function runDapStdio(
  input: NodeJS.ReadableStream = stdin,
  output: NodeJS.WritableStream = stdout,
): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      // Stop reading so the process can exit once the last response is written.
      if (input === stdin) stdin.pause();
      resolve();
    };
    const session = new ReplayDebugSession({ onShutdown: finish });
    session.start(input, output);
    input.on('close', finish);
    input.on('end', finish);
  });
}

export interface DapServer {
  port: number;
  /** Resolves when the server has closed. */
  closed: Promise<void>;
  close(): void;
}

/** Listens on 127.0.0.1:port (0 = any free port): one ReplayDebugSession per connection. Never 0.0.0.0. */
export async function startDapServer(port: number): Promise<DapServer> {
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw usageError(`--server expects a port number, got ${port}`);
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const session = new ReplayDebugSession({ onShutdown: () => socket.end() });
    session.setRunAsServer(true);
    session.start(socket, socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  const closed = new Promise<void>((resolve) => server.on('close', () => resolve()));
  return {
    port: actual,
    closed,
    close: () => {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

/** `ctrdbg dap --server PORT`: prints the readiness line on stderr and serves until SIGINT/SIGTERM. */
export async function serveDapUntilSignal(port: number): Promise<number> {
  const server = await startDapServer(port);
  stderr.write(`ctrdbg dap: listening on 127.0.0.1:${server.port}\n`);
  const stop = () => server.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await server.closed;
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  return server.port;
}
