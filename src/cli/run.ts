/**
 * The shape every command follows: an async function that returns a `CommandOutput` (data for `--json`,
 * text for people) and throws `CtrdbgError`s. Printing lives here; exit codes live in `main.ts`.
 */
import { stdout } from 'node:process';
import type { CommandOutput } from '../commands/output.js';

export type { CommandOutput };

export interface JsonOption {
  json?: boolean;
}

let pendingExitCode = 0;

export function takeExitCode(): number {
  return pendingExitCode;
}

export function print(output: CommandOutput, options: JsonOption): void {
  if (options.json) stdout.write(`${JSON.stringify(output.data, null, 2)}\n`);
  else if (output.text !== '') stdout.write(output.text.endsWith('\n') ? output.text : `${output.text}\n`);
  if (output.exitCode !== undefined) pendingExitCode = output.exitCode;
}

/** Wraps a lazily imported command so commander's action stays one line. */
export function action<A extends unknown[]>(
  load: (...args: A) => Promise<CommandOutput>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const output = await load(...args);
    // commander passes (…positionals, options, command); options is the second to last.
    const options = (args.length >= 2 ? args[args.length - 2] : {}) as JsonOption;
    print(output, options);
  };
}
