/**
 * `ctrdbg build` against the real Go toolchain and make: a lab tree (GOPATH mode) for the local arch and
 * cross-compiled for arm64, a containerd-style Makefile fixture, a compile failure, and `--verify` on
 * Debian's stripped containerd. The built amd64 binary is started with a temp config and must answer `ctr`.
 * Go's build cache makes the builds after the first one take seconds.
 */
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildResult } from '../../src/commands/build.js';
import { inspectBinary } from '../../src/debugbuild/debugInfo.js';
import { writeLabTree } from '../../src/debugbuild/goBuild.js';
import { readManifest } from '../../src/debugbuild/manifest.js';
import { ctrdbg, ctrdbgJson, repoRoot } from '../helpers/cli.js';

const BUILD_TIMEOUT = 600_000;

let base: string;
let labTree: string;
let env: Record<string, string>;

beforeAll(async () => {
  // The CLI tests run dist/main.js: compile the current sources first. Type errors elsewhere in the tree
  // still emit JavaScript, so only a missing compiler is fatal here.
  await execa('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: repoRoot, reject: false, timeout: 180_000 });
  base = mkdtempSync(join(tmpdir(), 'ctrdbg-build-it-'));
  labTree = await writeLabTree(join(base, 'tree'));
  env = { CTRDBG_CACHE_DIR: join(base, 'cache'), CTRDBG_CONFIG_DIR: join(base, 'config') };
}, 240_000);

afterAll(() => {
  if (base) rmSync(base, { recursive: true, force: true });
});

async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs `binary` as a containerd with everything under `dir`, waits until `ctr version` answers, then `use`s it. */
async function withRunningContainerd<T>(
  binary: string,
  dir: string,
  use: (socket: string) => Promise<T>,
): Promise<T> {
  const socket = join(dir, 'c.sock');
  const config = join(dir, 'config.toml');
  writeFileSync(
    config,
    [
      'version = 2',
      `root = "${join(dir, 'root')}"`,
      `state = "${join(dir, 'state')}"`,
      '[grpc]',
      `  address = "${socket}"`,
      '[ttrpc]',
      `  address = "${socket}.ttrpc"`,
      // The opt plugin would otherwise create /opt/containerd on this machine.
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = "${join(dir, 'opt')}"`,
      '',
    ].join('\n'),
  );
  const log = join(dir, 'containerd.log');
  const child = spawn(binary, ['--config', config], {
    stdio: ['ignore', openSync(log, 'a'), openSync(log, 'a')],
  });
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (exited) throw new Error(`containerd exited early:\n${readFileSync(log, 'utf8')}`);
      const probe = await execa('ctr', ['-a', socket, 'version'], { reject: false, timeout: 5_000 });
      if (probe.exitCode === 0) break;
      if (Date.now() > deadline)
        throw new Error(`containerd did not answer on ${socket} within 30 s:\n${readFileSync(log, 'utf8')}`);
      await sleep(200);
    }
    return await use(socket);
  } finally {
    if (!exited) {
      child.kill('SIGTERM');
      const deadline = Date.now() + 15_000;
      while (!exited && Date.now() < deadline) await sleep(100);
      if (!exited) child.kill('SIGKILL');
    }
  }
}

describe('ctrdbg build: lab tree', () => {
  it(
    'builds a debuggable containerd, logs the exact command, writes the manifest, and the binary serves ctr',
    async () => {
      const out = join(base, 'out-amd64');
      const result = await ctrdbg(['build', '--src', labTree, '--out', out], { env, timeout: BUILD_TIMEOUT });
      expect(result.exitCode, result.stderr).toBe(0);
      // The exact command line comes first, on stderr.
      expect(result.stderr).toContain(
        `GO111MODULE=off GOPATH=${labTree}:/usr/share/gocode GOFLAGS='' /usr/bin/go build -v '-gcflags=all=-N -l' -ldflags`,
      );
      expect(result.stdout).toMatch(/: debuggable/);

      const binary = join(out, 'containerd');
      const manifest = await readManifest(join(out, 'containerd.manifest.json'));
      const sha = execFileSync('sha256sum', [binary], { encoding: 'utf8' }).split(' ')[0];
      expect(manifest.binary).toMatchObject({
        path: binary,
        sha256: sha,
        arch: 'amd64',
        goVersion: expect.stringMatching(/^go1\./),
      });
      expect(manifest.source).toMatchObject({
        kind: 'gopath',
        root: labTree,
        sourceRoots: [join(labTree, 'src'), '/usr/share/gocode/src'],
        package: 'ctrdbg.lab/containerd',
        git: null,
      });
      // `dpkg-query -W PKG` prints "PKG<TAB>VERSION": an oracle independent of writeLabTree.
      const debianVersion = execFileSync('dpkg-query', ['-W', 'golang-github-containerd-containerd-dev'], {
        encoding: 'utf8',
      })
        .trim()
        .split('\t')[1]!;
      expect(manifest.containerd).toMatchObject({
        source: 'binary',
        version: debianVersion.split('-')[0],
        revision: debianVersion,
      });
      // The lab tree names its lane (bookworm's Go 1.19), so the go is the lane's, whatever PATH says.
      expect(manifest.command.file).toBe('/usr/bin/go');
      expect(manifest.command.args).toContain('-gcflags=all=-N -l');

      // Verification, independently of what the build command concluded.
      const report = await inspectBinary(binary);
      expect(report.debuggable).toBe(true);
      expect(report.optimizedContainerdPackages).toEqual([]);
      expect(report.stripped).toBe(false);
      expect(report.goPackages).toBeGreaterThan(100);
      expect(manifest.verification.sha256).toBe(report.sha256);

      await withRunningContainerd(binary, mkdtempSync(join(base, 'run-')), async (socket) => {
        const version = await execa('ctr', ['-a', socket, 'version'], { timeout: 15_000 });
        expect(version.stdout).toMatch(
          new RegExp(`Server:[\\s\\S]*Version:\\s+${debianVersion.split('-')[0]!.replace(/[.+~]/g, '\\$&')}`),
        );
        const namespaces = await execa('ctr', ['-a', socket, 'namespaces', 'create', 'ctrdbg-build-test'], {
          timeout: 15_000,
        });
        expect(namespaces.exitCode).toBe(0);
      });
    },
    BUILD_TIMEOUT,
  );

  it(
    '--arch arm64 cross-compiles (cgo off) and the result verifies as arm64',
    async () => {
      const out = join(base, 'out-arm64');
      const { exitCode, data, stderr } = await ctrdbgJson<BuildResult>(
        ['build', '--src', labTree, '--arch', 'arm64', '--out', out],
        {
          env,
          timeout: BUILD_TIMEOUT,
        },
      );
      expect(exitCode, stderr).toBe(0);
      expect(data.manifest.command.env).toMatchObject({ GOARCH: 'arm64', CGO_ENABLED: '0' });
      expect(data.manifest.binary.arch).toBe('arm64');
      // The binary cannot run here, so its version comes from the tree's -ldflags.
      expect(data.manifest.containerd.source).toBe('ldflags');
      expect(data.manifest.verification).toMatchObject({
        arch: 'arm64',
        debuggable: true,
        optimizedContainerdPackages: [],
      });
      expect(execFileSync('file', ['-b', join(out, 'containerd')], { encoding: 'utf8' })).toMatch(
        /ARM aarch64/,
      );
      const asAmd64 = await ctrdbg(['build', '--verify', join(out, 'containerd'), '--arch', 'amd64'], {
        env,
      });
      expect(asAmd64.exitCode).toBe(15);
      expect(asAmd64.stdout).toContain('the binary is for arm64, not amd64');
    },
    BUILD_TIMEOUT,
  );

  it(
    'puts the compiler’s own error lines into a build error',
    async () => {
      const broken = await writeLabTree(join(base, 'broken'));
      appendFileSync(
        join(broken, 'src/ctrdbg.lab/containerd/main.go'),
        '\nfunc broken() { undefinedThing() }\n',
      );
      const result = await ctrdbg(['build', '--src', broken, '--out', join(base, 'out-broken')], {
        env,
        timeout: BUILD_TIMEOUT,
      });
      expect(result.exitCode).toBe(5);
      expect(result.stderr).toMatch(/main\.go:\d+:\d+: undefined: undefinedThing/);
      const json = await ctrdbgJson<{ error: { kind: string; details: { errors: string[] } } }>(
        ['build', '--src', broken, '--out', join(base, 'out-broken')],
        { env, timeout: BUILD_TIMEOUT },
      );
      expect(json.exitCode).toBe(5);
      expect(json.data.error.kind).toBe('build');
      expect(json.data.error.details.errors.join('\n')).toContain('undefined: undefinedThing');
    },
    BUILD_TIMEOUT,
  );
});

describe('ctrdbg build: containerd checkout (make)', () => {
  it(
    'passes GODEBUG=1 and an empty GO_GCFLAGS to make, so even the main package keeps -N -l',
    async () => {
      const tree = join(base, 'make-tree');
      cpSync(join(repoRoot, 'test/fixtures/make-tree'), tree, { recursive: true });
      const out = join(base, 'out-make');
      const { exitCode, data, stderr } = await ctrdbgJson<BuildResult>(
        ['build', '--src', tree, '--out', out],
        {
          env,
          timeout: BUILD_TIMEOUT,
        },
      );
      expect(exitCode, stderr).toBe(0);
      const vars = readFileSync(join(tree, 'bin/make-vars.txt'), 'utf8');
      expect(vars).toContain('GODEBUG=1\nGODEBUG_ORIGIN=command line\n');
      expect(vars).toContain('GO_GCFLAGS=[]\nGO_GCFLAGS_ORIGIN=command line\n');
      expect(vars).toContain('GOARCH=amd64\n');
      expect(data.manifest.command).toMatchObject({
        file: 'make',
        args: ['GODEBUG=1', 'GO_GCFLAGS=', 'bin/containerd'],
        cwd: tree,
      });
      expect(data.manifest.source).toMatchObject({ kind: 'checkout', root: tree, sourceRoots: [tree] });
      expect(data.manifest.containerd).toMatchObject({
        source: 'binary',
        version: 'v0.0.0-fixture',
        revision: 'fixture',
      });
      expect(data.manifest.verification).toMatchObject({ debuggable: true, optimizedContainerdPackages: [] });
      expect(readFileSync(join(out, 'containerd')).equals(readFileSync(join(tree, 'bin/containerd')))).toBe(
        true,
      );
    },
    BUILD_TIMEOUT,
  );

  it(
    'detects the optimised main package that plain `make GODEBUG=1` produces (the control for the test above)',
    async () => {
      const tree = join(base, 'make-tree-plain');
      cpSync(join(repoRoot, 'test/fixtures/make-tree'), tree, { recursive: true });
      await execa('make', ['GODEBUG=1', 'bin/containerd'], { cwd: tree, timeout: BUILD_TIMEOUT });
      expect(readFileSync(join(tree, 'bin/make-vars.txt'), 'utf8')).toContain('GO_GCFLAGS_ORIGIN=file\n');
      const { exitCode, data } = await ctrdbgJson<{
        debuggable: boolean;
        optimizedContainerdPackages: string[];
      }>(['build', '--verify', join(tree, 'bin/containerd')], { env });
      expect(exitCode).toBe(6);
      expect(data.debuggable).toBe(false);
      expect(data.optimizedContainerdPackages).toEqual(['main']);
    },
    BUILD_TIMEOUT,
  );
});

describe('ctrdbg build --verify and bad input through the real CLI', () => {
  it('rejects Debian’s stock /usr/bin/containerd as stripped with exit code 6', async () => {
    const { exitCode, data } = await ctrdbgJson<{
      stripped: boolean;
      debuggable: boolean;
      problems: string[];
      hint: string;
    }>(['build', '--verify', '/usr/bin/containerd'], { env });
    expect(exitCode).toBe(6);
    expect(data).toMatchObject({ stripped: true, debuggable: false });
    expect(data.problems.join('\n')).toMatch(/stripped/);
    expect(data.hint).toMatch(/ctrdbg build/);
    const text = await ctrdbg(['build', '--verify', '/usr/bin/containerd'], { env });
    expect(text.exitCode).toBe(6);
    expect(text.stdout).toMatch(/NOT debuggable/);
    expect(text.stdout).toMatch(/stripped/);
    expect(text.stdout).toMatch(/make GODEBUG=1/);
  });

  it('gives each kind of bad input its own exit code and a hint', async () => {
    const notTree = mkdtempSync(join(base, 'empty-'));
    // A checkout takes go from PATH (a lab tree would take its lane's, whatever PATH says).
    const checkout = join(base, 'make-tree-no-go');
    cpSync(join(repoRoot, 'test/fixtures/make-tree'), checkout, { recursive: true });
    const cases: [string[], number, RegExp, Record<string, string>?][] = [
      [['build'], 2, /needs --src.*Pass --src/s],
      [['build', '--src', notTree], 3, /is not a containerd source tree/],
      [['build', '--src', labTree, '--arch', 'sparc'], 2, /Unknown --arch "sparc"/],
      [['build', '--verify', join(notTree, 'nothing')], 3, /does not exist/],
      [
        ['build', '--src', checkout, '--out', join(base, 'never')],
        4,
        /`go` is not on PATH/,
        { PATH: notTree },
      ],
    ];
    for (const [args, code, message, extraEnv] of cases) {
      const result = await ctrdbg(args, { env: { ...env, ...extraEnv } });
      expect({ args, code: result.exitCode }).toEqual({ args, code });
      expect(result.stderr).toMatch(message);
    }
  });
});
