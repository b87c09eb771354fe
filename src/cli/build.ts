/**
 * `ctrdbg build`: options only; the implementation is imported when the command runs.
 */
import type { Command } from 'commander';
import { action } from './run.js';

export function registerBuild(program: Command): void {
  program
    .command('build')
    .description(
      'Build a debuggable containerd (no optimisation, no inlining, with DWARF) and verify it; or verify any binary with --verify.',
    )
    .option('--src <dir>', 'a containerd checkout (make GODEBUG=1) or a lab tree (ctrdbg-tree.json)')
    .option('--arch <arch>', 'target architecture: amd64 or arm64 (default: this machine)')
    .option('--out <dir>', 'output directory (default: <cache>/builds/<arch>)')
    .option(
      '--with-shim',
      'also build containerd-shim-runc-v2 from the same tree, with -N -l (containerd’s Makefile leaves them out)',
    )
    .option('--verify <binary>', 'only check whether BINARY can be debugged (exit code 6 if not)')
    .option('--go <path>', 'the go to build with (else $CTRDBG_GO, config.json, the lab tree’s lane, PATH)')
    .option('--dlv <path>', 'the dlv whose Go support the verification reports (same order as --go)')
    .option('--json', 'print the result as JSON on stdout')
    .addHelpText(
      'after',
      '\nExamples:\n  ctrdbg build --src ~/src/containerd\n  ctrdbg build --src ~/src/containerd --arch arm64 --out ./out\n  ctrdbg build --verify /usr/bin/containerd\n',
    )
    .action(
      action(async (options: import('../commands/build.js').BuildCommandOptions) => {
        const { buildCommand } = await import('../commands/build.js');
        return buildCommand(options);
      }),
    );
}
