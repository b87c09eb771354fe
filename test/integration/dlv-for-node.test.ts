/**
 * A dlv for the node whatever the laptop (issue 15), against real tools: Debian's delve source built for arm64 and
 * amd64 (GOPATH mode against its packaged dependencies, CGO_ENABLED=0), the upload plan for an aarch64 node (a
 * stand-in probe; the lab is amd64), `setup lab --dlv-src` installing the source-built dlv, which then attaches
 * and records, a real Delve 1.6.1 (Debian bullseye's) too old for the lab's Go 1.19, and files that cannot run on
 * the node — a Mach-O, a 386 ELF, a text file, an object file — refused as --dlv and --binary with the node
 * untouched. Debian's source and the old Delve come from scripts/bootstrap-delve (make deps runs it).
 */

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { toolchainDir } from '../../src/config.js';
import { inspectBinary } from '../../src/debugbuild/debugInfo.js';
import { moduleDelveSource } from '../../src/debugbuild/delveSource.js';
import { readExecutableFacts } from '../../src/debugbuild/platform.js';
import { type DelveInventory, machineInventory, planNodeDelve } from '../../src/deploy/nodeDelve.js';
import { binDir } from '../../src/deploy/nodeState.js';
import { goArchOf, type NodeProbe } from '../../src/deploy/probe.js';
import { isCtrdbgError } from '../../src/errors.js';
import { resolveTarget } from '../../src/nodes/resolveTarget.js';
import type { Target } from '../../src/nodes/target.js';
import type { Logger } from '../../src/util/output.js';
import { ctrdbg, ctrdbgJson, repoRoot } from '../helpers/cli.js';
import { type LabStatusJson, labEnv, labStatus } from '../helpers/lab.js';

const DELVE_SRC = join(toolchainDir(), 'delve-src', 'bookworm');
const OLD_DLV = join(toolchainDir(), 'delve-bin', 'bullseye', 'usr', 'bin', 'dlv');
/** A cold Delve build on two cores takes about a minute and a half; a cached one, none. */
const BUILD_TIMEOUT = 600_000;

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const fileSays = (path: string) => execFileSync('file', ['-b', path], { encoding: 'utf8' });

let env: Record<string, string>;
let lab: LabStatusJson;
let target: Target;
let work: string;
let labGoVersion: string | undefined;

/** A logger that keeps what it was told, to check what ctrdbg says and why. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (m: string) => lines.push(m);
  return { lines, info: keep, step: keep, warn: keep, debug: () => {} };
}

async function fixture(name: string, goos: string, goarch: string): Promise<string> {
  const out = join(work, name);
  await execa(
    'go',
    ['build', '-gcflags=all=-N -l', '-ldflags', '-X main.version=1.6.20~ds1', '-o', out, '.'],
    {
      cwd: join(repoRoot, 'test/fixtures/fake-containerd'),
      env: { GOFLAGS: '', GO111MODULE: 'on', CGO_ENABLED: '0', GOOS: goos, GOARCH: goarch },
    },
  );
  return out;
}

const nodeDlv = () => join(lab.dir, 'node', 'opt', 'ctrdbg', 'bin', 'dlv');
const statePath = () => join(lab.dir, 'node', 'opt', 'ctrdbg', 'state.json');

/** Everything a refused setup must leave as it was. */
async function nodeFacts() {
  const status = await labStatus('default', env);
  return {
    pid: status.containerd.pid,
    binary: sha256(status.containerd.binary),
    dlv: existsSync(nodeDlv()) ? sha256(nodeDlv()) : null,
    state: existsSync(statePath()) ? await readFile(statePath(), 'utf8') : null,
  };
}

beforeAll(async () => {
  for (const [name, path] of [
    ["Debian's delve source", join(DELVE_SRC, 'ctrdbg-delve-src.json')],
    ["bullseye's Delve 1.6.1", OLD_DLV],
  ])
    if (!existsSync(path!))
      throw new Error(`${name} is missing at ${path}: run scripts/bootstrap-delve (make deps does)`);
  env = labEnv();
  // The in-process calls below read the same places the CLI does.
  process.env.CTRDBG_LAB_ROOT = inject('labRoot');
  process.env.CTRDBG_CACHE_DIR = inject('cacheDir');
  process.env.CTRDBG_CONFIG_DIR = inject('configDir');
  work = await mkdtemp(join(tmpdir(), 'ctrdbg-dlv-node-'));
  lab = await labStatus('default', env);
  target = await resolveTarget('lab', {});
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('a dlv built from Delve’s source for the node’s arch', () => {
  it(
    '--dlv-src with Debian’s delve source, for an aarch64 node (stand-in probe): an aarch64 ELF executable and the upload plan',
    async () => {
      // What probeNode would report for an arm64 node; only the arch matters to the plan.
      const probe: Pick<NodeProbe, 'arch' | 'goArch'> = { arch: 'aarch64', goArch: goArchOf('aarch64') };
      expect(probe.goArch).toBe('arm64');
      const log = recordingLogger();
      const started = Date.now();
      const plan = await planNodeDelve({
        host: undefined,
        target,
        goArch: 'arm64',
        goVersion: 'go1.19.8',
        options: { dlvSrc: DELVE_SRC },
        log,
      });
      const took = Date.now() - started;
      process.stderr.write(
        `dlv linux/arm64 from Debian's source: ${plan.built?.cached ? 'cached' : `built in ${plan.built?.durationMs} ms`} (${took} ms in all)\n`,
      );
      expect(plan).toMatchObject({
        version: '1.20.2',
        supportsGo: '1.18–1.20',
        remote: `${binDir(target)}/dlv`,
        description: 'an ELF 64-bit executable for linux/arm64 (static)',
        built: { origin: "Debian bookworm's delve 1.20.2-1+deb12u1 source with its patches", without: [] },
      });
      expect(plan.why).toMatch(
        /^built for linux\/arm64 from Debian bookworm's delve 1\.20\.2-1\+deb12u1 source/,
      );
      expect(plan.why).toContain('because --dlv-src asks for it');
      expect(plan.sha256).toBe(sha256(plan.local));
      expect(fileSays(plan.local)).toMatch(/^ELF 64-bit LSB executable, ARM aarch64, .*statically linked/);
      expect(await readExecutableFacts(plan.local)).toMatchObject({
        os: 'linux',
        arch: 'arm64',
        kind: 'executable',
      });
      expect(log.lines.join('\n')).toContain(
        'dlv: building Delve 1.20.2 for linux/arm64 from Debian bookworm',
      );

      // Without --dlv-src: no dlv on this (amd64) machine runs on an arm64 node, so ctrdbg says so and ships the
      // arm64 dlv it built.
      const again = recordingLogger();
      const implicit = await planNodeDelve({
        host: undefined,
        target,
        goArch: 'arm64',
        goVersion: 'go1.19.8',
        options: {},
        log: again,
      });
      expect(implicit.local).toBe(plan.local);
      expect(implicit.why).toContain('it is for linux/amd64, but the node is linux/arm64');
      expect(implicit.built?.cached).toBe(true);
    },
    BUILD_TIMEOUT,
  );

  it(
    'setup lab --dlv-src installs the amd64 dlv built from source, which then attaches and records',
    async () => {
      // From the node's original binary, whatever an earlier suite left.
      if (!(await labStatus('default', env)).containerd.isStock) {
        const restored = await ctrdbg(['restore', 'lab'], { env });
        expect(restored.exitCode, restored.stderr).toBe(0);
      }
      const setup = await ctrdbgJson<{
        dlv: {
          path: string;
          version: string;
          local: string;
          sha256: string;
          uploaded: boolean;
          why: string;
          built: { origin: string; cached: boolean; durationMs: number; without: string[] } | null;
        };
      }>(['setup', 'lab', '--dlv-src', DELVE_SRC], { env });
      expect(setup.exitCode, setup.stderr).toBe(0);
      const dlv = setup.data.dlv;
      process.stderr.write(
        `dlv linux/amd64 from Debian's source: ${dlv.built?.cached ? 'cached' : `built in ${dlv.built?.durationMs} ms`}\n`,
      );
      expect(dlv.version).toBe('1.20.2');
      expect(dlv.built?.origin).toBe("Debian bookworm's delve 1.20.2-1+deb12u1 source with its patches");
      // Debian's source has no generated BPF object; the build says what it left out.
      expect(dlv.built?.without).toEqual([
        'eBPF tracing, which needs a generated BPF object this source lacks',
      ]);
      expect(dlv.local).toMatch(/\/dlv\/1\.20\.2-linux-amd64-[0-9a-f]{10}\/dlv$/);
      // What is on the node is that build, not the lane's /usr/bin/dlv.
      expect(sha256(nodeDlv())).toBe(dlv.sha256);
      expect(dlv.sha256).toBe(sha256(dlv.local));
      expect(dlv.sha256).not.toBe(sha256('/usr/bin/dlv'));
      expect(fileSays(nodeDlv())).toMatch(/^ELF 64-bit LSB executable, x86-64, .*statically linked/);
      expect(dlv.why).toMatch(
        /^built for linux\/amd64 from Debian bookworm's delve 1\.20\.2-1\+deb12u1 source .*, because --dlv-src asks for it$/,
      );

      const doctor = await ctrdbgJson<{ checks: { id: string; status: string; detail: string }[] }>(
        ['doctor', 'lab'],
        { env },
      );
      const check = doctor.data.checks.find((c) => c.id === 'dlv');
      expect(check?.status).toBe('ok');
      expect(check?.detail).toMatch(
        /^Delve 1\.20\.2 at \S+\/opt\/ctrdbg\/bin\/dlv supports Go 1\.18–1\.20; containerd was built with go1\.19\.\d+: it fits; built for linux\/amd64 from Debian/,
      );

      const recording = join(work, 'lab-create.jsonl');
      // A name of this run's own: a namespace left by another run (or not removable) must not fail the trigger.
      const ns = `dlvsrc-${process.pid}-${Date.now() % 100000}`;
      const attach = await ctrdbg(
        [
          'attach',
          'lab',
          '--set',
          'lab-create',
          '--record',
          recording,
          '--trigger',
          `ctr -a $CTRDBG_SOCKET namespaces create ${ns}`,
        ],
        { env },
      );
      await execa('ctr', ['-a', lab.socket, 'namespaces', 'rm', ns], { reject: false });
      expect(attach.exitCode, attach.stderr).toBe(0);
      const lines = (await readFile(recording, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      const hits = lines.filter((l) => l.type === 'hit');
      expect(hits.length).toBeGreaterThanOrEqual(1);
      expect(hits[0].location.function).toBe(
        'github.com/containerd/containerd/services/namespaces.(*local).Create',
      );
      expect(JSON.stringify(hits[0])).toContain(`"${ns}"`);
      // The Go the lab's debug build was made with, for the tests below.
      labGoVersion = lines[0].containerd.goVersion;
      expect(labGoVersion).toMatch(/^go1\.19\./);
    },
    BUILD_TIMEOUT,
  );
});

describe('a local dlv too old for the binary’s Go', () => {
  // This machine's only Delve, as far as ctrdbg looks: Debian bullseye's 1.6.1 (Go 1.14–1.16), first on PATH.
  const oldOnly: DelveInventory = {
    ...machineInventory,
    chosen: async () => ({ tool: 'dlv', path: OLD_DLV, source: 'path', why: 'first on PATH' }),
    others: async () => [],
    cachedBuilds: async () => [],
  };

  it(
    'leads to a build from Delve’s source, saying why',
    async () => {
      const log = recordingLogger();
      const plan = await planNodeDelve({
        host: undefined,
        target,
        goArch: 'amd64',
        goVersion: labGoVersion ?? 'go1.19.8',
        options: { lane: 'bookworm' },
        log,
        inventory: oldOnly,
      });
      expect(plan.built?.origin).toBe("Debian bookworm's delve 1.20.2-1+deb12u1 source with its patches");
      expect(plan.version).toBe('1.20.2');
      expect(plan.why).toMatch(
        /because Delve 1\.6\.1 at \S+\/delve-bin\/bullseye\/usr\/bin\/dlv \(first on PATH\) supports Go 1\.14–1\.16, not go1\.19\.\d+$/,
      );
      expect(log.lines.join('\n')).toMatch(
        /dlv: building Delve 1\.20\.2 for linux\/amd64 .*because Delve 1\.6\.1/,
      );
    },
    BUILD_TIMEOUT,
  );

  it('is a clear error when there is no source to build from (no --dlv-src, nothing in the module cache, GOPROXY=off)', async () => {
    const emptyCache = join(work, 'gomodcache');
    const saved = { GOPROXY: process.env.GOPROXY, GOMODCACHE: process.env.GOMODCACHE };
    Object.assign(process.env, { GOPROXY: 'off', GOMODCACHE: emptyCache });
    try {
      const error = await planNodeDelve({
        host: undefined,
        target,
        goArch: 'amd64',
        goVersion: 'go1.19.8',
        options: { lane: 'bookworm' },
        log: recordingLogger(),
        inventory: { ...oldOnly, sources: async () => [], moduleSource: moduleDelveSource },
      }).catch((e: unknown) => e);
      expect(isCtrdbgError(error) && error.kind).toBe('environment');
      const message = (error as Error).message;
      expect(message).toMatch(
        /^No dlv for lab \(linux\/amd64, containerd built with go1\.19\.8\): Delve 1\.6\.1 at \S+ \(first on PATH\) supports Go 1\.14–1\.16, not go1\.19\.8; and ctrdbg has no Delve source to build one from \(Go's module route: /,
      );
      expect(message).toContain('github.com/go-delve/delve');
      expect(message).not.toContain('\n');
      expect((error as { hint?: string }).hint).toMatch(/^Pass --dlv-src DIR: .*scripts\/bootstrap-delve/);
    } finally {
      for (const [k, v] of Object.entries(saved))
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
  });

  it('named with --dlv, it is refused (never replaced), with the way out, and the node is untouched', async () => {
    const before = await nodeFacts();
    const r = await ctrdbg(['setup', 'lab', '--skip-build', '--dlv', OLD_DLV], { env });
    expect(r.exitCode, r.stderr).toBe(4);
    expect(r.stderr).toMatch(
      /Delve 1\.6\.1 at \S+ \(--dlv\) supports Go 1\.14–1\.16, not go1\.19\.\d+: it cannot debug containerd on lab/,
    );
    expect(r.stderr).toMatch(/Pass --dlv \/usr\/bin\/dlv \(Delve 1\.20\.2, the bookworm lane\)/);
    expect(await nodeFacts()).toEqual(before);
  });
});

describe('files that cannot run on the node, offered as --dlv or --binary', () => {
  let files: [string, string, RegExp][];
  beforeAll(async () => {
    const text = join(work, 'notes.txt');
    await writeFile(text, 'not a program\n');
    const asm = join(work, 'x.s');
    await writeFile(asm, '.text\n nop\n');
    const object = join(work, 'x.o');
    await execa('as', ['-o', object, asm]);
    files = [
      [
        'a Mach-O (macOS)',
        await fixture('darwin-arm64', 'darwin', 'arm64'),
        /it is a Mach-O executable for darwin\/arm64 \(macOS\), not a Linux executable/,
      ],
      [
        'a 386 ELF',
        await fixture('linux-386', 'linux', '386'),
        /it is for 386; ctrdbg supports linux\/amd64 and linux\/arm64 nodes/,
      ],
      ['a text file', text, /it is a text file, not a Linux executable/],
      [
        'an object file',
        object,
        /it is an ELF 64-bit relocatable object file for linux\/amd64, not an executable/,
      ],
    ];
  });

  it('are refused with exit 15, one paragraph that says what to do, and the node untouched', async () => {
    const before = await nodeFacts();
    for (const [what, file, reason] of files) {
      for (const flag of ['--dlv', '--binary']) {
        const r = await ctrdbg(['setup', 'lab', '--skip-build', flag, file], { env });
        const label = `${flag} ${what}`;
        expect(r.exitCode, `${label}: ${r.stderr}`).toBe(15);
        const error = r.stderr.slice(r.stderr.indexOf('error: '));
        expect(error, label).toContain(`error: ${flag} ${file} cannot run on lab, a linux/amd64 node: `);
        expect(error, label).toMatch(reason);
        expect(error, label).toContain('Nothing was uploaded and the node was not changed.');
        // One paragraph: the message and its hint, no second block.
        expect(error.trim().split('\n'), label).toHaveLength(1);
        expect(error, label).toMatch(
          flag === '--dlv'
            ? /Leave out --dlv and ctrdbg builds Delve for linux\/amd64/
            : /ctrdbg build --arch amd64/,
        );
        expect(await nodeFacts(), label).toEqual(before);
      }
    }
  });

  it('build --verify: only linux/amd64 and linux/arm64 executables', async () => {
    for (const [what, file] of files) {
      const r = await ctrdbg(['build', '--verify', file], { env });
      expect(r.exitCode, `${what}: ${r.stdout}${r.stderr}`).toBe(15);
    }
    const report = await inspectBinary(files[1]![1], { delveVersion: null });
    expect(report.platformProblems).toEqual([
      'the binary is for 386; ctrdbg supports linux/amd64 and linux/arm64 nodes',
    ]);
  });
});
