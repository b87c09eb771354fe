/**
 * The last check before any binary goes to a node: is it an executable for linux/<the node's arch>, and does the
 * node have the dynamic loader it asks for? A Mach-O dlv from a Mac, an amd64 dlv for an arm64 node, a 386 build
 * or a shared library would upload fine and then fail on the node with "exec format error" — at attach time, or
 * as a containerd that does not start. Setup calls this for containerd and dlv before it changes anything; the
 * agent's upload calls it too.
 */

import { inspectBinary } from '../debugbuild/debugInfo.js';
import { type ExecutableFacts, platformProblems, readExecutableFacts } from '../debugbuild/platform.js';
import { notDebuggableError, wrongPlatformError } from '../errors.js';
import type { RemoteHost } from '../nodes/remoteHost.js';
import type { Target } from '../nodes/target.js';
import { shellQuote } from '../util/shell.js';
import { type NodeState, readNodeState } from './nodeState.js';
import { fetchRunningBinary, type NodeProbe } from './probe.js';

export interface GuardedBinary {
  /** What it is to the user: "dlv", "containerd", "ctrdbg-agent". */
  what: string;
  /** The option it came from ("--dlv", "--binary", "$CTRDBG_DLV"), when the user offered it. */
  offeredAs?: string;
  /** What to do instead, for the hint. */
  hint: string;
}

/** The reasons `local` cannot run on the node; empty when it can. Reads the node only for the loader. */
export async function nodeRunProblems(
  host: RemoteHost | undefined,
  goArch: string,
  facts: ExecutableFacts,
): Promise<string[]> {
  const problems = platformProblems(facts, { goArch });
  if (problems.length === 0 && facts.interpreter && host) {
    const has = await host.exec(`test -e ${shellQuote(facts.interpreter)}`);
    if (has.code !== 0)
      problems.push(`it needs the dynamic loader ${facts.interpreter}, which the node does not have`);
  }
  return problems;
}

/** Throws the "cannot run on the node" error (exit 15) unless `local` can run there; returns what it is. */
export async function checkRunsOnNode(
  host: RemoteHost | undefined,
  target: Target,
  goArch: string,
  local: string,
  binary: GuardedBinary,
): Promise<ExecutableFacts> {
  const facts = await readExecutableFacts(local);
  const problems = await nodeRunProblems(host, goArch, facts);
  if (problems.length === 0) return facts;
  const name = binary.offeredAs
    ? `${binary.offeredAs} ${local}`
    : `The ${binary.what} ctrdbg would upload (${local})`;
  throw wrongPlatformError(
    `${name} cannot run on ${target.endpoint.label}, a linux/${goArch} node: ${problems.join('; ')}. Nothing was uploaded and the node was not changed.`,
    { hint: binary.hint, details: { facts, problems } },
  );
}

/**
 * Refuses (exit 6) a running containerd that is no debug build, before dlv touches it: attaching to a stripped
 * or optimised containerd only yields errors, and pauses it meanwhile. Cheap when setup recorded this very
 * binary (its sha256 is in the node state); else the running binary is fetched and read.
 */
export async function checkRunningDebuggable(
  host: RemoteHost,
  target: Target,
  probe: NodeProbe,
  state?: NodeState,
): Promise<void> {
  const known = state ?? (await readNodeState(host, target));
  if (known.installed?.sha256 === probe.runningSha256) return;
  const report = await inspectBinary(await fetchRunningBinary(host, probe), {
    expectedArch: probe.goArch,
    delveVersion: null,
  });
  if (!report.debuggable) {
    throw notDebuggableError(
      `containerd on ${target.endpoint.label} (${probe.binary}) is not a debug build: ${report.problems.join('; ')}.`,
      { hint: `Install one with: ctrdbg setup ${target.spec}` },
    );
  }
}
