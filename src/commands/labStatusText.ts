/** How `lab up` and `lab status` show a lab (process, VM and CRI labs alike). */
import type { LabStatus } from '../lab/lab.js';
import { formatTable, mark, style } from '../util/output.js';

export function renderStatus(s: LabStatus): string {
  const yes = (ok: boolean | undefined, text: string) => `${ok ? mark.ok() : mark.bad()} ${text}`;
  const c = s.containerd;
  const debuggable =
    c.debuggable === undefined
      ? '-'
      : c.debuggable
        ? yes(true, 'debuggable')
        : yes(false, `not debuggable (${(c.debugProblems ?? []).join('; ')})`);
  const rows = [
    ['target', style.bold(s.target)],
    [
      'ssh',
      yes(
        s.ssh.reachable,
        `${s.ssh.user}@${s.ssh.host}:${s.ssh.port}${s.ssh.banner ? `  (${s.ssh.banner})` : ''}`,
      ),
    ],
    ['key', s.ssh.keyPath],
    ['known_hosts', s.ssh.knownHostsPath],
    [
      'containerd',
      yes(
        c.running && c.serving,
        c.running
          ? `pid ${c.pid}${c.serving ? ', serving' : ', not answering'}${c.traced ? ', traced' : ''}`
          : 'not running',
      ),
    ],
    ['version', c.version ?? '-'],
    ['binary', `${c.binary}${c.isStock === undefined ? '' : c.isStock ? ' (stock)' : ' (replaced)'}`],
    ['sha256', c.sha256 ?? '-'],
    ['debug info', debuggable],
    ['socket', c.socket],
    ['source tree', s.tree],
    ...(s.flavor
      ? [['flavour', s.flavor === 'cri' ? 'cri (containerd with CRI, Go 1.24 lane)' : 'stock']]
      : []),
    ...(s.image && !s.cri
      ? [['image', `${s.image}  (ctr -a ${c.socket} run --rm ${s.image} demo /hello hi)`]]
      : []),
    ...(s.cri
      ? [
          ['sandbox image', `${s.cri.sandboxImage} (namespace ${s.cri.namespace})`],
          [
            'kubelet',
            `${s.cri.kubelet} run-pod | pull | create-orphan   (ctrdbg lab kubelet --name ${s.name} run-pod)`,
          ],
          ['pod logs', s.cri.podLogs],
        ]
      : []),
  ];
  return formatTable(rows);
}
