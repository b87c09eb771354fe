import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { delveBuildKey, ebpfOverlay, planDelveBuild } from '../../src/debugbuild/delveBuild.js';
import {
  compareDelveVersions,
  type DelveSource,
  detectDelveSource,
  moduleVersionsToTry,
  parseDelveSourceVersion,
} from '../../src/debugbuild/delveSource.js';
import type { ExecutableFacts } from '../../src/debugbuild/platform.js';
import { judgeDelve, type LocalDelve } from '../../src/deploy/nodeDelve.js';
import { isCtrdbgError } from '../../src/errors.js';

const elf = (arch: string): ExecutableFacts => ({
  path: '/x/dlv',
  format: 'elf',
  os: 'linux',
  arch,
  kind: 'executable',
  description: `an ELF 64-bit executable for linux/${arch} (static)`,
});

const local = (over: Partial<LocalDelve>): LocalDelve => ({
  path: '/x/dlv',
  from: 'first on PATH',
  explicit: false,
  facts: elf('amd64'),
  version: '1.20.2',
  ...over,
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ctrdbg-delve-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A Delve-shaped tree: cmd/dlv/main.go, pkg/version/version.go, go.mod, the ebpf helpers. */
function delveTree(dir: string, options: { vendor?: boolean; bpfObject?: boolean } = {}): string {
  const root = join(dir, 'delve');
  for (const d of ['cmd/dlv', 'pkg/version', 'pkg/proc/internal/ebpf'])
    mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, 'cmd/dlv/main.go'), 'package main\n');
  writeFileSync(
    join(root, 'pkg/version/version.go'),
    'package version\nvar DelveVersion = Version{\n\tMajor: "1", Minor: "24", Patch: "0", Metadata: "",\n\tBuild: "$Id$",\n}\n',
  );
  writeFileSync(join(root, 'go.mod'), 'module github.com/go-delve/delve\n\ngo 1.21\n');
  writeFileSync(
    join(root, 'pkg/proc/internal/ebpf/helpers.go'),
    '//go:build linux && amd64 && go1.16\n\npackage ebpf\n',
  );
  writeFileSync(
    join(root, 'pkg/proc/internal/ebpf/helpers_disabled.go'),
    '//go:build !linux || !amd64 || !go1.16\n// +build !linux !amd64 !go1.16\n\npackage ebpf\n\nfunc disabled() {}\n',
  );
  if (options.bpfObject) {
    writeFileSync(join(root, 'pkg/proc/internal/ebpf/trace_bpfel_x86.go'), 'package ebpf\n');
    writeFileSync(join(root, 'pkg/proc/internal/ebpf/trace_bpfel_x86.o'), '');
  }
  if (options.vendor) {
    mkdirSync(join(root, 'vendor'));
    writeFileSync(join(root, 'vendor/modules.txt'), '');
  }
  return root;
}

describe('judgeDelve: does this dlv fit the node and the binary’s Go', () => {
  it('fits: a linux dlv for the node’s arch whose range covers the Go', () => {
    expect(judgeDelve(local({}), 'amd64', 'go1.19.8')).toMatchObject({
      fits: true,
      supportedGo: '1.18–1.20',
      reason: 'Delve 1.20.2 at /x/dlv (first on PATH) supports Go 1.18–1.20',
    });
  });
  it('too old for the binary’s Go', () => {
    expect(judgeDelve(local({ version: '1.6.1' }), 'amd64', 'go1.19.8')).toMatchObject({
      fits: false,
      runsOnNode: true,
      reason: 'Delve 1.6.1 at /x/dlv (first on PATH) supports Go 1.14–1.16, not go1.19.8',
    });
  });
  it('cannot run on the node: a Mach-O, or another CPU', () => {
    const mac: ExecutableFacts = {
      ...elf('arm64'),
      format: 'mach-o',
      os: 'darwin',
      description: 'a Mach-O executable for darwin/arm64 (macOS)',
    };
    expect(judgeDelve(local({ facts: mac, version: '1.24.0' }), 'arm64', 'go1.24.4').reason).toBe(
      'Delve 1.24.0 at /x/dlv (first on PATH) cannot run on the node: it is a Mach-O executable for darwin/arm64 (macOS), not a Linux executable',
    );
    expect(judgeDelve(local({}), 'arm64', 'go1.19.8')).toMatchObject({
      fits: false,
      runsOnNode: false,
      reason:
        'Delve 1.20.2 at /x/dlv (first on PATH) cannot run on the node: it is for linux/amd64, but the node is linux/arm64',
    });
  });
  it('a dlv that does not say its version does not fit', () => {
    expect(judgeDelve(local({ version: undefined }), 'amd64', 'go1.19.8').fits).toBe(false);
  });
});

describe('Delve sources', () => {
  it('reads the version from pkg/version/version.go', () => {
    expect(parseDelveSourceVersion('Major: "1", Minor: "20", Patch: "2", Metadata: "",')).toBe('1.20.2');
    expect(parseDelveSourceVersion('Major: "1", Minor: "25", Patch: "0", Metadata: "dev",')).toBe(
      '1.25.0-dev',
    );
    expect(parseDelveSourceVersion('nothing here')).toBeUndefined();
  });

  it('orders module versions: supporting the Go, cached first, newest first', () => {
    expect(compareDelveVersions('v1.9.1', 'v1.20.0')).toBeLessThan(0);
    expect(
      moduleVersionsToTry(
        [
          { version: 'v1.24.0', cached: false },
          { version: 'v1.23.1', cached: true },
          { version: 'v1.24.1', cached: false },
          { version: 'v1.20.2', cached: true },
          { version: 'v1.25.0-rc1', cached: false },
        ],
        'go1.23.4',
      ),
    ).toEqual(['v1.23.1', 'v1.24.1', 'v1.24.0']);
  });

  it('tells a vendored checkout from one that needs the module cache, and refuses what is no Delve tree', async () => {
    const dir = tempDir();
    const vendored = delveTree(join(dir, 'a'), { vendor: true });
    expect(await detectDelveSource(vendored, { systemGocode: join(dir, 'none') })).toMatchObject({
      kind: 'vendor',
      version: '1.24.0',
      goVersion: '1.21',
    });
    const plain = delveTree(join(dir, 'b'));
    expect((await detectDelveSource(plain, { systemGocode: join(dir, 'none') })).kind).toBe('module');
    const notDelve = join(dir, 'c');
    mkdirSync(notDelve);
    const error = await detectDelveSource(notDelve).catch((e: unknown) => e);
    expect(isCtrdbgError(error) && error.kind).toBe('input');
    expect(String((error as Error).message)).toContain('is not a Delve source tree');
  });

  it('plans a GOPATH build by import path, a module build in the tree, always static for linux/<arch>', () => {
    const gopath: DelveSource = {
      kind: 'gopath',
      delveDir: '/s/src/github.com/go-delve/delve',
      gopath: ['/s', '/s/deps/usr/share/gocode'],
      version: '1.20.2',
      goVersion: '1.16',
      origin: 'Debian',
    };
    const plan = planDelveBuild(gopath, {
      arch: 'arm64',
      go: '/usr/bin/go',
      goVersion: 'go1.19.8',
      output: '/o/dlv',
      neutralDir: '/o',
    });
    expect(plan).toMatchObject({
      file: '/usr/bin/go',
      cwd: '/o',
      env: {
        GOOS: 'linux',
        GOARCH: 'arm64',
        CGO_ENABLED: '0',
        GO111MODULE: 'off',
        GOPATH: '/s:/s/deps/usr/share/gocode',
        GOFLAGS: '',
      },
    });
    expect(plan.args).toEqual([
      'build',
      '-v',
      '-trimpath',
      '-o',
      '/o/dlv',
      'github.com/go-delve/delve/cmd/dlv',
    ]);
    expect(plan.env.GOTOOLCHAIN).toBeUndefined();
    const vendored = planDelveBuild(
      { ...gopath, kind: 'vendor', gopath: undefined },
      {
        arch: 'amd64',
        go: 'go',
        goVersion: 'go1.24.4',
        output: '/o/dlv',
        neutralDir: '/o',
        overlay: '/o/ov.json',
      },
    );
    expect(vendored).toMatchObject({
      cwd: '/s/src/github.com/go-delve/delve',
      env: { GO111MODULE: 'on', GOFLAGS: '-mod=vendor', GOTOOLCHAIN: 'local', CGO_ENABLED: '0' },
    });
    expect(vendored.args).toEqual([
      'build',
      '-v',
      '-trimpath',
      '-overlay',
      '/o/ov.json',
      '-o',
      '/o/dlv',
      './cmd/dlv',
    ]);
    expect(delveBuildKey(gopath, 'arm64', 'go1.19.8')).toMatch(/^1\.20\.2-linux-arm64-[0-9a-f]{10}$/);
    expect(delveBuildKey(gopath, 'arm64', 'go1.19.8')).not.toBe(delveBuildKey(gopath, 'amd64', 'go1.19.8'));
  });

  it('leaves eBPF out only on amd64, and only when the source lacks the generated BPF object', async () => {
    const dir = tempDir();
    const without = delveTree(join(dir, 'a'));
    const source: DelveSource = {
      kind: 'module',
      delveDir: without,
      version: '1.24.0',
      goVersion: '1.21',
      origin: 'x',
    };
    expect(await ebpfOverlay(source, 'arm64')).toBeUndefined();
    const overlay = await ebpfOverlay(source, 'amd64');
    expect(overlay?.helpers).toBe(join(without, 'pkg/proc/internal/ebpf/helpers.go'));
    expect(overlay?.disabledGo).not.toMatch(/go:build|\+build/);
    expect(overlay?.disabledGo).toContain('func disabled() {}');
    // The tree itself is never written to.
    expect(readFileSync(join(without, 'pkg/proc/internal/ebpf/helpers_disabled.go'), 'utf8')).toMatch(
      /^\/\/go:build/,
    );
    const withObject = delveTree(join(dir, 'b'), { bpfObject: true });
    expect(await ebpfOverlay({ ...source, delveDir: withObject }, 'amd64')).toBeUndefined();
  });
});
