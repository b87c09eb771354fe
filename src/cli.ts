/**
 * The command-line surface: declares commands and options only, and lazy-imports each implementation
 * so `ctrdbg --help` stays fast. Each area registers itself from `src/cli/<area>.ts`.
 */
import { Command } from 'commander';
import { registerAttach } from './cli/attach.js';
import { registerBuild } from './cli/build.js';
import { registerDeploy } from './cli/deploy.js';
import { registerLab } from './cli/lab.js';
import { registerReplay } from './cli/replay.js';
import { registerSets } from './cli/sets.js';
import { packageVersion } from './config.js';
import { ExitCode, errorKinds } from './errors.js';

type Register = (program: Command) => void;

/** One line per area; keep the order of the pipeline. */
const areas: Register[] = [
  registerLab,
  registerBuild,
  registerDeploy,
  registerSets,
  registerAttach,
  registerReplay,
];

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
