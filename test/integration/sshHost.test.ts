/**
 * connectHost against real OpenSSH servers: the shared lab's sshd (the lab user has passwordless sudo) and
 * a second sshd started here for a user without sudo, with MaxSessions 3 so the session queue has to adapt.
 * Every error path is provoked for real: wrong key, changed and unknown host keys, a closed port, a server
 * that never answers, a session process killed or frozen on the server side.
 */
import { type ChildProcess, execFileSync, spawn as spawnLocal } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CtrdbgError, isCtrdbgError } from '../../src/errors.js';
import type { RemoteHost, SshEndpoint, UploadProgress } from '../../src/nodes/remoteHost.js';
import { connectHost } from '../../src/nodes/ssh/sshHost.js';
import { freeLoopbackPort, readBanner } from '../../src/util/net.js';
import { type LabStatusJson, labStatus } from '../helpers/lab.js';

const NOSUDO_USER = 'ctrdbgnosudo';
const TEST_SSH_ROOT = '/var/lib/ctrdbg/test-ssh';

let status: LabStatusJson;
let endpoint: SshEndpoint;
let host: RemoteHost;
let scratch: string;
let remoteTmp: string;

/** Resolves to the error a promise rejects with; fails the test if it resolves. */
async function failure(promise: Promise<unknown>): Promise<CtrdbgError> {
  try {
    await promise;
  } catch (error) {
    if (!isCtrdbgError(error))
      throw new Error(`expected a CtrdbgError, got: ${String(error)}`, { cause: error });
    return error;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}

async function poll(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function keygen(path: string): void {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path]);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  status = await labStatus();
  // Only its sshd matters here (another suite may be restarting its containerd).
  expect(status.ssh.reachable, "the shared lab's sshd answers").toBe(true);
  endpoint = {
    host: status.ssh.host,
    port: status.ssh.port,
    user: status.ssh.user,
    keyPath: status.ssh.keyPath,
    knownHostsPath: status.ssh.knownHostsPath,
    label: 'lab',
  };
  scratch = mkdtempSync(join(tmpdir(), 'ctrdbg-sshhost-'));
  host = await connectHost(endpoint);
  remoteTmp = (await host.execChecked('mktemp -d /tmp/ctrdbg-sshhost-XXXXXX')).trim();
});

afterAll(async () => {
  if (host) {
    if (remoteTmp) await host.exec(`rm -rf ${remoteTmp}`).catch(() => {});
    await host.close();
  }
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('exec', () => {
  it('returns stdout, stderr and the exit code', async () => {
    const result = await host.exec('echo out; echo err >&2; exit 3');
    expect(result).toEqual({ code: 3, stdout: 'out\n', stderr: 'err\n' });
    expect((await host.exec('id -un')).stdout).toBe(`${status.ssh.user}\n`);
  });

  it('passes stdin and environment values verbatim', async () => {
    expect((await host.exec('wc -c', { stdin: 'hello' })).stdout.trim()).toBe('5');
    expect((await host.exec('cat')).stdout).toBe('');
    const value = `it's "quoted" $HOME; a\\b`;
    const result = await host.exec('printf %s "$CTRDBG_X"', { env: { CTRDBG_X: value } });
    expect(result.stdout).toBe(value);
  });

  it('reports a command killed by a signal', async () => {
    const result = await host.exec('kill -TERM $$');
    expect(result.signal).toBe('SIGTERM');
    expect(result.code).toBe(143);
  });

  it('runs through sudo as root, with the environment kept', async () => {
    expect((await host.exec('id -u', { sudo: true })).stdout).toBe('0\n');
    const piped = await host.execChecked('echo "$A" | tr a-z A-Z && id -un', {
      sudo: true,
      env: { A: 'abc' },
    });
    expect(piped).toBe('ABC\nroot\n');
    await host.checkSudo();
  });

  it('execChecked throws a node error that carries the stderr', async () => {
    const error = await failure(host.execChecked('echo doomed >&2; exit 4'));
    expect(error.kind).toBe('node');
    expect(error.message).toContain('exit 4');
    expect(error.message).toContain('doomed');
  });

  it.each([
    ['as the SSH user', false],
    ['through sudo', true],
  ])(
    'stops a command %s that exceeds its timeout, on the node too; the connection stays usable',
    async (_, sudo) => {
      const marker = `sleep 31.${randomBytes(2).readUInt16BE(0)}`;
      const started = Date.now();
      const error = await failure(host.exec(`${marker}; echo never`, { timeoutMs: 700, sudo }));
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(error.kind).toBe('node');
      expect(error.message).toContain('did not finish within 0.7 s');
      await poll(
        async () => (await host.exec(`pgrep -f '^${marker}$'`)).code === 1,
        5_000,
        'the timed-out command to be gone from the node',
      );
      expect((await host.exec('echo still-here')).stdout).toBe('still-here\n');
    },
  );

  it('returns the exit status of every short command on fresh connections (no lost exit event)', async () => {
    // A short command's data, EOF, exit-status and close can arrive in one TCP read, right behind the channel
    // confirmation. Before the fix about 1 in 25 of these lost their status ("ended without an exit status").
    let done = 0;
    for (let round = 0; round < 40; round++) {
      const hosts = await Promise.all([connectHost(endpoint), connectHost(endpoint)]);
      try {
        const results = await Promise.all(
          hosts.flatMap((h) => [h.exec('echo $PPID'), h.exec('exit 3'), h.exec('true')]),
        );
        expect(results.map((r) => r.code)).toEqual([0, 3, 0, 0, 3, 0]);
        done += results.length;
      } finally {
        await Promise.all(hosts.map((h) => h.close()));
      }
    }
    expect(done).toBe(240);
  });

  it('queues commands beyond the server session limit (MaxSessions 10)', async () => {
    const runs = Array.from({ length: 25 }, (_, i) => host.execChecked(`sleep 0.3; echo ${i}`));
    const outputs = await Promise.all(runs);
    expect(outputs).toEqual(Array.from({ length: 25 }, (_, i) => `${i}\n`));
  });
});

describe('upload', () => {
  it('streams a 20 MB file with progress and a verified sha256, then renames it into place', async () => {
    const local = join(scratch, 'big.bin');
    const data = randomBytes(20 * 1024 * 1024);
    writeFileSync(local, data);
    const expected = createHash('sha256').update(data).digest('hex');
    const progress: UploadProgress[] = [];
    const target = `${remoteTmp}/big.bin`;
    const result = await host.upload(local, target, {
      mode: 0o640,
      onProgress: (p) => progress.push({ ...p }),
    });
    expect(result).toEqual({ path: target, bytes: data.length, sha256: expected });
    expect(progress.length).toBeGreaterThan(10);
    expect(progress[0]).toEqual({ sent: 0, total: data.length });
    expect(progress.at(-1)).toEqual({ sent: data.length, total: data.length });
    for (let i = 1; i < progress.length; i++)
      expect(progress[i]!.sent).toBeGreaterThan(progress[i - 1]!.sent);
    expect((await host.execChecked(`sha256sum ${target}`)).split(' ')[0]).toBe(expected);
    expect((await host.execChecked(`stat -c '%a %U' ${target}`)).trim()).toBe(`640 ${status.ssh.user}`);
    // No temporary name left next to it.
    expect((await host.execChecked(`ls -A ${remoteTmp}`)).trim().split('\n')).toEqual(['big.bin']);
  });

  it('replaces an existing file atomically and keeps the local mode by default', async () => {
    const local = join(scratch, 'tool.sh');
    writeFileSync(local, '#!/bin/sh\necho v2\n', { mode: 0o755 });
    chmodSync(local, 0o755);
    const target = `${remoteTmp}/tool.sh`;
    await host.execChecked(`printf 'old' > ${target}`);
    await host.upload(local, target);
    expect((await host.execChecked(target)).trim()).toBe('v2');
    expect((await host.execChecked(`stat -c %a ${target}`)).trim()).toBe('755');
  });

  it('writes as root into a root-only directory with sudo, and fails clearly without it', async () => {
    const dir = (await host.execChecked('mktemp -d /tmp/ctrdbg-rootonly-XXXXXX', { sudo: true })).trim();
    try {
      await host.execChecked(`chmod 0700 ${dir}`, { sudo: true });
      const local = join(scratch, 'agent');
      writeFileSync(local, randomBytes(300_000));
      const result = await host.upload(local, `${dir}/agent`, { sudo: true, mode: 0o755 });
      const listing = await host.execChecked(`stat -c '%a %U' ${dir}/agent && sha256sum ${dir}/agent`, {
        sudo: true,
      });
      expect(listing).toBe(`755 root\n${result.sha256}  ${dir}/agent\n`);

      const denied = await failure(host.upload(local, `${dir}/other`));
      expect(denied.kind).toBe('node');
      expect(denied.message).toMatch(/Permission denied/);
      expect(denied.hint).toMatch(/sudo/);
      expect((await host.execChecked(`ls -A ${dir}`, { sudo: true })).trim()).toBe('agent');
    } finally {
      await host.exec(`rm -rf ${dir}`, { sudo: true });
    }
  });

  it('refuses a local file that does not exist with an input error', async () => {
    const error = await failure(host.upload(join(scratch, 'nope'), `${remoteTmp}/nope`));
    expect(error.kind).toBe('input');
    expect(error.message).toContain('no such file');
  });
});

describe('pipeTo', () => {
  it('streams a tar archive into tar -x on the node', async () => {
    const tree = join(scratch, 'tree');
    mkdirSync(join(tree, 'sub'), { recursive: true });
    writeFileSync(join(tree, 'a.txt'), 'alpha\n');
    writeFileSync(join(tree, 'sub', 'b.go'), 'package sub\n');
    const tar = spawnLocal('tar', ['-c', '-C', tree, '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const dest = `${remoteTmp}/untar`;
    const result = await host.pipeTo(`mkdir -p ${dest} && tar -x -C ${dest}`, tar.stdout!);
    expect(result.code, result.stderr).toBe(0);
    expect(await host.execChecked(`cat ${dest}/a.txt ${dest}/sub/b.go`)).toBe('alpha\npackage sub\n');
  });

  it('turns a failing local source into an input error', async () => {
    const broken = new Readable({
      read() {
        this.destroy(new Error('disk on fire'));
      },
    });
    const error = await failure(host.pipeTo('cat > /dev/null', broken, { timeoutMs: 10_000 }));
    expect(error.kind).toBe('input');
    expect(error.message).toContain('disk on fire');
  });
});

describe('spawn', () => {
  it('gives a duplex stream; end() delivers EOF to the remote command', async () => {
    const proc = await host.spawn('cat; echo EOF-SEEN');
    let out = '';
    proc.stream.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    proc.stream.write('hello\n');
    await poll(async () => out === 'hello\n', 5_000, 'the echo of what we wrote');
    proc.end();
    const exit = await within(proc.exited, 10_000, 'the remote command to exit');
    expect(exit).toEqual({ code: 0 });
    expect(out).toBe('hello\nEOF-SEEN\n');
  });

  it('runs through sudo and reports the exit code', async () => {
    const proc = await host.spawn('id -u; exit 7', { sudo: true });
    let out = '';
    proc.stream.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    expect(await within(proc.exited, 10_000, 'exit')).toEqual({ code: 7 });
    expect(out).toBe('0\n');
  });
});

describe('forward', () => {
  let echo: Server;
  let echoPort: number;

  beforeAll(async () => {
    echo = createServer((socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    echoPort = (echo.address() as { port: number }).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => echo.close(resolve));
  });

  it('opens a TCP connection from the node to a local service', async () => {
    const stream = await host.forward('127.0.0.1', echoPort);
    const reply = new Promise<string>((resolve) =>
      stream.once('data', (chunk: Buffer) => resolve(chunk.toString())),
    );
    stream.write('ping');
    expect(await within(reply, 5_000, 'the echo')).toBe('ping');
    stream.end();
  });

  it('says when nothing listens there on the node', async () => {
    const port = await freeLoopbackPort();
    const error = await failure(host.forward('127.0.0.1', port));
    expect(error.kind).toBe('node');
    expect(error.message).toContain(`127.0.0.1:${port}`);
  });
});

describe('connection errors', () => {
  it('refuses a key the node does not accept with an auth error', async () => {
    const key = join(scratch, 'stranger');
    keygen(key);
    const error = await failure(connectHost({ ...endpoint, keyPath: key }));
    expect(error.kind).toBe('auth');
    expect(error.message).toContain(`refused key ${key}`);
    expect(error.message).toContain(`for user ${status.ssh.user}`);
    expect(error.hint).toContain('authorized_keys');
  });

  it('says a key file that cannot be read is an input error', async () => {
    const missing = await failure(connectHost({ ...endpoint, keyPath: join(scratch, 'no-such-key') }));
    expect(missing.kind).toBe('input');
    const pub = await failure(connectHost({ ...endpoint, keyPath: `${status.ssh.keyPath}.pub` }));
    expect(pub.kind).toBe('input');
    expect(pub.message).toContain('public key');
  });

  it('refuses a host whose key CHANGED, naming the file and line', async () => {
    const other = join(scratch, 'impostor');
    keygen(other);
    const otherPub = readFileSync(`${other}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    const file = join(scratch, 'known_hosts_changed');
    writeFileSync(file, `# pinned earlier\n[127.0.0.1]:${status.ssh.port} ${otherPub}\n`);
    const error = await failure(connectHost({ ...endpoint, knownHostsPath: file }));
    expect(error.kind).toBe('hostKey');
    expect(error.message).toContain('CHANGED');
    expect(error.message).toContain(`${file} pins line 2`);
    expect(error.hint).toContain(`ssh-keygen -R '[127.0.0.1]:${status.ssh.port}'`);
  });

  it('refuses a host that is not in known_hosts, and says how to add it', async () => {
    const pinned = readFileSync(status.ssh.knownHostsPath, 'utf8').trim();
    const keyPart = pinned.split(/\s+/).slice(1).join(' ');
    const file = join(scratch, 'known_hosts_other_port');
    // The same key pinned for another port does not count: [host]:port is the name.
    writeFileSync(file, `[127.0.0.1]:${status.ssh.port + 1} ${keyPart}\n127.0.0.1 ${keyPart}\n`);
    const error = await failure(connectHost({ ...endpoint, knownHostsPath: file }));
    expect(error.kind).toBe('hostKey');
    expect(error.message).toContain('not in known_hosts');
    expect(error.hint).toContain(`echo '${pinned}' >> ${file}`);

    const absent = await failure(connectHost({ ...endpoint, knownHostsPath: join(scratch, 'absent') }));
    expect(absent.kind).toBe('hostKey');
    expect(absent.message).toContain('does not exist');
  });

  it('reports a closed port as unreachable, quickly', async () => {
    const port = await freeLoopbackPort();
    const started = Date.now();
    const error = await failure(connectHost({ ...endpoint, port }));
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(error.kind).toBe('unreachable');
    expect(error.message).toContain('connection refused');
  });

  it('times out on a server that never speaks SSH', async () => {
    const sockets: import('node:net').Socket[] = [];
    const silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as { port: number }).port;
      const started = Date.now();
      const error = await failure(connectHost({ ...endpoint, port, readyTimeoutMs: 1_000 }));
      expect(Date.now() - started).toBeLessThan(4_000);
      expect(error.kind).toBe('unreachable');
      expect(error.message).toContain('Timed out after 1 s');
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});

describe('onClose', () => {
  /** The sshd process serving this connection: the parent of the login shell. */
  async function sessionPid(remote: RemoteHost): Promise<number> {
    const pid = Number((await remote.execChecked('echo $PPID')).trim());
    expect(pid).toBeGreaterThan(1);
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain('sshd');
    return pid;
  }

  it('fires when the server side kills the connection, not on our own close()', async () => {
    const dropped = await connectHost(endpoint);
    const kept = await connectHost(endpoint);
    try {
      const events: (Error | undefined)[] = [];
      const keptEvents: (Error | undefined)[] = [];
      dropped.onClose((error) => events.push(error));
      kept.onClose((error) => keptEvents.push(error));
      process.kill(await sessionPid(dropped), 'SIGKILL');
      await poll(async () => events.length > 0, 10_000, 'onClose');
      expect(events).toHaveLength(1);
      expect(isCtrdbgError(events[0]) && events[0].kind).toBe('unreachable');
      const after = await failure(dropped.exec('true'));
      expect(after.kind).toBe('unreachable');
      // A late listener still hears about it.
      const late = await within(new Promise((resolve) => dropped.onClose(resolve)), 1_000, 'late onClose');
      expect(late).toBe(events[0]);

      await kept.close();
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(keptEvents).toEqual([]);
    } finally {
      await dropped.close();
      await kept.close();
    }
  });

  it('notices a frozen server within seconds (keep-alive)', async () => {
    const frozen = await connectHost(endpoint);
    const pid = await sessionPid(frozen);
    try {
      const closed = new Promise<Error | undefined>((resolve) => frozen.onClose(resolve));
      process.kill(pid, 'SIGSTOP');
      const started = Date.now();
      const error = await within(closed, 25_000, 'the keep-alive to give up');
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(error?.message).toMatch(/Keepalive timeout/i);
    } finally {
      if (processAlive(pid)) process.kill(pid, 'SIGKILL');
      await frozen.close();
    }
  });
});

describe('a node without passwordless sudo (own sshd, MaxSessions 3)', () => {
  let sshd: ChildProcess | undefined;
  let dir: string;
  let nosudo: RemoteHost | undefined;
  let port: number;

  beforeAll(async () => {
    try {
      execFileSync('id', ['-u', NOSUDO_USER], { stdio: 'ignore' });
    } catch {
      execFileSync('useradd', ['--no-create-home', '--home-dir', '/', '--shell', '/bin/sh', NOSUDO_USER]);
    }
    execFileSync('usermod', ['-p', '*', NOSUDO_USER]);
    // StrictModes: the authorized_keys file and every parent must be root-owned and not writable by others.
    mkdirSync(TEST_SSH_ROOT, { recursive: true, mode: 0o755 });
    chmodSync('/var/lib/ctrdbg', 0o755);
    chmodSync(TEST_SSH_ROOT, 0o755);
    dir = mkdtempSync(join(TEST_SSH_ROOT, 'nosudo-'));
    chmodSync(dir, 0o755);
    const hostKey = join(status.dir, 'ssh', 'ssh_host_ed25519_key');
    writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${status.ssh.keyPath}.pub`), { mode: 0o644 });
    port = await freeLoopbackPort();
    const config = join(dir, 'sshd_config');
    writeFileSync(
      config,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKey}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        `AllowUsers ${NOSUDO_USER}`,
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes yes',
        'MaxSessions 3',
        '',
      ].join('\n'),
    );
    sshd = spawnLocal('/usr/sbin/sshd', ['-D', '-f', config, '-E', join(dir, 'sshd.log')], {
      stdio: 'ignore',
    });
    await poll(
      async () => (await readBanner('127.0.0.1', port, 500))?.startsWith('SSH-2.0') ?? false,
      10_000,
      'sshd',
    );
    const hostPub = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    writeFileSync(join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${hostPub}\n`);
    nosudo = await connectHost({
      host: '127.0.0.1',
      port,
      user: NOSUDO_USER,
      keyPath: status.ssh.keyPath,
      knownHostsPath: join(dir, 'known_hosts'),
      label: 'nosudo-node',
    });
  });

  afterAll(async () => {
    await nosudo?.close();
    if (sshd && sshd.exitCode === null) {
      const exited = new Promise((resolve) => sshd!.once('exit', resolve));
      sshd.kill('SIGTERM');
      await within(exited, 10_000, 'sshd to stop').catch(() => sshd!.kill('SIGKILL'));
    }
    // The user is this suite's own (a leftover of an interrupted run is taken over too); its session
    // processes may outlive sshd by a moment, and userdel refuses while they run.
    await poll(
      async () => {
        try {
          execFileSync('id', ['-u', NOSUDO_USER], { stdio: 'ignore' });
        } catch {
          return true; // gone (or never created)
        }
        try {
          execFileSync('userdel', [NOSUDO_USER], { stdio: 'ignore' });
          return true;
        } catch {
          return false;
        }
      },
      10_000,
      `userdel ${NOSUDO_USER}`,
    );
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('logs in as a user that is not the lab user', async () => {
    expect((await nosudo!.execChecked('id -un')).trim()).toBe(NOSUDO_USER);
  });

  it('checkSudo throws a sudo error with a NOPASSWD hint', async () => {
    const error = await failure(nosudo!.checkSudo());
    expect(error.kind).toBe('sudo');
    expect(error.message).toContain(`${NOSUDO_USER} on nosudo-node cannot run sudo without a password`);
    expect(error.hint).toContain(`${NOSUDO_USER} ALL=(ALL) NOPASSWD:ALL`);
  });

  it('execChecked with sudo throws a sudo error, not a generic failure', async () => {
    const error = await failure(nosudo!.execChecked('id -u', { sudo: true }));
    expect(error.kind).toBe('sudo');
  });

  it('adapts the session queue to a server that allows fewer sessions', async () => {
    const outputs = await Promise.all(
      Array.from({ length: 8 }, (_, i) => nosudo!.execChecked(`sleep 0.3; echo ${i}`)),
    );
    expect(outputs).toEqual(Array.from({ length: 8 }, (_, i) => `${i}\n`));
  });
});
