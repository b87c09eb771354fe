import { describe, expect, it } from 'vitest';
import type { Breakpoint, DebuggerState, Thread, Variable } from '../../src/delve/types.js';
import {
  convertArguments,
  convertFrame,
  convertVariable,
  isReturnArgument,
  kindName,
  type StoppedThread,
  selectPath,
  stoppedThreads,
} from '../../src/record/delveValues.js';
import { type ArmedBreakpoint, toHit } from '../../src/record/recorder.js';

/** A Delve variable with the defaults Delve sends; shapes below were captured from Delve 1.20.2. */
function v(partial: Partial<Variable> & { kind: number }): Variable {
  return {
    name: '',
    addr: 824634824224,
    onlyAddr: false,
    type: '',
    realType: '',
    flags: 0,
    value: '',
    len: 0,
    cap: 0,
    children: [],
    base: 0,
    unreadable: '',
    ...partial,
  };
}

const str = (name: string, value: string, len = Buffer.byteLength(value)) =>
  v({ name, type: 'string', kind: 24, value, len, base: 1 });

describe('convertVariable', () => {
  it('names kinds like Go', () => {
    expect(kindName(22)).toBe('ptr');
    expect(kindName(25)).toBe('struct');
    expect(kindName(99)).toBe('kind(99)');
  });

  it('strings: value, len, truncated when Delve cut them', () => {
    expect(convertVariable(str('Name', 'nsY1795621477603'))).toEqual({
      name: 'Name',
      type: 'string',
      kind: 'string',
      value: 'nsY1795621477603',
      len: 16,
    });
    expect(convertVariable(str('Name', 'nsY17956', 16))).toMatchObject({
      value: 'nsY17956',
      len: 16,
      truncated: true,
    });
    // Multi-byte: len is in bytes.
    expect(convertVariable(str('s', 'héllo')).truncated).toBeUndefined();
  });

  it('strings that are not UTF-8 come as StringValueBytes and keep their bytes', () => {
    const raw = Buffer.from([0x61, 0xff, 0x62]);
    const out = convertVariable(
      v({
        name: 's',
        type: 'string',
        kind: 24,
        value: 'a\uFFFDb',
        len: 3,
        StringValueBytes: raw.toString('base64'),
      }),
    );
    expect(out.value).toBe('a\\xffb');
    expect(out.truncated).toBeUndefined();
  });

  it('pointers: hex address, pointee as the child, nil', () => {
    const pointee = v({
      type: 'ns.local',
      kind: 25,
      len: 1,
      children: [v({ name: 'x', type: 'int', kind: 2, value: '7' })],
    });
    const out = convertVariable(
      v({ name: 'l', type: '*ns.local', kind: 22, value: '824634352624', len: 1, children: [pointee] }),
    );
    expect(out.value).toBe('0xc00009a3f0');
    expect(out.children).toHaveLength(1);
    expect(out.children![0]).toMatchObject({
      name: '*l',
      kind: 'struct',
      children: [{ name: 'x', value: '7', kind: 'int' }],
    });
    const nil = convertVariable(
      v({
        name: 'p',
        type: '*int',
        kind: 22,
        value: '0',
        len: 1,
        children: [v({ kind: 2, addr: 0, type: 'int' })],
      }),
    );
    expect(nil).toEqual({ name: 'p', type: '*int', kind: 'ptr', value: 'nil' });
  });

  it('pointers Delve did not follow are truncated', () => {
    const out = convertVariable(
      v({
        name: 'p',
        type: '*T',
        kind: 22,
        value: '4096',
        len: 1,
        children: [v({ kind: 25, addr: 4096, onlyAddr: true })],
      }),
    );
    expect(out).toMatchObject({ value: '0x1000', truncated: true });
    expect(out.children).toBeUndefined();
  });

  it('interfaces: nil (Delve sends a void child) and the dynamic type', () => {
    const nilErr = convertVariable(
      v({ name: '~r1', type: 'error', kind: 20, children: [v({ type: 'void', kind: 0, addr: 0 })] }),
    );
    expect(nilErr).toEqual({ name: '~r1', type: 'error', kind: 'interface', value: 'nil' });
    const ctx = convertVariable(
      v({
        name: 'ctx',
        type: 'context.Context',
        kind: 20,
        children: [
          v({
            name: 'data',
            type: '*context.valueCtx',
            kind: 22,
            value: '4096',
            len: 1,
            children: [v({ kind: 25, addr: 4096 })],
          }),
        ],
      }),
    );
    expect(ctx.value).toBe('*context.valueCtx');
    expect(ctx.children![0]).toMatchObject({ name: 'data', kind: 'ptr', value: '0x1000' });
  });

  it('structs at the recursion limit have no children: truncated', () => {
    const out = convertVariable(v({ name: 'db', type: 'metadata.DB', kind: 25, len: 9, children: [] }));
    expect(out).toMatchObject({ kind: 'struct', children: [], truncated: true });
  });

  it('slices: len, cap, index names, truncated past MaxArrayValues, nil', () => {
    const out = convertVariable(
      v({
        name: 'xs',
        type: '[]int',
        kind: 23,
        len: 5,
        cap: 8,
        base: 99,
        children: [v({ kind: 2, value: '1' }), v({ kind: 2, value: '2' })],
      }),
    );
    expect(out).toMatchObject({ len: 5, cap: 8, truncated: true });
    expect(out.children!.map((c) => c.name)).toEqual(['[0]', '[1]']);
    expect(convertVariable(v({ name: 'n', type: '[]uint8', kind: 23, len: 0, base: 0 })).value).toBe('nil');
  });

  it('maps: key/value pairs become named children', () => {
    const out = convertVariable(
      v({
        name: 'Labels',
        type: 'map[string]string',
        kind: 21,
        len: 3,
        base: 5,
        children: [str('', 'c'), str('', 'd'), str('', 'a'), str('', 'b')],
      }),
    );
    expect(out.children).toEqual([
      { name: '["c"]', type: 'string', kind: 'string', value: 'd', len: 1 },
      { name: '["a"]', type: 'string', kind: 'string', value: 'b', len: 1 },
    ]);
    expect(out.truncated).toBe(true);
  });

  it('unreadable values become errors', () => {
    expect(
      convertVariable(v({ name: 'x', type: 'uint8', kind: 8, unreadable: 'input/output error' })),
    ).toEqual({
      name: 'x',
      type: 'uint8',
      kind: 'uint8',
      error: 'input/output error',
    });
  });

  it('funcs carry their name', () => {
    expect(
      convertVariable(v({ name: 'f', type: 'func()', kind: 19, value: 'context.valueCtx.Done', base: 10 }))
        .value,
    ).toBe('context.valueCtx.Done');
    expect(convertVariable(v({ name: 'f', type: 'func()', kind: 19, base: 0 })).value).toBe('nil');
  });
});

describe('channels and results (shapes captured from Delve 1.20.2)', () => {
  /** A chan as Delve sends it: len is runtime.hchan's field count, the fields are the children. */
  const hchan = (qcount: number, dataqsiz: number, closed: number) =>
    [
      ['qcount', qcount],
      ['dataqsiz', dataqsiz],
      ['buf', 824634425440],
      ['elemsize', 8],
      ['closed', closed],
      ['elemtype', 4860832],
      ['sendx', 2],
      ['recvx', 0],
    ].map(([name, value]) => v({ name: String(name), type: 'uint', kind: 7, value: String(value) }));

  it('channels: length and capacity from qcount and dataqsiz, not the hchan field count', () => {
    const out = convertVariable(
      v({ name: 'c', type: 'chan int', kind: 18, len: 11, base: 824634425344, children: hchan(2, 5, 0) }),
    );
    expect(out).toEqual({ name: 'c', type: 'chan int', kind: 'chan', value: '0xc0000ac000', len: 2, cap: 5 });
  });

  it('channels: nil (base 0, no children) and closed', () => {
    expect(
      convertVariable(v({ name: 'nc', type: 'chan string', kind: 18, len: 0, base: 0, children: [] })),
    ).toEqual({ name: 'nc', type: 'chan string', kind: 'chan', value: 'nil' });
    const closed = convertVariable(
      v({
        name: 'd',
        type: 'chan struct {}',
        kind: 18,
        len: 11,
        base: 824634253408,
        children: hchan(0, 0, 1),
      }),
    );
    expect(closed).toMatchObject({ value: '0xc000082060 closed', len: 0, cap: 0 });
  });

  it('results are not parameters: Delve flags them ReturnArgument (16) among the arguments', () => {
    const args = [
      v({ name: 't', type: '*main.T', kind: 22, flags: 40, value: '824634326648', children: [] }),
      v({ name: 'a', type: 'int', kind: 2, flags: 40, value: '4' }),
      v({ name: '~r0', type: 'int', kind: 2, flags: 16, value: '0' }),
      v({ name: 'err', type: 'error', kind: 20, flags: 16, value: '' }),
    ];
    expect(args.filter(isReturnArgument).map((a) => a.name)).toEqual(['~r0', 'err']);
    expect(convertArguments(args).map((a) => a.name)).toEqual(['t', 'a']);
    expect(convertArguments(null)).toEqual([]);
  });
});

describe('stoppedThreads and frames', () => {
  it('returns every thread at a breakpoint, not only the current one', () => {
    const bp = (id: number) => ({
      id,
      name: `b${id}`,
      addr: 0,
      addrs: [],
      file: 'f.go',
      line: 1,
      Cond: '',
      continue: false,
      goroutine: true,
      stacktrace: 0,
    });
    const state: DebuggerState = {
      Pid: 1,
      Running: false,
      NextInProgress: false,
      exited: false,
      exitStatus: 0,
      currentThread: { id: 2, pc: 1, file: '', line: 0, goroutineID: 9, breakPoint: bp(1) },
      Threads: [
        { id: 1, pc: 1, file: '', line: 0, goroutineID: 0 },
        {
          id: 2,
          pc: 1,
          file: '',
          line: 0,
          goroutineID: 9,
          breakPoint: bp(1),
          breakPointInfo: { variables: [] },
        },
        { id: 3, pc: 1, file: '', line: 0, goroutineID: 10, breakPoint: bp(1), breakPointInfo: {} },
      ],
    };
    expect(stoppedThreads(state).map((t) => t.thread.id)).toEqual([2, 3]);
  });

  it('frames keep function, file, line', () => {
    expect(
      convertFrame({
        pc: 5,
        file: '/x.go',
        line: 3,
        function: { name: 'a.B', value: 1, type: 0, goType: 0, optimized: false },
        Locals: null,
        Arguments: null,
        FrameOffset: 0,
        FramePointerOffset: 0,
        Err: '',
      }),
    ).toEqual({ function: 'a.B', file: '/x.go', line: 3, pc: 5 });
  });
});

describe('toHit', () => {
  it('records parameters without the results Delve lists among them', () => {
    const thread = { id: 7, pc: 1, file: 'local.go', line: 118, goroutineID: 44 } as Thread;
    const stop: StoppedThread = {
      thread,
      breakpoint: { id: 1 } as Breakpoint,
      goroutine: undefined,
      info: {
        arguments: [
          v({ name: 'req', type: 'int', kind: 2, flags: 40, value: '1' }),
          v({ name: '~r0', type: '*v1.CreateNamespaceResponse', kind: 22, flags: 16, value: '824634716624' }),
          v({ name: '~r1', type: 'error', kind: 20, flags: 16 }),
        ],
        locals: [],
      },
    };
    const bp: ArmedBreakpoint = {
      id: 1,
      name: 'lab-create/namespaces-create',
      set: 'lab-create',
      entry: 'namespaces-create',
      function: 'ns.(*local).Create',
      file: 'local.go',
      line: 118,
      optimized: false,
      expressions: [],
      redact: [],
      params: [],
      loadArgs: true,
      loadLocals: true,
      stack: 0,
      onlyFailures: false,
    };
    const { record } = toHit(stop, bp, 1, 5, '2025-01-01T00:00:00.000Z', true);
    expect(record.args.map((a) => a.name)).toEqual(['req']);
    expect(record.results).toBeUndefined();
    // At a return point the same arguments give the results, and only there.
    const atReturn = toHit(stop, { ...bp, at: 'return' }, 1, 5, '2025-01-01T00:00:00.000Z', true).record;
    expect(atReturn.args.map((a) => a.name)).toEqual(['req']);
    expect(atReturn.results?.map((a) => a.name)).toEqual(['~r0', '~r1']);
  });
});

describe('expressions over results (read by ctrdbg from the loaded results)', () => {
  // ~r0 *specs.Spec as Delve loads it at a return: the pointer, the struct, Process through its pointer.
  const spec = v({
    name: '~r0',
    type: '*specs-go.Spec',
    kind: 22,
    flags: 16,
    value: '824643233760',
    children: [
      v({
        type: 'specs-go.Spec',
        kind: 25,
        len: 3,
        children: [
          str('Version', '1.2.0'),
          v({
            name: 'Process',
            type: '*specs-go.Process',
            kind: 22,
            value: '824638862592',
            children: [
              v({
                type: 'specs-go.Process',
                kind: 25,
                len: 1,
                children: [
                  v({
                    name: 'Args',
                    type: '[]string',
                    kind: 23,
                    len: 2,
                    cap: 2,
                    base: 9,
                    children: [str('', '/hello'), str('', 'pod shop/web says hi')],
                  }),
                ],
              }),
            ],
          }),
          v({
            name: 'Linux',
            type: '*specs-go.Linux',
            kind: 22,
            value: '0',
            children: [v({ kind: 25, addr: 0 })],
          }),
        ],
      }),
    ],
  });

  it('selects fields and elements through pointers, and says why when a path is not there', () => {
    expect(selectPath(spec, '.Process.Args[1]')).toMatchObject({ value: 'pod shop/web says hi' });
    expect(selectPath(spec, '')).toBe(spec);
    expect(selectPath(spec, '.Linux.Namespaces')).toBe('~r0.Linux is nil');
    expect(selectPath(spec, '.Nope')).toMatch(/no such field in specs-go\.Spec/);
    const shallow = v({ ...spec, children: [v({ type: 'specs-go.Spec', kind: 25, len: 3, children: [] })] });
    expect(selectPath(shallow, '.Process')).toMatch(/was not loaded that deep \(raise loadResults/);
  });

  it('toHit reads ~r0 paths and named results from the results at a return, never at an entry', () => {
    const thread = { id: 7, pc: 1, file: 'container_create_linux.go', line: 344, goroutineID: 44 } as Thread;
    const stop: StoppedThread = {
      thread,
      breakpoint: { id: 1 } as Breakpoint,
      goroutine: undefined,
      info: {
        arguments: [str('id', 'c1'), spec, v({ name: 'retErr', type: 'error', kind: 20, flags: 16 })],
        // Delve's own evaluation of `retErr` (the breakpoint asked for it); the results win at a return.
        variables: [str('id', 'c1'), v({ name: 'retErr', type: 'error', kind: 20, unreadable: 'stale' })],
        locals: [],
      },
    };
    const bp: ArmedBreakpoint = {
      id: 1,
      name: 'r/spec',
      set: 'r',
      entry: 'spec',
      function: 'server.(*criService).containerSpec',
      file: 'container_create_linux.go',
      line: 344,
      optimized: false,
      expressions: ['~r0.Process.Args', 'id', 'retErr', '~r0.Mounts'],
      at: 'return',
      redact: [],
      params: [],
      loadArgs: false,
      loadLocals: false,
      stack: 0,
      onlyFailures: false,
    };
    const { record } = toHit(stop, bp, 1, 5, '2025-01-01T00:00:00.000Z', true);
    const byExpr = Object.fromEntries(record.expressions.map((e) => [e.expr, e]));
    expect(byExpr['~r0.Process.Args']?.value?.children?.map((c) => c.value)).toEqual([
      '/hello',
      'pod shop/web says hi',
    ]);
    expect(byExpr.id?.value?.value).toBe('c1');
    expect(byExpr.retErr?.value).toMatchObject({ name: 'retErr', value: 'nil' });
    expect(byExpr['~r0.Mounts']?.error).toMatch(/no such field/);
    expect(record.results?.map((r) => r.name)).toEqual(['~r0', 'retErr']);
    expect(record.args).toEqual([]);
    // The same stop read as an entry: no results, and ~r0 is not read from anything.
    const atEntry = toHit(stop, { ...bp, at: undefined }, 1, 5, '2025-01-01T00:00:00.000Z', true).record;
    expect(atEntry.results).toBeUndefined();
    expect(atEntry.expressions.find((e) => e.expr === '~r0.Process.Args')?.error).toBe(
      'not evaluated at this stop',
    );
  });
});
