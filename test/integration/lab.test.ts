/**
 * The lab lifecycle on a lab of its own (the shared one stays up for the other suites):
 * up → real SSH login as the lab user with a pinned host key → sudo → status → idempotent up → down
 * with no process left.
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ctrdbg, ctrdbgJson } from '../helpers/cli.js';
import { type LabStatusJson, labEnv, labStatus, sshExec } from '../helpers/lab.js';

const NAME = 'lifecycle';

function processesUnder(dir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      let exe = '';
      try {
        exe = readlinkSync(`/proc/${entry}/exe`);
      } catch {}
      if (cmdline.includes(`${dir}/`) || exe.startsWith(`${dir}/`)) found.push(Number(entry));
    } catch {}
  }
  return found;
}

describe('ctrdbg lab', () => {
  const env = labEnv();
  let first: LabStatusJson;

  afterAll(async () => {
    await ctrdbg(['lab', 'down', '--name', NAME, '--purge'], { env });
  });

  it('comes up with a reachable sshd and a serving stock containerd', async () => {
    const up = await ctrdbgJson<{ created: boolean; status: LabStatusJson }>(['lab', 'up', '--name', NAME], {
      env,
    });
    expect(up.exitCode, up.stderr).toBe(0);
    first = up.data.status;
    expect(first.target).toBe(`lab:${NAME}`);
    expect(first.ssh.host).toBe('127.0.0.1');
    expect(first.ssh.reachable).toBe(true);
    expect(first.containerd.running).toBe(true);
    expect(first.containerd.serving).toBe(true);
    expect(first.containerd.isStock).toBe(true);
    expect(first.containerd.debuggable).toBe(false);
    expect(first.containerd.version).toMatch(/^containerd github.com\/containerd\/containerd 1\.6\./);
    expect(readlinkSync(`/proc/${first.containerd.pid}/exe`)).toBe(first.containerd.binary);
  });

  it('accepts the lab key over SSH, with the host key pinned, and gives passwordless sudo', async () => {
    const who = await sshExec(first, 'id -un && sudo -n true && echo sudo-ok');
    expect(who.code).toBe(0);
    expect(who.stdout.split('\n')).toEqual(['ctrdbglab', 'sudo-ok', '']);
  });

  it("ctrdbg pins the lab's host key: the lab's own known_hosts passes, another key or none is refused", async () => {
    const target = `ssh://${first.ssh.user}@127.0.0.1:${first.ssh.port}`;
    const check = (knownHosts: string) =>
      ctrdbg(['doctor', target, '--key', first.ssh.keyPath, '--known-hosts', knownHosts, '--json'], { env });
    const pinned = await check(first.ssh.knownHostsPath);
    const reachable = (JSON.parse(pinned.stdout) as { checks: { id: string; status: string }[] }).checks.find(
      (c) => c.id === 'reachable',
    );
    expect(reachable?.status, pinned.stderr).toBe('ok');

    const dir = mkdtempSync(join(tmpdir(), 'ctrdbg-pin-'));
    try {
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'other')]);
      const other = readFileSync(join(dir, 'other.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
      writeFileSync(join(dir, 'changed'), `[127.0.0.1]:${first.ssh.port} ${other}\n`);
      const changed = await check(join(dir, 'changed'));
      expect(changed.exitCode, changed.stderr).toBe(9);
      expect(`${changed.stdout}${changed.stderr}`).toContain('has CHANGED');
      writeFileSync(join(dir, 'empty'), '');
      const missing = await check(join(dir, 'empty'));
      expect(missing.exitCode, missing.stderr).toBe(9);
      expect(`${missing.stdout}${missing.stderr}`).toContain('is not in known_hosts');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('listens on loopback only', async () => {
    const tcp = readFileSync('/proc/net/tcp', 'utf8');
    const portHex = first.ssh.port.toString(16).toUpperCase().padStart(4, '0');
    const listeners = tcp.split('\n').filter((l) => l.includes(`:${portHex} `) && l.includes(' 0A '));
    expect(listeners.length).toBe(1);
    expect(listeners[0]).toContain(`0100007F:${portHex}`);
  });

  it('is idempotent: a second up changes nothing', async () => {
    const again = await ctrdbgJson<{ created: boolean; status: LabStatusJson }>(
      ['lab', 'up', '--name', NAME],
      { env },
    );
    expect(again.exitCode).toBe(0);
    expect(again.data.created).toBe(false);
    expect(again.data.status.containerd.pid).toBe(first.containerd.pid);
    expect(again.data.status.ssh.port).toBe(first.ssh.port);
    expect(again.data.status.ssh.sshdPid).toBe(first.ssh.sshdPid);
  });

  it('goes down leaving no process behind', async () => {
    expect(processesUnder(first.dir).length).toBeGreaterThan(0);
    const down = await ctrdbg(['lab', 'down', '--name', NAME], { env });
    expect(down.exitCode, down.stderr).toBe(0);
    expect(processesUnder(first.dir)).toEqual([]);
    expect(existsSync(`/proc/${first.containerd.pid}`)).toBe(false);
    expect(existsSync(`/proc/${first.ssh.sshdPid}`)).toBe(false);
    const status = await ctrdbg(['lab', 'status', '--name', NAME, '--json'], { env });
    expect(status.exitCode).toBe(11);
    expect(JSON.parse(status.stdout).up).toBe(false);
  });

  it('says what to do for a lab that does not exist', async () => {
    const missing = await ctrdbg(['lab', 'status', '--name', 'nope'], { env });
    expect(missing.exitCode).toBe(3);
    expect(missing.stderr).toContain("There is no lab named 'nope'");
    expect(missing.stderr).toContain('ctrdbg lab up --name nope');
  });
});

describe('the shared integration lab', () => {
  it('is up', async () => {
    const status = await labStatus();
    expect(status.up).toBe(true);
  });
});
