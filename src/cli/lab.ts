import type { Command } from 'commander';
import { action } from './run.js';

export function registerLab(program: Command): void {
  const lab = program
    .command('lab')
    .description('a local disposable node: real sshd, sudo and containerd (no minikube needed)');
  const name = ['--name <name>', "which lab (default: 'default', or 'vm' with --vm)"] as const;
  const vm = [
    '--vm',
    'a VM lab: Debian under QEMU, containerd as a systemd unit (like minikube kvm2)',
  ] as const;
  lab
    .command('up')
    .description("start the lab (idempotent) and print its target ('lab', or 'lab:vm' with --vm)")
    .option(...name)
    .option(...vm)
    .option('--rebuild', "with --vm: build the VM image again from Debian's archive")
    .option('--reset', "with --vm: discard the node's changes and boot the pristine image")
    .option('--json', 'print the result as JSON')
    .action(action(async (opts) => (await import('../commands/lab.js')).labUpCommand(opts)));
  lab
    .command('status')
    .description('show the SSH endpoint, containerd PID, version, sha256 and whether it is debuggable')
    .option(...name)
    .option(...vm)
    .option('--json', 'print the result as JSON')
    .action(action(async (opts) => (await import('../commands/lab.js')).labStatusCommand(opts)));
  lab
    .command('down')
    .description('stop everything the lab started (a VM lab: clean poweroff)')
    .option(...name)
    .option(...vm)
    .option('--purge', 'also delete the lab directory (keys, node files, source tree)')
    .option('--json', 'print the result as JSON')
    .action(action(async (opts) => (await import('../commands/lab.js')).labDownCommand(opts)));
}
