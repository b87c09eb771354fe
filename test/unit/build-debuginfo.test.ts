import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  delveSupport,
  delveSupportedGoRange,
  goMinor,
  goPackageFlags,
  inspectBinary,
  isContainerdPackage,
  isOptimized,
  parseCompileUnits,
  parseDelveVersion,
  parseGoProducer,
} from '../../src/debugbuild/debugInfo.js';
import { isCtrdbgError } from '../../src/errors.js';

/** Shaped like `readelf --debug-dump=info --dwarf-depth=1` on a Go binary with cgo. */
const READELF = `Contents of the .debug_info section:

  Compilation Unit @ offset 0:
   Length:        0x1a0 (32-bit)
   Version:       4
 <0><b>: Abbrev Number: 1 (DW_TAG_compile_unit)
    <c>   DW_AT_name        : github.com/containerd/containerd/services/tasks
    <28>   DW_AT_language    : 22	(Go)
    <3b>   DW_AT_producer    : Go cmd/compile go1.19.8; -N -l regabi
    <61>   Unknown AT value: 2905: tasks
 <1><66>: Abbrev Number: 3 (DW_TAG_subprogram)
    <67>   DW_AT_name        : github.com/containerd/containerd/services/tasks.(*local).Create
  Compilation Unit @ offset 0x1a4:
 <0><1af>: Abbrev Number: 1 (DW_TAG_compile_unit)
    <1b0>   DW_AT_name        : main
    <1e0>   DW_AT_producer    : Go cmd/compile go1.19.8; -shared regabi
  Compilation Unit @ offset 0x2a93:
 <0><2a9e>: Abbrev Number: 1 (DW_TAG_compile_unit)
    <2a9f>   DW_AT_name        : runtime
    <2ab0>   DW_AT_producer    : Go cmd/compile go1.19.8; -l regabi
  Compilation Unit @ offset 0x3000:
 <0><3001>: Abbrev Number: 1 (DW_TAG_compile_unit)
    <3002>   DW_AT_name        : runtime
    <3010>   DW_AT_producer    : Go cmd/compile go1.19.8; -N -l regabi
  Compilation Unit @ offset 0x4000:
 <0><4001>: Abbrev Number: 1 (DW_TAG_compile_unit)
    <4002>   DW_AT_name        : github.com/containerd/ttrpc
    <4010>   DW_AT_producer    : Go cmd/compile go1.19.8; -l -N regabi
  Compilation Unit @ offset 0x7ddafa:
 <0><7ddb05>: Abbrev Number: 1 (DW_TAG_compile_unit)
    <7ddb06>   DW_AT_producer    : (indirect string, offset: 0x34): GNU C17 12.2.0 -mtune=generic
    <7ddb0a>   DW_AT_name        : (indirect string, offset: 0x0): gcc_linux_amd64.c
  Compilation Unit @ offset 0x7e1342:
 <0><7e134d>: Abbrev Number: 1 (DW_TAG_compile_unit)
    <7e134e>   DW_AT_stmt_list   : 0x306ad3
`;

describe('DWARF producers', () => {
  it('pairs each compile unit name with its producer and skips units without one', () => {
    expect(parseCompileUnits(READELF)).toEqual([
      {
        name: 'github.com/containerd/containerd/services/tasks',
        producer: 'Go cmd/compile go1.19.8; -N -l regabi',
      },
      { name: 'main', producer: 'Go cmd/compile go1.19.8; -shared regabi' },
      { name: 'runtime', producer: 'Go cmd/compile go1.19.8; -l regabi' },
      { name: 'runtime', producer: 'Go cmd/compile go1.19.8; -N -l regabi' },
      { name: 'github.com/containerd/ttrpc', producer: 'Go cmd/compile go1.19.8; -l -N regabi' },
      { name: 'gcc_linux_amd64.c', producer: 'GNU C17 12.2.0 -mtune=generic' },
    ]);
  });

  it('parses Go producers and ignores C ones', () => {
    expect(parseGoProducer('Go cmd/compile go1.19.8; -N -l -shared regabi')).toEqual({
      compiler: 'go1.19.8',
      flags: ['-N', '-l', '-shared', 'regabi'],
    });
    expect(parseGoProducer('Go cmd/compile go1.22.1')).toEqual({ compiler: 'go1.22.1', flags: [] });
    expect(parseGoProducer('GNU C17 12.2.0')).toBeUndefined();
  });

  it('needs both -N and -l', () => {
    expect(isOptimized(['-N', '-l', 'regabi'])).toBe(false);
    expect(isOptimized(['-l', '-N'])).toBe(false);
    expect(isOptimized(['-l', 'regabi'])).toBe(true);
    expect(isOptimized(['-N'])).toBe(true);
    expect(isOptimized([])).toBe(true);
  });

  it('groups units per package; one optimised unit makes the package optimised', () => {
    const packages = goPackageFlags(parseCompileUnits(READELF));
    expect(packages.map((p) => [p.name, p.optimized])).toEqual([
      ['github.com/containerd/containerd/services/tasks', false],
      ['main', true],
      ['runtime', true],
      ['github.com/containerd/ttrpc', false],
    ]);
  });

  it("knows containerd's own packages", () => {
    expect(isContainerdPackage('main')).toBe(true);
    expect(isContainerdPackage('github.com/containerd/containerd/services/tasks')).toBe(true);
    expect(isContainerdPackage('github.com/containerd/ttrpc')).toBe(true);
    expect(isContainerdPackage('github.com/containerd')).toBe(false);
    expect(isContainerdPackage('runtime')).toBe(false);
    expect(isContainerdPackage('google.golang.org/grpc')).toBe(false);
  });
});

describe('Delve and Go versions', () => {
  it('reads `dlv version`', () => {
    expect(parseDelveVersion('Delve Debugger\nVersion: 1.20.2\nBuild: $Id: e0c2 $\n')).toBe('1.20.2');
    expect(parseDelveVersion('nothing here')).toBeUndefined();
  });

  it('applies the Delve 1.N → Go 1.(N-2)…1.N rule', () => {
    expect(delveSupportedGoRange('1.20.2')).toEqual({ min: 18, max: 20 });
    expect(delveSupportedGoRange('1.23.0')).toEqual({ min: 21, max: 23 });
    expect(delveSupportedGoRange('1.19.0')).toBeUndefined();
    // Before 1.20 Delve was numbered 1.1–1.9; 1.M added Go 1.(M+10) (Debian bullseye's 1.6.1: Go ≤ 1.16).
    expect(delveSupportedGoRange('1.6.1')).toEqual({ min: 14, max: 16 });
    expect(delveSupportedGoRange('1.9.1')).toEqual({ min: 17, max: 19 });
    expect(delveSupport('1.6.1', 'go1.19.8').supported).toBe(false);
    expect(delveSupportedGoRange('banana')).toBeUndefined();
  });

  it('reads Go minors', () => {
    expect(goMinor('go1.19.8')).toBe(19);
    expect(goMinor('go1.21rc2')).toBe(21);
    expect(goMinor('devel')).toBeUndefined();
  });

  it('decides support', () => {
    expect(delveSupport('1.20.2', 'go1.19.8')).toEqual({
      delveVersion: '1.20.2',
      supportedGo: '1.18–1.20',
      supported: true,
    });
    expect(delveSupport('1.20.2', 'go1.21.0').supported).toBe(false);
    expect(delveSupport('1.20.2', 'go1.17.13').supported).toBe(false);
    expect(delveSupport(undefined, 'go1.19.8').supported).toBeUndefined();
    expect(delveSupport('1.20.2', undefined).supported).toBeUndefined();
  });
});

describe('inspectBinary', () => {
  it('rejects Debian’s stock containerd as stripped', async () => {
    const report = await inspectBinary('/usr/bin/containerd', { delveVersion: '1.20.2' });
    const sha = execFileSync('sha256sum', ['/usr/bin/containerd'], { encoding: 'utf8' }).split(' ')[0];
    expect(report.sha256).toBe(sha);
    expect(report).toMatchObject({
      arch: 'amd64',
      stripped: true,
      hasDwarf: false,
      hasSymtab: false,
      debuggable: false,
    });
    expect(report.goVersion).toMatch(/^go1\.\d+/);
    expect(report.problems.join('\n')).toMatch(/stripped/);
    expect(report.hint).toMatch(/ctrdbg build/);
    expect(report.hint).toMatch(/GODEBUG=1/);
  });

  it('flags a wrong architecture', async () => {
    const report = await inspectBinary('/usr/bin/containerd', { delveVersion: null, expectedArch: 'arm64' });
    expect(report.problems).toContain('the binary is for amd64, not arm64');
    expect(report.warnings.join()).toMatch(/dlv is not installed/);
  });

  it('says a non-Go ELF is not a Go binary', async () => {
    const report = await inspectBinary('/bin/true', { delveVersion: '1.20.2' });
    expect(report.goVersion).toBeNull();
    expect(report.problems.join('\n')).toMatch(/not a Go binary/);
  });

  it('turns missing files into input errors and non-ELF files into wrong-platform errors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctrdbg-inspect-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const script = join(dir, 'script.sh');
    writeFileSync(script, '#!/bin/sh\n');
    for (const path of [join(dir, 'missing'), dir]) {
      const error = await inspectBinary(path, { delveVersion: null }).catch((e: unknown) => e);
      expect(isCtrdbgError(error) && error.kind).toBe('input');
    }
    const error = await inspectBinary(script, { delveVersion: null }).catch((e: unknown) => e);
    expect(isCtrdbgError(error) && error.kind).toBe('wrongPlatform');
    expect(String((error as Error).message)).toContain('is a script for /bin/sh, not a Linux executable');
  });

  it('reports a binary for an architecture ctrdbg does not support (386) as a platform problem', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctrdbg-inspect-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const out = join(dir, 'hello-386');
    writeFileSync(join(dir, 'main.go'), 'package main\n\nfunc main() {}\n');
    execFileSync('go', ['build', '-o', out, join(dir, 'main.go')], {
      env: {
        ...process.env,
        GOOS: 'linux',
        GOARCH: '386',
        CGO_ENABLED: '0',
        GO111MODULE: 'off',
        GOFLAGS: '',
      },
    });
    const report = await inspectBinary(out, { delveVersion: null });
    expect(report.debuggable).toBe(false);
    expect(report.platform).toBe('an ELF 32-bit executable for linux/386 (static)');
    expect(report.platformProblems).toEqual([
      'the binary is for 386; ctrdbg supports linux/amd64 and linux/arm64 nodes',
    ]);
  });
});
