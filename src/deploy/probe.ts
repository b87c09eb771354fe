/**
 * What a node is running: arch, OS, containerd's main PID (through its service manager, never `pidof`,
 * which would also find shims' parents or a second daemon), the binary behind it and its version.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { cacheDir } from '../config.js';
import { nodeError } from '../errors.js';
import type { RemoteHost } from '../nodes/remoteHost.js';
import type { Target } from '../nodes/target.js';
import { exists, sha256File } from '../util/fsx.js';
import { shellQuote } from '../util/shell.js';
import { serviceControl } from './service.js';

export interface NodeProbe {
  arch: string;
  goArch: string;
  os: string;
  kernel: string;
  pid: number;
  /** The running binary's path on disk (what /proc/PID/exe points at). */
  binary: string;
  /** The file behind the path was replaced since containerd started. */
  binaryReplaced: boolean;
  /** sha256 of the running process's image (/proc/PID/exe), not of the file now at `binary`. */
  runningSha256: string;
  version: string;
  tracerPid: number;
}

const UNAME_TO_GOARCH: Record<string, string> = {
  x86_64: 'amd64',
  aarch64: 'arm64',
  arm64: 'arm64',
  armv7l: 'arm',
  ppc64le: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
};

export function goArchOf(uname: string): string {
  return UNAME_TO_GOARCH[uname] ?? uname;
}

/** "containerd github.com/containerd/containerd v1.7.23 57f17b0a…" → "1.7.23". */
export function semverOf(version: string): string | undefined {
  const m = /\bv?(\d+)\.(\d+)\.(\d+)/.exec(version);
  return m ? `${m[1]}.${m[2]}.${m[3]}` : undefined;
}

export async function probeNode(
  host: RemoteHost,
  target: Target,
  options: { requireRunning?: boolean } = {},
): Promise<NodeProbe> {
  const basics = await host.execChecked(
    `uname -m; uname -r; . /etc/os-release 2>/dev/null; echo "\${PRETTY_NAME:-unknown}"`,
  );
  const [arch = '', kernel = '', os = ''] = basics.split('\n');
  const service = serviceControl(host, target.service);
  const pid = await service.mainPid();
  const probe: NodeProbe = {
    arch,
    goArch: goArchOf(arch),
    os,
    kernel,
    pid,
    binary: '',
    binaryReplaced: false,
    runningSha256: '',
    version: '',
    tracerPid: 0,
  };
  if (!pid) {
    if (options.requireRunning === false) return probe;
    const log = await service.recentLog(5).catch(() => '');
    throw nodeError(
      `containerd is not running on ${target.endpoint.label} (${service.description} reports no main PID).`,
      {
        hint: `Start it first (${target.service.kind === 'systemd' ? `sudo systemctl start ${target.service.unit}` : 'ctrdbg lab up'}), then try again.${log ? ` Its log ends with: ${log.trim().split('\n').slice(-2).join(' | ')}` : ''}`,
      },
    );
  }
  const proc = `/proc/${pid}`;
  const facts = await host.execChecked(
    `readlink ${proc}/exe; sha256sum ${proc}/exe | cut -d' ' -f1; ${proc}/exe --version 2>&1 | head -n1; awk '/^TracerPid:/{print $2}' ${proc}/status`,
    { sudo: true },
  );
  const [exe = '', sha = '', version = '', tracer = '0'] = facts.split('\n');
  probe.binary = exe.replace(/ \(deleted\)$/, '');
  probe.binaryReplaced = exe.endsWith(' (deleted)');
  probe.runningSha256 = sha.trim();
  probe.version = version.trim();
  probe.tracerPid = Number(tracer) || 0;
  return probe;
}

export async function remoteSha256(host: RemoteHost, path: string): Promise<string | undefined> {
  const r = await host.exec(`sha256sum ${shellQuote(path)} | cut -d' ' -f1`, { sudo: true });
  const sha = r.stdout.trim();
  return r.code === 0 && /^[0-9a-f]{64}$/.test(sha) ? sha : undefined;
}

/** The running image, copied once into the local cache by sha256 (inspection needs readelf, which nodes lack). */
export async function fetchRunningBinary(host: RemoteHost, probe: NodeProbe): Promise<string> {
  return fetchNodeFile(host, `/proc/${probe.pid}/exe`, probe.runningSha256);
}

/** A file on the node whose sha256 is known, copied once into the local cache by that sha256. */
export async function fetchNodeFile(host: RemoteHost, remotePath: string, sha256: string): Promise<string> {
  const dir = join(cacheDir(), 'node-binaries');
  const path = join(dir, sha256);
  if (await exists(path)) return path;
  await mkdir(dir, { recursive: true });
  const proc = await host.spawn(`cat ${shellQuote(remotePath)}`, { sudo: true });
  proc.stream.end();
  const tmp = `${path}.part`;
  try {
    await pipeline(proc.stream, createWriteStream(tmp));
    // Cached by its sha256: a file replaced while it was read must not be kept under the old one's name.
    const got = await sha256File(tmp);
    if (got !== sha256)
      throw nodeError(`${remotePath} on the node changed while it was read (sha256 ${got}).`);
    await rename(tmp, path);
  } finally {
    await rm(tmp, { force: true });
  }
  return path;
}

/** The config file the daemon was started with (--config/-c), else containerd's default path. */
export async function daemonConfigPath(host: RemoteHost, pid: number): Promise<string> {
  const argv = (await host.exec(`tr '\\0' '\\n' < /proc/${pid}/cmdline`, { sudo: true })).stdout.split('\n');
  const at = argv.findIndex((a) => a === '--config' || a === '-c');
  const inline = argv.find((a) => a.startsWith('--config='));
  return (
    inline?.slice('--config='.length) ?? (at >= 0 ? argv[at + 1] : undefined) ?? '/etc/containerd/config.toml'
  );
}
