/**
 * Credentials never reach a session file by default. Two kinds of rule:
 * - a set's own `redact` paths (e.g. `r.Auth` in image-pull): always applied, even with --no-redact;
 * - field names that hold secrets in containerd's and CRI's types (Auth, Password, IdentityToken,
 *   RegistryToken, …): applied unless the user opts out with --no-redact.
 * A redacted value keeps its name, type and kind (so the shape of the request stays visible) and loses
 * its value and children.
 */
import { isRedacted } from '../breakpoints/sets.js';
import type { RecordedExpression, RecordedValue } from '../recording/format.js';

export const SENSITIVE_FIELDS = [
  'Auth',
  'Auths',
  'Password',
  'Passwd',
  'Secret',
  'Token',
  'IdentityToken',
  'RegistryToken',
  'AccessToken',
  'RefreshToken',
  'PrivateKey',
  'ClientKey',
  'Credentials',
];

const sensitive = new Set(SENSITIVE_FIELDS.map((f) => f.toLowerCase()));

export interface RedactionRules {
  /** Set-level paths, always applied. */
  paths: readonly string[];
  /** Apply the sensitive-field-name rule too. */
  fieldNames: boolean;
}

export function describeRules(rules: RedactionRules): string[] {
  return [
    ...rules.paths.map((p) => `path ${p}`),
    ...(rules.fieldNames ? [`fields ${SENSITIVE_FIELDS.join(',')}`] : []),
  ];
}

function redacted(v: RecordedValue): RecordedValue {
  return { name: v.name, type: v.type, kind: v.kind, redacted: true };
}

/**
 * The expression path of a child value, the way a set author writes it: `r.Config`, `r.Mounts[1]`,
 * `r.Labels["team"]`. Converted map entries are named `["key"]` (the key rendered), slice elements `[i]`.
 */
export function childPath(parent: string, child: RecordedValue, index: number, parentKind: string): string {
  // Pointers and interfaces wrap their target in one unnamed (or "*name") child: same path.
  if (parentKind === 'ptr' || parentKind === 'interface') return parent;
  if (parentKind === 'slice' || parentKind === 'array') return `${parent}[${index}]`;
  if (parentKind === 'map') return `${parent}${child.name.startsWith('[') ? child.name : `[${child.name}]`}`;
  if (child.name === '' || child.name.startsWith('*')) return parent;
  return `${parent}.${child.name}`;
}

/** The last field or map key of a path: `r.Auth` → Auth, `m["Token"]` → Token. */
function lastField(path: string): string {
  const m = /([A-Za-z_][A-Za-z0-9_-]*)"?\]?$/.exec(path);
  return m?.[1] ?? path;
}

export function shouldRedact(path: string, rules: RedactionRules): boolean {
  if (isRedacted(path, rules.paths)) return true;
  return rules.fieldNames && sensitive.has(lastField(path).toLowerCase());
}

/** Returns a copy of `value` (named by `path`) with every redacted subtree replaced. */
export function redactValue(
  value: RecordedValue,
  path: string,
  rules: RedactionRules,
): { value: RecordedValue; count: number } {
  if (shouldRedact(path, rules)) return { value: redacted(value), count: 1 };
  if (!value.children?.length) return { value, count: 0 };
  let count = 0;
  const children = value.children.map((child, i) => {
    const r = redactValue(child, childPath(path, child, i, value.kind), rules);
    count += r.count;
    return r.value;
  });
  return { value: count ? { ...value, children } : value, count };
}

export function redactValues(
  values: RecordedValue[],
  rules: RedactionRules,
): { values: RecordedValue[]; count: number } {
  let count = 0;
  const out = values.map((v) => {
    const r = redactValue(v, v.name, rules);
    count += r.count;
    return r.value;
  });
  return { values: out, count };
}

export function redactExpressions(
  expressions: RecordedExpression[],
  rules: RedactionRules,
): { expressions: RecordedExpression[]; count: number } {
  let count = 0;
  const out = expressions.map((e) => {
    if (!e.value) return e;
    const r = redactValue(e.value, e.expr, rules);
    count += r.count;
    return r.count ? { ...e, value: r.value } : e;
  });
  return { expressions: out, count };
}

/** Options whose value is a credential, in `--opt value` and `--opt=value` form. */
const SECRET_OPTIONS = [
  'creds',
  'password',
  'passwd',
  'pass',
  'token',
  'secret',
  'auth',
  'identity-token',
  'registry-token',
  'access-token',
  'refresh-token',
  'client-secret',
  'api-key',
  'private-key',
];

export interface MaskedCommand {
  text: string;
  /** What was masked, by kind (never the values): e.g. "--creds value", "URL password", "GITHUB_TOKEN=". */
  masked: string[];
}

/**
 * Masks what looks like a credential in a command line before it is written anywhere (the session header, the
 * terminal): the values of `--creds`/`--password`/`--token`/… options, the password in `user:pass@host` URLs,
 * `NAME_TOKEN=`/`_PASSWORD=`/`_SECRET=`/`_KEY=` assignments, `-u user:pass` and `Authorization:` headers.
 */
export function maskCommandLine(command: string): MaskedCommand {
  const masked: string[] = [];
  const mark = (what: string) => {
    if (!masked.includes(what)) masked.push(what);
  };
  // A shell word: a quoted string or a run of non-space characters (quotes inside are kept as they are).
  const word = String.raw`(?:'[^']*'|"(?:[^"\\]|\\.)*"|[^\s'"]+)+`;
  let text = command;
  const options = SECRET_OPTIONS.map((o) => o.replace(/-/g, '[-_]')).join('|');
  text = text.replace(
    new RegExp(String.raw`(^|\s)(--?(?:${options}))(=|\s+)(${word})`, 'gi'),
    (_m, pre, opt, sep) => {
      mark(`${opt.toLowerCase()} value`);
      return `${pre}${opt}${sep}<redacted>`;
    },
  );
  text = text.replace(
    new RegExp(String.raw`(^|\s)(-u|--user)(=|\s+)('?)([^\s:'"]+):(${word})`, 'g'),
    (_m, pre, opt, sep, q, user) => {
      mark(`${opt} password`);
      return `${pre}${opt}${sep}${q}${user}:<redacted>${q}`;
    },
  );
  text = text.replace(/([a-z][a-z0-9+.-]*:\/\/)([^\s/:@'"]+):([^\s/@'"]+)@/gi, (_m, scheme, user) => {
    mark('URL password');
    return `${scheme}${user}:<redacted>@`;
  });
  text = text.replace(
    new RegExp(
      String.raw`\b([A-Za-z_][A-Za-z0-9_]*(?:TOKEN|PASSWORD|PASSWD|SECRET|_KEY|CREDENTIALS?))=(${word})`,
      'g',
    ),
    (_m, name) => {
      mark(`${name}=`);
      return `${name}=<redacted>`;
    },
  );
  text = text.replace(/(authorization:\s*)(bearer\s+|basic\s+)?[^\s'"]+/gi, (_m, header, scheme) => {
    mark('Authorization header');
    return `${header}${scheme ?? ''}<redacted>`;
  });
  return { text, masked };
}
