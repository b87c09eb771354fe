/**
 * Bad input against the real lab (sshd, sudo, containerd, dlv): every message that used to mislead says what
 * really happened and what to do, in one paragraph, with a distinct exit code — and the node is left as it was.
 * Exit codes: a failed trigger (16), restore with nothing to restore (0), usage errors under --json (a JSON
 * error object, exit 2). (Ctrl-C of attach → 130 is in attach.test.ts; a 386 ELF refused by build --verify →
 * 15 in dlv-for-node.test.ts.)
 */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ctrdbg, ctrdbgJson } from '../helpers/cli.js';
import { type LabStatusJson, labEnv, labStatus } from '../helpers/lab.js';

let env: Record<string, string>;
let lab: LabStatusJson;
let work: string;

function tracerPid(pid: number): number {
  return Number(/^TracerPid:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? -1);
}

/** The node as a command must leave it: same containerd, untraced, serving. */
async function untouched(): Promise<void> {
  const now = await labStatus('default', env);
  expect(now.containerd.pid).toBe(lab.containerd.pid);
  expect(now.containerd.serving).toBe(true);
  expect(tracerPid(now.containerd.pid)).toBe(0);
}

/** One paragraph on stderr: "error: …" and nothing after it but the hint (on its own line after a list). */
function errorParagraph(stderr: string): string {
  const at = stderr.indexOf('error: ');
  expect(at, stderr).toBeGreaterThanOrEqual(0);
  return stderr.slice(at).trim();
}

async function setsDir(name: string, files: Record<string, string>): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) await writeFile(join(dir, file), text);
  return dir;
}

beforeAll(async () => {
  env = labEnv();
  work = await mkdtemp(join(tmpdir(), 'ctrdbg-errors-'));
  const setup = await ctrdbg(['setup', 'lab'], { env });
  expect(setup.exitCode, setup.stderr).toBe(0);
  lab = await labStatus('default', env);
}, 600_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('messages that say what really happened', () => {
  it('sets check on a stripped containerd: not a debug build (exit 6), never a Delve or same-user problem', async () => {
    expect((await ctrdbg(['restore', 'lab'], { env })).exitCode).toBe(0);
    const stock = await labStatus('default', env);
    try {
      const r = await ctrdbg(['sets', 'check', 'lab', '--set', 'lab-create'], { env });
      expect(r.exitCode, r.stderr).toBe(6);
      const text = errorParagraph(r.stderr);
      expect(text).toContain('is not a debug build');
      expect(text).toContain('stripped');
      expect(text).toContain('ctrdbg setup lab');
      expect(text).not.toMatch(/same.user|UNIX user|relay/i);
      expect(tracerPid(stock.containerd.pid)).toBe(0);
      expect((await labStatus('default', env)).containerd.pid).toBe(stock.containerd.pid);
    } finally {
      expect((await ctrdbg(['setup', 'lab', '--skip-build'], { env })).exitCode).toBe(0);
      lab = await labStatus('default', env);
    }
  });

  it('doctor with containerd down names the missing version, never "Check out vundefined"', async () => {
    const service = join(lab.dir, 'node/usr/local/sbin/lab-service');
    await execa(service, ['stop']);
    try {
      const { data } = await ctrdbgJson<{ checks: { id: string; status: string; hint?: string }[] }>(
        ['doctor', 'lab'],
        { env },
      );
      expect(JSON.stringify(data)).not.toMatch(/vundefined|undefined/);
      const version = data.checks.find((c) => c.id === 'version');
      expect(version?.status).toBe('fail');
      expect(version?.hint).toContain("The node's containerd reports no version number");
    } finally {
      await execa(service, ['start']);
    }
    lab = await labStatus('default', env);
  });

  it('a refused key names --key and ssh://USER@HOST, no --user option (exit 8)', async () => {
    const key = join(work, 'other_key');
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    const r = await ctrdbg(
      [
        'doctor',
        `ssh://${lab.ssh.user}@127.0.0.1:${lab.ssh.port}`,
        '--key',
        key,
        '--known-hosts',
        lab.ssh.knownHostsPath,
      ],
      { env },
    );
    expect(r.exitCode).toBe(8);
    const out = `${r.stdout}${r.stderr}`;
    expect(out).toContain(`refused key ${key}`);
    expect(out).toContain('--key FILE');
    expect(out).not.toContain('--user');
  });

  it('ssh://127.0.0.1 without a user says a user is needed and how to give it (exit 3)', async () => {
    const r = await ctrdbg(['doctor', 'ssh://127.0.0.1', '--key', lab.ssh.keyPath], { env });
    expect(r.exitCode).toBe(3);
    const text = errorParagraph(r.stderr);
    expect(text).toContain("'ssh://127.0.0.1' names no user");
    expect(text).toContain('ssh://USER@127.0.0.1');
    expect(text).not.toContain('not a target ctrdbg knows');
  });

  it('setup --binary of a Go program that is not containerd says so (exit 3), no git checkout advice', async () => {
    const dir = join(work, 'hello');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'go.mod'), 'module example.test/hello\n\ngo 1.19\n');
    await writeFile(
      join(dir, 'main.go'),
      'package main\n\nfunc main() { println("hello, not containerd") }\n',
    );
    const bin = join(dir, 'hello');
    await execa('go', ['build', '-gcflags=all=-N -l', '-o', bin, '.'], {
      cwd: dir,
      env: { GOFLAGS: '', GO111MODULE: 'on', CGO_ENABLED: '0', GOPROXY: 'off' },
    });
    const r = await ctrdbg(['setup', 'lab', '--binary', bin], { env });
    expect(r.exitCode, r.stderr).toBe(3);
    const text = errorParagraph(r.stderr);
    expect(text).toContain(
      `${bin} is not containerd: it is a Go program whose main package is example.test/hello`,
    );
    expect(text).not.toMatch(/checkout|1\.6\.20/);
    await untouched();
  });

  it('an empty set file says the file is empty (exit 3), not "expected object, received null"', async () => {
    const dir = await setsDir('empty', { 'mine.yaml': '' });
    for (const args of [
      ['sets', 'list', '--sets-dir', dir],
      ['attach', 'lab', '--sets-dir', dir, '--set', 'lab-create', '--max-hits', '1'],
    ]) {
      const r = await ctrdbg(args, { env });
      expect(r.exitCode, args.join(' ')).toBe(3);
      const text = errorParagraph(r.stderr);
      expect(text).toContain(`${join(dir, 'mine.yaml')} is empty: it holds no breakpoint set.`);
      expect(text).not.toMatch(/null|Invalid input/);
    }
    await untouched();
  });

  it("a set's problems are listed one per line, with file:line:column, and the hint on a line of its own", async () => {
    const dir = await setsDir('syntax', {
      'bad.yaml': [
        'schema: ctrdbg.breakpoint-set/v1',
        'name: bad',
        'entries:',
        '  - name: ns',
        '    candidates: [github.com/containerd/containerd/services/namespaces.(*local).Create]',
        '    record:',
        '      - a +',
        '    bogus: 1',
        '',
      ].join('\n'),
    });
    const r = await ctrdbg(['attach', 'lab', '--sets-dir', dir, '--set', 'bad'], { env });
    expect(r.exitCode).toBe(3);
    const lines = errorParagraph(r.stderr).split('\n');
    const file = join(dir, 'bad.yaml');
    expect(lines).toEqual([
      `error: invalid breakpoint set ${file}:`,
      `  ${file}:7:11: record expression "a +" is not a Go expression: "+" needs an operand on its right`,
      `  ${file}:8:5: unknown field "bogus" (at entries.0)`,
      'The schema is described in breakpoint-sets/README.md.',
    ]);
    await untouched();
  });

  it('sets check warns about an expression naming a variable the function does not have', async () => {
    const dir = await setsDir('typo', {
      'typo.yaml': [
        'schema: ctrdbg.breakpoint-set/v1',
        'name: typo',
        'entries:',
        '  - name: ns',
        '    candidates: [github.com/containerd/containerd/services/namespaces.(*local).Create]',
        '    record: [rq.Namespace.Name, req.Namespace.Labels]',
        '',
      ].join('\n'),
    });
    const r = await ctrdbg(['sets', 'check', 'lab', '--sets-dir', dir, '--set', 'typo'], { env });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      'warning: record "rq.Namespace.Name" names rq, which namespaces.(*local).Create does not have (its parameters: ctx, l, req; locals: err, resp); did you mean req?',
    );
    expect(r.stdout).not.toContain('req.Namespace.Labels" names');
    // The agent detached cleanly (it used to die on a "stop" without a recording).
    expect(r.stderr).not.toContain('detach:');
    const json = await ctrdbgJson<{ warnings: { expr: string; unknown: string[] }[] }>(
      ['sets', 'check', 'lab', '--sets-dir', dir, '--set', 'typo', '--set', 'lab-create'],
      { env },
    );
    expect(json.data.warnings.map((w) => [w.expr, w.unknown])).toEqual([['rq.Namespace.Name', ['rq']]]);
    await untouched();
  });

  it('the summary explains a stop without a hit: the halt that ended the recording', async () => {
    const { data, stderr } = await ctrdbgJson<{ hits: number; stops: number; stopsExplained?: string }>(
      [
        'attach',
        'lab',
        '--set',
        'lab-create',
        '--trigger',
        `ctr -a $CTRDBG_SOCKET namespaces create stops-${process.pid}-${Date.now() % 100000}`,
      ],
      { env },
    );
    expect(data.hits, stderr).toBe(1);
    expect(data.stops).toBe(2);
    expect(data.stopsExplained).toBe('1 stop was the halt that ended the recording');
    const r = await ctrdbg(
      [
        'attach',
        'lab',
        '--set',
        'lab-create',
        '--trigger',
        `ctr -a $CTRDBG_SOCKET namespaces create stops-${process.pid}-${Date.now() % 100000}`,
      ],
      { env },
    );
    expect(r.stdout).toContain(
      '1 hit in 2 stops (trigger-finished); 1 stop was the halt that ended the recording; containerd held stopped',
    );
    await untouched();
  });
});

describe('exit codes', () => {
  it('a trigger that exits 3: reported, exit 16, the recording kept', async () => {
    const file = join(work, 'failed-trigger.jsonl');
    const r = await ctrdbg(
      [
        'attach',
        'lab',
        '--set',
        'lab-create',
        '--record',
        file,
        '--trigger',
        `ctr -a $CTRDBG_SOCKET namespaces create t3-${process.pid}; exit 3`,
      ],
      { env },
    );
    expect(r.exitCode, r.stderr).toBe(16);
    expect(r.stdout).toMatch(/trigger: exited with 3 .* it failed: the hits until then are kept/);
    expect(r.stdout).toContain('ctrdbg exits 16');
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines.filter((l) => JSON.parse(l).type === 'hit')).toHaveLength(1);
    expect(JSON.parse(lines.at(-1)!).type).toBe('end');
    const json = await ctrdbgJson<{ trigger: { exitCode: number } }>(
      ['attach', 'lab', '--set', 'lab-create', '--trigger', 'exit 3'],
      { env },
    );
    expect(json.exitCode).toBe(16);
    expect(json.data.trigger.exitCode).toBe(3);
    // A trigger ctrdbg itself stopped (--duration) did not fail.
    const stopped = await ctrdbg(
      ['attach', 'lab', '--set', 'lab-create', '--duration', '2', '--trigger', 'sleep 60'],
      {
        env,
      },
    );
    expect(stopped.exitCode, stopped.stderr).toBe(0);
    await untouched();
  });

  it('restore with nothing to restore: a no-op, exit 0, and it says so', async () => {
    const name = `norestore${process.pid % 10000}`;
    const up = await ctrdbgJson<{ status: LabStatusJson }>(['lab', 'up', '--name', name], { env });
    expect(up.exitCode).toBe(0);
    try {
      const before = up.data.status.containerd.pid;
      const r = await ctrdbg(['restore', `lab:${name}`], { env });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toContain(`lab:${name}: nothing to restore — ctrdbg never replaced its containerd`);
      const json = await ctrdbgJson<{ restored: boolean; nothingToRestore: boolean; pid: number }>(
        ['restore', `lab:${name}`],
        { env },
      );
      expect(json.data).toMatchObject({ restored: false, nothingToRestore: true, pid: before });
      expect((await labStatus(name, env)).containerd.pid).toBe(before);
    } finally {
      await ctrdbg(['lab', 'down', '--name', name, '--purge'], { env });
    }
  });

  it('usage errors with --json print a JSON error object (exit 2)', async () => {
    for (const [args, message] of [
      [['replay', '--bogus', '--json'], "unknown option '--bogus'."],
      [['attach', 'lab', '--max-hits', 'x', '--json'], "option '--max-hits <n>' argument 'x' is invalid"],
      [['frob', '--json'], "unknown command 'frob'."],
    ] as const) {
      const r = await ctrdbg([...args], { env });
      expect(r.exitCode, args.join(' ')).toBe(2);
      const parsed = JSON.parse(r.stdout) as { error: { kind: string; message: string; hint: string } };
      expect(parsed.error.kind).toBe('usage');
      expect(parsed.error.message).toContain(message);
      expect(parsed.error.hint).toMatch(/^Run ctrdbg .*--help for usage\.$/);
    }
  });
});
