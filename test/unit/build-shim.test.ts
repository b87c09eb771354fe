/**
 * Building the runc shim (`--with-shim`) as a plan: containerd's Makefile never passes DEBUG_GO_GCFLAGS to the
 * shim's rule, so the plan hands -N -l in through GO_BUILD_FLAGS; a lab tree builds its own shim main. And the
 * shim's `-v` output, which is all a shim says about its version.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  detectSourceTree,
  LAB_SHIM_PACKAGE,
  type LabTreeSource,
  planBuild,
  SHIM_BINARY,
  SHIM_MAKE_BUILD_FLAGS,
  type SourceTree,
  writeLabTree,
} from '../../src/debugbuild/goBuild.js';
import { parseShimVersion } from '../../src/debugbuild/manifest.js';
import { isCtrdbgError } from '../../src/errors.js';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ctrdbg-shim-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const marker = (root: string, shimPackage?: string) =>
  ({
    format: 1,
    kind: 'gopath',
    package: 'ctrdbg.lab/containerd',
    gopath: [root, '/lane/usr/share/gocode'],
    ldflags: {
      'github.com/containerd/containerd/version.Version': '1.7.24~ds1',
      'github.com/containerd/containerd/version.Revision': '1.7.24~ds1-6+deb13u1',
    },
    version: '1.7.24~ds1',
    sourceRoots: [join(root, 'src'), '/lane/usr/share/gocode/src'],
    toolchain: 'trixie',
    ...(shimPackage ? { shimPackage } : {}),
  }) as const;

describe('planBuild for the shim', () => {
  const checkout: SourceTree = {
    kind: 'checkout',
    root: '/src/containerd',
    makefile: '/src/containerd/Makefile',
  };

  it('a checkout: make GODEBUG=1 (no -s -w) with -N -l through GO_BUILD_FLAGS, the one variable the shim rule reads', () => {
    const plan = planBuild(checkout, {
      arch: 'amd64',
      outDir: '/out',
      inheritedEnv: {},
      binary: SHIM_BINARY,
    });
    expect(plan.binary).toBe(SHIM_BINARY);
    expect(plan.file).toBe('make');
    expect(plan.args).toEqual([
      'GODEBUG=1',
      'GO_GCFLAGS=',
      'GO_BUILD_FLAGS=-gcflags=all="-N -l"',
      'bin/containerd-shim-runc-v2',
    ]);
    expect(SHIM_MAKE_BUILD_FLAGS).toBe(plan.args[2]);
    expect(plan.producedBinary).toBe('/src/containerd/bin/containerd-shim-runc-v2');
    expect(plan.outputBinary).toBe('/out/containerd-shim-runc-v2');
    // The shell line a user can paste keeps the inner quotes inside one argument.
    expect(plan.display).toContain(`'GO_BUILD_FLAGS=-gcflags=all="-N -l"'`);
  });

  it('a lab tree: go build of its shim main, static, with the same -N -l and version stamp as containerd', () => {
    const tree: SourceTree = {
      kind: 'gopath',
      root: '/labs/cri/tree',
      marker: marker('/labs/cri/tree', LAB_SHIM_PACKAGE) as never,
    };
    const plan = planBuild(tree, {
      arch: 'amd64',
      outDir: '/out',
      inheritedEnv: {},
      binary: SHIM_BINARY,
      goVersion: 'go1.24.4',
    });
    const containerd = planBuild(tree, {
      arch: 'amd64',
      outDir: '/out',
      inheritedEnv: {},
      goVersion: 'go1.24.4',
    });
    expect(plan.args).toEqual([
      'build',
      '-v',
      '-gcflags=all=-N -l',
      '-ldflags',
      containerd.args[4],
      '-o',
      '/out/containerd-shim-runc-v2',
      LAB_SHIM_PACKAGE,
    ]);
    expect(plan.env).toMatchObject({ GO111MODULE: 'off', CGO_ENABLED: '0', GOTOOLCHAIN: 'local' });
    expect(containerd.env.CGO_ENABLED).toBeUndefined();
    // A user's CGO_ENABLED wins, as for containerd.
    expect(
      planBuild(tree, {
        arch: 'amd64',
        outDir: '/o',
        inheritedEnv: { CGO_ENABLED: '1' },
        binary: SHIM_BINARY,
      }).env.CGO_ENABLED,
    ).toBeUndefined();
  });

  it('a lab tree written before --with-shim: an input error that says to run lab up once', () => {
    const tree: SourceTree = {
      kind: 'gopath',
      root: '/labs/old/tree',
      marker: marker('/labs/old/tree') as never,
    };
    let error: unknown;
    try {
      planBuild(tree, { arch: 'amd64', outDir: '/o', inheritedEnv: {}, binary: SHIM_BINARY });
    } catch (e) {
      error = e;
    }
    expect(isCtrdbgError(error) && error.kind).toBe('input');
    expect((error as Error).message).toContain('has no shim main package');
    expect(isCtrdbgError(error) && error.hint).toContain('ctrdbg lab up');
  });
});

describe('the lab tree', () => {
  it('gets the shim main and names it in its marker when its source has one; not otherwise', async () => {
    const dir = tempDir();
    const main = join(dir, 'main.go');
    const shimMain = join(dir, 'shim.go');
    writeFileSync(main, 'package main\n');
    writeFileSync(shimMain, 'package main // shim\n');
    const source: LabTreeSource = {
      mainGo: main,
      shimMainGo: shimMain,
      gocode: '/lane/usr/share/gocode',
      version: '1.7.24~ds1',
      revision: '1.7.24~ds1-6+deb13u1',
      toolchain: 'trixie',
    };
    const root = await writeLabTree(join(dir, 'cri'), source);
    expect(readFileSync(join(root, 'src', LAB_SHIM_PACKAGE, 'main.go'), 'utf8')).toBe(
      'package main // shim\n',
    );
    const tree = await detectSourceTree(root);
    expect(tree.kind === 'gopath' && tree.marker.shimPackage).toBe(LAB_SHIM_PACKAGE);
    const { shimMainGo: _, ...withoutShim } = source;
    const plain = await detectSourceTree(await writeLabTree(join(dir, 'stock'), withoutShim));
    expect(plain.kind === 'gopath' && plain.marker.shimPackage).toBeUndefined();
  });

  it("the CRI lab's shim main is containerd 1.7's own: the runc v2 manager with the task and pause plugins", () => {
    const text = readFileSync(
      join(__dirname, '../../scripts/lab/containerd-shim-runc-v2-main/main.go'),
      'utf8',
    );
    expect(text).toContain(
      'shim.RunManager(context.Background(), manager.NewShimManager("io.containerd.runc.v2"))',
    );
    expect(text).toContain('_ "github.com/containerd/containerd/runtime/v2/runc/task/plugin"');
  });
});

describe('parseShimVersion', () => {
  it("reads trixie's shim -v", () => {
    const out =
      'containerd-shim-runc-v2:\n  Version:  1.7.24~ds1\n  Revision: 1.7.24~ds1-6+deb13u1\n  Go version: go1.24.4\n\n';
    expect(parseShimVersion(out)).toEqual({
      version: '1.7.24~ds1',
      revision: '1.7.24~ds1-6+deb13u1',
      line: 'containerd-shim-runc-v2 1.7.24~ds1 1.7.24~ds1-6+deb13u1',
      source: 'binary',
    });
  });

  it('is undefined for anything else', () => {
    expect(parseShimVersion('flag provided but not defined: -v\n')).toBeUndefined();
    expect(parseShimVersion('')).toBeUndefined();
  });
});
