/**
 * `ctrdbg dap [--server PORT]`: the Debug Adapter Protocol server that replays sessions in VS Code.
 * Over stdio, stdout carries the protocol: nothing else may print there, so the result has no text.
 */

import { usageError } from '../errors.js';
import type { CommandOutput } from './output.js';

export interface DapOptions {
  server?: string;
}

export async function dapCommand(options: DapOptions): Promise<CommandOutput> {
  const { runDapStdio, serveDapUntilSignal } = await import('../replay/dapMain.js');
  if (options.server === undefined) {
    await runDapStdio();
    return { data: null, text: '' };
  }
  if (!/^\d+$/.test(options.server))
    throw usageError(`--server expects a port number, got "${options.server}"`);
  const port = await serveDapUntilSignal(Number(options.server));
  return { data: { port }, text: '' };
}
