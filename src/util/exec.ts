/**
 * Local processes: the one runner every command ctrdbg starts goes through (a lint rule keeps it that way), so
 * each is logged under CTRDBG_DEBUG=1 with its exact command line, and a missing executable becomes an
 * `environment` error that says which package provides it.
 */
import { execa, type Options, type ResultPromise } from 'execa';
import { environmentError } from '../errors.js';
import { createLogger } from './output.js';
import { shellJoin } from './shell.js';

const log = createLogger();

/** Debian packages that provide the tools ctrdbg runs, for hints. */
const providers: Record<string, string> = {
  go: 'golang-go',
  dlv: 'delve',
  make: 'make',
  readelf: 'binutils',
  sshd: 'openssh-server',
  '/usr/sbin/sshd': 'openssh-server',
  'ssh-keygen': 'openssh-client',
  ctr: 'containerd',
  rsync: 'rsync',
  useradd: 'passwd',
  visudo: 'sudo',
};

export function commandLine(file: string, args: readonly string[]): string {
  return shellJoin([file, ...args]);
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Runs a command to completion; never throws for a non-zero exit (callers decide), only for a missing tool. */
export async function run(file: string, args: readonly string[], options: Options = {}): Promise<RunResult> {
  log.debug(`$ ${commandLine(file, args)}`);
  try {
    const result = await execa(file, args, { reject: false, stripFinalNewline: true, ...options });
    if ((result as { code?: string }).code === 'ENOENT') throw missingTool(file, result as unknown as Error);
    const killed = result.signal
      ? `\n(${file} was killed by ${result.signal}${result.timedOut ? ' after timing out' : ''})`
      : '';
    return {
      stdout: String(result.stdout ?? ''),
      stderr: `${String(result.stderr ?? '')}${killed}`,
      exitCode: result.exitCode ?? 128,
    };
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') throw missingTool(file, error);
    throw error;
  }
}

function missingTool(file: string, cause: unknown) {
  const pkg = providers[file] ?? providers[file.split('/').pop() ?? file];
  return environmentError(`'${file}' is not installed or not on PATH.`, {
    hint: pkg ? `Install it (apt-get install ${pkg}), or run 'make deps'.` : 'Install it and try again.',
    cause,
  });
}

/**
 * Starts a command and returns it running (execa's subprocess: streams, kill, and a promise of its result), for
 * callers that stream its output or stop it: a build, tar, the trigger.
 */
export function start<O extends Options>(
  file: string,
  args: readonly string[],
  options: O,
): ResultPromise<{} & O> {
  log.debug(`$ ${commandLine(file, args)}${options.cwd ? `   (in ${String(options.cwd)})` : ''}`);
  return execa(file, args, options);
}

/** Runs a command and throws `make(message)` with its stderr when it fails. */
export async function runChecked(
  file: string,
  args: readonly string[],
  fail: (detail: string) => Error,
  options: Options = {},
): Promise<string> {
  const result = await run(file, args, options);
  if (result.exitCode !== 0)
    throw fail((result.stderr || result.stdout).trim().split('\n').slice(-8).join('\n'));
  return result.stdout;
}
