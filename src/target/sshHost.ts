/**
 * The ssh2 implementation of RemoteHost — the only module that imports ssh2.
 *
 * - Host keys are pinned: the server's key must match the endpoint's known_hosts (see knownHosts.ts); an
 *   unknown or changed key ends the handshake before authentication, so the key is never offered to a
 *   host we have not verified.
 * - Every failure becomes one of the taxonomy's errors (unreachable, auth, hostKey, sudo, node, input) with
 *   a hint, so callers never see ssh2's raw messages alone.
 * - Session channels (exec, spawn, upload, pipeTo) go through a small queue: OpenSSH allows 10 sessions per
 *   connection (MaxSessions), and a refused channel open shrinks the queue to what the server accepts.
 *   Forwarded TCP connections are not sessions and are not queued.
 * - Keep-alives notice a dead connection within about 12 s; `onClose` listeners hear about it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { posix } from 'node:path';
import { type Duplex, PassThrough, type Readable } from 'node:stream';
import type { ClientChannel, ConnectConfig, ParsedKey, ServerHostKeyAlgorithm } from 'ssh2';
import ssh2 from 'ssh2';
import {
  authError,
  type CtrdbgError,
  hostKeyError,
  inputError,
  interruptedError,
  nodeError,
  sudoError,
  unreachableError,
} from '../errors.js';
import { createLogger } from '../util/output.js';
import {
  checkHostKey,
  fingerprintSha256,
  type HostKeyCheck,
  type KnownHostsFile,
  keyTypeOfBlob,
  knownHostsLine,
  knownHostsName,
  parseKnownHosts,
  pinnedKeyTypes,
} from './knownHosts.js';
import type {
  ExecOptions,
  ExecResult,
  RemoteHost,
  RemoteProcess,
  SshEndpoint,
  UploadOptions,
  UploadResult,
} from './remoteHost.js';
import { shellJoin, shellQuote } from './remoteHost.js';

// ssh2 is CommonJS and Node cannot see `utils` as a named export; the default import is module.exports.
const { Client, utils: sshUtils } = ssh2;
type SshClient = InstanceType<typeof Client>;

const log = createLogger();

const DEFAULT_READY_TIMEOUT_MS = 15_000;
const DEFAULT_EXEC_TIMEOUT_MS = 120_000;
/** pipeTo carries whole source trees; a slow link needs more than an ordinary command. */
const DEFAULT_PIPE_TIMEOUT_MS = 600_000;
/** An upload may take long on a slow link, but not stand still this long. */
const UPLOAD_STALL_MS = 60_000;
/** Waiting for a free session slot (all taken by long-running spawns) is a bug or a hang: say so. */
const SESSION_WAIT_MS = 60_000;
const FORWARD_OPEN_TIMEOUT_MS = 15_000;
const CLOSE_TIMEOUT_MS = 5_000;
const KEEPALIVE_INTERVAL_MS = 3_000;
const KEEPALIVE_COUNT_MAX = 3;
/** OpenSSH's default MaxSessions. */
const MAX_SESSIONS = 10;

/** ssh2's host-key algorithms, strongest first, and the signature algorithms each known_hosts key type allows. */
const HOST_KEY_ALGORITHMS: ServerHostKeyAlgorithm[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];
const ALGORITHMS_FOR_KEY_TYPE: Record<string, ServerHostKeyAlgorithm[]> = {
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

export async function connectHost(endpoint: SshEndpoint): Promise<RemoteHost> {
  const key = await readPrivateKey(endpoint.keyPath);
  const knownHosts = await readKnownHosts(endpoint.knownHostsPath);
  const readyTimeout = endpoint.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const client = new Client();
  let hostKeyFailure: CtrdbgError | undefined;

  const config: ConnectConfig = {
    host: endpoint.host,
    port: endpoint.port,
    username: endpoint.user,
    privateKey: key.data,
    readyTimeout,
    keepaliveInterval: KEEPALIVE_INTERVAL_MS,
    keepaliveCountMax: KEEPALIVE_COUNT_MAX,
    tryKeyboard: false,
    // Ask first for the key types the file pins (as OpenSSH does): a host with both an RSA and an
    // Ed25519 key, pinned by its RSA key, must be verified by that key rather than reported unknown.
    algorithms: {
      serverHostKey: hostKeyPreference(pinnedKeyTypes(knownHosts.file, endpoint.host, endpoint.port)),
    },
    hostVerifier: (blob: Buffer): boolean => {
      const check = checkHostKey(knownHosts.file, endpoint.host, endpoint.port, blob);
      if (check.status === 'match') {
        log.debug(
          `${endpoint.label}: host key ${fingerprintSha256(blob)} matches ${endpoint.knownHostsPath}:${check.entry.line}`,
        );
        return true;
      }
      hostKeyFailure = hostKeyProblem(endpoint, knownHosts.exists, check, blob);
      return false;
    },
  };

  log.debug(
    `${endpoint.label}: connecting to ${endpoint.user}@${endpoint.host}:${endpoint.port} with ${endpoint.keyPath}`,
  );
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (error?: Error) => {
      if (settled) return;
      settled = true;
      client.removeListener('ready', onReady);
      if (error) {
        // Keep a listener: ssh2 may emit more errors while tearing down, and an unheard 'error' crashes.
        client.on('error', () => {});
        client.destroy();
        reject(error);
      } else resolve();
    };
    const onReady = () => settle();
    client.once('ready', onReady);
    client.on('error', (error: Error & { level?: string }) =>
      settle(hostKeyFailure ?? connectError(endpoint, key, readyTimeout, error)),
    );
    client.once('close', () =>
      settle(
        hostKeyFailure ??
          unreachableError(`The SSH connection to ${describe(endpoint)} closed during the handshake.`, {
            hint: 'Check that an SSH server listens there and accepts connections (MaxStartups, AllowUsers).',
          }),
      ),
    );
    try {
      client.connect(config);
    } catch (error) {
      settle(
        inputError(`Cannot start an SSH connection to ${describe(endpoint)}: ${messageOf(error)}`, {
          cause: error,
        }),
      );
    }
  });
  log.debug(`${endpoint.label}: connected`);
  return new SshRemoteHost(endpoint, client);
}

interface PrivateKey {
  data: Buffer;
  fingerprint: string;
}

async function readPrivateKey(path: string): Promise<PrivateKey> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (error) {
    throw inputError(`Cannot read the SSH key ${path}: ${messageOf(error)}.`, {
      hint: 'Pass the private key file (not the .pub) with --key, readable by the user running ctrdbg.',
      cause: error,
    });
  }
  const parsed = sshUtils.parseKey(data);
  const first: ParsedKey | Error | undefined = Array.isArray(parsed) ? parsed[0] : parsed;
  if (first === undefined || first instanceof Error) {
    const encrypted = first instanceof Error && /encrypted|passphrase/i.test(first.message);
    throw inputError(
      encrypted
        ? `The SSH key ${path} is protected by a passphrase, which ctrdbg cannot prompt for.`
        : `${path} is not an SSH private key ctrdbg can read${first instanceof Error ? ` (${first.message})` : ''}.`,
      {
        hint: encrypted
          ? `Use a key without a passphrase, e.g. a copy: cp ${path} ${path}.ctrdbg && ssh-keygen -p -N '' -f ${path}.ctrdbg`
          : 'Pass an OpenSSH or PEM private key (ed25519, ecdsa or rsa) with --key.',
        cause: first,
      },
    );
  }
  if (!first.isPrivateKey()) {
    throw inputError(`${path} is a public key; ctrdbg needs the private key to log in.`, {
      hint: `Pass the file without .pub (e.g. ${path.replace(/\.pub$/, '')}).`,
    });
  }
  return { data, fingerprint: fingerprintSha256(first.getPublicSSH()) };
}

async function readKnownHosts(path: string): Promise<{ file: KnownHostsFile; exists: boolean }> {
  try {
    const file = parseKnownHosts(await readFile(path, 'utf8'));
    for (const bad of file.invalid) log.debug(`${path}:${bad.line}: skipped: ${bad.reason}`);
    return { file, exists: true };
  } catch (error) {
    // A missing file is "no host pinned yet": the handshake still runs so the error can show the key.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      return { file: { entries: [], invalid: [] }, exists: false };
    throw inputError(`Cannot read the known_hosts file ${path}: ${messageOf(error)}.`, {
      hint: 'Make it readable by the user running ctrdbg.',
      cause: error,
    });
  }
}

function hostKeyPreference(pinnedTypes: string[]): ServerHostKeyAlgorithm[] {
  const first: ServerHostKeyAlgorithm[] = [];
  for (const type of pinnedTypes) {
    for (const algorithm of ALGORITHMS_FOR_KEY_TYPE[type] ?? [type as ServerHostKeyAlgorithm]) {
      if (HOST_KEY_ALGORITHMS.includes(algorithm) && !first.includes(algorithm)) first.push(algorithm);
    }
  }
  return [...first, ...HOST_KEY_ALGORITHMS.filter((a) => !first.includes(a))];
}

function describe(endpoint: SshEndpoint): string {
  return `${endpoint.label} (${endpoint.user}@${endpoint.host}:${endpoint.port})`;
}

function hostKeyProblem(
  endpoint: SshEndpoint,
  fileExists: boolean,
  check: HostKeyCheck,
  blob: Buffer,
): CtrdbgError {
  const path = endpoint.knownHostsPath;
  const presented = `${keyTypeOfBlob(blob) ?? 'unknown-type'} key ${fingerprintSha256(blob)}`;
  const name = knownHostsName(endpoint.host, endpoint.port);
  const details = { knownHostsPath: path, host: name, presented: fingerprintSha256(blob) };
  switch (check.status) {
    case 'match':
      throw new Error('hostKeyProblem called for a matching key');
    case 'revoked':
      return hostKeyError(
        `The host key of ${describe(endpoint)} (${presented}) is marked @revoked in ${path} line ${check.entry.line}; refusing to connect.`,
        {
          hint: 'Do not use this node until its owner replaces the host key.',
          details: { ...details, line: check.entry.line },
        },
      );
    case 'mismatch': {
      const pins = check.entries
        .map((e) => `line ${e.line} (${e.keyType} ${fingerprintSha256(e.key)})`)
        .join(', ');
      return hostKeyError(
        `The host key of ${describe(endpoint)} has CHANGED: the node presented ${presented}, but ${path} pins ${pins} for ${name}. Either the node was rebuilt or someone is intercepting the connection.`,
        {
          hint: `If the node was rebuilt on purpose, remove the old entry (ssh-keygen -R '${name}' -f ${path}) and add the new key; otherwise do not connect.`,
          details: { ...details, lines: check.entries.map((e) => e.line) },
        },
      );
    }
    case 'missing': {
      const where = fileExists ? path : `${path}, which does not exist`;
      const ca = check.certAuthorityLines.length
        ? ` (line ${check.certAuthorityLines.join(', ')} is a @cert-authority entry, which ctrdbg cannot use: it does not verify host certificates)`
        : '';
      return hostKeyError(
        `The host key of ${describe(endpoint)} is not in known_hosts (${where})${ca}, so ctrdbg cannot verify it is talking to the right node. The node presented ${presented}.`,
        {
          hint: `If that fingerprint is the node's (check with ssh-keygen -lf on its /etc/ssh/ssh_host_*_key.pub), add it with: echo '${knownHostsLine(endpoint.host, endpoint.port, blob)}' >> ${path}`,
          details,
        },
      );
    }
  }
}

function connectError(
  endpoint: SshEndpoint,
  key: PrivateKey,
  readyTimeoutMs: number,
  error: Error & { level?: string; code?: string },
): CtrdbgError {
  const where = describe(endpoint);
  const labHint = endpoint.label.startsWith('lab')
    ? " For the lab: 'ctrdbg lab status', then 'ctrdbg lab up'."
    : '';
  if (error.level === 'client-authentication') {
    return authError(
      `The node ${where} refused key ${endpoint.keyPath} (${key.fingerprint}) for user ${endpoint.user}.`,
      {
        hint: `Check that ${endpoint.keyPath}.pub is in ~${endpoint.user}/.ssh/authorized_keys on the node, that the user exists and may log in (sshd AllowUsers), and that --user is right.`,
        cause: error,
      },
    );
  }
  if (error.level === 'client-timeout') {
    return unreachableError(
      `Timed out after ${Math.round(readyTimeoutMs / 1000)} s connecting to ${where}: no SSH handshake.`,
      {
        hint: `Check that the node is up and the address and port are right; a firewall may be dropping packets.${labHint}`,
        cause: error,
      },
    );
  }
  switch (error.code) {
    case 'ECONNREFUSED':
      return unreachableError(
        `Cannot reach ${where}: connection refused (nothing listens on port ${endpoint.port}).`,
        {
          hint: `Check that the node is up and its SSH server listens on port ${endpoint.port}.${labHint}`,
          cause: error,
        },
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return unreachableError(`Cannot resolve the host name '${endpoint.host}' of ${endpoint.label}.`, {
        hint: 'Check the spelling, or use the IP address.',
        cause: error,
      });
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ETIMEDOUT':
      return unreachableError(`Cannot reach ${where}: ${error.message}.`, {
        hint: 'Check that the node is up and routable from here (VPN, firewall, VM network).',
        cause: error,
      });
  }
  return unreachableError(`The SSH connection to ${where} failed: ${error.message}.`, {
    hint: `Check that an SSH server listens there.${labHint}`,
    cause: error,
  });
}

function messageOf(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT') return 'no such file';
  if (e?.code === 'EACCES') return 'permission denied';
  return error instanceof Error ? error.message : String(error);
}

function isBytes(input: string | Buffer | Readable): input is string | Buffer {
  return typeof input === 'string' || Buffer.isBuffer(input);
}

/**
 * Sends a signal request (RFC 4254 6.9), which OpenSSH delivers to the command's process group.
 * ssh2's Channel.signal() silently does nothing once our side sent EOF (it checks `writable`), yet
 * that is the usual state of a command we time out; so after EOF use the protocol object underneath.
 */
function sendSignal(channel: ClientChannel, name: 'TERM' | 'KILL'): void {
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
    log.debug(`ssh: could not send SIG${name}: ${messageOf(error)}`);
  }
}

function isChannelRefusal(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('(SSH) Channel open failure');
}

/**
 * Builds the command line the node's login shell runs: optional `sudo -n`, optional `env K=V`.
 *
 * A sudo command with a time limit also runs under `timeout`: when we time a command out, sshd can signal
 * only the processes of the SSH user, so sudo gets the signal and relays it to its direct child alone;
 * `timeout` forwards it to the whole process group, and kills it on the node by itself if the connection
 * is gone. Its own limit is a few seconds later than ours so ours fires first.
 */
export function remoteCommandLine(
  command: string,
  options: { sudo?: boolean; env?: Record<string, string>; timeoutMs?: number } = {},
): string {
  const env = Object.entries(options.env ?? {});
  for (const [name] of env) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
      throw new Error(`invalid environment variable name '${name}'`);
  }
  if (!options.sudo && env.length === 0) return command;
  // `sh -c` keeps pipes and `&&` in `command` inside the sudo/env scope; `env` after sudo survives
  // sudo's environment reset.
  const limit =
    options.sudo && options.timeoutMs !== undefined
      ? ['timeout', String(Math.ceil(options.timeoutMs / 1000) + 5)]
      : [];
  const inner = [
    ...(env.length ? ['env', ...env.map(([k, v]) => `${k}=${v}`)] : []),
    ...limit,
    'sh',
    '-c',
    command,
  ];
  return shellJoin(options.sudo ? ['sudo', '-n', '--', ...inner] : inner);
}

function tail(text: string, lines = 8): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

const SUDO_REFUSED =
  /sudo: (a password is required|a terminal is required|.*is not in the sudoers|.*not allowed to)/;

/** Waiting room for session channels, sized to what the server accepts. */
class SessionSlots {
  /** Slots handed out: channels open plus channels being opened. */
  private active = 0;
  /** Channels the server confirmed and has not closed yet. */
  private established = 0;
  private limit = MAX_SESSIONS;
  private readonly waiting: { grant: () => void; fail: (error: Error) => void }[] = [];
  private failure: Error | undefined;

  get inUse(): number {
    return this.active;
  }

  async acquire(timeoutMs: number, onTimeout: () => Error): Promise<{ opened(): void; release(): void }> {
    if (this.failure) throw this.failure;
    if (this.active >= this.limit) {
      await new Promise<void>((resolve, reject) => {
        const waiter = {
          grant: () => {
            clearTimeout(timer);
            resolve();
          },
          fail: (error: Error) => {
            clearTimeout(timer);
            reject(error);
          },
        };
        const timer = setTimeout(() => {
          this.waiting.splice(this.waiting.indexOf(waiter), 1);
          reject(onTimeout());
        }, timeoutMs);
        this.waiting.push(waiter);
      });
    } else {
      this.active++;
    }
    let opened = false;
    let released = false;
    return {
      opened: () => {
        opened = true;
        this.established++;
      },
      release: () => {
        if (released) return;
        released = true;
        this.active--;
        if (opened) this.established--;
        this.wake();
      },
    };
  }

  /**
   * The server refused a session channel while `established` others were open: that is its real limit
   * (MaxSessions lower than 10). Returns false when none is open, i.e. waiting would not help.
   */
  shrink(): boolean {
    if (this.established < 1) return false;
    if (this.established < this.limit) {
      this.limit = this.established;
      log.debug(
        `ssh: the server refused a session channel with ${this.established} open; limiting to ${this.limit}`,
      );
    }
    return true;
  }

  failAll(error: Error): void {
    this.failure = error;
    for (const waiter of this.waiting.splice(0)) waiter.fail(error);
  }

  private wake(): void {
    while (this.active < this.limit && this.waiting.length) {
      this.active++;
      this.waiting.shift()!.grant();
    }
  }
}

/** How a remote command ended, filled in by ssh2's `exit` event (exit-status or exit-signal). */
interface ExitStatus {
  exit?: { code: number | null; signal?: string };
}

interface OpenedChannel {
  channel: ClientChannel;
  status: ExitStatus;
}

interface ChannelRun {
  /** Bytes for stdin, or a stream piped into it; stdin is closed afterwards either way. */
  input?: string | Buffer | Readable;
  onInput?: (chunk: Buffer) => void;
  timeoutMs?: number;
  /** Abort when neither input nor output moved for this long. */
  idleTimeoutMs?: number;
  /** Stop the command when this aborts (resolving with its status, not rejecting). */
  signal?: AbortSignal;
  killGraceMs?: number;
  /** What the command is, for messages. */
  what: string;
}

class SshRemoteHost implements RemoteHost {
  private readonly slots = new SessionSlots();
  private opening: Promise<void> = Promise.resolve();
  private readonly closeListeners: ((error?: Error) => void)[] = [];
  private closing = false;
  private closed = false;
  /** Set when the connection dropped without our asking; onClose listeners get it. */
  private dropped: { error?: Error } | undefined;
  private lastError: Error | undefined;

  constructor(
    readonly endpoint: SshEndpoint,
    private readonly client: SshClient,
  ) {
    client.on('error', (error: Error) => {
      this.lastError = error;
      log.debug(`${endpoint.label}: ssh error: ${error.message}`);
    });
    client.on('close', () => {
      this.closed = true;
      const error = unreachableError(
        `Lost the SSH connection to ${describe(endpoint)}${this.lastError ? `: ${this.lastError.message}` : ''}.`,
        { hint: 'Check that the node is still up, then run the command again.', cause: this.lastError },
      );
      this.slots.failAll(this.closing ? this.notConnected() : error);
      if (this.closing) return;
      log.debug(`${endpoint.label}: connection dropped`);
      this.dropped = { error };
      for (const listener of this.closeListeners.splice(0)) listener(error);
    });
  }

  onClose(listener: (error?: Error) => void): void {
    if (this.dropped) {
      const { error } = this.dropped;
      process.nextTick(() => listener(error));
    } else if (!this.closing) {
      this.closeListeners.push(listener);
    }
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.closeListeners.length = 0;
    if (this.closed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.client.destroy();
        resolve();
      }, CLOSE_TIMEOUT_MS);
      this.client.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.client.end();
    });
  }

  private notConnected(): CtrdbgError {
    return unreachableError(`The SSH connection to ${describe(this.endpoint)} is closed.`, {
      hint: this.closing
        ? 'This is a bug in ctrdbg: the connection was used after close().'
        : 'Run the command again.',
    });
  }

  private logCommand(line: string): void {
    log.debug(`${this.endpoint.label}: $ ${line}`);
  }

  /**
   * Channel opens run one at a time, so that when the server refuses one, the number of sessions it
   * already granted is exact (opens in flight would be counted neither as open nor as refused). An open
   * takes one round trip; commands still run concurrently.
   */
  private oneAtATime<T>(open: () => Promise<T>): Promise<T> {
    const result = this.opening.then(open, open);
    this.opening = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  /**
   * Opens an exec channel, waiting for a session slot; the slot is freed when the channel closes.
   *
   * The exit status is captured inside ssh2's callback, synchronously: ssh2 parses every packet of one TCP read
   * in one go, so for a short command the server's data, EOF, exit-status and close can all be processed before
   * the promise continuation of an `await` runs. An `exit` listener attached after that await misses the event
   * (the close itself waits for the buffered output to be read, so it still arrives); that was the "ended
   * without an exit status" that failed healthy commands about once in 25 on a fresh connection.
   */
  private async openSession(line: string, waitMs: number): Promise<OpenedChannel> {
    for (;;) {
      if (this.closed || this.closing) throw this.notConnected();
      const slot = await this.slots.acquire(waitMs, () =>
        nodeError(
          `No SSH session became free on ${this.endpoint.label} within ${Math.round(waitMs / 1000)} s (${this.slots.inUse} long-running commands hold them all).`,
          {
            hint: 'This is a bug in ctrdbg: a remote process was not ended. Re-run with CTRDBG_DEBUG=1 and report it.',
          },
        ),
      );
      try {
        const opened = await this.oneAtATime(
          () =>
            new Promise<OpenedChannel>((resolve, reject) => {
              try {
                this.client.exec(line, (error, channel) => {
                  if (error) return reject(error);
                  const status: ExitStatus = {};
                  channel.on('exit', (code: number | null, signal?: string) => {
                    status.exit = signal ? { code, signal } : { code };
                  });
                  resolve({ channel, status });
                });
              } catch (error) {
                reject(error);
              }
            }),
        );
        slot.opened();
        opened.channel.once('close', slot.release);
        return opened;
      } catch (error) {
        slot.release();
        if (isChannelRefusal(error) && this.slots.shrink()) continue;
        if (this.closed || (error instanceof Error && error.message === 'Not connected'))
          throw this.notConnected();
        throw nodeError(`${this.endpoint.label} refused to run a command: ${messageOf(error)}.`, {
          hint: "Check the node's sshd configuration (MaxSessions, ForceCommand) and its logs.",
          cause: error,
        });
      }
    }
  }

  /** Runs one command on a fresh channel and collects its output; the core of exec, pipeTo and upload. */
  private async runChannel(line: string, run: ChannelRun): Promise<ExecResult> {
    const started = Date.now();
    const source = run.input !== undefined && !isBytes(run.input) ? run.input : undefined;
    // Attach to a streamed input now, before waiting for a channel: a child process's stdout that
    // nobody listens to is drained and lost when the child exits (Node's flushStdio). The relay buffers
    // up to its high-water mark, then backpressure pauses the source.
    const relay = source ? new PassThrough() : undefined;
    let sourceError: Error | undefined;
    let onSourceError = (error: Error) => {
      sourceError ??= error;
    };
    if (source && relay) {
      source.on('error', (error: Error) => onSourceError(error));
      source.pipe(relay);
    }
    const dropSource = () => {
      if (source && relay) {
        source.unpipe(relay);
        if (!source.readableEnded) source.destroy();
      }
    };
    let channel: ClientChannel;
    let status: ExitStatus;
    try {
      ({ channel, status } = await this.openSession(line, run.timeoutMs ?? SESSION_WAIT_MS));
    } catch (error) {
      dropSource();
      throw error;
    }
    return new Promise<ExecResult>((resolve, reject) => {
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let failure: Error | undefined;
      let settled = false;
      const timers: (NodeJS.Timeout | undefined)[] = [];
      const settle = () => {
        if (settled) return;
        settled = true;
        run.signal?.removeEventListener('abort', onStopSignal);
        for (const timer of timers) clearTimeout(timer);
        clearTimeout(idleTimer);
        relay?.unpipe(channel);
        dropSource();
        if (failure) return reject(failure);
        const exit = status.exit ?? (stopping ? { code: null, signal: 'SIGKILL' } : undefined);
        if (!exit) {
          // The server closed the channel without saying how the command ended: the session died under it
          // (its sshd process killed, the connection going away). The command's outcome is unknown.
          return reject(
            unreachableError(
              this.closed
                ? `Lost the SSH connection to ${describe(this.endpoint)} while running ${run.what}.`
                : `The SSH session running ${run.what} on ${describe(this.endpoint)} ended without an exit status: its channel died, so the command's outcome is unknown.`,
              {
                hint: 'Check that the node is still up (its sshd and free memory), then run the command again.',
                cause: this.lastError,
              },
            ),
          );
        }
        const signalNumber = exit.signal ? osConstants.signals[exit.signal as NodeJS.Signals] : undefined;
        resolve({
          // Shell convention for a command killed by a signal: 128 + its number.
          code: exit.code ?? (signalNumber ? 128 + signalNumber : 255),
          ...(exit.signal ? { signal: exit.signal } : {}),
          stdout: Buffer.concat(stdout).toString('utf8'),
          stderr: Buffer.concat(stderr).toString('utf8'),
        });
      };
      let stopping = false;
      const stop = () => {
        if (stopping) return;
        stopping = true;
        const graceMs = run.killGraceMs ?? 1_000;
        // TERM first so sudo can relay it to its command; then KILL and drop the channel. sshd keeps a
        // session open while its command runs, so stop waiting for the close after a few seconds.
        sendSignal(channel, 'TERM');
        timers.push(
          setTimeout(() => {
            sendSignal(channel, 'KILL');
            channel.close();
          }, graceMs),
          setTimeout(settle, graceMs + 2_000),
        );
      };
      const abort = (error: Error) => {
        if (failure) return;
        failure = error;
        stop();
      };
      const onStopSignal = () => {
        // Asked to stop: the command's own status (e.g. 143 after SIGTERM) is the answer, if it gives one.
        if (!status.exit) stop();
      };
      if (run.signal?.aborted) onStopSignal();
      else run.signal?.addEventListener('abort', onStopSignal, { once: true });
      if (run.timeoutMs !== undefined) {
        const timeoutMs = run.timeoutMs;
        timers.push(
          setTimeout(
            () =>
              abort(
                nodeError(
                  `${run.what} did not finish within ${timeoutMs / 1000} s on ${this.endpoint.label}.`,
                  {
                    hint: 'The command was stopped. Check what it waits for on the node.',
                  },
                ),
              ),
            Math.max(1, timeoutMs - (Date.now() - started)),
          ),
        );
      }
      let idleTimer: NodeJS.Timeout | undefined;
      const touch = () => {
        if (run.idleTimeoutMs === undefined || failure) return;
        const idleMs = run.idleTimeoutMs;
        clearTimeout(idleTimer);
        idleTimer = setTimeout(
          () =>
            abort(
              nodeError(
                `${run.what} stalled: nothing moved for ${idleMs / 1000} s on ${this.endpoint.label}.`,
                {
                  hint: 'Check the connection to the node and its free disk space.',
                },
              ),
            ),
          idleMs,
        );
      };
      touch();
      channel.on('data', (chunk: Buffer) => {
        stdout.push(chunk);
        touch();
      });
      channel.stderr.on('data', (chunk: Buffer) => {
        stderr.push(chunk);
        touch();
      });
      channel.on('error', (error: Error) => abort(error));
      channel.on('close', settle);
      if (relay) {
        onSourceError = (error) =>
          abort(
            inputError(`Reading the data for ${run.what} failed: ${messageOf(error)}.`, { cause: error }),
          );
        if (sourceError) onSourceError(sourceError);
        relay.on('data', (chunk: Buffer) => {
          run.onInput?.(chunk);
          touch();
        });
        relay.pipe(channel);
      } else if (run.input !== undefined) channel.end(run.input);
      else channel.end();
    });
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
    const line = remoteCommandLine(command, { ...options, timeoutMs });
    this.logCommand(line);
    return this.runChannel(line, {
      ...(options.stdin !== undefined ? { input: options.stdin } : {}),
      timeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.killGraceMs !== undefined ? { killGraceMs: options.killGraceMs } : {}),
      what: `\`${command}\``,
    });
  }

  async execChecked(command: string, options: ExecOptions = {}): Promise<string> {
    const result = await this.exec(command, options);
    if (result.code !== 0) throw this.commandFailed(command, result, options.sudo);
    return result.stdout;
  }

  private commandFailed(command: string, result: ExecResult, sudo: boolean | undefined): CtrdbgError {
    const detail = tail(result.stderr || result.stdout);
    if (sudo && SUDO_REFUSED.test(result.stderr)) return this.sudoRefused(detail);
    const status = result.signal ? `killed by ${result.signal}` : `exit ${result.code}`;
    return nodeError(
      `\`${command}\` failed on ${this.endpoint.label} (${status})${detail ? `: ${detail}` : '.'}`,
      {
        details: { command, code: result.code, stderr: result.stderr },
        ...(!sudo && /permission denied|operation not permitted/i.test(detail)
          ? { hint: 'The SSH user lacks permission; this step may need to run through sudo.' }
          : {}),
      },
    );
  }

  private sudoRefused(detail: string): CtrdbgError {
    const user = this.endpoint.user;
    return sudoError(
      `${user} on ${this.endpoint.label} cannot run sudo without a password${detail ? `: ${detail}` : '.'}`,
      {
        hint: `ctrdbg needs passwordless sudo on the node. Add a rule there, e.g.: echo '${user} ALL=(ALL) NOPASSWD:ALL' | sudo tee /etc/sudoers.d/${user} && sudo chmod 0440 /etc/sudoers.d/${user}`,
      },
    );
  }

  async checkSudo(): Promise<void> {
    const result = await this.exec('sudo -n true', { timeoutMs: 30_000 });
    if (result.code === 0) return;
    if (result.code === 127) {
      throw sudoError(`sudo is not installed on ${this.endpoint.label}.`, {
        hint: 'Install sudo on the node and give the SSH user passwordless sudo (NOPASSWD).',
      });
    }
    throw this.sudoRefused(tail(result.stderr || result.stdout));
  }

  async spawn(command: string, options: { sudo?: boolean } = {}): Promise<RemoteProcess> {
    const line = remoteCommandLine(command, options);
    this.logCommand(line);
    const { channel, status } = await this.openSession(line, SESSION_WAIT_MS);
    const exited = new Promise<{ code: number | null; signal?: string }>((resolve) => {
      channel.on('close', () => resolve(status.exit ?? { code: null }));
    });
    // An 'error' on the channel with no listener would crash the process; the caller learns of the
    // end through `exited` and the stream's own close.
    channel.on('error', (error: Error) =>
      log.debug(`${this.endpoint.label}: channel error: ${error.message}`),
    );
    return {
      stream: channel,
      stderr: channel.stderr,
      exited,
      end: () => {
        channel.end();
      },
      close: () => {
        channel.close();
      },
    };
  }

  async upload(localPath: string, remotePath: string, options: UploadOptions = {}): Promise<UploadResult> {
    let total: number;
    let localMode: number;
    try {
      const info = await stat(localPath);
      if (!info.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EISDIR' });
      total = info.size;
      localMode = info.mode & 0o777;
    } catch (error) {
      throw inputError(`Cannot upload ${localPath}: ${messageOf(error)}.`, { cause: error });
    }
    const sudo = options.sudo ?? false;
    const mode = (options.mode ?? localMode).toString(8).padStart(4, '0');
    // Same directory as the target so the final `mv` is a rename on one file system, i.e. atomic.
    const tmp = posix.join(
      posix.dirname(remotePath),
      `.${posix.basename(remotePath)}.ctrdbg-upload-${randomBytes(4).toString('hex')}`,
    );
    const hash = createHash('sha256');
    let sent = 0;
    options.onProgress?.({ sent, total });
    const where = `${this.endpoint.label}:${remotePath}`;
    const source = createReadStream(localPath);
    try {
      // umask: the partial file is private until it is complete, checked and given its final mode.
      const line = remoteCommandLine(`umask 077 && cat > ${shellQuote(tmp)}`, { sudo });
      this.logCommand(`${line} < ${localPath}`);
      const written = await this.runChannel(line, {
        input: source,
        idleTimeoutMs: UPLOAD_STALL_MS,
        ...(options.signal ? { signal: options.signal } : {}),
        what: `the upload of ${localPath} to ${where}`,
        onInput: (chunk) => {
          hash.update(chunk);
          sent += chunk.length;
          options.onProgress?.({ sent, total });
        },
      });
      if (options.signal?.aborted) {
        throw interruptedError(`The upload of ${localPath} to ${where} was interrupted.`, {
          hint: 'Nothing was put in place; the partial file was removed.',
        });
      }
      if (written.code !== 0) {
        const detail = tail(written.stderr);
        if (sudo && SUDO_REFUSED.test(written.stderr)) throw this.sudoRefused(detail);
        throw nodeError(
          `Cannot write ${tmp} on ${this.endpoint.label}: ${detail || `exit ${written.code}`}.`,
          {
            hint: sudo
              ? 'Check that the directory exists and the file system has space.'
              : 'Check that the directory exists and the SSH user may write to it (or upload with sudo).',
          },
        );
      }
      const sha256 = hash.digest('hex');
      const sum = await this.execChecked(`sha256sum ${shellQuote(tmp)}`, { sudo });
      const remoteSha256 = sum.trim().split(/\s+/)[0] ?? '';
      if (remoteSha256 !== sha256) {
        throw nodeError(
          `The upload of ${localPath} to ${where} arrived corrupted: sha256 ${remoteSha256 || '(none)'} on the node, ${sha256} here. The partial file was removed.`,
          { hint: 'Try again; if it repeats, check the node for disk or memory errors.' },
        );
      }
      await this.execChecked(
        `chmod ${mode} ${shellQuote(tmp)} && mv -f ${shellQuote(tmp)} ${shellQuote(remotePath)}`,
        {
          sudo,
        },
      );
      return { path: remotePath, bytes: sent, sha256 };
    } catch (error) {
      if (!this.closed)
        await this.exec(`rm -f ${shellQuote(tmp)}`, { sudo, timeoutMs: 15_000 }).catch(() => {});
      throw error;
    } finally {
      source.destroy();
    }
  }

  async pipeTo(
    command: string,
    source: Readable,
    options: { sudo?: boolean; timeoutMs?: number } = {},
  ): Promise<ExecResult> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_PIPE_TIMEOUT_MS;
    const line = remoteCommandLine(command, { ...options, timeoutMs });
    this.logCommand(`${line} < (stream)`);
    return this.runChannel(line, {
      input: source,
      timeoutMs,
      what: `\`${command}\``,
    });
  }

  async forward(remoteHost: string, remotePort: number): Promise<Duplex> {
    if (this.closed || this.closing) throw this.notConnected();
    log.debug(`${this.endpoint.label}: forwarding a connection to ${remoteHost}:${remotePort} on the node`);
    return new Promise<Duplex>((resolve, reject) => {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        reject(
          unreachableError(
            `${this.endpoint.label} did not open a forwarded connection to ${remoteHost}:${remotePort} within ${FORWARD_OPEN_TIMEOUT_MS / 1000} s.`,
            { hint: 'Check that the SSH connection to the node is healthy.' },
          ),
        );
      }, FORWARD_OPEN_TIMEOUT_MS);
      try {
        this.client.forwardOut('127.0.0.1', 0, remoteHost, remotePort, (error, channel) => {
          clearTimeout(timer);
          if (timedOut) {
            channel?.close();
            return;
          }
          if (error) {
            reject(
              nodeError(
                `${this.endpoint.label} could not connect to ${remoteHost}:${remotePort} on the node: ${error.message.replace(/^\(SSH\) /, '')}.`,
                {
                  hint: 'Check that the service listens there on the node, and that its sshd allows TCP forwarding (AllowTcpForwarding yes or local).',
                  cause: error,
                },
              ),
            );
          } else resolve(channel);
        });
      } catch {
        // ssh2 throws synchronously when the socket is already gone.
        clearTimeout(timer);
        reject(this.notConnected());
      }
    });
  }
}
