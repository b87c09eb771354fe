import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { buildCommand } from '../../src/commands/build.js';
import {
  checkTools,
  createBuildProgress,
  debianUpstreamVersion,
  detectSourceTree,
  extractCompilerErrors,
  findOnPath,
  LAB_TREE_MARKER,
  localArch,
  normalizeArch,
  planBuild,
  type SourceTree,
  shellQuote,
} from '../../src/debugbuild/goBuild.js';
import { type CtrdbgError, isCtrdbgError } from '../../src/errors.js';
import type { Logger } from '../../src/util/output.js';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ctrdbg-gobuild-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function failure(promise: Promise<unknown>): Promise<CtrdbgError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isCtrdbgError(error)) throw new Error(`expected a CtrdbgError, got ${String(error)}`);
  return error;
}

const MAKEFILE = 'GO ?= go\nifndef GODEBUG\n\tX := -s -w\nelse\n\tX :=\nendif\nbin/containerd:\n\techo hi\n';

function marker(root: string) {
  return {
    format: 1,
    kind: 'gopath',
    package: 'ctrdbg.lab/containerd',
    gopath: [root, '/usr/share/gocode'],
    ldflags: {
      'github.com/containerd/containerd/version.Version': '1.6.20~ds1',
      'github.com/containerd/containerd/version.Revision': '1.6.20~ds1-1+deb12u3',
    },
    version: '1.6.20~ds1',
    sourceRoots: [join(root, 'src'), '/usr/share/gocode/src'],
  };
}

describe('architectures', () => {
  it('accepts amd64/arm64 and the uname spellings', () => {
    expect(normalizeArch('amd64')).toBe('amd64');
    expect(normalizeArch('x86_64')).toBe('amd64');
    expect(normalizeArch('ARM64')).toBe('arm64');
    expect(normalizeArch('aarch64')).toBe('arm64');
    expect(normalizeArch(undefined)).toBe(localArch());
  });

  it('rejects an unknown --arch as a usage error that lists the choices', () => {
    let caught: unknown;
    try {
      normalizeArch('sparc');
    } catch (error) {
      caught = error;
    }
    expect(isCtrdbgError(caught) && caught.kind).toBe('usage');
    expect((caught as CtrdbgError).message).toContain('sparc');
    expect((caught as CtrdbgError).hint).toMatch(/amd64, arm64/);
  });
});

describe('detectSourceTree', () => {
  it('needs --src and says how to pass it', async () => {
    const error = await failure(detectSourceTree(undefined));
    expect(error.kind).toBe('usage');
    expect(error.hint).toMatch(/--src/);
  });

  it('rejects a missing directory and a file', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'file'), '');
    expect((await failure(detectSourceTree(join(dir, 'nope')))).kind).toBe('input');
    expect((await failure(detectSourceTree(join(dir, 'file')))).kind).toBe('input');
  });

  it('explains why a directory is not a containerd tree', async () => {
    const dir = tempDir();
    expect((await failure(detectSourceTree(dir))).message).toMatch(
      /neither a Makefile nor a ctrdbg-tree.json/,
    );
    writeFileSync(join(dir, 'Makefile'), 'all:\n\techo\n');
    expect((await failure(detectSourceTree(dir))).message).toMatch(/no `ifndef GODEBUG` block/);
    writeFileSync(join(dir, 'Makefile'), MAKEFILE);
    const noCmd = await failure(detectSourceTree(dir));
    expect(noCmd.kind).toBe('input');
    expect(noCmd.message).toMatch(/no cmd\/containerd/);
  });

  it('recognises a checkout', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'Makefile'), MAKEFILE);
    mkdirSync(join(dir, 'cmd', 'containerd'), { recursive: true });
    expect(await detectSourceTree(dir)).toEqual({
      kind: 'checkout',
      root: dir,
      makefile: join(dir, 'Makefile'),
    });
  });

  it('recognises a lab tree and validates its marker', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, LAB_TREE_MARKER), '{not json');
    expect((await failure(detectSourceTree(dir))).message).toMatch(/not valid JSON/);
    writeFileSync(join(dir, LAB_TREE_MARKER), JSON.stringify({ ...marker(dir), format: 2 }));
    expect((await failure(detectSourceTree(dir))).message).toMatch(/not a valid lab tree marker: format/);
    writeFileSync(join(dir, LAB_TREE_MARKER), JSON.stringify(marker(dir)));
    expect((await failure(detectSourceTree(dir))).message).toMatch(/no main package/);
    mkdirSync(join(dir, 'src', 'ctrdbg.lab', 'containerd'), { recursive: true });
    writeFileSync(join(dir, 'src', 'ctrdbg.lab', 'containerd', 'main.go'), 'package main\n');
    const tree = await detectSourceTree(dir);
    expect(tree.kind).toBe('gopath');
    expect(tree.kind === 'gopath' && tree.marker.package).toBe('ctrdbg.lab/containerd');
  });
});

describe('planBuild', () => {
  const checkout: SourceTree = {
    kind: 'checkout',
    root: '/src/containerd',
    makefile: '/src/containerd/Makefile',
  };
  const lab: SourceTree = { kind: 'gopath', root: '/labs/t', marker: marker('/labs/t') as never };

  it('runs make with GODEBUG=1 and an empty GO_GCFLAGS, then copies bin/containerd', () => {
    const plan = planBuild(checkout, { arch: 'amd64', outDir: '/out', inheritedEnv: {} });
    expect(plan.file).toBe('make');
    expect(plan.args).toEqual(['GODEBUG=1', 'GO_GCFLAGS=', 'bin/containerd']);
    expect(plan.cwd).toBe('/src/containerd');
    expect(plan.env).toMatchObject({ GOOS: 'linux', GOARCH: 'amd64' });
    expect(plan.producedBinary).toBe('/src/containerd/bin/containerd');
    expect(plan.outputBinary).toBe('/out/containerd');
    expect(plan.display).toBe(
      'cd /src/containerd && GOOS=linux GOARCH=amd64 make GODEBUG=1 GO_GCFLAGS= bin/containerd',
    );
  });

  it('turns cgo off for a cross build unless the user chose', () => {
    const other = localArch() === 'amd64' ? 'arm64' : 'amd64';
    expect(planBuild(checkout, { arch: other, outDir: '/out', inheritedEnv: {} }).env.CGO_ENABLED).toBe('0');
    expect(
      planBuild(checkout, { arch: other, outDir: '/out', inheritedEnv: { CGO_ENABLED: '1' } }).env
        .CGO_ENABLED,
    ).toBeUndefined();
    expect(
      planBuild(checkout, { arch: localArch() as 'amd64', outDir: '/out', inheritedEnv: {} }).env.CGO_ENABLED,
    ).toBeUndefined();
  });

  it('runs go build in GOPATH mode with -N -l and the marker’s -X flags', () => {
    const plan = planBuild(lab, { arch: 'arm64', outDir: '/out/arm64', inheritedEnv: {} });
    expect(plan.file).toBe('go');
    expect(plan.env).toMatchObject({
      GO111MODULE: 'off',
      GOPATH: '/labs/t:/usr/share/gocode',
      GOFLAGS: '',
      GOARCH: 'arm64',
    });
    expect(plan.args).toEqual([
      'build',
      '-v',
      '-gcflags=all=-N -l',
      '-ldflags',
      '-X github.com/containerd/containerd/version.Version=1.6.20~ds1 -X github.com/containerd/containerd/version.Revision=1.6.20~ds1-1+deb12u3',
      '-o',
      '/out/arm64/containerd',
      'ctrdbg.lab/containerd',
    ]);
    expect(plan.producedBinary).toBe(plan.outputBinary);
    expect(plan.display).toContain("'-gcflags=all=-N -l'");
    expect(plan.display).toContain("GOFLAGS=''");
  });

  it('runs the chosen go: directly for a lab tree, first on PATH for make; Go 1.21+ never downloads a Go', () => {
    const gopath = planBuild(lab, {
      arch: 'amd64',
      outDir: '/o',
      inheritedEnv: {},
      go: '/lane/usr/lib/go-1.24/bin/go',
      goVersion: 'go1.24.4',
    });
    expect(gopath.file).toBe('/lane/usr/lib/go-1.24/bin/go');
    expect(gopath.env.GOTOOLCHAIN).toBe('local');
    expect(gopath.pathPrefix).toBeUndefined();
    const make = planBuild(checkout, {
      arch: 'amd64',
      outDir: '/o',
      inheritedEnv: {},
      go: '/opt/go/bin/go',
      goVersion: 'go1.24.4',
    });
    expect(make.file).toBe('make');
    expect(make.pathPrefix).toBe('/opt/go/bin');
    expect(make.display).toBe(
      'cd /src/containerd && PATH=/opt/go/bin:"$PATH" GOOS=linux GOARCH=amd64 GOTOOLCHAIN=local make GODEBUG=1 GO_GCFLAGS= bin/containerd',
    );
    // Go 1.19 has no GOTOOLCHAIN; a user's own GOTOOLCHAIN is theirs.
    expect(
      planBuild(lab, { arch: 'amd64', outDir: '/o', inheritedEnv: {}, goVersion: 'go1.19.8' }).env
        .GOTOOLCHAIN,
    ).toBeUndefined();
    expect(
      planBuild(lab, {
        arch: 'amd64',
        outDir: '/o',
        inheritedEnv: { GOTOOLCHAIN: 'auto' },
        goVersion: 'go1.24.4',
      }).env.GOTOOLCHAIN,
    ).toBeUndefined();
  });

  it('quotes -X values that contain spaces', () => {
    const tree = {
      ...lab,
      marker: { ...(lab.kind === 'gopath' ? lab.marker : ({} as never)), ldflags: { 'a.B': 'x y' } },
    };
    const plan = planBuild(tree as SourceTree, { arch: 'amd64', outDir: '/o', inheritedEnv: {} });
    expect(plan.args[plan.args.indexOf('-ldflags') + 1]).toBe("-X 'a.B=x y'");
  });

  it('shell-quotes words', () => {
    expect(shellQuote('plain/path-1.2')).toBe('plain/path-1.2');
    expect(shellQuote('')).toBe("''");
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
  });
});

describe('tools and failures', () => {
  it('finds executables on PATH only', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'go'), '#!/bin/sh\n', { mode: 0o755 });
    writeFileSync(join(dir, 'make'), 'not executable', { mode: 0o644 });
    expect(await findOnPath('go', dir)).toBe(join(dir, 'go'));
    expect(await findOnPath('make', dir)).toBeUndefined();
    expect(await findOnPath('go', '')).toBeUndefined();
  });

  it('reports a missing go or make as an environment error with an install hint', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'go'), '#!/bin/sh\n', { mode: 0o755 });
    const makePlan = planBuild(
      { kind: 'checkout', root: '/x', makefile: '/x/Makefile' },
      { arch: 'amd64', outDir: '/o' },
    );
    const noMake = await failure(checkTools(makePlan, dir));
    expect(noMake.kind).toBe('environment');
    expect(noMake.hint).toMatch(/apt-get install make/);
    const noGo = await failure(checkTools(makePlan, '/nonexistent'));
    expect(noGo.message).toMatch(/`make`|`go`/);
    const goPlan = planBuild(
      { kind: 'gopath', root: '/l', marker: marker('/l') as never },
      { arch: 'amd64', outDir: '/o' },
    );
    const missingGo = await failure(checkTools(goPlan, '/nonexistent'));
    expect(missingGo.message).toMatch(/`go` is not on PATH/);
    expect(missingGo.hint).toMatch(/golang-go/);
  });

  it('keeps the compiler’s own error lines and drops package progress', () => {
    const output = [
      'github.com/containerd/containerd/log',
      'github.com/containerd/containerd/services/tasks',
      '# ctrdbg.lab/containerd',
      'src/ctrdbg.lab/containerd/main.go:48:17: undefined: undefinedThing',
      'src/ctrdbg.lab/containerd/main.go:50:2: "os" imported and not used',
    ];
    expect(extractCompilerErrors(output)).toEqual(output.slice(2));
    expect(extractCompilerErrors(['make: *** [Makefile:3: bin/containerd] Error 1'])).toEqual([
      'make: *** [Makefile:3: bin/containerd] Error 1',
    ]);
    // Nothing recognisable: the last lines, so the message is never empty.
    expect(extractCompilerErrors(['a', '', 'b'])).toEqual(['a', 'b']);
  });

  it('takes the upstream part of a Debian version', () => {
    expect(debianUpstreamVersion('1.6.20~ds1-1+deb12u3')).toBe('1.6.20~ds1');
    expect(debianUpstreamVersion('1:2.0-3')).toBe('2.0');
    expect(debianUpstreamVersion('1.7.0')).toBe('1.7.0');
  });

  it('rejects --verify combined with build options', async () => {
    const error = await failure(buildCommand({ verify: '/usr/bin/containerd', src: '/x' }));
    expect(error.kind).toBe('usage');
  });

  it('fails fast on a bad --src before any progress display starts', async () => {
    const error = await failure(buildCommand({ json: true }));
    expect(error.kind).toBe('usage');
  });
});

describe('progress without a TTY', () => {
  it('prints periodic lines with the elapsed time and last output line', () => {
    vi.useFakeTimers();
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const lines: string[] = [];
    const logger: Logger = { info: (m) => lines.push(m), step: () => {}, warn: () => {}, debug: () => {} };
    const progress = createBuildProgress(logger, { tty: false, intervalMs: 1000 });
    progress.line('github.com/containerd/containerd/services/tasks');
    vi.advanceTimersByTime(2100);
    progress.stop(true);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(
      /building containerd · \ds · github.com\/containerd\/containerd\/services\/tasks/,
    );
    expect(lines[2]).toMatch(/building containerd done in 2s/);
    vi.advanceTimersByTime(5000);
    expect(lines).toHaveLength(3);
  });
});
