/**
 * `ctrdbg sets …`: declares the options and lazy-imports the implementation.
 */
import type { Command } from 'commander';
import { registerSetsCheck } from './attach.js';
import { action } from './run.js';

export function registerSets(program: Command): void {
  const sets = program
    .command('sets')
    .description('breakpoint sets: list them, show one, check them against a node');
  sets
    .command('list')
    .description('list the built-in and user breakpoint sets')
    .option('--sets-dir <dir>', 'also read sets from this directory')
    .option('--json', 'machine-readable output')
    .action(
      action(async (options: { setsDir?: string; json?: boolean }) =>
        (await import('../commands/sets.js')).listSets(options),
      ),
    );
  sets
    .command('show')
    .description("show a set's entries, candidate functions and what it records")
    .argument('<name>', 'set name, e.g. cri-create')
    .option('--sets-dir <dir>', 'also read sets from this directory')
    .option('--json', 'machine-readable output')
    .action(
      action(async (name: string, options: { setsDir?: string; json?: boolean }) =>
        (await import('../commands/sets.js')).showSet(name, options),
      ),
    );
  registerSetsCheck(sets);
}
