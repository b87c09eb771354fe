/**
 * Incremental source sync over the lab's real SSH into a directory of its own (on the lab the node's
 * "same path" is the local tree itself, so only a second directory shows what travels).
 */
import { mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syncTree } from '../../src/deploy/sourceSync.js';
import type { RemoteHost } from '../../src/nodes/remoteHost.js';
import { resolveLab } from '../../src/nodes/resolveTarget.js';
import { connectHost } from '../../src/nodes/ssh/sshHost.js';
import { labEnv } from '../helpers/lab.js';

let host: RemoteHost;
let src: string;
const dest = '/var/lib/ctrdbg/test-sync/dest';

beforeAll(async () => {
  process.env.CTRDBG_LAB_ROOT = labEnv().CTRDBG_LAB_ROOT;
  host = await connectHost((await resolveLab('default')).endpoint);
  await host.execChecked(`rm -rf ${dest}`, { sudo: true });
  src = await mkdtemp(join(tmpdir(), 'ctrdbg-sync-'));
  for (let d = 0; d < 5; d++) {
    await mkdir(join(src, `pkg${d}`, 'sub'), { recursive: true });
    for (let f = 0; f < 20; f++)
      await writeFile(
        join(src, `pkg${d}`, f % 2 ? 'sub' : '', `file${f}.go`),
        `package pkg${d}\n// ${'x'.repeat(f * 100)}\n`,
      );
  }
  await mkdir(join(src, '.git'));
  await writeFile(join(src, '.git', 'HEAD'), 'ref: refs/heads/main\n');
  await symlink('pkg0/file0.go', join(src, 'link.go'));
});

afterAll(async () => {
  await host?.execChecked(`rm -rf /var/lib/ctrdbg/test-sync`, { sudo: true }).catch(() => {});
  await host?.close();
  await rm(src, { recursive: true, force: true });
});

describe('syncTree', () => {
  it('sends the whole tree the first time, skipping .git, keeping links and mtimes', async () => {
    const r = await syncTree(host, src, dest);
    expect(r.files).toBe(101);
    expect(r.sent).toBe(101);
    expect(r.deleted).toBe(0);
    expect(await readFile(join(dest, 'pkg3/sub/file7.go'), 'utf8')).toBe(
      await readFile(join(src, 'pkg3/sub/file7.go'), 'utf8'),
    );
    const link = await host.execChecked(
      `readlink ${dest}/link.go; test -e ${dest}/.git && echo git || echo no-git`,
    );
    expect(link.trim().split('\n')).toEqual(['pkg0/file0.go', 'no-git']);
  });

  it('sends nothing when nothing changed', async () => {
    const r = await syncTree(host, src, dest);
    expect(r.sent).toBe(0);
    expect(r.deleted).toBe(0);
    expect(r.sentBytes).toBe(0);
  });

  it('sends only the file that changed, and deletes the one removed', async () => {
    await writeFile(join(src, 'pkg1/file4.go'), 'package pkg1\n// changed\n');
    const later = new Date(Date.now() + 5_000);
    await utimes(join(src, 'pkg1/file4.go'), later, later);
    await rm(join(src, 'pkg2/sub/file9.go'));
    const r = await syncTree(host, src, dest);
    expect(r.sent).toBe(1);
    expect(r.sentBytes).toBe('package pkg1\n// changed\n'.length);
    expect(r.deleted).toBe(1);
    expect(await readFile(join(dest, 'pkg1/file4.go'), 'utf8')).toBe('package pkg1\n// changed\n');
    const gone = await host.exec(`test -e ${dest}/pkg2/sub/file9.go`);
    expect(gone.code).toBe(1);
  });
});

describe('CTRDBG_DEBUG=1 logs the sync’s commands', () => {
  it('the local packer (tar) and the node’s unpacker, with their command lines', async () => {
    await writeFile(join(src, 'pkg4/debug-log.go'), 'package pkg4\n');
    const written: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.env.CTRDBG_DEBUG = '1';
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      written.push(String(chunk));
      return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stderr.write;
    try {
      expect((await syncTree(host, src, dest)).sent).toBe(1);
    } finally {
      process.stderr.write = write;
      delete process.env.CTRDBG_DEBUG;
    }
    const log = written.join('');
    expect(log).toMatch(/debug: \$ tar -c --null --no-recursion .* -T - -f -\s+\(in \S+ctrdbg-sync-/);
    expect(log).toMatch(/debug: lab: \$ .*tar -x/);
    expect(log).toMatch(/debug: \$ sh -c 'cd \S+ && find \. /);
  });
});
