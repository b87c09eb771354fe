/** Expressions sent to Delve in the form it evaluates fastest, meaning unchanged. */
import { describe, expect, it } from 'vitest';
import { delveExpression, delveExpressions } from '../../src/breakpoints/delveExpression.js';

const packages = new Set(['runtime', 'v1', 'namespaces', 'config']);

describe('delveExpression', () => {
  it('reads a local with fields as a local, not as a package variable', () => {
    expect(delveExpression('req.Name', packages)).toBe('(req).Name');
    expect(delveExpression('r.Config.Image.Image', packages)).toBe('(r).Config.Image.Image');
    expect(delveExpression('len(req.Namespace.Labels)', packages)).toBe('len((req).Namespace.Labels)');
    expect(delveExpression('req.Name == "a.b" && l.db != nil', packages)).toBe(
      '(req).Name == "a.b" && (l).db != nil',
    );
  });

  it('leaves package variables, plain names, casts and literals as written', () => {
    expect(delveExpression('runtime.curg', packages)).toBe('runtime.curg');
    expect(delveExpression('req', packages)).toBe('req');
    expect(delveExpression('(*req).Name', packages)).toBe('(*req).Name');
    expect(delveExpression('*(*v1.Pod)(0xc000010000)', packages)).toBe('*(*v1.Pod)(0xc000010000)');
    expect(delveExpression('x[i].Name', packages)).toBe('x[i].Name');
    expect(delveExpression("'a' == c.b", packages)).toBe("'a' == (c).b");
    expect(delveExpression('1.5 < f.x', packages)).toBe('1.5 < (f).x');
    expect(delveExpression('`raw.text` != s.v', packages)).toBe('`raw.text` != (s).v');
  });

  it('maps what Delve names back to what the set wrote', () => {
    const { sent, original } = delveExpressions(['req.Name', 'req', 'runtime.curg'], packages);
    expect(sent).toEqual(['(req).Name', 'req', 'runtime.curg']);
    expect([...original]).toEqual([['(req).Name', 'req.Name']]);
    expect(delveExpressions(['req.Name'], undefined).sent).toEqual(['req.Name']);
  });
});
