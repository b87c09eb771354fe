/**
 * The Debug Adapter Protocol face of the replay: the only module that imports @vscode/debugadapter.
 * It translates and nothing more: requests become ReplayRuntime calls, runtime events become DAP events,
 * and it owns the protocol-only concerns (line bases, variablesReference handles, frame ids).
 *
 * Threads are goroutines; each hit is a `stopped` event on its goroutine; continue/next move forward,
 * reverseContinue/stepBack move backward; the end of the recording is `terminated`.
 */
import {
  Breakpoint,
  DebugSession,
  Handles,
  InitializedEvent,
  OutputEvent,
  Scope,
  Source,
  StackFrame,
  StoppedEvent,
  TerminatedEvent,
  Thread,
} from '@vscode/debugadapter';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { isCtrdbgError } from '../errors.js';
import type { HitRecord, RecordedValue } from '../recording/format.js';
import { baseName, displayChildren, hitSections, inlineValue, shortType, valueText } from './render.js';
import { ReplayRuntime, type SubstitutePath } from './replayRuntime.js';

/** The `launch` arguments of a `ctrdbg-replay` configuration. */
export interface ReplayLaunchArguments extends DebugProtocol.LaunchRequestArguments {
  session: string;
  sourceRoot?: string;
  substitutePath?: SubstitutePath[];
  stopOnEntry?: boolean;
}

type FrameRef = { seq: number; level: number };
type VariableContainer = { values: RecordedValue[] } | { expressions: HitRecord['expressions'] };

const ERROR_LAUNCH = 3001;
const CONFIGURATION_DONE_TIMEOUT_MS = 2000;

export interface ReplayDebugSessionOptions {
  /** Called when the client disconnects (instead of the library's process.exit). */
  onShutdown?: () => void;
}

export class ReplayDebugSession extends DebugSession {
  private readonly runtime = new ReplayRuntime();
  private frames = new Handles<FrameRef>();
  private variables = new Handles<VariableContainer>();
  private configurationDone!: () => void;
  private readonly configured = new Promise<void>((resolve) => {
    this.configurationDone = resolve;
  });
  private readonly onShutdown: (() => void) | undefined;

  constructor(options: ReplayDebugSessionOptions = {}) {
    super();
    this.onShutdown = options.onShutdown;
    // Recorded lines are 1-based like Go's; the client tells us its base in `initialize`.
    this.setDebuggerLinesStartAt1(true);
    this.setDebuggerColumnsStartAt1(true);

    this.runtime.on('stopped', ({ reason, hit }) => {
      // Handles belong to one stop: a new hit invalidates every frame and variable reference.
      this.frames.reset();
      this.variables.reset();
      this.sendEvent(new StoppedEvent(reason, this.runtime.threadOfHit(hit)));
    });
    this.runtime.on('ended', () => this.sendEvent(new TerminatedEvent()));
    this.runtime.on('output', ({ text, category }) => this.sendEvent(new OutputEvent(text, category)));
  }

  override shutdown(): void {
    this.runtime.close();
    this.onShutdown?.();
  }

  protected override initializeRequest(
    response: DebugProtocol.InitializeResponse,
    _args: DebugProtocol.InitializeRequestArguments,
  ): void {
    response.body = {
      ...response.body,
      supportsConfigurationDoneRequest: true,
      supportsStepBack: true,
      supportsEvaluateForHovers: true,
      supportsTerminateRequest: true,
      supportsRestartRequest: false,
      supportsSetVariable: false,
      supportsConditionalBreakpoints: false,
    };
    this.sendResponse(response);
    // Breakpoints may come now; `launch` waits for configurationDone before it moves the cursor.
    this.sendEvent(new InitializedEvent());
  }

  protected override configurationDoneRequest(
    response: DebugProtocol.ConfigurationDoneResponse,
    args: DebugProtocol.ConfigurationDoneArguments,
  ): void {
    super.configurationDoneRequest(response, args);
    this.configurationDone();
  }

  protected override async launchRequest(
    response: DebugProtocol.LaunchResponse,
    args: ReplayLaunchArguments,
  ): Promise<void> {
    try {
      if (typeof args.session !== 'string' || args.session === '') {
        throw new Error(
          'launch.json: "session" must name a session file (.jsonl from `ctrdbg attach --record`)',
        );
      }
      this.runtime.load({
        session: args.session,
        sourceRoot: args.sourceRoot,
        substitutePath: args.substitutePath,
      });
    } catch (error) {
      const message =
        isCtrdbgError(error) && error.hint ? `${error.message}. ${error.hint}` : (error as Error).message;
      this.sendErrorResponse(response, { id: ERROR_LAUNCH, format: message, showUser: true });
      return;
    }
    // Clients that never send configurationDone still get a replay, a little later.
    await Promise.race([this.configured, new Promise((r) => setTimeout(r, CONFIGURATION_DONE_TIMEOUT_MS))]);
    this.sendResponse(response);
    this.runtime.start(args.stopOnEntry === true);
  }

  protected override setBreakPointsRequest(
    response: DebugProtocol.SetBreakpointsResponse,
    args: DebugProtocol.SetBreakpointsArguments,
  ): void {
    const path = args.source.path ?? '';
    const lines = (args.breakpoints ?? args.lines?.map((line) => ({ line })) ?? []).map((b) =>
      this.convertClientLineToDebugger(b.line),
    );
    const results =
      path === '' ? [] : this.runtime.setBreakpoints(this.convertClientPathToDebugger(path), lines);
    response.body = {
      breakpoints: results.map((r) => {
        const bp: DebugProtocol.Breakpoint = new Breakpoint(
          r.verified,
          this.convertDebuggerLineToClient(r.line),
        );
        bp.source = args.source;
        return bp;
      }),
    };
    this.sendResponse(response);
  }

  protected override threadsRequest(response: DebugProtocol.ThreadsResponse): void {
    response.body = { threads: this.runtime.threads().map((t) => new Thread(t.id, t.name)) };
    this.sendResponse(response);
  }

  protected override stackTraceRequest(
    response: DebugProtocol.StackTraceResponse,
    args: DebugProtocol.StackTraceArguments,
  ): void {
    const all = this.runtime.stack(args.threadId);
    const start = args.startFrame ?? 0;
    const count = args.levels && args.levels > 0 ? args.levels : all.length;
    const frames = all.slice(start, start + count).map((f) => {
      const id = this.frames.create({ seq: f.seq, level: f.level });
      const frame: DebugProtocol.StackFrame = new StackFrame(
        id,
        f.shortName,
        new Source(baseName(f.file), this.convertDebuggerPathToClient(f.file)),
        this.convertDebuggerLineToClient(f.line),
      );
      return frame;
    });
    response.body = { stackFrames: frames, totalFrames: all.length };
    this.sendResponse(response);
  }

  protected override scopesRequest(
    response: DebugProtocol.ScopesResponse,
    args: DebugProtocol.ScopesArguments,
  ): void {
    const ref = this.frames.get(args.frameId);
    // Values are recorded for the frame that hit the breakpoint only; outer frames have a location, no scopes.
    if (ref?.level !== 0) {
      response.body = { scopes: [] };
      this.sendResponse(response);
      return;
    }
    const hit = this.runtime.hit(ref.seq);
    // The order every view reads a hit in (render.ts). The receiver is marked expensive, so the editor
    // leaves it collapsed until asked.
    const scopes: DebugProtocol.Scope[] = [];
    for (const section of hitSections(hit, ['all'])) {
      if (section.id === 'expressions') {
        scopes.push(
          new Scope('Recorded expressions', this.variables.create({ expressions: hit.expressions }), false),
        );
        continue;
      }
      if ((section.id === 'receiver' || section.id === 'results') && section.entries.length === 0) continue;
      const values = section.entries.flatMap((e) => (e.value ? [e.value] : []));
      const name =
        section.id === 'parameters'
          ? 'Parameters'
          : section.id === 'receiver'
            ? 'Receiver'
            : section.id === 'results'
              ? 'Results'
              : 'Locals';
      scopes.push(new Scope(name, this.variables.create({ values }), section.id === 'receiver'));
    }
    response.body = { scopes };
    this.sendResponse(response);
  }

  protected override variablesRequest(
    response: DebugProtocol.VariablesResponse,
    args: DebugProtocol.VariablesArguments,
  ): void {
    const container = this.variables.get(args.variablesReference);
    let variables: DebugProtocol.Variable[] = [];
    if (container && 'values' in container)
      variables = container.values.map((v) => this.toVariable(v.name, v));
    else if (container) {
      variables = container.expressions.map((e) =>
        e.value
          ? this.toVariable(e.expr, e.value)
          : { name: e.expr, value: `<error: ${e.error ?? 'no value'}>`, variablesReference: 0 },
      );
    }
    if (args.start !== undefined || args.count !== undefined) {
      const start = args.start ?? 0;
      variables = variables.slice(start, args.count ? start + args.count : undefined);
    }
    response.body = { variables };
    this.sendResponse(response);
  }

  /** Children get a handle only when listed; their own children are materialized when expanded. */
  private toVariable(name: string, value: RecordedValue): DebugProtocol.Variable {
    const children = displayChildren(value);
    const text = valueText(value);
    return {
      name,
      value: text === '' ? inlineValue(value, 120) : text,
      type: shortType(value.type),
      variablesReference: children.length > 0 ? this.variables.create({ values: children }) : 0,
      ...(value.kind === 'map' || value.kind === 'struct' ? { namedVariables: children.length } : {}),
      ...(value.kind === 'slice' || value.kind === 'array' ? { indexedVariables: children.length } : {}),
    };
  }

  protected override evaluateRequest(
    response: DebugProtocol.EvaluateResponse,
    args: DebugProtocol.EvaluateArguments,
  ): void {
    const hit = this.runtime.current;
    const found = hit ? lookup(hit, args.expression.trim()) : undefined;
    if (!found) {
      this.sendErrorResponse(response, {
        id: 3002,
        format: `"${args.expression}" was not recorded at this hit (a replay can show only what was recorded)`,
        showUser: false,
      });
      return;
    }
    const variable = this.toVariable(args.expression, found);
    response.body = {
      result: variable.value,
      type: variable.type,
      variablesReference: variable.variablesReference,
    };
    this.sendResponse(response);
  }

  protected override continueRequest(response: DebugProtocol.ContinueResponse): void {
    this.runtime.continue();
    response.body = { allThreadsContinued: true };
    this.sendResponse(response);
  }

  protected override nextRequest(response: DebugProtocol.NextResponse): void {
    this.runtime.next();
    this.sendResponse(response);
  }

  protected override stepInRequest(response: DebugProtocol.StepInResponse): void {
    this.runtime.next();
    this.sendResponse(response);
  }

  protected override stepOutRequest(response: DebugProtocol.StepOutResponse): void {
    this.runtime.next();
    this.sendResponse(response);
  }

  protected override stepBackRequest(response: DebugProtocol.StepBackResponse): void {
    this.runtime.stepBack();
    this.sendResponse(response);
  }

  protected override reverseContinueRequest(response: DebugProtocol.ReverseContinueResponse): void {
    this.runtime.reverseContinue();
    this.sendResponse(response);
  }

  protected override pauseRequest(response: DebugProtocol.PauseResponse): void {
    // A replay is always stopped between requests; nothing to pause.
    this.sendResponse(response);
  }

  protected override terminateRequest(response: DebugProtocol.TerminateResponse): void {
    this.sendResponse(response);
    this.sendEvent(new TerminatedEvent());
  }
}

/** Resolves `expr` against what the hit recorded: an expression verbatim, or a dotted path into args/locals. */
function lookup(hit: HitRecord, expr: string): RecordedValue | undefined {
  const recorded = hit.expressions.find((e) => e.expr === expr);
  if (recorded?.value) return recorded.value;
  const [head, ...rest] = expr.split('.');
  let value = hitSections(hit, ['all'])
    .filter((s) => s.id !== 'expressions')
    .flatMap((s) => s.entries)
    .find((e) => e.label === head)?.value;
  for (const part of rest) {
    if (!value) return undefined;
    value = displayChildren(value).find((c) => c.name === part);
  }
  return value;
}
