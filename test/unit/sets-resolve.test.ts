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
});
