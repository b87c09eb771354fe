import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { BinaryReport } from '../../src/debugbuild/debugInfo.js';
import {
  type BuildManifest,
  gitState,
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  manifestPathFor,
  parseContainerdVersionLine,
  readManifest,
  writeManifest,
} from '../../src/debugbuild/manifest.js';
import { isCtrdbgError } from '../../src/errors.js';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ctrdbg-manifest-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function sampleManifest(dir: string): BuildManifest {
  const verification = { debuggable: true, problems: [], sha256: 'a'.repeat(64) } as unknown as BinaryReport;
  return {
    format: MANIFEST_FORMAT,
    formatVersion: MANIFEST_VERSION,
    ctrdbgVersion: '0.1.0',
    binary: {
      path: join(dir, 'containerd'),
      fileName: 'containerd',
      sha256: 'a'.repeat(64),
      size: 123,
      arch: 'amd64',
      goVersion: 'go1.19.8',
      buildId: null,
    },
    containerd: { version: '1.6.20~ds1', revision: 'r', line: null, source: 'ldflags' },
    source: {
      kind: 'gopath',
      root: '/t',
      sourceRoots: ['/t/src'],
      package: 'ctrdbg.lab/containerd',
      git: null,
    },
    command: { display: 'go build', file: 'go', args: ['build'], cwd: '/t', env: {} },
    builtAt: '2025-01-01T00:00:00.000Z',
    durationMs: 5,
    verification,
  };
}

async function inputFailure(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isCtrdbgError(error) || error.kind !== 'input')
    throw new Error(`expected an input error, got ${String(error)}`);
  return error.message;
}

describe('build manifest', () => {
  it('is written beside the binary and reads back from either path', async () => {
    const dir = tempDir();
    const manifest = sampleManifest(dir);
    const path = await writeManifest(manifest);
    expect(path).toBe(join(dir, 'containerd.manifest.json'));
    expect(manifestPathFor('/x/containerd')).toBe('/x/containerd.manifest.json');
    expect(await readManifest(path)).toEqual(manifest);
    expect(await readManifest(join(dir, 'containerd'))).toEqual(manifest);
    expect(JSON.parse(readFileSync(path, 'utf8')).format).toBe('ctrdbg-build-manifest');
  });

  it('rejects missing, malformed, foreign and newer files with input errors', async () => {
    const dir = tempDir();
    expect(await inputFailure(readManifest(join(dir, 'containerd')))).toMatch(/No build manifest/);
    const file = join(dir, 'm.json');
    writeFileSync(file, '{');
    expect(await inputFailure(readManifest(file))).toMatch(/not valid JSON/);
    writeFileSync(file, JSON.stringify({ hello: 1 }));
    expect(await inputFailure(readManifest(file))).toMatch(/not a ctrdbg build manifest/);
    writeFileSync(file, JSON.stringify({ ...sampleManifest(dir), formatVersion: 99 }));
    expect(await inputFailure(readManifest(file))).toMatch(/version 99 build manifest/);
    writeFileSync(
      file,
      JSON.stringify({ ...sampleManifest(dir), binary: { ...sampleManifest(dir).binary, sha256: 'xyz' } }),
    );
    expect(await inputFailure(readManifest(file))).toMatch(/binary\.sha256/);
  });

  it('parses `containerd --version`', () => {
    expect(
      parseContainerdVersionLine(
        'containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3',
      ),
    ).toEqual({
      version: '1.6.20~ds1',
      revision: '1.6.20~ds1-1+deb12u3',
    });
    expect(parseContainerdVersionLine('containerd x v1.7.0')).toEqual({ version: 'v1.7.0', revision: null });
  });

  it('records the commit and dirty flag of a git checkout, and nothing for a plain directory', async () => {
    const dir = tempDir();
    expect(await gitState(dir)).toBeUndefined();
    const git = (...args: string[]) =>
      execFileSync('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args], {
        encoding: 'utf8',
      });
    git('init', '-q');
    writeFileSync(join(dir, 'Makefile'), 'all:\n');
    git('add', 'Makefile');
    git('commit', '-q', '-m', 'one');
    // Annotated, like containerd's release tags: plain `git describe` ignores lightweight ones.
    git('tag', '-a', 'v1.2.3', '-m', 'v1.2.3');
    const commit = git('rev-parse', 'HEAD').trim();
    expect(await gitState(dir)).toEqual({ commit, dirty: false, describe: 'v1.2.3' });
    writeFileSync(join(dir, 'Makefile'), 'all:\n\ttrue\n');
    expect(await gitState(dir)).toEqual({ commit, dirty: true, describe: 'v1.2.3.m' });
  });
});
