/**
 * Which `go` builds containerd and which `dlv` goes to the node, and why — said out loud, because the two
 * lanes on these machines cannot stand in for each other: Delve 1.20 cannot debug Go 1.24 binaries, Delve 1.24
 * cannot debug Go 1.19 ones, and Go 1.19 cannot read a go.mod that says `go 1.24.3`.
 *
 * The order a user would expect:
 *   1. an explicit choice: `--go` / `--dlv`, else `$CTRDBG_GO` / `$CTRDBG_DLV`, else `go` / `dlv` in
 *      `<config dir>/config.json`;
 *   2. a lab picks its own lane (the default lab: bookworm's Go 1.19 + Delve 1.20.2; the CRI lab: trixie's
 *      Go 1.24 + Delve 1.24, from scripts/bootstrap-trixie);
 *   3. otherwise whatever is first on PATH.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { toolchainDir, userConfigFile } from '../config.js';
import { environmentError, inputError } from '../errors.js';
import { run } from '../util/exec.js';
import { exists, findOnPath, isExecutableFile } from '../util/fsx.js';
import { delveSupport, parseDelveVersion } from './debugInfo.js';

export type ToolName = 'go' | 'dlv';
export type ToolSource = 'flag' | 'env' | 'config' | 'lane' | 'path';
export type LaneName = 'bookworm' | 'trixie';
export const laneNames: readonly LaneName[] = ['bookworm', 'trixie'];

export const TOOL_ENV: Record<ToolName, string> = { go: 'CTRDBG_GO', dlv: 'CTRDBG_DLV' };
const TOOL_FLAG: Record<ToolName, string> = { go: '--go', dlv: '--dlv' };

/* ------------------------------------------------------------------ choosing (pure) */

export interface ToolCandidates {
  flag?: string | undefined;
  env?: string | undefined;
  config?: string | undefined;
  /** The lane a lab (or a lab tree) asks for, with that lane's path for the tool. */
  lane?: { name: LaneName; path: string } | undefined;
  /** What PATH resolves the tool's name to. */
  onPath?: string | undefined;
}

export interface ToolChoice {
  tool: ToolName;
  path: string;
  source: ToolSource;
  lane?: LaneName;
  /** Why this one, for the "using …" line: "--go", "$CTRDBG_DLV", "the trixie lane, the lab's own", … */
  why: string;
}

/** Picks one candidate in the documented order; undefined when there is none at all. */
export function chooseTool(tool: ToolName, c: ToolCandidates): ToolChoice | undefined {
  if (c.flag) return { tool, path: c.flag, source: 'flag', why: TOOL_FLAG[tool] };
  if (c.env) return { tool, path: c.env, source: 'env', why: `$${TOOL_ENV[tool]}` };
  if (c.config) return { tool, path: c.config, source: 'config', why: `"${tool}" in ${userConfigFile()}` };
  if (c.lane)
    return {
      tool,
      path: c.lane.path,
      source: 'lane',
      lane: c.lane.name,
      why: `the ${c.lane.name} lane, the lab's own`,
    };
  if (c.onPath) return { tool, path: c.onPath, source: 'path', why: 'first on PATH' };
  return undefined;
}

/** True when the user named the tool (flag, environment or config): ctrdbg then never swaps it. */
export const isExplicit = (choice: ToolChoice) =>
  choice.source === 'flag' || choice.source === 'env' || choice.source === 'config';

/* ------------------------------------------------------------------ lanes */

/** scripts/bootstrap-trixie's `lane.json`. */
export interface TrixieLane {
  format: 1;
  lane: 'trixie';
  key: string;
  root: string;
  createdAt: string;
  go: { path: string; version: string };
  dlv: { path: string; version: string };
  containerd: {
    binary: string;
    shim: string;
    ctr: string;
    version: string;
    revision: string;
    line: string;
    shimVersion: string;
  };
  gocode: string;
  /** The `go` line of the packaged containerd library's go.mod. */
  containerdGoMod: string;
  timings: {
    updateMs: number;
    downloadMs: number;
    unpackMs: number;
    downloadedDebs: number;
    debBytes: number;
  };
  packages: { name: string; version: string }[];
}

/** Bookworm's own packages (scripts/bootstrap installs them): the 1.6.20 lane. */
export const BOOKWORM_LANE = { go: '/usr/bin/go', dlv: '/usr/bin/dlv' } as const;

export const trixieLaneDir = () => join(toolchainDir(), 'trixie');

export async function readTrixieLane(): Promise<TrixieLane | undefined> {
  try {
    return JSON.parse(await readFile(join(trixieLaneDir(), 'lane.json'), 'utf8')) as TrixieLane;
  } catch {
    return undefined;
  }
}

export async function requireTrixieLane(why: string): Promise<TrixieLane> {
  const lane = await readTrixieLane();
  if (!lane) {
    throw environmentError(
      `${why} needs the trixie toolchain lane (Go 1.24, Delve 1.24, containerd 1.7.24 and its source), which is not installed in ${toolchainDir()}.`,
      {
        hint: 'Install it with scripts/bootstrap-trixie (make deps runs it): about 170 MB from Debian’s archive, unpacked into a private prefix; nothing on the system changes.',
      },
    );
  }
  return lane;
}

/** The path a lane gives for a tool; undefined when that lane is not installed. */
export async function lanePath(lane: LaneName, tool: ToolName): Promise<string | undefined> {
  if (lane === 'bookworm') return (await exists(BOOKWORM_LANE[tool])) ? BOOKWORM_LANE[tool] : undefined;
  const trixie = await readTrixieLane();
  return trixie ? trixie[tool].path : undefined;
}

/* ------------------------------------------------------------------ resolving (reads the machine) */

export interface ResolvedTool extends ToolChoice {
  /** `go1.24.4` or Delve's `1.24.0`; undefined when the tool did not say. */
  version: string | undefined;
}

async function readUserConfig(): Promise<Partial<Record<ToolName, string>>> {
  let text: string;
  try {
    text = await readFile(userConfigFile(), 'utf8');
  } catch {
    return {};
  }
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    const pick = (k: ToolName) => (typeof parsed[k] === 'string' ? (parsed[k] as string) : undefined);
    return { go: pick('go'), dlv: pick('dlv') };
  } catch (error) {
    throw inputError(`${userConfigFile()} is not valid JSON.`, {
      hint: 'Fix it, e.g. {"go": "/usr/lib/go-1.24/bin/go", "dlv": "/usr/bin/dlv"}, or remove it.',
      cause: error,
    });
  }
}

export async function toolVersion(tool: ToolName, path: string): Promise<string | undefined> {
  if (tool === 'go') {
    const r = await run(path, ['env', 'GOVERSION'], { timeout: 20_000, env: { GOTOOLCHAIN: 'local' } });
    if (r.exitCode === 0 && r.stdout.trim().startsWith('go')) return r.stdout.trim();
    const v = await run(path, ['version'], { timeout: 20_000 });
    return /\bgo(\d+\.\d+\S*)/.exec(v.stdout)?.[0];
  }
  const r = await run(path, ['version'], { timeout: 20_000 });
  return parseDelveVersion(r.stdout);
}

export interface ResolveToolOptions {
  /** --go / --dlv */
  flag?: string | undefined;
  /** The lane the job belongs to (a lab target, a lab tree), if any. */
  lane?: LaneName | undefined;
  pathValue?: string | undefined;
}

/** Picks the tool in the documented order without running it; undefined when there is none at all. */
export async function chooseToolFor(
  tool: ToolName,
  options: ResolveToolOptions = {},
): Promise<ToolChoice | undefined> {
  const config = await readUserConfig();
  let lane: ToolCandidates['lane'];
  if (options.lane) {
    const path =
      options.lane === 'trixie'
        ? (await requireTrixieLane(`The ${options.lane} lane`))[tool].path
        : await lanePath(options.lane, tool);
    if (!path) {
      throw environmentError(
        `The ${options.lane} lane's ${tool} (${BOOKWORM_LANE[tool]}) is not installed.`,
        {
          hint: `Install it (apt-get install ${tool === 'go' ? 'golang-go' : 'delve'}), or run 'make deps'.`,
        },
      );
    }
    lane = { name: options.lane, path };
  }
  return chooseTool(tool, {
    flag: options.flag,
    env: process.env[TOOL_ENV[tool]] || undefined,
    config: config[tool],
    lane,
    onPath: await findOnPath(tool, options.pathValue),
  });
}

/** Where the user named the tool, for "point … at" hints. */
export const choiceOrigin = (choice: ToolChoice) =>
  choice.source === 'flag'
    ? TOOL_FLAG[choice.tool]
    : choice.source === 'env'
      ? `$${TOOL_ENV[choice.tool]}`
      : 'it';

/** Finds the tool in the documented order, checks it runs, and reads its version. */
export async function resolveTool(tool: ToolName, options: ResolveToolOptions = {}): Promise<ResolvedTool> {
  const choice = await chooseToolFor(tool, options);
  if (!choice) {
    throw environmentError(`\`${tool}\` is not on PATH and none was chosen.`, {
      hint:
        tool === 'go'
          ? 'Install Go (apt-get install golang-go), pass --go PATH, or set CTRDBG_GO.'
          : 'Install Delve (apt-get install delve), pass --dlv PATH, or set CTRDBG_DLV.',
    });
  }
  if (!(await isExecutableFile(choice.path))) {
    throw environmentError(`${choice.path} (${choice.why}) is not an executable file.`, {
      hint: `Point ${choiceOrigin(choice)} at a ${tool} binary.`,
    });
  }
  return { ...choice, version: await toolVersion(tool, choice.path) };
}

/** "go1.24.4 at /…/go (the trixie lane, the lab's own)": the line ctrdbg prints for each choice. */
export function describeTool(t: ResolvedTool): string {
  const what = t.tool === 'go' ? (t.version ?? 'go (version unknown)') : `Delve ${t.version ?? '?'}`;
  return `${what} at ${t.path} (${t.why})`;
}

/** Where ctrdbg looks for Delves on this machine (the lanes, then PATH), without running them. */
export async function knownDelvePaths(pathValue?: string): Promise<{ path: string; from: string }[]> {
  const found: { path: string; from: string }[] = [];
  const add = (path: string | undefined, from: string) => {
    if (path && !found.some((f) => f.path === path)) found.push({ path, from });
  };
  for (const lane of laneNames) add(await lanePath(lane, 'dlv'), `the ${lane} lane`);
  add(await findOnPath('dlv', pathValue), 'PATH');
  return found;
}

/** Every Delve ctrdbg knows of on this machine (the lanes and PATH), for "use this one instead" hints. */
export async function knownDelves(
  pathValue?: string,
): Promise<{ path: string; version: string; from: string }[]> {
  const found: { path: string; version: string; from: string }[] = [];
  for (const { path, from } of await knownDelvePaths(pathValue)) {
    const version = await toolVersion('dlv', path).catch(() => undefined);
    if (version) found.push({ path, version, from });
  }
  return found;
}

/**
 * The dlv to ship for a binary built with `goVersion`. Delve refuses a Go outside its range at attach time,
 * so a dlv that ctrdbg picked itself (lane or PATH) and that cannot debug the binary is swapped for one it
 * knows that can, and ctrdbg says so; a dlv the user named is never swapped: that is an error with the way out.
 */
export async function chooseDelveFor(
  goVersion: string | undefined,
  options: ResolveToolOptions,
  onSwap: (message: string) => void,
): Promise<ResolvedTool> {
  const dlv = await resolveTool('dlv', options);
  const support = delveSupport(dlv.version, goVersion);
  if (support.supported !== false) return dlv;
  const fit = (await knownDelves(options.pathValue)).find(
    (d) => delveSupport(d.version, goVersion).supported,
  );
  if (fit && !isExplicit(dlv)) {
    onSwap(
      `Delve ${dlv.version} (${dlv.path}, ${dlv.why}) supports Go ${support.supportedGo}, not ${goVersion}: using Delve ${fit.version} from ${fit.from} (${fit.path}) instead`,
    );
    return {
      tool: 'dlv',
      path: fit.path,
      version: fit.version,
      source: fit.from === 'PATH' ? 'path' : 'lane',
      why: `${fit.from}, the Delve here that supports ${goVersion}`,
    };
  }
  throw environmentError(
    `Delve ${dlv.version} (${dlv.path}, ${dlv.why}) supports Go ${support.supportedGo}, but the binary was built with ${goVersion}.`,
    {
      hint: fit
        ? `Pass --dlv ${fit.path} (Delve ${fit.version}, ${fit.from}), or build containerd with a Go in ${support.supportedGo}.`
        : 'Install a Delve that supports that Go version (Delve 1.N supports Go 1.(N-2)–1.N; scripts/bootstrap-trixie installs Delve 1.24), or build containerd with a Go that this Delve supports.',
    },
  );
}
