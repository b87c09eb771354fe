/** Files on the node that are replaced, never half written. */
import { dirname } from 'node:path';
import type { RemoteHost } from '../nodes/remoteHost.js';
import { shellQuote } from '../util/shell.js';

/** cp to a temporary name beside `to`, then rename: `to` is never half written. */
export async function copyAtomically(host: RemoteHost, from: string, to: string): Promise<void> {
  await host.execChecked(
    `mkdir -p ${shellQuote(dirname(to))} && cp -p ${shellQuote(from)} ${shellQuote(`${to}.ctrdbg-tmp`)} && mv -f ${shellQuote(`${to}.ctrdbg-tmp`)} ${shellQuote(to)}`,
    { sudo: true },
  );
}
