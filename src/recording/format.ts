/**
 * The session file: ctrdbg's own, versioned JSONL format. The recorder converts Delve's variables into
 * these types, so replay never depends on Delve's wire types and a recording outlives any Delve version.
 *
 *   line 1      RecordingHeader
 *   line 2..n   HitRecord, one per breakpoint hit, in the order the hits were observed
 *   last line   EndRecord (missing, or cut short, when the recorder was killed; readers tolerate both)
 *
 * Compatibility: readers accept any file whose header says `format: "ctrdbg-session"` and
 * `version <= RECORDING_VERSION`; a newer version is refused with a hint to upgrade ctrdbg.
 * New optional fields may be added without a version bump; renaming or retyping a field bumps it.
 */

export const RECORDING_FORMAT = 'ctrdbg-session';
export const RECORDING_VERSION = 1;

export interface RecordingTarget {
  /** What the user typed, e.g. "lab", "minikube:dev", "ssh://docker@10.0.0.5:22". */
  spec: string;
  kind: 'lab' | 'minikube' | 'ssh';
  host: string;
  port: number;
  user: string;
  /** minikube node name for multi-node profiles. */
  node?: string;
}

export interface RecordingContainerd {
  pid: number;
  binary: string;
  version: string;
  revision?: string;
  sha256: string;
  buildId?: string;
  goVersion?: string;
}

export interface RecordedBreakpoint {
  /** Delve's breakpoint id; hit records refer to it. */
  id: number;
  /** "<set>/<entry>", unique within the session. */
  name: string;
  set: string;
  entry: string;
  function: string;
  file: string;
  line: number;
  optimized: boolean;
  expressions: string[];
  condition?: string;
  /** Where in the function: its entry (left out), its returns, or the line after a call (`callee`). */
  at?: 'entry' | 'return' | 'after-call';
  callee?: string;
  /** The process the breakpoint lives in, when not containerd (a shim's are armed in every followed shim). */
  process?: string;
}

export interface RecordingHeader {
  type: 'header';
  format: typeof RECORDING_FORMAT;
  version: number;
  createdAt: string;
  ctrdbgVersion: string;
  target: RecordingTarget;
  containerd: RecordingContainerd;
  /** The build manifest written by `ctrdbg build`, when the node's binary came from one. */
  buildManifest?: Record<string, unknown> | null;
  delve?: { version: string; apiVersion: number };
  sets: string[];
  breakpoints: RecordedBreakpoint[];
  /**
   * `trigger` lists what was masked in the trigger line (e.g. "--creds value", "URL password"): credentials
   * there are always masked, whatever `enabled` says.
   */
  redaction: { enabled: boolean; rules: string[]; trigger?: string[] };
  /** The trigger command, if one was run, with credential-looking arguments masked. */
  trigger?: string;
}

/**
 * A recorded value. Scalars carry `value`; composites carry `children`. `len`/`cap` are the real sizes;
 * `truncated` is set when fewer children (or a shorter string) were loaded than exist.
 */
export interface RecordedValue {
  name: string;
  type: string;
  /** Go kind, lower case: "struct", "ptr", "string", "int64", "slice", "map", "interface", "bool", "func", … */
  kind: string;
  value?: string;
  len?: number;
  cap?: number;
  truncated?: boolean;
  children?: RecordedValue[];
  /** Delve could not read it (e.g. optimised away, unreadable memory). */
  error?: string;
  /** The value was removed by the redaction rules; `value`/`children` are absent. */
  redacted?: boolean;
}

export interface RecordedFrame {
  function: string;
  file: string;
  line: number;
  pc?: number;
}

export interface RecordedExpression {
  expr: string;
  value?: RecordedValue;
  error?: string;
}

export interface HitRecord {
  type: 'hit';
  /** 1-based, contiguous. */
  seq: number;
  /** Milliseconds since the session started (monotonic clock). */
  t: number;
  /** Wall-clock time of the hit, ISO 8601. */
  wall: string;
  breakpoint: { id: number; name: string; set: string };
  goroutine: { id: number; function?: string };
  thread: number;
  /** How long containerd was stopped for this hit, in milliseconds (stop observed → continue sent). */
  stoppedMs: number;
  location: { function: string; file: string; line: number };
  stack: RecordedFrame[];
  args: RecordedValue[];
  locals: RecordedValue[];
  expressions: RecordedExpression[];
  /** Where in the function the hit is: left out for an entry. */
  at?: 'return' | 'after-call';
  /** at: return — what the function returned (named results, or ~r0…). */
  results?: RecordedValue[];
  /**
   * The debugged process, when a recording follows more than one (containerd and its shims). Absent in
   * recordings of containerd alone; replay groups hits by it where present (filter `process=`, HTML lanes).
   */
  process?: { pid: number; binary: string };
}

export type EndReason =
  | 'trigger-finished'
  | 'max-hits'
  | 'duration'
  | 'interrupted'
  | 'error'
  | 'connection-lost'
  | 'interactive-ended'
  /** --interactive: the debugger client asked to end the session (dlv `exit`); ctrdbg detached without killing. */
  | 'handover-detached'
  /** --interactive: the debugger client left containerd running. */
  | 'handover-ended';

export interface EndRecord {
  type: 'end';
  /** The longest time containerd was held stopped at once (ms), hand-over holds included. */
  maxStoppedMs?: number;
  /** The trigger, if one ran: how it ended, and whether ctrdbg had to stop it. */
  trigger?: { exitCode: number | null; signal?: string; stoppedBy?: 'SIGTERM' | 'SIGKILL' };
  t: number;
  wall: string;
  reason: EndReason;
  message?: string;
  hits: number;
  perBreakpoint: Record<string, number>;
  /**
   * Hits containerd made that are not in the file: the node's buffer was full because ctrdbg read too slowly
   * (containerd is never made to wait for ctrdbg). 0 unless said so in the summary.
   */
  dropped: number;
  /** Times containerd stopped at a breakpoint (several callers can stop together: one stop, several hits). */
  stops?: number;
  /** Returns of onlyFailures entries left out because they succeeded. */
  filtered?: number;
  /** The most hit bytes that waited on the node at once for ctrdbg to read them. */
  queuedPeakBytes?: number;
  /** Whether breakpoints were cleared and Delve detached without killing containerd. */
  detached: boolean;
  containerdPid: number;
  /** Whether containerd answered on its socket after detaching. */
  containerdServing?: boolean;
}

export type RecordingLine = RecordingHeader | HitRecord | EndRecord;
