/**
 * Per-hit metadata (seq, time, goroutine, breakpoint, location) for the list, filter, summary and DAP views,
 * in typed arrays with interned breakpoints and locations: taken from each hit line's canonical prefix without
 * parsing the line's values (hitLine.ts), parsed whole only when a line has another shape.
 */
import { readSync } from 'node:fs';
import { CHUNK_BYTES, META_PREFIX_BYTES } from './fileIo.js';
import type { HitRecord } from './format.js';
import { parseHitPrefix } from './hitLine.js';

export interface BreakpointKey {
  id: number;
  name: string;
  set: string;
}

export interface LocationKey {
  function: string;
  file: string;
  line: number;
}

/** Compact per-hit metadata; index i describes hit seq[i] (normally i + 1). */
export interface HitMeta {
  seq: Uint32Array;
  t: Float64Array;
  goroutine: Float64Array;
  /** How long containerd was stopped for the hit (ms). */
  stoppedMs: Float64Array;
  /** Index into `breakpoints`. */
  breakpoint: Uint32Array;
  /** Index into `locations`. */
  location: Uint32Array;
  breakpoints: BreakpointKey[];
  locations: LocationKey[];
  /** The hit's process id (0: a recording of containerd alone), and each pid's binary. */
  pid: Uint32Array;
  binaries: Map<number, string>;
}

export class MetaBuilder {
  seq: number[] = [];
  t: number[] = [];
  goroutine: number[] = [];
  stoppedMs: number[] = [];
  breakpoint: number[] = [];
  location: number[] = [];
  pid: number[] = [];
  binaries = new Map<number, string>();
  breakpoints: BreakpointKey[] = [];
  locations: LocationKey[] = [];
  private bpIndex = new Map<string, number>();
  private locIndex = new Map<string, number>();

  /** Appends an empty slot (filled later by `fill`) and returns its index. */
  reserve(): number {
    this.seq.push(0);
    this.t.push(0);
    this.goroutine.push(0);
    this.stoppedMs.push(0);
    this.breakpoint.push(0);
    this.location.push(0);
    this.pid.push(0);
    return this.seq.length - 1;
  }

  get length(): number {
    return this.seq.length;
  }

  /** Drops slots from `length` on (a truncated last line, an end record). */
  truncate(length: number): void {
    for (const column of [
      this.seq,
      this.t,
      this.goroutine,
      this.stoppedMs,
      this.breakpoint,
      this.location,
      this.pid,
    ])
      column.length = length;
  }

  fill(
    i: number,
    seq: number,
    t: number,
    goroutine: number,
    stoppedMs: number,
    bp: BreakpointKey,
    loc: LocationKey,
    process?: { pid: number; binary: string },
  ): void {
    this.seq[i] = seq;
    this.pid[i] = process?.pid ?? 0;
    if (process && !this.binaries.has(process.pid)) this.binaries.set(process.pid, process.binary);
    this.t[i] = t;
    this.goroutine[i] = goroutine;
    this.stoppedMs[i] = stoppedMs;
    this.breakpoint[i] = this.intern(
      this.bpIndex,
      this.breakpoints,
      `${bp.id}\u0000${bp.name}\u0000${bp.set}`,
      bp,
    );
    this.location[i] = this.intern(
      this.locIndex,
      this.locations,
      `${loc.function}\u0000${loc.file}\u0000${loc.line}`,
      loc,
    );
  }

  /** Returns false when the line is not in the writer's canonical shape. */
  fillFromPrefix(i: number, prefix: string): boolean {
    const p = parseHitPrefix(prefix);
    if (!p) return false;
    this.fill(i, p.seq, p.t, p.goroutine, p.stoppedMs, p.breakpoint, p.location, p.process);
    return true;
  }

  fillFromRecord(i: number, hit: HitRecord): void {
    this.fill(i, hit.seq, hit.t, hit.goroutine.id, hit.stoppedMs, hit.breakpoint, hit.location, hit.process);
  }

  private intern<T>(index: Map<string, number>, table: T[], key: string, value: T): number {
    let i = index.get(key);
    if (i === undefined) {
      i = table.length;
      table.push(value);
      index.set(key, i);
    }
    return i;
  }

  build(): HitMeta {
    return {
      seq: Uint32Array.from(this.seq),
      t: Float64Array.from(this.t),
      goroutine: Float64Array.from(this.goroutine),
      stoppedMs: Float64Array.from(this.stoppedMs),
      breakpoint: Uint32Array.from(this.breakpoint),
      location: Uint32Array.from(this.location),
      breakpoints: this.breakpoints,
      locations: this.locations,
      pid: Uint32Array.from(this.pid),
      binaries: this.binaries,
    };
  }
}

export function sliceMeta(meta: HitMeta, count: number): HitMeta {
  if (meta.seq.length <= count) return meta;
  return {
    ...meta,
    seq: meta.seq.subarray(0, count),
    t: meta.t.subarray(0, count),
    goroutine: meta.goroutine.subarray(0, count),
    stoppedMs: meta.stoppedMs.subarray(0, count),
    breakpoint: meta.breakpoint.subarray(0, count),
    location: meta.location.subarray(0, count),
    pid: meta.pid.subarray(0, count),
  };
}

/** What the metadata pass needs of an indexed recording. */
export interface IndexedLines {
  readonly hitCount: number;
  readonly descriptor: number;
  lineRange(index: number): [number, number];
  readHitAt(index: number): HitRecord;
}

/** Second pass for files opened without metadata: reads each hit's prefix (and the whole line if needed). */
export function scanMeta(session: IndexedLines): HitMeta {
  const builder = new MetaBuilder();
  const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  let chunkStart = -1;
  let chunkEnd = -1;
  for (let i = 0; i < session.hitCount; i++) {
    const [start, end] = session.lineRange(i);
    const prefixEnd = Math.min(end, start + META_PREFIX_BYTES);
    if (start < chunkStart || prefixEnd > chunkEnd) {
      const n = readSync(session.descriptor, chunk, 0, CHUNK_BYTES, start);
      chunkStart = start;
      chunkEnd = start + n;
    }
    const slot = builder.reserve();
    const prefix = chunk.toString('latin1', start - chunkStart, prefixEnd - chunkStart);
    if (!builder.fillFromPrefix(slot, prefix)) builder.fillFromRecord(slot, session.readHitAt(i));
  }
  return builder.build();
}
