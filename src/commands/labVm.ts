/** `ctrdbg lab up --vm | status | down` for a VM lab (src/lab/vm.ts); dispatched from commands/lab.ts. */

import { type VmDownResult, type VmLabStatus, type VmUpResult, vmDown, vmStatus, vmUp } from '../lab/vm.js';
import { createLogger, formatTable } from '../util/output.js';
import { renderStatus } from './labStatusText.js';
import type { CommandOutput } from './output.js';

export interface VmLabOptions {
  name: string;
  json?: boolean;
  purge?: boolean;
  rebuild?: boolean;
  reset?: boolean;
}

export async function vmUpCommand(options: VmLabOptions): Promise<CommandOutput<VmUpResult>> {
  const log = createLogger({ quiet: options.json });
  const result = await vmUp(options.name, { rebuild: options.rebuild, reset: options.reset }, log);
  const verb = result.booted ? 'is up' : 'was already up';
  return { data: result, text: `VM lab '${result.name}' ${verb}\n\n${renderVmStatus(result.status)}` };
}

export async function vmStatusCommand(options: VmLabOptions): Promise<CommandOutput<VmLabStatus>> {
  const status = await vmStatus(options.name);
  return { data: status, text: renderVmStatus(status), exitCode: status.up ? 0 : 11 };
}

export async function vmDownCommand(options: VmLabOptions): Promise<CommandOutput<VmDownResult>> {
  const log = createLogger({ quiet: options.json });
  const result = await vmDown(options.name, { purge: options.purge }, log);
  const what = result.stopped.length
    ? `stopped ${result.stopped.map((s) => `${s.what} (${s.pid})`).join(', ')}${result.how ? ` by ${result.how}` : ''}${result.seconds !== undefined ? ` in ${result.seconds} s` : ''}`
    : 'nothing was running';
  return {
    data: result,
    text: `VM lab '${result.name}' is down: ${what}${result.removed ? '; its directory (image included) was removed' : ''}`,
  };
}

export function renderVmStatus(s: VmLabStatus): string {
  const vm = formatTable([
    ['qemu', s.vm.qemuPid ? `pid ${s.vm.qemuPid} (${s.vm.accel.toUpperCase()})` : 'not running'],
    ['service', `systemd ${s.vm.unit}`],
    ['disk', `${s.vm.disk} (on ${s.vm.image}, built ${s.vm.imageBuiltAt})`],
    ['console', s.vm.console],
  ]);
  return `${renderStatus(s)}\n${vm}`;
}
