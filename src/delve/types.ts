/**
 * Mirrors of the Delve API types ctrdbg sends and receives over JSON-RPC (API version 2). Only the fields ctrdbg
 * uses are required; everything Delve may omit is optional. JSON names follow Go's encoding/json: a field without
 * a `json:"…"` tag keeps its Go name (capitalised), tagged fields use the tag.
 *
 * Upstream (checked against Delve v1.27 source and Delve 1.20.2 on the wire):
 *   https://github.com/go-delve/delve/blob/master/service/api/types.go
 *   https://github.com/go-delve/delve/blob/master/service/rpc2/server.go
 * Nothing outside src/delve/ should import these: the recorder converts them (src/record/delveValues.ts).
 */

/** Corresponds to api.LoadConfig: how much of a value Delve reads from the target's memory. */
export interface LoadConfig {
  FollowPointers: boolean;
  MaxVariableRecurse: number;
  MaxStringLen: number;
  MaxArrayValues: number;
  /** -1 reads all fields. */
  MaxStructFields: number;
}

/** Corresponds to api.Function. The name's JSON key is `name` (Go field `Name_`). */
export interface DelveFunction {
  name: string;
  value: number;
  type: number;
  goType: number;
  /** True when the function was compiled with optimisations: values may be missing or wrong. */
  optimized: boolean;
}

/** Corresponds to api.Location (FindLocation returns logical locations with several PCs, or none). */
export interface Location {
  pc: number;
  file: string;
  line: number;
  function?: DelveFunction;
  pcs?: number[];
  pcpids?: number[];
}

/**
 * Corresponds to api.Variable. `kind` is Go's reflect.Kind as a number (see `reflectKindNames`).
 * For maps, `children` alternates key, value. `len > children.length` means Delve stopped loading early.
 */
export interface Variable {
  name: string;
  addr: number;
  onlyAddr: boolean;
  type: string;
  realType: string;
  flags: number;
  kind: number;
  /** Capped at the load config's MaxStringLen for strings; `len` holds the real length. */
  value: string;
  /** Present instead of a faithful `value` when a string is not valid UTF-8 (base64 of the raw bytes). */
  StringValueBytes?: string | null;
  len: number;
  cap: number;
  children: Variable[] | null;
  base: number;
  /** Set when the value could not be read (unmapped memory, optimised away). */
  unreadable: string;
  LocationExpr?: string;
  DeclLine?: number;
}

/** Corresponds to api.Goroutine. */
export interface Goroutine {
  id: number;
  currentLoc: Location;
  userCurrentLoc: Location;
  goStatementLoc: Location;
  startLoc: Location;
  threadID: number;
  status?: number;
  waitSince?: number;
  waitReason?: number;
  unreadable?: string;
  labels?: Record<string, string>;
}

/** Corresponds to api.Stackframe (api.Location is embedded, so its fields sit at the top level). */
export interface Stackframe extends Location {
  Locals: Variable[] | null;
  Arguments: Variable[] | null;
  FrameOffset: number;
  FramePointerOffset: number;
  Defers?: unknown[] | null;
  Bottom?: boolean;
  Err: string;
}

/** Corresponds to api.BreakpointInfo: what Delve gathered at the stop, as the breakpoint asked. */
export interface BreakpointInfo {
  stacktrace?: Stackframe[];
  goroutine?: Goroutine;
  variables?: Variable[];
  arguments?: Variable[];
  locals?: Variable[];
}

/**
 * Corresponds to api.Breakpoint. Used both to create a breakpoint (ctrdbg fills `FunctionName` or `file`/`line`
 * or `addr`) and as Delve's answer.
 */
export interface Breakpoint {
  id: number;
  /** User name: letters and digits only, not a pure number (api.ValidBreakpointName). */
  name: string;
  addr: number;
  addrs: number[];
  addrpid?: number[];
  file: string;
  line: number;
  functionName?: string;
  ExprString?: string;
  Cond: string;
  HitCond?: string;
  HitCondPerG?: boolean;
  /** Go field `Tracepoint`; the JSON name really is `continue`. A tracepoint still stops the target. */
  continue: boolean;
  traceReturn?: boolean;
  goroutine: boolean;
  stacktrace: number;
  variables?: string[];
  LoadArgs?: LoadConfig | null;
  LoadLocals?: LoadConfig | null;
  WatchExpr?: string;
  WatchType?: number;
  VerboseDescr?: string[];
  hitCount?: Record<string, number>;
  totalHitCount?: number;
  disabled?: boolean;
}

/** What ctrdbg passes to CreateBreakpoint: any subset of Breakpoint, no id. */
export type BreakpointRequest = Partial<Omit<Breakpoint, 'id'>>;

/** Corresponds to api.Thread. `breakPoint`/`breakPointInfo` are set on every thread stopped at a breakpoint. */
export interface Thread {
  id: number;
  pc: number;
  file: string;
  line: number;
  function?: DelveFunction;
  goroutineID: number;
  breakPoint?: Breakpoint;
  breakPointInfo?: BreakpointInfo;
  ReturnValues?: Variable[] | null;
  CallReturn?: boolean;
}

/** Corresponds to api.DebuggerState. */
export interface DebuggerState {
  Pid: number;
  TargetCommandLine?: string;
  Running: boolean;
  Recording?: boolean;
  CoreDumping?: boolean;
  currentThread?: Thread;
  currentGoroutine?: Goroutine;
  Threads: Thread[] | null;
  NextInProgress: boolean;
  WatchOutOfScope?: Breakpoint[] | null;
  exited: boolean;
  exitStatus: number;
  When?: string;
}

/** Corresponds to api.EvalScope. GoroutineID -1 means "the current goroutine". */
export interface EvalScope {
  GoroutineID: number;
  Frame: number;
  DeferredCall?: number;
}

/** Corresponds to api.GetVersionOut (rpc2 GetVersion). */
export interface GetVersionOut {
  DelveVersion: string;
  APIVersion: number;
  Backend: string;
  TargetGoVersion?: string;
  MinSupportedVersionOfGo?: string;
  MaxSupportedVersionOfGo?: string;
}

/** The api.DebuggerCommand names ctrdbg may send (service/api/types.go constants). */
export type CommandName =
  | 'continue'
  | 'halt'
  | 'next'
  | 'step'
  | 'stepOut'
  | 'switchThread'
  | 'switchGoroutine';

/** Corresponds to api.DebuggerCommand. */
export interface DebuggerCommand {
  name: CommandName;
  threadID?: number;
  goroutineID?: number;
  ReturnInfoLoadConfig?: LoadConfig | null;
}

/** Corresponds to rpc2.ListGoroutinesOut. */
export interface ListGoroutinesOut {
  Goroutines: Goroutine[] | null;
  Nextg: number;
}

/**
 * Go's reflect.Kind numbering (reflect/type.go), which api.Variable.kind carries as a number.
 * Index = kind value.
 */
export const reflectKindNames = [
  'invalid',
  'bool',
  'int',
  'int8',
  'int16',
  'int32',
  'int64',
  'uint',
  'uint8',
  'uint16',
  'uint32',
  'uint64',
  'uintptr',
  'float32',
  'float64',
  'complex64',
  'complex128',
  'array',
  'chan',
  'func',
  'interface',
  'map',
  'ptr',
  'slice',
  'string',
  'struct',
  'unsafe.Pointer',
] as const;

export const ReflectKind = {
  Invalid: 0,
  Bool: 1,
  Array: 17,
  Chan: 18,
  Func: 19,
  Interface: 20,
  Map: 21,
  Ptr: 22,
  Slice: 23,
  String: 24,
  Struct: 25,
  UnsafePointer: 26,
} as const;

/**
 * Corresponds to api.VariableFlags (service/api/types.go), the bits of `Variable.flags`. Delve lists a
 * function's results among its arguments, flagged ReturnArgument; at a function's entry they hold garbage.
 */
export const VariableFlags = {
  Escaped: 1,
  Shadowed: 2,
  Constant: 4,
  Argument: 8,
  ReturnArgument: 16,
  FakeAddress: 32,
} as const;

/** The load config Delve uses for Eval when none is given (rpc2.Eval) — also ctrdbg's default. */
export const defaultLoadConfig: LoadConfig = {
  FollowPointers: true,
  MaxVariableRecurse: 1,
  MaxStringLen: 64,
  MaxArrayValues: 64,
  MaxStructFields: -1,
};
