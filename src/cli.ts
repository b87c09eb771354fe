/**
 * The command-line surface: declares commands and options only, and lazy-imports each implementation
 * so `ctrdbg --help` stays fast. Each area registers itself from `src/cli/<area>.ts`.
 */
import { Command } from 'commander';
import { errorKinds, ExitCode } from './errors.js';
import { packageVersion } from './config.js';

type Register = (program: Command) => void;

/** One line per area; keep the order of the pipeline. */
const areas: Register[] = [];

export function buildProgram(): Command {
  const program = new Command('ctrdbg')
    .description('Debug a live containerd with Delve: build, deploy, attach, record, replay.')
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError('(run ctrdbg --help for usage)')
    .exitOverride()
    .addHelpText(
      'after',
      `\nExit codes:\n${Object.entries(errorKinds)
        .map(([kind, text]) => `  ${String(ExitCode[kind as keyof typeof errorKinds]).padStart(3)}  ${text}`)
        .join('\n')}\n`,
    );
  for (const register of areas) register(program);
  return program;
}
