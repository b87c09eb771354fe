import type { Command } from 'commander';
import { action } from './run.js';

export function registerLab(program: Command): void {
  const lab = program
    .command('lab')
    .description('a local disposable node: real sshd, sudo and containerd (no minikube needed)');
  const name = ['--name <name>', "which lab (default: 'default'; 'cri' with --cri, 'vm' with --vm)"] as const;
  const cri = [
    '--cri',
    "a CRI lab: trixie's containerd 1.7.24 with CRI, Go 1.24 + Delve 1.24, a kubelet stand-in (target lab:cri)",
  ] as const;
  const vm = [
    '--vm',
    'a VM lab: Debian under QEMU, containerd as a systemd unit (like minikube kvm2)',
  ] as const;
  lab
    .command('up')
    .description(
      "start the lab (idempotent) and print its target ('lab'; 'lab:cri' with --cri, 'lab:vm' with --vm)",
    )
    .option(...name)
    .option(...cri)
    .option(...vm)
    .option('--rebuild', "with --vm: build the VM image again from Debian's archive")
    .option('--reset', "with --vm: discard the node's changes and boot the pristine image")
    .option('--json', 'print the result as JSON')
    .action(action(async (opts) => (await import('../commands/lab.js')).labUpCommand(opts)));
  lab
    .command('status')
    .description('show the SSH endpoint, containerd PID, version, sha256 and whether it is debuggable')
    .option(...name)
    .option(...cri)
    .option(...vm)
    .option('--json', 'print the result as JSON')
    .action(action(async (opts) => (await import('../commands/lab.js')).labStatusCommand(opts)));
  lab
    .command('down')
    .description('stop everything the lab started (a VM lab: clean poweroff)')
    .option(...name)
    .option(...cri)
    .option(...vm)
    .option('--purge', 'also delete the lab directory (keys, node files, source tree)')
    .option('--json', 'print the result as JSON')
    .action(action(async (opts) => (await import('../commands/lab.js')).labDownCommand(opts)));
  lab
    .command('kubelet')
    .description(
      "the CRI lab's kubelet stand-in: run-pod (RunPodSandbox … RemovePodSandbox), pull (with Auth), create-orphan, remove-pods",
    )
    .argument('<mode>', 'run-pod | pull | create-orphan | remove-pods')
    .argument(
      '[flags...]',
      "the stand-in's own flags, e.g. --pod-name web --image ctrdbg.lab/hello:1 (run-pod -h)",
    )
    .option(
      '--name <name>',
      "which CRI lab (default: the one in $CTRDBG_TARGET inside a trigger, else 'cri')",
    )
    .allowUnknownOption()
    .helpOption('--help-ctrdbg', 'help for this ctrdbg command (`-h` after MODE is the stand-in’s)')
    .addHelpText(
      'after',
      "\nExamples:\n  ctrdbg lab kubelet run-pod --pod-name web --pod-namespace shop\n  ctrdbg attach lab:cri --set cri-create --trigger 'ctrdbg lab kubelet run-pod'\n",
    )
    .action(
      action(async (mode: string, flags: string[], opts: { name?: string }) =>
        (await import('../commands/lab.js')).labKubeletCommand(mode, flags, opts),
      ),
    );
}
