/**
 * Incremental source-tree sync to the same absolute path on the node, so Delve's `list` (and VS Code with
 * an identity substitutePath) finds the files the DWARF names.
 *
 * One round trip lists the node's side (`find -printf`, gzip'd); files are compared like rsync's quick
 * check (size + mtime in whole seconds); only new or changed files travel, as one tar stream through an
 * SSH channel into `tar -x`; files gone locally are deleted on the node. Nothing is sent when nothing
 * changed.
 */
import { lstat } from 'node:fs/promises';
import { type Readable, Transform } from 'node:stream';
import { createGzip, gunzipSync } from 'node:zlib';
import { inputError, nodeError } from '../errors.js';
import type { RemoteHost } from '../nodes/remoteHost.js';
import { run, start } from '../util/exec.js';
import { shellQuote } from '../util/shell.js';

export interface FileEntry {
  /** Path relative to the root, '/'-separated. */
  path: string;
  size: number;
  /** Whole seconds. */
  mtime: number;
  mode: number;
  /** Symlink target, for links. */
  link?: string;
}

export interface SyncOptions {
  /** Directory names skipped anywhere in the tree (e.g. .git, node_modules). */
  excludeDirs?: string[];
  /** gzip the tar stream (less on the wire, more CPU on both ends). */
  compress?: boolean;
  onProgress?: (p: {
    phase: 'listing' | 'sending' | 'deleting';
    done: number;
    total: number;
    bytes: number;
  }) => void;
}

export interface SyncResult {
  localRoot: string;
  remoteRoot: string;
  files: number;
  sent: number;
  sentBytes: number;
  deleted: number;
  /** Bytes that crossed the SSH channels in both directions (payload, before SSH framing). */
  wireBytes: number;
  ms: number;
}

export const DEFAULT_EXCLUDES = ['.git', 'node_modules', '_output', '.cache'];

/** `find` that prints what the quick check compares; run the same way locally and on the node. */
function findCommand(root: string, excludeDirs: string[]): string {
  const prune = excludeDirs.length
    ? `\\( ${excludeDirs.map((d) => `-name ${shellQuote(d)}`).join(' -o ')} \\) -type d -prune -o`
    : '';
  return `cd ${shellQuote(root)} && find . ${prune} \\( -type f -o -type l \\) -printf '%y\\t%s\\t%T@\\t%P\\t%l\\n'`;
}

/** The local tree, listed by `find` (an order of magnitude faster than walking it from JavaScript). */
export async function listLocalTree(
  root: string,
  excludeDirs: string[] = DEFAULT_EXCLUDES,
): Promise<Map<string, FileEntry>> {
  const rootStat = await lstat(root).catch(() => undefined);
  if (!rootStat?.isDirectory())
    throw inputError(`${root} is not a directory.`, { hint: 'Pass the source tree with --src DIR.' });
  const r = await run('sh', ['-c', findCommand(root, excludeDirs)], { maxBuffer: 1 << 30, timeout: 300_000 });
  if (r.exitCode !== 0) throw inputError(`Could not list ${root}: ${r.stderr.trim()}`);
  return parseRemoteListing(r.stdout);
}

/** Parses `find -printf '%y\\t%s\\t%T@\\t%P\\t%l\\n'` output. */
export function parseRemoteListing(text: string): Map<string, FileEntry> {
  const files = new Map<string, FileEntry>();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [type, size, mtime, path, link] = line.split('\t');
    if (!path || (type !== 'f' && type !== 'l')) continue;
    const entry: FileEntry = { path, size: Number(size), mtime: Math.floor(Number(mtime)), mode: 0 };
    if (type === 'l') entry.link = link ?? '';
    files.set(path, entry);
  }
  return files;
}

/** What must travel and what must go, comparing like rsync's quick check. */
export function planSync(
  local: Map<string, FileEntry>,
  remote: Map<string, FileEntry>,
): { send: FileEntry[]; remove: string[] } {
  const send: FileEntry[] = [];
  for (const file of local.values()) {
    const there = remote.get(file.path);
    if (!there) send.push(file);
    else if (file.link !== undefined || there.link !== undefined) {
      if (file.link !== there.link) send.push(file);
    } else if (there.size !== file.size || there.mtime !== file.mtime) send.push(file);
  }
  const remove = [...remote.keys()].filter((p) => !local.has(p));
  return { send, remove };
}

class Counter extends Transform {
  bytes = 0;
  override _transform(
    chunk: Buffer,
    _enc: BufferEncoding,
    done: (e?: Error | null, d?: Buffer) => void,
  ): void {
    this.bytes += chunk.length;
    done(null, chunk);
  }
}

async function remoteListing(
  host: RemoteHost,
  remoteRoot: string,
  excludeDirs: string[],
): Promise<{ files: Map<string, FileEntry>; wire: number }> {
  const command = `if [ -d ${shellQuote(remoteRoot)} ]; then ${findCommand(remoteRoot, excludeDirs)} | gzip -1 | base64 -w0; fi`;
  const r = await host.exec(command, { sudo: true, timeoutMs: 300_000 });
  if (r.code !== 0) throw nodeError(`Could not list ${remoteRoot} on the node: ${r.stderr.trim()}`);
  const wire = r.stdout.length + command.length;
  if (!r.stdout.trim()) return { files: new Map(), wire };
  const listing = gunzipSync(Buffer.from(r.stdout.trim(), 'base64')).toString('utf8');
  return { files: parseRemoteListing(listing), wire };
}

export async function syncTree(
  host: RemoteHost,
  localRoot: string,
  remoteRoot: string,
  options: SyncOptions = {},
): Promise<SyncResult> {
  const started = Date.now();
  const excludeDirs = options.excludeDirs ?? DEFAULT_EXCLUDES;
  options.onProgress?.({ phase: 'listing', done: 0, total: 0, bytes: 0 });
  const [local, remote] = await Promise.all([
    listLocalTree(localRoot, excludeDirs),
    remoteListing(host, remoteRoot, excludeDirs),
  ]);
  const plan = planSync(local, remote.files);
  let wireBytes = remote.wire;
  let sentBytes = 0;

  if (plan.send.length) {
    // System tar packs the files (C, reading them efficiently); JavaScript only moves the bytes into the
    // channel. Paths come NUL-separated on tar's stdin, so any file name is safe.
    const counter = new Counter();
    const tar = start(
      'tar',
      ['-c', '--null', '--no-recursion', '--numeric-owner', '--owner=0', '--group=0', '-T', '-', '-f', '-'],
      { cwd: localRoot, stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', buffer: false, reject: false },
    );
    let tarErr = '';
    tar.stderr.on('data', (d: Buffer) => {
      tarErr += d.toString();
    });
    const tarExit = new Promise<number | null>((resolve) => tar.on('close', (code) => resolve(code)));
    tar.stdin.end(`${plan.send.map((f) => f.path).join('\0')}\0`);
    let reported = 0;
    const total = plan.send.reduce((n, f) => n + f.size, 0);
    counter.on('data', () => {
      if (counter.bytes - reported >= 8 << 20) {
        reported = counter.bytes;
        options.onProgress?.({
          phase: 'sending',
          done: Math.min(counter.bytes, total),
          total,
          bytes: counter.bytes,
        });
      }
    });
    const body: Readable = options.compress
      ? tar.stdout.pipe(createGzip({ level: 1 })).pipe(counter)
      : tar.stdout.pipe(counter);
    const untar = `mkdir -p ${shellQuote(remoteRoot)} && tar -x${options.compress ? 'z' : ''} --no-same-owner -f - -C ${shellQuote(remoteRoot)}`;
    const result = await host.pipeTo(untar, body, { sudo: true, timeoutMs: 1_800_000 });
    const code = await tarExit;
    if (code !== 0) throw inputError(`Packing the source tree failed: ${tarErr.trim()}`);
    if (result.code !== 0)
      throw nodeError(`Unpacking the source tree on the node failed: ${result.stderr.trim()}`);
    sentBytes = total;
    wireBytes += counter.bytes + untar.length;
  }

  if (plan.remove.length) {
    options.onProgress?.({ phase: 'deleting', done: 0, total: plan.remove.length, bytes: sentBytes });
    const list = `${plan.remove.join('\0')}\0`;
    const cmd = `cd ${shellQuote(remoteRoot)} && xargs -0 rm -f --`;
    const r = await host.exec(cmd, { sudo: true, stdin: list, timeoutMs: 300_000 });
    if (r.code !== 0) throw nodeError(`Deleting removed files on the node failed: ${r.stderr.trim()}`);
    wireBytes += list.length + cmd.length;
  }
  return {
    localRoot,
    remoteRoot,
    files: local.size,
    sent: plan.send.length,
    sentBytes,
    deleted: plan.remove.length,
    wireBytes,
    ms: Date.now() - started,
  };
}
