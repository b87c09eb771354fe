/**
 * The trigger: the command that makes containerd do what the user wants to see, started once everything is
 * armed. It runs locally in a process group of its own (or on the node through sudo, under `timeout`, which
 * forwards a signal to its whole group), so that when the recording ends first — --duration, --max-hits,
 * Ctrl-C — ctrdbg can stop all of it: SIGTERM to the group, SIGKILL after a grace period.
 */
import type { RemoteHost } from '../nodes/remoteHost.js';
import type { Target } from '../nodes/target.js';
import { start } from '../util/exec.js';
import type { Logger } from '../util/output.js';

/** How long a trigger gets between SIGTERM and SIGKILL. */
export const TRIGGER_GRACE_MS = 5_000;

export interface TriggerResult {
  command: string;
  /** The exit code; null when it ended by a signal. */
  exitCode: number | null;
  signal?: string;
  /** Set when ctrdbg stopped it because the recording ended first. */
  stoppedBy?: 'SIGTERM' | 'SIGKILL';
  onNode: boolean;
}

export interface RunningTrigger {
  /** Resolves when the trigger has ended, by itself or stopped. */
  done: Promise<TriggerResult>;
  /** True until `done` resolves. */
  readonly running: boolean;
  /** Stops it if it still runs (SIGTERM to its group, SIGKILL after the grace period); resolves when it ended. */
  stop(): Promise<TriggerResult>;
}

export interface TriggerOptions {
  /** The command as shown and recorded (credentials masked). */
  shownAs: string;
  onNode: boolean;
  graceMs?: number;
}

/** The trigger's own output always reaches stderr, also with --json (stdout then carries only the result). */
function showOutput(text: string): void {
  const lines = text
    .split('\n')
    .filter(Boolean)
    .map((l) => `  trigger│ ${l}`);
  if (lines.length) process.stderr.write(`${lines.join('\n')}\n`);
}

export function startTrigger(
  host: RemoteHost,
  target: Target,
  command: string,
  options: TriggerOptions,
  log: Logger,
): RunningTrigger {
  const graceMs = options.graceMs ?? TRIGGER_GRACE_MS;
  log.step(`trigger${options.onNode ? ' (on the node)' : ''}: ${options.shownAs}`);
  return options.onNode
    ? nodeTrigger(host, target, command, graceMs)
    : localTrigger(host, target, command, graceMs);
}

function localTrigger(host: RemoteHost, target: Target, command: string, graceMs: number): RunningTrigger {
  const child = start('sh', ['-c', command], {
    stdin: 'ignore',
    buffer: false,
    reject: false,
    // Its own process group, so that stopping it reaches whatever it started.
    detached: true,
    env: {
      CTRDBG_TARGET: target.spec,
      CTRDBG_SOCKET: target.node.socket,
      CTRDBG_NODE_HOST: host.endpoint.host,
    },
  });
  child.stdout?.on('data', (d: Buffer) => showOutput(d.toString()));
  child.stderr?.on('data', (d: Buffer) => showOutput(d.toString()));
  let running = true;
  let stoppedBy: TriggerResult['stoppedBy'];
  const done = new Promise<TriggerResult>((resolve) => {
    child.on('error', () => {
      running = false;
      resolve({ command, exitCode: 127, onNode: false });
    });
    child.on('exit', (code, signal) => {
      running = false;
      resolve({
        command,
        exitCode: code,
        ...(signal ? { signal } : {}),
        ...(stoppedBy ? { stoppedBy } : {}),
        onNode: false,
      });
    });
  });
  const signalGroup = (signal: NodeJS.Signals) => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // the group is gone already
    }
  };
  return {
    done,
    get running() {
      return running;
    },
    async stop() {
      if (!running) return done;
      stoppedBy = 'SIGTERM';
      signalGroup('SIGTERM');
      const timer = setTimeout(() => {
        stoppedBy = 'SIGKILL';
        signalGroup('SIGKILL');
      }, graceMs);
      const result = await done;
      clearTimeout(timer);
      // Whatever the shell left behind in its group goes too.
      signalGroup('SIGKILL');
      return { ...result, ...(stoppedBy ? { stoppedBy } : {}) };
    },
  };
}

function nodeTrigger(host: RemoteHost, target: Target, command: string, graceMs: number): RunningTrigger {
  const controller = new AbortController();
  let running = true;
  let stopped = false;
  const done: Promise<TriggerResult> = host
    .exec(command, {
      sudo: true,
      timeoutMs: 3_600_000,
      env: { CTRDBG_SOCKET: target.node.socket },
      signal: controller.signal,
      killGraceMs: graceMs,
    })
    .then(
      (r) => {
        showOutput(r.stdout);
        showOutput(r.stderr);
        return {
          command,
          exitCode: r.signal ? null : r.code,
          ...(r.signal ? { signal: r.signal } : {}),
          ...(stopped ? { stoppedBy: 'SIGTERM' as const } : {}),
          onNode: true,
        };
      },
      (error: Error) => {
        if (!stopped) showOutput(`ctrdbg: ${error.message}`);
        return {
          command,
          exitCode: null,
          ...(stopped ? { stoppedBy: 'SIGTERM' as const } : {}),
          onNode: true,
        };
      },
    )
    .finally(() => {
      running = false;
    });
  return {
    done,
    get running() {
      return running;
    },
    async stop() {
      if (!running) return done;
      stopped = true;
      controller.abort();
      return done;
    },
  };
}
