import { isAbsolute, relative, resolve } from 'node:path';
import {
  attachLaunchConfig,
  LAB_REMOTE_SOURCE,
  type LaunchConfiguration,
  type MergeResult,
  mergeLaunchJson,
  remoteSourceRoot,
  replayLaunchConfig,
  WORKSPACE,
} from '../editor/launchJson.js';
import { usageError } from '../errors.js';
import { openRecording } from '../recording/reader.js';
import type { CommandOutput } from './output.js';

export { attachLaunchConfig, mergeLaunchJson, parseJsonc, replayLaunchConfig } from '../editor/launchJson.js';

/** One entry of launch.json's `configurations`. */
export interface VscodeOptions {
  session?: string;
  target?: string;
  dir?: string;
  port?: string;
  src?: string;
  remoteSrc?: string;
  json?: boolean;
}

export async function vscodeCommand(
  options: VscodeOptions,
): Promise<CommandOutput<MergeResult & { configurations: LaunchConfiguration[] }>> {
  if (options.session === undefined && options.target === undefined) {
    throw usageError('nothing to write: give --session FILE, --target TARGET, or both');
  }
  const dir = resolve(options.dir ?? '.');
  const localRoot = options.src ?? WORKSPACE;
  const port = Number(options.port ?? '2345');
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw usageError(`--port expects a port number, got "${options.port}"`);

  let remoteRoot = options.remoteSrc;
  const configs: LaunchConfiguration[] = [];
  if (options.session !== undefined) {
    const sessionPath = resolve(options.session);
    const session = openRecording(sessionPath);
    try {
      remoteRoot ??= remoteSourceRoot(session.header);
    } finally {
      session.close();
    }
    const rel = relative(dir, sessionPath);
    const inWorkspace = rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
    configs.push(
      replayLaunchConfig({
        session: inWorkspace ? `${WORKSPACE}/${rel}` : sessionPath,
        ...(remoteRoot !== undefined ? { substitutePath: [{ from: localRoot, to: remoteRoot }] } : {}),
      }),
    );
  }
  if (options.target !== undefined) {
    remoteRoot ??=
      options.target === 'lab' || options.target.startsWith('lab:') ? LAB_REMOTE_SOURCE : undefined;
    if (remoteRoot === undefined) {
      throw usageError(`cannot tell where ${options.target}'s containerd was built from`, {
        hint: 'Pass --remote-src DIR (the source path compiled into the binary), or --session FILE of a recording from that node.',
      });
    }
    configs.push(attachLaunchConfig({ target: options.target, port, localRoot, remoteRoot }));
  }
  const result = await mergeLaunchJson(dir, configs);
  const lines = [
    ...result.added.map((n) => `added     ${n}`),
    ...result.replaced.map((n) => `replaced  ${n}`),
    `wrote ${result.path}`,
  ];
  if (options.session !== undefined) {
    lines.push(
      'Replay needs the ctrdbg-replay debug type: install the extension in vscode-extension/ (see its README).',
    );
  }
  return { data: { ...result, configurations: configs }, text: lines.join('\n') };
}
