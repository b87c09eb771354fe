/**
 * The filter language of `replay --filter`, the interactive `f` command and the HTML page's search box: one
 * implementation, serialised into the page like render.ts (so: self-contained functions, no imports at run
 * time, no module-level values).
 *
 *   term, term, …              every term must hold (repeated --filter flags add terms)
 *   word                       case-insensitive substring of the breakpoint, set, function, file, `g<id>`,
 *                              or of any recorded expression's value
 *   set=S  bp=NAME  function=F  file=F  goroutine=G (g=G)  seq=N or A-B  process=PID or binary
 *   EXPR=VALUE                 a recorded expression equals VALUE (strings without quotes; * matches anything)
 *   EXPR!=VALUE                …is recorded here and differs
 *   EXPR~TEXT                  …contains TEXT, case-insensitive
 *
 * A value may be written in double quotes (JSON) to hold commas or spaces at its ends.
 */

/** What a filter looks at in one hit. The terminal reads values lazily; the page has them precomputed. */
export interface FilterSubject {
  seq: number;
  goroutine: number;
  breakpoint: { id: number; name: string; set: string };
  location: { function: string; file: string };
  process?: { pid: number; binary: string } | undefined;
  /** The inline text (render.ts inlineValue) of recorded expression `expr` at this hit; undefined if absent. */
  expr(expr: string): string | undefined;
  /** The inline texts of every expression recorded at this hit. */
  exprTexts(): string[];
  /** Optional: false when this hit's breakpoint surely does not record `expr` (decided without reading it). */
  records?(expr: string): boolean;
  /**
   * Optional cheap pre-check before values are read: false only when `needle` (lower case, letters, digits
   * and `_.-/:@`) surely occurs nowhere in the hit's recorded data.
   */
  mayContain?(needle: string): boolean;
}

export interface CompiledFilter {
  terms: string[];
  /** True when no term needs recorded values (the metadata index alone decides). */
  metaOnly: boolean;
  test(subject: FilterSubject): boolean;
}

export type FilterParse = { ok: true; filter: CompiledFilter } | { ok: false; message: string; hint: string };

/** The filter keys, for messages and --help. */
export function filterKeys(): string[] {
  return ['set', 'bp', 'function', 'file', 'goroutine (g)', 'seq', 'process'];
}

/** Splits filter text at commas outside double quotes; trims; drops empty terms. */
export function splitFilterTerms(text: string): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    if (c === '\\' && quoted && i + 1 < text.length) {
      current += c + text.charAt(i + 1);
      i++;
    } else if (c === '"') {
      quoted = !quoted;
      current += c;
    } else if (c === ',' && !quoted) {
      out.push(current);
      current = '';
    } else current += c;
  }
  out.push(current);
  return out.map((t) => t.trim()).filter((t) => t !== '');
}

/** A recorded string's text when `inline` is a whole (not cut) JSON string literal, else undefined. */
export function inlineString(inline: string): string | undefined {
  if (inline.length < 2 || inline.charAt(0) !== '"' || inline.charAt(inline.length - 1) !== '"')
    return undefined;
  try {
    const parsed: unknown = JSON.parse(inline);
    return typeof parsed === 'string' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Compiles filter expressions (each may hold several comma-separated terms). `expressions` are the
 * expressions the session records (its header's breakpoints): they are the keys besides the built-in ones.
 */
export function compileFilter(expressions: readonly string[], texts: readonly string[]): FilterParse {
  const terms: string[] = [];
  for (const text of texts) for (const t of splitFilterTerms(text)) terms.push(t);
  const known = expressions.slice().sort((a, b) => b.length - a.length);
  const builtin = ['set', 'bp', 'breakpoint', 'function', 'func', 'file', 'goroutine', 'g', 'seq', 'process'];
  type Test = (s: FilterSubject) => boolean;
  const tests: Test[] = [];
  let metaOnly = true;

  const unquote = (raw: string): string | undefined => {
    const v = raw.trim();
    if (v.charAt(0) === '"') {
      if (v.length < 2 || v.charAt(v.length - 1) !== '"') return undefined;
      try {
        const parsed: unknown = JSON.parse(v);
        return typeof parsed === 'string' ? parsed : undefined;
      } catch {
        return undefined;
      }
    }
    return v;
  };
  const glob = (pattern: string): ((text: string) => boolean) => {
    if (pattern.indexOf('*') < 0) return (text) => text === pattern;
    const source = pattern
      .split('*')
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('[\\s\\S]*');
    const re = new RegExp(`^${source}$`);
    return (text) => re.test(text);
  };
  const fail = (message: string, hint: string): FilterParse => ({ ok: false, message, hint });
  const keysHint = () =>
    `Use ${filterKeys().join(', ')} (key=value), a recorded expression with =, != or ~` +
    (known.length ? ` (${expressions.slice(0, 4).join(', ')}${expressions.length > 4 ? ', …' : ''})` : '') +
    ', or a bare word to search names and recorded values.';

  for (const term of terms) {
    // A recorded expression can itself hold `=` or `~` (`a == b`): try the known ones first, longest first.
    let exprKey: string | undefined;
    let rest = '';
    for (const e of known) {
      if (term.length > e.length && term.slice(0, e.length) === e) {
        const after = term.slice(e.length).trimStart();
        if (after.charAt(0) === '=' || after.charAt(0) === '~' || after.slice(0, 2) === '!=') {
          exprKey = e;
          rest = after;
          break;
        }
      }
    }
    if (exprKey !== undefined) {
      const op = rest.slice(0, 2) === '!=' ? '!=' : rest.charAt(0);
      const value = unquote(rest.slice(op.length));
      if (value === undefined)
        return fail(`--filter ${term}: the quoted value is not valid JSON`, keysHint());
      const key = exprKey;
      metaOnly = false;
      // A plain value must occur in the hit's recorded data: a cheap check before the values are read.
      const lower = value.toLowerCase();
      const plain = op !== '!=' && /^[\p{L}\p{N}_.\-/:@]+$/u.test(lower) && 'nil'.indexOf(lower) < 0;
      if (op === '~') {
        const needle = lower;
        tests.push((s) => {
          if (s.records && !s.records(key)) return false;
          if (plain && s.mayContain && !s.mayContain(needle)) return false;
          const text = s.expr(key);
          if (text === undefined) return false;
          const str = inlineString(text);
          return (str ?? text).toLowerCase().indexOf(needle) >= 0;
        });
      } else {
        const matches = glob(value);
        const negate = op === '!=';
        tests.push((s) => {
          if (s.records && !s.records(key)) return false;
          if (plain && s.mayContain && !s.mayContain(lower)) return false;
          const text = s.expr(key);
          if (text === undefined) return false;
          const str = inlineString(text);
          const equal = matches(str ?? text);
          return negate ? !equal : equal;
        });
      }
      continue;
    }

    const m = /^([A-Za-z_][\w-]*)\s*(!=|=|~)([\s\S]*)$/.exec(term);
    if (!m) {
      // A bare word: names first (no values needed), then the recorded values.
      const needle = (unquote(term) ?? term).toLowerCase();
      const plain = /^[\p{L}\p{N}_.\-/:@]+$/u.test(needle) && 'nil'.indexOf(needle) < 0;
      metaOnly = false;
      tests.push((s) => {
        const names = [
          s.breakpoint.name,
          s.breakpoint.set,
          s.location.function,
          s.location.file,
          `g${s.goroutine}`,
        ];
        for (const n of names) if (n.toLowerCase().indexOf(needle) >= 0) return true;
        if (plain && s.mayContain && !s.mayContain(needle)) return false;
        const p = s.process;
        if (p && (p.binary.toLowerCase().indexOf(needle) >= 0 || String(p.pid) === needle)) return true;
        for (const t of s.exprTexts()) {
          const str = inlineString(t);
          if ((str ?? t).toLowerCase().indexOf(needle) >= 0) return true;
        }
        return false;
      });
      continue;
    }
    const key = (m[1] ?? '').toLowerCase();
    const op = m[2] ?? '=';
    const value = unquote(m[3] ?? '');
    if (builtin.indexOf(key) < 0) {
      return fail(`unknown filter key "${m[1]}" in --filter ${term}`, keysHint());
    }
    if (value === undefined) return fail(`--filter ${term}: the quoted value is not valid JSON`, keysHint());
    let field: Test;
    switch (key) {
      case 'set':
        field = (s) => s.breakpoint.set === value;
        break;
      case 'bp':
      case 'breakpoint':
        field = (s) =>
          s.breakpoint.name === value ||
          s.breakpoint.name.slice(-value.length - 1) === `/${value}` ||
          String(s.breakpoint.id) === value;
        break;
      case 'function':
      case 'func':
        field = (s) => s.location.function.indexOf(value) >= 0;
        break;
      case 'file':
        field = (s) => s.location.file.indexOf(value) >= 0;
        break;
      case 'goroutine':
      case 'g': {
        const id = Number(value);
        if (!/^\d+$/.test(value) || !Number.isSafeInteger(id))
          return fail(`--filter ${term}: goroutine must be a number`, 'For example goroutine=41 or g=41.');
        field = (s) => s.goroutine === id;
        break;
      }
      case 'seq': {
        const r = /^(\d+)(?:-(\d+))?$/.exec(value);
        if (!r) return fail(`--filter ${term}: seq must be N or A-B`, 'For example seq=12 or seq=100-200.');
        const from = Number(r[1]);
        const to = r[2] === undefined ? from : Number(r[2]);
        field = (s) => s.seq >= from && s.seq <= to;
        break;
      }
      default: {
        // process: a pid, or a substring of the binary's path; hits recorded without a process never match.
        const pid = /^\d+$/.test(value) ? Number(value) : undefined;
        field = (s) =>
          s.process !== undefined &&
          (pid !== undefined ? s.process.pid === pid : s.process.binary.indexOf(value) >= 0);
      }
    }
    if (op === '=') tests.push(field);
    else if (op === '!=') tests.push((s) => !field(s));
    else {
      // `~` on a built-in key: a case-insensitive substring of that field's text.
      const needle = value.toLowerCase();
      const text = (s: FilterSubject): string => {
        if (key === 'set') return s.breakpoint.set;
        if (key === 'bp' || key === 'breakpoint') return s.breakpoint.name;
        if (key === 'function' || key === 'func') return s.location.function;
        if (key === 'file') return s.location.file;
        if (key === 'process') return s.process ? `${s.process.pid} ${s.process.binary}` : '';
        if (key === 'seq') return String(s.seq);
        return String(s.goroutine);
      };
      tests.push((s) => text(s).toLowerCase().indexOf(needle) >= 0);
    }
  }
  return {
    ok: true,
    filter: {
      terms,
      metaOnly,
      test: (s) => {
        for (const t of tests) if (!t(s)) return false;
        return true;
      },
    },
  };
}

/** The help text of the filter language (for --help, the interactive `f`, the page's tooltip). */
export function filterHelp(): string {
  return [
    'Filter terms (comma-separated, all must hold; --filter may be repeated):',
    '  WORD           a substring (any case) of the breakpoint, set, function, file, gN, or a recorded value',
    '  set=S          hits of set S            bp=NAME     breakpoint NAME (or its entry name, or its id)',
    '  function=F     function contains F      file=F      file path contains F',
    '  goroutine=G    goroutine G (g=G)        seq=N|A-B   hit numbers',
    '  process=P      pid P or binary path containing P (recordings of several processes)',
    '  EXPR=VALUE     a recorded expression equals VALUE (no quotes needed for strings; * is a wildcard)',
    '  EXPR!=VALUE    …is recorded and differs     EXPR~TEXT   …contains TEXT (any case)',
    '  "quoted"       a value in double quotes may hold commas',
    'e.g.  uxtest2    req.Container.ID=c2    r.Stdout~fifo, g=41    set=lab-create, seq=10-20',
  ].join('\n');
}

export const FILTER_FUNCTIONS: ReadonlyArray<(...args: never[]) => unknown> = [
  filterKeys,
  splitFilterTerms,
  inlineString,
  compileFilter,
  filterHelp,
];
