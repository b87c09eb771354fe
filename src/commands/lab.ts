/** `ctrdbg lab up | down | status`: the local disposable node. */

import { inputError, usageError } from '../errors.js';
import {
  type LabDownResult,
  type LabStatus,
  type LabUpResult,
  labDown,
  labStatus,
  labUp,
} from '../lab/lab.js';
import { isVmLab, labFlavor, labPaths, readLabState } from '../nodes/labNodes.js';
import { run } from '../util/exec.js';
import { createLogger } from '../util/output.js';
import { renderStatus } from './labStatusText.js';
import type { CommandOutput } from './output.js';

export interface LabOptions {
  /** Left out: 'vm' with --vm, 'cri' with --cri, else 'default'. */
  name?: string;
  /** The CRI flavour (src/lab/criLab.ts): up makes one; status/down find it by its default name. */
  cri?: boolean;
  json?: boolean;
  purge?: boolean;
  /** VM lab (src/lab/vm.ts): up --vm boots one; status/down find a VM lab by its name too. */
  vm?: boolean;
  rebuild?: boolean;
  reset?: boolean;
}

// --- VM lab dispatch: a lab directory holding vm.json is a VM lab (commands/labVm.ts). ---
const labName = (o: LabOptions) => o.name ?? (o.vm ? 'vm' : o.cri ? 'cri' : 'default');
async function vmCommands(o: LabOptions) {
  return o.vm || (await isVmLab(labName(o))) ? import('./labVm.js') : undefined;
}

export async function labUpCommand(options: LabOptions): Promise<CommandOutput<LabUpResult>> {
  if (options.vm) return (await import('./labVm.js')).vmUpCommand({ ...options, name: labName(options) });
  if (options.vm && options.cri)
    throw usageError('--vm and --cri are two different labs.', {
      hint: 'Pick one: ctrdbg lab up --cri (CRI on this machine) or ctrdbg lab up --vm.',
    });
  const log = createLogger({ quiet: options.json });
  const result = await labUp(labName(options), log, { cri: options.cri });
  const verb = result.created ? 'is up' : 'was already up';
  return { data: result, text: `lab '${result.name}' ${verb}\n\n${renderStatus(result.status)}` };
}

export async function labStatusCommand(options: LabOptions): Promise<CommandOutput<LabStatus>> {
  const vm = await vmCommands(options);
  if (vm) return vm.vmStatusCommand({ ...options, name: labName(options) });
  const status = await labStatus(labName(options));
  return { data: status, text: renderStatus(status), exitCode: status.up ? 0 : 11 };
}

export async function labDownCommand(
  options: LabOptions,
): Promise<CommandOutput<LabDownResult | import('../lab/vm.js').VmDownResult>> {
  const vm = await vmCommands(options);
  if (vm) return vm.vmDownCommand({ ...options, name: labName(options) });
  const log = createLogger({ quiet: options.json });
  const result = await labDown(labName(options), { purge: options.purge }, log);
  const what = result.stopped.length
    ? `stopped ${result.stopped.map((s) => `${s.what} (${s.pid})`).join(', ')}`
    : 'nothing was running';
  return {
    data: result,
    text: `lab '${result.name}' is down: ${what}${result.removed ? '; its directory was removed' : ''}`,
  };
}

export interface KubeletOptions {
  name?: string;
}

/**
 * `ctrdbg lab kubelet MODE [FLAGS…]`: runs the CRI lab's kubelet stand-in against that lab's containerd, with
 * its output live. Inside an attach trigger the lab comes from $CTRDBG_TARGET, so `--name` can be left out.
 */
export async function labKubeletCommand(
  mode: string,
  args: string[],
  options: KubeletOptions,
): Promise<CommandOutput<{ lab: string; exitCode: number }>> {
  const fromTrigger = /^lab:(.+)$/.exec(process.env.CTRDBG_TARGET ?? '')?.[1];
  const name = options.name ?? fromTrigger ?? 'cri';
  const paths = labPaths(name);
  const state = await readLabState(paths);
  if (!state) {
    throw inputError(`There is no lab named '${name}'.`, {
      hint: 'Create the CRI lab with: ctrdbg lab up --cri',
    });
  }
  if (labFlavor(state) !== 'cri') {
    throw inputError(`The lab '${name}' has no CRI plugin, so it has no kubelet stand-in.`, {
      hint: 'Use the CRI lab: ctrdbg lab up --cri, then ctrdbg lab kubelet run-pod.',
    });
  }
  const result = await run(paths.node.kubelet, [mode, ...args], {
    stdio: 'inherit',
    env: { CTRDBG_SOCKET: paths.node.socket, CTRDBG_POD_LOG_ROOT: paths.node.podLogs },
  });
  return { data: { lab: name, exitCode: result.exitCode }, text: '', exitCode: result.exitCode };
}
