/**
 * `ctrdbg-agent scope` on the node: the parameters, locals and package names of functions, read from the DWARF
 * of the running binary (/proc/PID/exe) without stopping it. `sets check` uses it to warn about expressions that
 * name a variable the function does not have.
 */
import type { RemoteHost } from '../nodes/remoteHost.js';
import { shellJoin } from '../util/shell.js';
import type { ScopeReport } from './agentProtocol.js';

/** The scopes of `functions` in process `pid`'s binary; the report's `error` says why when it could not read it. */
export async function readFunctionScopes(
  host: RemoteHost,
  agentPath: string,
  pid: number,
  functions: readonly string[],
): Promise<ScopeReport> {
  const result = await host.exec(shellJoin([agentPath, 'scope', '--pid', String(pid), ...functions]), {
    sudo: true,
  });
  try {
    return JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '') as ScopeReport;
  } catch {
    return {
      binary: `/proc/${pid}/exe`,
      functions: [],
      packages: [],
      error: `the agent's scope answered no JSON (exit ${result.code}): ${result.stderr.trim().split('\n').at(-1) ?? ''}`,
    };
  }
}
