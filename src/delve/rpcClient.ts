/**
 * The only module that speaks Delve's wire format: JSON-RPC 1.0 (Go's net/rpc/jsonrpc) over a raw byte stream.
 * Requests are `{"method":"RPCServer.X","params":[{…}],"id":N}`; answers are `{"id":N,"result":…,"error":…}`.
 *
 * The stream can be anything Duplex: a local TCP socket, or an SSH exec channel running `ctrdbg-agent relay`
 * on the node (Delve's same-user check stays on because the relay runs as root, like dlv).
 *
 * Delve specifics this client encodes (see shared/notes/delve.md):
 * - Answers are matched by id, not by order: `Command` and `State` are asynchronous on Delve's side, so a `halt`
 *   sent while a `continue` is outstanding is answered first (checked against Delve 1.20.2).
 * - Synchronous methods (CreateBreakpoint, Eval, ListFunctions, …) wait for the target lock, which a running
 *   `continue` holds, and they block Delve's read loop for this connection. One sent while the target runs would
 *   wedge the connection, halt included, so the client refuses them until the continue has returned.
 * - Every call has a timeout; `continue` takes an AbortSignal that turns into a `halt`.
 */
import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { type CtrdbgError, delveError } from '../errors.js';
import { type Logger, silentLogger } from '../util/output.js';
import type {
  Breakpoint,
  BreakpointRequest,
  CommandName,
  DebuggerState,
  EvalScope,
  GetVersionOut,
  ListGoroutinesOut,
  LoadConfig,
  Location,
  Stackframe,
  Variable,
} from './types.js';
import { defaultLoadConfig } from './types.js';

export interface DelveClientOptions {
  /** Default timeout of one call, in milliseconds. */
  timeoutMs?: number;
  /** Default bound on `continue` (it returns only when the target stops). */
  continueTimeoutMs?: number;
  logger?: Logger;
  /** Where the stream leads, for messages ("127.0.0.1:40000", "lab:relay"). */
  endpoint?: string;
}

export interface CallOptions {
  timeoutMs?: number;
}

export interface ContinueOptions {
  /** Bound on the wait; when it passes the client halts the target and returns the halted state. */
  timeoutMs?: number;
  /** Aborting halts the target; the continue then resolves with the halted state. */
  signal?: AbortSignal;
}

export interface ContinueResult {
  state: DebuggerState;
  /** True when the continue ended because this client halted it (abort or timeout), not a breakpoint. */
  halted: boolean;
  /** Why it was halted. */
  haltReason?: 'abort' | 'timeout';
}

interface Pending {
  method: string;
  resolve: (value: unknown) => void;
  reject: (error: CtrdbgError) => void;
  timer: NodeJS.Timeout | undefined;
}

interface RpcResponse {
  id?: number;
  result?: unknown;
  error?: unknown;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_CONTINUE_TIMEOUT_MS = 10 * 60_000;
/** Methods that do not need the target lock, so they are safe while a continue is outstanding. */
const SAFE_WHILE_RUNNING = new Set(['RPCServer.GetVersion', 'RPCServer.IsMulticlient']);

/**
 * Splits a byte stream into top-level JSON values without relying on newlines (Go's json.Encoder adds one, but
 * a relay may split or join chunks anywhere). Tracks string/escape state so braces inside strings don't count.
 */
export class JsonStreamSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private buffer = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private start = -1;
  private scanned = 0;

  /** Feeds a chunk; returns the complete JSON texts it finished. */
  push(chunk: Buffer | string): string[] {
    this.buffer += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    const out: string[] = [];
    let i = this.scanned;
    for (; i < this.buffer.length; i++) {
      const c = this.buffer.charCodeAt(i);
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c /* \ */) this.escaped = true;
        else if (c === 0x22 /* " */) this.inString = false;
        continue;
      }
      if (c === 0x22) {
        this.inString = true;
      } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
        if (this.depth === 0) this.start = i;
        this.depth++;
      } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
        this.depth--;
        if (this.depth === 0 && this.start >= 0) {
          out.push(this.buffer.slice(this.start, i + 1));
          this.start = -1;
        } else if (this.depth < 0) {
          throw new SyntaxError(`unbalanced '${String.fromCharCode(c)}' in Delve's stream`);
        }
      } else if (this.depth === 0 && c > 0x20) {
        throw new SyntaxError(`unexpected '${String.fromCharCode(c)}' between JSON values in Delve's stream`);
      }
    }
    if (this.depth === 0) {
      this.buffer = '';
      this.scanned = 0;
    } else {
      // Keep only the unfinished value, so a long session does not grow the buffer.
      this.buffer = this.buffer.slice(this.start);
      this.scanned = this.buffer.length;
      this.start = 0;
    }
    return out;
  }

  /** Bytes of an unfinished value still held (for error messages). */
  get pendingLength(): number {
    return this.depth === 0 ? 0 : this.buffer.length;
  }
}

/** Hints for Delve's own error texts, so the user knows what to do next. */
export function hintForDelveMessage(method: string, message: string): string | undefined {
  const m = message.toLowerCase();
  if (m.includes('could not find function') || m.includes('location') || m.includes('not found'))
    return 'The symbol is not in this binary: run `ctrdbg sets check TARGET` to see which names exist.';
  if (m.includes('exited'))
    return 'containerd is no longer running under Delve; check it with `ctrdbg doctor`.';
  if (m.includes('optimized'))
    return 'The binary was built with optimisations; rebuild with `-gcflags=all="-N -l"` (`ctrdbg build`).';
  if (m.includes('same unix user') || m.includes('only accepted from the same'))
    return 'Reach dlv through `ctrdbg-agent relay` running as root on the node, not a direct forward.';
  if (method.endsWith('.CreateBreakpoint') && m.includes('breakpoint exists'))
    return 'A breakpoint is already set there (another client?); clear it with `clearBreakpoint` first.';
  return undefined;
}

export class DelveClient {
  private readonly stream: Duplex;
  private readonly splitter = new JsonStreamSplitter();
  private readonly pending = new Map<number, Pending>();
  private readonly logger: Logger;
  private readonly timeoutMs: number;
  private readonly continueTimeoutMs: number;
  readonly endpoint: string;
  private nextId = 1;
  private closedError: CtrdbgError | undefined;
  private continuing = false;

  constructor(stream: Duplex, options: DelveClientOptions = {}) {
    this.stream = stream;
    this.logger = options.logger ?? silentLogger;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.continueTimeoutMs = options.continueTimeoutMs ?? DEFAULT_CONTINUE_TIMEOUT_MS;
    this.endpoint = options.endpoint ?? 'dlv';
    stream.on('data', (chunk: Buffer | string) => this.onData(chunk));
    stream.on('error', (error: Error) =>
      this.fail(
        delveError(`connection to Delve (${this.endpoint}) failed: ${error.message}`, {
          cause: error,
          hint: 'Is dlv still running on the node? `ctrdbg doctor TARGET` checks.',
        }),
      ),
    );
    stream.on('close', () => this.fail(this.closedByPeer()));
    stream.on('end', () => this.fail(this.closedByPeer()));
  }

  /** True once the stream ended or failed; every later call rejects. */
  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /** True while a `continue` is outstanding (the target runs). */
  get running(): boolean {
    return this.continuing;
  }

  /** Sends one JSON-RPC request and waits for its answer. The low-level door; prefer the typed methods. */
  call<T>(method: string, params: object, options: CallOptions = {}): Promise<T> {
    const fullMethod = method.includes('.') ? method : `RPCServer.${method}`;
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer =
        timeoutMs > 0 && Number.isFinite(timeoutMs)
          ? setTimeout(() => {
              this.pending.delete(id);
              reject(
                delveError(`Delve did not answer ${fullMethod} within ${timeoutMs} ms`, {
                  hint: this.continuing
                    ? 'The target is running; halt it before other requests.'
                    : 'dlv may be stuck or the tunnel dropped; `ctrdbg doctor TARGET` checks the node.',
                  details: { method: fullMethod, timeoutMs },
                }),
              );
            }, timeoutMs)
          : undefined;
      this.pending.set(id, {
        method: fullMethod,
        resolve: resolve as (value: unknown) => void,
        reject,
        timer,
      });
      this.logger.debug(`dlv → ${fullMethod} #${id} ${JSON.stringify(params)}`);
      this.stream.write(`${JSON.stringify({ method: fullMethod, params: [params], id })}\n`);
    });
  }

  private guardRunning(method: string): void {
    if (this.continuing && !SAFE_WHILE_RUNNING.has(`RPCServer.${method}`)) {
      throw delveError(`cannot send ${method} while the target is running`, {
        hint: 'Halt first (DelveClient.continue with an AbortSignal, or halt()), then retry.',
      });
    }
  }

  private async stopped<T>(method: string, params: object, options?: CallOptions): Promise<T> {
    this.guardRunning(method);
    return this.call<T>(method, params, options);
  }

  async getVersion(options?: CallOptions): Promise<GetVersionOut> {
    return this.call<GetVersionOut>('GetVersion', {}, options);
  }

  /** Delve's state. With `nonBlocking` it answers at once even while the target runs (then without threads). */
  async state(nonBlocking = false, options?: CallOptions): Promise<DebuggerState> {
    if (!nonBlocking) this.guardRunning('State');
    const out = await this.call<{ State: DebuggerState }>('State', { NonBlocking: nonBlocking }, options);
    return out.State;
  }

  /**
   * Runs a debugger command. For `continue` use `continue()` (it tracks the running state and can be halted);
   * `halt` is allowed at any time.
   */
  async command(name: CommandName, options?: CallOptions): Promise<DebuggerState> {
    if (name === 'continue') return (await this.continue({ timeoutMs: options?.timeoutMs })).state;
    if (name !== 'halt') this.guardRunning('Command');
    const out = await this.call<{ State: DebuggerState }>('Command', { name }, options);
    return out.State;
  }

  /** Stops the target. Safe while a continue is outstanding: Delve processes it concurrently. */
  async halt(options?: CallOptions): Promise<DebuggerState> {
    const out = await this.call<{ State: DebuggerState }>('Command', { name: 'halt' }, options);
    return out.State;
  }

  /**
   * Resumes the target until something stops it (a breakpoint, exit, or a halt). On abort or timeout the client
   * sends `halt` on the same connection and returns the resulting state with `halted: true`.
   */
  async continue(options: ContinueOptions = {}): Promise<ContinueResult> {
    this.guardRunning('Command');
    if (options.signal?.aborted) return { state: await this.state(), halted: true, haltReason: 'abort' };
    this.continuing = true;
    let haltReason: 'abort' | 'timeout' | undefined;
    let haltError: unknown;
    const halt = (reason: 'abort' | 'timeout') => {
      if (haltReason) return;
      haltReason = reason;
      this.halt().catch((error: unknown) => {
        haltError = error;
      });
    };
    const onAbort = () => halt('abort');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const limit = options.timeoutMs ?? this.continueTimeoutMs;
    const timer = limit > 0 && Number.isFinite(limit) ? setTimeout(() => halt('timeout'), limit) : undefined;
    try {
      // The continue itself has no timeout of its own: the timer above turns into a halt, and the halt has
      // one; if dlv is gone the stream closes and this rejects.
      const out = await this.call<{ State: DebuggerState }>(
        'Command',
        { name: 'continue' },
        { timeoutMs: 0 },
      );
      return haltReason
        ? { state: out.State, halted: true, haltReason }
        : { state: out.State, halted: false };
    } catch (error) {
      if (haltError) this.logger.debug(`halt failed too: ${String(haltError)}`);
      throw error;
    } finally {
      this.continuing = false;
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  async createBreakpoint(breakpoint: BreakpointRequest, options?: CallOptions): Promise<Breakpoint> {
    const out = await this.stopped<{ Breakpoint: Breakpoint }>(
      'CreateBreakpoint',
      { Breakpoint: breakpoint },
      options,
    );
    return out.Breakpoint;
  }

  async clearBreakpoint(id: number, options?: CallOptions): Promise<Breakpoint | null> {
    const out = await this.stopped<{ Breakpoint: Breakpoint | null }>('ClearBreakpoint', { Id: id }, options);
    return out.Breakpoint;
  }

  async listBreakpoints(options?: CallOptions): Promise<Breakpoint[]> {
    const out = await this.stopped<{ Breakpoints: Breakpoint[] | null }>('ListBreakpoints', {}, options);
    return out.Breakpoints ?? [];
  }

  /** Resolves a location expression (`pkg.(*T).M`, `file.go:12`, `pkg.F:3`) without setting anything. */
  async findLocation(
    loc: string,
    scope: EvalScope = { GoroutineID: -1, Frame: 0 },
    options?: CallOptions,
  ): Promise<Location[]> {
    const out = await this.stopped<{ Locations: Location[] | null }>(
      'FindLocation',
      { Scope: scope, Loc: loc, IncludeNonExecutableLines: false },
      options,
    );
    return out.Locations ?? [];
  }

  /** Function names matching a Go regular expression (Delve applies `regexp.Compile` to `filter`). */
  async listFunctions(filter: string, options?: CallOptions): Promise<string[]> {
    const out = await this.stopped<{ Funcs: string[] | null }>('ListFunctions', { Filter: filter }, options);
    return out.Funcs ?? [];
  }

  async eval(
    expr: string,
    scope: EvalScope = { GoroutineID: -1, Frame: 0 },
    cfg: LoadConfig = defaultLoadConfig,
    options?: CallOptions,
  ): Promise<Variable> {
    const out = await this.stopped<{ Variable: Variable }>(
      'Eval',
      { Scope: scope, Expr: expr, Cfg: cfg },
      options,
    );
    return out.Variable;
  }

  async stacktrace(
    goroutineId: number,
    depth: number,
    cfg: LoadConfig | null = null,
    options?: CallOptions,
  ): Promise<Stackframe[]> {
    const out = await this.stopped<{ Locations: Stackframe[] | null }>(
      'Stacktrace',
      { Id: goroutineId, Depth: depth, Full: cfg !== null, Cfg: cfg },
      options,
    );
    return out.Locations ?? [];
  }

  async listGoroutines(start = 0, count = 0, options?: CallOptions): Promise<ListGoroutinesOut> {
    return this.stopped<ListGoroutinesOut>('ListGoroutines', { Start: start, Count: count }, options);
  }

  /**
   * Detaches Delve from the target. `kill` must stay false for containerd; it is a parameter only so the choice
   * is explicit at every call site. Delve exits after a detach, so the stream closing right after is expected.
   */
  async detach(kill: boolean, options?: CallOptions): Promise<void> {
    this.guardRunning('Detach');
    try {
      await this.call<unknown>('Detach', { Kill: kill }, options);
    } catch (error) {
      // dlv may close the connection before its answer leaves; the detach still happened.
      if (this.closed && this.pending.size === 0) return;
      throw error;
    }
  }

  /** Closes the stream; outstanding calls reject. Does not detach: call `detach(false)` first. */
  close(): void {
    this.fail(delveError(`connection to Delve (${this.endpoint}) was closed by ctrdbg`));
    this.stream.destroy();
  }

  private closedByPeer(): CtrdbgError {
    return delveError(`Delve (${this.endpoint}) closed the connection`, {
      hint:
        "dlv exited or refused this client: its own words are in the agent's log on the node " +
        '(<ctrdbg dir>/agent.log, lines "dlv[PID]: …"). A client that reaches dlv without `ctrdbg-agent relay` is ' +
        "refused when it is another UNIX user than dlv's.",
    });
  }

  private onData(chunk: Buffer | string): void {
    let texts: string[];
    try {
      texts = this.splitter.push(chunk);
    } catch (error) {
      this.fail(
        delveError(`Delve sent something that is not JSON-RPC: ${(error as Error).message}`, {
          cause: error,
        }),
      );
      this.stream.destroy();
      return;
    }
    for (const text of texts) {
      let response: RpcResponse;
      try {
        response = JSON.parse(text) as RpcResponse;
      } catch (error) {
        this.fail(
          delveError('Delve sent malformed JSON', { cause: error, details: { text: text.slice(0, 200) } }),
        );
        this.stream.destroy();
        return;
      }
      this.settle(response);
    }
  }

  private settle(response: RpcResponse): void {
    const id = typeof response.id === 'number' ? response.id : Number.NaN;
    const entry = this.pending.get(id);
    if (!entry) {
      // A late answer to a call that timed out: nothing waits for it any more.
      this.logger.debug(`dlv ← answer for unknown id ${String(response.id)} (timed out?)`);
      return;
    }
    this.pending.delete(id);
    if (entry.timer) clearTimeout(entry.timer);
    if (response.error !== null && response.error !== undefined) {
      const message = typeof response.error === 'string' ? response.error : JSON.stringify(response.error);
      this.logger.debug(`dlv ← ${entry.method} #${id} error: ${message}`);
      entry.reject(
        delveError(`Delve refused ${entry.method.replace('RPCServer.', '')}: ${message}`, {
          hint: hintForDelveMessage(entry.method, message),
          details: { method: entry.method, delveMessage: message },
        }),
      );
      return;
    }
    this.logger.debug(`dlv ← ${entry.method} #${id}`);
    entry.resolve(response.result);
  }

  private fail(error: CtrdbgError): void {
    if (!this.closedError) this.closedError = error;
    for (const [id, entry] of this.pending) {
      this.pending.delete(id);
      if (entry.timer) clearTimeout(entry.timer);
      entry.reject(this.closedError);
    }
  }
}

/** Wraps any Duplex (socket, SSH channel, child process stdio pair) as a Delve client. */
export function delveClientFromStream(stream: Duplex, options?: DelveClientOptions): DelveClient {
  return new DelveClient(stream, options);
}

/** Connects to a dlv headless server over TCP (only loopback makes sense: dlv never listens elsewhere). */
export function connectTcp(
  host: string,
  port: number,
  options: DelveClientOptions & { connectTimeoutMs?: number } = {},
): Promise<DelveClient> {
  const endpoint = options.endpoint ?? `${host}:${port}`;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  return new Promise<DelveClient>((resolve, reject) => {
    const socket: Socket = netConnect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        delveError(`could not connect to Delve at ${endpoint} within ${connectTimeoutMs} ms`, {
          hint: 'Is dlv running and listening there?',
        }),
      );
    }, connectTimeoutMs);
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(
        delveError(`could not connect to Delve at ${endpoint}: ${error.message}`, {
          cause: error,
          hint: 'Is dlv running and listening there?',
        }),
      );
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.setNoDelay(true);
      socket.removeAllListeners('error');
      resolve(new DelveClient(socket, { ...options, endpoint }));
    });
  });
}
