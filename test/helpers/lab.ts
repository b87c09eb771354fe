/** Test access to the shared integration lab (see test/integration/globalSetup.ts). */
import { readFile } from 'node:fs/promises';
import { Client } from 'ssh2';
import { inject } from 'vitest';
import type { LabStatus } from '../../src/lab/lab.js';
import { ctrdbgJson } from './cli.js';

export function labEnv(): Record<string, string> {
  return {
    CTRDBG_LAB_ROOT: inject('labRoot'),
    CTRDBG_CACHE_DIR: inject('cacheDir'),
    CTRDBG_CONFIG_DIR: inject('configDir'),
  };
}

/** `ctrdbg lab status --json`: the product's own type, not a copy. */
export type LabStatusJson = LabStatus;

export async function labStatus(name = 'default', env = labEnv()): Promise<LabStatusJson> {
  const { data } = await ctrdbgJson<LabStatusJson>(['lab', 'status', '--name', name], { env });
  return data;
}

/**
 * Logs in with ssh2 the way ctrdbg will, checking the host key against the lab's known_hosts line,
 * and runs one command. Written against ssh2 directly so the lab is tested independently of ctrdbg's
 * own SSH layer.
 */
export async function sshExec(
  status: LabStatusJson,
  command: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const key = await readFile(status.ssh.keyPath);
  const pinned = (await readFile(status.ssh.knownHostsPath, 'utf8')).trim().split(/\s+/)[2] ?? '';
  return new Promise((resolve, reject) => {
    const client = new Client();
    client
      .on('ready', () => {
        client.exec(command, (error, stream) => {
          if (error) return reject(error);
          let stdout = '';
          let stderr = '';
          stream.on('data', (d: Buffer) => (stdout += d.toString()));
          stream.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
          stream.on('close', (code: number) => {
            client.end();
            resolve({ code, stdout, stderr });
          });
        });
      })
      .on('error', reject)
      .connect({
        host: status.ssh.host,
        port: status.ssh.port,
        username: status.ssh.user,
        privateKey: key,
        readyTimeout: 10_000,
        hostVerifier: (hostKey: Buffer) => hostKey.toString('base64') === pinned,
      });
  });
}
