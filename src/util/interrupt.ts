/**
 * Ctrl-C (and SIGTERM, SIGHUP) for commands that must finish what they started on the node: the first signal
 * aborts, and the command walks its safe way out (clear breakpoints and detach; roll a half-done binary swap
 * back); later signals only say that this is under way. Never exit the process from a signal handler here.
 */
import type { Logger } from './output.js';

export interface Interrupt {
  signal: AbortSignal;
  /** Which signal arrived first, once one has. */
  readonly received: NodeJS.Signals | undefined;
  dispose(): void;
}

export function interruptOnSignals(log: Logger, whatHappensNow: string, stillBusy: string): Interrupt {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      log.warn(stillBusy);
      return;
    }
    received = signal;
    log.warn(whatHappensNow);
    controller.abort('interrupted');
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  return {
    signal: controller.signal,
    get received() {
      return received;
    },
    dispose: () => {
      for (const s of signals) process.off(s, onSignal);
    },
  };
}
