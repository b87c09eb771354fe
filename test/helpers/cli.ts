/** Runs the real, compiled CLI (dist/main.js) the way a user does. */

import { fileURLToPath } from 'node:url';
import { execa, type Options } from 'execa';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const mainJs = `${repoRoot}dist/main.js`;

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function ctrdbg(args: string[], options: Options = {}): Promise<CliResult> {
  const result = await execa(process.execPath, [mainJs, ...args], {
    reject: false,
    env: { NO_COLOR: '1', ...options.env },
    timeout: 600_000,
    ...options,
  });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

export async function ctrdbgJson<T>(
  args: string[],
  options: Options = {},
): Promise<{ exitCode: number; data: T; stderr: string }> {
  const result = await ctrdbg([...args, '--json'], options);
  let data: T;
  try {
    data = JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(
      `ctrdbg ${args.join(' ')} --json did not print JSON (exit ${result.exitCode}):\n${result.stdout}\n${result.stderr}`,
    );
  }
  return { exitCode: result.exitCode, data, stderr: result.stderr };
}
