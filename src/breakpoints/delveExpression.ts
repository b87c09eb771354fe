/**
 * Writes a set's expressions the way Delve evaluates them fastest, without changing what they mean.
 *
 * Delve reads `a.b` first as "package a, variable b": before it looks at the local `a`, it walks every package
 * variable and every function of the binary comparing names (several milliseconds per evaluation in a containerd
 * debug build, at every hit, for every expression and condition). `(a).b` is a plain field access on the local.
 * So `req.Name` is sent as `(req).Name` whenever `req` is not the name of a package in the binary; package
 * variables (`runtime.curg`, `pkg.Var`) are left as written.
 */

/** Tokens of a Go expression, with the places where an operand may start. */
const TOKEN = /"(?:[^"\\]|\\.)*"|`[^`]*`|'(?:[^'\\]|\\.)*'|[A-Za-z_][A-Za-z0-9_]*|\s+|./gsy;

/** Go's keywords that may appear in an expression before a selector (never wrapped). */
const KEYWORDS = new Set(['map', 'chan', 'func', 'struct', 'interface', 'nil', 'true', 'false']);

export function delveExpression(expr: string, packages: ReadonlySet<string>): string {
  const tokens = expr.match(TOKEN) ?? [expr];
  const significant = (i: number, step: 1 | -1): string | undefined => {
    for (let j = i + step; j >= 0 && j < tokens.length; j += step) {
      if (!/^\s+$/.test(tokens[j]!)) return tokens[j];
    }
    return undefined;
  };
  return tokens
    .map((token, i) => {
      if (!/^[A-Za-z_]/.test(token) || KEYWORDS.has(token) || packages.has(token)) return token;
      const before = significant(i, -1);
      // Only an operand's first name: not the field in `x.name`, not a name right after `)`/`]`/another name.
      if (before === '.' || (before !== undefined && /^[A-Za-z0-9_)\]]/.test(before))) return token;
      const after = significant(i, 1);
      return after === '.' ? `(${token})` : token;
    })
    .join('');
}

/**
 * The expressions of one breakpoint as Delve gets them, and the way back: Delve names each captured value by the
 * expression it was given, and recordings keep the expression as the set wrote it.
 */
export function delveExpressions(
  exprs: readonly string[],
  packages: ReadonlySet<string> | undefined,
): { sent: string[]; original: Map<string, string> } {
  const original = new Map<string, string>();
  const sent = exprs.map((expr) => {
    const fast = packages ? delveExpression(expr, packages) : expr;
    if (fast !== expr) original.set(fast, expr);
    return fast;
  });
  return { sent, original };
}
