/**
 * Opening a node, the one way every command does it: resolve the target, connect over SSH (host key pinned),
 * check passwordless sudo, probe what runs (containerd's main PID, binary, version, tracer). `setup`, `restore`,
 * `attach` and `sets check` call it; `doctor` runs the same stages one at a time so it can report each as a check.
 */
import { nodeError } from '../errors.js';
import type { RemoteHost } from '../nodes/remoteHost.js';
import { resolveTarget, type TargetOptions } from '../nodes/resolveTarget.js';
import { connectHost } from '../nodes/ssh/sshHost.js';
import type { Target } from '../nodes/target.js';
import type { Logger } from '../util/output.js';
import { type NodeProbe, probeNode } from './probe.js';

export interface OpenNodeOptions {
  log: Logger;
  /** Refuse a containerd that a debugger traces already, with this as the hint (what to do about it). */
  refuseTraced?: string;
  /** Say "connecting to …" first (setup does; quick commands do not). */
  announce?: boolean;
  /** false: a node whose containerd is down still opens (restore repairs it); the probe then has pid 0. */
  requireRunning?: boolean;
}

export interface OpenedNode {
  target: Target;
  host: RemoteHost;
  probe: NodeProbe;
  /** Closes the SSH connection. */
  close(): Promise<void>;
}

export async function openNode(
  spec: string | undefined,
  targetOptions: TargetOptions,
  options: OpenNodeOptions,
): Promise<OpenedNode> {
  const target = await resolveTarget(spec, targetOptions);
  if (options.announce)
    options.log.step(
      `connecting to ${target.endpoint.label} (${target.endpoint.user}@${target.endpoint.host}:${target.endpoint.port})`,
    );
  const host = await connectHost(target.endpoint);
  try {
    await host.checkSudo();
    const probe = await probeNode(
      host,
      target,
      options.requireRunning === false ? { requireRunning: false } : {},
    );
    if (options.refuseTraced !== undefined && probe.tracerPid) {
      throw nodeError(`containerd (pid ${probe.pid}) is traced by pid ${probe.tracerPid} already.`, {
        hint: options.refuseTraced,
      });
    }
    return { target, host, probe, close: () => host.close() };
  } catch (error) {
    await host.close();
    throw error;
  }
}
