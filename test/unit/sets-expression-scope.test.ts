/** sets check's "unknown variable" warnings, from what the binary's DWARF says each function has. */
import { describe, expect, it } from 'vitest';
import { expressionWarnings } from '../../src/breakpoints/expressionScope.js';
import type { ResolvedSet } from '../../src/breakpoints/resolve.js';
import { parseBreakpointSet } from '../../src/breakpoints/sets.js';
import type { ScopeReport } from '../../src/delve/agentProtocol.js';

const CREATE = 'github.com/containerd/containerd/services/namespaces.(*local).Create';

const set = parseBreakpointSet(`schema: ctrdbg.breakpoint-set/v1
name: mine
entries:
  - name: ns
    candidates: ['${CREATE}']
    record:
      - req.Namespace.Name
      - rq.Namespace.Name
      - len(req.Namespace.Labels) > limit
      - namespaces.empty
      - empty
      - '"github.com/x/y".Var'
    condition: reqq != nil
    params: [req, ctxx]
`);

const resolved: ResolvedSet[] = [
  {
    set: 'mine',
    complete: true,
    notes: [],
    entries: [
      {
        set: 'mine',
        entry: 'ns',
        missing: [],
        suggestions: [],
        errors: [],
        locations: [
          {
            candidate: CREATE,
            function: CREATE,
            file: 'local.go',
            line: 118,
            optimized: false,
            addrs: [1],
            pcs: 1,
            at: 'entry',
          },
        ],
      },
    ],
  },
];

const scopes: ScopeReport = {
  binary: '/proc/1/exe',
  functions: [
    {
      function: CREATE,
      found: true,
      params: ['ctx', 'l', 'req', '~r0', '~r1'],
      locals: ['err', 'resp'],
      packageVars: ['empty'],
    },
  ],
  packages: ['namespaces', 'runtime'],
};

describe('expressions that name what the function does not have', () => {
  const warnings = expressionWarnings([set], resolved, scopes);

  it('warn once per expression, naming the unknown variable, what the function has and the nearest name', () => {
    expect(warnings.map((w) => [w.field, w.expr, w.unknown])).toEqual([
      ['record', 'rq.Namespace.Name', ['rq']],
      ['record', 'len(req.Namespace.Labels) > limit', ['limit']],
      ['condition', 'reqq != nil', ['reqq']],
      ['params', 'ctxx', ['ctxx']],
    ]);
    expect(warnings[0]!.message).toBe(
      'record "rq.Namespace.Name" names rq, which namespaces.(*local).Create does not have (its parameters: ctx, l, req; locals: err, resp); did you mean req? Delve would answer <eval error> at every hit.',
    );
    expect(warnings[3]!.message).toMatch(/^params lists ctxx, .*did you mean ctx\?/);
  });

  it('parameters, locals, package variables, package names, builtins and quoted package paths pass', () => {
    const exprs = warnings.map((w) => w.expr);
    for (const ok of ['req.Namespace.Name', 'namespaces.empty', 'empty', '"github.com/x/y".Var', 'req'])
      expect(exprs).not.toContain(ok);
  });

  it('a function the scan did not find (or no scan) gives no warning', () => {
    expect(expressionWarnings([set], resolved, { ...scopes, functions: [] })).toEqual([]);
  });
});
