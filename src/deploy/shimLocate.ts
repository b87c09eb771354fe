/**
 * Which containerd-shim-runc-v2 the node's containerd starts for a new pod, found the way containerd itself
 * finds it (1.7 runtime/v2/manager.go `resolveRuntimePath`, unchanged in 2.x), asked of the running daemon:
 *
 *   1. CRI's `runtime_path` for its default runtime, when the config sets one (an absolute path, used as is);
 *   2. otherwise the runtime name `io.containerd.runc.v2` becomes `containerd-shim-runc-v2`, looked up
 *      a. in containerd's working directory (Go's filepath.Abs of the bare name: a quirk, rarely a hit),
 *      b. on containerd's own PATH (its /proc/PID/environ, not the SSH session's),
 *      c. beside containerd's binary.
 *
 * containerd caches the answer per runtime name for its lifetime; the swap keeps the path, so that is fine.
 * Symlinks are resolved: the swap replaces the file, never a link pointing at it. The parsing is pure.
 */
import { nodeError } from '../errors.js';
import type { RemoteHost } from '../nodes/remoteHost.js';
import type { Target } from '../nodes/target.js';
import { shellQuote } from '../util/shell.js';
import { daemonConfigPath, type NodeProbe } from './probe.js';

export const SHIM_NAME = 'containerd-shim-runc-v2';
const RUNC_V2 = 'io.containerd.runc.v2';
/** CRI's plugin id in config version 1 (`plugins.cri`), 2 (containerd 1.x) and 3 (containerd 2.x). */
const CRI_PLUGINS = ['io.containerd.cri.v1.runtime', 'io.containerd.grpc.v1.cri', 'cri'];

/* ------------------------------------------------------------------ containerd's config (pure) */

/**
 * The string values of a TOML file by their full key path (`plugins\0io.containerd.grpc.v1.cri\0containerd\0…`).
 * Only what containerd's configs use: `[table]` headers with bare or quoted keys, dotted keys, `#` comments.
 * Arrays of tables, multi-line strings and non-string values are skipped: no runtime setting ctrdbg reads is one.
 */
export function tomlStrings(text: string): Map<string, string> {
  const values = new Map<string, string>();
  let table: string[] = [];
  for (const raw of text.split('\n')) {
    const line = stripComment(raw).trim();
    if (!line) continue;
    if (line.startsWith('[[')) {
      table = ['\0array'];
      continue;
    }
    const header = /^\[(.*)\]$/.exec(line);
    if (header) {
      table = splitKey(header[1] ?? '');
      continue;
    }
    const eq = indexOutsideQuotes(line, '=');
    if (eq < 0) continue;
    const key = splitKey(line.slice(0, eq));
    const value = tomlString(line.slice(eq + 1).trim());
    if (value !== undefined && key.length) values.set([...table, ...key].join('\0'), value);
  }
  return values;
}

function stripComment(line: string): string {
  const at = indexOutsideQuotes(line, '#');
  return at < 0 ? line : line.slice(0, at);
}

function indexOutsideQuotes(text: string, char: string): number {
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === char) return i;
  }
  return -1;
}

/** `plugins."io.containerd.grpc.v1.cri".containerd` → ['plugins', 'io.containerd.grpc.v1.cri', 'containerd']. */
function splitKey(key: string): string[] {
  const parts: string[] = [];
  let rest = key.trim();
  while (rest) {
    const quoted = /^("((?:[^"\\]|\\.)*)"|'([^']*)')\s*/.exec(rest);
    if (quoted) {
      parts.push(quoted[2] !== undefined ? quoted[2].replace(/\\(.)/g, '$1') : (quoted[3] ?? ''));
      rest = rest.slice(quoted[0].length);
    } else {
      const bare = /^([A-Za-z0-9_-]+)\s*/.exec(rest);
      if (!bare) return [];
      parts.push(bare[1] ?? '');
      rest = rest.slice(bare[0].length);
    }
    if (rest.startsWith('.')) rest = rest.slice(1).trim();
    else if (rest) return [];
  }
  return parts;
}

function tomlString(value: string): string | undefined {
  const basic = /^"((?:[^"\\]|\\.)*)"$/.exec(value);
  if (basic)
    return (basic[1] ?? '').replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c));
  const literal = /^'([^']*)'$/.exec(value);
  return literal ? literal[1] : undefined;
}

export interface CriRuntime {
  /** The default runtime's name (`default_runtime_name`, `runc` when unset). */
  name: string;
  /** Its `runtime_type` (`io.containerd.runc.v2` when unset, as CRI defaults it). */
  type: string;
  /** Its `runtime_path`, when set. */
  path?: string;
  /** The table it came from, for messages. */
  table: string;
}

/** CRI's default runtime as containerd's config (its text) sets it; undefined without a CRI section. */
export function criDefaultRuntime(configText: string): CriRuntime | undefined {
  const values = tomlStrings(configText);
  const keys = [...values.keys()];
  for (const plugin of CRI_PLUGINS) {
    const prefix = ['plugins', plugin].join('\0');
    if (!keys.some((k) => k.startsWith(`${prefix}\0`))) continue;
    const name = values.get([prefix, 'containerd', 'default_runtime_name'].join('\0')) || 'runc';
    const table = [prefix, 'containerd', 'runtimes', name].join('\0');
    const type = values.get(`${table}\0runtime_type`) || RUNC_V2;
    const path = values.get(`${table}\0runtime_path`);
    return {
      name,
      type,
      ...(path ? { path } : {}),
      table: `plugins.${JSON.stringify(plugin)}.containerd.runtimes.${name}`,
    };
  }
  return undefined;
}

/* ------------------------------------------------------------------ the lookup by name (pure) */

export interface ShimCandidate {
  path: string;
  why: string;
}

/** Where containerd looks for `containerd-shim-runc-v2` by name, in its order (see the file comment). */
export function shimCandidates(facts: {
  cwd?: string;
  pathEnv?: string;
  containerdBinary: string;
}): ShimCandidate[] {
  const out: ShimCandidate[] = [];
  const join = (dir: string) => `${dir.replace(/\/+$/, '') || ''}/${SHIM_NAME}`;
  if (facts.cwd?.startsWith('/'))
    out.push({ path: join(facts.cwd), why: "in containerd's working directory" });
  // Go's exec.LookPath skips nothing but refuses relative results (ErrDot): only absolute entries count.
  for (const dir of (facts.pathEnv ?? '').split(':'))
    if (dir.startsWith('/')) out.push({ path: join(dir), why: `first on containerd's PATH (${dir})` });
  const beside = facts.containerdBinary.replace(/\/[^/]*$/, '');
  if (beside) out.push({ path: join(beside), why: "beside containerd's binary" });
  return out;
}

/* ------------------------------------------------------------------ on the node */

export interface ShimLocation {
  /** The file containerd runs for CRI's pods (symlinks resolved): what `setup --with-shim` replaces. */
  path: string;
  /** The path as containerd names it, when that is a symlink to `path`. */
  named: string;
  /** How it was found, for the user: "CRI's runtime_path (plugins.…)", "first on containerd's PATH (/usr/bin)". */
  why: string;
  /** Said once by setup and doctor: clients that would start another shim, a default runtime that is not runc. */
  warnings: string[];
}

/** Finds the shim the way the running containerd (pid in `probe`) does; throws when it would find none. */
export async function locateNodeShim(
  host: RemoteHost,
  target: Target,
  probe: NodeProbe,
): Promise<ShimLocation> {
  if (!probe.pid)
    throw nodeError(
      `containerd is not running on ${target.endpoint.label}: ctrdbg cannot tell which shim it runs.`,
      {
        hint: 'Start containerd first, then try again.',
      },
    );
  const facts = await host.exec(
    `readlink /proc/${probe.pid}/cwd; tr '\\0' '\\n' < /proc/${probe.pid}/environ | sed -n 's/^PATH=//p' | head -n1`,
    { sudo: true },
  );
  const [cwd = '', pathEnv = ''] = facts.stdout.split('\n');
  const config = await daemonConfigPath(host, probe.pid);
  const configText = (await host.exec(`cat ${shellQuote(config)}`, { sudo: true })).stdout;
  const cri = criDefaultRuntime(configText);
  const byName = shimCandidates({ cwd, pathEnv, containerdBinary: probe.binary });
  const all: ShimCandidate[] = [
    ...(cri?.path ? [{ path: cri.path, why: `CRI's runtime_path (${cri.table} in ${config})` }] : []),
    ...byName,
  ];
  // One round trip: for each candidate, whether it is an executable file and where its symlinks lead.
  const check = await host.exec(
    all
      .map(
        (c) =>
          `if [ -f ${shellQuote(c.path)} ] && [ -x ${shellQuote(c.path)} ]; then readlink -f ${shellQuote(c.path)}; else echo -; fi`,
      )
      .join('; '),
    { sudo: true },
  );
  const real = check.stdout.split('\n');
  const found = all.map((c, i) => ({ ...c, real: real[i] && real[i] !== '-' ? real[i] : undefined }));
  const warnings: string[] = [];
  if (cri && cri.type !== RUNC_V2)
    warnings.push(
      `CRI's default runtime '${cri.name}' is ${cri.type}, not ${RUNC_V2}: pods use that runtime's shim, not ${SHIM_NAME}`,
    );
  const criHit = cri?.path ? found[0] : undefined;
  if (criHit && !criHit.real)
    throw nodeError(
      `containerd's config sets CRI's runtime_path to ${cri?.path}, which is not an executable file.`,
      {
        hint: `Fix ${config} (${cri?.table}) or install the shim there; CRI cannot start pods as it is.`,
      },
    );
  const nameHit = found.slice(criHit ? 1 : 0).find((c) => c.real);
  const chosen = criHit?.real ? criHit : nameHit;
  if (!chosen?.real)
    throw nodeError(
      `containerd on ${target.endpoint.label} would find no ${SHIM_NAME} (looked ${byName.map((c) => c.path).join(', ')}).`,
      {
        hint: `Install ${SHIM_NAME} on the node (it comes with containerd), then try again.`,
      },
    );
  if (criHit?.real && nameHit?.real && nameHit.real !== criHit.real)
    warnings.push(
      `tasks started without CRI (ctr, nerdctl) run ${nameHit.real} (${nameHit.why}), not CRI's ${criHit.real}`,
    );
  return { path: chosen.real, named: chosen.path, why: chosen.why, warnings };
}

export interface RunningShim {
  pid: number;
  /** The file was replaced after this shim started: it still runs the binary it started with. */
  replaced: boolean;
}

/** The processes running the shim at `path` (or a binary since replaced at that path). */
export async function runningShims(host: RemoteHost, path: string): Promise<RunningShim[]> {
  const p = shellQuote(path);
  const out = await host.exec(
    `for d in /proc/[0-9]*; do e=$(readlink "$d/exe" 2>/dev/null) || continue; case "$e" in ${p}) echo "\${d#/proc/} same";; ${shellQuote(`${path} (deleted)`)}) echo "\${d#/proc/} replaced";; esac; done`,
    { sudo: true, timeoutMs: 30_000 },
  );
  return out.stdout
    .split('\n')
    .map((l) => l.trim().split(' '))
    .filter(([pid]) => /^\d+$/.test(pid ?? ''))
    .map(([pid, how]) => ({ pid: Number(pid), replaced: how === 'replaced' }));
}

/** "2 running shims: 1 on this file, 1 on a binary replaced at this path since it started (kept until …)". */
export function describeRunningShims(running: RunningShim[]): string {
  if (running.length === 0) return 'no shim running';
  const replaced = running.filter((r) => r.replaced).length;
  const same = running.length - replaced;
  const parts = [
    ...(same ? [`${same} on this file`] : []),
    ...(replaced
      ? [
          `${replaced} on a binary replaced at this path since ${replaced === 1 ? 'it' : 'they'} started (kept until ${replaced === 1 ? 'its pod ends' : 'their pods end'})`,
        ]
      : []),
  ];
  return `${running.length} running shim${running.length === 1 ? '' : 's'}: ${parts.join(', ')}`;
}
