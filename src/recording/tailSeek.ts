/** Reading one hit without indexing the file: the header from the front, the rest counted from the nearer end. */
import { closeSync, fstatSync, readSync } from 'node:fs';
import {
  CHUNK_BYTES,
  checkSeqRange,
  MAX_HEADER_BYTES,
  NEWLINE,
  notASession,
  openForReading,
  readRange,
  validateHeader,
} from './fileIo.js';
import type { HitRecord, RecordingHeader, RecordingLine } from './format.js';

/** Walks a file's non-empty lines backwards from `end`, reading fixed-size chunks. */
class BackwardLines {
  private window = Buffer.alloc(0);
  private windowStart = 0;
  private position: number;

  constructor(
    private readonly fd: number,
    end: number,
    private readonly floor: number,
  ) {
    this.position = end;
  }

  /** The previous non-empty line as [start, end), or undefined at `floor`. */
  prev(): [number, number] | undefined {
    for (;;) {
      if (this.position <= this.floor) return undefined;
      // The newline just before the cursor terminates the line we want (at EOF there may be none).
      let end = this.position;
      if (this.byteAt(end - 1) === NEWLINE) end--;
      let start = end;
      for (;;) {
        if (start <= this.floor) {
          start = this.floor;
          break;
        }
        if (start - 1 < this.windowStart || start - 1 >= this.windowStart + this.window.length)
          this.load(start);
        const nl = this.window.lastIndexOf(NEWLINE, start - 1 - this.windowStart);
        if (nl >= 0) {
          start = Math.max(this.floor, this.windowStart + nl + 1);
          break;
        }
        start = this.windowStart; // keep looking in the chunk before
      }
      this.position = start;
      const blank = end === start || (end - start === 1 && this.byteAt(start) === 0x0d);
      if (!blank) return [start, end];
    }
  }

  private byteAt(offset: number): number {
    if (offset < this.windowStart || offset >= this.windowStart + this.window.length) this.load(offset + 1);
    return this.window[offset - this.windowStart] ?? -1;
  }

  /** Loads the chunk that ends at `end`. */
  private load(end: number): void {
    const start = Math.max(0, end - CHUNK_BYTES);
    this.window = Buffer.allocUnsafe(end - start);
    const n = readSync(this.fd, this.window, 0, this.window.length, start);
    this.window = this.window.subarray(0, n);
    this.windowStart = start;
  }
}

/** The `count`-th non-empty line (1-based) at or after `from`, as [start, end), scanning forward. */
function forwardLine(fd: number, from: number, size: number, count: number): [number, number] | undefined {
  const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  let position = from;
  let lineStart = from;
  let seen = 0;
  while (position < size) {
    const n = readSync(fd, chunk, 0, chunk.length, position);
    if (n === 0) break;
    const view = chunk.subarray(0, n);
    let at = 0;
    for (;;) {
      const nl = view.indexOf(NEWLINE, at);
      if (nl === -1) break;
      const end = position + nl;
      if (end > lineStart && !(end - lineStart === 1 && view[lineStart - position] === 0x0d)) {
        if (++seen === count) return [lineStart, end];
      }
      lineStart = end + 1;
      at = nl + 1;
    }
    position += n;
  }
  if (lineStart < size && seen + 1 === count) return [lineStart, size];
  return undefined;
}

export interface SeekResult {
  header: RecordingHeader;
  hit: HitRecord;
  /** The seq of the last complete hit, which is the hit count in a well-formed (contiguous) session. */
  hitCount: number;
}

/**
 * Reads hit `seq` without indexing the whole file: the header from the front, the last hit from the back
 * (its seq is the hit count, since seqs are contiguous from 1), then the requested line by counting lines
 * from whichever end is nearer. Reading hit 100000 of 100000 touches the file's last kilobytes only.
 * Returns undefined when the file breaks the contiguity rule (the line found is not hit `seq`), so the
 * caller falls back to the full index. Throws the same input errors as `openRecording` and `readHit`.
 */
export function seekHit(path: string, seq: number): SeekResult | undefined {
  const fd = openForReading(path);
  try {
    const size = fstatSync(fd).size;
    if (size === 0) throw notASession(path, 'the file is empty');
    const first = forwardLine(fd, 0, Math.min(size, MAX_HEADER_BYTES + 1), 1);
    if (first === undefined) throw notASession(path, `no line break in the first ${MAX_HEADER_BYTES} bytes`);
    if (first[0] !== 0) throw notASession(path, 'line 1 is not a session header');
    const header = validateHeader(path, readRange(fd, first[0], first[1] - first[0]));
    const hitsFrom = Math.min(size, first[1] + 1);

    const back = new BackwardLines(fd, size, hitsFrom);
    const parse = (range: [number, number]): RecordingLine | undefined => {
      try {
        return JSON.parse(readRange(fd, range[0], range[1] - range[0])) as RecordingLine;
      } catch {
        return undefined;
      }
    };
    // From the end: an optional cut-short line, an optional end record, then the last hit.
    let range = back.prev();
    let record = range && parse(range);
    if (range && record === undefined) {
      range = back.prev();
      record = range && parse(range);
    }
    if (record?.type === 'end') {
      range = back.prev();
      record = range && parse(range);
    }
    if (range && record === undefined) return undefined; // damaged before the end: let the full scan say where
    const hitCount = record?.type === 'hit' ? record.seq : 0;
    if (record !== undefined && record.type !== 'hit') return undefined;
    checkSeqRange(path, seq, hitCount);

    let target: [number, number] | undefined;
    if (seq === hitCount) target = range;
    else if (seq > hitCount / 2) {
      for (let k = hitCount; k > seq && range; k--) range = back.prev();
      target = range;
    } else {
      target = forwardLine(fd, hitsFrom, size, seq);
    }
    const hit = target && parse(target);
    if (hit?.type !== 'hit' || hit.seq !== seq) return undefined;
    return { header, hit, hitCount };
  } finally {
    closeSync(fd);
  }
}
