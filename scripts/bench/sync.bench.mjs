// Source sync of a large tree (Debian's whole Go source tree, /usr/share/gocode/src) into a lab path —
// cold, no change, one file changed — against `rsync -a -e ssh` in the same run; then a warm `setup lab`.
// Goals: cold and no-change ≤ 1.0× rsync's wall time, bytes on the wire ≤ 1.1× rsync's; warm setup ≤ 10 s.
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchLab, ctrdbg, env, log, repo, round, timed, timedAsync } from './lib.mjs';

Object.assign(process.env, env);
const { connectHost } = await import(join(repo, 'dist/nodes/ssh/sshHost.js'));
const { resolveLab } = await import(join(repo, 'dist/nodes/resolveTarget.js'));
const { syncTree, DEFAULT_EXCLUDES } = await import(join(repo, 'dist/deploy/sourceSync.js'));

const lab = benchLab();
const base = '/var/lib/ctrdbg/bench-sync';
const oursDest = `${base}/ours`;
const rsyncDest = `${base}/rsync`;
// A private copy of the tree, so one of its files can be changed.
const src = mkdtempSync(join(tmpdir(), 'ctrdbg-bench-src-'));
log(`copying /usr/share/gocode/src to ${src}`);
execFileSync('cp', ['-a', '/usr/share/gocode/src/.', src]);
const files = Number(execFileSync('sh', ['-c', `find ${src} -type f | wc -l`]).toString().trim());
const size = execFileSync('du', ['-sh', src]).toString().split('\t')[0];
log(`tree: ${files} files, ${size}`);

const ssh = `ssh -i ${lab.ssh.keyPath} -p ${lab.ssh.port} -o UserKnownHostsFile=${lab.ssh.knownHostsPath} -o StrictHostKeyChecking=yes -o BatchMode=yes`;
function rsync() {
  const excludes = DEFAULT_EXCLUDES.flatMap((d) => ['--exclude', d]);
  const { ms, value } = timed(() =>
    spawnSync('rsync', ['-a', '--delete', '--stats', ...excludes, '-e', ssh, '--rsync-path', 'sudo rsync', `${src}/`, `${lab.ssh.user}@127.0.0.1:${rsyncDest}/`], { encoding: 'utf8' }),
  );
  if (value.status !== 0) throw new Error(`rsync failed: ${value.stderr}`);
  const sent = Number(/Total bytes sent: ([\d,]+)/.exec(value.stdout)[1].replace(/,/g, ''));
  const received = Number(/Total bytes received: ([\d,]+)/.exec(value.stdout)[1].replace(/,/g, ''));
  return { ms, bytes: sent + received };
}
async function ours() {
  const { ms, value } = await timedAsync(async () => {
    const host = await connectHost((await resolveLab('default')).endpoint);
    try {
      return await syncTree(host, src, oursDest);
    } finally {
      await host.close();
    }
  });
  return { ms, bytes: value.wireBytes, sent: value.sent };
}
// rsync creates only the last path component; both start from an empty parent.
const reset = () => {
  spawnSync('rm', ['-rf', base]);
  spawnSync('mkdir', ['-p', base]);
};

const rows = [];
function compare(name, o, r, timeGoal, bytesGoal) {
  log(`${name}: ours ${round(o.ms)} ms / ${o.bytes} B, rsync ${round(r.ms)} ms / ${r.bytes} B`);
  rows.push({ case: `sync ${name}`, metric: 'wall', value: round(o.ms, 0), unit: 'ms', anchor: { name: 'rsync -a -e ssh', value: round(r.ms, 0) }, ratio: o.ms / r.ms, ...(timeGoal ? { goal: '<= 1.0x rsync', met: o.ms <= r.ms } : {}) });
  rows.push({ case: `sync ${name}`, metric: 'wire', value: o.bytes, unit: 'B', anchor: { name: 'rsync -a -e ssh', value: r.bytes }, ratio: o.bytes / r.bytes, ...(bytesGoal ? { goal: '<= 1.1x rsync', met: o.bytes <= 1.1 * r.bytes } : {}) });
}

try {
  reset();
  // Warm the page cache for both equally.
  execFileSync('sh', ['-c', `tar -cf - -C ${src} . > /dev/null`]);
  const coldR = rsync();
  const coldO = await ours();
  compare('cold', coldO, coldR, true, true);
  const sameR = rsync();
  const sameO = await ours();
  compare('no change', sameO, sameR, true, true);
  const file = join(src, 'github.com/containerd/containerd/services/tasks/local.go');
  appendFileSync(file, '\n// changed by the benchmark\n');
  const later = new Date(Date.now() + 10_000);
  utimesSync(file, later, later);
  const oneR = rsync();
  const oneO = await ours();
  if (oneO.sent !== 1) throw new Error(`one file changed but ${oneO.sent} were sent`);
  compare('one file changed', oneO, oneR, false, false);

  // Warm setup: nothing to build beyond Go's cache, nothing new to send.
  const warm = timed(() => ctrdbg(['setup', 'lab']));
  rows.push({ case: 'setup lab (warm, with build)', metric: 'wall', value: round(warm.ms / 1000, 2), unit: 's', goal: '<= 10 s', met: warm.ms <= 10_000 });
  const skip = timed(() => ctrdbg(['setup', 'lab', '--skip-build']));
  rows.push({ case: 'setup lab (warm, --skip-build)', metric: 'wall', value: round(skip.ms / 1000, 2), unit: 's', goal: '<= 10 s', met: skip.ms <= 10_000 });
} finally {
  reset();
  rmSync(src, { recursive: true, force: true });
}
console.log(JSON.stringify({ suite: 'sync', rows }));
