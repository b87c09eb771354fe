import { describe, expect, it } from 'vitest';
import { sharedBreakpointRequest } from '../../src/attach/arm.js';
import {
  breakpointName,
  checkSets,
  type FunctionLocator,
  goRegexpQuote,
  rankClosest,
  resolveSet,
  splitFunctionName,
} from '../../src/breakpoints/resolve.js';
import { parseBreakpointSet } from '../../src/breakpoints/sets.js';
import { pointText } from '../../src/commands/attach.js';
import { NO_CALLEE_ERROR, type PointSpec, type ResolvedPoint } from '../../src/delve/agentProtocol.js';
import type { Location } from '../../src/delve/types.js';
import { editDistance } from '../../src/util/editDistance.js';

const P1 = 'github.com/containerd/containerd';
const P2 = 'github.com/containerd/containerd/v2';

/** A fake binary: a function list and Delve-like regex matching (Go's RE2 ≈ JS for these patterns). */
function fakeBinary(functions: string[], optimized: string[] = []): FunctionLocator & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async listFunctions(filter: string) {
      calls.push(`list ${filter}`);
      const re = new RegExp(filter);
      return functions.filter((f) => re.test(f));
    },
    async findLocation(loc: string): Promise<Location[]> {
      calls.push(`find ${loc}`);
      const fileLine = /^(.+\.go):(\d+)$/.exec(loc);
      if (fileLine) return [{ pc: 2, file: fileLine[1]!, line: Number(fileLine[2]), pcs: [2] }];
      if (!functions.includes(loc)) throw new Error(`location "${loc}" not found`);
      const file = `/src/${splitFunctionName(loc).pkg}/file.go`;
      return [
        {
          pc: 1,
          file,
          line: 100,
          function: { name: loc, value: 1, type: 0, goType: 0, optimized: optimized.includes(loc) },
          pcs: [1],
        },
      ];
    },
  };
}

const criSet = parseBreakpointSet(`schema: ctrdbg.breakpoint-set/v1
name: cri-create
entries:
  - name: create-container
    candidates:
      - ${P1}/pkg/cri/server.(*criService).CreateContainer
      - ${P1}/pkg/cri/sbserver.(*criService).CreateContainer
      - ${P2}/internal/cri/server.(*criService).CreateContainer
    record: [r.PodSandboxId]
    lineOffset: 0
`);

describe('function names', () => {
  it('splits pointer and value receivers and plain functions', () => {
    expect(splitFunctionName(`${P1}/pkg/cri/server.(*criService).CreateContainer`)).toEqual({
      pkg: `${P1}/pkg/cri/server`,
      receiver: 'criService',
      pointer: true,
      name: 'CreateContainer',
    });
    expect(splitFunctionName(`${P1}/remotes/docker.dockerFetcher.Fetch`)).toMatchObject({
      receiver: 'dockerFetcher',
      pointer: false,
      name: 'Fetch',
    });
    expect(splitFunctionName(`${P1}/cio.NewFIFOSetInDir`)).toMatchObject({
      pkg: `${P1}/cio`,
      receiver: undefined,
      name: 'NewFIFOSetInDir',
    });
    expect(splitFunctionName('main.main')).toMatchObject({ pkg: 'main', name: 'main' });
  });

  it('edit distance', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('same', 'same')).toBe(0);
  });

  it('ranks the same method in the nearest package first', () => {
    const wanted = `${P1}/pkg/cri/server.(*criService).CreateContainer`;
    const ranked = rankClosest(wanted, [
      `${P1}/services/containers.(*local).Create`,
      `${P2}/internal/cri/server.(*criService).CreateContainer`,
      `${P2}/internal/cri/server.(*criService).createContainer`,
      `${P1}/pkg/cri/server.(*criService).StartContainer`,
      `${P2}/client.(*Client).NewContainer`,
    ]);
    expect(ranked[0]).toBe(`${P2}/internal/cri/server.(*criService).CreateContainer`);
    expect(ranked.indexOf(`${P1}/services/containers.(*local).Create`)).toBeGreaterThan(1);
  });

  it('quotes Go regexp metacharacters', () => {
    expect(goRegexpQuote('a.(*b).C')).toBe('a\\.\\(\\*b\\)\\.C');
    expect(new RegExp(`^${goRegexpQuote('a.(*b).C')}$`).test('a.(*b).C')).toBe(true);
  });
});

describe('resolveSet', () => {
  it('arms every candidate present (1.7 has server and sbserver)', async () => {
    const bin = fakeBinary(
      [
        `${P1}/pkg/cri/server.(*criService).CreateContainer`,
        `${P1}/pkg/cri/sbserver.(*criService).CreateContainer`,
        `${P1}/pkg/cri/server.(*criService).StartContainer`,
      ],
      [`${P1}/pkg/cri/sbserver.(*criService).CreateContainer`],
    );
    const result = await resolveSet(bin, criSet);
    expect(result.complete).toBe(true);
    const entry = result.entries[0]!;
    expect(entry.locations.map((l) => l.function)).toEqual([
      `${P1}/pkg/cri/server.(*criService).CreateContainer`,
      `${P1}/pkg/cri/sbserver.(*criService).CreateContainer`,
    ]);
    expect(entry.locations.map((l) => l.optimized)).toEqual([false, true]);
    expect(entry.missing).toEqual([`${P2}/internal/cri/server.(*criService).CreateContainer`]);
    expect(entry.suggestions).toEqual([]);
    expect(result.notes).toEqual([]);
  });

  it('says "no CRI in this binary" and points at the containerd services instead of same-named helpers', async () => {
    const bin = fakeBinary([
      `${P1}/services/leases.(*local).Create`,
      `${P1}/services/containers.(*local).Create`,
      `${P1}/services/containers.(*local).Create.func1`,
      `${P1}/cmd/ctr/commands/containers.CreateContainer`,
    ]);
    const result = await resolveSet(bin, criSet);
    expect(result.complete).toBe(false);
    expect(result.entries[0]!.locations).toEqual([]);
    // The service whose noun is in the wanted name first; closures and the ctr client never.
    expect(result.entries[0]!.suggestions).toEqual([
      `${P1}/services/containers.(*local).Create`,
      `${P1}/services/leases.(*local).Create`,
    ]);
    expect(result.notes.join('\n')).toMatch(/no CRI in this binary/);
  });

  it('suggests the same method elsewhere when CRI exists but the candidates do not', async () => {
    const bin = fakeBinary([
      `${P2}/internal/cri/server/v3.(*criService).CreateContainer`,
      `${P2}/internal/cri/server/v3.(*criService).StartContainer`,
      `${P1}/cmd/ctr/commands/containers.CreateContainer`,
    ]);
    const result = await resolveSet(bin, criSet);
    expect(result.notes).toEqual([]);
    expect(result.entries[0]!.suggestions[0]).toBe(
      `${P2}/internal/cri/server/v3.(*criService).CreateContainer`,
    );
    expect(result.entries[0]!.suggestions).toContain(`${P1}/cmd/ctr/commands/containers.CreateContainer`);
  });

  it('never walks every function when the candidates are found, and only then for a miss', async () => {
    const bin = fakeBinary([`${P1}/pkg/cri/server.(*criService).CreateContainer`]);
    await resolveSet(bin, criSet);
    expect(bin.calls.filter((c) => c.startsWith('list '))).toHaveLength(0);
    const none = fakeBinary([`${P1}/services/tasks.(*local).Create`]);
    const result = await resolveSet(none, criSet);
    expect(result.complete).toBe(false);
    expect(none.calls.filter((c) => c.startsWith('list ')).length).toBeGreaterThan(0);
  });

  it('falls back to the package by edit distance when the name exists nowhere', async () => {
    const set = parseBreakpointSet(`schema: ctrdbg.breakpoint-set/v1
name: t
entries:
  - name: e
    candidates: ['${P1}/services/tasks.(*local).Craete']
`);
    const bin = fakeBinary([`${P1}/services/tasks.(*local).Create`, `${P1}/services/tasks.(*local).Delete`]);
    const result = await resolveSet(bin, set);
    expect(result.entries[0]!.suggestions[0]).toBe(`${P1}/services/tasks.(*local).Create`);
    expect(result.notes).toEqual([]);
  });

  it('applies lineOffset through file:line', async () => {
    const set = parseBreakpointSet(`schema: ctrdbg.breakpoint-set/v1
name: t
entries:
  - name: e
    candidates: ['${P1}/services/tasks.(*local).Create']
    lineOffset: 3
`);
    const bin = fakeBinary([`${P1}/services/tasks.(*local).Create`]);
    const result = await resolveSet(bin, set);
    expect(result.entries[0]!.locations[0]).toMatchObject({
      line: 103,
      file: `/src/${P1}/services/tasks/file.go`,
    });
  });

  it('checkSets totals locations and unresolved entries', async () => {
    const bin = fakeBinary([`${P1}/pkg/cri/server.(*criService).CreateContainer`]);
    const check = await checkSets(bin, [criSet]);
    expect(check).toMatchObject({ armed: 1, unresolvedEntries: 0, optimizedLocations: 0 });
  });
});

/**
 * A stand-in for the agent's resolver (node-agent/arm.go): the points it is asked for, answered from a table of
 * what the binary has — which functions exist, where they return, and which callees each one calls.
 */
function fakeAgentResolver(binary: {
  functions: string[];
  calls?: Record<string, { callee: string; callLine: number; lines: number[] }[]>;
}) {
  const asked: PointSpec[] = [];
  return {
    asked,
    async resolvePoints(points: PointSpec[]): Promise<ResolvedPoint[]> {
      asked.push(...points);
      return points.map((p) => {
        if (!binary.functions.includes(p.function)) return { key: p.key, found: false, missing: true };
        const file = `/src/${splitFunctionName(p.function).pkg}/file.go`;
        if (p.at === 'return')
          return { key: p.key, found: true, function: p.function, file, line: 57, addrs: [10, 20, 30] };
        if (p.at === 'after-call') {
          const call = (binary.calls?.[p.function] ?? []).find((c) => p.callees?.includes(c.callee));
          if (!call) return { key: p.key, found: false, function: p.function, error: NO_CALLEE_ERROR };
          return {
            key: p.key,
            found: true,
            function: p.function,
            file,
            line: Math.max(...call.lines),
            addrs: call.lines.map((l) => l * 16),
            callee: call.callee,
            callLine: call.callLine,
          };
        }
        return { key: p.key, found: true, function: p.function, file, line: 51, addrs: [1] };
      });
    },
  };
}

describe('points inside a function and at its returns', () => {
  const CC = `${P1}/pkg/cri/server.(*criService).CreateContainer`;
  const SB = `${P1}/pkg/cri/sbserver.(*criService).CreateContainer`;
  const walk = parseBreakpointSet(`schema: ctrdbg.breakpoint-set/v1
name: walk
entries:
  - name: image
    candidates: [${CC}, ${SB}]
    at: after-call
    after:
      - ${P1}/pkg/cri/server.(*criService).localResolve
      - ${P1}/pkg/cri/sbserver.(*criService).localResolve
    record: [image.ID]
  - name: container
    candidates: [${CC}]
    at: after-call
    after: [${P1}.(*Client).NewContainer]
  - name: error
    candidates: [${CC}]
    at: return
    onlyFailures: true
`);

  it('asks the agent for each kind of point with its callees, and keeps where each landed', async () => {
    const agent = fakeAgentResolver({
      functions: [CC, SB],
      calls: {
        [CC]: [
          { callee: `${P1}/pkg/cri/server.(*criService).localResolve`, callLine: 97, lines: [98] },
          { callee: `${P1}.(*Client).NewContainer`, callLine: 263, lines: [264, 266] },
        ],
        [SB]: [{ callee: `${P1}/pkg/cri/sbserver.(*criService).localResolve`, callLine: 107, lines: [108] }],
      },
    });
    const resolved = await resolveSet(agent, walk);
    expect(agent.asked.find((p) => p.function === SB && p.at === 'after-call')?.callees).toHaveLength(2);
    expect(resolved.complete).toBe(true);
    const [image, container, error] = resolved.entries;
    expect(image?.locations.map((l) => [l.line, l.callLine, l.callee?.split('.').pop()])).toEqual([
      [98, 97, 'localResolve'],
      [108, 107, 'localResolve'],
    ]);
    expect(container?.locations[0]).toMatchObject({ at: 'after-call', line: 266, callLine: 263, pcs: 2 });
    expect(error?.locations[0]).toMatchObject({ at: 'return', line: 57, pcs: 3, addrs: [10, 20, 30] });
    expect(pointText(error!.locations[0]!)).toBe('  at return (3 returns; the first shown)');
    expect(pointText({ ...container!.locations[0]!, lines: [264, 266] })).toBe(
      "  after containerd.(*Client).NewContainer (called at line 263); also line 264 (the other way of a branch on the call's line)",
    );
  });

  it('says "callee X is not called from F in this version" when the function is there and the call is not', async () => {
    const agent = fakeAgentResolver({
      functions: [CC, SB],
      calls: {
        [CC]: [{ callee: `${P1}/pkg/cri/server.(*criService).localResolve`, callLine: 97, lines: [98] }],
      },
    });
    const resolved = await resolveSet(agent, walk);
    expect(resolved.complete).toBe(false);
    const [image, container] = resolved.entries;
    // sbserver's CreateContainer exists but (in this fake binary) calls no localResolve.
    expect(image?.locations).toHaveLength(1);
    expect(image?.errors).toEqual([
      {
        candidate: SB,
        message: expect.stringMatching(
          /^callee server\.\(\*criService\)\.localResolve or sbserver\.\(\*criService\)\.localResolve is not called from sbserver\.\(\*criService\)\.CreateContainer in this version/,
        ),
        calleeNotCalled: { function: SB, callees: walk.entries[0]!.after },
      },
    ]);
    expect(container?.errors[0]?.message).toMatch(
      /^callee containerd\.\(\*Client\)\.NewContainer is not called from server\.\(\*criService\)\.CreateContainer in this version/,
    );
    // A missing function is a miss as before, not a missing call.
    const only = await resolveSet(fakeAgentResolver({ functions: [] }), walk, { suggest: false });
    expect(only.entries[0]).toMatchObject({ missing: [CC, SB], errors: [] });
  });
});

describe('breakpoint requests (lean by default)', () => {
  it('names are letters and digits only, unique per index', () => {
    expect(breakpointName('cri-create', 'create-container', 0)).toBe('ctrdbgCriCreateCreateContainer');
    expect(breakpointName('cri-create', 'create-container', 1)).toBe('ctrdbgCriCreateCreateContainer2');
    expect(breakpointName('a', 'b', 0)).toMatch(/^[A-Za-z0-9]+$/);
  });

  it('carries record, load configs, stack and condition', () => {
    const entry = criSet.entries[0]!;
    const req = sharedBreakpointRequest(
      [
        {
          entry: {
            ...entry,
            condition: 'r != nil',
            loadLocals: { depth: 1, maxString: 8, maxArray: 2, maxStructFields: -1, followPointers: false },
          },
          record: entry.record,
        },
      ],
      { file: '/f.go', line: 7 },
      'n',
    );
    expect(req).toEqual({
      name: 'n',
      file: '/f.go',
      line: 7,
      Cond: 'r != nil',
      continue: false,
      goroutine: false,
      stacktrace: 0,
      variables: ['r.PodSandboxId'],
      LoadArgs: null,
      LoadLocals: {
        FollowPointers: false,
        MaxVariableRecurse: 1,
        MaxStringLen: 8,
        MaxArrayValues: 2,
        MaxStructFields: -1,
      },
    });
  });

  it('at a return: results loaded (loadResults, else depth 1), traceReturn, and ~r expressions left to ctrdbg', () => {
    const ret = parseBreakpointSet(`schema: ctrdbg.breakpoint-set/v1
name: r
entries:
  - name: spec
    candidates: [a/b.(*T).containerSpec]
    at: return
    record: [~r0.Process.Args, id, retErr]
    params: [config]
  - name: deep
    candidates: [a/b.(*T).containerSpec]
    at: return
    loadResults: {depth: 2, maxString: 256, maxArray: 16}
`);
    const [spec, deep] = ret.entries;
    const lean = sharedBreakpointRequest(
      [{ entry: spec!, record: spec!.record }],
      { file: '/f.go', line: 1, at: 'return' },
      'n',
    );
    expect(lean).toMatchObject({
      traceReturn: true,
      variables: ['config', 'id', 'retErr'],
      LoadArgs: { MaxVariableRecurse: 1, MaxStringLen: 256, MaxArrayValues: 16 },
    });
    const both = sharedBreakpointRequest(
      [
        { entry: spec!, record: spec!.record },
        { entry: deep!, record: [] },
      ],
      { file: '/f.go', line: 1, at: 'return' },
      'n',
    );
    expect(both.LoadArgs).toMatchObject({ MaxVariableRecurse: 2, MaxStringLen: 256 });
    // Not at a return: no results are asked for (and none loaded when the entry loads no arguments).
    const entryPoint = sharedBreakpointRequest(
      [{ entry: { ...spec!, at: 'entry' }, record: ['id'] }],
      { file: '/f.go', line: 1 },
      'n',
    );
    expect(entryPoint.LoadArgs).toBeNull();
    expect(entryPoint).not.toHaveProperty('traceReturn');
  });
});
