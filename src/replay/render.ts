/**
 * The one set of rendering rules for a recorded hit, shared by every view: the live hit lines of `attach`,
 * `replay --list` / `--goto` / `--diff` / `--stats`, the DAP adapter and the HTML timeline.
 *
 * - A hit reads top down by what matters: recorded expressions, parameters, the receiver (collapsed unless
 *   asked), locals, then the stack.
 * - Results are not parameters: Delve lists a function's results (`~r0`, named ones) among its arguments, and at
 *   the entry they are garbage. The recorder drops them; older recordings still hold `~r…`, hidden here.
 * - Values have one one-line text (`valueText`, after `=` in a tree) and one inline form (`inlineValue`, Go-like,
 *   for previews and the table's columns), so `nil` reads `nil` everywhere.
 *
 * The HTML page runs these same functions: they are serialised into it with Function.prototype.toString (see
 * htmlReport.ts), so every function here must be self-contained: no imports at run time, no module-level
 * values, only calls to other functions of this file listed in RENDER_FUNCTIONS.
 */
import type { HitRecord, RecordedExpression, RecordedFrame, RecordedValue } from '../recording/format.js';

/** `*github.com/containerd/containerd/api/services/tasks/v1.CreateTaskRequest` → `*v1.CreateTaskRequest`. */
export function shortType(type: string): string {
  return type.replace(/(?:[\w.~-]+\/)+(?=[\w-]+\.)/g, '');
}

/** `github.com/containerd/containerd/services/tasks.(*local).Create` → `tasks.(*local).Create`. */
export function shortFunction(fn: string): string {
  const slash = fn.lastIndexOf('/');
  return slash >= 0 ? fn.slice(slash + 1) : fn;
}

export function baseName(file: string): string {
  const slash = file.lastIndexOf('/');
  return slash >= 0 ? file.slice(slash + 1) : file;
}

/** Go's names for unnamed (`~r0`) and blank (`~b0`) results. */
export function isResultName(name: string): boolean {
  return /^~[rb]\d+$/.test(name);
}

/**
 * The receiver's type name when `fn` is a method (`pkg.(*local).Create` → `local`, `pkg.T.M` → `T`), else ''.
 * Closures (`pkg.F.func1`, `pkg.(*T).M.func2`) and method values (`…-fm`) have no receiver argument.
 */
export function receiverType(fn: string): string {
  const name = shortFunction(fn).replace(/\[[^\]]*\]/g, '');
  const m = /^[^.]+\.(?:\(\*([\w]+)\)|([\w]+))\.([\w]+)$/.exec(name);
  if (!m || /^func\d+$/.test(m[3] ?? '')) return '';
  return m[1] ?? m[2] ?? '';
}

/** Whether `arg` (a hit's first argument) is the receiver of the method at `fn`. */
export function isReceiver(fn: string, arg: RecordedValue): boolean {
  const type = receiverType(fn);
  if (type === '' || isResultName(arg.name)) return false;
  const argType = arg.type.replace(/\[[^\]]*\]/g, '').replace(/^\*/, '');
  const dot = argType.lastIndexOf('.');
  return (dot >= 0 ? argType.slice(dot + 1) : argType) === type;
}

/** Values that are context plumbing (deadline, cancel, gRPC metadata): collapsed like the receiver. */
export function isContextValue(value: RecordedValue): boolean {
  return value.type === 'context.Context';
}

/** gogo/protobuf's bookkeeping fields, shown only when they hold something. */
export function isEmptyProtobufField(value: RecordedValue): boolean {
  if (!/^XXX_/.test(value.name)) return false;
  if (value.kind === 'struct') return (value.children ?? []).length === 0;
  return value.value === 'nil' || value.value === '0' || value.len === 0;
}

/**
 * The children to display under `value`. Delve shows a pointer (or an interface) as one child holding the
 * pointee; people read through it, so the pointee's own children are returned instead.
 */
export function displayChildren(value: RecordedValue): RecordedValue[] {
  let shown = value;
  for (let hops = 0; hops < 4; hops++) {
    const cs = shown.children ?? [];
    const only = cs[0];
    if (cs.length !== 1 || only === undefined) break;
    if (shown.kind === 'ptr' && (only.name === '' || only.name.charAt(0) === '*')) {
      if ((only.children ?? []).length === 0) break;
      shown = only;
    } else if (shown.kind === 'interface' && (only.kind === 'ptr' || (only.children ?? []).length > 0)) {
      shown = only;
    } else break;
  }
  return (shown.children ?? []).filter((c) => !isEmptyProtobufField(c));
}

/** The channel's length and capacity as text, or '' when the recording could not know them. */
export function chanSizes(value: RecordedValue): string {
  // Recordings made before the fix carry the runtime.hchan's field count as `len` and 0 as `cap`; a real
  // channel never holds more than its capacity, so that pair is recognisable and left out.
  if (value.len === undefined || value.cap === undefined || value.len > value.cap) return '';
  return `len ${value.len}, cap ${value.cap}`;
}

/** Whether a recorded value is Go's nil (pointer, map, slice, chan, func, interface). */
export function isNil(value: RecordedValue): boolean {
  return value.value === 'nil' || (value.kind === 'chan' && value.value === '0x0');
}

/** The one-line text after `=` in a tree, the DAP `value`, the diff's before/after. '' for a plain struct. */
export function valueText(value: RecordedValue): string {
  if (value.redacted) return '<redacted>';
  if (value.error !== undefined) return `<unreadable: ${value.error}>`;
  if (isNil(value)) return 'nil';
  const kind = value.kind;
  if (kind === 'string' && value.value !== undefined) {
    if (!value.truncated) return JSON.stringify(value.value);
    const of = value.len !== undefined ? ` (${value.value.length} of ${value.len} bytes)` : '';
    return `${JSON.stringify(value.value)}…${of}`;
  }
  const parts: string[] = [];
  const shown = displayChildren(value).length;
  if (kind === 'interface' && value.value !== undefined) parts.push(shortType(value.value));
  else if (kind === 'chan') {
    if (value.value !== undefined) parts.push(value.value);
    const sizes = chanSizes(value);
    if (sizes !== '') parts.push(sizes);
  } else if (kind === 'func' && value.value !== undefined) parts.push(shortFunction(value.value));
  else if (value.value !== undefined && value.value !== '') parts.push(value.value);
  if (kind === 'slice' || kind === 'array' || kind === 'map') {
    if (value.len !== undefined)
      parts.push(
        kind === 'slice' && value.cap !== undefined
          ? `len ${value.len}, cap ${value.cap}`
          : `len ${value.len}`,
      );
  }
  if (value.truncated && kind !== 'chan') {
    if (value.len !== undefined && shown < value.len && kind !== 'struct')
      parts.push(`(${shown} of ${value.len} loaded)`);
    else if (shown === 0) parts.push(kind === 'ptr' ? '(not followed)' : '(not loaded)');
    else parts.push('(not all loaded)');
  }
  return parts.join(' ');
}

/**
 * A Go-like single line (`map["app":"demo"]`, `[]`, `{ID:"c1" …}`, `&{…}`), at most `max` characters, for
 * previews: the live hit lines, `--list`, the HTML table, what a bare filter word searches.
 */
export function inlineValue(value: RecordedValue, max: number): string {
  const limit = Math.max(1, max);
  let out = '';
  let full = false;
  const put = (text: string) => {
    if (full) return;
    if (out.length + text.length > limit) {
      out += text.slice(0, Math.max(0, limit - out.length - 1));
      out += '…';
      full = true;
    } else out += text;
  };
  const walk = (v: RecordedValue, depth: number) => {
    if (full) return;
    if (v.redacted) return put('<redacted>');
    if (v.error !== undefined) return put('<unreadable>');
    if (isNil(v)) return put('nil');
    const cs = displayChildren(v);
    switch (v.kind) {
      case 'string':
        return put(JSON.stringify(v.value ?? '') + (v.truncated ? '…' : ''));
      case 'map':
      case 'slice':
      case 'array': {
        const open = v.kind === 'map' ? 'map[' : '[';
        if (cs.length === 0 && (v.len ?? 0) > 0) return put(`${open}len ${v.len}]`);
        put(open);
        cs.forEach((c, i) => {
          if (i > 0) put(' ');
          if (v.kind === 'map') put(`${c.name.replace(/^\[(.*)\]$/, '$1')}:`);
          walk(c, depth + 1);
        });
        if (v.truncated || (v.len !== undefined && cs.length < v.len)) put(cs.length ? ' …' : '…');
        return put(']');
      }
      case 'chan': {
        const sizes = chanSizes(v);
        return put(sizes ? `chan(${sizes})` : 'chan');
      }
      case 'func':
        return put(shortFunction(v.value ?? 'func'));
      case 'ptr':
      case 'interface':
      case 'struct': {
        if (cs.length === 0) {
          if (v.kind === 'ptr') return put(v.value ?? '0x?');
          if (v.kind === 'interface') return put(shortType(v.value ?? 'interface'));
          return put(v.truncated ? '{…}' : '{}');
        }
        if (v.kind === 'ptr') put('&');
        const only = cs[0];
        // A pointer to a scalar: `&5`, not `&{*p:5}`.
        if (cs.length === 1 && only && (only.name === '' || only.name.charAt(0) === '*'))
          return walk(only, depth + 1);
        if (depth >= 3) return put('{…}');
        put('{');
        cs.forEach((c, i) => {
          if (i > 0) put(' ');
          put(`${c.name}:`);
          walk(c, depth + 1);
        });
        if (v.truncated) put(' …');
        return put('}');
      }
      default:
        return put(v.value ?? '');
    }
  };
  walk(value, 0);
  return out;
}

/** A recorded expression's inline form; '<error: …>' when Delve could not evaluate it. */
export function expressionInline(e: RecordedExpression, max: number): string {
  if (e.value === undefined) return `<error: ${e.error ?? 'no value'}>`;
  return inlineValue(e.value, max);
}

/** `expr=value expr=value` for one hit, each value at most `each` characters. */
export function expressionsLine(hit: HitRecord, each: number, separator: string): string {
  return hit.expressions.map((e) => `${e.expr}=${expressionInline(e, each)}`).join(separator);
}

/** How many lines a value's tree takes when fully expanded (to say what a collapsed entry hides). */
export function treeLines(value: RecordedValue): number {
  let n = 1;
  for (const c of displayChildren(value)) n += treeLines(c);
  return n;
}

export type SectionId = 'expressions' | 'results' | 'parameters' | 'receiver' | 'locals';

export interface SectionEntry {
  label: string;
  value?: RecordedValue;
  /** A recorded expression that Delve could not evaluate. */
  error?: string;
  /** Shown as one line unless expanded (the receiver, context plumbing). */
  collapsed: boolean;
}

export interface HitSection {
  id: SectionId;
  title: string;
  entries: SectionEntry[];
}

/**
 * A hit's values in reading order. `expand` names entries to show whole ('receiver', a parameter's name, or
 * 'all'); everything else that is noise by default stays collapsed. Old recordings' `~r` results are dropped.
 */
export function hitSections(hit: HitRecord, expand: readonly string[]): HitSection[] {
  const all = expand.indexOf('all') >= 0;
  const wants = (name: string) => all || expand.indexOf(name) >= 0;
  const args = hit.args.filter((a) => !isResultName(a.name));
  const first = args[0];
  const receiver = first !== undefined && isReceiver(hit.location.function, first) ? first : undefined;
  const params = receiver ? args.slice(1) : args;
  // Context plumbing goes after the parameters that carry the request.
  const ordered = params.filter((p) => !isContextValue(p)).concat(params.filter((p) => isContextValue(p)));
  return [
    {
      id: 'expressions',
      title: 'recorded expressions',
      entries: hit.expressions.map((e) => {
        const entry: SectionEntry = { label: e.expr, collapsed: false };
        if (e.value !== undefined) entry.value = e.value;
        else entry.error = e.error ?? 'no value';
        return entry;
      }),
    },
    {
      // Only at a return point (the recorder never records results anywhere else): empty otherwise.
      id: 'results',
      title: 'results',
      entries: (hit.results ?? []).map((r) => ({ label: r.name, value: r, collapsed: false })),
    },
    {
      id: 'parameters',
      title: 'parameters',
      entries: ordered.map((p) => ({
        label: p.name,
        value: p,
        collapsed: isContextValue(p) && !wants(p.name),
      })),
    },
    {
      id: 'receiver',
      title: 'receiver',
      entries: receiver
        ? [{ label: receiver.name, value: receiver, collapsed: !wants('receiver') && !wants(receiver.name) }]
        : [],
    },
    {
      id: 'locals',
      title: 'locals',
      entries: hit.locals
        .filter((l) => !isResultName(l.name))
        .map((l) => ({ label: l.name, value: l, collapsed: false })),
    },
  ];
}

/** One stack frame as a line: `tasks.(*local).Create  local.go:157`. */
export function frameText(frame: RecordedFrame): string {
  return `${shortFunction(frame.function)}  ${baseName(frame.file)}:${frame.line}`;
}

/**
 * The functions the HTML page receives, in an order where each only calls functions defined anywhere in the
 * list (function declarations are hoisted, so order does not matter for correctness, only for reading).
 */
export const RENDER_FUNCTIONS: ReadonlyArray<(...args: never[]) => unknown> = [
  shortType,
  shortFunction,
  baseName,
  isResultName,
  receiverType,
  isReceiver,
  isContextValue,
  isEmptyProtobufField,
  displayChildren,
  chanSizes,
  isNil,
  valueText,
  inlineValue,
  expressionInline,
  expressionsLine,
  treeLines,
  hitSections,
  frameText,
];
