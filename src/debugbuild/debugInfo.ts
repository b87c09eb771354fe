import { stat } from 'node:fs/promises';
import { environmentError, inputError, wrongPlatformError } from '../errors.js';
import { sha256File } from '../util/fsx.js';

export { sha256File };

import { run } from '../util/exec.js';
import {
  ElfFormatError,
  type GoBuildInfo,
  parseGoBuildInfo,
  readBuildIds,
  SHT_SYMTAB,
  withElfFile,
} from './elf.js';
import { platformProblems, readExecutableFacts, supportedArches } from './platform.js';

export interface CompileUnit {
  name: string;
  producer: string;
}

export interface PackageFlags {
  name: string;
  /** `go1.19.8` from `Go cmd/compile go1.19.8; -N -l regabi`. */
  compiler: string;
  flags: string[];
  optimized: boolean;
}

export interface DelveSupport {
  /** `dlv version` of this machine, or undefined when dlv is not installed. */
  delveVersion: string | undefined;
  /** e.g. `1.18–1.20`; undefined when the rule does not cover this Delve. */
  supportedGo: string | undefined;
  /** undefined = unknown (no dlv, no Go version, or a Delve older than the rule covers). */
  supported: boolean | undefined;
}

export interface BinaryReport {
  path: string;
  sha256: string;
  size: number;
  arch: string;
  stripped: boolean;
  hasDwarf: boolean;
  hasSymtab: boolean;
  goVersion: string | null;
  /** GNU build ID (hex), what `file` shows as BuildID[sha1]. */
  buildId: string | null;
  goBuildId: string | null;
  /** Main package import path from the Go build info. */
  mainPackage: string | null;
  buildSettings: Record<string, string>;
  /** containerd's own packages (`github.com/containerd/…`, `main`) compiled without `-N -l`. Must be empty. */
  optimizedContainerdPackages: string[];
  /** Other Go packages compiled without `-N -l`; the runtime always is, so this is informational. */
  otherOptimizedPackages: number;
  goPackages: number;
  delve: DelveSupport;
  /** What the file is: "an ELF 64-bit executable for linux/amd64 (static)". */
  platform: string;
  /** The problems that say it cannot run on a supported Linux node (another OS, CPU or no executable). */
  platformProblems: string[];
  debuggable: boolean;
  problems: string[];
  warnings: string[];
  hint: string | null;
}

/* ------------------------------------------------------------------ DWARF producers */

/** readelf prints strings stored in .debug_str as `(indirect string, offset: 0x34): text`. */
function attributeValue(line: string): string {
  const value = line.slice(line.indexOf(':', line.indexOf('DW_AT_')) + 1).trim();
  return value.replace(/^\(indirect (?:line )?string, offset: 0x[0-9a-f]+\):\s*/, '');
}

/**
 * Pairs each compile unit's DW_AT_name with its DW_AT_producer from
 * `readelf --debug-dump=info --dwarf-depth=1` output. Units without a producer are skipped.
 */
export function parseCompileUnits(readelfOutput: string): CompileUnit[] {
  const units: CompileUnit[] = [];
  let current: { name?: string; producer?: string } | undefined;
  const flush = () => {
    if (current?.producer !== undefined) units.push({ name: current.name ?? '', producer: current.producer });
    current = undefined;
  };
  for (const line of readelfOutput.split('\n')) {
    if (line.includes('(DW_TAG_compile_unit)')) {
      flush();
      current = {};
    } else if (current && /^\s*<[0-9a-f]+>\s+DW_AT_name\s/.test(line)) {
      current.name = attributeValue(line);
    } else if (current && /^\s*<[0-9a-f]+>\s+DW_AT_producer\s/.test(line)) {
      current.producer = attributeValue(line);
    } else if (/^\s*<[1-9]\d*><[0-9a-f]+>/.test(line)) {
      // A child DIE: the unit's own attributes are over.
      flush();
    }
  }
  flush();
  return units;
}

/** `Go cmd/compile go1.19.8; -N -l regabi` → compiler and flags; undefined for non-Go producers (GNU C…). */
export function parseGoProducer(producer: string): { compiler: string; flags: string[] } | undefined {
  const match = /^Go cmd\/compile (\S+?)(?:;\s*(.*))?$/.exec(producer.trim());
  if (!match) return undefined;
  return { compiler: match[1]!, flags: (match[2] ?? '').split(/\s+/).filter(Boolean) };
}

/** Delve needs both: -N (no optimisation) keeps variables readable, -l (no inlining) keeps frames and lines. */
export function isOptimized(flags: string[]): boolean {
  return !(flags.includes('-N') && flags.includes('-l'));
}

/**
 * One entry per Go package. The Go linker may emit several units for one package (e.g. runtime's
 * assembly); a package counts as optimised if any of its units is.
 */
export function goPackageFlags(units: CompileUnit[]): PackageFlags[] {
  const byName = new Map<string, PackageFlags>();
  for (const unit of units) {
    const parsed = parseGoProducer(unit.producer);
    if (!parsed) continue;
    const optimized = isOptimized(parsed.flags);
    const seen = byName.get(unit.name);
    if (seen) {
      if (optimized && !seen.optimized) byName.set(unit.name, { name: unit.name, ...parsed, optimized });
    } else {
      byName.set(unit.name, { name: unit.name, ...parsed, optimized });
    }
  }
  return [...byName.values()];
}

/** containerd's own code: what users set breakpoints in. Vendored containerd libraries count too. */
export function isContainerdPackage(name: string): boolean {
  return name === 'main' || name.startsWith('github.com/containerd/');
}

/* ------------------------------------------------------------------ Delve ↔ Go compatibility */

/** `dlv version` prints `Version: 1.20.2`. */
export function parseDelveVersion(output: string): string | undefined {
  return /^Version:\s*(\S+)/m.exec(output)?.[1];
}

/** `go1.19.8` / `go1.21rc2` / `1.20` → minor 19 / 21 / 20. */
export function goMinor(goVersion: string): number | undefined {
  const match = /^(?:go)?1\.(\d+)/.exec(goVersion.trim());
  return match ? Number(match[1]) : undefined;
}

/**
 * The Go range a Delve release accepts. Delve checks this itself at attach time; the rule comes from
 * go-delve/delve pkg/goversion/compat.go (MinSupportedVersionOfGoMinor / MaxSupportedVersionOfGoMinor),
 * which since Delve 1.20 has moved in lockstep: Delve 1.N supports Go 1.(N-2) through 1.N. Before that Delve
 * was numbered 1.1–1.9 and release 1.M added Go 1.(M+10) (its CHANGELOG: "1.6.0 … Go 1.16 support", "1.9.0 …
 * Support for Go 1.19"), keeping the two before it from 1.6.1 on ("Dropped Go 1.13 support"); Debian bullseye's
 * Delve 1.6.1 says "maximum supported version 1.16" to a Go 1.19 binary.
 */
export function delveSupportedGoRange(delveVersion: string): { min: number; max: number } | undefined {
  const match = /^v?1\.(\d+)/.exec(delveVersion.trim());
  if (!match) return undefined;
  const minor = Number(match[1]);
  if (minor >= 20) return { min: minor - 2, max: minor };
  if (minor >= 1 && minor <= 9) return { min: minor + 8, max: minor + 10 };
  return undefined;
}

export function delveSupport(delveVersion: string | undefined, goVersion: string | undefined): DelveSupport {
  const range = delveVersion ? delveSupportedGoRange(delveVersion) : undefined;
  const minor = goVersion ? goMinor(goVersion) : undefined;
  return {
    delveVersion,
    supportedGo: range ? `1.${range.min}–1.${range.max}` : undefined,
    supported: range && minor !== undefined ? minor >= range.min && minor <= range.max : undefined,
  };
}

export async function localDelveVersion(dlv = 'dlv'): Promise<string | undefined> {
  try {
    const { stdout, exitCode } = await run(dlv, ['version'], { timeout: 10_000 });
    return exitCode === 0 ? parseDelveVersion(stdout) : undefined;
  } catch {
    return undefined;
  }
}

/* ------------------------------------------------------------------ the report */

async function readCompileUnits(path: string): Promise<CompileUnit[]> {
  try {
    const { stdout, exitCode } = await run('readelf', ['--debug-dump=info', '--dwarf-depth=1', path], {
      timeout: 60_000,
      maxBuffer: 256 * 1024 * 1024,
      // readelf warns about Go's non-standard attributes on stderr; they are harmless.
      stderr: 'ignore',
    });
    if (exitCode !== 0) throw new Error(`readelf exited with ${exitCode}`);
    return parseCompileUnits(stdout);
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') {
      throw environmentError('readelf is not installed; it is needed to read the DWARF compile units.', {
        hint: 'Install binutils (apt-get install binutils) and retry.',
        cause: error,
      });
    }
    throw error;
  }
}

export interface InspectOptions {
  /** The architecture the caller needs (a node's); a different one is a problem. */
  expectedArch?: string;
  /** Skips running `dlv version` (tests, or when the caller already knows). */
  delveVersion?: string | null;
}

export const notDebuggableHint =
  'Build a debug binary with `ctrdbg build --src <containerd checkout>` (it runs `make GODEBUG=1 GO_GCFLAGS= bin/containerd`), ' +
  'or by hand with `go build -gcflags=all="-N -l"` and without `-ldflags "-s -w"`.';

export async function inspectBinary(path: string, options: InspectOptions = {}): Promise<BinaryReport> {
  let size: number;
  try {
    const info = await stat(path);
    if (!info.isFile())
      throw inputError(`${path} is not a regular file.`, { hint: 'Pass the path of a containerd binary.' });
    size = info.size;
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') {
      throw inputError(`${path} does not exist.`, {
        hint: 'Pass the path of a containerd binary.',
        cause: error,
      });
    }
    throw error;
  }

  const facts = await readExecutableFacts(path);
  if (facts.format !== 'elf') {
    throw wrongPlatformError(
      `${path} is ${facts.description}, not a Linux executable: ctrdbg debugs containerd on ${supportedArches.map((a) => `linux/${a}`).join(' and ')} nodes.`,
      {
        hint: 'Pass a Linux containerd binary (the node’s own, or the output of `ctrdbg build --arch amd64|arm64`, which cross-builds one from macOS or Linux).',
        details: { facts },
      },
    );
  }

  let elfFacts: {
    arch: string;
    hasSymtab: boolean;
    hasDwarf: boolean;
    buildIds: { gnu: string | undefined; go: string | undefined };
    buildInfo: GoBuildInfo | undefined;
  };
  try {
    elfFacts = await withElfFile(path, async (elf) => {
      const buildInfoSection = elf.section('.go.buildinfo');
      return {
        arch: elf.header.arch,
        hasSymtab: elf.sections.some((s) => s.type === SHT_SYMTAB && s.name === '.symtab'),
        // Go ≤ 1.21 writes compressed DWARF as .zdebug_*; later releases use SHF_COMPRESSED .debug_*.
        hasDwarf: elf.sections.some((s) => s.name === '.debug_info' || s.name === '.zdebug_info'),
        buildIds: await readBuildIds(elf),
        buildInfo: buildInfoSection
          ? await parseGoBuildInfo(await elf.readSection(buildInfoSection), elf.readVirtual)
          : undefined,
      };
    });
  } catch (error) {
    if (error instanceof ElfFormatError) {
      throw inputError(`${path} is not a usable ELF binary: ${error.message}.`, {
        hint: 'Pass a Linux containerd binary (e.g. /usr/bin/containerd or the output of `ctrdbg build`).',
        cause: error,
      });
    }
    throw error;
  }

  const [sha256, units, delveVersion] = await Promise.all([
    sha256File(path),
    elfFacts.hasDwarf ? readCompileUnits(path) : Promise.resolve([]),
    options.delveVersion !== undefined
      ? Promise.resolve(options.delveVersion ?? undefined)
      : localDelveVersion(),
  ]);

  const packages = goPackageFlags(units);
  const optimizedContainerd = packages
    .filter((p) => p.optimized && isContainerdPackage(p.name))
    .map((p) => p.name);
  const otherOptimized = packages.filter((p) => p.optimized && !isContainerdPackage(p.name)).length;
  const goVersion = elfFacts.buildInfo?.goVersion;
  const delve = delveSupport(delveVersion, goVersion);
  const stripped = !elfFacts.hasSymtab && !elfFacts.hasDwarf;

  const problems: string[] = [];
  const warnings: string[] = [];
  if (stripped)
    problems.push('the binary is stripped: it has no symbol table (.symtab) and no DWARF debug info');
  else if (!elfFacts.hasDwarf)
    problems.push('the binary has no DWARF debug info (.debug_info); it was linked with -w');
  if (!goVersion) problems.push('no Go build info (.go.buildinfo): this is not a Go binary');
  if (elfFacts.hasDwarf && packages.length === 0) problems.push('the DWARF info names no Go compile units');
  if (optimizedContainerd.length > 0) {
    const shown = optimizedContainerd.slice(0, 5).join(', ');
    const more = optimizedContainerd.length > 5 ? ` and ${optimizedContainerd.length - 5} more` : '';
    problems.push(
      `${optimizedContainerd.length} containerd package(s) were compiled without -N -l (optimised): ${shown}${more}`,
    );
  }
  const platform = platformProblems(facts, { goArch: facts.arch ?? '' }, 'the binary');
  if (options.expectedArch && elfFacts.arch !== options.expectedArch) {
    platform.push(`the binary is for ${elfFacts.arch}, not ${options.expectedArch}`);
  }
  problems.push(...platform);
  if (delve.delveVersion === undefined)
    warnings.push('dlv is not installed here, so Go version support was not checked');
  else if (delve.supported === false) {
    warnings.push(`the local Delve ${delve.delveVersion} supports Go ${delve.supportedGo}, not ${goVersion}`);
  }

  let hint: string | undefined;
  if (problems.length > 0) {
    hint =
      options.expectedArch && elfFacts.arch !== options.expectedArch && problems.length === 1
        ? `Build for the node's architecture: \`ctrdbg build --arch ${options.expectedArch}\`.`
        : platform.length > 0 && platform.length === problems.length
          ? `ctrdbg debugs containerd built for ${supportedArches.map((a) => `linux/${a}`).join(' or ')}: build one with \`ctrdbg build --arch ${supportedArches.join('|')}\`.`
          : notDebuggableHint;
  } else if (delve.supported === false) {
    hint = `Use a Delve release that supports ${goVersion}, or build containerd with a Go in ${delve.supportedGo}.`;
  }

  return {
    path,
    sha256,
    size,
    arch: elfFacts.arch,
    stripped,
    hasDwarf: elfFacts.hasDwarf,
    hasSymtab: elfFacts.hasSymtab,
    goVersion: goVersion ?? null,
    buildId: elfFacts.buildIds.gnu ?? null,
    goBuildId: elfFacts.buildIds.go ?? null,
    mainPackage: elfFacts.buildInfo?.path ?? null,
    buildSettings: elfFacts.buildInfo?.settings ?? {},
    optimizedContainerdPackages: optimizedContainerd,
    otherOptimizedPackages: otherOptimized,
    goPackages: packages.length,
    delve,
    platform: facts.description,
    platformProblems: platform,
    debuggable: problems.length === 0,
    problems,
    warnings,
    hint: hint ?? null,
  };
}
