/**
 * The replay debug adapter, driven the way VS Code drives it: DebugClient from
 * @vscode/debugadapter-testsupport against the real adapter process (`node dist/main.js dap`).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DebugClient } from '@vscode/debugadapter-testsupport';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..', '..');
const mainJs = join(root, 'dist', 'main.js');
const sample = join(root, 'test', 'fixtures', 'sessions', 'sample.jsonl');
/** A CRI lab recording of the stdio and stdio-shim sets: hits from containerd and from the pod's shim. */
const shimSample = join(root, 'test', 'fixtures', 'sessions', 'shim-stdio.jsonl');
const REMOTE = '/usr/share/gocode/src/github.com/containerd/containerd';
const LOCAL = '/home/dev/src/containerd';
const substitutePath = [{ from: LOCAL, to: REMOTE }];
const TIMEOUT_MS = 10_000;

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** The adapter runs from dist/: rebuild it when any source is newer (a stale build would test old code). */
function ensureBuilt(): void {
  const builtAt = existsSync(join(root, 'dist', 'replay', 'dapSession.js')) ? statSync(mainJs).mtimeMs : 0;
  if (builtAt === 0 || newestMtime(join(root, 'src')) > builtAt) {
    // tsc emits even when some file (maybe another area's work in progress) has a type error; the
    // typecheck is `npx tsc --noEmit`'s job, this only needs fresh JavaScript.
    const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 180_000,
    });
    if (!existsSync(join(root, 'dist', 'replay', 'dapSession.js')) || statSync(mainJs).mtimeMs <= builtAt) {
      throw new Error(`build failed: ${build.stdout}${build.stderr}`);
    }
  }
}

function withTimeout<T>(promise: Promise<T>, what: string, ms = TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}

function newClient(): DebugClient {
  // DebugClient passes a single argument to the runtime; a shell line lets it run `main.js dap`.
  const dc = new DebugClient(`'${process.execPath}'`, `'${mainJs}' dap`, 'ctrdbg-replay', {
    shell: true,
    cwd: root,
  });
  dc.defaultTimeout = TIMEOUT_MS;
  return dc;
}

async function stoppedAfter(
  dc: DebugClient,
  request: () => Promise<unknown>,
): Promise<DebugProtocol.StoppedEvent> {
  const [event] = await Promise.all([dc.waitForEvent('stopped'), request()]);
  return event as DebugProtocol.StoppedEvent;
}

async function topFrame(dc: DebugClient, threadId: number) {
  const trace = await dc.stackTraceRequest({ threadId });
  const frame = trace.body.stackFrames[0];
  if (!frame) throw new Error('no frames');
  return { frame, trace };
}

async function variables(dc: DebugClient, ref: number) {
  return (await dc.variablesRequest({ variablesReference: ref })).body.variables;
}

beforeAll(() => {
  ensureBuilt();
}, 200_000);

describe('ctrdbg dap (stdio)', () => {
  let dc: DebugClient;
  beforeEach(async () => {
    dc = newClient();
    await dc.start();
  });
  afterEach(async () => {
    await withTimeout(dc.stop(), 'adapter stop').catch(() => undefined);
  });

  it('a recording that followed a shim: one thread group per process, goroutines of both never mixed', async () => {
    const entry = await stoppedAfter(dc, () =>
      Promise.all([dc.configurationSequence(), dc.launch({ session: shimSample, stopOnEntry: true })]),
    );
    const stops = [entry.body.threadId];
    for (let i = 1; i < 7; i++) {
      const next = await stoppedAfter(dc, () => dc.continueRequest({ threadId: stops.at(-1)! }));
      stops.push(next.body.threadId);
    }
    const threads = (await dc.threadsRequest()).body.threads;
    const names = threads.map((t) => t.name);
    expect(names.filter((n) => n.startsWith('shim 9882 · goroutine')).length).toBe(2);
    expect(names.filter((n) => n.startsWith('containerd 20848 · goroutine')).length).toBe(1);
    // Every stop is on a thread the adapter lists, and the shim's goroutines are not containerd's.
    for (const id of stops) expect(threads.map((t) => t.id)).toContain(id);
    expect(new Set(threads.map((t) => t.id)).size).toBe(threads.length);
    const shimThread = threads.find((t) => t.name.startsWith('shim'))!;
    const trace = await dc.stackTraceRequest({ threadId: shimThread.id });
    expect(trace.body.stackFrames[0]?.name).toMatch(/process\.(createIO|copyPipes)/);
  });

  it('launch → stopped → threads → stack → scopes → variables → stepBack → continue to terminated', async () => {
    const entry = await stoppedAfter(dc, () =>
      Promise.all([
        dc.configurationSequence(),
        dc.launch({ session: sample, substitutePath, stopOnEntry: true }),
      ]),
    );
    expect(entry.body.reason).toBe('entry');
    expect(entry.body.threadId).toBe(41);

    const threads = await dc.threadsRequest();
    expect(threads.body.threads.map((t) => t.id)).toEqual([41]);

    const { frame, trace } = await topFrame(dc, 41);
    expect(frame.name).toBe('namespaces.(*local).Create');
    expect(frame.source?.path).toBe(`${LOCAL}/services/namespaces/local.go`);
    expect(frame.line).toBe(119);
    expect(trace.body.totalFrames).toBe(8);
    // grpc's frames are outside the mapped tree: their recorded paths stay as they were.
    expect(trace.body.stackFrames[4]?.source?.path).toBe(
      '/usr/share/gocode/src/google.golang.org/grpc/server.go',
    );

    // The order every view reads a hit in; the receiver is expensive, so the editor leaves it collapsed.
    const scopes = (await dc.scopesRequest({ frameId: frame.id })).body.scopes;
    expect(scopes.map((s) => [s.name, s.expensive])).toEqual([
      ['Recorded expressions', false],
      ['Parameters', false],
      ['Receiver', true],
      ['Locals', false],
    ]);
    const args = await variables(dc, scopes[1]!.variablesReference);
    expect(args.map((v) => v.name)).toEqual(['req', '_', 'ctx']);
    const [receiver] = await variables(dc, scopes[2]!.variablesReference);
    expect([receiver?.name, receiver?.type]).toEqual(['l', '*namespaces.local']);
    const fieldsOfL = await variables(dc, receiver!.variablesReference);
    expect(fieldsOfL.map((v) => v.name)).toEqual(['db', 'publisher']);
    const publisher = await variables(dc, fieldsOfL[1]!.variablesReference);
    expect(publisher.map((v) => [v.name, v.value])).toEqual([
      ['events', '0xc0000ac5a0 len 0, cap 0'],
      ['queue', '0xc0000ac600 len 2, cap 64'],
      ['closed', 'nil'],
    ]);
    const req = args.find((v) => v.name === 'req')!;
    expect(req.type).toBe('*v1.CreateNamespaceRequest');
    expect(req.variablesReference).toBeGreaterThan(0);
    const [namespace] = await variables(dc, req.variablesReference);
    expect(namespace?.name).toBe('Namespace');
    const fields = await variables(dc, namespace!.variablesReference);
    expect(fields.find((v) => v.name === 'Name')?.value).toBe('"lab-demo"');
    const labels = fields.find((v) => v.name === 'Labels')!;
    expect(await variables(dc, labels.variablesReference)).toEqual([
      expect.objectContaining({ name: '"ctrdbg/owner"', value: '"lab"', variablesReference: 0 }),
    ]);
    const exprs = await variables(dc, scopes[0]!.variablesReference);
    expect(exprs.map((e) => [e.name, e.value])).toContainEqual(['req.Namespace.Name', '"lab-demo"']);

    // Outer frames have a location but no recorded values.
    const outer = trace.body.stackFrames[1]!;
    expect((await dc.scopesRequest({ frameId: outer.id })).body.scopes).toEqual([]);

    const second = await stoppedAfter(dc, () => dc.continueRequest({ threadId: 41 }));
    expect([second.body.reason, second.body.threadId]).toEqual(['breakpoint', 57]);
    expect((await dc.threadsRequest()).body.threads.map((t) => t.id)).toEqual([41, 57]);

    const third = await stoppedAfter(dc, () => dc.nextRequest({ threadId: 57 }));
    expect([third.body.reason, third.body.threadId]).toEqual(['step', 63]);
    const thirdExprs = await (async () => {
      const { frame: f } = await topFrame(dc, 63);
      const s = (await dc.scopesRequest({ frameId: f.id })).body.scopes;
      return variables(dc, s[0]!.variablesReference);
    })();
    expect(thirdExprs.find((e) => e.name === 'req.Container.ID')?.value).toBe('"c2"');

    const back = await stoppedAfter(dc, () => dc.stepBackRequest({ threadId: 63 }));
    expect([back.body.reason, back.body.threadId]).toEqual(['step', 57]);
    expect((await topFrame(dc, 57)).frame.source?.path).toBe(`${LOCAL}/services/containers/local.go`);

    // From hit 2, continue visits hits 3..12, then the recording ends.
    const seen: number[] = [];
    for (let i = 0; i < 10; i++) {
      const event = await stoppedAfter(dc, () => dc.continueRequest({ threadId: 57 }));
      seen.push(event.body.threadId ?? -1);
    }
    expect(seen).toEqual([63, 57, 57, 63, 63, 88, 41, 41, 41, 88]);
    await Promise.all([dc.waitForEvent('terminated'), dc.continueRequest({ threadId: 88 })]);
  });

  it('editor breakpoints decide which hits stop: a hit location or any frame of its stack', async () => {
    const service = `${LOCAL}/services/containers/service.go`; // frame 1 of create-container hits
    const tasks = `${LOCAL}/services/tasks/local.go`; // location of create-task hits
    const first = await stoppedAfter(dc, () =>
      Promise.all([
        dc
          .waitForEvent('initialized')
          .then(() => dc.setBreakpointsRequest({ source: { path: service }, breakpoints: [{ line: 100 }] }))
          .then((r) => {
            expect(r.body.breakpoints[0]).toMatchObject({ verified: true, line: 100 });
            return dc.setBreakpointsRequest({ source: { path: tasks }, breakpoints: [{ line: 157 }] });
          })
          .then(() => dc.configurationDoneRequest()),
        dc.launch({ session: sample, substitutePath }),
      ]),
    );
    expect(first.body.reason).toBe('breakpoint');
    const seqOf = async (threadId: number) => {
      const out = await dc
        .evaluateRequest({ expression: 'req.Container.ID', context: 'watch' })
        .catch(() => undefined);
      const { frame } = await topFrame(dc, threadId);
      return `${frame.name}${out ? ` ${out.body.result}` : ''}`;
    };
    const stops = [await seqOf(first.body.threadId!)];
    let threadId = first.body.threadId!;
    for (;;) {
      const [event] = await Promise.race([
        Promise.all([dc.waitForEvent('stopped'), dc.continueRequest({ threadId })]),
        dc.waitForEvent('terminated').then((e) => [e] as const),
      ]);
      if (event.event === 'terminated') break;
      threadId = (event as DebugProtocol.StoppedEvent).body.threadId!;
      stops.push(await seqOf(threadId));
      if (stops.length > 12) throw new Error('too many stops');
    }
    expect(stops).toEqual([
      'containers.(*local).Create "c1"',
      'containers.(*local).Create "c2"',
      'tasks.(*local).Create',
      'tasks.(*local).Create',
      'containers.(*local).Create "c3"',
      'tasks.(*local).Create',
      'tasks.(*local).Create',
    ]);
  });

  it('reverseContinue goes back to the previous matching hit', async () => {
    const tasks = `${LOCAL}/services/tasks/local.go`;
    await stoppedAfter(dc, () =>
      Promise.all([
        dc
          .waitForEvent('initialized')
          .then(() => dc.setBreakpointsRequest({ source: { path: tasks }, breakpoints: [{ line: 157 }] }))
          .then(() => dc.configurationDoneRequest()),
        dc.launch({ session: sample, substitutePath }),
      ]),
    );
    const next = await stoppedAfter(dc, () => dc.continueRequest({ threadId: 57 }));
    expect(next.body.threadId).toBe(63); // hit 6
    const back = await stoppedAfter(dc, () => dc.reverseContinueRequest({ threadId: 63 }));
    expect([back.body.reason, back.body.threadId]).toEqual(['breakpoint', 57]); // hit 4
  });

  it('refuses a launch without a readable session, with the reason', async () => {
    await dc.initializeRequest();
    await expect(
      dc.launchRequest({ session: join(root, 'no-such.jsonl') } as DebugProtocol.LaunchRequestArguments),
    ).rejects.toThrow(/session file not found/);
  });
});

describe('ctrdbg dap --server', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    child?.kill('SIGTERM');
    child = undefined;
  });

  it('listens on 127.0.0.1 and serves a client', async () => {
    child = spawn(process.execPath, [mainJs, 'dap', '--server', '0'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const proc = child;
    const port = await withTimeout(
      new Promise<number>((resolvePort, reject) => {
        let err = '';
        proc.stderr?.on('data', (d: Buffer) => {
          err += d.toString();
          const m = /listening on 127\.0\.0\.1:(\d+)/.exec(err);
          if (m) resolvePort(Number(m[1]));
        });
        proc.on('exit', (code) => reject(new Error(`dap --server exited ${code}: ${err}`)));
      }),
      'the readiness line',
    );
    const dc = new DebugClient('node', 'unused', 'ctrdbg-replay');
    await dc.start(port);
    try {
      // Socket mode disables DebugClient's own timeouts, so every wait here has one.
      const stopped = await withTimeout(
        stoppedAfter(dc, () =>
          Promise.all([dc.configurationSequence(), dc.launch({ session: sample, stopOnEntry: true })]),
        ),
        'stopped over TCP',
      );
      expect(stopped.body.threadId).toBe(41);
      const { frame } = await withTimeout(topFrame(dc, 41), 'stackTrace over TCP');
      expect(frame.source?.path).toBe(`${REMOTE}/services/namespaces/local.go`);
    } finally {
      await withTimeout(dc.stop(), 'disconnect').catch(() => undefined);
    }
  });
});

describe('ctrdbg replay (the real CLI)', () => {
  it('exits 0 with JSON for --goto and 3 for an out-of-range hit', () => {
    const ok = spawnSync(process.execPath, [mainJs, 'replay', sample, '--goto', '12', '--json'], {
      encoding: 'utf8',
      timeout: TIMEOUT_MS,
    });
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout).hit.seq).toBe(12);
    const bad = spawnSync(process.execPath, [mainJs, 'replay', sample, '--goto', '13'], {
      encoding: 'utf8',
      timeout: TIMEOUT_MS,
      env: { ...process.env, NO_COLOR: '1' },
    });
    expect(bad.status).toBe(3);
    expect(bad.stderr).toContain('hit 13 is out of range');
  });
});
