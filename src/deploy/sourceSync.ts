/**
 * Incremental source-tree sync to the same absolute path on the node, so Delve's `list` (and VS Code with
 * an identity substitutePath) finds the files the DWARF names.
 *
 * One round trip lists the node's side (`find -printf`, gzip'd); files are compared like rsync's quick
 * check (size + mtime in whole seconds); only new or changed files travel, as one tar stream through an
 * SSH channel into `tar -x`; files gone locally are deleted on the node. Nothing is sent when nothing
 * changed.
 */
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, gunzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { inputError, nodeError } from '../errors.js';
import type { RemoteHost } from '../target/remoteHost.js';
import { shellQuote } from '../target/remoteHost.js';

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

export async function listLocalTree(
  root: string,
  excludeDirs: string[] = DEFAULT_EXCLUDES,
): Promise<Map<string, FileEntry>> {
  const files = new Map<string, FileEntry>();
  const skip = new Set(excludeDirs);
  const rootStat = await lstat(root).catch(() => undefined);
  if (!rootStat?.isDirectory())
    throw inputError(`${root} is not a directory.`, { hint: 'Pass the source tree with --src DIR.' });
  async function walk(dir: string, rel: string): Promise<void> {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const entry of entries) {
      const abs = join(dir, entry.name);
      const relPath = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (!skip.has(entry.name)) await walk(abs, relPath);
      } else if (entry.isFile() || entry.isSymbolicLink()) {
        const st = await lstat(abs);
        const file: FileEntry = {
          path: relPath,
          size: st.size,
          mtime: Math.floor(st.mtimeMs / 1000),
          mode: st.mode & 0o7777,
        };
        if (entry.isSymbolicLink()) file.link = await readlink(abs);
        files.set(relPath, file);
      }
    }
  }
  await walk(root, '');
  return files;
}

/** Parses `find -printf '%y\t%s\t%T@\t%P\t%l\n'` output. */
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
  const prune = excludeDirs.length
    ? `\\( ${excludeDirs.map((d) => `-name ${shellQuote(d)}`).join(' -o ')} \\) -type d -prune -o`
    : '';
  const command = `if [ -d ${shellQuote(remoteRoot)} ]; then cd ${shellQuote(remoteRoot)} && find . ${prune} \\( -type f -o -type l \\) -printf '%y\\t%s\\t%T@\\t%P\\t%l\\n' | gzip -1 | base64 -w0; fi`;
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
    const tar = pack();
    const counter = new Counter();
    const total = plan.send.reduce((n, f) => n + f.size, 0);
    const feed = (async () => {
      let done = 0;
      for (const file of plan.send) {
        const header = {
          name: file.path,
          mode: file.mode,
          mtime: new Date(file.mtime * 1000),
          uid: 0,
          gid: 0,
        };
        if (file.link !== undefined) {
          tar.entry({ ...header, type: 'symlink', linkname: file.link });
        } else {
          const entry = tar.entry({ ...header, size: file.size, type: 'file' });
          await pipeline(createReadStream(join(localRoot, file.path)), entry);
        }
        sentBytes += file.size;
        done++;
        options.onProgress?.({ phase: 'sending', done, total: plan.send.length, bytes: sentBytes });
      }
      tar.finalize();
    })();
    const body: Readable = options.compress
      ? tar.pipe(createGzip({ level: 1 })).pipe(counter)
      : tar.pipe(counter);
    const untar = `mkdir -p ${shellQuote(remoteRoot)} && tar -x${options.compress ? 'z' : ''} --no-same-owner -f - -C ${shellQuote(remoteRoot)}`;
    const [result] = await Promise.all([
      host.pipeTo(untar, body, { sudo: true, timeoutMs: 1_800_000 }),
      feed,
    ]);
    if (result.code !== 0)
      throw nodeError(`Unpacking the source tree on the node failed: ${result.stderr.trim()}`);
    wireBytes += counter.bytes + untar.length;
    void total;
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
