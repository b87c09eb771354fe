/**
 * Where Delve's source comes from when ctrdbg builds a dlv for a node. Three kinds of tree, told apart by what
 * they carry:
 *  - a prepared GOPATH tree (`ctrdbg-delve-src.json`, written by scripts/bootstrap-delve): Debian's delve source
 *    with the golang-*-dev packages its Build-Depends name, built with GO111MODULE=off;
 *  - a Delve tree with `vendor/` (an upstream git checkout): built with -mod=vendor, offline;
 *  - any other Delve tree (Debian's orig tarball unpacked by hand, a module from the cache): GOPATH mode when the
 *    packaged dependencies are installed in /usr/share/gocode, else module mode with the user's own module
 *    cache and GOPROXY;
 * and, with no tree given, Delve's module fetched through the module cache / proxy the user's Go already uses.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, realpath, stat, symlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { cacheDir, toolchainDir } from '../config.js';
import { inputError } from '../errors.js';
import { run } from '../util/exec.js';
import { exists } from '../util/fsx.js';
import { delveSupport } from './debugInfo.js';
import { checkGoRequirement, parseGoMod } from './goVersion.js';
import type { ResolvedTool } from './toolchain.js';

export const DELVE_MODULE = 'github.com/go-delve/delve';
export const DLV_PACKAGE = 'github.com/go-delve/delve/cmd/dlv';
export const DELVE_SOURCE_MARKER = 'ctrdbg-delve-src.json';
/** Where Debian installs golang-*-dev packages system-wide. */
export const SYSTEM_GOCODE = '/usr/share/gocode';

export type DelveSourceKind = 'gopath' | 'vendor' | 'module';

export interface DelveSource {
  kind: DelveSourceKind;
  /** The Delve tree itself (holds cmd/dlv and pkg/version). */
  delveDir: string;
  /** GOPATH mode: the GOPATH, the entry that holds the Delve tree first. */
  gopath?: string[];
  /** Delve's version, from pkg/version/version.go: `1.20.2`. */
  version: string;
  /** The `go` line of Delve's go.mod: the oldest Go that builds it. */
  goVersion: string | undefined;
  /** Said in the "why" line: "Debian bookworm's delve 1.20.2-1+deb12u1 source with its patches". */
  origin: string;
}

const markerSchema = z.object({
  format: z.literal(1),
  kind: z.literal('gopath'),
  package: z.string(),
  root: z.string(),
  delveDir: z.string(),
  gopath: z.array(z.string()).min(1),
  version: z.string(),
  goVersion: z.string().optional(),
  origin: z.string(),
});

/** `Major: "1", Minor: "20", Patch: "2", Metadata: ""` in pkg/version/version.go → `1.20.2`. */
export function parseDelveSourceVersion(versionGo: string): string | undefined {
  const field = (name: string) => new RegExp(`\\b${name}:\\s*"([^"]*)"`).exec(versionGo)?.[1];
  const [major, minor, patch] = [field('Major'), field('Minor'), field('Patch')];
  if (!major || !minor || patch === undefined) return undefined;
  const metadata = field('Metadata');
  return `${major}.${minor}.${patch}${metadata ? `-${metadata}` : ''}`;
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

async function readMarker(root: string): Promise<DelveSource | undefined> {
  const text = await readText(join(root, DELVE_SOURCE_MARKER));
  if (text === undefined) return undefined;
  let parsed: z.infer<typeof markerSchema>;
  try {
    parsed = markerSchema.parse(JSON.parse(text));
  } catch (cause) {
    throw inputError(`${join(root, DELVE_SOURCE_MARKER)} is not a valid Delve source marker.`, {
      hint: 'Recreate it with scripts/bootstrap-delve (remove the directory first).',
      cause,
    });
  }
  return {
    kind: 'gopath',
    delveDir: parsed.delveDir,
    gopath: parsed.gopath,
    version: parsed.version,
    goVersion: parsed.goVersion,
    origin: parsed.origin,
  };
}

/** The GOPATH entry a tree already sits in (`<entry>/src/github.com/go-delve/delve`), if it does. */
function enclosingGopath(delveDir: string): string | undefined {
  const suffix = `/src/${DELVE_MODULE}`;
  return delveDir.endsWith(suffix) ? delveDir.slice(0, -suffix.length) : undefined;
}

/** The packaged dependencies Debian's source builds against, when installed system-wide. */
async function systemGocodeHasDelveDeps(gocode: string): Promise<boolean> {
  const needed = ['github.com/spf13/cobra', 'github.com/go-delve/liner', 'github.com/google/go-dap'];
  for (const pkg of needed) if (!(await isDir(join(gocode, 'src', pkg)))) return false;
  return true;
}

/**
 * A GOPATH entry whose `src/github.com/go-delve/delve` is the tree: the tree's own when it sits in one, else a
 * symlink in ctrdbg's cache (the tree is never written to).
 */
async function gopathFor(delveDir: string): Promise<string> {
  const own = enclosingGopath(delveDir);
  if (own) return own;
  const entry = join(
    cacheDir(),
    'dlv',
    'gopath',
    createHash('sha256').update(delveDir).digest('hex').slice(0, 12),
  );
  const link = join(entry, 'src', DELVE_MODULE);
  if (!(await exists(link))) {
    await mkdir(dirname(link), { recursive: true });
    await symlink(delveDir, link).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
  }
  return entry;
}

/** Reads `--dlv-src DIR`: which kind of Delve tree it is, its version, and how it will be built. */
export async function detectDelveSource(
  dir: string,
  options: { systemGocode?: string; flag?: string } = {},
): Promise<DelveSource> {
  const flag = options.flag ?? '--dlv-src';
  const given = resolve(dir);
  if (!(await isDir(given))) {
    throw inputError(`${flag} ${dir} is not a directory.`, {
      hint: 'Pass the root of a Delve source tree: a git checkout of github.com/go-delve/delve, or Debian’s delve source (scripts/bootstrap-delve puts one in <toolchains>/delve-src/bookworm).',
    });
  }
  const root = await realpath(given);
  const marked =
    (await readMarker(root)) ??
    (enclosingGopath(root) ? await readMarker(enclosingGopath(root)!) : undefined);
  if (marked) return marked;
  const versionGo = await readText(join(root, 'pkg/version/version.go'));
  const isDelve = versionGo !== undefined && (await exists(join(root, 'cmd/dlv/main.go')));
  if (!isDelve) {
    throw inputError(
      `${flag} ${dir} is not a Delve source tree: it has no cmd/dlv/main.go and pkg/version/version.go.`,
      {
        hint: 'Pass the root of a Delve source tree: a git checkout of github.com/go-delve/delve, or Debian’s delve source (scripts/bootstrap-delve puts one in <toolchains>/delve-src/bookworm).',
      },
    );
  }
  const version = parseDelveSourceVersion(versionGo);
  if (!version) {
    throw inputError(`${join(root, 'pkg/version/version.go')} does not say which Delve this is.`, {
      hint: 'Pass an unmodified Delve source tree.',
    });
  }
  const goMod = await readText(join(root, 'go.mod'));
  const goVersion = goMod ? parseGoMod(goMod).go : undefined;
  if (await exists(join(root, 'vendor/modules.txt'))) {
    return {
      kind: 'vendor',
      delveDir: root,
      version,
      goVersion,
      origin: `${flag} ${root} (Delve ${version}, vendored)`,
    };
  }
  const systemGocode = options.systemGocode ?? SYSTEM_GOCODE;
  if (await systemGocodeHasDelveDeps(systemGocode)) {
    return {
      kind: 'gopath',
      delveDir: root,
      gopath: [await gopathFor(root), systemGocode],
      version,
      goVersion,
      origin: `${flag} ${root} (Delve ${version}, against the golang-*-dev packages in ${systemGocode})`,
    };
  }
  return {
    kind: 'module',
    delveDir: root,
    version,
    goVersion,
    origin: `${flag} ${root} (Delve ${version}, dependencies from Go's module cache / GOPROXY)`,
  };
}

/** The Delve sources scripts/bootstrap-delve prepared on this machine, newest first. */
export async function knownDelveSources(): Promise<DelveSource[]> {
  const base = join(toolchainDir(), 'delve-src');
  let names: string[];
  try {
    names = await readdir(base);
  } catch {
    return [];
  }
  const found: DelveSource[] = [];
  // The keyed directories, not their `bookworm` symlinks, so each source counts once.
  for (const name of names.filter((n) => n.includes('-') && !n.endsWith('.tmp'))) {
    const source = await readMarker(join(base, name)).catch(() => undefined);
    if (source) found.push(source);
  }
  return found.sort((a, b) => compareDelveVersions(b.version, a.version));
}

/* ------------------------------------------------------------------ the module route (pure parts first) */

const semver = (v: string) => /^v?(\d+)\.(\d+)\.(\d+)$/.exec(v.trim());

export function compareDelveVersions(a: string, b: string): number {
  const x = semver(a);
  const y = semver(b);
  if (!x || !y) return a.localeCompare(b);
  for (let i = 1; i <= 3; i++) if (Number(x[i]) !== Number(y[i])) return Number(x[i]) - Number(y[i]);
  return 0;
}

/**
 * The Delve releases worth trying for a binary built with `goVersion`, best first: those that support it, the
 * ones already in the module cache before the ones that need a download, newest first within each.
 */
export function moduleVersionsToTry(
  available: { version: string; cached: boolean }[],
  goVersion: string | undefined,
): string[] {
  const byVersion = new Map<string, boolean>();
  for (const a of available)
    if (semver(a.version)) byVersion.set(a.version, (byVersion.get(a.version) ?? false) || a.cached);
  return [...byVersion.entries()]
    .filter(
      ([v]) => goVersion === undefined || delveSupport(v.replace(/^v/, ''), goVersion).supported === true,
    )
    .sort(([va, ca], [vb, cb]) => (ca === cb ? compareDelveVersions(vb, va) : ca ? -1 : 1))
    .map(([v]) => v);
}

export interface ModuleRouteResult {
  source?: DelveSource;
  /** Why there is none, for the error: "GOPROXY=off and the module cache holds no Delve". */
  unavailable?: string;
}

/** Delve's versions in the module cache: `<GOMODCACHE>/cache/download/github.com/go-delve/delve/@v/*.zip`. */
async function cachedModuleVersions(gomodcache: string): Promise<string[]> {
  try {
    const dir = join(gomodcache, 'cache/download', DELVE_MODULE, '@v');
    return (await readdir(dir)).filter((f) => f.endsWith('.zip')).map((f) => basename(f, '.zip'));
  } catch {
    return [];
  }
}

/**
 * Delve from the module cache or the proxy the user's Go already uses (`go list -m -versions`, `go mod download`),
 * with the user's own GOPROXY, GOFLAGS and GONOSUMDB; a version whose go.mod needs a newer Go than `go` is skipped.
 */
export async function moduleDelveSource(
  go: ResolvedTool,
  goVersion: string | undefined,
): Promise<ModuleRouteResult> {
  const env = {
    GO111MODULE: 'on',
    ...(go.version && /^go1\.(2[1-9]|[3-9]\d)/.test(go.version) ? { GOTOOLCHAIN: 'local' } : {}),
  };
  // Outside any module, so a go.mod in the current directory does not take part.
  const cwd = cacheDir();
  await mkdir(cwd, { recursive: true });
  const gomodcache = (await run(go.path, ['env', 'GOMODCACHE'], { env, timeout: 20_000 })).stdout.trim();
  const cached = gomodcache ? await cachedModuleVersions(gomodcache) : [];
  const listed = await run(go.path, ['list', '-m', '-versions', '-json', DELVE_MODULE], {
    cwd,
    env,
    timeout: 60_000,
  });
  let proxied: string[] = [];
  let proxyNote = '';
  if (listed.exitCode === 0) {
    try {
      proxied = (JSON.parse(listed.stdout) as { Versions?: string[] }).Versions ?? [];
    } catch {
      proxyNote = 'go list -m -versions printed no JSON';
    }
  } else {
    proxyNote = (listed.stderr || listed.stdout).trim().split('\n').slice(-1)[0] ?? `exit ${listed.exitCode}`;
  }
  const candidates = moduleVersionsToTry(
    [
      ...cached.map((version) => ({ version, cached: true })),
      ...proxied.map((version) => ({ version, cached: false })),
    ],
    goVersion,
  );
  const where = `the module cache (${gomodcache || 'unknown'})${proxyNote ? ` and the proxy (${proxyNote})` : ' and the proxy'}`;
  if (candidates.length === 0) {
    return {
      unavailable:
        cached.length + proxied.length === 0
          ? `${where} have no ${DELVE_MODULE}`
          : `no ${DELVE_MODULE} release in ${where} supports ${goVersion}`,
    };
  }
  const skipped: string[] = [];
  for (const version of candidates.slice(0, 4)) {
    const dl = await run(go.path, ['mod', 'download', '-json', `${DELVE_MODULE}@${version}`], {
      cwd,
      env,
      timeout: 300_000,
    });
    let info: { Dir?: string; GoMod?: string; Error?: string } = {};
    try {
      info = JSON.parse(dl.stdout) as typeof info;
    } catch {
      info = { Error: (dl.stderr || dl.stdout).trim() };
    }
    if (!info.Dir || info.Error) {
      skipped.push(`${version}: ${info.Error ?? 'not downloaded'}`);
      continue;
    }
    const goModText = info.GoMod ? await readText(info.GoMod) : undefined;
    const needs = goModText ? parseGoMod(goModText).go : undefined;
    if (needs && !checkGoRequirement({ go: needs, toolchain: undefined }, go.version ?? '').ok) {
      skipped.push(`${version} needs Go ${needs}`);
      continue;
    }
    const delveDir = info.Dir;
    const versionGo = await readText(join(delveDir, 'pkg/version/version.go'));
    return {
      source: {
        kind: 'module',
        delveDir,
        version: (versionGo && parseDelveSourceVersion(versionGo)) || version.replace(/^v/, ''),
        goVersion: needs,
        origin: `${DELVE_MODULE}@${version} from Go's module cache / GOPROXY`,
      },
    };
  }
  return { unavailable: `no usable ${DELVE_MODULE} release: ${skipped.join('; ')}` };
}

/** One sentence on getting a source, for hints. */
export function delveSourceHint(): string {
  return `Pass --dlv-src DIR: a Delve checkout (git clone https://github.com/go-delve/delve), or Debian's delve source with its packaged dependencies, which scripts/bootstrap-delve puts in ${join(toolchainDir(), 'delve-src', 'bookworm')}`;
}
