/** Loopback networking helpers: free ports and SSH banner checks. */
import { connect, createServer } from 'node:net';

/** A port that was free on 127.0.0.1 a moment ago (the caller retries if it is taken in between). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Reads the first line a TCP server sends (an SSH server's identification string), or undefined. */
export function readBanner(host: string, port: number, timeoutMs = 3000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let data = '';
    const done = (value: string | undefined) => {
      socket.destroy();
      resolve(value);
    };
    socket.setTimeout(timeoutMs, () => done(undefined));
    socket.on('error', () => done(undefined));
    // A server that accepts and closes without a word (QEMU's port forward while the guest's sshd is not up
    // yet) ends the socket with no error; without this the promise never settles and, with no other handle
    // left, Node exits silently mid-command.
    socket.on('close', () => done(undefined));
    socket.on('data', (chunk) => {
      data += chunk.toString('latin1');
      const end = data.indexOf('\n');
      if (end >= 0) done(data.slice(0, end).trim());
    });
  });
}
