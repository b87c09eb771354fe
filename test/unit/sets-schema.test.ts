import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  findBreakpointSet,
  isRedacted,
  loadBreakpointSets,
  parseBreakpointSet,
  type SetProblem,
} from '../../src/breakpoints/sets.js';
import { isCtrdbgError } from '../../src/errors.js';

const good = `schema: ctrdbg.breakpoint-set/v1
name: demo
description: a demo
entries:
  - name: ns-create
    candidates:
      - github.com/containerd/containerd/services/namespaces.(*local).Create
    record: [req.Namespace.Name]
    loadArgs: {depth: 2, maxString: 256}
    redact: [req.Secret]
`;

function problems(text: string, file = 'x.yaml'): SetProblem[] {
  try {
    parseBreakpointSet(text, file);
  } catch (error) {
    if (!isCtrdbgError(error)) throw error;
    expect(error.kind).toBe('input');
    return (error.details?.problems ?? []) as SetProblem[];
  }
  throw new Error('expected the set to be rejected');
}

describe('breakpoint set schema', () => {
  it('accepts a good set and fills defaults', () => {
    const set = parseBreakpointSet(good, 'demo.yaml');
    expect(set.name).toBe('demo');
    expect(set.process).toBe('containerd');
    const entry = set.entries[0]!;
    expect(entry.lineOffset).toBe(0);
    expect(entry.condition).toBe('');
    // Lean by default: no stack walk, no goroutine, no parameter dump — only what the entry names.
    expect(entry.stack).toBe(0);
    expect(entry.goroutine).toBe(false);
    expect(entry.loadArgs).toEqual({
      depth: 2,
      maxString: 256,
      maxArray: 16,
      maxStructFields: -1,
      followPointers: true,
    });
    expect(
      parseBreakpointSet(good.replace('    loadArgs: {depth: 2, maxString: 256}\n', ''), 'd.yaml').entries[0]!
        .loadArgs,
    ).toBe(false);
    expect(entry.at).toBe('entry');
    expect(entry.onlyFailures).toBe(false);
    expect(entry.loadLocals).toBe(false);
    expect(set.source).toBe('demo.yaml');
  });

  it('reports broken YAML with file:line:column', () => {
    const text = `schema: ctrdbg.breakpoint-set/v1\nname: demo\nentries:\n  - name: a\n    candidates: [x.y\n`;
    const found = problems(text, 'broken.yaml');
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]!.file).toBe('broken.yaml');
    expect(found[0]!.line).toBeGreaterThanOrEqual(5);
    try {
      parseBreakpointSet(text, 'broken.yaml');
    } catch (error) {
      expect((error as Error).message).toMatch(/broken\.yaml:\d+:\d+: /);
    }
  });

  it('reports duplicate keys at their position', () => {
    const found = problems(good.replace('name: demo\n', 'name: demo\nname: again\n'));
    expect(found[0]!.line).toBe(3);
  });

  it('names unknown fields with their line and a suggestion', () => {
    const text = good.replace('    record:', '    recrod: [x]\n    record:');
    const found = problems(text);
    expect(found).toHaveLength(1);
    expect(found[0]!.message).toMatch(/unknown field "recrod".*did you mean "record"/);
    expect(found[0]!.line).toBe(8);
    expect(found[0]!.column).toBe(5);
  });

  it('rejects an entry without candidates, pointing at the entry', () => {
    const text = `schema: ctrdbg.breakpoint-set/v1
name: demo
entries:
  - name: a
    record: [x]
`;
    const found = problems(text);
    expect(found).toHaveLength(1);
    expect(found[0]!.message).toMatch(/entries\.0\.candidates/);
    expect(found[0]!.line).toBe(4);
  });

  it('rejects an empty candidate list, a wrong schema version and a bad name', () => {
    const text = good
      .replace('ctrdbg.breakpoint-set/v1', 'ctrdbg.breakpoint-set/v9')
      .replace('name: demo', 'name: Demo Set')
      .replace(/candidates:\n\s+- \S+\n/, 'candidates: []\n');
    const found = problems(text);
    const messages = found.map((p) => p.message).join('\n');
    expect(messages).toMatch(/ctrdbg\.breakpoint-set\/v1/);
    expect(messages).toMatch(/lower-case/);
    expect(messages).toMatch(/at least one candidate/);
    expect(found.find((p) => /v1/.test(p.message))!.line).toBe(1);
  });

  it('rejects recording an expression the entry redacts', () => {
    const found = problems(good.replace('record: [req.Namespace.Name]', 'record: [req.Secret.Token]'));
    expect(found[0]!.message).toMatch(/redacted/);
    expect(found[0]!.line).toBe(8);
  });

  it('rejects duplicate entry names', () => {
    const text = `${good}  - name: ns-create\n    candidates: [a/b.C]\n`;
    expect(problems(text)[0]!.message).toMatch(/duplicate entry name/);
  });

  describe('at, after, onlyFailures, params, loadResults', () => {
    const entry = (fields: string) => `schema: ctrdbg.breakpoint-set/v1
name: demo
entries:
  - name: e
    candidates: [github.com/x/y.(*T).M]
${fields}`;

    it('accepts the three kinds of point with what belongs to each', () => {
      const set = parseBreakpointSet(
        `${entry('    at: return\n    onlyFailures: true\n    loadResults: {depth: 2}\n    record: [~r0.Process.Args, retErr]\n    params: [r]\n')}  - name: after
    candidates: [github.com/x/y.(*T).M]
    at: after-call
    after: [github.com/x/y.(*T).resolve, github.com/x/v2/y.(*T).Resolve]
    record: [image.ID]
`,
      );
      const [ret, after] = set.entries;
      expect(ret).toMatchObject({ at: 'return', onlyFailures: true, params: ['r'] });
      expect(ret?.loadResults).toMatchObject({ depth: 2, maxString: 64 });
      expect(after).toMatchObject({
        at: 'after-call',
        after: ['github.com/x/y.(*T).resolve', expect.any(String)],
      });
      expect(after?.loadResults).toBeUndefined();
    });

    it('rejects what does not fit the point, at its position', () => {
      expect(problems(entry('    at: after-call\n'))[0]!.message).toMatch(/names no callee: add after/);
      expect(problems(entry('    after: [a/b.C]\n'))[0]).toMatchObject({
        line: 6,
        message: expect.stringMatching(/"after" only applies to at: after-call/),
      });
      expect(problems(entry('    onlyFailures: true\n'))[0]!.message).toMatch(/only applies to at: return/);
      expect(
        problems(entry('    at: after-call\n    after: [a/b.C]\n    loadResults: {depth: 2}\n'))[0],
      ).toMatchObject({
        line: 8,
        message: expect.stringMatching(/"loadResults" only applies to at: return/),
      });
      expect(problems(entry('    at: return\n    lineOffset: 2\n'))[0]!.message).toMatch(
        /only applies to at: entry/,
      );
      expect(problems(entry('    params: [r.Config]\n'))[0]!.message).toMatch(/must be a parameter name/);
    });

    it('results are never read at an entry or after a call: a record expression over ~r0 is refused there', () => {
      const found = problems(entry('    record: [r.Config, ~r0.Process.Args]\n'));
      expect(found).toHaveLength(1);
      expect(found[0]).toMatchObject({
        line: 6,
        message: expect.stringMatching(
          /"~r0.Process.Args" reads the result ~r0: results exist only at: return/,
        ),
      });
      expect(
        problems(entry('    at: after-call\n    after: [a/b.C]\n    record: [(~r1)]\n'))[0]!.message,
      ).toMatch(/results exist only at: return \(at after-call/);
    });

    it('old set files without any of these fields read as before: entry points', () => {
      const set = parseBreakpointSet(good);
      expect(set.entries[0]).toMatchObject({ at: 'entry', onlyFailures: false, params: [] });
      expect(set.entries[0]?.after).toBeUndefined();
    });
  });

  it('isRedacted covers the path and everything under it', () => {
    expect(isRedacted('r.Auth', ['r.Auth'])).toBe(true);
    expect(isRedacted('r.Auth.Password', ['r.Auth'])).toBe(true);
    expect(isRedacted('*r.Auth', ['r.Auth'])).toBe(true);
    expect(isRedacted('r.AuthToken', ['r.Auth'])).toBe(false);
    expect(isRedacted('r.Image.Image', ['r.Auth'])).toBe(false);
  });
});

describe('built-in sets', () => {
  const sets = loadBreakpointSets();

  it('all load, with the names the design lists', () => {
    expect(sets.map((s) => s.name).sort()).toEqual(
      [
        'container-start',
        'cri-create',
        'cri-create-walk',
        'image-pull',
        'lab-create',
        'sandbox-run',
        'snapshot',
        'stdio',
        'stdio-shim',
        'tasks-create',
      ].sort(),
    );
    expect(sets.every((s) => s.builtin)).toBe(true);
  });

  it('image-pull never records r.Auth, redacts it and does not load arguments wholesale', () => {
    const set = findBreakpointSet(sets, 'image-pull');
    const pull = set.entries.find((e) => e.name === 'pull-image')!;
    expect(pull.redact).toContain('r.Auth');
    expect(pull.loadArgs).toBe(false);
    expect(pull.loadLocals).toBe(false);
    for (const entry of set.entries) for (const expr of entry.record) expect(expr).not.toMatch(/Auth/);
  });

  it('lab-create uses the lab containerd parameter names', () => {
    const set = findBreakpointSet(sets, 'lab-create');
    const record = Object.fromEntries(set.entries.map((e) => [e.name, e.record]));
    expect(record['namespaces-create']).toContain('req.Namespace.Name');
    expect(record['containers-create']).toEqual(
      expect.arrayContaining(['req.Container.ID', 'req.Container.Image']),
    );
    expect(record['tasks-create']).toContain('r.ContainerID');
  });

  it('unknown set names list the known ones', () => {
    expect(() => findBreakpointSet(sets, 'nope')).toThrow(/no breakpoint set named "nope"/);
  });
});

describe('loading user sets', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('adds sets from --sets-dir and refuses a duplicate name, naming both files', () => {
    dir = mkdtempSync(join(tmpdir(), 'ctrdbg-sets-'));
    writeFileSync(join(dir, 'demo.yaml'), good);
    writeFileSync(join(dir, 'README.md'), 'not a set');
    const sets = loadBreakpointSets({ setsDir: dir });
    expect(sets.find((s) => s.name === 'demo')?.builtin).toBe(false);
    writeFileSync(join(dir, 'dup.yml'), good.replace('name: demo', 'name: lab-create'));
    expect(() => loadBreakpointSets({ setsDir: dir })).toThrow(
      /two breakpoint sets are named "lab-create".*lab-create\.yaml.*dup\.yml/,
    );
  });

  it('reports a missing directory as an input error', () => {
    expect(() => loadBreakpointSets({ setsDir: '/nonexistent/ctrdbg-sets' })).toThrow(
      /cannot read breakpoint sets directory/,
    );
  });
});

describe('a set file that is not a set says what it is', () => {
  const thrown = (text: string) => {
    try {
      parseBreakpointSet(text, 'x.yaml');
    } catch (error) {
      if (isCtrdbgError(error)) return error;
      throw error;
    }
    throw new Error('expected the set to be rejected');
  };

  it.each(['', '\n\n', '# only a comment\n', '---\n'])(
    'an empty file (%j) is "empty", not "received null"',
    (text) => {
      const error = thrown(text);
      expect(error.kind).toBe('input');
      expect(error.message).toBe('x.yaml is empty: it holds no breakpoint set.');
      expect(error.message).not.toMatch(/null|Invalid input/);
      expect(error.hint).toContain('schema: ctrdbg.breakpoint-set/v1');
    },
  );

  it('a list or a single value is named as such', () => {
    expect(thrown('- a\n- b\n').message).toContain('x.yaml:1:1: the file holds a list, not a breakpoint set');
    expect(thrown('just words\n').message).toContain('the file holds a single value, not a breakpoint set');
  });
});

describe('record expressions and conditions are parsed when the set loads', () => {
  it('a syntax error is a load error at file:line:column', () => {
    const text = good.replace('record: [req.Namespace.Name]', 'record: [req.Namespace.Name, a +]');
    const found = problems(text, 'bad.yaml');
    expect(found).toEqual([
      {
        file: 'bad.yaml',
        line: 8,
        column: 36,
        message: 'record expression "a +" is not a Go expression: "+" needs an operand on its right',
      },
    ]);
  });

  it('a condition too, with the column inside a quoted scalar', () => {
    const text = good.replace('    record:', '    condition: "req.Namespace.Name = \\"x\\""\n    record:');
    const [p] = problems(text);
    expect(p?.line).toBe(8);
    expect(p?.column).toBe(36);
    expect(p?.message).toMatch(
      /^condition "req.Namespace.Name = \\"x\\"" is not a Go expression: an assignment/,
    );
  });

  it('every built-in set still loads', () => {
    expect(loadBreakpointSets().length).toBeGreaterThanOrEqual(8);
  });
});
