/**
 * One command on one exec channel, to the end: its input written (bytes, or a stream piped with backpressure),
 * its output collected, a time limit and an idle limit that stop it (SIGTERM, then SIGKILL and the channel
 * closed), an AbortSignal that stops it on request, and its exit status — or an `unreachable` error when the
 * channel died without one. The core of exec, pipeTo and upload. ssh2-free (see sshConnection.ts).
 */
import { constants as osConstants } from 'node:os';
import { PassThrough, type Readable } from 'node:stream';
import type { CtrdbgError } from '../../errors.js';
import type { ExecResult } from '../remoteHost.js';
import type { ExecChannel } from './sshConnection.js';

export interface ChannelRun {
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

export interface ChannelRunErrors {
  timedOut(timeoutMs: number): CtrdbgError;
  stalled(idleMs: number): CtrdbgError;
  inputFailed(error: Error): CtrdbgError;
  /** The channel closed without an exit status. */
  lost(): CtrdbgError;
}

function isBytes(input: string | Buffer | Readable): input is string | Buffer {
  return typeof input === 'string' || Buffer.isBuffer(input);
}

/**
 * A streamed input is attached before the channel opens: a child process's stdout that nobody listens to is
 * drained and lost when the child exits (Node's flushStdio). The relay buffers up to its high-water mark, then
 * backpressure pauses the source. Returns the relay and a way to let go of the source.
 */
export function prepareInput(input: ChannelRun['input']): {
  relay: PassThrough | undefined;
  sourceError: () => Error | undefined;
  onSourceError: (listener: (error: Error) => void) => void;
  drop: () => void;
} {
  const source = input !== undefined && !isBytes(input) ? input : undefined;
  const relay = source ? new PassThrough() : undefined;
  let error: Error | undefined;
  let listener: ((error: Error) => void) | undefined;
  if (source && relay) {
    source.on('error', (e: Error) => {
      error ??= e;
      listener?.(e);
    });
    source.pipe(relay);
  }
  return {
    relay,
    sourceError: () => error,
    onSourceError: (l) => {
      listener = l;
      if (error) l(error);
    },
    drop: () => {
      if (source && relay) {
        source.unpipe(relay);
        if (!source.readableEnded) source.destroy();
      }
    },
  };
}

export function runOnChannel(
  channel: ExecChannel,
  run: ChannelRun,
  input: ReturnType<typeof prepareInput>,
  errors: ChannelRunErrors,
  started = Date.now(),
): Promise<ExecResult> {
  return new Promise<ExecResult>((resolve, reject) => {
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let failure: Error | undefined;
    let settled = false;
    let stopping = false;
    const timers: NodeJS.Timeout[] = [];
    let idleTimer: NodeJS.Timeout | undefined;
    const { relay } = input;
    const settle = () => {
      if (settled) return;
      settled = true;
      run.signal?.removeEventListener('abort', onStopSignal);
      for (const timer of timers) clearTimeout(timer);
      clearTimeout(idleTimer);
      relay?.unpipe(channel.stream);
      input.drop();
      if (failure) return reject(failure);
      const exit = channel.status.exit ?? (stopping ? { code: null, signal: 'SIGKILL' } : undefined);
      if (!exit) return reject(errors.lost());
      const signalNumber = exit.signal ? osConstants.signals[exit.signal as NodeJS.Signals] : undefined;
      resolve({
        // Shell convention for a command killed by a signal: 128 + its number.
        code: exit.code ?? (signalNumber ? 128 + signalNumber : 255),
        ...(exit.signal ? { signal: exit.signal } : {}),
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      });
    };
    const stop = () => {
      if (stopping) return;
      stopping = true;
      const graceMs = run.killGraceMs ?? 1_000;
      // TERM first so sudo can relay it to its command; then KILL and drop the channel. sshd keeps a
      // session open while its command runs, so stop waiting for the close after a few seconds.
      channel.signal('TERM');
      timers.push(
        setTimeout(() => {
          channel.signal('KILL');
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
    function onStopSignal() {
      // Asked to stop: the command's own status (e.g. 143 after SIGTERM) is the answer, if it gives one.
      if (!channel.status.exit) stop();
    }
    if (run.signal?.aborted) onStopSignal();
    else run.signal?.addEventListener('abort', onStopSignal, { once: true });
    if (run.timeoutMs !== undefined) {
      const timeoutMs = run.timeoutMs;
      timers.push(
        setTimeout(() => abort(errors.timedOut(timeoutMs)), Math.max(1, timeoutMs - (Date.now() - started))),
      );
    }
    const touch = () => {
      if (run.idleTimeoutMs === undefined || failure) return;
      const idleMs = run.idleTimeoutMs;
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => abort(errors.stalled(idleMs)), idleMs);
    };
    touch();
    channel.stream.on('data', (chunk: Buffer) => {
      stdout.push(chunk);
      touch();
    });
    channel.stderr.on('data', (chunk: Buffer) => {
      stderr.push(chunk);
      touch();
    });
    channel.stream.on('error', (error: Error) => abort(error));
    channel.onClose(settle);
    if (relay) {
      input.onSourceError((error) => abort(errors.inputFailed(error)));
      relay.on('data', (chunk: Buffer) => {
        run.onInput?.(chunk);
        touch();
      });
      relay.pipe(channel.stream);
    } else if (run.input !== undefined && isBytes(run.input)) channel.stream.end(run.input);
    else channel.stream.end();
  });
}
