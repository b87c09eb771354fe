/**
 * A syntax check of the Go expressions a set hands to Delve (`record:`, `condition:`), when the set loads: a typo
 * such as `a +` would otherwise surface only as `<eval error>` at every hit. Delve parses these with go/parser's
 * ParseExpr, so this is Go's expression grammar (go.dev/ref/spec#Expressions) — operands, selectors, index and
 * slice expressions, type assertions, calls and conversions, unary and binary operators — plus what Delve reads
 * on top of it (a quoted package path as an operand: `"github.com/x/y".Var`, which is Go syntax too). It answers
 * two questions only: is the text an expression, and which variables does it name (the roots of its selector
 * chains, for `sets check`'s "unknown variable" warning). It never evaluates anything.
 */

export interface GoExprError {
  /** 0-based offset into the expression where the problem is. */
  offset: number;
  message: string;
}

export type GoExprResult = { ok: true; identifiers: string[] } | { ok: false; error: GoExprError };

type TokenKind = 'ident' | 'int' | 'float' | 'imag' | 'char' | 'string' | 'op' | 'eof';

interface Token {
  kind: TokenKind;
  text: string;
  offset: number;
}

const KEYWORDS = new Set([
  'break',
  'case',
  'chan',
  'const',
  'continue',
  'default',
  'defer',
  'else',
  'fallthrough',
  'for',
  'func',
  'go',
  'goto',
  'if',
  'import',
  'interface',
  'map',
  'package',
  'range',
  'return',
  'select',
  'struct',
  'switch',
  'type',
  'var',
]);

/** Go's predeclared identifiers: never variables of the function. */
export const GO_PREDECLARED = new Set([
  'any',
  'bool',
  'byte',
  'comparable',
  'complex64',
  'complex128',
  'error',
  'float32',
  'float64',
  'int',
  'int8',
  'int16',
  'int32',
  'int64',
  'rune',
  'string',
  'uint',
  'uint8',
  'uint16',
  'uint32',
  'uint64',
  'uintptr',
  'true',
  'false',
  'iota',
  'nil',
  'append',
  'cap',
  'clear',
  'close',
  'complex',
  'copy',
  'delete',
  'imag',
  'len',
  'make',
  'max',
  'min',
  'new',
  'panic',
  'print',
  'println',
  'real',
  'recover',
]);

// Longest first, so `&^=`… never split; assignment operators are listed only to be refused by name.
const OPERATORS = [
  '<<=',
  '>>=',
  '&^=',
  '...',
  '&&',
  '||',
  '<-',
  '++',
  '--',
  '==',
  '!=',
  '<=',
  '>=',
  ':=',
  '+=',
  '-=',
  '*=',
  '/=',
  '%=',
  '&=',
  '|=',
  '^=',
  '<<',
  '>>',
  '&^',
  '+',
  '-',
  '*',
  '/',
  '%',
  '&',
  '|',
  '^',
  '<',
  '>',
  '=',
  '!',
  '(',
  ')',
  '[',
  ']',
  '{',
  '}',
  ',',
  ';',
  '.',
  ':',
  '~',
];

/** Binary operators by precedence (the spec's table: 5 binds tightest). */
const PRECEDENCE: Record<string, number> = {
  '||': 1,
  '&&': 2,
  '==': 3,
  '!=': 3,
  '<': 3,
  '<=': 3,
  '>': 3,
  '>=': 3,
  '+': 4,
  '-': 4,
  '|': 4,
  '^': 4,
  '*': 5,
  '/': 5,
  '%': 5,
  '<<': 5,
  '>>': 5,
  '&': 5,
  '&^': 5,
};

class SyntaxError_ extends Error {
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message);
  }
}

const isLetter = (c: string) => /[\p{L}_]/u.test(c);
const isDigit = (c: string) => c >= '0' && c <= '9';

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const fail = (message: string, at = i): never => {
    throw new SyntaxError_(at, message);
  };
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      i++;
      continue;
    }
    const start = i;
    // Delve's names for unnamed results and parameters: ~r0, ~r1, ~p0 (read from a return's results by ctrdbg).
    const delveName = /^~[rp][0-9]+/.exec(text.slice(i));
    if (delveName) {
      i += delveName[0].length;
      tokens.push({ kind: 'ident', text: delveName[0], offset: start });
      continue;
    }
    if (isLetter(c)) {
      while (i < text.length && (isLetter(text[i]!) || /\p{Nd}/u.test(text[i]!))) i++;
      tokens.push({ kind: 'ident', text: text.slice(start, i), offset: start });
      continue;
    }
    if (isDigit(c) || (c === '.' && isDigit(text[i + 1] ?? ''))) {
      const m =
        /^(?:0[xX][0-9a-fA-F_]*(?:\.[0-9a-fA-F_]*)?(?:[pP][+-]?[0-9_]+)?|0[bB][01_]+|0[oO][0-7_]+|(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]+)?)i?/.exec(
          text.slice(i),
        );
      const lit = m?.[0] ?? '';
      if (lit === '' || lit === '.') fail('malformed number');
      i += lit.length;
      if (i < text.length && (isLetter(text[i]!) || isDigit(text[i]!)))
        fail(`malformed number "${text.slice(start, i + 1)}"`, start);
      const kind: TokenKind = lit.endsWith('i')
        ? 'imag'
        : /[.eEpP]/.test(lit) && !/^0[xX][0-9a-fA-F_]*$/.test(lit)
          ? 'float'
          : 'int';
      tokens.push({ kind, text: lit, offset: start });
      continue;
    }
    if (c === '"' || c === "'") {
      i++;
      while (i < text.length && text[i] !== c) {
        if (text[i] === '\n')
          fail(c === '"' ? 'string literal not terminated' : 'rune literal not terminated');
        if (text[i] === '\\') i++;
        i++;
      }
      if (i >= text.length)
        fail(c === '"' ? 'string literal not terminated' : 'rune literal not terminated', start);
      i++;
      if (c === "'" && i - start === 2) fail('empty rune literal', start);
      tokens.push({ kind: c === '"' ? 'string' : 'char', text: text.slice(start, i), offset: start });
      continue;
    }
    if (c === '`') {
      const end = text.indexOf('`', i + 1);
      if (end < 0) fail('raw string literal not terminated');
      i = end + 1;
      tokens.push({ kind: 'string', text: text.slice(start, i), offset: start });
      continue;
    }
    const op = OPERATORS.find((o) => text.startsWith(o, i));
    if (!op) fail(`unexpected character ${JSON.stringify(c)}`);
    i += op!.length;
    tokens.push({ kind: 'op', text: op!, offset: start });
  }
  tokens.push({ kind: 'eof', text: '', offset: text.length });
  return tokens;
}

/** Recursive descent over one expression; collects the identifiers that stand for variables. */
class Parser {
  private at = 0;
  readonly identifiers: string[] = [];

  constructor(private readonly tokens: Token[]) {}

  private get tok(): Token {
    return this.tokens[this.at]!;
  }

  /** A method, not a property: TypeScript would keep a narrowed `this.tok` across `this.at++`. */
  private atEnd(): boolean {
    return this.tokens[this.at]!.kind === 'eof';
  }

  private is(text: string): boolean {
    return this.tok.kind === 'op' && this.tok.text === text;
  }

  private fail(message: string, token = this.tok): never {
    throw new SyntaxError_(token.offset, message);
  }

  private describe(token = this.tok): string {
    if (token.kind === 'eof') return 'the end of the expression';
    return `"${token.text}"`;
  }

  private expect(text: string): void {
    if (!this.is(text)) this.fail(`expected "${text}", found ${this.describe()}`);
    this.at++;
  }

  parseAll(): void {
    if (this.atEnd()) this.fail('the expression is empty');
    this.expression();
    if (this.tok.kind !== 'eof') {
      const t = this.tok;
      if (t.kind === 'op' && /^(?:[-+*/%&|^]|<<|>>|&\^)?=$|^:=$/.test(t.text))
        this.fail(`an assignment ("${t.text}") is not an expression; compare with "=="`);
      if (t.kind === 'op' && t.text === '{')
        this.fail('composite literals (T{…}) are not expressions Delve evaluates');
      if (t.kind === 'op' && (t.text === '++' || t.text === '--'))
        this.fail(`"${t.text}" is a statement, not an expression`);
      this.fail(`unexpected ${this.describe()} after a complete expression`);
    }
  }

  private expression(minPrec = 1): void {
    this.unary();
    for (;;) {
      const t = this.tok;
      const prec = t.kind === 'op' ? PRECEDENCE[t.text] : undefined;
      if (prec === undefined || prec < minPrec) return;
      this.at++;
      if (this.atEnd()) this.fail(`"${t.text}" needs an operand on its right`, t);
      this.expression(prec + 1);
    }
  }

  private unary(): void {
    const t = this.tok;
    if (t.kind === 'op' && ['+', '-', '!', '^', '*', '&', '<-'].includes(t.text)) {
      this.at++;
      if (this.atEnd()) this.fail(`"${t.text}" needs an operand`, t);
      this.unary();
      return;
    }
    this.primary();
  }

  private primary(): void {
    this.operand();
    for (;;) {
      if (this.is('.')) {
        this.at++;
        if (this.is('(')) {
          // A type assertion x.(T), or x.(type) (only in a type switch, not an expression).
          this.at++;
          if (this.tok.kind === 'ident' && this.tok.text === 'type')
            this.fail('x.(type) is only valid in a type switch');
          this.type();
          this.expect(')');
        } else if (this.tok.kind === 'ident' && !KEYWORDS.has(this.tok.text)) {
          this.at++;
        } else this.fail(`expected a field or method name after ".", found ${this.describe()}`);
      } else if (this.is('[')) {
        this.indexOrSlice();
      } else if (this.is('(')) {
        this.call();
      } else return;
    }
  }

  private indexOrSlice(): void {
    this.expect('[');
    if (this.is(']')) this.fail('an index needs a value between "[" and "]"');
    let colons = 0;
    let last: 'value' | 'colon' = 'colon';
    const parts: ('value' | 'colon')[] = [];
    while (!this.is(']')) {
      if (this.atEnd()) this.fail('"[" is never closed');
      if (this.is(':')) {
        colons++;
        if (colons > 2) this.fail('a slice expression has at most three indices');
        this.at++;
        last = 'colon';
        parts.push('colon');
        continue;
      }
      if (last === 'value' && !this.is(',')) this.fail(`expected "]", found ${this.describe()}`);
      if (this.is(',')) {
        // Generic instantiation f[A, B]: values separated by commas (no colons).
        if (colons > 0) this.fail('unexpected "," in a slice expression');
        this.at++;
        last = 'colon';
        continue;
      }
      this.typeOrExpression();
      last = 'value';
      parts.push('value');
    }
    if (colons === 2) {
      // a[lo:hi:max]: the middle and last indices are required.
      const i = parts.indexOf('colon');
      const j = parts.lastIndexOf('colon');
      if (parts[i + 1] !== 'value' || parts[j + 1] !== 'value')
        this.fail('a 3-index slice needs its 2nd and 3rd index');
    }
    this.expect(']');
  }

  private call(): void {
    this.expect('(');
    while (!this.is(')')) {
      if (this.atEnd()) this.fail('"(" is never closed');
      this.typeOrExpression();
      if (this.is('...')) this.at++;
      if (this.is(',')) {
        this.at++;
        continue;
      }
      if (!this.is(')')) this.fail(`expected "," or ")" in the argument list, found ${this.describe()}`);
    }
    this.expect(')');
  }

  /** Conversions and builtins take types as arguments: []byte(x), make(map[string]int), new(T). */
  private typeOrExpression(): void {
    const t = this.tok;
    if (
      (t.kind === 'op' && t.text === '[') ||
      (t.kind === 'ident' && ['map', 'chan', 'func', 'struct', 'interface'].includes(t.text))
    ) {
      this.type();
      // A composite type may be converted or called right away: []byte(x)
      if (this.is('(')) this.call();
      return;
    }
    this.expression();
  }

  private operand(): void {
    const t = this.tok;
    switch (t.kind) {
      case 'int':
      case 'float':
      case 'imag':
      case 'char':
      case 'string':
        this.at++;
        return;
      case 'ident':
        if (['map', 'chan', 'func', 'struct', 'interface'].includes(t.text)) {
          // A type used as an operand: a conversion such as map[string]int(m) or interface{}(x).
          this.type();
          if (!this.is('(')) this.fail(`a type (${t.text} …) here must be converted: ${t.text}…(x)`);
          return;
        }
        if (KEYWORDS.has(t.text)) this.fail(`"${t.text}" is a Go keyword, not a value`);
        this.identifiers.push(t.text);
        this.at++;
        return;
      case 'op':
        if (t.text === '(') {
          this.at++;
          if (this.is(')')) this.fail('empty parentheses');
          this.typeOrExpression();
          this.expect(')');
          return;
        }
        if (t.text === '[') {
          this.type();
          if (!this.is('(')) this.fail('a slice or array type here must be converted: []T(x)');
          return;
        }
        if (t.text === '{') this.fail('composite literals (T{…}) are not expressions Delve evaluates');
        break;
      case 'eof':
        this.fail('the expression ends where a value is expected');
    }
    this.fail(`unexpected ${this.describe()} where a value is expected`);
  }

  /** A Go type: T, pkg.T, *T, []T, [N]T, map[K]V, chan T, <-chan T, func(…) …, struct{…}, interface{…}. */
  private type(): void {
    const t = this.tok;
    if (t.kind === 'op') {
      if (t.text === '*') {
        this.at++;
        this.type();
        return;
      }
      if (t.text === '(') {
        this.at++;
        this.type();
        this.expect(')');
        return;
      }
      if (t.text === '[') {
        this.at++;
        if (!this.is(']')) {
          if (this.is('...')) this.at++;
          else this.expression();
        }
        this.expect(']');
        this.type();
        return;
      }
      if (t.text === '<-') {
        this.at++;
        if (!(this.tok.kind === 'ident' && this.tok.text === 'chan')) this.fail('expected "chan" after "<-"');
        this.at++;
        this.type();
        return;
      }
    }
    if (t.kind === 'ident') {
      switch (t.text) {
        case 'map':
          this.at++;
          this.expect('[');
          this.type();
          this.expect(']');
          this.type();
          return;
        case 'chan':
          this.at++;
          if (this.is('<-')) this.at++;
          this.type();
          return;
        case 'func':
          this.at++;
          this.balanced('(', ')');
          if (this.is('(')) this.balanced('(', ')');
          else if (this.startsType()) this.type();
          return;
        case 'struct':
        case 'interface':
          this.at++;
          this.balanced('{', '}');
          return;
      }
      if (KEYWORDS.has(t.text)) this.fail(`"${t.text}" is a Go keyword, not a type`);
      this.at++;
      if (this.is('.')) {
        this.at++;
        if (this.tok.kind !== 'ident') this.fail(`expected a type name after ".", found ${this.describe()}`);
        this.at++;
      }
      if (this.is('[')) this.balanced('[', ']');
      return;
    }
    if (t.kind === 'string' && this.tokens[this.at + 1]?.text === '.') {
      // Delve: a type of a quoted package path, "github.com/x/y".T
      this.at += 2;
      if (this.tok.kind !== 'ident') this.fail(`expected a type name after ".", found ${this.describe()}`);
      this.at++;
      return;
    }
    this.fail(`expected a type, found ${this.describe()}`);
  }

  private startsType(): boolean {
    const t = this.tok;
    return (
      (t.kind === 'ident' && !KEYWORDS.has(t.text)) ||
      (t.kind === 'ident' && ['map', 'chan', 'func', 'struct', 'interface'].includes(t.text)) ||
      (t.kind === 'op' && ['*', '[', '<-'].includes(t.text))
    );
  }

  /** Skips a bracketed group whose inside is not checked further (a func type's parameters, a struct body). */
  private balanced(open: string, close: string): void {
    const start = this.tok;
    this.expect(open);
    let depth = 1;
    while (depth > 0) {
      const t = this.tok;
      if (t.kind === 'eof') this.fail(`"${open}" is never closed`, start);
      if (t.kind === 'op' && t.text === open) depth++;
      if (t.kind === 'op' && t.text === close) depth--;
      this.at++;
    }
  }
}

/** Parses `text` as one Go expression, as Delve does; returns the variables it names, or the first problem. */
export function parseGoExpr(text: string): GoExprResult {
  try {
    const parser = new Parser(tokenize(text));
    parser.parseAll();
    return { ok: true, identifiers: [...new Set(parser.identifiers)] };
  } catch (error) {
    if (error instanceof SyntaxError_)
      return { ok: false, error: { offset: error.offset, message: error.message } };
    throw error;
  }
}

/**
 * The variables an expression reads from the stopped function, by name: the roots of its selector chains that
 * are not Go's predeclared names. `pkg.Var` roots are included (a variable and a package look alike here;
 * `sets check` tells them apart with what the binary holds).
 */
export function rootVariables(text: string): string[] {
  const parsed = parseGoExpr(text);
  return parsed.ok ? parsed.identifiers.filter((n) => !GO_PREDECLARED.has(n)) : [];
}
