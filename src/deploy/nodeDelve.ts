/**
 * Which dlv goes to a node, and getting it there. The dlv must run on the node (linux/<its arch>: a Mac's dlv is
 * a Mach-O, a laptop's may be for another CPU) and must support the Go that built the node's containerd (Delve 1.N
 * supports Go 1.(N-2)–1.N). In order:
 *   1. `--dlv-src DIR`: build dlv from that Delve source for the node, whatever else there is;
 *   2. the dlv ctrdbg picks (--dlv, $CTRDBG_DLV, config.json, the lab's lane, PATH), when it fits; one the user
 *      named that does not fit is an error (exit 15 when it cannot run there), never silently replaced;
 *   3. another Delve on this machine that fits (the lanes, PATH), then a dlv ctrdbg built earlier;
 *   4. a build for linux/<arch> from a Delve source: Debian's (scripts/bootstrap-delve), else Delve's module
 *      through the module cache / GOPROXY the user's Go already uses;
 *   5. otherwise one paragraph that lists what was found and why none fits, and how to get a source.
 * Every step says which Delve it ships and why. Nothing here touches the node before `installNodeDelve`.
 */
import { realpath } from 'node:fs/promises';
import { delveSupport } from '../debugbuild/debugInfo.js';
import {
  buildDelve,
  cachedDelveBuilds,
  type DelveBuild,
  readDelveVersion,
} from '../debugbuild/delveBuild.js';
import {
  type DelveSource,
  delveSourceHint,
  detectDelveSource,
  knownDelveSources,
  type ModuleRouteResult,
  moduleDelveSource,
} from '../debugbuild/delveSource.js';
import type { BuildProgress } from '../debugbuild/goBuild.js';
import {
  type Arch,
  type ExecutableFacts,
  platformProblems,
  readExecutableFacts,
} from '../debugbuild/platform.js';
import {
  choiceOrigin,
  chooseToolFor,
  describeTool,
  isExplicit,
  knownDelvePaths,
  type LaneName,
  type ResolvedTool,
  resolveTool,
  type ToolChoice,
} from '../debugbuild/toolchain.js';
import { environmentError, usageError, wrongPlatformError } from '../errors.js';
import type { RemoteHost } from '../nodes/remoteHost.js';
import type { Target } from '../nodes/target.js';
import { exists, sha256File } from '../util/fsx.js';
import type { Logger } from '../util/output.js';
import { shellQuote } from '../util/shell.js';
import { checkRunsOnNode } from './nodeBinaryGuard.js';
import { binDir, readNodeState, writeNodeState } from './nodeState.js';
import { remoteSha256 } from './probe.js';

export interface NodeDelveOptions {
  /** --dlv (else $CTRDBG_DLV, config.json, the lane, PATH). */
  dlv?: string | undefined;
  /** --dlv-src: always build from this Delve source. */
  dlvSrc?: string | undefined;
  /** --go: the Go a Delve build uses (the same order as for containerd). */
  go?: string | undefined;
  /** The lab's lane, if the target is a lab. */
  lane?: LaneName | undefined;
}

/** What setup will upload as dlv, and why; setup's `--json` reports it. */
export interface DelvePlan {
  local: string;
  version: string;
  supportsGo: string | null;
  /** Which Delve and why, in one sentence. */
  why: string;
  /** "an ELF 64-bit executable for linux/arm64 (static)" */
  description: string;
  sha256: string;
  /** Where it goes on the node. */
  remote: string;
  /** Set when ctrdbg built it from source (now or earlier). */
  built: {
    origin: string;
    go: string | null;
    durationMs: number;
    cached: boolean;
    command: string;
    /** What the build left out ("eBPF tracing …"). */
    without: string[];
  } | null;
}

/** A dlv file on this machine, read but not trusted to run. */
export interface LocalDelve {
  path: string;
  /** Why ctrdbg looked at it: "--dlv", "first on PATH", "the bookworm lane". */
  from: string;
  explicit: boolean;
  facts: ExecutableFacts;
  version: string | undefined;
}

/** Where ctrdbg looks; a parameter so a test can say "this machine has only this Delve". */
export interface DelveInventory {
  chosen(options: NodeDelveOptions): Promise<ToolChoice | undefined>;
  others(): Promise<{ path: string; from: string }[]>;
  cachedBuilds(arch: Arch): Promise<DelveBuild[]>;
  sources(): Promise<DelveSource[]>;
  moduleSource(go: ResolvedTool, goVersion: string | undefined): Promise<ModuleRouteResult>;
  go(options: NodeDelveOptions): Promise<ResolvedTool>;
}

export const machineInventory: DelveInventory = {
  chosen: (options) => chooseToolFor('dlv', { flag: options.dlv, lane: options.lane }),
  others: () => knownDelvePaths(),
  cachedBuilds: (arch) => cachedDelveBuilds(arch),
  sources: () => knownDelveSources(),
  moduleSource: (go, goVersion) => moduleDelveSource(go, goVersion),
  go: (options) => resolveTool('go', { flag: options.go, lane: options.lane }),
};

/* ------------------------------------------------------------------ judging (pure) */

export interface DelveVerdict {
  fits: boolean;
  /** Why not, or what it is: "Delve 1.6.1 at /x (first on PATH) supports Go 1.14–1.16, not go1.19.8". */
  reason: string;
  runsOnNode: boolean;
  supportedGo: string | undefined;
}

export function judgeDelve(c: LocalDelve, goArch: string, goVersion: string | undefined): DelveVerdict {
  const name = `${c.version ? `Delve ${c.version}` : 'the dlv'} at ${c.path} (${c.from})`;
  const problems = platformProblems(c.facts, { goArch });
  const support = delveSupport(c.version, goVersion);
  if (problems.length)
    return {
      fits: false,
      runsOnNode: false,
      supportedGo: support.supportedGo,
      reason: `${name} cannot run on the node: ${problems[0]}`,
    };
  if (!c.version)
    return {
      fits: false,
      runsOnNode: true,
      supportedGo: undefined,
      reason: `${name} does not say which Delve it is`,
    };
  if (support.supported === false)
    return {
      fits: false,
      runsOnNode: true,
      supportedGo: support.supportedGo,
      reason: `${name} supports Go ${support.supportedGo}, not ${goVersion}`,
    };
  return {
    fits: true,
    runsOnNode: true,
    supportedGo: support.supportedGo,
    reason: `${name}${support.supportedGo ? ` supports Go ${support.supportedGo}` : ''}`,
  };
}

/* ------------------------------------------------------------------ reading */

async function examine(path: string, from: string, explicit: boolean): Promise<LocalDelve> {
  const facts = await readExecutableFacts(path);
  return { path, from, explicit, facts, version: await readDelveVersion(path, facts) };
}

const archHint = (arch: string) =>
  `GOOS=linux GOARCH=${arch} CGO_ENABLED=0 go build -o dlv ./cmd/dlv in a Delve checkout`;

/** The user's own dlv must at least exist and be a file; its fit is judged after the binary is known. */
async function examineChoice(choice: ToolChoice, target: Target, goArch: string): Promise<LocalDelve> {
  const explicit = isExplicit(choice);
  if (!(await exists(choice.path))) {
    throw environmentError(`${choice.path} (${choice.why}) does not exist.`, {
      hint: `Point ${choiceOrigin(choice)} at a dlv binary built for linux/${goArch}, or leave it out and ctrdbg picks or builds one.`,
    });
  }
  const c = await examine(choice.path, choice.why, explicit);
  if (explicit) {
    const problems = platformProblems(c.facts, { goArch });
    if (problems.length) {
      throw wrongPlatformError(
        `${choice.why} ${choice.path} cannot run on ${target.endpoint.label}, a linux/${goArch} node: ${problems.join('; ')}. Nothing was uploaded and the node was not changed.`,
        {
          hint: `Leave out ${choice.why} and ctrdbg builds Delve for linux/${goArch} itself (from --dlv-src DIR, Debian's delve source or Go's module cache), or pass a dlv built for linux/${goArch} (${archHint(goArch)}).`,
          details: { facts: c.facts, problems },
        },
      );
    }
  }
  return c;
}

/**
 * The checks that need no binary: --dlv with --dlv-src, a --dlv-src that is no Delve tree, a dlv the user named
 * that cannot run on the node. Setup runs them before it builds containerd, so a wrong --dlv fails in a second.
 */
export async function precheckNodeDelve(
  target: Target,
  goArch: string,
  options: NodeDelveOptions,
  inventory: DelveInventory = machineInventory,
): Promise<void> {
  if (options.dlv && options.dlvSrc)
    throw usageError('--dlv and --dlv-src both say which dlv to ship; pass one of them.', {
      hint: '--dlv PATH ships that file; --dlv-src DIR builds dlv for the node from that Delve source.',
    });
  if (options.dlvSrc) {
    await detectDelveSource(options.dlvSrc);
    return;
  }
  const choice = await inventory.chosen(options);
  if (choice && isExplicit(choice)) await examineChoice(choice, target, goArch);
}

/* ------------------------------------------------------------------ planning */

export interface PlanNodeDelveContext {
  /** For the dynamic loader check; undefined plans without asking the node (a stand-in node in a test). */
  host: RemoteHost | undefined;
  target: Target;
  goArch: Arch;
  /** The Go that built the containerd the dlv must debug. */
  goVersion: string | undefined;
  options: NodeDelveOptions;
  log: Logger;
  inventory?: DelveInventory;
  progress?: () => BuildProgress;
}

export async function planNodeDelve(ctx: PlanNodeDelveContext): Promise<DelvePlan> {
  const { target, goArch, goVersion, options, log } = ctx;
  const inventory = ctx.inventory ?? machineInventory;
  await precheckNodeDelve(target, goArch, options, inventory);
  const remote = `${binDir(target)}/dlv`;
  const finish = async (
    local: string,
    plan: Omit<DelvePlan, 'local' | 'sha256' | 'remote' | 'description'>,
  ) => {
    const facts = await checkRunsOnNode(ctx.host, target, goArch, local, {
      what: 'dlv',
      hint: `Pass --dlv-src DIR so ctrdbg builds one for linux/${goArch}, or --dlv PATH to a dlv built for it (${archHint(goArch)}).`,
    });
    const resolved = await realpath(local);
    return {
      ...plan,
      local: resolved,
      sha256: await sha256File(resolved),
      remote,
      description: facts.description,
    };
  };
  const fromBuild = async (source: DelveSource, because: string): Promise<DelvePlan> => {
    const go = await inventory.go(options);
    log.step(
      `dlv: building Delve ${source.version} for linux/${goArch} from ${source.origin} with ${describeTool(go)}, because ${because}`,
    );
    const build = await buildDelve(source, {
      arch: goArch,
      go,
      log,
      ...(ctx.progress ? { progress: ctx.progress } : {}),
    });
    if (build.cached) log.info(`  reusing the build from ${build.builtAt} (${build.path})`);
    return finish(build.path, {
      version: build.version,
      supportsGo: delveSupport(build.version, goVersion).supportedGo ?? null,
      why: `built for linux/${goArch} from ${source.origin}, using ${go.version ?? go.path}${build.without.length ? ` (without ${build.without.join(', ')})` : ''}, because ${because}`,
      built: {
        origin: source.origin,
        go: go.version ?? null,
        durationMs: build.durationMs,
        cached: build.cached,
        command: build.command,
        without: build.without,
      },
    });
  };
  const ship = (c: LocalDelve, verdict: DelveVerdict, why: string) => {
    log.step(`dlv: ${verdict.reason}`);
    return finish(c.path, {
      version: c.version ?? '?',
      supportsGo: verdict.supportedGo ?? null,
      why,
      built: null,
    });
  };

  // 1. --dlv-src: the user asked for a build from that source.
  if (options.dlvSrc) {
    const source = await detectDelveSource(options.dlvSrc);
    const support = delveSupport(source.version, goVersion);
    if (support.supported === false) {
      throw environmentError(
        `--dlv-src ${options.dlvSrc} is Delve ${source.version}, which supports Go ${support.supportedGo}, but the binary was built with ${goVersion}.`,
        {
          hint: 'Pass --dlv-src to a Delve release that supports that Go (Delve 1.N supports Go 1.(N-2)–1.N), or leave out --dlv-src and ctrdbg picks or builds one.',
        },
      );
    }
    return fromBuild(source, '--dlv-src asks for it');
  }

  // 2. The dlv ctrdbg picks.
  const reasons: string[] = [];
  const choice = await inventory.chosen(options);
  if (choice) {
    const c = await examineChoice(choice, target, goArch);
    const verdict = judgeDelve(c, goArch, goVersion);
    if (verdict.fits) return ship(c, verdict, choice.why);
    if (c.explicit) {
      const fit = await findFit(await inventory.others(), [choice.path], goArch, goVersion);
      throw environmentError(`${verdict.reason}: it cannot debug containerd on ${target.endpoint.label}.`, {
        hint: !c.version
          ? `Point ${choiceOrigin(choice)} at a real dlv, or leave it out and ctrdbg picks or builds one.`
          : fit
            ? `Pass --dlv ${fit.c.path} (Delve ${fit.c.version}, ${fit.c.from}), leave out ${choiceOrigin(choice)} and ctrdbg picks or builds one, or pass --dlv-src DIR.`
            : `Leave out ${choiceOrigin(choice)} and ctrdbg builds a Delve that supports ${goVersion} (Delve 1.N supports Go 1.(N-2)–1.N), or pass --dlv-src DIR.`,
      });
    }
    reasons.push(verdict.reason);
  } else {
    reasons.push('there is no dlv on this machine (none on PATH, none chosen)');
  }

  // 3. Another Delve here, then one ctrdbg built earlier.
  const fit = await findFit(
    await inventory.others(),
    choice ? [choice.path] : [],
    goArch,
    goVersion,
    reasons,
  );
  if (fit) {
    log.warn(`${reasons[0]}: using ${fit.verdict.reason} instead`);
    return ship(
      fit.c,
      fit.verdict,
      `${fit.c.from}, the Delve here that ${goVersion ? `supports ${goVersion}` : 'fits'} on linux/${goArch}`,
    );
  }
  const earlier = (await inventory.cachedBuilds(goArch)).find(
    (b) => delveSupport(b.version, goVersion).supported !== false,
  );
  if (earlier) {
    log.warn(`${reasons[0]}: using Delve ${earlier.version} that ctrdbg built for linux/${goArch} earlier`);
    return finish(earlier.path, {
      version: earlier.version,
      supportsGo: delveSupport(earlier.version, goVersion).supportedGo ?? null,
      why: `built earlier for linux/${goArch} from ${earlier.source.origin}, because ${reasons.join('; ')}`,
      built: {
        origin: earlier.source.origin,
        go: earlier.go.version,
        durationMs: earlier.durationMs,
        cached: true,
        command: earlier.command,
        without: earlier.without ?? [],
      },
    });
  }

  // 4. A source build.
  const because = reasons.join('; ');
  const known = (await inventory.sources()).find(
    (s) => delveSupport(s.version, goVersion).supported !== false,
  );
  if (known) return fromBuild(known, because);
  const go = await inventory.go(options).catch(() => undefined);
  const route = go
    ? await inventory.moduleSource(go, goVersion)
    : { unavailable: 'there is no go here to fetch it with' };
  if (route.source) return fromBuild(route.source, because);

  // 5. Nothing fits and nothing to build from.
  const others = (await inventory.sources()).map(
    (s) => `${s.origin} supports Go ${delveSupport(s.version, goVersion).supportedGo}`,
  );
  throw environmentError(
    `No dlv for ${target.endpoint.label} (linux/${goArch}${goVersion ? `, containerd built with ${goVersion}` : ''}): ${because}; and ctrdbg has no Delve source to build one from (${[...others, `Go's module route: ${route.unavailable}`].join('; ')}).`,
    {
      hint: `${delveSourceHint()}; or let Go reach github.com/go-delve/delve through your GOPROXY; or pass --dlv PATH to a dlv built for linux/${goArch}${goVersion ? ` that supports ${goVersion}` : ''} (Delve 1.N supports Go 1.(N-2)–1.N).`,
    },
  );
}

async function findFit(
  candidates: { path: string; from: string }[],
  skip: string[],
  goArch: string,
  goVersion: string | undefined,
  reasons?: string[],
): Promise<{ c: LocalDelve; verdict: DelveVerdict } | undefined> {
  const seen = new Set(await Promise.all(skip.map((p) => realpath(p).catch(() => p))));
  for (const candidate of candidates) {
    const real = await realpath(candidate.path).catch(() => candidate.path);
    if (seen.has(real)) continue;
    seen.add(real);
    const c = await examine(candidate.path, candidate.from, false);
    const verdict = judgeDelve(c, goArch, goVersion);
    if (verdict.fits) return { c, verdict };
    reasons?.push(verdict.reason);
  }
  return undefined;
}

/* ------------------------------------------------------------------ installing */

/** Uploads the planned dlv when the node's differs, and records it (with where it came from) in the node state. */
export async function installNodeDelve(
  host: RemoteHost,
  target: Target,
  plan: DelvePlan,
  log: Logger,
): Promise<{ uploaded: boolean }> {
  const uploaded = (await remoteSha256(host, plan.remote)) !== plan.sha256;
  if (uploaded) {
    log.step(`installing dlv ${plan.version} on the node (${plan.remote})`);
    await host.execChecked(`mkdir -p ${shellQuote(binDir(target))}`, { sudo: true });
    await host.upload(plan.local, plan.remote, { sudo: true, mode: 0o755 });
  }
  const state = await readNodeState(host, target);
  if (
    state.dlv?.path !== plan.remote ||
    state.dlv.version !== plan.version ||
    state.dlv.sha256 !== plan.sha256
  ) {
    state.dlv = { path: plan.remote, version: plan.version, sha256: plan.sha256, origin: plan.why };
    await writeNodeState(host, target, state);
  }
  return { uploaded };
}
