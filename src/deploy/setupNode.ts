/**
 * `ctrdbg setup`: build (or take) a debug containerd for the node's arch, check it matches the node, ship the
 * source tree to the same absolute path, put dlv on the node, swap the binary safely, restart, verify.
 * `--with-shim` builds containerd-shim-runc-v2 from the same tree too and swaps it first (shimSwap.ts): the whole
 * setup is one transaction up to containerd's restart, so a containerd swap that is undone undoes the shim's.
 */

import { realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { buildContainerd, defaultOutDir } from '../debugbuild/buildContainerd.js';
import { inspectBinary } from '../debugbuild/debugInfo.js';
import { normalizeArch, SHIM_BINARY } from '../debugbuild/goBuild.js';
import {
  type BuildManifest,
  manifestPathFor,
  readManifest,
  runContainerdVersion,
  runShimVersion,
} from '../debugbuild/manifest.js';
import {
  environmentError,
  inputError,
  interruptedError,
  nodeError,
  notDebuggableError,
  versionMismatchError,
} from '../errors.js';
import { rememberTarget, type TargetOptions } from '../nodes/resolveTarget.js';
import type { Target } from '../nodes/target.js';
import { run } from '../util/exec.js';
import { exists } from '../util/fsx.js';
import { interruptOnSignals } from '../util/interrupt.js';
import type { Logger } from '../util/output.js';
import { formatBytes } from '../util/output.js';
import { shellQuote } from '../util/shell.js';
import { installBinary, type SwapResult, SwapUndone } from './binarySwap.js';
import { checkRunsOnNode } from './nodeBinaryGuard.js';
import { type DelvePlan, installNodeDelve, planNodeDelve, precheckNodeDelve } from './nodeDelve.js';
import { readNodeState, writeNodeState } from './nodeState.js';
import { type OpenedNode, openNode } from './openNode.js';
import { type NodeProbe, semverOf } from './probe.js';
import { locateNodeShim, type ShimLocation } from './shimLocate.js';
import { installShim, type ShimSwapResult, ShimSwapUndone, undoShimSwap } from './shimSwap.js';
import { type SyncResult, syncTree } from './sourceSync.js';

export interface SetupOptions extends TargetOptions {
  src?: string;
  skipBuild?: boolean;
  binary?: string;
  logLevel?: string;
  allowVersionMismatch?: boolean;
  withGoroot?: boolean;
  /** Skip the source sync (tests of the binary swap alone). */
  noSource?: boolean;
  /** --go / --dlv (src/debugbuild/toolchain.ts); a lab target otherwise picks its own lane. */
  go?: string;
  dlv?: string;
  /** --dlv-src: build the dlv for the node from this Delve source (src/deploy/nodeDelve.ts). */
  dlvSrc?: string;
  /** --with-shim: also build and install containerd-shim-runc-v2; --shim-binary installs that file instead. */
  withShim?: boolean;
  shimBinary?: string;
}

export interface SetupResult {
  target: string;
  node: { arch: string; os: string; versionBefore: string; pidBefore: number; pidAfter: number };
  binary: { local: string; sha256: string; version: string; built: boolean };
  swap: SwapResult;
  source: SyncResult[];
  dlv: {
    path: string;
    version: string;
    uploaded: boolean;
    supportsGo: string | null;
    /** The local dlv that was shipped, and why ctrdbg picked it. */
    local: string;
    why: string;
    /** What the file is ("an ELF 64-bit executable for linux/arm64 (static)") and its sha256. */
    description: string;
    sha256: string;
    /** Set when ctrdbg built it from Delve's source. */
    built: DelvePlan['built'];
  };
  /** With --with-shim: the shim containerd starts for new pods, and the ones already running. */
  shim?: ShimSwapResult & { local: string; built: boolean; description: string };
  changed: string[];
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'panic'];

export async function setupNode(
  spec: string | undefined,
  options: SetupOptions,
  log: Logger,
): Promise<SetupResult> {
  if (options.logLevel && !LOG_LEVELS.includes(options.logLevel)) {
    throw inputError(`'${options.logLevel}' is not a containerd log level.`, {
      hint: `Use one of: ${LOG_LEVELS.join(', ')}.`,
    });
  }
  // Ctrl-C never leaves a half-replaced containerd: it ends the swap at its next safe point (binarySwap.ts).
  const interrupt = interruptOnSignals(
    log,
    'interrupted: ending setup at the next safe point, so containerd is left in one verified state…',
    'still ending setup safely — please wait (containerd must not be left half replaced)',
  );
  let opened: OpenedNode;
  try {
    opened = await openNode(spec, options, {
      log,
      announce: true,
      refuseTraced:
        'End that debugging session first (Ctrl-C in `ctrdbg attach`, or `exit` in dlv), then run setup again.',
    });
  } catch (error) {
    interrupt.dispose();
    throw error;
  }
  const { target, host, probe } = opened;
  const checkInterrupt = (what: string) => {
    if (interrupt.signal.aborted)
      throw interruptedError(`setup was interrupted ${what}; containerd was not touched.`, {
        hint: `Run \`ctrdbg setup ${target.spec}\` again when you are ready.`,
      });
  };
  try {
    log.step(`node: ${probe.os}, ${probe.arch}, containerd pid ${probe.pid} (${probe.version})`);
    const withShim = Boolean(options.withShim || options.shimBinary);
    // Where the node's shim lives is known before anything is built: a node where it cannot be replaced stops here.
    const shimLocation = withShim ? await locateShimToReplace(host, target, probe, log) : undefined;
    const dlvOptions = { dlv: options.dlv, dlvSrc: options.dlvSrc, go: options.go, lane: target.lab?.lane };
    // A --dlv that cannot run on the node, or a --dlv-src that is no Delve tree, fails before any build.
    await precheckNodeDelve(target, probe.goArch, dlvOptions);
    const state = await readNodeState(host, target);
    const nodeVersion = state.original?.version ?? probe.version;

    // Ctrl-C reaches the build's processes too: a build that fails because of it was interrupted.
    const { binary, manifest, built, shim } = await chooseBinary(target, probe, options, log).catch(
      (error: unknown) => {
        checkInterrupt('during the build');
        throw error;
      },
    );
    checkInterrupt('during the build');
    await checkRunsOnNode(host, target, probe.goArch, binary, {
      what: 'containerd',
      ...(options.binary ? { offeredAs: '--binary' } : {}),
      hint: `Pass a containerd built for linux/${probe.goArch} (\`ctrdbg build --arch ${probe.goArch}\`, from macOS or Linux), or leave out --binary and setup builds one for the node.`,
    });
    const shimFacts = shim
      ? await checkRunsOnNode(host, target, probe.goArch, shim.binary, {
          what: 'containerd-shim-runc-v2',
          ...(options.shimBinary ? { offeredAs: '--shim-binary' } : {}),
          hint: `Pass a shim built for linux/${probe.goArch} (\`ctrdbg build --with-shim --arch ${probe.goArch}\`), or leave out --shim-binary and setup builds one for the node.`,
        })
      : undefined;
    // Delve support is checked (and the dlv chosen) by planNodeDelve; the report's PATH dlv would only mislead.
    const report = await inspectBinary(binary, { expectedArch: probe.goArch, delveVersion: null });
    if (!report.debuggable) {
      throw notDebuggableError(
        `${binary} cannot be debugged on ${target.endpoint.label}: ${report.problems.join('; ')}.`,
        {
          hint: report.hint ?? 'Build it with `ctrdbg build`.',
          details: { report },
        },
      );
    }
    const shimReport = shim
      ? await inspectBinary(shim.binary, { expectedArch: probe.goArch, delveVersion: null })
      : undefined;
    if (shim && shimReport && !shimReport.debuggable) {
      throw notDebuggableError(
        `${shim.binary} cannot be debugged on ${target.endpoint.label}: ${shimReport.problems.join('; ')}.`,
        {
          hint: "Build the shim with `ctrdbg build --with-shim --src …`: containerd's Makefile builds it optimised even with GODEBUG=1, ctrdbg passes -N -l where its shim rule reads them (GO_BUILD_FLAGS).",
          details: { report: shimReport },
        },
      );
    }
    const ran = manifest ? undefined : await runContainerdVersion(binary);
    if (!manifest) refuseNotContainerd(binary, report.mainPackage, ran?.line ?? undefined);
    const binaryVersion = manifest?.containerd.line ?? manifest?.containerd.version ?? ran?.line ?? '';
    checkVersions(nodeVersion, binaryVersion, options.allowVersionMismatch, log);
    const shimVersion = shim
      ? (shim.manifest?.containerd.line ??
        shim.manifest?.containerd.version ??
        (await runShimVersion(shim.binary).catch(() => undefined))?.line ??
        '')
      : '';
    if (shim) checkVersions(nodeVersion, shimVersion, options.allowVersionMismatch, log, 'the debug shim');
    // The dlv is chosen (or built) and checked before anything reaches the node.
    const dlvPlan = await planNodeDelve({
      host,
      target,
      goArch: normalizeArch(probe.goArch),
      goVersion: report.goVersion ?? undefined,
      options: dlvOptions,
      log,
    }).catch((error: unknown) => {
      checkInterrupt('while dlv was being built');
      throw error;
    });

    const source: SyncResult[] = [];
    if (!options.noSource) {
      const roots = [...(manifest?.source.sourceRoots ?? [])];
      if (options.withGoroot) roots.push(await gorootSrc(manifest?.toolchain?.go.path ?? 'go'));
      if (roots.length === 0)
        log.warn('no build manifest beside the binary: the source tree is not synced (Delve cannot `list`)');
      const recorded = [...(state.source?.roots ?? [])];
      for (const root of roots) {
        const existed = (await host.exec(`test -d ${shellQuote(root)}`, { sudo: true })).code === 0;
        log.step(`syncing source ${root}`);
        const result = await syncTree(host, root, root, {
          onProgress: throttle((p) => {
            if (p.phase === 'sending') log.info(`  ${formatBytes(p.done)} of ${formatBytes(p.total)}`);
          }),
        });
        log.step(
          `  ${result.files} files, ${result.sent} sent (${formatBytes(result.sentBytes)}), ${result.deleted} deleted`,
        );
        source.push(result);
        if (!recorded.some((r) => r.path === root)) recorded.push({ path: root, created: !existed });
      }
      if (roots.length) {
        state.source = {
          roots: recorded,
          syncedAt: new Date().toISOString(),
          files: source.reduce((n, s) => n + s.files, 0),
          bytes: source.reduce((n, s) => n + s.sentBytes, 0),
        };
        await writeNodeState(host, target, state);
      }
    }

    checkInterrupt('while the source was synced');
    const installed = await installNodeDelve(host, target, dlvPlan, log);
    const dlv: SetupResult['dlv'] = {
      path: dlvPlan.remote,
      version: dlvPlan.version,
      uploaded: installed.uploaded,
      supportsGo: dlvPlan.supportsGo,
      local: dlvPlan.local,
      why: dlvPlan.why,
      description: dlvPlan.description,
      sha256: dlvPlan.sha256,
      built: dlvPlan.built,
    };
    checkInterrupt('after dlv was installed');
    const shimSwap =
      shim && shimLocation && shimReport
        ? await installShim(
            host,
            target,
            {
              location: shimLocation,
              signal: interrupt.signal,
              localBinary: shim.binary,
              sha256: shimReport.sha256,
              version: shimVersion,
              manifest: (shim.manifest as unknown as Record<string, unknown>) ?? null,
              onProgress: progressLine(log, 'shim upload'),
            },
            log,
          ).catch((error: unknown) => {
            if (!(error instanceof ShimSwapUndone)) throw error;
            const at = `the shim's ${error.step} step`;
            if (error.interrupted)
              throw interruptedError(
                `setup was interrupted at ${at}: the shim that was there is back in place (sha256 checked); containerd was not touched.`,
                { hint: `Run \`ctrdbg setup ${target.spec} --with-shim\` again when you are ready.` },
              );
            throw nodeError(
              `setup failed at ${at} (${error.reason.message}): the shim that was there is back in place (sha256 checked); containerd was not touched.`,
              {
                hint: 'Check that the shim runs on the node (arch, libc; `ctrdbg build --verify` it) and that the node has free disk space, then run setup again.',
                cause: error.reason,
              },
            );
          })
        : undefined;
    if (!withShim && state.shim?.installed)
      log.info(
        `  the debug shim from an earlier --with-shim stays at ${state.shim.path}; \`ctrdbg restore ${target.spec}\` puts the original back`,
      );
    // containerd's swap undone (Ctrl-C before its restart, a failure, a rollback): the shim's swap is undone too.
    const undoShim = async (why: string) => {
      if (!shimSwap) return '';
      try {
        await undoShimSwap(host, target, shimSwap, why, log);
        return shimSwap.unchanged ? '' : ' The shim that was there before is back too.';
      } catch (error) {
        log.warn(`could not put the shim back: ${(error as Error).message}`);
        return ` The debug shim could not be put back (${(error as Error).message}): run \`ctrdbg restore ${target.spec}\`.`;
      }
    };
    let lastPct = -1;
    const swap = await installBinary(
      host,
      target,
      {
        signal: interrupt.signal,
        localBinary: binary,
        sha256: report.sha256,
        version: binaryVersion,
        manifest: (manifest as unknown as Record<string, unknown>) ?? null,
        ...(options.logLevel ? { logLevel: options.logLevel } : {}),
        onProgress: (sent, total) => {
          const pct = Math.floor((sent / total) * 10) * 10;
          if (pct !== lastPct) {
            lastPct = pct;
            log.info(`  upload ${pct}% (${formatBytes(sent)} of ${formatBytes(total)})`);
          }
        },
      },
      log,
    ).catch(async (error: unknown) => {
      const shimBack = await undoShim(
        error instanceof SwapUndone && error.interrupted
          ? "setup was interrupted before containerd's restart"
          : "containerd's swap did not go through",
      );
      if (!(error instanceof SwapUndone)) {
        if (shimBack && error instanceof Error) error.message += shimBack;
        throw error;
      }
      const at = `the ${error.step} step`;
      if (error.interrupted)
        throw interruptedError(
          `setup was interrupted at ${at}: the binary that was running before is back in place and runs (pid ${error.pid}, verified); nothing was restarted.${shimBack}`,
          { hint: `Run \`ctrdbg setup ${target.spec}\` again when you are ready.` },
        );
      throw nodeError(
        `setup failed at ${at} (${error.reason.message}): the binary that was running before is back in place and runs (pid ${error.pid}, verified).${shimBack}`,
        { hint: 'Check the node (free disk space, permissions) and run setup again.', cause: error.reason },
      );
    });
    await rememberTarget(target.spec, stripped(options));
    if (interrupt.signal.aborted)
      throw interruptedError(
        `setup was interrupted during the restart: ctrdbg finished it, and the debug containerd runs and is verified (pid ${swap.pidAfter})${shimSwap && !shimSwap.unchanged ? ', with the debug shim for new pods' : ''}.`,
        { hint: `Run \`ctrdbg restore ${target.spec}\` to go back to the original.` },
      );

    const changed: string[] = [];
    if (swap.repaired) changed.push(`repaired an interrupted setup: ${swap.repaired}`);
    if (swap.backedUp) changed.push(`backed up the original ${swap.binary}`);
    if (!swap.unchanged)
      changed.push(`installed the debug build at ${swap.binary} (sha256 ${report.sha256.slice(0, 12)}…)`);
    if (swap.restarted) changed.push(`restarted containerd: pid ${swap.pidBefore} → ${swap.pidAfter}`);
    for (const s of source)
      if (s.sent || s.deleted)
        changed.push(`source ${s.remoteRoot}: ${s.sent} files sent, ${s.deleted} deleted`);
    if (dlv.uploaded) changed.push(`installed dlv ${dlv.version} at ${dlv.path}`);
    if (shimSwap?.repaired) changed.push(`repaired an interrupted shim swap: ${shimSwap.repaired}`);
    if (shimSwap?.backedUp) changed.push(`backed up the original shim ${shimSwap.path}`);
    if (shimSwap && !shimSwap.unchanged) {
      const before = shimSwap.running.filter((r) => r.replaced).length;
      changed.push(
        `installed the debug shim at ${shimSwap.path} (sha256 ${shimSwap.sha256.slice(0, 12)}…): new pods get it${before ? `; ${before} shim${before === 1 ? '' : 's'} already running keep${before === 1 ? 's' : ''} the binary ${before === 1 ? 'it' : 'they'} started with` : ''}`,
      );
    }
    return {
      target: target.spec,
      node: {
        arch: probe.goArch,
        os: probe.os,
        versionBefore: probe.version,
        pidBefore: swap.pidBefore,
        pidAfter: swap.pidAfter,
      },
      binary: { local: binary, sha256: report.sha256, version: binaryVersion, built },
      swap,
      source,
      dlv,
      ...(shimSwap && shim && shimFacts
        ? { shim: { ...shimSwap, local: shim.binary, built: shim.built, description: shimFacts.description } }
        : {}),
      changed,
    };
  } finally {
    interrupt.dispose();
    await host.close();
  }
}

function stripped(options: SetupOptions): TargetOptions {
  const out: TargetOptions = {};
  if (options.node) out.node = options.node;
  if (options.key) out.key = options.key;
  if (options.knownHosts) out.knownHosts = options.knownHosts;
  return out;
}

interface ChosenBinary {
  binary: string;
  manifest: BuildManifest | undefined;
  built: boolean;
}

async function chooseBinary(
  target: Target,
  probe: NodeProbe,
  options: SetupOptions,
  log: Logger,
): Promise<ChosenBinary & { shim?: ChosenBinary }> {
  const manifestOf = async (bin: string) =>
    (await exists(manifestPathFor(bin))) ? readManifest(manifestPathFor(bin)) : undefined;
  const given = async (path: string, flag: string, what: string): Promise<ChosenBinary> => {
    if (!(await exists(path)))
      throw inputError(`${flag} ${path} does not exist.`, {
        hint: `Pass a ${what} built with \`ctrdbg build${flag === '--shim-binary' ? ' --with-shim' : ''}\`.`,
      });
    return { binary: path, manifest: await manifestOf(path), built: false };
  };
  const withShim = Boolean(options.withShim || options.shimBinary);
  const arch = normalizeArch(probe.goArch);
  const earlier = async (name: string, flag: string): Promise<ChosenBinary> => {
    const bin = join(defaultOutDir(arch, target.lab?.lane), name);
    if (!(await exists(bin))) {
      throw inputError(`--skip-build: there is no earlier build of ${name} for ${arch} at ${bin}.`, {
        hint: `Run setup once without --skip-build, or pass ${flag}.`,
      });
    }
    return { binary: bin, manifest: await manifestOf(bin), built: false };
  };
  const givenShim = options.shimBinary
    ? await given(options.shimBinary, '--shim-binary', 'containerd-shim-runc-v2')
    : undefined;
  // The shim is built (or reused) the way containerd is, unless --shim-binary names one.
  const buildShim = withShim && !givenShim;
  if (options.binary || options.skipBuild) {
    const containerd = options.binary
      ? await given(options.binary, '--binary', 'containerd binary')
      : await earlier('containerd', '--binary');
    let shim = givenShim;
    if (buildShim && options.skipBuild) shim = await earlier(SHIM_BINARY, '--shim-binary');
    else if (buildShim) {
      // --binary names containerd only: the shim still comes from the source tree.
      const src = options.src ?? target.lab?.tree;
      const result = await buildContainerd({
        src,
        arch,
        logger: log,
        go: options.go,
        dlv: options.dlv,
        shimOnly: true,
      });
      shim = { binary: result.binary, manifest: result.manifest, built: true };
    }
    return { ...containerd, ...(shim ? { shim } : {}) };
  }
  // The lab carries its own source tree; it is the natural default there.
  const src = options.src ?? target.lab?.tree;
  const result = await buildContainerd({
    src,
    arch,
    logger: log,
    go: options.go,
    dlv: options.dlv,
    ...(buildShim ? { withShim: true } : {}),
  });
  const shim = result.shim
    ? { binary: result.shim.binary, manifest: result.shim.manifest, built: true }
    : givenShim;
  return { binary: result.binary, manifest: result.manifest, built: true, ...(shim ? { shim } : {}) };
}

/**
 * A --binary without ctrdbg's manifest is containerd only if it says so: `containerd --version` prints
 * "containerd <package> <version> …". Any other program (a dlv, a hello world) would otherwise be refused as
 * "the debug build is 'unknown'", with advice to check out the node's containerd tag.
 */
export function refuseNotContainerd(
  binary: string,
  mainPackage: string | null,
  versionLine: string | undefined,
): void {
  if (versionLine !== undefined && /^containerd\s/.test(versionLine)) return;
  // Not run (another arch, or --version failed): only the build info can tell, and only a clear "no" refuses.
  if (versionLine === undefined && (mainPackage === null || /containerd/i.test(mainPackage))) return;
  const program = mainPackage ? `a Go program whose main package is ${mainPackage}` : 'a Go program';
  const said =
    versionLine === undefined
      ? '`--version` failed'
      : versionLine === ''
        ? '`--version` printed nothing'
        : `\`--version\` printed ${JSON.stringify(versionLine.slice(0, 80))}`;
  throw inputError(
    `${binary} is not containerd: it is ${program}, and ${said} where containerd prints "containerd <package> <version>".`,
    {
      hint: 'Pass a containerd binary (`ctrdbg build` writes one with its manifest beside it), or leave out --binary and setup builds one from the source.',
      details: { mainPackage, versionLine: versionLine ?? null },
    },
  );
}

/** Compares major.minor.patch: kubelet and the node's config expect the version the node shipped. */
export function checkVersions(
  nodeVersion: string,
  binaryVersion: string,
  allow: boolean | undefined,
  log: Logger,
  what = 'the debug build',
): void {
  const a = semverOf(nodeVersion);
  const b = semverOf(binaryVersion);
  if (a && b && a === b) return;
  const message = `The node runs containerd ${a ?? `'${nodeVersion}'`} but ${what} is ${b ?? `'${binaryVersion || 'unknown'}'`}.`;
  if (allow) {
    log.warn(`${message} Going on because of --allow-version-mismatch.`);
    return;
  }
  throw versionMismatchError(message, {
    hint: `Check out the node's version in your source tree (git checkout v${a ?? '<version>'}) and run setup again, or pass --allow-version-mismatch.`,
  });
}

async function gorootSrc(go: string): Promise<string> {
  try {
    const { stdout, exitCode, stderr } = await run(go, ['env', 'GOROOT'], { timeout: 20_000 });
    if (exitCode !== 0) throw new Error(stderr.trim());
    return join(await realpath(stdout.trim()), 'src');
  } catch (cause) {
    throw environmentError('--with-goroot needs the Go toolchain to find GOROOT.', {
      cause,
      hint: 'Install golang-go.',
    });
  }
}

/** `label 10% (…)` lines, one per tenth of an upload. */
function progressLine(log: Logger, label: string): (sent: number, total: number) => void {
  let last = -1;
  return (sent, total) => {
    const pct = Math.floor((sent / total) * 10) * 10;
    if (pct === last) return;
    last = pct;
    log.info(`  ${label} ${pct}% (${formatBytes(sent)} of ${formatBytes(total)})`);
  };
}

/**
 * The shim containerd runs, found as containerd finds it; refused on a process lab when it is the machine's own
 * file (the default lab runs the machine's /usr/bin shim, shared by every lab): nothing outside a lab is replaced.
 */
async function locateShimToReplace(
  host: OpenedNode['host'],
  target: Target,
  probe: NodeProbe,
  log: Logger,
): Promise<ShimLocation> {
  const location = await locateNodeShim(host, target, probe);
  const root = target.node.root;
  if (root && !location.path.startsWith(`${root}/`))
    throw nodeError(
      `${target.spec}'s containerd runs the machine's own ${location.path} (${location.why}), which every lab and the machine share: ctrdbg replaces no file outside a lab's node.`,
      {
        hint: 'Use the CRI lab, whose node has a shim of its own: `ctrdbg lab up --cri`, then `ctrdbg setup lab:cri --with-shim`.',
      },
    );
  log.step(`shim: ${location.path} (${location.why})`);
  for (const warning of location.warnings) log.warn(warning);
  return location;
}

/** Calls `fn` at most every 500 ms (progress lines, not a flood). */
function throttle<T>(fn: (value: T) => void, ms = 500): (value: T) => void {
  let last = 0;
  return (value) => {
    const now = Date.now();
    if (now - last >= ms) {
      last = now;
      fn(value);
    }
  };
}
