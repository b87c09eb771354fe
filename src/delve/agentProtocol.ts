/**
 * The node agent's protocol (node-agent/protocol.go is the other side): one JSON object per line. The watchdog
 * (`ctrdbg-agent dlv`) writes its events on stdout; a relay (`ctrdbg-agent relay`) writes its notices on stderr,
 * because its stdout is the debugger stream. test/unit/agent-protocol.test.ts checks these names against what
 * `ctrdbg-agent protocol` prints, so the two sides cannot drift apart again.
 */

export const AGENT_PROTOCOL_VERSION = 2;

export const AGENT_EVENTS = ['ready', 'error', 'exit', 'relay'] as const;

/** What became of dlv when the watchdog ended. Whether the target is still traced is `ExitEvent.target`. */
export const AGENT_EXIT_REASONS = ['detached', 'terminated', 'dlv-exited', 'dlv-left-running'] as const;
export type AgentExitReason = (typeof AGENT_EXIT_REASONS)[number];

/** What a relay did about a client's request. */
export const RELAY_ACTIONS = ['detached', 'refused', 'client-left'] as const;
export type RelayAction = (typeof RELAY_ACTIONS)[number];

/** The debugged process as /proc shows it. */
export interface TargetState {
  alive: boolean;
  tracerPid: number;
}

export interface ReadyEvent {
  event: 'ready';
  /** Always 127.0.0.1:PORT. */
  listen: string;
  dlvPid: number;
  targetPid: number;
  agentVersion: string;
  protocolVersion: number;
}

export interface ErrorEvent {
  event: 'error';
  message: string;
  tracerPid?: number;
}

export interface ExitEvent {
  event: 'exit';
  reason: AgentExitReason;
  /** Breakpoints the agent cleared; -1 when unknown. */
  cleared: number;
  target: TargetState;
  /** Why the watchdog started cleaning up ("stdin-closed", "signal SIGTERM"); absent when dlv exited by itself. */
  trigger?: string;
  dlvPid?: number;
  dlvError?: string;
  message?: string;
}

export interface RelayNotice {
  event: 'relay';
  action: RelayAction;
  protocol: 'json-rpc' | 'dap' | 'none';
  /** The request as the relay saw it, e.g. "Detach{Kill:true}", "disconnect{terminateDebuggee:true}". */
  request?: string;
  cleared?: number;
  message?: string;
}

export type AgentEvent = ReadyEvent | ErrorEvent | ExitEvent | RelayNotice;

/** Parses one line the agent wrote; undefined for anything that is not one of its events (log lines). */
export function parseAgentLine(line: string): AgentEvent | undefined {
  const text = line.trim();
  if (!text.startsWith('{')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const event = (value as { event?: unknown }).event;
  return typeof event === 'string' && (AGENT_EVENTS as readonly string[]).includes(event)
    ? (value as AgentEvent)
    : undefined;
}

/** Splits a byte stream into lines and hands each agent event to `onEvent`. */
export function agentLineReader(onEvent: (event: AgentEvent) => void): (chunk: Buffer | string) => void {
  let buffer = '';
  return (chunk) => {
    buffer += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
      const event = parseAgentLine(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
      if (event) onEvent(event);
    }
    // A line longer than any event is noise (dlv output); do not let it grow without bound.
    if (buffer.length > 1 << 20) buffer = '';
  };
}

/**
 * Whether the watchdog's end left the target detached: only /proc decides (TracerPid 0), never the reason
 * alone — the SIGTERM fallback detaches too, and a dlv that died may have left the target traced or dead.
 */
export function exitLeftTargetDetached(exit: ExitEvent | undefined): boolean {
  return Boolean(
    exit && exit.reason !== 'dlv-left-running' && exit.target.alive && exit.target.tracerPid === 0,
  );
}
