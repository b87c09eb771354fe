import { type Command, Option } from 'commander';
import { action } from './run.js';

/** Options every command that talks to a node shares. */
export function targetOptions(command: Command): Command {
  return command
    .option('--node <name>', 'minikube node of a multi-node profile (e.g. m02)')
    .option('--key <file>', 'SSH private key (ssh:// targets)')
    .option(
      '--known-hosts <file>',
      'known_hosts file that pins the host key (ssh:// targets; default ~/.ssh/known_hosts)',
    );
}

const TARGET_HELP =
  'lab, lab:NAME, minikube, minikube:PROFILE or ssh://USER@HOST[:PORT]; default: the last one set up, else minikube';

export function registerDeploy(program: Command): void {
  targetOptions(
    program
      .command('setup')
      .argument('[target]', TARGET_HELP)
      .description('build a debug containerd, ship it and its source to the node, restart, verify'),
  )
    .option('--src <dir>', 'containerd source tree (a checkout, or a lab tree); the lab defaults to its own')
    .option('--skip-build', "reuse the last build for the node's arch")
    .option('--binary <file>', 'install this binary instead of building')
    .addOption(
      new Option('--log-level <level>', "containerd's log level while debugging").choices([
        'trace',
        'debug',
        'info',
        'warn',
        'error',
      ]),
    )
    .option('--allow-version-mismatch', "install even if the build's version differs from the node's")
    .option('--with-goroot', "also sync Go's own sources (GOROOT/src) so `list` works inside the runtime")
    .option('--go <path>', 'the go to build with (else $CTRDBG_GO, config.json, the lab’s lane, PATH)')
    .option('--dlv <path>', 'the dlv to ship to the node (same order; it must support the binary’s Go)')
    .option(
      '--dlv-src <dir>',
      'build the dlv for the node from this Delve source (a checkout, or Debian’s delve source)',
    )
    .option(
      '--with-shim',
      'also build containerd-shim-runc-v2 from the same tree with -N -l and install it (new pods get it)',
    )
    .option(
      '--shim-binary <file>',
      'install this containerd-shim-runc-v2 instead of building one (implies --with-shim)',
    )
    .option('--json', 'print the result as JSON')
    .action(action(async (spec, opts) => (await import('../commands/deploy.js')).setupCommand(spec, opts)));

  targetOptions(
    program
      .command('restore')
      .argument('[target]', TARGET_HELP)
      .description(
        "put the node's original containerd (and shim, after --with-shim) back, byte-identical, and restart it",
      ),
  )
    .option('--purge', 'also remove the synced source tree and dlv from the node')
    .option('--json', 'print the result as JSON')
    .action(action(async (spec, opts) => (await import('../commands/deploy.js')).restoreCommand(spec, opts)));

  targetOptions(
    program
      .command('doctor')
      .argument('[target]', TARGET_HELP)
      .description("check everything debugging the node's containerd needs"),
  )
    .option('--src <dir>', 'source tree to compare the running version with')
    .option('--json', 'print the result as JSON')
    .action(action(async (spec, opts) => (await import('../commands/deploy.js')).doctorCommand(spec, opts)));
}
