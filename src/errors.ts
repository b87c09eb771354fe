/**
 * One error taxonomy for ctrdbg. Every failure a user can cause or fix is a `CtrdbgError` with a hint
 * (what to do next) and an exit code that is distinct per class, so scripts can tell them apart.
 * Only `main.ts` turns these into output and `process.exit`.
 */

export const ExitCode = {
  ok: 0,
  internal: 1,
  usage: 2,
  input: 3,
  environment: 4,
  build: 5,
  notDebuggable: 6,
  unreachable: 7,
  auth: 8,
  hostKey: 9,
  sudo: 10,
  node: 11,
  delve: 12,
  versionMismatch: 13,
  toolchain: 14,
  wrongPlatform: 15,
  trigger: 16,
  interrupted: 130,
} as const;

export type ErrorKind = keyof typeof ExitCode;

/** What each class means, for the README and `ctrdbg --help`. */
export const errorKinds: Record<Exclude<ErrorKind, 'ok'>, string> = {
  internal: 'a bug in ctrdbg (please report it with the command and output)',
  usage: 'wrong command-line usage (unknown option, missing argument)',
  input: 'bad input: a file, directory, set or session that is missing or malformed',
  environment: 'a local tool or permission ctrdbg needs is missing (go, dlv, sshd, root)',
  build: 'the containerd build failed',
  notDebuggable: 'a binary is not debuggable (stripped, optimised)',
  unreachable: 'the node could not be reached (host down, port closed, timeout)',
  auth: 'the node refused the SSH key',
  hostKey: "the node's host key does not match the pinned one",
  sudo: 'passwordless sudo is not available on the node',
  node: 'the node is not in a state ctrdbg can work with (containerd down, traced, no space)',
  delve: 'Delve failed or refused a request',
  versionMismatch: "the node's containerd version differs from the source tree's",
  toolchain: 'the Go toolchain is older than the source tree needs (its go.mod `go` line)',
  wrongPlatform:
    'a binary cannot run on the node: another OS (a Mach-O from macOS) or CPU, not amd64/arm64, or not an executable',
  trigger:
    'the --trigger command failed (a non-zero exit or a signal of its own); the recording is kept and containerd was detached',
  interrupted: 'interrupted by the user (Ctrl-C); the node was left running',
};

export interface ErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Extra structured detail for `--json` output. */
  details?: Record<string, unknown>;
}

export class CtrdbgError extends Error {
  readonly kind: Exclude<ErrorKind, 'ok'>;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(kind: Exclude<ErrorKind, 'ok'>, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CtrdbgError';
    this.kind = kind;
    this.hint = options.hint;
    this.details = options.details;
  }

  get exitCode(): number {
    return ExitCode[this.kind];
  }
}

export const usageError = (message: string, options?: ErrorOptions) =>
  new CtrdbgError('usage', message, options);
export const inputError = (message: string, options?: ErrorOptions) =>
  new CtrdbgError('input', message, options);
export const environmentError = (message: string, options?: ErrorOptions) =>
  new CtrdbgError('environment', message, options);
export const buildError = (message: string, options?: ErrorOptions) =>
  new CtrdbgError('build', message, options);
export const notDebuggableError = (message: string, options?: ErrorOptions) =>
  new CtrdbgError('notDebuggable', message, options);
export const unreachableError = (message: string, options?: ErrorOptions) =>
  new CtrdbgError('unreachable', message, options);
export const authError = (message: string, options?: ErrorOptions) =>
  new CtrdbgError('auth', message, options);
export const hostKeyError = (message: string, options?: ErrorOptions) =>
  new CtrdbgError('hostKey', message, options);
export const sudoError = (message: string, options?: ErrorOptions) =>
  new CtrdbgError('sudo', message, options);
export const nodeError = (message: string, options?: ErrorOptions) =>
  new CtrdbgError('node', message, options);
export const delveError = (message: string, options?: ErrorOptions) =>
  new CtrdbgError('delve', message, options);
export const versionMismatchError = (message: string, options?: ErrorOptions) =>
  new CtrdbgError('versionMismatch', message, options);
export const toolchainError = (message: string, options?: ErrorOptions) =>
  new CtrdbgError('toolchain', message, options);
export const wrongPlatformError = (message: string, options?: ErrorOptions) =>
  new CtrdbgError('wrongPlatform', message, options);
export const interruptedError = (message: string, options?: ErrorOptions) =>
  new CtrdbgError('interrupted', message, options);

export function isCtrdbgError(error: unknown): error is CtrdbgError {
  return error instanceof CtrdbgError;
}

/**
 * The paragraph a person reads: what happened, then what to do. A message of several lines (a set file's
 * problems, one per line) keeps its hint on a line of its own, so the hint never reads as part of the last one.
 */
export function errorText(error: Pick<CtrdbgError, 'message' | 'hint'>): string {
  if (!error.hint) return error.message;
  return error.message.includes('\n')
    ? `${error.message.trimEnd()}\n${error.hint}`
    : `${error.message} ${error.hint}`;
}

/** What `--json` prints for an error, on stdout. */
export function errorJson(error: CtrdbgError): {
  error: {
    kind: string;
    message: string;
    hint: string | undefined;
    details: Record<string, unknown> | undefined;
  };
} {
  return { error: { kind: error.kind, message: error.message, hint: error.hint, details: error.details } };
}

/**
 * commander's own usage errors ("error: unknown option '--bogus'") as ours, for `--json`: commander has printed
 * the text already; a script reading stdout gets the same error as an object.
 */
export function commanderUsageError(message: string, command: string | undefined): CtrdbgError {
  const text = message.replace(/^error:\s*/, '').trim();
  return usageError(/[.!?]$/.test(text) ? text : `${text}.`, {
    hint: `Run ctrdbg ${command ? `${command} ` : ''}--help for usage.`,
  });
}

/** Anything that is not ours becomes an internal error, keeping the original as the cause. */
export function toCtrdbgError(error: unknown): CtrdbgError {
  if (isCtrdbgError(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new CtrdbgError('internal', message, {
    cause: error,
    hint: 'This is a bug in ctrdbg. Re-run with CTRDBG_DEBUG=1 and report the output.',
  });
}
