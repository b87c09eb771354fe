/** Entries of several sets at one location share one Delve breakpoint; each hit counts for the entries it serves. */
import { describe, expect, it } from 'vitest';
import { armSets, sharedBreakpointRequest } from '../../src/attach/arm.js';
import { parseBreakpointSet } from '../../src/breakpoints/sets.js';
import type { BreakpointSpec, PointSpec } from '../../src/delve/agentProtocol.js';
import type { NodeDebugger } from '../../src/delve/nodeDebugger.js';
import type { Variable } from '../../src/delve/types.js';
import type { StoppedThread } from '../../src/record/delveValues.js';
import { type ArmedLocation, servedEntries } from '../../src/record/recorder.js';
import { silentLogger } from '../../src/util/output.js';

const CREATE = 'github.com/containerd/containerd/services/namespaces.(*local).Create';
const set = (name: string, entries: string) =>
  parseBreakpointSet(`schema: ctrdbg.breakpoint-set/v1\nname: ${name}\nentries:\n${entries}`, `${name}.yaml`);

const labLike = set(
  'lab-like',
  `  - name: ns-create
    candidates: [${CREATE}]
    record: [req.Namespace.Name]
    stack: 4
    goroutine: false
`,
);
const mine = set(
  'mine',
  `  - name: labels
    candidates: [${CREATE}]
    record: [len(req.Namespace.Labels)]
    condition: 'req.Namespace.Name == "x"'
    loadArgs: {depth: 1}
    stack: 12
    redact: [req.Namespace.Labels]
`,
);

/** An agent stand-in that knows one function and records what it is asked to create (one breakpoint per address). */
function fakeAgent() {
  const created: Record<string, unknown>[] = [];
  const byAddr = new Set<string>();
  const dbg = {
    async command(c: { cmd: string; points?: PointSpec[]; breakpoints?: BreakpointSpec[] }) {
      if (c.cmd === 'resolve')
        return {
          ms: 1,
          points: (c.points ?? []).map((p) =>
            p.function === CREATE
              ? {
                  key: p.key,
                  found: true,
                  function: CREATE,
                  file: '/src/services/namespaces/local.go',
                  line: 118,
                  optimized: false,
                  addrs: [1],
                }
              : { key: p.key, found: false, missing: true },
          ),
        };
      if (c.cmd === 'create')
        return {
          ms: 1,
          breakpoints: (c.breakpoints ?? []).map((b) => {
            const addr = (b.addrs ?? []).join(',');
            if (byAddr.has(addr)) return { key: b.key, ids: [], error: `Breakpoint exists at ${addr}` };
            byAddr.add(addr);
            created.push(b.request);
            return { key: b.key, ids: [created.length] };
          }),
        };
      throw new Error(`unexpected ${c.cmd}`);
    },
  };
  return { dbg: dbg as unknown as NodeDebugger, created };
}

describe('arming sets that share a location', () => {
  it('creates one breakpoint with the union of what both entries capture', async () => {
    const { dbg, created } = fakeAgent();
    const armed = await armSets(dbg, [labLike, mine], silentLogger);
    expect(created).toHaveLength(1);
    const bp = created[0] as Record<string, unknown>;
    expect(bp.variables).toEqual([
      'req.Namespace.Name',
      'len(req.Namespace.Labels)',
      'req.Namespace.Name == "x"',
    ]);
    expect(bp.stacktrace).toBe(12);
    expect(bp.goroutine).toBe(false); // neither asks for it (lean by default)
    expect(bp.LoadArgs).not.toBeNull();
    // One entry always stops, so the shared breakpoint has no condition.
    expect(bp.Cond).toBe('');
    expect(armed.breakpoints.map((b) => [b.name, b.id])).toEqual([
      ['lab-like/ns-create', 1],
      ['mine/labels', 1],
    ]);
    expect(armed.locations.get(1)?.redact).toEqual(['req.Namespace.Labels']);
  });

  it('joins conditions with || when every entry has one', () => {
    const a = { ...labLike.entries[0]!, condition: 'a == 1' };
    const b = { ...mine.entries[0]!, condition: 'b == 2' };
    const location = { file: 'f.go', line: 1 };
    const req = sharedBreakpointRequest(
      [
        { entry: a, record: ['x'] },
        { entry: b, record: ['x', 'y'] },
      ],
      location,
      'n',
    );
    expect(req.Cond).toBe('(a == 1) || (b == 2)');
    expect(req.variables).toEqual(['x', 'y', 'a == 1', 'b == 2']);
    const single = sharedBreakpointRequest([{ entry: a, record: ['x'] }], location, 'n');
    expect(single.Cond).toBe('a == 1');
    expect(single.variables).toEqual(['x']);
  });

  it('counts a hit for every entry whose own condition held', async () => {
    const { dbg } = fakeAgent();
    const armed = await armSets(dbg, [labLike, mine], silentLogger);
    const location = armed.locations.get(1) as ArmedLocation;
    const stop = (conditionValue: string): StoppedThread =>
      ({
        thread: { id: 1, goroutineID: 5, file: 'f.go', line: 1 },
        breakpoint: { id: 1 },
        info: { variables: [{ name: 'req.Namespace.Name == "x"', value: conditionValue } as Variable] },
      }) as unknown as StoppedThread;
    expect(servedEntries(stop('true'), location).map((e) => e.name)).toEqual([
      'lab-like/ns-create',
      'mine/labels',
    ]);
    expect(servedEntries(stop('false'), location).map((e) => e.name)).toEqual(['lab-like/ns-create']);
  });
});
