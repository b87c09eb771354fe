/**
 * The Go-expression check a set's `record:` and `condition:` pass when the set loads: everything the built-in
 * sets hold (and the shapes Delve's own docs use) parses; what go/parser's ParseExpr refuses is refused with
 * the place it goes wrong.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseGoExpr, rootVariables } from '../../src/breakpoints/goExpr.js';
import { breakpointSetsDir } from '../../src/config.js';

function builtinExpressions(): string[] {
  const out: string[] = [];
  for (const name of readdirSync(breakpointSetsDir).filter((n) => n.endsWith('.yaml'))) {
    const set = parse(readFileSync(join(breakpointSetsDir, name), 'utf8')) as {
      entries: { record?: string[]; condition?: string }[];
    };
    for (const e of set.entries) out.push(...(e.record ?? []), ...(e.condition ? [e.condition] : []));
  }
  return out;
}

describe('Go expressions as Delve reads them', () => {
  it('accepts every record expression and condition of the built-in sets', () => {
    const all = builtinExpressions();
    expect(all.length).toBeGreaterThan(40);
    for (const expr of all) expect(parseGoExpr(expr), expr).toMatchObject({ ok: true });
  });

  it.each([
    'req.Namespace.Name',
    'len(r.Rootfs)',
    'r != nil && r.Config.Tty',
    'req.Namespace.Name == "x"',
    'm["team"]',
    'a[1:2]',
    'a[:n:cap(a)]',
    'x.(*v1.Namespace).Name',
    'err.(interface{ Error() string })',
    '"github.com/containerd/containerd/services/tasks".empty',
    '*(*int)(0xc000010000)',
    '(*net.TCPConn)(c).fd',
    '[]byte(s)',
    'map[string]int(m)',
    'string(b[:4])',
    '-x + ^y * 2 << 1',
    '!ok || (a > 1.5e3 && b <= 0x1f)',
    "c == 'a' || s == `raw`",
    'runtime.curg.goid',
    'f(a, b...)',
    'x[i][j].y(1)(2).z',
  ])('accepts %s', (expr) => {
    expect(parseGoExpr(expr)).toMatchObject({ ok: true });
  });

  it.each([
    ['a +', 0, '"+" needs an operand on its right', 2],
    ['req.X ==', 0, '"==" needs an operand on its right', 6],
    ['a = 1', 0, 'an assignment ("=") is not an expression', 2],
    ['a++', 0, '"++" is a statement', 1],
    ['(a', 0, 'expected ")"', 2],
    ['a)', 0, 'unexpected ")" after a complete expression', 1],
    ['a..b', 0, 'expected a field or method name', 2],
    ['a[]', 0, 'an index needs a value', 2],
    ['a[::3]', 0, 'a 3-index slice needs its 2nd and 3rd index', 5],
    ['"open', 0, 'string literal not terminated', 0],
    ['a @ b', 0, 'unexpected character "@"', 2],
    ['T{}', 0, 'composite literals', 1],
    ['x.(type)', 0, 'only valid in a type switch', 3],
    ['', 0, 'the expression is empty', 0],
    ['if x', 0, '"if" is a Go keyword', 0],
  ])('refuses %j', (expr, _, message, offset) => {
    const r = parseGoExpr(expr);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.message).toContain(message);
      expect(r.error.offset).toBe(offset);
    }
  });

  it('names the variables an expression reads: selector roots, not fields, builtins or literals', () => {
    expect(rootVariables('req.Namespace.Name')).toEqual(['req']);
    expect(rootVariables('len(r.Rootfs) > n && m["k"] != nil')).toEqual(['r', 'n', 'm']);
    expect(rootVariables('x.(*v1.T).Name')).toEqual(['x']);
    expect(rootVariables('"github.com/x/y".Var')).toEqual([]);
    expect(rootVariables('a +')).toEqual([]);
  });
});
