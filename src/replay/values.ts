/**
 * Presentation helpers for recorded values, shared by the terminal views, the DAP adapter and the diff.
 * Pure functions over the session format's types; nothing here prints.
 */
import type { HitRecord, RecordedValue } from '../recording/format.js';

/** `*github.com/containerd/containerd/api/services/tasks/v1.CreateTaskRequest` → `*v1.CreateTaskRequest`. */
export function shortType(type: string): string {
  return type.replace(/(?:[\w.~-]+\/)+(?=[\w]+\.)/g, '');
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

/** `+12.4ms`, `+1.234s`: a hit's time since the session started. */
export function formatOffset(ms: number): string {
  if (ms < 1000) return `+${ms.toFixed(1)}ms`;
  if (ms < 60_000) return `+${(ms / 1000).toFixed(3)}s`;
  const minutes = Math.floor(ms / 60_000);
  return `+${minutes}m${((ms - minutes * 60_000) / 1000).toFixed(3)}s`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms.toFixed(1)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(3)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${((ms - minutes * 60_000) / 1000).toFixed(1)} s`;
}

/**
 * Delve shows a pointer (or interface) as one unnamed child holding the pointee; people read through it.
 * Returns the children to display for `value`, skipping that indirection.
 */
export function displayChildren(value: RecordedValue): RecordedValue[] {
  const children = value.children ?? [];
  if (
    children.length === 1 &&
    children[0]?.name === '' &&
    (value.kind === 'ptr' || value.kind === 'interface')
  ) {
    return children[0]?.children ?? [];
  }
  return children;
}

export function hasChildren(value: RecordedValue): boolean {
  return displayChildren(value).length > 0;
}

/** The one-line value text: what follows `=` in the tree, the DAP `value`, the diff's before/after. */
export function formatValue(value: RecordedValue): string {
  if (value.redacted) return '<redacted>';
  if (value.error !== undefined) return `<unreadable: ${value.error}>`;
  const parts: string[] = [];
  if (value.kind === 'string' && value.value !== undefined) {
    parts.push(JSON.stringify(value.value) + (value.truncated ? '…' : ''));
    if (value.truncated && value.len !== undefined)
      parts.push(`(${value.value.length} of ${value.len} bytes)`);
    return parts.join(' ');
  }
  if (value.value !== undefined) parts.push(value.value);
  const shown = displayChildren(value).length;
  if (
    value.len !== undefined &&
    (value.kind === 'slice' || value.kind === 'map' || value.kind === 'array' || value.kind === 'chan')
  ) {
    parts.push(value.cap !== undefined ? `len ${value.len}, cap ${value.cap}` : `len ${value.len}`);
  }
  if (value.truncated) {
    parts.push(
      value.len !== undefined && shown < value.len ? `(${shown} of ${value.len} loaded)` : '(not all loaded)',
    );
  }
  if (parts.length === 0 && shown > 0) parts.push('{…}');
  return parts.join(' ');
}

/** A short form for one-line previews (`--list`). */
export function previewValue(value: RecordedValue | undefined, error?: string, max = 28): string {
  if (error !== undefined || value === undefined) return '<error>';
  if (value.redacted) return '<redacted>';
  if (value.error !== undefined) return '<unreadable>';
  if (value.kind === 'string' && value.value !== undefined) {
    const text = value.value.length > max ? `${value.value.slice(0, max - 1)}…` : value.value;
    return JSON.stringify(text) + (value.truncated && value.value.length <= max ? '…' : '');
  }
  if (value.kind === 'map' || value.kind === 'slice' || value.kind === 'array')
    return `${value.kind}[${value.len ?? displayChildren(value).length}]`;
  if (value.value !== undefined)
    return value.value.length > max ? `${value.value.slice(0, max - 1)}…` : value.value;
  return '{…}';
}

/** `expr=value expr=value`, cut to `width` characters. */
export function previewExpressions(hit: HitRecord, width = 80): string {
  const text = hit.expressions.map((e) => `${e.expr}=${previewValue(e.value, e.error)}`).join(' ');
  return text.length > width ? `${text.slice(0, width - 1).replace(/…+$/, '')}…` : text;
}

/** Child path segment: `.Name`, `[0]`, `["key"]`; unnamed pointees add nothing. */
export function childPath(parent: string, name: string): string {
  if (name === '') return parent;
  if (name.startsWith('[')) return parent + name;
  if (name.startsWith('"')) return `${parent}[${name}]`;
  return parent === '' ? name : `${parent}.${name}`;
}

/**
 * Flattens the values of a hit into `path → leaf text` (for the diff). Pointer addresses are left out:
 * they differ between any two hits and say nothing about what changed.
 */
export function flattenHit(hit: HitRecord): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (path: string, value: RecordedValue) => {
    const children = displayChildren(value);
    if (children.length === 0) {
      out.set(path, formatValue(value) || shortType(value.type));
      return;
    }
    const own = value.kind === 'ptr' ? '' : formatValue(value);
    if (own !== '' && own !== '{…}') out.set(path, own);
    for (const child of children) walk(childPath(path, child.name), child);
  };
  for (const arg of hit.args) walk(childPath('args', arg.name), arg);
  for (const local of hit.locals) walk(childPath('locals', local.name), local);
  for (const e of hit.expressions) {
    const path = `expr[${e.expr}]`;
    if (e.value === undefined) out.set(path, `<error: ${e.error ?? 'no value'}>`);
    else walk(path, e.value);
  }
  return out;
}
