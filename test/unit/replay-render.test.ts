/**
 * The one set of rendering rules (src/replay/render.ts) and the one filter language (src/replay/filter.ts),
 * as pure functions; and the guarantee that lets the HTML page run them: each is self-contained, so its
 * source text alone, evaluated without the module, behaves the same.
 */
import { describe, expect, it } from 'vitest';
import type { HitRecord, RecordedValue } from '../../src/recording/format.js';
import {
  compileFilter,
  FILTER_FUNCTIONS,
  type FilterSubject,
  splitFilterTerms,
} from '../../src/replay/filter.js';
import {
  displayChildren,
  hitSections,
  inlineValue,
  isReceiver,
  RENDER_FUNCTIONS,
  receiverType,
  valueText,
} from '../../src/replay/render.js';

const str = (name: string, value: string): RecordedValue => ({
  name,
  type: 'string',
  kind: 'string',
  value,
  len: value.length,
});

describe('receivers', () => {
  it('knows a method from a function, a closure and a method value', () => {
    expect(receiverType('github.com/containerd/containerd/services/tasks.(*local).Create')).toBe('local');
    expect(receiverType('github.com/containerd/containerd/runtime/v2.TaskManager.Create')).toBe(
      'TaskManager',
    );
    expect(receiverType('github.com/x/pkg.(*Set[go.shape.int]).Add')).toBe('Set');
    expect(receiverType('github.com/containerd/containerd/services/server.unaryNamespaceInterceptor')).toBe(
      '',
    );
    expect(receiverType('google.golang.org/grpc.(*Server).serveStreams.func1.2')).toBe('');
    expect(receiverType('github.com/x/pkg.New.func1')).toBe('');
    expect(receiverType('main.main')).toBe('');
  });

  it('takes the first argument as the receiver only when its type is the method type', () => {
    const fn = 'github.com/containerd/containerd/services/tasks.(*local).Create';
    expect(
      isReceiver(fn, {
        name: 'l',
        type: '*github.com/containerd/containerd/services/tasks.local',
        kind: 'ptr',
      }),
    ).toBe(true);
    // An unnamed receiver leaves the first parameter first: never take a parameter for the receiver.
    expect(isReceiver(fn, { name: 'ctx', type: 'context.Context', kind: 'interface' })).toBe(false);
  });
});

describe('a hit in reading order', () => {
  const hit = {
    location: {
      function: 'github.com/containerd/containerd/services/tasks.(*local).Create',
      file: '',
      line: 1,
    },
    args: [
      {
        name: 'l',
        type: '*github.com/containerd/containerd/services/tasks.local',
        kind: 'ptr',
        value: '0xc1',
      },
      { name: 'ctx', type: 'context.Context', kind: 'interface', value: '*context.valueCtx' },
      str('r', 'x'),
      { name: '~r0', type: '*v1.CreateTaskResponse', kind: 'ptr', value: '0xc2' },
      { name: '~r1', type: 'error', kind: 'interface', value: 'nil' },
    ],
    locals: [str('checkpointPath', '')],
    expressions: [
      { expr: 'r.ContainerID', value: str('r.ContainerID', 'c1') },
      { expr: 'bad', error: 'nope' },
    ],
  } as unknown as HitRecord;

  it('expressions, parameters (context last), receiver, locals; no results', () => {
    const sections = hitSections(hit, []);
    expect(sections.map((s) => [s.id, s.entries.map((e) => `${e.label}${e.collapsed ? '*' : ''}`)])).toEqual([
      ['expressions', ['r.ContainerID', 'bad']],
      ['results', []],
      ['parameters', ['r', 'ctx*']],
      ['receiver', ['l*']],
      ['locals', ['checkpointPath']],
    ]);
    expect(sections[0]?.entries[1]?.error).toBe('nope');
    const expanded = hitSections(hit, ['receiver', 'ctx']);
    expect(expanded.flatMap((s) => s.entries.filter((e) => e.collapsed))).toEqual([]);
    expect(hitSections(hit, ['all']).flatMap((s) => s.entries.filter((e) => e.collapsed))).toEqual([]);
  });

  it("a return point's results come right after the expressions, and only from the hit's results", () => {
    const atReturn = {
      ...hit,
      at: 'return',
      results: [
        { name: '~r0', type: '*v1.CreateTaskResponse', kind: 'ptr', value: '0xc2' },
        { name: 'retErr', type: 'error', kind: 'interface', value: 'nil' },
      ],
    } as unknown as HitRecord;
    const sections = hitSections(atReturn, []);
    expect(sections.map((s) => s.id)).toEqual(['expressions', 'results', 'parameters', 'receiver', 'locals']);
    expect(sections[1]?.entries.map((e) => e.label)).toEqual(['~r0', 'retErr']);
    expect(sections[2]?.entries.map((e) => e.label)).not.toContain('~r0');
  });
});

describe('value text', () => {
  it('nil is nil everywhere: maps, slices, pointers, old-recording channels', () => {
    const nilMap: RecordedValue = {
      name: 'Labels',
      type: 'map[string]string',
      kind: 'map',
      len: 0,
      value: 'nil',
    };
    const nilSlice: RecordedValue = {
      name: 'x',
      type: '[]int',
      kind: 'slice',
      len: 0,
      cap: 0,
      value: 'nil',
      children: [],
    };
    const oldNilChan: RecordedValue = {
      name: 'c',
      type: 'chan int',
      kind: 'chan',
      value: '0x0',
      len: 0,
      cap: 0,
    };
    for (const v of [nilMap, nilSlice, oldNilChan]) {
      expect(valueText(v)).toBe('nil');
      expect(inlineValue(v, 40)).toBe('nil');
    }
  });

  it('channels: real sizes; the old recorder’s hchan field count is not shown', () => {
    expect(valueText({ name: 'c', type: 'chan int', kind: 'chan', value: '0xc0', len: 2, cap: 5 })).toBe(
      '0xc0 len 2, cap 5',
    );
    expect(valueText({ name: 'c', type: 'chan int', kind: 'chan', value: '0xc0', len: 11, cap: 0 })).toBe(
      '0xc0',
    );
    expect(
      inlineValue({ name: 'c', type: 'chan int', kind: 'chan', value: '0xc0', len: 2, cap: 5 }, 40),
    ).toBe('chan(len 2, cap 5)');
  });

  it('inline values read like Go and stop at the width', () => {
    const labels: RecordedValue = {
      name: 'Labels',
      type: 'map[string]string',
      kind: 'map',
      len: 2,
      children: [
        str('["app"]', 'demo'),
        { name: '["token"]', type: 'string', kind: 'string', redacted: true },
      ],
    };
    expect(inlineValue(labels, 80)).toBe('map["app":"demo" "token":<redacted>]');
    expect(inlineValue({ name: 'm', type: 'map[string]string', kind: 'map', len: 0, children: [] }, 80)).toBe(
      'map[]',
    );
    const req: RecordedValue = {
      name: 'req',
      type: '*v1.Req',
      kind: 'ptr',
      value: '0xc0',
      children: [{ name: '*req', type: 'v1.Req', kind: 'struct', children: [str('ID', 'c1'), labels] }],
    };
    expect(displayChildren(req).map((c) => c.name)).toEqual(['ID', 'Labels']);
    expect(inlineValue(req, 200)).toBe('&{ID:"c1" Labels:map["app":"demo" "token":<redacted>]}');
    expect(inlineValue(req, 12)).toBe('&{ID:"c1" L…');
    expect(inlineValue(str('s', 'x'.repeat(100)), 10)).toHaveLength(10);
  });

  it('a pointer to a scalar reads as its value; the diff compares the value, not the address', async () => {
    const p = (address: string, n: string): RecordedValue => ({
      name: 'limit',
      type: '*uint32',
      kind: 'ptr',
      value: address,
      children: [{ name: '*limit', type: 'uint32', kind: 'uint32', value: n }],
    });
    expect(inlineValue(p('0xc1', '5'), 20)).toBe('&5');
    const { diffHits } = await import('../../src/replay/diff.js');
    const at = (v: RecordedValue) =>
      ({
        breakpoint: { name: 'b' },
        location: { function: 'main.f' },
        args: [v],
        locals: [],
        expressions: [],
      }) as unknown as HitRecord;
    expect(diffHits(at(p('0xc1', '5')), at(p('0xc2', '6'))).changes).toEqual([
      { op: 'changed', path: 'limit', section: 'parameters', root: 'limit', before: '5', after: '6' },
    ]);
  });

  it('protobuf bookkeeping fields are shown only when they hold something', () => {
    const msg: RecordedValue = {
      name: 'Namespace',
      type: 'v1.Namespace',
      kind: 'struct',
      children: [
        str('Name', 'n'),
        { name: 'XXX_NoUnkeyedLiteral', type: 'struct {}', kind: 'struct', children: [] },
        {
          name: 'XXX_unrecognized',
          type: '[]uint8',
          kind: 'slice',
          len: 0,
          cap: 0,
          value: 'nil',
          children: [],
        },
        { name: 'XXX_sizecache', type: 'int32', kind: 'int32', value: '0' },
        { name: 'XXX_other', type: 'int32', kind: 'int32', value: '7' },
      ],
    };
    expect(displayChildren(msg).map((c) => c.name)).toEqual(['Name', 'XXX_other']);
  });
});

/** A subject over plain values, as the page builds it. */
function subject(partial: Partial<FilterSubject> & { values?: Record<string, string> }): FilterSubject {
  const values = partial.values ?? {};
  return {
    seq: 1,
    goroutine: 41,
    breakpoint: { id: 1, name: 'lab-create/create-task', set: 'lab-create' },
    location: {
      function: 'github.com/containerd/containerd/services/tasks.(*local).Create',
      file: '/src/tasks/local.go',
    },
    expr: (e) => values[e],
    exprTexts: () => Object.values(values),
    ...partial,
  };
}

describe('the filter language', () => {
  const exprs = ['r.ContainerID', 'r.Stdout', 'r.Terminal', 'a == b'];
  const test = (text: string, s: FilterSubject) => {
    const parsed = compileFilter(exprs, [text]);
    if (!parsed.ok) throw new Error(parsed.message);
    return parsed.filter.test(s);
  };
  const hit = subject({
    values: {
      'r.ContainerID': '"uxtest2c"',
      'r.Stdout': '"/run/fifo/1/uxtest2c-stdout"',
      'r.Terminal': 'false',
      'a == b': 'true',
    },
  });

  it('a bare word searches names and recorded values, any case', () => {
    expect(test('UXTEST2', hit)).toBe(true);
    expect(test('create-task', hit)).toBe(true);
    expect(test('g41', hit)).toBe(true);
    expect(test('nowhere', hit)).toBe(false);
  });

  it('EXPR=VALUE, !=, ~, wildcards, quotes; expressions that hold = themselves', () => {
    expect(test('r.ContainerID=uxtest2c', hit)).toBe(true);
    expect(test('r.ContainerID="uxtest2c"', hit)).toBe(true);
    expect(test('r.ContainerID=uxtest', hit)).toBe(false);
    expect(test('r.ContainerID=uxtest*', hit)).toBe(true);
    expect(test('r.ContainerID!=c1', hit)).toBe(true);
    expect(test('r.Stdout~FIFO/1', hit)).toBe(true);
    expect(test('r.Terminal=false', hit)).toBe(true);
    expect(test('a == b=true', hit)).toBe(true);
    expect(test('r.Terminal=false, g=41, set=lab-create', hit)).toBe(true);
    expect(test('r.Terminal=false, g=42', hit)).toBe(false);
    // Not recorded at this hit: = and != are both false.
    const other = subject({ values: {} });
    expect(test('r.ContainerID!=c1', other)).toBe(false);
  });

  it('process=PID or a part of the binary; hits recorded without a process never match', () => {
    const shim = subject({ process: { pid: 5120, binary: '/usr/bin/containerd-shim-runc-v2' } });
    expect(test('process=5120', shim)).toBe(true);
    expect(test('process=shim-runc', shim)).toBe(true);
    expect(test('process=1', shim)).toBe(false);
    expect(test('process=5120', hit)).toBe(false);
    expect(test('shim-runc', shim)).toBe(true);
  });

  it('commas inside quotes do not split terms', () => {
    expect(splitFilterTerms('r.Stdout="a,b", g=1,,')).toEqual(['r.Stdout="a,b"', 'g=1']);
  });

  it('names a mistake and how to write it right', () => {
    const bad = compileFilter(exprs, ['colour=red']);
    expect(bad).toMatchObject({ ok: false, message: 'unknown filter key "colour" in --filter colour=red' });
    expect(!bad.ok && bad.hint).toContain('r.ContainerID');
  });

  it('a cheap pre-check lets the reader skip hits without reading their values', () => {
    let reads = 0;
    const lazy = subject({
      mayContain: (needle) => needle === 'uxtest2c',
      exprTexts: () => {
        reads++;
        return ['"uxtest2c"'];
      },
      expr: () => {
        reads++;
        return '"uxtest2c"';
      },
    });
    expect(test('something-else', lazy)).toBe(false);
    expect(test('r.ContainerID=other', lazy)).toBe(false);
    expect(reads).toBe(0);
    expect(test('uxtest2c', lazy)).toBe(true);
    expect(test('r.ContainerID=uxtest2c', lazy)).toBe(true);
  });
});

describe('the page runs the same functions', () => {
  it('each function is self-contained: its source alone behaves like the module', () => {
    const source = [...RENDER_FUNCTIONS, ...FILTER_FUNCTIONS].map((f) => f.toString()).join('\n');
    // The page evaluates exactly this text, in its own script scope.
    const page = new Function(
      `${source}\nreturn { inlineValue, valueText, hitSections, compileFilter };`,
    )() as {
      inlineValue: typeof inlineValue;
      compileFilter: typeof compileFilter;
    };
    const v: RecordedValue = {
      name: 'm',
      type: 'map[string]string',
      kind: 'map',
      len: 1,
      children: [str('["a"]', 'b')],
    };
    expect(page.inlineValue(v, 40)).toBe(inlineValue(v, 40));
    const parsed = page.compileFilter(['x'], ['x=b']);
    expect(parsed.ok && parsed.filter.test(subject({ values: { x: '"b"' } }))).toBe(true);
  });
});

describe('the live hit line and --list agree', () => {
  it('a nil map, a map, an error: the same text in both', async () => {
    process.env.NO_COLOR = '1';
    const { hitLine } = await import('../../src/commands/attach.js');
    const { listRow } = await import('../../src/replay/terminal.js');
    const hit = {
      seq: 1,
      t: 77.7,
      stoppedMs: 4.6,
      breakpoint: { id: 1, name: 'lab-create/namespaces-create', set: 'lab-create' },
      goroutine: { id: 44 },
      location: {
        function: 'github.com/containerd/containerd/services/namespaces.(*local).Create',
        file: '/x/local.go',
        line: 118,
      },
      expressions: [
        {
          expr: 'req.Namespace.Labels',
          value: {
            name: 'req.Namespace.Labels',
            type: 'map[string]string',
            kind: 'map',
            len: 0,
            value: 'nil',
          },
        },
        { expr: 'bad', error: 'could not find symbol value for bad' },
      ],
    } as unknown as HitRecord;
    const live = hitLine(hit);
    const row = listRow(hit, { seq: 1, time: 10, breakpoint: 30, goroutine: 9 });
    for (const text of ['req.Namespace.Labels=nil', 'bad=<error: could not find symbol value for bad>']) {
      expect(live).toContain(text);
      expect(row).toContain(text);
    }
  });
});
