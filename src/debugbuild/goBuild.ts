/**
 * Building a debuggable containerd (and, for `--with-shim`, its runc shim) from one of two kinds of source tree:
 *  - a containerd checkout, built through its own Makefile (`make GODEBUG=1 GO_GCFLAGS= bin/containerd`),
 *    so the result matches what the project ships except for the debug flags;
 *  - a lab tree (GOPATH mode, marked by `ctrdbg-tree.json`): Debian's packaged containerd library plus a
 *    small main package, built with `go build -gcflags=all="-N -l"` directly.
 * Planning is pure (unit-tested); running streams the tool's output into a progress display.
 */
import { copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { delimiter, dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import ora from 'ora';
import { z } from 'zod';
import { projectRoot } from '../config.js';
import { buildError, environmentError, inputError, toolchainError, usageError } from '../errors.js';
import { run, start } from '../util/exec.js';
import { findOnPath, isExecutableFile } from '../util/fsx.js';
import type { Logger } from '../util/output.js';
import { shellQuote } from '../util/shell.js';
import { checkGoRequirement, type GoModRequirement, parseGoMod } from './goVersion.js';
import { type Arch, supportedArches } from './platform.js';
import { type LaneName, type ResolvedTool, readTrixieLane } from './toolchain.js';

/** The one POSIX quoting ctrdbg has; re-exported for this module's callers. */
export { shellQuote };

export const LAB_TREE_MARKER = 'ctrdbg-tree.json';
/** The lab's main package import path inside its GOPATH tree. */
export const LAB_PACKAGE = 'ctrdbg.lab/containerd';
/** The lab's runc shim main package (containerd 1.7's cmd/containerd-shim-runc-v2, which Debian does not ship). */
export const LAB_SHIM_PACKAGE = 'ctrdbg.lab/containerd-shim-runc-v2';
/** The binaries ctrdbg builds: containerd, and the runc v2 shim containerd starts for every pod (`--with-shim`). */
export const SHIM_BINARY = 'containerd-shim-runc-v2';
export type BuiltBinary = 'containerd' | typeof SHIM_BINARY;
/** Debian's packaged containerd library source (golang-github-containerd-containerd-dev). */
export const DEBIAN_GOCODE = '/usr/share/gocode';
export const DEBIAN_CONTAINERD_PACKAGE = 'golang-github-containerd-containerd-dev';
const VERSION_PKG = 'github.com/containerd/containerd/version';

export { type Arch, supportedArches };

const archAliases: Record<string, Arch> = {
  amd64: 'amd64',
  x86_64: 'amd64',
  x64: 'amd64',
  arm64: 'arm64',
  aarch64: 'arm64',
};

/** This machine's architecture in Go's naming. */
export function localArch(): string {
  return archAliases[process.arch] ?? process.arch;
}

export function normalizeArch(arch: string | undefined): Arch {
  if (arch === undefined) {
    const local = archAliases[process.arch];
    if (!local)
      throw usageError(`This machine (${process.arch}) is not a supported build host architecture.`, {
        hint: 'Pass --arch amd64 or --arch arm64.',
      });
    return local;
  }
  const known = archAliases[arch.trim().toLowerCase()];
  if (!known) {
    throw usageError(`Unknown --arch "${arch}".`, {
      hint: `Use one of ${supportedArches.join(', ')} (the node's \`uname -m\`: x86_64 → amd64, aarch64 → arm64).`,
    });
  }
  return known;
}

/* ------------------------------------------------------------------ source trees */

export const labTreeMarkerSchema = z.object({
  format: z.literal(1),
  kind: z.literal('gopath'),
  package: z.string().min(1),
  gopath: z.array(z.string().min(1)).min(1),
  ldflags: z.record(z.string(), z.string()).default({}),
  version: z.string().optional(),
  sourceRoots: z.array(z.string().min(1)).min(1),
  /** The toolchain lane the tree belongs to (src/debugbuild/toolchain.ts); older markers have none. */
  toolchain: z.enum(['bookworm', 'trixie']).optional(),
  /** The oldest Go that builds it: the packaged library's go.mod `go` line. */
  goVersion: z.string().optional(),
  /** The runc shim's main package (`setup --with-shim`); trees written before it existed have none. */
  shimPackage: z.string().min(1).optional(),
});
export type LabTreeMarker = z.infer<typeof labTreeMarkerSchema>;

export type SourceTree =
  | { kind: 'checkout'; root: string; makefile: string }
  | { kind: 'gopath'; root: string; marker: LabTreeMarker };

/** The block every containerd Makefile since 1.6 has; its presence is what makes `make GODEBUG=1` mean debug. */
const GODEBUG_BLOCK = /^\s*ifndef\s+GODEBUG\b/m;

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return undefined;
    throw error;
  }
}

export async function detectSourceTree(src: string | undefined): Promise<SourceTree> {
  if (src === undefined || src.trim() === '') {
    throw usageError('No source tree given: `ctrdbg build` needs --src.', {
      hint: 'Pass --src ~/src/containerd (a containerd git checkout) or --src <lab dir>/tree (a lab tree with ctrdbg-tree.json).',
    });
  }
  const root = resolve(src);
  if (!(await isDirectory(root))) {
    throw inputError(`--src ${src} is not a directory.`, {
      hint: 'Pass the directory of a containerd checkout, e.g. --src ~/src/containerd.',
    });
  }
  const markerText = await readIfExists(join(root, LAB_TREE_MARKER));
  if (markerText !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(markerText);
    } catch (error) {
      throw inputError(`${join(root, LAB_TREE_MARKER)} is not valid JSON.`, {
        hint: 'Recreate the lab tree (ctrdbg lab up).',
        cause: error,
      });
    }
    const result = labTreeMarkerSchema.safeParse(parsed);
    if (!result.success) {
      throw inputError(
        `${join(root, LAB_TREE_MARKER)} is not a valid lab tree marker: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}.`,
        {
          hint: 'Recreate the lab tree (ctrdbg lab up).',
        },
      );
    }
    const mainGo = join(root, 'src', result.data.package, 'main.go');
    if ((await readIfExists(mainGo)) === undefined) {
      throw inputError(`The lab tree ${root} has no main package at ${mainGo}.`, {
        hint: 'Recreate the lab tree (ctrdbg lab up).',
      });
    }
    return { kind: 'gopath', root, marker: result.data };
  }
  const makefile = join(root, 'Makefile');
  const makefileText = await readIfExists(makefile);
  if (
    makefileText !== undefined &&
    GODEBUG_BLOCK.test(makefileText) &&
    (await isDirectory(join(root, 'cmd', 'containerd')))
  ) {
    return { kind: 'checkout', root, makefile };
  }
  const why =
    makefileText === undefined
      ? 'it has neither a Makefile nor a ctrdbg-tree.json lab marker'
      : GODEBUG_BLOCK.test(makefileText)
        ? 'its Makefile has the GODEBUG block but there is no cmd/containerd'
        : 'its Makefile has no `ifndef GODEBUG` block (containerd 1.6 and later have one)';
  throw inputError(`${root} is not a containerd source tree: ${why}.`, {
    hint: 'Pass the root of a containerd checkout (git clone https://github.com/containerd/containerd) or a lab tree (ctrdbg lab up creates one).',
  });
}

/* ------------------------------------------------------------------ planning */

export interface BuildPlan {
  tree: SourceTree;
  arch: Arch;
  /** The program to run (`make` or `go`) and its arguments, exactly as executed. */
  file: string;
  args: string[];
  cwd: string;
  /** Variables set on top of the inherited environment. */
  env: Record<string, string>;
  /** A directory put first on PATH (the chosen go's, for make). */
  pathPrefix?: string;
  /** Which binary it builds. */
  binary: BuiltBinary;
  /** Where the tool leaves the binary. */
  producedBinary: string;
  /** Where ctrdbg puts it (same as producedBinary for a direct go build). */
  outputBinary: string;
  /** A copy-pasteable shell line. */
  display: string;
}

/** Go's -ldflags parser splits on spaces but honours quotes, so values with spaces need them. */
function ldflagValue(key: string, value: string): string {
  const pair = `${key}=${value}`;
  return /[\s'"]/.test(pair) ? `'${pair}'` : pair;
}

export interface PlanOptions {
  arch: Arch;
  outDir: string;
  /** The environment the build inherits (to respect a user's CGO_ENABLED). */
  inheritedEnv?: NodeJS.ProcessEnv;
  /**
   * The `go` ctrdbg chose (src/debugbuild/toolchain.ts) when it is not simply the first on PATH: run directly for a
   * lab tree; put first on PATH for make, whose Makefile calls `go`.
   */
  go?: string;
  /** That go's version (`go1.24.4`): Go 1.21+ gets GOTOOLCHAIN=local, so it never downloads another Go. */
  goVersion?: string;
  /** containerd (the default), or the runc shim. */
  binary?: BuiltBinary;
}

/**
 * containerd's Makefile builds the shim with `go build ${GO_BUILD_FLAGS} … ${SHIM_GO_LDFLAGS}`: DEBUG_GO_GCFLAGS
 * never reaches it, so `make GODEBUG=1` alone gives an optimised shim (without -s -w only). GO_BUILD_FLAGS does
 * reach it; the quotes survive make and are removed by the recipe's shell, so `go` sees one `-gcflags=all=-N -l`.
 */
export const SHIM_MAKE_BUILD_FLAGS = 'GO_BUILD_FLAGS=-gcflags=all="-N -l"';

export function planBuild(tree: SourceTree, options: PlanOptions): BuildPlan {
  const inherited = options.inheritedEnv ?? process.env;
  const binary = options.binary ?? 'containerd';
  const shim = binary === SHIM_BINARY;
  const env: Record<string, string> = { GOOS: 'linux', GOARCH: options.arch };
  // A cross build cannot use the host's C toolchain; a user who set CGO_ENABLED knows better than us.
  if (options.arch !== localArch() && inherited.CGO_ENABLED === undefined) env.CGO_ENABLED = '0';
  const outputBinary = join(resolve(options.outDir), binary);
  const minor = options.goVersion ? /^go1\.(\d+)/.exec(options.goVersion)?.[1] : undefined;
  const toolchainLocal = minor !== undefined && Number(minor) >= 21 && inherited.GOTOOLCHAIN === undefined;
  let pathPrefix: string | undefined;

  let file: string;
  let args: string[];
  let producedBinary: string;
  if (tree.kind === 'checkout') {
    // GO_GCFLAGS= because the Makefile's own -gcflags=-trimpath comes after DEBUG_GO_GCFLAGS and would
    // take -N -l away from the main package (last -gcflags wins per package). The shim's rule takes its
    // -N -l from GO_BUILD_FLAGS (SHIM_MAKE_BUILD_FLAGS); it sets CGO_ENABLED itself (SHIM_CGO_ENABLED, 0).
    file = 'make';
    args = shim
      ? ['GODEBUG=1', 'GO_GCFLAGS=', SHIM_MAKE_BUILD_FLAGS, `bin/${SHIM_BINARY}`]
      : ['GODEBUG=1', 'GO_GCFLAGS=', 'bin/containerd'];
    producedBinary = join(tree.root, 'bin', binary);
    if (options.go) pathPrefix = dirname(options.go);
    if (toolchainLocal) env.GOTOOLCHAIN = 'local';
  } else {
    const pkg = shim ? tree.marker.shimPackage : tree.marker.package;
    if (!pkg)
      throw inputError(
        `The lab tree ${tree.root} has no shim main package: it was written before \`--with-shim\` existed.`,
        {
          hint: 'Run `ctrdbg lab up` (with --cri and --name as before) once: it rewrites the tree with the shim.',
        },
      );
    Object.assign(env, { GO111MODULE: 'off', GOPATH: tree.marker.gopath.join(delimiter), GOFLAGS: '' });
    // Static like containerd's own shim build (its Makefile's SHIM_CGO_ENABLED defaults to 0).
    if (shim && inherited.CGO_ENABLED === undefined) env.CGO_ENABLED = '0';
    if (toolchainLocal) env.GOTOOLCHAIN = 'local';
    const ldflags = Object.entries(tree.marker.ldflags)
      .map(([key, value]) => `-X ${ldflagValue(key, value)}`)
      .join(' ');
    file = options.go ?? 'go';
    // -v prints each package as it is compiled: that is what the progress line shows.
    args = [
      'build',
      '-v',
      '-gcflags=all=-N -l',
      ...(ldflags ? ['-ldflags', ldflags] : []),
      '-o',
      outputBinary,
      pkg,
    ];
    producedBinary = outputBinary;
  }
  const envText = [
    ...(pathPrefix ? [`PATH=${shellQuote(pathPrefix)}:"$PATH"`] : []),
    ...Object.entries(env).map(([key, value]) => `${key}=${shellQuote(value)}`),
  ].join(' ');
  const display = `cd ${shellQuote(tree.root)} && ${envText} ${[file, ...args].map(shellQuote).join(' ')}`;
  return {
    tree,
    arch: options.arch,
    binary,
    file,
    args,
    cwd: tree.root,
    env,
    ...(pathPrefix ? { pathPrefix } : {}),
    producedBinary,
    outputBinary,
    display,
  };
}

/* ------------------------------------------------------------------ running */

export { findOnPath };

/** The tools a plan needs: make also needs go, since the Makefile calls it. */
export async function checkTools(
  plan: BuildPlan,
  pathValue: string | undefined = process.env.PATH,
): Promise<void> {
  const needed = plan.file === 'make' ? ['make', 'go'] : [plan.file];
  const searchPath = plan.pathPrefix ? `${plan.pathPrefix}${delimiter}${pathValue ?? ''}` : pathValue;
  for (const tool of needed) {
    if (tool.startsWith('/') ? !(await isExecutableFile(tool)) : !(await findOnPath(tool, searchPath))) {
      const install =
        tool === 'make'
          ? 'Install make (apt-get install make).'
          : 'Install Go (apt-get install golang-go, or https://go.dev/dl) and make sure `go` is on PATH, or pass --go PATH.';
      const what = tool.startsWith('/') ? `${tool} is not an executable file` : `\`${tool}\` is not on PATH`;
      throw environmentError(`${what}; building ${plan.binary} needs it.`, { hint: install });
    }
  }
}

/**
 * Picks the lines that explain a failed build out of its output: compiler diagnostics (`file.go:12:3: …`),
 * the `# package` headers above them, and go/make's own complaints. Falls back to the last lines.
 */
export function extractCompilerErrors(lines: string[], max = 25): string[] {
  const interesting = lines.filter(
    (line) =>
      /^\s*\S+\.(go|s|c|h):\d+(:\d+)?:/.test(line) ||
      /^# \S/.test(line) ||
      /^(go|make|go build|cgo)(\[\d+\])?: /.test(line) ||
      /^(can't load package|cannot find package|package \S+ is not in|\S+: cannot find main module|found packages)/.test(
        line,
      ) ||
      /\b(undefined|cannot use|imported and not used|declared (and|but) not used)\b/.test(line),
  );
  const picked = interesting.length > 0 ? interesting : lines.filter((l) => l.trim() !== '');
  return picked.slice(-max);
}

export interface BuildProgress {
  line(text: string): void;
  stop(ok: boolean): void;
}

function formatElapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/**
 * A spinner on a TTY; otherwise a plain line every `intervalMs` (CI logs, pipes), so a long cold build
 * never looks hung.
 */
export function createBuildProgress(
  logger: Logger,
  options: { tty?: boolean; intervalMs?: number; label?: string; quiet?: boolean } = {},
): BuildProgress {
  const started = Date.now();
  const label = options.label ?? 'building containerd';
  let last = '';
  // A spinner line must fit the terminal: ora clears as many rows as the text wraps to, and a terminal that
  // reports 0 columns (some pseudo-terminals) made it redraw endlessly. Such terminals get plain lines.
  const columns = options.tty === undefined ? (process.stderr.columns ?? 0) : 120;
  const spinner = (options.tty ?? Boolean(process.stderr.isTTY)) && columns >= 20;
  const render = (width = 100 + label.length + 12) => {
    const text = `${label} · ${formatElapsed(Date.now() - started)}${last ? ` · ${last}` : ''}`;
    return text.length > width ? `${text.slice(0, width - 1)}…` : text;
  };
  if (options.quiet) return { line() {}, stop() {} };
  if (spinner) {
    // Room for the spinner glyph and a space.
    const width = columns - 3;
    const display = ora({ text: render(width), stream: process.stderr }).start();
    const timer = setInterval(() => {
      display.text = render(width);
    }, 500);
    timer.unref();
    return {
      line(text) {
        last = text.trim() || last;
      },
      stop(ok) {
        clearInterval(timer);
        const text = `${label} ${ok ? 'done' : 'failed'} in ${formatElapsed(Date.now() - started)}`;
        if (ok) display.succeed(text);
        else display.fail(text);
      },
    };
  }
  const timer = setInterval(() => logger.info(`  … ${render()}`), options.intervalMs ?? 10_000);
  // Never the reason the process stays alive.
  timer.unref();
  return {
    line(text) {
      last = text.trim() || last;
    },
    stop(ok) {
      clearInterval(timer);
      logger.info(`  ${label} ${ok ? 'done' : 'failed'} in ${formatElapsed(Date.now() - started)}`);
    },
  };
}

export interface RunBuildOptions {
  logger: Logger;
  /**
   * Makes the progress display once the build really starts (`label`: "building containerd"); defaults to a
   * spinner or periodic lines.
   */
  progress?: (label: string) => BuildProgress;
  /** Hard limit for the whole build; a cold containerd build takes about a minute on two cores. */
  timeoutMs?: number;
  pathValue?: string;
}

export interface RunBuildResult {
  durationMs: number;
  /** The last lines of output, for the manifest and debugging. */
  tail: string[];
}

export const DEFAULT_BUILD_TIMEOUT_MS = 30 * 60_000;

export async function runBuild(plan: BuildPlan, options: RunBuildOptions): Promise<RunBuildResult> {
  await checkTools(plan, options.pathValue);
  await mkdir(dirname(plan.outputBinary), { recursive: true });
  options.logger.step(plan.display);
  const label = `building ${plan.binary}`;
  const progress = options.progress
    ? options.progress(label)
    : createBuildProgress(options.logger, { label });
  const started = Date.now();
  const lines: string[] = [];
  const keep = 2000;
  const timeoutMs = options.timeoutMs ?? DEFAULT_BUILD_TIMEOUT_MS;
  const basePath = options.pathValue ?? process.env.PATH ?? '';
  const path = plan.pathPrefix ? `${plan.pathPrefix}${delimiter}${basePath}` : options.pathValue;
  const child = start(plan.file, plan.args, {
    cwd: plan.cwd,
    env: { ...plan.env, ...(path !== undefined ? { PATH: path } : {}) },
    extendEnv: true,
    all: true,
    reject: false,
    buffer: false,
    stdin: 'ignore',
    timeout: timeoutMs,
    // The go command waits for its compiler children; give it a moment before SIGKILL.
    forceKillAfterDelay: 5_000,
  });
  if (child.all) {
    const reader = createInterface({ input: child.all, crlfDelay: Number.POSITIVE_INFINITY });
    reader.on('line', (line) => {
      lines.push(line);
      if (lines.length > keep) lines.splice(0, lines.length - keep);
      options.logger.debug(line);
      progress.line(line);
    });
  }
  const result = await child;
  const durationMs = Date.now() - started;
  const ok = !result.failed && result.exitCode === 0;
  progress.stop(ok);
  if (!ok) {
    if ((result as { code?: string }).code === 'ENOENT') {
      throw environmentError(`\`${plan.file}\` could not be started.`, {
        hint: 'Make sure it is installed and on PATH.',
      });
    }
    if (result.timedOut) {
      throw buildError(
        `The ${plan.binary} build did not finish within ${formatElapsed(timeoutMs)}: ${plan.display}`,
        {
          hint: 'A cold build takes a minute or two; check the machine load, or run the command by hand to see where it stalls.',
          details: { command: plan.display, output: lines.slice(-40) },
        },
      );
    }
    const errors = extractCompilerErrors(lines);
    const how = result.exitCode !== undefined ? `exit code ${result.exitCode}` : (result.signal ?? 'killed');
    throw buildError(
      `The ${plan.binary} build failed (${how}) running: ${plan.display}\n${errors.map((l) => `    ${l}`).join('\n')}`,
      {
        hint:
          plan.tree.kind === 'checkout'
            ? 'Fix the errors above in the checkout (or check out a release tag), then run `ctrdbg build` again; the same command works by hand in the tree.'
            : 'The lab tree did not compile against the installed library source; recreate it with `ctrdbg lab up`, or run the command above by hand.',
        details: { command: plan.display, exitCode: result.exitCode, errors },
      },
    );
  }
  if (plan.producedBinary !== plan.outputBinary) {
    try {
      await copyFile(plan.producedBinary, plan.outputBinary);
    } catch (error) {
      throw buildError(`The build succeeded but ${plan.producedBinary} is missing.`, {
        hint: 'The Makefile may have put the binary elsewhere; check its bin/ rule.',
        cause: error,
      });
    }
  }
  return { durationMs, tail: lines.slice(-20) };
}

/* ------------------------------------------------------------------ the lab tree */

/** Debian's `1.6.20~ds1-1+deb12u3` → upstream `1.6.20~ds1` (epoch and Debian revision dropped). */
export function debianUpstreamVersion(debianVersion: string): string {
  const noEpoch = debianVersion.trim().replace(/^\d+:/, '');
  const dash = noEpoch.indexOf('-');
  return dash === -1 ? noEpoch : noEpoch.slice(0, dash);
}

export async function installedContainerdLibraryVersion(): Promise<string> {
  try {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax, not a JS template
    const { stdout } = await run('dpkg-query', ['-W', '-f=${Version}', DEBIAN_CONTAINERD_PACKAGE], {
      timeout: 10_000,
    });
    if (stdout.trim() === '') throw new Error('empty version');
    return stdout.trim();
  } catch (error) {
    throw environmentError(
      `The Debian package ${DEBIAN_CONTAINERD_PACKAGE} (containerd's library source) is not installed.`,
      {
        hint: `Install it (apt-get install ${DEBIAN_CONTAINERD_PACKAGE}) or run scripts/bootstrap.`,
        cause: error,
      },
    );
  }
}

/** Where a lab tree's pieces come from: the bookworm lane's system packages, or the trixie lane's prefix. */
export interface LabTreeSource {
  /** This repository's main package for the daemon. */
  mainGo: string;
  /** This repository's main package for the runc shim (`--with-shim`), for the versions that have one. */
  shimMainGo?: string;
  /** The GOPATH entry that holds containerd's library source (`<gocode>/src/github.com/containerd/…`). */
  gocode: string;
  version: string;
  revision: string;
  toolchain: LaneName;
  /** The oldest Go that builds it. */
  goVersion?: string;
}

/** The default lab's tree: Debian bookworm's installed containerd library (1.6.20) and Go 1.19. */
export async function bookwormTreeSource(): Promise<LabTreeSource> {
  const debianVersion = await installedContainerdLibraryVersion();
  const goMod = await readIfExists(join(DEBIAN_GOCODE, 'src', 'github.com/containerd/containerd/go.mod'));
  const goVersion = goMod ? parseGoMod(goMod).go : undefined;
  return {
    mainGo: join(projectRoot, 'scripts', 'lab', 'containerd-main', 'main.go'),
    gocode: DEBIAN_GOCODE,
    version: debianUpstreamVersion(debianVersion),
    revision: debianVersion,
    toolchain: 'bookworm',
    ...(goVersion ? { goVersion } : {}),
  };
}

/**
 * Writes a buildable lab tree into `dir`: the lab's main package and the marker that tells `ctrdbg build` how
 * to build it (GOPATH, -X version flags equal to the node's stock binary, the toolchain lane). Returns the
 * tree's absolute path (what --src takes). Rewriting an existing tree only refreshes these two files.
 */
export async function writeLabTree(dir: string, source?: LabTreeSource): Promise<string> {
  const root = resolve(dir);
  const from = source ?? (await bookwormTreeSource());
  const mainDir = join(root, 'src', LAB_PACKAGE);
  await mkdir(mainDir, { recursive: true });
  // Only what changed is written: an unchanged tree keeps its mtimes, so the next source sync sends nothing.
  const writeIfChanged = async (path: string, text: string) => {
    if ((await readIfExists(path)) !== text) await writeFile(path, text);
  };
  await writeIfChanged(join(mainDir, 'main.go'), await readFile(from.mainGo, 'utf8'));
  if (from.shimMainGo) {
    const shimDir = join(root, 'src', LAB_SHIM_PACKAGE);
    await mkdir(shimDir, { recursive: true });
    await writeIfChanged(join(shimDir, 'main.go'), await readFile(from.shimMainGo, 'utf8'));
  }
  const marker: LabTreeMarker = {
    format: 1,
    kind: 'gopath',
    package: LAB_PACKAGE,
    gopath: [root, from.gocode],
    ldflags: { [`${VERSION_PKG}.Version`]: from.version, [`${VERSION_PKG}.Revision`]: from.revision },
    version: from.version,
    sourceRoots: [join(root, 'src'), join(from.gocode, 'src')],
    toolchain: from.toolchain,
    ...(from.goVersion ? { goVersion: from.goVersion } : {}),
    ...(from.shimMainGo ? { shimPackage: LAB_SHIM_PACKAGE } : {}),
  };
  await writeIfChanged(join(root, LAB_TREE_MARKER), `${JSON.stringify(marker, null, 2)}\n`);
  return root;
}

/* ------------------------------------------------------------------ the Go a tree needs */

/** What a tree says about its Go: a checkout's go.mod, a lab tree's marker. */
export async function treeGoRequirement(tree: SourceTree): Promise<GoModRequirement & { from: string }> {
  if (tree.kind === 'gopath') {
    return { go: tree.marker.goVersion, toolchain: undefined, from: join(tree.root, LAB_TREE_MARKER) };
  }
  const goMod = join(tree.root, 'go.mod');
  const text = await readIfExists(goMod);
  return { ...(text ? parseGoMod(text) : { go: undefined, toolchain: undefined }), from: goMod };
}

/**
 * Refuses, before building, a Go older than the tree's go.mod asks for: one paragraph with the version needed,
 * the one found and where to get one (exit 14). A Go older than the `toolchain` line only warns.
 */
export async function checkTreeGo(tree: SourceTree, go: ResolvedTool, log: Logger): Promise<void> {
  const requirement = await treeGoRequirement(tree);
  const check = checkGoRequirement(requirement, go.version ?? '');
  const lines = [
    ...(requirement.go ? [`go ${requirement.go}`] : []),
    ...(requirement.toolchain ? [`toolchain ${requirement.toolchain}`] : []),
  ];
  if (check.ok) {
    if (check.belowSuggested)
      log.warn(
        `${requirement.from} suggests Go ${check.suggested} (\`toolchain ${requirement.toolchain}\`); building with ${check.found}, which its \`go ${requirement.go}\` line allows.`,
      );
    return;
  }
  const trixie = await readTrixieLane();
  const laneFits = trixie && checkGoRequirement(requirement, trixie.go.version).ok;
  throw toolchainError(
    `${tree.root} needs Go ${check.needed} or newer (${requirement.from}: ${lines.map((l) => `\`${l}\``).join(', ')}), but the Go ctrdbg would build it with is ${check.found} (${go.path}, ${go.why}).`,
    {
      hint: laneFits
        ? `Build with a newer Go: pass --go ${trixie.go.path} (ctrdbg's trixie lane, ${trixie.go.version}) or set CTRDBG_GO to it; any Go ${check.needed} or newer works (https://go.dev/dl).`
        : `Get Go ${check.needed} or newer (https://go.dev/dl, or Debian's golang-1.2x packages; scripts/bootstrap-trixie installs a Go 1.24 lane for ctrdbg) and pass it with --go PATH or CTRDBG_GO.`,
      details: { needed: check.needed, suggested: check.suggested, found: check.found, go: go.path },
    },
  );
}
