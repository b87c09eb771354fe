/**
 * Delve's wire types → ctrdbg's session types. Pure functions: the recorder calls them so that replay never sees a
 * Delve type and a recording outlives any Delve version.
 */

import type {
  Breakpoint,
  BreakpointInfo,
  DebuggerState,
  Goroutine,
  Stackframe,
  Thread,
  Variable,
} from '../delve/types.js';
import { ReflectKind, reflectKindNames, VariableFlags } from '../delve/types.js';
import type { RecordedFrame, RecordedValue } from '../recording/format.js';

/** Lower-case Go kind name of a Delve variable ("struct", "ptr", "string", …). */
export function kindName(kind: number): string {
  return reflectKindNames[kind] ?? `kind(${kind})`;
}

export interface ConvertOptions {
  /** Overrides the variable's own name (Delve names `Variables` entries by their expression). */
  name?: string;
}

/** Converts one Delve variable, recursively. */
export function convertVariable(v: Variable, options: ConvertOptions = {}): RecordedValue {
  const out: RecordedValue = {
    name: options.name ?? v.name,
    type: v.type || v.realType || '',
    kind: kindName(v.kind),
  };
  if (v.unreadable) {
    out.error = v.unreadable;
    return out;
  }
  const children = v.children ?? [];
  switch (v.kind) {
    case ReflectKind.String: {
      const text = stringValue(v);
      out.value = text.value;
      out.len = v.len;
      if (text.bytes < v.len) out.truncated = true;
      return out;
    }
    case ReflectKind.UnsafePointer: {
      out.value = addressText(v.value) ?? hex(v.base || v.addr);
      return out;
    }
    case ReflectKind.Ptr: {
      // Delve puts the pointer's address (decimal) in `value` and the pointee in children[0].
      const target = children[0];
      const address = addressText(v.value) ?? (target ? hex(target.addr) : undefined);
      if (address === '0x0' || (target && target.addr === 0)) {
        out.value = 'nil';
        return out;
      }
      out.value = address ?? '';
      // No pointee, or onlyAddr: Delve did not follow the pointer (recursion limit or FollowPointers false).
      if (!target || target.onlyAddr) out.truncated = true;
      else out.children = [convertVariable(target, { name: `*${out.name}` })];
      return out;
    }
    case ReflectKind.Interface: {
      const inner = children[0];
      if (
        !inner ||
        (inner.kind === ReflectKind.Invalid && inner.addr === 0) ||
        (v.addr === 0 && v.value === 'nil')
      ) {
        out.value = 'nil';
        return out;
      }
      out.value = inner.type || v.value;
      out.children = [convertVariable(inner, { name: inner.name || 'data' })];
      return out;
    }
    case ReflectKind.Slice:
    case ReflectKind.Array: {
      out.len = v.len;
      if (v.kind === ReflectKind.Slice) out.cap = v.cap;
      if (v.kind === ReflectKind.Slice && v.base === 0 && v.len === 0) out.value = 'nil';
      out.children = children.map((child, i) => convertVariable(child, { name: `[${i}]` }));
      if (children.length < v.len) out.truncated = true;
      return out;
    }
    case ReflectKind.Map: {
      out.len = v.len;
      if (v.base === 0 && v.len === 0) out.value = 'nil';
      const entries: RecordedValue[] = [];
      for (let i = 0; i + 1 < children.length; i += 2) {
        const key = children[i]!;
        const value = children[i + 1]!;
        entries.push(convertVariable(value, { name: `[${summarize(key)}]` }));
      }
      out.children = entries;
      if (entries.length < v.len) out.truncated = true;
      return out;
    }
    case ReflectKind.Struct: {
      out.children = children.map((child) => convertVariable(child));
      // Delve leaves `children` empty when it reached MaxVariableRecurse; `len` is the number of fields.
      if (children.length < v.len) out.truncated = true;
      return out;
    }
    case ReflectKind.Chan: {
      // Delve loads a channel as its runtime.hchan: `base` is the hchan's address (0 for a nil channel),
      // `len` is the hchan's field count (11 in Go 1.19), and the fields are the children. The channel's
      // length and capacity are the fields qcount and dataqsiz (Delve's own printer reads children 0 and 1).
      if (v.base === 0) {
        out.value = 'nil';
        return out;
      }
      out.value = hex(v.base);
      const field = (name: string) => children.find((c) => c.name === name);
      const qcount = Number(field('qcount')?.value);
      const dataqsiz = Number(field('dataqsiz')?.value);
      if (Number.isSafeInteger(qcount) && Number.isSafeInteger(dataqsiz)) {
        out.len = qcount;
        out.cap = dataqsiz;
      } else {
        out.truncated = true;
      }
      const closed = field('closed')?.value;
      if (closed !== undefined && closed !== '' && closed !== '0') out.value += ' closed';
      return out;
    }
    case ReflectKind.Func: {
      // Delve stores the function's name in `value`; an empty one with base 0 is a nil func.
      out.value = v.value || (v.base === 0 ? 'nil' : hex(v.base));
      return out;
    }
    default: {
      out.value = v.value;
      if (children.length > 0) out.children = children.map((child) => convertVariable(child));
      return out;
    }
  }
}

export function convertVariables(vars: readonly Variable[] | null | undefined): RecordedValue[] {
  return (vars ?? []).map((v) => convertVariable(v));
}

/** Whether Delve flagged `v` as one of the function's results (listed among its arguments). */
export function isReturnArgument(v: Variable): boolean {
  return (v.flags & VariableFlags.ReturnArgument) !== 0;
}

/**
 * A function's parameters at a breakpoint, without its results: Delve lists named and unnamed results
 * (`~r0`, `err`) among the arguments, and at the function's entry they are whatever the stack held.
 */
export function convertArguments(vars: readonly Variable[] | null | undefined): RecordedValue[] {
  return (vars ?? []).filter((v) => !isReturnArgument(v)).map((v) => convertVariable(v));
}

/**
 * The value at `path` (`.Field`, `[index]`, `["key"]` steps) under a loaded variable, stepping through pointers
 * and interfaces as Go's selectors do; a string saying why when the path is not there (or was not loaded that
 * deep). Used for expressions over results, which Delve cannot evaluate itself (`~r0.Process.Args`).
 */
export function selectPath(root: Variable, path: string): Variable | string {
  const steps = [...path.matchAll(/\.([A-Za-z_]\w*)|\[(\d+)\]|\["([^"]*)"\]|(\S)/g)];
  let v = root;
  for (const [step, field, index, key, junk] of steps) {
    if (junk !== undefined)
      return `cannot read "${path}" from ${root.name}: expected .Field, [index] or ["key"]`;
    v = through(v);
    if (v.unreadable) return v.unreadable;
    if (v.kind === ReflectKind.Ptr || v.kind === ReflectKind.Interface) {
      const before = `${root.name}${path.slice(0, path.indexOf(step))}`;
      const nil = v.kind === ReflectKind.Interface || v.value === '0' || v.children?.[0]?.addr === 0;
      return nil ? `${before} is nil` : `${before} was not loaded that deep (raise loadResults: {depth: …})`;
    }
    const children = v.children ?? [];
    let next: Variable | undefined;
    if (field !== undefined && v.kind === ReflectKind.Struct) next = children.find((c) => c.name === field);
    else if (index !== undefined && (v.kind === ReflectKind.Slice || v.kind === ReflectKind.Array))
      next = children[Number(index)];
    else if (key !== undefined && v.kind === ReflectKind.Map)
      for (let i = 0; i + 1 < children.length; i += 2)
        if (children[i]?.kind === ReflectKind.String && stringValue(children[i]!).value === key)
          next = children[i + 1];
    if (!next) {
      const loaded = children.length > 0 || v.len === 0;
      return loaded
        ? `${root.name}${path.slice(0, path.indexOf(step) + step.length)}: no such ${field !== undefined ? 'field' : index !== undefined ? 'element' : 'key'} in ${v.type}`
        : `${root.name}${path.slice(0, path.indexOf(step))} was not loaded that deep (raise loadResults: {depth: …})`;
    }
    v = next;
  }
  return v;
}

/** A pointer's pointee and an interface's value, the way Go's selectors see through them. */
function through(v: Variable): Variable {
  let at = v;
  while ((at.kind === ReflectKind.Ptr || at.kind === ReflectKind.Interface) && at.children?.[0]) {
    const inner = at.children[0];
    // A nil pointer's or interface's child has address 0; one Delve did not follow is only an address.
    if (inner.addr === 0 || inner.onlyAddr) break;
    at = inner;
  }
  return at;
}

/** A short one-line rendering, used for map keys. */
export function summarize(v: Variable): string {
  if (v.unreadable) return `<unreadable: ${v.unreadable}>`;
  if (v.kind === ReflectKind.String) return JSON.stringify(stringValue(v).value);
  if (v.value !== '') return v.value;
  if (v.kind === ReflectKind.Ptr && v.children?.[0]) return hex(v.children[0].addr);
  return v.type || kindName(v.kind);
}

export function convertFrame(frame: Stackframe): RecordedFrame {
  const out: RecordedFrame = {
    function: frame.function?.name ?? '???',
    file: frame.file,
    line: frame.line,
  };
  if (frame.pc) out.pc = frame.pc;
  return out;
}

export function convertStack(frames: readonly Stackframe[] | null | undefined): RecordedFrame[] {
  return (frames ?? []).map(convertFrame);
}

/** One thread stopped at a breakpoint, with what Delve gathered there. */
export interface StoppedThread {
  thread: Thread;
  breakpoint: Breakpoint;
  info: BreakpointInfo;
  goroutine: Goroutine | undefined;
}

/**
 * Every thread the state reports at a user breakpoint. Several threads can stop at once under concurrent callers,
 * so looking only at `currentThread` loses hits. Internal breakpoints (negative ids: unrecovered-panic,
 * runtime-fatal-throw) are returned too; the caller decides what a panic stop means.
 */
export function stoppedThreads(state: DebuggerState): StoppedThread[] {
  const out: StoppedThread[] = [];
  const seen = new Set<number>();
  const threads = [...(state.Threads ?? [])];
  if (state.currentThread) threads.push(state.currentThread);
  for (const thread of threads) {
    if (!thread.breakPoint || seen.has(thread.id)) continue;
    seen.add(thread.id);
    const info = thread.breakPointInfo ?? {};
    out.push({ thread, breakpoint: thread.breakPoint, info, goroutine: info.goroutine });
  }
  return out;
}

/** Delve renders pointer values as decimal addresses; show them as Go does. */
function addressText(value: string): string | undefined {
  if (!/^\d+$/.test(value)) return undefined;
  return `0x${BigInt(value).toString(16)}`;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/**
 * The string's text and how many bytes of it were loaded. Delve sends `StringValueBytes` (base64, as Go marshals
 * []byte) when the value is not valid UTF-8; those bytes are rendered with \xNN escapes rather than lost.
 */
function stringValue(v: Variable): { value: string; bytes: number } {
  if (v.StringValueBytes) {
    const raw = Buffer.from(v.StringValueBytes, 'base64');
    return { value: escapeInvalidUtf8(raw), bytes: raw.length };
  }
  return { value: v.value, bytes: Buffer.byteLength(v.value, 'utf8') };
}

function escapeInvalidUtf8(raw: Buffer): string {
  const decoded = raw.toString('utf8');
  if (!decoded.includes('\uFFFD')) return decoded;
  let out = '';
  for (const byte of raw)
    out += byte < 0x80 ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`;
  return out;
}
