/**
 * Where ctrdbg keeps its files. Every location can be moved with an environment variable so tests and
 * several labs never share state by accident.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository (or installed package) root: holds breakpoint-sets/ and scripts/. */
export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** User config: the remembered target and similar small state. */
export function configDir(): string {
  if (process.env.CTRDBG_CONFIG_DIR) return process.env.CTRDBG_CONFIG_DIR;
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'ctrdbg');
}

/** Build outputs (`ctrdbg build` without --out). */
export function cacheDir(): string {
  if (process.env.CTRDBG_CACHE_DIR) return process.env.CTRDBG_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'ctrdbg');
}

/**
 * Labs live outside any home directory: the lab's SSH user must be able to traverse to its authorized_keys,
 * and sshd's StrictModes wants root-owned, non-writable parents.
 */
export function labRoot(): string {
  return process.env.CTRDBG_LAB_ROOT || '/var/lib/ctrdbg/labs';
}

/**
 * Toolchain lanes (scripts/bootstrap-trixie): Debian trixie's Go, Delve and containerd unpacked into a private
 * prefix. Root keeps them beside the labs, anyone else in their cache; the same rule as the script's.
 */
export function toolchainDir(): string {
  if (process.env.CTRDBG_TOOLCHAIN_DIR) return process.env.CTRDBG_TOOLCHAIN_DIR;
  if (process.getuid?.() === 0) return '/var/lib/ctrdbg/toolchains';
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'ctrdbg', 'toolchains');
}

/** The user's settings file (`<config dir>/config.json`), e.g. `{"go": "/opt/go/bin/go", "dlv": "…"}`. */
export function userConfigFile(): string {
  return join(configDir(), 'config.json');
}

export const breakpointSetsDir = join(projectRoot, 'breakpoint-sets');
export const scriptsDir = join(projectRoot, 'scripts');
