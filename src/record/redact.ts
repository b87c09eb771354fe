/**
 * Credentials never reach a session file by default. Two kinds of rule:
 * - a set's own `redact` paths (e.g. `r.Auth` in image-pull): always applied, even with --no-redact;
 * - field names that hold secrets in containerd's and CRI's types (Auth, Password, IdentityToken,
 *   RegistryToken, …): applied unless the user opts out with --no-redact.
 * A redacted value keeps its name, type and kind (so the shape of the request stays visible) and loses
 * its value and children.
 */
import { isRedacted } from '../breakpoints/sets.js';
import type { RecordedExpression, RecordedValue } from './sessionFormat.js';

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

function childPath(parent: string, child: RecordedValue, index: number, parentKind: string): string {
  // Pointers and interfaces wrap their target in one unnamed (or "*name") child: same path.
  if (parentKind === 'ptr' || parentKind === 'interface' || child.name === '' || child.name.startsWith('*'))
    return parent;
  if (parentKind === 'slice' || parentKind === 'array') return `${parent}[${index}]`;
  if (parentKind === 'map') return `${parent}[${child.name}]`;
  return `${parent}.${child.name}`;
}

function lastField(path: string): string {
  const m = /([A-Za-z_][A-Za-z0-9_]*)\]?$/.exec(path);
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
