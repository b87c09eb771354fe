/**
 * `sets check`'s warning for a record expression, condition or parameter that names a variable the function
 * does not have: Delve would answer `<eval error>` at every hit (a typo such as `rq.Namespace.Name`). What each
 * function has comes from its binary's DWARF (the agent's `scope`, node-agent/scope.go): parameters, locals,
 * its package's variables, and the names packages go by. A warning, not an error: the set is still armed.
 */
import type { ScopeReport } from '../delve/agentProtocol.js';
import { editDistance } from '../util/editDistance.js';
import { rootVariables } from './goExpr.js';
import type { ResolvedSet } from './resolve.js';
import type { BreakpointSet } from './sets.js';

export interface ExpressionWarning {
  set: string;
  entry: string;
  /** The expression as written in the set, and where (record, condition or params). */
  expr: string;
  field: 'record' | 'condition' | 'params';
  function: string;
  unknown: string[];
  message: string;
}

/** Short names for messages: `namespaces.(*local).Create`. */
function short(fn: string): string {
  return fn.slice(fn.lastIndexOf('/') + 1);
}

export function expressionWarnings(
  sets: readonly BreakpointSet[],
  resolved: readonly ResolvedSet[],
  report: ScopeReport,
): ExpressionWarning[] {
  const scopes = new Map(report.functions.filter((f) => f.found).map((f) => [f.function, f]));
  const packages = new Set(report.packages);
  const warnings: ExpressionWarning[] = [];
  for (const r of resolved) {
    const set = sets.find((s) => s.name === r.set);
    for (const e of r.entries) {
      const entry = set?.entries.find((x) => x.name === e.entry);
      if (!entry) continue;
      const uses: { expr: string; field: ExpressionWarning['field']; names: string[] }[] = [
        ...entry.record.map((expr) => ({ expr, field: 'record' as const, names: rootVariables(expr) })),
        ...(entry.condition
          ? [{ expr: entry.condition, field: 'condition' as const, names: rootVariables(entry.condition) }]
          : []),
        ...entry.params.map((p) => ({ expr: p, field: 'params' as const, names: [p] })),
      ];
      for (const fn of new Set(e.locations.map((l) => l.function))) {
        const scope = scopes.get(fn);
        if (!scope) continue;
        const variables = [...(scope.params ?? []), ...(scope.locals ?? [])].filter(
          (n) => !n.startsWith('~'),
        );
        const known = new Set([...variables, ...(scope.packageVars ?? [])]);
        for (const use of uses) {
          // A parameter is a variable of the function; an expression's root may also be a package.
          const unknown = use.names.filter(
            (n) => !known.has(n) && (use.field === 'params' || !packages.has(n)),
          );
          if (unknown.length === 0) continue;
          const near = unknown.map((n) => closest(n, variables)).filter((n) => n !== undefined);
          const what =
            use.field === 'params'
              ? `params lists ${use.expr}`
              : `${use.field} ${JSON.stringify(use.expr)} names ${unknown.join(', ')}`;
          warnings.push({
            set: r.set,
            entry: e.entry,
            expr: use.expr,
            field: use.field,
            function: fn,
            unknown,
            message: `${what}, which ${short(fn)} does not have (its parameters: ${listOf(scope.params)}; locals: ${listOf(scope.locals)})${near.length ? `; did you mean ${near.join(', ')}?` : ''} Delve would answer <eval error> at every hit.`,
          });
        }
      }
    }
  }
  return warnings;
}

function listOf(names: string[] | undefined): string {
  const shown = (names ?? []).filter((n) => !n.startsWith('~'));
  return shown.length ? shown.join(', ') : 'none';
}

function closest(name: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(name.length / 3)) ? best : undefined;
}
