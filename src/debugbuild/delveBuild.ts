/**
 * Building `dlv` for a node: linux/<node arch>, CGO_ENABLED=0 (a static binary that runs on any node's libc, as
 * the agent is), from a Delve source (delveSource.ts) with the Go ctrdbg chose. Each build is cached under
 * `<cache>/dlv/<version>-linux-<arch>-<key>/` (key: the source tree, its kind and the Go that built it) with a
 * `build.json` beside it, so a later setup — or another node of the same arch — reuses it.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';
import { cacheDir } from '../config.js';
import { buildError, toolchainError } from '../errors.js';
import { run, start } from '../util/exec.js';
import { exists, sha256File } from '../util/fsx.js';
import type { Logger } from '../util/output.js';
import { shellQuote } from '../util/shell.js';
import { parseDelveVersion } from './debugInfo.js';
import { DELVE_MODULE, type DelveSource, DLV_PACKAGE } from './delveSource.js';
import { parseGoBuildInfo, withElfFile } from './elf.js';
import { type BuildProgress, createBuildProgress, extractCompilerErrors } from './goBuild.js';
import { checkGoRequirement } from './goVersion.js';
import {
  type Arch,
  type ExecutableFacts,
  platformProblems,
  readExecutableFacts,
  runsLocally,
} from './platform.js';
import type { ResolvedTool } from './toolchain.js';

export const DELVE_BUILD_FORMAT = 1;

/** `build.json` beside each cached dlv. */
export interface DelveBuild {
  format: typeof DELVE_BUILD_FORMAT;
  path: string;
  version: string;
  arch: Arch;
  sha256: string;
  source: { kind: DelveSource['kind']; delveDir: string; origin: string };
  go: { path: string; version: string | null };
  command: string;
  builtAt: string;
  durationMs: number;
  /** The executable check of the result: "an ELF 64-bit executable for linux/arm64 (static)". */
  description: string;
  /** What the build left out of Delve, if anything ("eBPF tracing"). */
  without: string[];
}

export const delveCacheDir = () => join(cacheDir(), 'dlv');

/** The cache directory's name: the version and arch first, so a listing reads as what it holds. */
export function delveBuildKey(source: DelveSource, arch: Arch, goVersion: string | undefined): string {
  const hash = createHash('sha256')
    .update(JSON.stringify([source.kind, source.delveDir, source.gopath ?? [], goVersion ?? '']))
    .digest('hex')
    .slice(0, 10);
  return `${source.version}-linux-${arch}-${hash}`;
}

const EBPF_DIR = 'pkg/proc/internal/ebpf';

/**
 * Delve's linux/amd64 eBPF tracing needs a BPF object generated with clang (trace_bpfel_x86.go/.o). Upstream
 * commits it; Debian's source excludes it (debian/copyright: Files-Excluded) and regenerates it with clang and
 * bpftool at package build time. Without it, ctrdbg builds Delve's own disabled variant of that package (the one
 * every other GOARCH gets) through `go build -overlay`, written beside the build, never into the tree. ctrdbg never
 * uses eBPF tracing: `dlv trace --ebpf` shut containerd down on these machines (see the Delve notes).
 * Returns the overlay's JSON, or undefined when the tree needs none.
 */
export async function ebpfOverlay(
  source: DelveSource,
  arch: Arch,
): Promise<{ helpers: string; disabled: string; disabledGo: string } | undefined> {
  if (arch !== 'amd64') return undefined;
  const tree =
    source.kind === 'gopath' && source.gopath?.[0]
      ? join(source.gopath[0], 'src', DELVE_MODULE)
      : source.delveDir;
  const dir = join(tree, EBPF_DIR);
  const helpers = join(dir, 'helpers.go');
  const disabled = join(dir, 'helpers_disabled.go');
  if (!(await exists(helpers)) || !(await exists(disabled))) return undefined;
  if ((await exists(join(dir, 'trace_bpfel_x86.go'))) && (await exists(join(dir, 'trace_bpfel_x86.o'))))
    return undefined;
  const text = await readFile(disabled, 'utf8');
  // Without its build constraint (`!linux || !amd64 || …`), so it is the package's implementation on amd64 too.
  const disabledGo = text
    .split('\n')
    .filter((line) => !/^\/\/(go:build|\s*\+build)\s/.test(line))
    .join('\n');
  return { helpers, disabled, disabledGo };
}

export interface DelveBuildPlan {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  output: string;
  /** A copy-pasteable shell line. */
  display: string;
}

/** Pure: the command that builds dlv from `source` for linux/`arch` into `output`. */
export function planDelveBuild(
  source: DelveSource,
  options: {
    arch: Arch;
    go: string;
    goVersion: string | undefined;
    output: string;
    neutralDir: string;
    /** A `go build -overlay` file (ebpfOverlay). */
    overlay?: string;
  },
): DelveBuildPlan {
  const minor = options.goVersion ? /^go1\.(\d+)/.exec(options.goVersion)?.[1] : undefined;
  const env: Record<string, string> = { GOOS: 'linux', GOARCH: options.arch, CGO_ENABLED: '0' };
  // Go 1.21+ would otherwise fetch the Go a go.mod's `toolchain` line names.
  if (minor !== undefined && Number(minor) >= 21) env.GOTOOLCHAIN = 'local';
  let cwd: string;
  let pkg: string;
  if (source.kind === 'gopath') {
    Object.assign(env, { GO111MODULE: 'off', GOPATH: (source.gopath ?? []).join(delimiter), GOFLAGS: '' });
    // By import path, from a directory outside the tree: GOPATH resolves it (through a symlinked entry too).
    cwd = options.neutralDir;
    pkg = DLV_PACKAGE;
  } else {
    Object.assign(env, {
      GO111MODULE: 'on',
      ...(source.kind === 'vendor' ? { GOFLAGS: '-mod=vendor' } : {}),
    });
    cwd = source.delveDir;
    pkg = './cmd/dlv';
  }
  const args = [
    'build',
    '-v',
    '-trimpath',
    ...(options.overlay ? ['-overlay', options.overlay] : []),
    '-o',
    options.output,
    pkg,
  ];
  const envText = Object.entries(env)
    .map(([k, v]) => `${k}=${shellQuote(v)}`)
    .join(' ');
  return {
    file: options.go,
    args,
    cwd,
    env,
    output: options.output,
    display: `cd ${shellQuote(cwd)} && ${envText} ${[options.go, ...args].map(shellQuote).join(' ')}`,
  };
}

async function readBuild(dir: string): Promise<DelveBuild | undefined> {
  try {
    const build = JSON.parse(await readFile(join(dir, 'build.json'), 'utf8')) as DelveBuild;
    if (build.format !== DELVE_BUILD_FORMAT || !(await exists(build.path))) return undefined;
    return build;
  } catch {
    return undefined;
  }
}

/** Every dlv ctrdbg built earlier (for `arch`, when given), newest first. */
export async function cachedDelveBuilds(arch?: Arch): Promise<DelveBuild[]> {
  let names: string[];
  try {
    names = await readdir(delveCacheDir());
  } catch {
    return [];
  }
  const builds: DelveBuild[] = [];
  for (const name of names) {
    if (name.includes('.tmp') || name === 'gopath' || name === 'overlays') continue;
    const build = await readBuild(join(delveCacheDir(), name));
    if (build && (!arch || build.arch === arch)) builds.push(build);
  }
  return builds.sort((a, b) => b.builtAt.localeCompare(a.builtAt));
}

export interface BuildDelveOptions {
  arch: Arch;
  go: ResolvedTool;
  log: Logger;
  progress?: () => BuildProgress;
  timeoutMs?: number;
}

/**
 * Builds dlv (or returns the cached build of the same source, arch and Go), checks that the result is an
 * executable for linux/`arch`, and — when it can run here — that it reports the source's version.
 */
export async function buildDelve(
  source: DelveSource,
  options: BuildDelveOptions,
): Promise<DelveBuild & { cached: boolean }> {
  const { arch, go, log } = options;
  const key = delveBuildKey(source, arch, go.version);
  const dir = join(delveCacheDir(), key);
  const cached = await readBuild(dir);
  if (cached) return { ...cached, cached: true };

  const check = checkGoRequirement({ go: source.goVersion, toolchain: undefined }, go.version ?? '');
  if (!check.ok) {
    throw toolchainError(
      `Delve ${source.version} (${source.origin}) needs Go ${check.needed} or newer to build, but the Go ctrdbg would build it with is ${check.found} (${go.path}, ${go.why}).`,
      {
        hint: 'Pass --go PATH to a newer Go (or set CTRDBG_GO), or --dlv-src DIR to an older Delve that still supports the binary’s Go.',
      },
    );
  }
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  const overlay = await ebpfOverlay(source, arch);
  let overlayFile: string | undefined;
  if (overlay) {
    // Beside the cache, not in the build's temporary directory, so the recorded command still works later.
    const overlayDir = join(delveCacheDir(), 'overlays', key);
    await mkdir(overlayDir, { recursive: true });
    const disabledCopy = join(overlayDir, 'helpers_disabled.go');
    await writeFile(disabledCopy, overlay.disabledGo);
    overlayFile = join(overlayDir, 'overlay.json');
    // helpers.go disappears; helpers_disabled.go's path reads the unconstrained copy.
    await writeFile(
      overlayFile,
      JSON.stringify({ Replace: { [overlay.helpers]: '', [overlay.disabled]: disabledCopy } }),
    );
    log.info(
      '  this Delve source has no generated eBPF object (Debian excludes it): building Delve without eBPF tracing, which ctrdbg never uses',
    );
  }
  const plan = planDelveBuild(source, {
    arch,
    go: go.path,
    goVersion: go.version,
    output: join(tmp, 'dlv'),
    neutralDir: tmp,
    ...(overlayFile ? { overlay: overlayFile } : {}),
  });
  log.step(plan.display);
  const progress = options.progress
    ? options.progress()
    : createBuildProgress(log, { label: `building Delve ${source.version} for linux/${arch}` });
  const started = Date.now();
  const lines: string[] = [];
  const child = start(plan.file, plan.args, {
    cwd: plan.cwd,
    env: plan.env,
    extendEnv: true,
    all: true,
    reject: false,
    buffer: false,
    stdin: 'ignore',
    timeout: options.timeoutMs ?? 20 * 60_000,
    forceKillAfterDelay: 5_000,
  });
  if (child.all) {
    const reader = createInterface({ input: child.all, crlfDelay: Number.POSITIVE_INFINITY });
    reader.on('line', (line) => {
      lines.push(line);
      if (lines.length > 2000) lines.splice(0, lines.length - 2000);
      log.debug(line);
      progress.line(line);
    });
  }
  const result = await child;
  const durationMs = Date.now() - started;
  const ok = !result.failed && result.exitCode === 0;
  progress.stop(ok);
  if (!ok) {
    await rm(tmp, { recursive: true, force: true });
    const errors = extractCompilerErrors(lines);
    const how = result.timedOut
      ? 'timed out'
      : result.exitCode !== undefined
        ? `exit code ${result.exitCode}`
        : (result.signal ?? 'killed');
    throw buildError(
      `Building Delve ${source.version} for linux/${arch} failed (${how}) running: ${plan.display}\n${errors.map((l) => `    ${l}`).join('\n')}`,
      {
        hint:
          source.kind === 'module'
            ? `Delve's dependencies come from Go's module cache and GOPROXY here: make ${DELVE_MODULE}'s modules reachable, or pass --dlv-src DIR to a tree with vendor/ or to Debian's delve source (scripts/bootstrap-delve).`
            : 'Run the command above by hand to see the whole output; a different Delve source (--dlv-src DIR) may build where this one does not.',
        details: { command: plan.display, errors },
      },
    );
  }
  const facts = await readExecutableFacts(plan.output);
  const problems = platformProblems(facts, { goArch: arch });
  if (problems.length) {
    throw buildError(
      `The dlv built from ${source.origin} cannot run on linux/${arch}: ${problems.join('; ')}.`,
      {
        hint: `Check the Go at ${go.path}: \`${go.path} env GOOS GOARCH\` must honour the GOOS/GOARCH ctrdbg sets.`,
      },
    );
  }
  let version = source.version;
  if (runsLocally(facts)) {
    const said = parseDelveVersion((await run(plan.output, ['version'], { timeout: 20_000 })).stdout);
    if (said && said !== source.version) {
      log.warn(`the dlv built from ${source.origin} says it is Delve ${said}, not ${source.version}`);
      version = said;
    }
  }
  const build: DelveBuild = {
    format: DELVE_BUILD_FORMAT,
    path: join(dir, 'dlv'),
    version,
    arch,
    sha256: await sha256File(plan.output),
    source: { kind: source.kind, delveDir: source.delveDir, origin: source.origin },
    go: { path: go.path, version: go.version ?? null },
    command: plan.display,
    builtAt: new Date().toISOString(),
    durationMs,
    description: facts.description,
    without: overlay ? ['eBPF tracing, which needs a generated BPF object this source lacks'] : [],
  };
  await writeFile(join(tmp, 'build.json'), `${JSON.stringify(build, null, 2)}\n`);
  await rm(dir, { recursive: true, force: true });
  try {
    await rename(tmp, dir);
  } catch (error) {
    // Another ctrdbg finished the same build first: theirs is as good.
    await rm(tmp, { recursive: true, force: true });
    const theirs = await readBuild(dir);
    if (!theirs) throw error;
    return { ...theirs, cached: true };
  }
  return { ...build, cached: false };
}

/**
 * Which Delve a dlv file is, without trusting that it runs here: `dlv version` when it can run on this machine,
 * else the version its Go build info records for the go-delve module (a `go install …@v1.24.0` build).
 */
export async function readDelveVersion(path: string, facts: ExecutableFacts): Promise<string | undefined> {
  if (runsLocally(facts)) {
    const r = await run(path, ['version'], { timeout: 20_000 }).catch(() => undefined);
    const said = r?.exitCode === 0 ? parseDelveVersion(r.stdout) : undefined;
    if (said) return said;
  }
  if (facts.format !== 'elf') return undefined;
  return withElfFile(path, async (elf) => {
    const section = elf.section('.go.buildinfo');
    if (!section) return undefined;
    const info = await parseGoBuildInfo(await elf.readSection(section), elf.readVirtual);
    const mod = info?.main?.path === DELVE_MODULE ? info.main.version : undefined;
    return mod && mod !== '(devel)' ? mod.replace(/^v/, '') : undefined;
  }).catch(() => undefined);
}
