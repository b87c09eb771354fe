/**
 * A real containerd for Delve tests, on this machine, without the lab's sshd: the lab's debug containerd (Debian's
 * containerd library source + scripts/lab/containerd-main, built with -N -l in GOPATH mode) running with a temp
 * config, plus the node agent built from node-agent/. Go's build cache makes rebuilds take seconds.
 *
 * Safety: containerd is never SIGKILLed while a tracer is attached (its breakpoints would kill it with SIGTRAP
 * and, worse, this would hide a detach bug the test should catch).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../src/config.js';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion with a hard timeout; never throws on a non-zero exit. */
export function run(
  file: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      {
        cwd: options.cwd,
        env: options.env ?? process.env,
        timeout: options.timeoutMs ?? 60_000,
        maxBuffer: 32 << 20,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

const gocode = '/usr/share/gocode';

/** Builds the lab's debug containerd into `outDir`; returns the binary's path. */
export async function buildLabContainerd(outDir: string): Promise<string> {
  const gopath = join(outDir, 'gopath');
  const pkgDir = join(gopath, 'src', 'ctrdbg.lab', 'containerd');
  mkdirSync(pkgDir, { recursive: true });
  copyFileSync(join(projectRoot, 'scripts/lab/containerd-main/main.go'), join(pkgDir, 'main.go'));
  const binary = join(outDir, 'containerd');
  const result = await run('go', ['build', '-gcflags=all=-N -l', '-o', binary, '.'], {
    cwd: pkgDir,
    env: { ...process.env, GO111MODULE: 'off', GOPATH: `${gopath}:${gocode}`, GOFLAGS: '' },
    timeoutMs: 400_000,
  });
  if (result.code !== 0) throw new Error(`building the lab containerd failed:\n${result.stderr}`);
  return binary;
}

/** Builds ctrdbg-agent (static, module mode, stdlib only); returns the binary's path. */
export async function buildNodeAgent(outDir: string): Promise<string> {
  const binary = join(outDir, 'ctrdbg-agent');
  const result = await run('go', ['build', '-o', binary, '.'], {
    cwd: join(projectRoot, 'node-agent'),
    env: { ...process.env, CGO_ENABLED: '0', GO111MODULE: 'on', GOFLAGS: '-mod=mod', GOPROXY: 'off' },
    timeoutMs: 300_000,
  });
  if (result.code !== 0) throw new Error(`building ctrdbg-agent failed:\n${result.stderr}`);
  return binary;
}

export function tracerPid(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^TracerPid:\s*(\d+)/m.exec(status);
  return match ? Number(match[1]) : 0;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return (
      existsSync(`/proc/${pid}/status`) && !/^State:\s*Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))
    );
  } catch {
    return false;
  }
}

export interface LocalContainerd {
  pid: number;
  dir: string;
  socket: string;
  binary: string;
  log: string;
  /** Runs `ctr -a <socket> …`. */
  ctr(args: string[], timeoutMs?: number): Promise<RunResult>;
  /** Starts `ctr -a <socket> …` without waiting. */
  spawnCtr(args: string[]): ChildProcess;
  stop(): Promise<void>;
}

async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Starts containerd with root, state and sockets in a fresh temp dir, and waits until it answers. */
export async function startLocalContainerd(binary: string): Promise<LocalContainerd> {
  const dir = mkdtempSync(join(tmpdir(), 'ctrdbg-ctrd-'));
  const socket = join(dir, 'c.sock');
  const config = join(dir, 'config.toml');
  writeFileSync(
    config,
    [
      'version = 2',
      `root = "${join(dir, 'root')}"`,
      `state = "${join(dir, 'state')}"`,
      '[grpc]',
      `  address = "${socket}"`,
      '[ttrpc]',
      `  address = "${socket}.ttrpc"`,
      '',
    ].join('\n'),
  );
  const log = join(dir, 'containerd.log');
  const { openSync } = await import('node:fs');
  const out = openSync(log, 'a');
  const child = spawn(binary, ['--config', config], { stdio: ['ignore', out, out], detached: true });
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error('containerd did not start');
  const ctr = (args: string[], timeoutMs = 30_000) => run('ctr', ['-a', socket, ...args], { timeoutMs });
  await waitFor(async () => (await ctr(['version'], 5_000)).code === 0, 30_000, `containerd on ${socket}`);
  return {
    pid,
    dir,
    socket,
    binary,
    log,
    ctr,
    spawnCtr: (args) => spawn('ctr', ['-a', socket, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }),
    async stop() {
      if (isAlive(pid)) {
        const tracer = tracerPid(pid);
        if (tracer !== 0) throw new Error(`containerd ${pid} is still traced by ${tracer}; not stopping it`);
        process.kill(pid, 'SIGTERM');
        try {
          await waitFor(() => !isAlive(pid), 15_000, `containerd ${pid} to exit`);
        } catch {
          if (tracerPid(pid) === 0) process.kill(pid, 'SIGKILL');
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
