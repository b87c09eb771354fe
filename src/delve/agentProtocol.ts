/**
 * The node agent's protocol (node-agent/protocol.go is the other side): one JSON object per line. The watchdog
 * (`ctrdbg-agent dlv`) writes its events on stdout; a relay (`ctrdbg-agent relay`) writes its notices on stderr,
 * because its stdout is the debugger stream. test/unit/agent-protocol.test.ts checks these names against what
 * `ctrdbg-agent protocol` prints, so the two sides cannot drift apart again.
 */

export const AGENT_PROTOCOL_VERSION = 3;

export const AGENT_EVENTS = [
  'ready',
  'error',
  'exit',
  'relay',
  'resolved',
  'created',
  'recording',
  'hit',
  'dropped',
  'failed',
  'followed',
] as const;

/** Commands ctrdbg sends on the watchdog's stdin, one JSON object per line (its end still means "ctrdbg is gone"). */
export const AGENT_COMMANDS = ['resolve', 'create', 'record', 'stop'] as const;

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
  /** Delve's version number ("1.20.2") and API version (2), as dlv reported them. */
  delveVersion: string;
  apiVersion: number;
  /** dlv's own attach: from its start until it listened (the process is stopped from its attach on). */
  dlvAttachMs: number;
}

/** Delve's LoadConfig (service/api/types.go). */
export interface AgentLoadConfig {
  FollowPointers: boolean;
  MaxVariableRecurse: number;
  MaxStringLen: number;
  MaxArrayValues: number;
  MaxStructFields: number;
}

/** One place to look up: a function's entry (plus lines), its returns, or the line after a call it makes. */
export interface PointSpec {
  key: string;
  function: string;
  at?: 'entry' | 'return' | 'after-call';
  lineOffset?: number;
  callees?: string[];
}

/**
 * The error of an after-call point whose function makes no direct call to any of its callees (node-agent/arm.go,
 * errNoCallee): the function is there, the call is not — in this version, or through an interface or func value.
 */
export const NO_CALLEE_ERROR = 'callee not called';

export interface ResolvedPoint {
  key: string;
  found: boolean;
  function?: string;
  file?: string;
  line?: number;
  optimized?: boolean;
  addrs?: number[];
  /** after-call: which callee matched, and the line of the call. */
  callee?: string;
  callLine?: number;
  /** The function is not in this binary. */
  missing?: boolean;
  /** It is, but the point could not be placed. */
  error?: string;
}

/** One Delve breakpoint to create: `request` (an api.Breakpoint without its place) at each address. */
export interface BreakpointSpec {
  key: string;
  /** The id ctrdbg knows the breakpoint by in every process (shims: the same in each); default Delve's. */
  logical?: number;
  addrs?: number[];
  file?: string;
  line?: number;
  request: Record<string, unknown>;
}

export interface CreatedBreakpoint {
  key: string;
  ids: number[];
  error?: string;
}

/** What `record` hands the agent so it follows shims: the trigger breakpoints in containerd, and what to arm. */
export interface FollowSpec {
  breakpoints: number[];
  socket: string;
  points: PointSpec[];
  create: BreakpointSpec[];
}

export type AgentCommand =
  | { cmd: 'resolve'; id: number; points: PointSpec[]; packages?: boolean }
  | { cmd: 'create'; id: number; breakpoints: BreakpointSpec[] }
  | {
      cmd: 'record';
      id: number;
      maxHits?: number;
      returnInfo?: AgentLoadConfig;
      rearmAfter?: number;
      follow?: FollowSpec;
    }
  | { cmd: 'stop'; id: number };

export interface ResolvedEvent {
  event: 'resolved';
  id: number;
  pid: number;
  points: ResolvedPoint[];
  /** The binary's package names, when the command asked for them. */
  packages?: string[];
  ms: number;
}

export interface CreatedEvent {
  event: 'created';
  id: number;
  pid: number;
  breakpoints: CreatedBreakpoint[];
  ms: number;
}

export interface FailedEvent {
  event: 'failed';
  id: number;
  cmd: string;
  message: string;
}

export interface RecordingEvent {
  event: 'recording';
  state: 'started' | 'stopped';
  pid: number;
  /** started: how long the process has been stopped since dlv attached, and dlv's own attach. */
  pausedMs?: number;
  dlvAttachMs?: number;
  /** stopped: */
  reason?: 'max-hits' | 'stopped' | 'exited' | 'error';
  message?: string;
  hits?: number;
  stops?: number;
  /** Stops that were the agent's own halt ending the loop, with no thread at a breakpoint of ctrdbg's. */
  haltStops?: number;
  dropped?: number;
  /** The most hit bytes that waited on the node for ctrdbg at once. */
  queuedPeakBytes?: number;
  maxHoldUs?: number;
  totalHoldUs?: number;
  rearms?: number;
  perBreakpoint?: Record<string, number>;
}

/** One thread stopped at one of ctrdbg's breakpoints: Delve's api.Thread (minus hit counts), the id ctrdbg created. */
export interface HitEvent {
  event: 'hit';
  pid: number;
  bp: number;
  stop: number;
  /** ms since the recording started, on the node's clock. */
  t: number;
  wall: string;
  /** How long the process stayed stopped at this stop (µs). */
  holdUs: number;
  thread: unknown;
}

/** Hits the agent could not queue because ctrdbg did not read fast enough. */
export interface DroppedEvent {
  event: 'dropped';
  count: number;
  perBreakpoint: Record<string, number>;
}

/** A shim the agent attached to while containerd was held at a follow breakpoint (or could not). */
export interface FollowedEvent {
  event: 'followed';
  pid: number;
  binary: string;
  id?: string;
  error?: string;
  /** How long the shim was stopped to attach and arm it; whether it ran before the recording started. */
  heldMs: number;
  existing?: boolean;
  breakpoints?: CreatedBreakpoint[];
  points?: ResolvedPoint[];
}

export interface ErrorEvent {
  event: 'error';
  message: string;
  tracerPid?: number;
  /** When dlv itself failed: its last lines and how it exited (its words say why). */
  dlvOutput?: string[];
  dlvExit?: string;
}

export interface FollowedExit {
  pid: number;
  binary: string;
  reason: AgentExitReason;
  cleared: number;
  target: TargetState;
  dlvError?: string;
  message?: string;
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
  /** dlv-exited: the last lines dlv printed before it exited. */
  dlvOutput?: string[];
  message?: string;
  /** The shims the agent followed, and how each was left. */
  followed?: FollowedExit[];
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

export type AgentEvent =
  | ReadyEvent
  | ErrorEvent
  | ExitEvent
  | RelayNotice
  | ResolvedEvent
  | CreatedEvent
  | FailedEvent
  | RecordingEvent
  | HitEvent
  | DroppedEvent
  | FollowedEvent;

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

/** What one function can name, read from its binary's DWARF (FunctionScope in node-agent/scope.go). */
export interface FunctionScope {
  function: string;
  found: boolean;
  params?: string[];
  locals?: string[];
  /** Package-level variables of the function's package, by their short name. */
  packageVars?: string[];
}

/** `ctrdbg-agent scope`'s answer, one JSON object (ScopeReport in node-agent/scope.go). */
export interface ScopeReport {
  binary: string;
  functions: FunctionScope[];
  /** The names packages go by in an expression (last element of the import path). */
  packages: string[];
  error?: string;
}
