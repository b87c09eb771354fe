/**
 * The replay "debuggee": a cursor over a recorded session that moves forward and backward between hits,
 * stopping where the editor's breakpoints say. It knows nothing of VS Code or the Debug Adapter Protocol
 * (dapSession.ts translates); it speaks in hits, goroutines, frames and local paths.
 *
 * Events are emitted on a later turn of the event loop, so an adapter can send the response to the
 * request that moved the cursor before the `stopped` event that the move causes.
 */
import { EventEmitter } from 'node:events';
import { normalize } from 'node:path';
import type { HitRecord, RecordedFrame } from '../recording/format.js';
import type { HitMeta } from '../recording/hitMeta.js';
import { openRecording, type RecordingFile } from '../recording/reader.js';
import { shortFunction } from './values.js';

/** vscode-go's convention: `from` is the local path, `to` the path recorded on the node. */
export interface SubstitutePath {
  from: string;
  to: string;
}

export interface ReplaySource {
  session: string;
  /** Local containerd checkout: recorded `…/github.com/containerd/containerd/<rest>` maps to `<sourceRoot>/<rest>`. */
  sourceRoot?: string;
  substitutePath?: SubstitutePath[];
}

export type StopReason = 'entry' | 'breakpoint' | 'step';

export interface StoppedInfo {
  reason: StopReason;
  hit: HitRecord;
  /** Position of the hit in the session (0-based). */
  index: number;
  total: number;
}

export interface ReplayRuntimeEvents {
  stopped: [StoppedInfo];
  /** The cursor moved past the last hit: the recording is over. */
  ended: [{ hits: number }];
  output: [{ text: string; category: 'console' | 'important' }];
}

export interface ReplayFrame {
  /** 0 is the innermost frame (the hit location). */
  level: number;
  function: string;
  shortName: string;
  /** Local path after substitutePath/sourceRoot mapping. */
  file: string;
  /** Path as recorded on the node. */
  remoteFile: string;
  line: number;
  /** The hit this frame comes from. */
  seq: number;
}

/** Thread ids of a process's goroutines start at its slot times this (see ReplayRuntime.threadOf). */
const THREAD_GROUP = 1_000_000_000;

export interface ReplayThread {
  id: number;
  name: string;
}

export interface BreakpointResult {
  line: number;
  verified: boolean;
}

const CONTAINERD_MODULE = '/github.com/containerd/containerd/';

export function mapRemoteToLocal(remote: string, source: Omit<ReplaySource, 'session'>): string {
  // Longest prefix first, so a mapping for a subtree wins over one for its parent.
  const rules = [...(source.substitutePath ?? [])].sort((a, b) => b.to.length - a.to.length);
  for (const rule of rules) {
    const to = rule.to.replace(/\/+$/, '');
    if (remote === to || remote.startsWith(`${to}/`))
      return rule.from.replace(/\/+$/, '') + remote.slice(to.length);
  }
  if (source.sourceRoot !== undefined) {
    const at = remote.lastIndexOf(CONTAINERD_MODULE);
    if (at >= 0 && !remote.includes('/vendor/', at)) {
      return `${source.sourceRoot.replace(/\/+$/, '')}/${remote.slice(at + CONTAINERD_MODULE.length)}`;
    }
  }
  return remote;
}

export class ReplayRuntime extends EventEmitter<ReplayRuntimeEvents> {
  private file: RecordingFile | undefined;
  private source: Omit<ReplaySource, 'session'> = {};
  private index = -1;
  /** Local path → lines, as set by the editor. Empty: every hit stops. */
  private readonly breakpoints = new Map<string, Set<number>>();
  private readonly cache = new Map<number, HitRecord>();

  /** Opens the session (throws the reader's input errors). */
  load(source: ReplaySource): void {
    this.close();
    this.file = openRecording(source.session, { hitMeta: true });
    this.source = { sourceRoot: source.sourceRoot, substitutePath: source.substitutePath };
    this.index = -1;
  }

  get session(): RecordingFile {
    if (!this.file) throw new Error('no session loaded');
    return this.file;
  }

  get hitCount(): number {
    return this.file?.hitCount ?? 0;
  }

  /** 0-based position of the current hit; -1 before the start, hitCount after the end. */
  get position(): number {
    return this.index;
  }

  get current(): HitRecord | undefined {
    return this.index >= 0 && this.index < this.hitCount ? this.hitAt(this.index) : undefined;
  }

  toLocalPath(remote: string): string {
    return mapRemoteToLocal(remote, this.source);
  }

  /** Replaces the breakpoints of one local file. */
  setBreakpoints(localPath: string, lines: readonly number[]): BreakpointResult[] {
    const key = normalize(localPath);
    if (lines.length === 0) this.breakpoints.delete(key);
    else this.breakpoints.set(key, new Set(lines));
    // Every requested line is accepted: a recording cannot tell where code could stop, only where it did.
    return lines.map((line) => ({ line, verified: true }));
  }

  /** Whether a hit stops under the current editor breakpoints: its location or any frame matches. */
  stopsAt(hit: HitRecord): boolean {
    if (this.breakpoints.size === 0) return true;
    const matches = (file: string, line: number) =>
      this.breakpoints.get(normalize(this.toLocalPath(file)))?.has(line) ?? false;
    return matches(hit.location.file, hit.location.line) || hit.stack.some((f) => matches(f.file, f.line));
  }

  /** Begins the replay: stop on the first hit (stopOnEntry) or run to the first hit that matches. */
  start(stopOnEntry: boolean): void {
    this.index = -1;
    if (stopOnEntry && this.hitCount > 0) this.stopAt(0, 'entry');
    else this.run(1);
  }

  continue(): void {
    this.run(1);
  }

  reverseContinue(): void {
    this.run(-1);
  }

  /** One hit forward, whatever the breakpoints. */
  next(): void {
    if (this.index + 1 >= this.hitCount) this.finish();
    else this.stopAt(this.index + 1, 'step');
  }

  /** One hit back, whatever the breakpoints; at the first hit it stays there. */
  stepBack(): void {
    if (this.hitCount === 0) this.finish();
    else if (this.index <= 0) this.stopAt(0, 'entry');
    else this.stopAt(Math.min(this.index, this.hitCount) - 1, 'step');
  }

  /** Jumps to hit `seq` (1-based). */
  goto(seq: number): void {
    this.stopAt(this.session.indexOfSeq(seq), 'step');
  }

  private run(direction: 1 | -1): void {
    const total = this.hitCount;
    for (let i = this.index + direction; i >= 0 && i < total; i += direction) {
      if (this.stopsAt(this.hitAt(i))) {
        this.stopAt(i, 'breakpoint');
        return;
      }
    }
    if (direction === 1) this.finish();
    else if (total > 0) this.stopAt(0, 'entry');
  }

  private stopAt(index: number, reason: StopReason): void {
    this.index = index;
    const hit = this.hitAt(index);
    const info: StoppedInfo = { reason, hit, index, total: this.hitCount };
    setImmediate(() => {
      this.emit('output', {
        category: 'console',
        text: `hit ${hit.seq}/${this.hitCount} ${hit.breakpoint.name} goroutine ${hit.goroutine.id} +${hit.t.toFixed(1)}ms\n`,
      });
      this.emit('stopped', info);
    });
  }

  private finish(): void {
    this.index = this.hitCount;
    const hits = this.hitCount;
    setImmediate(() => this.emit('ended', { hits }));
  }

  private hitAt(index: number): HitRecord {
    let hit = this.cache.get(index);
    if (!hit) {
      hit = this.session.readHitAt(index);
      // A handful of parsed hits covers stepping back and forth; the file stays the store.
      if (this.cache.size >= 64) this.cache.delete(this.cache.keys().next().value as number);
      this.cache.set(index, hit);
    }
    return hit;
  }

  private get meta(): HitMeta {
    return this.session.meta();
  }

  /**
   * The DAP thread of hit i: its goroutine, or in a recording that followed shims, its process and goroutine
   * (goroutine ids repeat across processes). Threads of one process form a group: ids PROCESS·10⁹ + goroutine,
   * PROCESS counting processes in the order they first hit, names led by the process ("shim 4410 · goroutine 7").
   */
  threadOf(i: number): number {
    const meta = this.meta;
    const g = meta.goroutine[i] ?? 0;
    const pid = meta.pid[i] ?? 0;
    if (pid === 0) return g;
    let slot = this.pidSlots.get(pid);
    if (slot === undefined) {
      slot = this.pidSlots.size + 1;
      this.pidSlots.set(pid, slot);
    }
    return slot * THREAD_GROUP + g;
  }

  private pidSlots = new Map<number, number>();

  /** The thread a hit stopped on (see threadOf). */
  threadOfHit(hit: HitRecord): number {
    return this.threadOf(this.session.indexOfSeq(hit.seq));
  }

  /** Goroutines (per process, when several) seen up to and including the current hit, in order of first appearance. */
  threads(): ReplayThread[] {
    if (!this.file) return [];
    const meta = this.meta;
    const last = Math.min(this.index, this.hitCount - 1);
    const seen = new Map<number, number>();
    for (let i = 0; i <= last; i++) seen.set(this.threadOf(i), i);
    return [...seen.entries()]
      .sort(([a], [b]) => a - b)
      .map(([id, lastIndex]) => {
        const bp = meta.breakpoints[meta.breakpoint[lastIndex] ?? 0];
        const pid = meta.pid[lastIndex] ?? 0;
        const binary = (meta.binaries.get(pid) ?? '').split('/').pop() ?? '';
        const process = pid
          ? `${binary.startsWith('containerd-shim') ? 'shim' : binary || 'process'} ${pid} · `
          : '';
        return {
          id,
          name: `${process}goroutine ${meta.goroutine[lastIndex] ?? 0}${bp ? ` (${bp.name})` : ''}`,
        };
      });
  }

  /** The latest hit at or before the cursor on thread `id` (see threadOf). */
  hitForGoroutine(id: number): HitRecord | undefined {
    if (!this.file) return undefined;
    for (let i = Math.min(this.index, this.hitCount - 1); i >= 0; i--) {
      if (this.threadOf(i) === id) return this.hitAt(i);
    }
    return undefined;
  }

  /** The recorded stack of goroutine `id` as of its latest hit, paths mapped to local ones. */
  stack(id: number): ReplayFrame[] {
    const hit = this.hitForGoroutine(id);
    if (!hit) return [];
    const frames: RecordedFrame[] = hit.stack.length > 0 ? hit.stack : [hit.location];
    return frames.map((f, level) => ({
      level,
      function: f.function,
      shortName: shortFunction(f.function),
      file: this.toLocalPath(f.file),
      remoteFile: f.file,
      line: f.line,
      seq: hit.seq,
    }));
  }

  /** A hit by seq (for frames of other goroutines, whose variables come from their own latest hit). */
  hit(seq: number): HitRecord {
    return this.hitAt(this.session.indexOfSeq(seq));
  }

  close(): void {
    this.file?.close();
    this.file = undefined;
    this.cache.clear();
  }
}
