/**
 * The RemoteHost of an SSH node: every command ctrdbg runs there, every file it sends. ssh2 itself stays in
 * sshConnection.ts; this file builds on it:
 *
 * - Host keys are pinned: the server's key must match the endpoint's known_hosts (see knownHosts.ts); an
 *   unknown or changed key ends the handshake before authentication, so the key is never offered to a
 *   host we have not verified.
 * - Every failure becomes one of the taxonomy's errors with a hint (sshErrors.ts), so callers never see ssh2's
 *   raw messages alone.
 * - Session channels (exec, spawn, upload, pipeTo) wait for a slot (sessionSlots.ts): OpenSSH allows 10 sessions
 *   per connection (MaxSessions), and a refused channel open shrinks the room to what the server accepts.
 *   Forwarded TCP connections are not sessions and are not queued.
 * - Keep-alives notice a dead connection within about 12 s; `onClose` listeners hear about it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import type { Duplex, Readable } from 'node:stream';
import {
  type CtrdbgError,
  inputError,
  interruptedError,
  nodeError,
  sudoError,
  unreachableError,
} from '../../errors.js';
import { createLogger } from '../../util/output.js';
import { shellJoin, shellQuote } from '../../util/shell.js';
import {
  checkHostKey,
  fingerprintSha256,
  type KnownHostsFile,
  parseKnownHosts,
  pinnedKeyTypes,
} from '../knownHosts.js';
import type {
  ExecOptions,
  ExecResult,
  RemoteHost,
  RemoteProcess,
  SshEndpoint,
  UploadOptions,
  UploadResult,
} from '../remoteHost.js';
import { type ChannelRun, prepareInput, runOnChannel } from './channelRun.js';
import { SessionSlots } from './sessionSlots.js';
import {
  connectSsh,
  type ExecChannel,
  hostKeyPreference,
  parsePrivateKey,
  type SshConnection,
} from './sshConnection.js';
import {
  connectError,
  describe,
  hostKeyProblem,
  isChannelRefusal,
  lostWhileRunning,
  messageOf,
  SUDO_REFUSED,
  sudoRefused,
  tail,
} from './sshErrors.js';

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

export async function connectHost(endpoint: SshEndpoint): Promise<RemoteHost> {
  const key = await readPrivateKey(endpoint.keyPath);
  const knownHosts = await readKnownHosts(endpoint.knownHostsPath);
  const readyTimeout = endpoint.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  let hostKeyFailure: CtrdbgError | undefined;
  log.debug(
    `${endpoint.label}: connecting to ${endpoint.user}@${endpoint.host}:${endpoint.port} with ${endpoint.keyPath}`,
  );
  let connection: SshConnection;
  try {
    connection = await connectSsh(
      {
        host: endpoint.host,
        port: endpoint.port,
        user: endpoint.user,
        privateKey: key.data,
        readyTimeoutMs: readyTimeout,
        keepaliveIntervalMs: KEEPALIVE_INTERVAL_MS,
        keepaliveCountMax: KEEPALIVE_COUNT_MAX,
        // Ask first for the key types the file pins (as OpenSSH does): a host with both an RSA and an
        // Ed25519 key, pinned by its RSA key, must be verified by that key rather than reported unknown.
        hostKeyAlgorithms: hostKeyPreference(pinnedKeyTypes(knownHosts.file, endpoint.host, endpoint.port)),
        verifyHostKey: (blob) => {
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
      },
      (m) => log.debug(m),
    );
  } catch (failure) {
    if (hostKeyFailure) throw hostKeyFailure;
    const f = failure as { closedDuringHandshake?: boolean; connectThrew?: unknown };
    if (f.closedDuringHandshake)
      throw unreachableError(`The SSH connection to ${describe(endpoint)} closed during the handshake.`, {
        hint: 'Check that an SSH server listens there and accepts connections (MaxStartups, AllowUsers).',
      });
    if (f.connectThrew !== undefined)
      throw inputError(
        `Cannot start an SSH connection to ${describe(endpoint)}: ${messageOf(f.connectThrew)}`,
        {
          cause: f.connectThrew,
        },
      );
    throw connectError(endpoint, key.fingerprint, readyTimeout, failure as Error & { level?: string });
  }
  log.debug(`${endpoint.label}: connected`);
  return new SshRemoteHost(endpoint, connection);
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
  const parsed = parsePrivateKey(data);
  if (!parsed.ok && parsed.reason === 'public') {
    throw inputError(`${path} is a public key; ctrdbg needs the private key to log in.`, {
      hint: `Pass the file without .pub (e.g. ${path.replace(/\.pub$/, '')}).`,
    });
  }
  if (!parsed.ok) {
    const encrypted = parsed.reason === 'encrypted';
    throw inputError(
      encrypted
        ? `The SSH key ${path} is protected by a passphrase, which ctrdbg cannot prompt for.`
        : `${path} is not an SSH private key ctrdbg can read${parsed.message ? ` (${parsed.message})` : ''}.`,
      {
        hint: encrypted
          ? `Use a key without a passphrase, e.g. a copy: cp ${path} ${path}.ctrdbg && ssh-keygen -p -N '' -f ${path}.ctrdbg`
          : 'Pass an OpenSSH or PEM private key (ed25519, ecdsa or rsa) with --key.',
      },
    );
  }
  return { data, fingerprint: fingerprintSha256(parsed.fingerprintBlob) };
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

class SshRemoteHost implements RemoteHost {
  private readonly slots = new SessionSlots(10, (limit, established) =>
    log.debug(`ssh: the server refused a session channel with ${established} open; limiting to ${limit}`),
  );
  private opening: Promise<void> = Promise.resolve();
  private readonly closeListeners: ((error?: Error) => void)[] = [];
  private closing = false;
  private closed = false;
  /** Set when the connection dropped without our asking; onClose listeners get it. */
  private dropped: { error?: Error } | undefined;
  private lastError: Error | undefined;

  constructor(
    readonly endpoint: SshEndpoint,
    private readonly connection: SshConnection,
  ) {
    connection.onError((error: Error) => {
      this.lastError = error;
      log.debug(`${endpoint.label}: ssh error: ${error.message}`);
    });
    connection.onClose(() => {
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
    await this.connection.end(CLOSE_TIMEOUT_MS);
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

  /** Opens an exec channel, waiting for a session slot; the slot is freed when the channel closes. */
  private async openSession(line: string, waitMs: number): Promise<ExecChannel> {
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
        const channel = await this.oneAtATime(() => this.connection.exec(line));
        slot.opened();
        channel.onClose(slot.release);
        return channel;
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
    const input = prepareInput(run.input);
    let channel: ExecChannel;
    try {
      channel = await this.openSession(line, run.timeoutMs ?? SESSION_WAIT_MS);
    } catch (error) {
      input.drop();
      throw error;
    }
    const where = this.endpoint.label;
    return runOnChannel(
      channel,
      run,
      input,
      {
        timedOut: (ms) =>
          nodeError(`${run.what} did not finish within ${ms / 1000} s on ${where}.`, {
            hint: 'The command was stopped. Check what it waits for on the node.',
          }),
        stalled: (ms) =>
          nodeError(`${run.what} stalled: nothing moved for ${ms / 1000} s on ${where}.`, {
            hint: 'Check the connection to the node and its free disk space.',
          }),
        inputFailed: (error) =>
          inputError(`Reading the data for ${run.what} failed: ${messageOf(error)}.`, { cause: error }),
        lost: () => lostWhileRunning(this.endpoint, run.what, this.closed, this.lastError),
      },
      started,
    );
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
    return sudoRefused(this.endpoint, detail);
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
    const channel = await this.openSession(line, SESSION_WAIT_MS);
    const exited = new Promise<{ code: number | null; signal?: string }>((resolve) => {
      channel.onClose(() => resolve(channel.status.exit ?? { code: null }));
    });
    // An 'error' on the channel with no listener would crash the process; the caller learns of the
    // end through `exited` and the stream's own close.
    channel.stream.on('error', (error: Error) =>
      log.debug(`${this.endpoint.label}: channel error: ${error.message}`),
    );
    return {
      stream: channel.stream,
      stderr: channel.stderr,
      exited,
      end: () => {
        channel.stream.end();
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
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const opening = this.connection.forwardOut(remoteHost, remotePort);
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        reject(
          unreachableError(
            `${this.endpoint.label} did not open a forwarded connection to ${remoteHost}:${remotePort} within ${FORWARD_OPEN_TIMEOUT_MS / 1000} s.`,
            { hint: 'Check that the SSH connection to the node is healthy.' },
          ),
        );
      }, FORWARD_OPEN_TIMEOUT_MS);
    });
    // A connection that opens after we gave up is closed, not leaked.
    void opening.then(
      (stream) => timedOut && stream.destroy(),
      () => undefined,
    );
    try {
      return await Promise.race([opening, timeout]);
    } catch (error) {
      if (timedOut) throw error;
      if (this.closed || !(error instanceof Error) || !error.message) throw this.notConnected();
      throw nodeError(
        `${this.endpoint.label} could not connect to ${remoteHost}:${remotePort} on the node: ${error.message.replace(/^\(SSH\) /, '')}.`,
        {
          hint: 'Check that the service listens there on the node, and that its sshd allows TCP forwarding (AllowTcpForwarding yes or local).',
          cause: error,
        },
      );
    } finally {
      clearTimeout(timer);
    }
  }
}
