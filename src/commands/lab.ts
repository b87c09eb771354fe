/** `ctrdbg lab up | down | status`: the local disposable node. */
import type { CommandOutput } from '../cli/run.js';
import { type LabDownResult, type LabStatus, type LabUpResult, labDown, labStatus, labUp } from '../lab/lab.js';
import { createLogger, formatTable, mark, style } from '../util/output.js';

export interface LabOptions {
  name: string;
  json?: boolean;
  purge?: boolean;
}

export async function labUpCommand(options: LabOptions): Promise<CommandOutput<LabUpResult>> {
  const log = createLogger({ quiet: options.json });
  const result = await labUp(options.name, log);
  const verb = result.created ? 'is up' : 'was already up';
  return { data: result, text: `lab '${result.name}' ${verb}\n\n${renderStatus(result.status)}` };
}

export async function labStatusCommand(options: LabOptions): Promise<CommandOutput<LabStatus>> {
  const status = await labStatus(options.name);
  return { data: status, text: renderStatus(status), exitCode: status.up ? 0 : 11 };
}

export async function labDownCommand(options: LabOptions): Promise<CommandOutput<LabDownResult>> {
  const log = createLogger({ quiet: options.json });
  const result = await labDown(options.name, { purge: options.purge }, log);
  const what = result.stopped.length ? `stopped ${result.stopped.map((s) => `${s.what} (${s.pid})`).join(', ')}` : 'nothing was running';
  return { data: result, text: `lab '${result.name}' is down: ${what}${result.removed ? '; its directory was removed' : ''}` };
}

export function renderStatus(s: LabStatus): string {
  const yes = (ok: boolean | undefined, text: string) => `${ok ? mark.ok() : mark.bad()} ${text}`;
  const c = s.containerd;
  const debuggable =
    c.debuggable === undefined ? '-' : c.debuggable ? yes(true, 'debuggable') : yes(false, `not debuggable (${(c.debugProblems ?? []).join('; ')})`);
  const rows = [
    ['target', style.bold(s.target)],
    ['ssh', yes(s.ssh.reachable, `${s.ssh.user}@${s.ssh.host}:${s.ssh.port}${s.ssh.banner ? `  (${s.ssh.banner})` : ''}`)],
    ['key', s.ssh.keyPath],
    ['known_hosts', s.ssh.knownHostsPath],
    ['containerd', yes(c.running && c.serving, c.running ? `pid ${c.pid}${c.serving ? ', serving' : ', not answering'}${c.traced ? ', traced' : ''}` : 'not running')],
    ['version', c.version ?? '-'],
    ['binary', `${c.binary}${c.isStock === undefined ? '' : c.isStock ? ' (stock)' : ' (replaced)'}`],
    ['sha256', c.sha256 ?? '-'],
    ['debug info', debuggable],
    ['socket', c.socket],
    ['source tree', s.tree],
    ['image', `${s.image}  (ctr -a ${c.socket} run --rm ${s.image} demo /hello hi)`],
  ];
  return formatTable(rows);
}
