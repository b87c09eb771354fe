#!/usr/bin/env node
/**
 * The edge of the program: the only place that prints errors and calls process.exit.
 */
import { CommanderError } from 'commander';
import { takeExitCode } from './cli/run.js';
import { buildProgram } from './cli.js';
import { ExitCode, toCtrdbgError } from './errors.js';
import { style } from './util/output.js';

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return takeExitCode();
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and --version exit through here with code 0.
      return error.exitCode === 0 ? 0 : ExitCode.usage;
    }
    const failure = toCtrdbgError(error);
    const json = argv.includes('--json');
    if (json) {
      process.stdout.write(
        `${JSON.stringify({ error: { kind: failure.kind, message: failure.message, hint: failure.hint, details: failure.details } }, null, 2)}\n`,
      );
    }
    const hint = failure.hint ? ` ${failure.hint}` : '';
    process.stderr.write(`${style.red('error:')} ${failure.message}${hint}\n`);
    if (process.env.CTRDBG_DEBUG && failure.cause)
      process.stderr.write(`${String((failure.cause as Error).stack ?? failure.cause)}\n`);
    return failure.exitCode;
  }
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`${String(error)}\n`);
    process.exitCode = ExitCode.internal;
  },
);
