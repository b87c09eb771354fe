/**
 * Delve on the node, reached over SSH, with containerd's safety tied to the SSH connection:
 *
 *   sudo ctrdbg-agent dlv --pid P --listen 127.0.0.1:0 -- dlv     (exec channel #1: the watchdog)
 *   sudo ctrdbg-agent relay 127.0.0.1:PORT                        (exec channel #2..n: one per RPC client)
 *
 * dlv listens on the node's loopback only. Clients reach it through a root relay rather than an SSH port
 * forward because Delve's same-user check (kept on) refuses loopback connections from another UNIX user,
 * which is what sshd's forwarded connections are (the login user, not root). When channel #1 closes — our
 * exit, a killed client, a dropped connection — the agent clears every breakpoint and detaches without
 * killing containerd.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { clearUserBreakpoints } from '../breakpoints/resolve.js';
import { parseDelveVersion } from '../build/debugInfo.js';
import { cacheDir, scriptsDir } from '../config.js';
import { binDir, readNodeState, writeNodeState } from '../deploy/nodeState.js';
import { remoteSha256 } from '../deploy/probe.js';
import { delveError, environmentError, nodeError } from '../errors.js';
import type { RemoteHost, RemoteProcess } from '../target/remoteHost.js';
import { shellJoin } from '../target/remoteHost.js';
import type { Target } from '../target/target.js';
import { run } from '../util/exec.js';
import { exists, sha256File } from '../util/fsx.js';
import type { Logger } from '../util/output.js';
import { type DelveClient, delveClientFromStream } from './rpcClient.js';

export interface AgentEvent {
  event: string;
  [key: string]: unknown;
}

export interface NodeDebugger {
  client: DelveClient;
  /** dlv's loopback address on the node, e.g. "127.0.0.1:41235". */
  listen: string;
  dlvPid: number;
  pid: number;
  delveVersion: string;
  /** A new raw stream to dlv (for a second client such as `dlv connect` or VS Code). */
  openStream(): Promise<Duplex>;
  /**
   * Clears breakpoints and detaches without killing containerd: first through our own client, then (whatever
   * happened) by closing the watchdog's stdin, which makes the agent do the same on the node.
   */
  stop(): Promise<{
    detached: boolean;
    cleared: number;
    agentExit: AgentEvent | undefined;
    errors: string[];
  }>;
  /** Fires once if the watchdog channel ends unexpectedly. */
  onLost(listener: (reason: string) => void): void;
}

/** Builds the agent for the node's arch (cached by source hash). */
export async function buildAgent(goArch: string): Promise<string> {
  const src = join(scriptsDir, 'node-agent');
  const hash = createHash('sha256')
    .update(await readFile(join(src, 'main.go')))
    .update(await readFile(join(src, 'go.mod')))
    .digest('hex')
    .slice(0, 16);
  const dir = join(cacheDir(), 'agent', `${goArch}-${hash}`);
  const out = join(dir, 'ctrdbg-agent');
  if (await exists(out)) return out;
  await mkdir(dir, { recursive: true });
  const result = await run('go', ['build', '-trimpath', '-o', `${out}.tmp`, '.'], {
    cwd: src,
    env: {
      CGO_ENABLED: '0',
      GOOS: 'linux',
      GOARCH: goArch,
      GO111MODULE: 'on',
      GOFLAGS: '-mod=mod',
      GOPROXY: 'off',
    },
    timeout: 300_000,
  });
  if (result.exitCode !== 0)
    throw environmentError(`Building ctrdbg-agent for ${goArch} failed: ${result.stderr.trim()}`, {
      hint: 'Install golang-go.',
    });
  await rename(`${out}.tmp`, out);
  return out;
}

/** Puts the agent on the node if it is missing or different; returns its path there. */
export async function ensureAgent(
  host: RemoteHost,
  target: Target,
  goArch: string,
  log: Logger,
): Promise<string> {
  const local = await buildAgent(goArch);
  const sha = await sha256File(local);
  const path = `${binDir(target)}/ctrdbg-agent`;
  if ((await remoteSha256(host, path)) !== sha) {
    log.step(`installing ctrdbg-agent on the node (${path})`);
    await host.execChecked(shellJoin(['mkdir', '-p', binDir(target)]), { sudo: true });
    await host.upload(local, path, { sudo: true, mode: 0o755 });
    const state = await readNodeState(host, target);
    state.agent = { path, sha256: sha };
    await writeNodeState(host, target, state);
  }
  return path;
}

/** Reads the agent's JSON event lines from its stdout. */
function agentEvents(proc: RemoteProcess, onEvent: (e: AgentEvent) => void): void {
  let buffer = '';
  proc.stream.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (!line) continue;
      try {
        onEvent(JSON.parse(line) as AgentEvent);
      } catch {
        // not an event line
      }
    }
  });
}

export interface StartOptions {
  pid: number;
  agentPath: string;
  dlvPath: string;
  log: Logger;
  readyTimeoutMs?: number;
}

export async function startNodeDebugger(host: RemoteHost, options: StartOptions): Promise<NodeDebugger> {
  const { pid, agentPath, dlvPath, log } = options;
  // The agent keeps its log (and dlv's debugger log) on the node: what the watchdog did must be readable after
  // the SSH channel that carried its stderr is gone.
  const logFile = `${agentPath.replace(/\/bin\/ctrdbg-agent$/, '')}/agent.log`;
  const command = shellJoin([
    agentPath,
    'dlv',
    '--pid',
    String(pid),
    '--listen',
    '127.0.0.1:0',
    '--log-file',
    logFile,
    '--',
    dlvPath,
  ]);
  log.debug(`node: sudo ${command}`);
  const agent = await host.spawn(command, { sudo: true });
  const events: AgentEvent[] = [];
  let stderr = '';
  agent.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 65536) stderr = stderr.slice(-32768);
  });
  const lostListeners: ((reason: string) => void)[] = [];
  let stopping = false;
  let exitEvent: AgentEvent | undefined;

  const ready = new Promise<AgentEvent>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          delveError(`dlv did not start on the node within ${(options.readyTimeoutMs ?? 60_000) / 1000} s.`, {
            hint: `Its output: ${stderr.trim().split('\n').slice(-3).join(' | ') || 'none'}`,
          }),
        ),
      options.readyTimeoutMs ?? 60_000,
    );
    agentEvents(agent, (e) => {
      events.push(e);
      if (e.event === 'ready') {
        clearTimeout(timer);
        resolve(e);
      } else if (e.event === 'error') {
        clearTimeout(timer);
        reject(
          delveError(`dlv could not attach to containerd (pid ${pid}): ${String(e.message)}`, {
            hint: hintFor(String(e.message), stderr),
          }),
        );
      } else if (e.event === 'exit') {
        exitEvent = e;
      }
    });
    void agent.exited.then(({ code }) => {
      clearTimeout(timer);
      reject(
        delveError(`dlv exited on the node before it was ready (exit ${code}).`, {
          hint: hintFor('', stderr),
        }),
      );
      if (!stopping) for (const l of lostListeners) l(`the debugger on the node exited (${code})`);
    });
  });
  const readyEvent = await ready;
  const listen = String(readyEvent.listen);
  if (!/^127\.0\.0\.1:\d+$/.test(listen)) {
    agent.end();
    throw nodeError(`The agent reported a non-loopback address (${listen}); refusing to use it.`);
  }
  const relays: RemoteProcess[] = [];
  const openStream = async (): Promise<Duplex> => {
    const relay = await host.spawn(shellJoin([agentPath, 'relay', listen]), { sudo: true });
    relays.push(relay);
    return relay.stream;
  };
  const client = delveClientFromStream(await openStream(), {
    endpoint: `${host.endpoint.label} ${listen}`,
    logger: log,
  });
  const version = await client.getVersion();
  if (version.APIVersion !== 2)
    throw delveError(`dlv on the node speaks API v${version.APIVersion}, not v2.`);

  return {
    client,
    listen,
    dlvPid: Number(readyEvent.dlvPid),
    pid,
    // DelveVersion is dlv's whole banner ("Version: 1.20.2\nBuild: …"); keep the number.
    delveVersion: parseDelveVersion(version.DelveVersion) ?? version.DelveVersion.split('\n')[0] ?? '',
    openStream,
    onLost(listener) {
      lostListeners.push(listener);
    },
    async stop() {
      stopping = true;
      const errors: string[] = [];
      let cleared = 0;
      let detached = false;
      if (!client.closed) {
        try {
          await stopRunningTarget(client);
          cleared = await clearUserBreakpoints(client);
          await settleAndStop(client);
          await client.detach(false);
          detached = true;
        } catch (error) {
          errors.push(`client-side detach: ${(error as Error).message}`);
        }
        client.close();
      }
      for (const relay of relays) relay.end();
      // Closing stdin makes the agent clean up on its own if our detach did not happen, then exit.
      agent.end();
      const timeout = new Promise<'timeout'>((resolve) =>
        setTimeout(() => resolve('timeout'), 45_000).unref(),
      );
      const outcome = await Promise.race([agent.exited, timeout]);
      if (outcome === 'timeout') errors.push('the agent did not exit within 45 s');
      const exit = exitEvent ?? events.find((e) => e.event === 'exit');
      if (!detached && exit?.reason === 'detached') detached = true;
      if (!detached && exit?.reason === 'terminated') detached = true;
      return { detached, cleared: cleared || Number(exit?.cleared ?? 0), agentExit: exit, errors };
    },
  };
}

/**
 * Stops the target if it runs (asking Delve, not our own flag: in --interactive another client may have resumed
 * it). Delve's halt is kill(pid, SIGTRAP) on Linux, and if it reaches a target that has just stopped at a
 * breakpoint by itself, the SIGTRAP stays pending and later kills containerd. Under load the target stops at the
 * next hit within milliseconds, so wait for that first; only a target still running after a while is halted.
 */
export async function stopRunningTarget(client: DelveClient): Promise<void> {
  const deadline = Date.now() + 1500;
  while (Date.now() < deadline) {
    if (!(await client.state(true, { timeoutMs: 10_000 })).Running) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  await client.halt({ timeoutMs: 10_000 });
}

/**
 * Leaves the target stopped with no SIGTRAP pending, so that the detach delivers nothing to containerd.
 * Two kinds can be pending after a stop: a "phantom" breakpoint hit (a thread executed an int3 just as the target
 * stopped; Delve rewinds its PC, but only while attached and resuming) and Delve's own halt, which on Linux is
 * kill(pid, SIGTRAP) and stays pending if it reaches a target that had already stopped. Either kills containerd
 * if it is still pending at detach (seen under concurrent load). So: resume with no breakpoints left; a continue
 * that returns by itself has just consumed a pending trap, so resume again; once the target has run for a while,
 * only our halt can stop it, and that halt finds it running. The same loop runs in ctrdbg-agent's cleanup.
 */
export async function settleAndStop(client: DelveClient): Promise<void> {
  for (let attempt = 0; attempt < 8; attempt++) {
    const result = await client.continue({ timeoutMs: 200 });
    if (result.halted) return;
  }
  throw delveError('containerd kept stopping on its own after the breakpoints were cleared.');
}

function hintFor(message: string, stderr: string): string {
  const text = `${message}\n${stderr}`;
  if (/operation not permitted|ptrace/i.test(text)) {
    return 'ptrace was refused: check kernel.yama.ptrace_scope (ctrdbg doctor) and that nothing else traces containerd.';
  }
  if (/already traced|TracerPid/i.test(text))
    return 'Another debugger is attached: quit it with `exit -c` first.';
  if (/could not find|no such process/i.test(text))
    return 'containerd restarted meanwhile: run the command again.';
  if (/version of Go|too old|too new/i.test(text))
    return 'This Delve does not support the Go version containerd was built with.';
  return `dlv said: ${stderr.trim().split('\n').slice(-3).join(' | ') || 'nothing'}`;
}

/** The dlv the node has (from setup), or a clear error. */
export async function nodeDlvPath(host: RemoteHost, target: Target): Promise<string> {
  const state = await readNodeState(host, target);
  const path = state.dlv?.path ?? `${binDir(target)}/dlv`;
  if (!(await remoteSha256(host, path))) {
    throw nodeError(`There is no dlv on ${target.endpoint.label} (${path}).`, {
      hint: `Run: ctrdbg setup ${target.spec}`,
    });
  }
  return path;
}
