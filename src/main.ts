#!/usr/bin/env node
/**
 * The edge of the program: the only place that prints errors and calls process.exit.
 */
import { type Command, CommanderError } from 'commander';
import { takeExitCode } from './cli/run.js';
import { buildProgram } from './cli.js';
import {
  type CtrdbgError,
  commanderUsageError,
  ExitCode,
  errorJson,
  errorText,
  toCtrdbgError,
} from './errors.js';
import { style } from './util/output.js';

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv);
    return takeExitCode();
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and --version exit through here with code 0; commander has printed its usage error on stderr.
      if (error.exitCode === 0) return 0;
      if (json) {
        printJson(commanderUsageError(error.message, commandPath(program, argv.slice(2))));
      }
      return ExitCode.usage;
    }
    const failure = toCtrdbgError(error);
    if (json) printJson(failure);
    process.stderr.write(`${style.red('error:')} ${errorText(failure)}\n`);
    if (process.env.CTRDBG_DEBUG && failure.cause)
      process.stderr.write(`${String((failure.cause as Error).stack ?? failure.cause)}\n`);
    return failure.exitCode;
  }
}

/** The (sub)command the words name, e.g. "sets check", for the hint. */
function commandPath(program: Command, words: string[]): string | undefined {
  const names: string[] = [];
  let at = program;
  for (const word of words) {
    const sub = at.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (!sub) break;
    names.push(sub.name());
    at = sub;
  }
  return names.length ? names.join(' ') : undefined;
}

function printJson(failure: CtrdbgError): void {
  process.stdout.write(`${JSON.stringify(errorJson(failure), null, 2)}\n`);
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
