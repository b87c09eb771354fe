/**
 * The only module that imports ssh2. It turns ssh2's client into three small things the rest of the SSH layer
 * works with: a connection that was verified against pinned host keys, exec channels that carry their exit
 * status from the moment they open, and forwarded TCP connections. Everything else (timeouts, queues, errors
 * with hints, transfers) is ssh2-free and lives beside this file.
 */
import type { Duplex, Readable } from 'node:stream';
import type { ClientChannel, ConnectConfig, ParsedKey, ServerHostKeyAlgorithm } from 'ssh2';
import ssh2 from 'ssh2';

// ssh2 is CommonJS and Node cannot see `utils` as a named export; the default import is module.exports.
const { Client, utils: sshUtils } = ssh2;
type SshClient = InstanceType<typeof Client>;

/** How a remote command ended, filled in by ssh2's `exit` event (exit-status or exit-signal). */
export interface ExitStatus {
  exit?: { code: number | null; signal?: string };
}

/** An exec channel: stdin/stdout as the duplex, stderr beside it. */
export interface ExecChannel {
  stream: Duplex;
  stderr: Readable;
  status: ExitStatus;
  /** True while our side may still write (no EOF sent). */
  readonly writable: boolean;
  /** Sends a signal request (RFC 4254 6.9), which OpenSSH delivers to the command's process group. */
  signal(name: 'TERM' | 'KILL'): void;
  close(): void;
  onClose(listener: () => void): void;
}

/** ssh2's host-key algorithms, strongest first, and the signature algorithms each known_hosts key type allows. */
export const HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
] as const;
const ALGORITHMS_FOR_KEY_TYPE: Record<string, string[]> = {
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/** The server host-key algorithms to offer, the types `pinnedTypes` names first (as OpenSSH does). */
export function hostKeyPreference(pinnedTypes: string[]): string[] {
  const all: readonly string[] = HOST_KEY_ALGORITHMS;
  const first: string[] = [];
  for (const type of pinnedTypes) {
    for (const algorithm of ALGORITHMS_FOR_KEY_TYPE[type] ?? [type]) {
      if (all.includes(algorithm) && !first.includes(algorithm)) first.push(algorithm);
    }
  }
  return [...first, ...all.filter((a) => !first.includes(a))];
}

export type ParsedPrivateKey =
  | { ok: true; fingerprintBlob: Buffer }
  | { ok: false; reason: 'encrypted' | 'invalid' | 'public'; message?: string };

/** Parses a private key file's bytes the way the connection will use them. */
export function parsePrivateKey(data: Buffer): ParsedPrivateKey {
  const parsed = sshUtils.parseKey(data);
  const first: ParsedKey | Error | undefined = Array.isArray(parsed) ? parsed[0] : parsed;
  if (first === undefined || first instanceof Error) {
    const encrypted = first instanceof Error && /encrypted|passphrase/i.test(first.message);
    return {
      ok: false,
      reason: encrypted ? 'encrypted' : 'invalid',
      ...(first instanceof Error ? { message: first.message } : {}),
    };
  }
  if (!first.isPrivateKey()) return { ok: false, reason: 'public' };
  return { ok: true, fingerprintBlob: first.getPublicSSH() };
}

export interface ConnectOptions {
  host: string;
  port: number;
  user: string;
  privateKey: Buffer;
  readyTimeoutMs: number;
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  hostKeyAlgorithms: string[];
  /** Decides on the server's host key (a blob); false ends the handshake before authentication. */
  verifyHostKey(blob: Buffer): boolean;
}

/** A connection whose host key was verified. */
export interface SshConnection {
  /** Opens an exec channel for `line`; its exit status is captured from the moment it opens. */
  exec(line: string): Promise<ExecChannel>;
  /** Opens a direct-tcpip channel to host:port as seen from the server. */
  forwardOut(host: string, port: number): Promise<Duplex>;
  /** Ends the connection politely; resolves on close (or destroys it after `timeoutMs`). */
  end(timeoutMs: number): Promise<void>;
  onError(listener: (error: Error) => void): void;
  onClose(listener: () => void): void;
}

/**
 * Sends a signal request. ssh2's Channel.signal() silently does nothing once our side sent EOF (it checks
 * `writable`), yet that is the usual state of a command we time out; so after EOF use the protocol object
 * underneath.
 */
function sendSignal(channel: ClientChannel, name: 'TERM' | 'KILL', onError: (e: unknown) => void): void {
  try {
    if (channel.writable) {
      channel.signal(name);
      return;
    }
    const inner = channel as unknown as {
      outgoing?: { id?: number; state?: string };
      _client?: { _protocol?: { signal?: (id: number, signal: string) => void } };
    };
    const id = inner.outgoing?.id;
    const state = inner.outgoing?.state;
    if ((state === 'open' || state === 'eof') && typeof id === 'number')
      inner._client?._protocol?.signal?.(id, name);
  } catch (error) {
    onError(error);
  }
}

function wrap(client: SshClient, debug: (m: string) => void): SshConnection {
  return {
    exec: (line) =>
      new Promise<ExecChannel>((resolve, reject) => {
        try {
          client.exec(line, (error, channel) => {
            if (error) return reject(error);
            // Captured here, synchronously: ssh2 parses every packet of one TCP read in one go, so for a short
            // command the data, EOF, exit-status and close can all be processed before an `await` in the caller
            // resumes; an `exit` listener attached after that await misses the event (the close itself waits
            // for the buffered output to be read, so it still arrives). That was the "ended without an exit
            // status" that failed healthy commands about once in 25 on a fresh connection.
            const status: ExitStatus = {};
            channel.on('exit', (code: number | null, signal?: string) => {
              status.exit = signal ? { code, signal } : { code };
            });
            resolve({
              stream: channel,
              stderr: channel.stderr,
              status,
              get writable() {
                return channel.writable;
              },
              signal: (name) =>
                sendSignal(channel, name, (e) => debug(`ssh: could not send SIG${name}: ${String(e)}`)),
              close: () => channel.close(),
              onClose: (listener) => channel.once('close', listener),
            });
          });
        } catch (error) {
          reject(error);
        }
      }),
    forwardOut: (host, port) =>
      new Promise<Duplex>((resolve, reject) => {
        try {
          client.forwardOut('127.0.0.1', 0, host, port, (error, channel) =>
            error ? reject(error) : resolve(channel),
          );
        } catch (error) {
          // ssh2 throws synchronously when the socket is already gone.
          reject(error);
        }
      }),
    end: (timeoutMs) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          client.destroy();
          resolve();
        }, timeoutMs);
        client.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        client.end();
      }),
    onError: (listener) => client.on('error', listener),
    onClose: (listener) => client.on('close', listener),
  };
}

/**
 * Connects and authenticates. Rejects with ssh2's error (its `level` says client-authentication or
 * client-timeout), or with `{ closedDuringHandshake: true }` when the server hung up; the caller maps both.
 */
export function connectSsh(options: ConnectOptions, debug: (m: string) => void): Promise<SshConnection> {
  const client = new Client();
  const config: ConnectConfig = {
    host: options.host,
    port: options.port,
    username: options.user,
    privateKey: options.privateKey,
    readyTimeout: options.readyTimeoutMs,
    keepaliveInterval: options.keepaliveIntervalMs,
    keepaliveCountMax: options.keepaliveCountMax,
    tryKeyboard: false,
    algorithms: { serverHostKey: options.hostKeyAlgorithms as ServerHostKeyAlgorithm[] },
    hostVerifier: (blob: Buffer): boolean => options.verifyHostKey(blob),
  };
  return new Promise<SshConnection>((resolve, reject) => {
    let settled = false;
    const settle = (error?: unknown) => {
      if (settled) return;
      settled = true;
      client.removeListener('ready', onReady);
      if (error !== undefined) {
        // Keep a listener: ssh2 may emit more errors while tearing down, and an unheard 'error' crashes.
        client.on('error', () => {});
        client.destroy();
        reject(error);
      } else resolve(wrap(client, debug));
    };
    const onReady = () => settle();
    client.once('ready', onReady);
    client.on('error', (error: Error) => settle(error));
    client.once('close', () => settle({ closedDuringHandshake: true }));
    try {
      client.connect(config);
    } catch (error) {
      settle({ connectThrew: error });
    }
  });
}
