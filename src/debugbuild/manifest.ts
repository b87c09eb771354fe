/**
 * The build manifest: a versioned JSON file beside each built binary (`containerd.manifest.json`) that
 * says exactly what was built, from which tree, how, and whether it verified. `setup` ships it with the
 * binary and session headers embed it, so a recording can always be traced back to its source.
 */
import { readFile, realpath, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { inputError } from '../errors.js';
import { run } from '../util/exec.js';
import type { BinaryReport } from './debugInfo.js';

export const MANIFEST_FORMAT = 'ctrdbg-build-manifest';
export const MANIFEST_VERSION = 1;

export interface GitState {
  commit: string;
  dirty: boolean;
  /** `git describe --match 'v[0-9]*' --dirty=.m --always`, what containerd's Makefile stamps as the version. */
  describe: string | null;
}

export interface ContainerdVersion {
  /** e.g. `1.6.20~ds1` */
  version: string | null;
  revision: string | null;
  /** The full `containerd --version` line when the binary was run. */
  line: string | null;
  /** Where the version came from: the built binary, the lab tree's -ldflags, or `git describe`. */
  source: 'binary' | 'ldflags' | 'git-describe' | 'unknown';
}

export interface BuildManifest {
  format: typeof MANIFEST_FORMAT;
  formatVersion: typeof MANIFEST_VERSION;
  ctrdbgVersion: string;
  binary: {
    /** Absolute path at build time; the manifest's own directory is the reliable anchor after copies. */
    path: string;
    fileName: string;
    sha256: string;
    size: number;
    arch: string;
    goVersion: string | null;
    buildId: string | null;
  };
  containerd: ContainerdVersion;
  source: {
    kind: 'checkout' | 'gopath';
    root: string;
    /** Absolute directories holding the sources the DWARF paths point into (Delve's substitute-path targets). */
    sourceRoots: string[];
    package: string | null;
    git: GitState | null;
  };
  command: {
    display: string;
    file: string;
    args: string[];
    cwd: string;
    env: Record<string, string>;
  };
  /** Which go built it and which dlv the verification asked, and why each (src/debugbuild/toolchain.ts). */
  toolchain?: {
    go: ToolRecord;
    dlv?: ToolRecord;
  };
  builtAt: string;
  durationMs: number;
  verification: BinaryReport;
}

export interface ToolRecord {
  path: string;
  version: string | null;
  source: string;
  why: string;
}

const manifestSchema = z.looseObject({
  format: z.literal(MANIFEST_FORMAT),
  formatVersion: z.literal(MANIFEST_VERSION),
  ctrdbgVersion: z.string(),
  binary: z.looseObject({
    path: z.string(),
    fileName: z.string(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    size: z.number().int().nonnegative(),
    arch: z.string(),
  }),
  containerd: z.looseObject({ source: z.string() }),
  source: z.looseObject({
    kind: z.enum(['checkout', 'gopath']),
    root: z.string(),
    sourceRoots: z.array(z.string()),
  }),
  command: z.looseObject({ display: z.string(), file: z.string(), args: z.array(z.string()) }),
  builtAt: z.string(),
  verification: z.looseObject({ debuggable: z.boolean() }),
});

/** `…/containerd` → `…/containerd.manifest.json`. */
export function manifestPathFor(binaryPath: string): string {
  return join(dirname(binaryPath), `${basename(binaryPath)}.manifest.json`);
}

export async function writeManifest(
  manifest: BuildManifest,
  path = manifestPathFor(manifest.binary.path),
): Promise<string> {
  // Written beside and renamed so a reader never sees half a manifest.
  const temporary = `${path}.tmp-${process.pid}`;
  await writeFile(temporary, `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o644 });
  await rename(temporary, path);
  return path;
}

/** Reads a manifest; given a binary's path, reads the manifest beside it. */
export async function readManifest(path: string): Promise<BuildManifest> {
  const file = path.endsWith('.json') ? path : manifestPathFor(path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw inputError(`No build manifest at ${file}.`, {
      hint: 'Build the binary with `ctrdbg build`, which writes containerd.manifest.json beside it.',
      cause: error,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw inputError(`${file} is not valid JSON.`, {
      hint: 'Rebuild with `ctrdbg build` to rewrite it.',
      cause: error,
    });
  }
  const result = manifestSchema.safeParse(parsed);
  if (!result.success) {
    const format = (parsed as { format?: unknown; formatVersion?: unknown } | null) ?? {};
    const newer =
      format.format === MANIFEST_FORMAT &&
      typeof format.formatVersion === 'number' &&
      format.formatVersion > MANIFEST_VERSION;
    throw inputError(
      newer
        ? `${file} is a version ${String(format.formatVersion)} build manifest; this ctrdbg reads version ${MANIFEST_VERSION}.`
        : `${file} is not a ctrdbg build manifest: ${result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}.`,
      { hint: newer ? 'Upgrade ctrdbg.' : 'Rebuild with `ctrdbg build` to rewrite it.' },
    );
  }
  return result.data as unknown as BuildManifest;
}

/** Commit and dirty flag of a git checkout; undefined when `dir` is not one (or git is missing). */
export async function gitState(dir: string): Promise<GitState | undefined> {
  const git = (args: string[]) => run('git', ['-C', dir, ...args], { timeout: 15_000 });
  const head = await git(['rev-parse', '--verify', 'HEAD']).catch(() => undefined);
  if (head?.exitCode !== 0) return undefined;
  const top = await git(['rev-parse', '--show-toplevel']);
  // A lab tree inside some other repository is not "a git checkout of containerd".
  if (top.exitCode !== 0 || String(top.stdout).trim() !== (await realpath(dir))) return undefined;
  const status = await git(['status', '--porcelain', '--untracked-files=no']);
  const describe = await git(['describe', '--match', 'v[0-9]*', '--dirty=.m', '--always']);
  return {
    commit: String(head.stdout).trim(),
    dirty: String(status.stdout).trim() !== '',
    describe: describe.exitCode === 0 ? String(describe.stdout).trim() : null,
  };
}

/** `containerd ctrdbg.lab/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3` → version and revision. */
export function parseContainerdVersionLine(line: string): Pick<ContainerdVersion, 'version' | 'revision'> {
  const words = line.trim().split(/\s+/);
  // containerd prints: <name> <package> <version> [<revision>]
  return { version: words[2] ?? null, revision: words[3] ?? null };
}

/** Runs the built binary's `--version` (only possible for the local arch). */
export async function runContainerdVersion(binary: string): Promise<ContainerdVersion | undefined> {
  const result = await run(binary, ['--version'], { timeout: 15_000 }).catch(() => undefined);
  if (result?.exitCode !== 0) return undefined;
  const line = String(result.stdout).trim().split('\n')[0] ?? '';
  return { ...parseContainerdVersionLine(line), line, source: 'binary' };
}

/**
 * A shim's `-v` (containerd-shim-runc-v2 has no --version): `NAME:\n  Version:  1.7.24~ds1\n  Revision: …\n  Go
 * version: go1.24.4`. The line is the same facts on one line, `containerd-shim-runc-v2 1.7.24~ds1 REVISION`.
 */
export function parseShimVersion(output: string): ContainerdVersion | undefined {
  const version = /^\s*Version:\s*(\S+)/m.exec(output)?.[1];
  if (!version) return undefined;
  const revision = /^\s*Revision:\s*(\S+)/m.exec(output)?.[1] ?? null;
  return {
    version,
    revision,
    line: ['containerd-shim-runc-v2', version, revision].filter(Boolean).join(' '),
    source: 'binary',
  };
}

export async function runShimVersion(binary: string): Promise<ContainerdVersion | undefined> {
  const result = await run(binary, ['-v'], { timeout: 15_000 }).catch(() => undefined);
  if (result?.exitCode !== 0) return undefined;
  return parseShimVersion(String(result.stdout));
}
