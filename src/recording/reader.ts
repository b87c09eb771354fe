/**
 * Reading a recording without loading it: one streaming pass in fixed-size chunks keeps the byte range of
 * every line in typed arrays (the line-offset index), and any hit is read later with one positioned read.
 * A cut-short last line (the recorder was killed) is tolerated and reported; damage elsewhere is an error.
 */
import { closeSync, fstatSync, readSync } from 'node:fs';
import { inputError } from '../errors.js';
import {
  CHUNK_BYTES,
  checkSeqRange,
  MAX_HEADER_BYTES,
  META_PREFIX_BYTES,
  NEWLINE,
  notASession,
  openForReading,
  readRange,
  readRangeBytes,
  validateHeader,
} from './fileIo.js';
import type { EndRecord, HitRecord, RecordingHeader, RecordingLine } from './format.js';
import { type HitMeta, MetaBuilder, scanMeta, sliceMeta } from './hitMeta.js';

export interface TruncatedTail {
  /** 1-based line number in the file. */
  line: number;
  offset: number;
  bytes: number;
  /** Why the line was dropped, e.g. "no final newline and not valid JSON". */
  reason: string;
}

export interface OpenRecordingOptions {
  /** Extract per-hit metadata during the scan (list, filter, summary and DAP need it; `--goto` does not). */
  hitMeta?: boolean;
}

/** Grows like a vector but stays a typed array, so 100k offsets cost 800 KB and no GC pressure. */
class Float64Vector {
  data = new Float64Array(1024);
  length = 0;
  push(value: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = value;
  }
  at(index: number): number {
    return this.data[index] ?? Number.NaN;
  }
}

/** An open session: header, end record, truncation report and random access to hits. */
export class RecordingFile {
  readonly path: string;
  readonly header: RecordingHeader;
  readonly end: EndRecord | undefined;
  readonly truncated: TruncatedTail | undefined;
  readonly size: number;
  /** Number of complete hit lines. */
  readonly hitCount: number;

  private fd: number;
  private starts: Float64Array;
  private ends: Float64Array;
  /** Line index of hit 0 (always 1: the header is line 0). */
  private readonly firstHitLine = 1;
  private metaCache: HitMeta | undefined;

  /** @internal use openRecording */
  constructor(init: {
    path: string;
    fd: number;
    size: number;
    header: RecordingHeader;
    starts: Float64Array;
    ends: Float64Array;
    lines: number;
    meta: HitMeta | undefined;
  }) {
    this.path = init.path;
    this.fd = init.fd;
    this.size = init.size;
    this.header = init.header;
    this.starts = init.starts;
    this.ends = init.ends;
    let lines = init.lines;

    // The last line decides two things: whether the recorder was killed mid-write, and whether an end
    // record closed the session. Both are read with one positioned read, never by parsing the file.
    let truncated: TruncatedTail | undefined;
    let end: EndRecord | undefined;
    if (lines > 1) {
      const last = lines - 1;
      const text = this.lineText(last);
      let record: RecordingLine | undefined;
      try {
        record = JSON.parse(text) as RecordingLine;
      } catch {
        const noNewline = this.lineEnd(last) === this.size;
        truncated = {
          line: last + 1,
          offset: this.lineStart(last),
          bytes: this.lineEnd(last) - this.lineStart(last),
          reason: noNewline ? 'cut short (no final newline, not valid JSON)' : 'not valid JSON',
        };
        lines--;
      }
      if (record?.type === 'end') {
        end = record;
        lines--;
      }
    }
    this.truncated = truncated;
    this.end = end;
    this.hitCount = Math.max(0, lines - this.firstHitLine);
    if (init.meta && init.meta.seq.length > this.hitCount) {
      // The meta scan saw the truncated line or the end record as a hit candidate; cut them off.
      init.meta = sliceMeta(init.meta, this.hitCount);
    }
    this.metaCache = init.meta;
  }

  private lineStart(line: number): number {
    return this.starts[line] ?? Number.NaN;
  }
  private lineEnd(line: number): number {
    return this.ends[line] ?? Number.NaN;
  }

  private readBytes(offset: number, length: number): Buffer {
    const buffer = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, buffer, done, length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    return buffer.subarray(0, done);
  }

  private lineText(line: number): string {
    const start = this.lineStart(line);
    return this.readBytes(start, this.lineEnd(line) - start).toString('utf8');
  }

  /** The raw JSON text of hit `seq` (1-based), as stored. */
  hitText(seq: number): string {
    const index = this.indexOfSeq(seq);
    return this.lineText(this.firstHitLine + index);
  }

  /** The raw JSON text of the hit at position `index` (0-based, file order). */
  hitTextAt(index: number): string {
    return this.lineText(this.firstHitLine + index);
  }

  /** Parses a hit line read with hitTextAt (the same errors as readHitAt). */
  parseHitText(index: number, text: string): HitRecord {
    const line = this.firstHitLine + index;
    let record: HitRecord;
    try {
      record = JSON.parse(text) as HitRecord;
    } catch (error) {
      throw inputError(`${this.path}: line ${line + 1} is not valid JSON`, {
        hint: 'The session file is damaged in the middle; only a cut-short last line is tolerated.',
        cause: error,
      });
    }
    if (record.type !== 'hit') {
      throw inputError(`${this.path}: line ${line + 1} is a "${String(record.type)}" record, expected a hit`);
    }
    return record;
  }

  /** Reads and parses hit `seq` (1-based) with one positioned read. */
  readHit(seq: number): HitRecord {
    this.checkSeq(seq);
    const index = this.indexOfSeq(seq);
    return this.readHitAt(index);
  }

  /** Reads the hit at position `index` (0-based, file order). */
  readHitAt(index: number): HitRecord {
    return this.parseHitText(index, this.hitTextAt(index));
  }

  private checkSeq(seq: number): void {
    checkSeqRange(this.path, seq, this.hitCount);
  }

  /** Position of hit `seq`. Seqs are contiguous from 1, so this is seq − 1 unless a file breaks the rule. */
  indexOfSeq(seq: number): number {
    this.checkSeq(seq);
    const guess = seq - 1;
    if (!this.metaCache) {
      // Cheap check without metadata: the line must begin with this seq.
      const prefix = this.readBytes(this.lineStart(this.firstHitLine + guess), 64).toString('utf8');
      const m = /"seq":(\d+)/.exec(prefix);
      if (!m || Number(m[1]) === seq) return guess;
    }
    const meta = this.meta();
    if (meta.seq[guess] === seq) return guess;
    const found = meta.seq.indexOf(seq);
    if (found >= 0) return found;
    throw inputError(`hit ${seq} is not in ${this.path}`);
  }

  /** Per-hit metadata; computed on first use with one more streaming pass if the open did not ask for it. */
  meta(): HitMeta {
    if (!this.metaCache) this.metaCache = sliceMeta(scanMeta(this), this.hitCount);
    return this.metaCache;
  }

  /** @internal line ranges for the metadata pass */
  lineRange(index: number): [number, number] {
    const line = this.firstHitLine + index;
    return [this.lineStart(line), this.lineEnd(line)];
  }

  /** @internal */
  get descriptor(): number {
    return this.fd;
  }

  /** Iterates hits in file order, parsing each (for views that show every hit). */
  *hits(from = 0, to = this.hitCount): Generator<HitRecord> {
    for (let i = from; i < to; i++) yield this.readHitAt(i);
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/**
 * Opens a session file and builds its line-offset index in one streaming pass. Throws `inputError` for a
 * missing file, a file that is not a session, or a session written by a newer ctrdbg.
 */
export function openRecording(path: string, options: OpenRecordingOptions = {}): RecordingFile {
  const fd = openForReading(path);
  try {
    return scan(path, fd, options);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

function scan(path: string, fd: number, options: OpenRecordingOptions): RecordingFile {
  const size = fstatSync(fd).size;
  if (size === 0) throw notASession(path, 'the file is empty');

  const starts = new Float64Vector();
  const ends = new Float64Vector();
  const builder = options.hitMeta ? new MetaBuilder() : undefined;
  /** [meta slot, line] of hit lines the fast path could not take (chunk boundary, foreign key order). */
  const slots: Array<[number, number]> = [];

  const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  let position = 0;
  let lineStart = 0;
  let header: RecordingHeader | undefined;

  const record = (start: number, end: number, view: Buffer, viewStart: number) => {
    if (end === start || (end - start === 1 && view[start - viewStart] === 0x0d)) return; // blank line
    const index = starts.length;
    starts.push(start);
    ends.push(end);
    if (!builder || index === 0) return;
    const slot = builder.reserve();
    const prefixEnd = Math.min(end, start + META_PREFIX_BYTES);
    if (start < viewStart || prefixEnd - viewStart > view.length) {
      slots.push([slot, index]);
      return;
    }
    const prefix = view.toString('latin1', start - viewStart, prefixEnd - viewStart);
    if (!builder.fillFromPrefix(slot, prefix)) slots.push([slot, index]);
  };

  while (position < size) {
    const n = readSync(fd, chunk, 0, chunk.length, position);
    if (n === 0) break;
    const view = chunk.subarray(0, n);
    let from = 0;
    for (;;) {
      const nl = view.indexOf(NEWLINE, from);
      if (nl === -1) break;
      const end = position + nl;
      if (header === undefined) {
        header = validateHeader(path, readRange(fd, lineStart, end - lineStart));
      }
      record(lineStart, end, view, position);
      lineStart = end + 1;
      from = nl + 1;
    }
    position += n;
    if (header === undefined && position - lineStart > MAX_HEADER_BYTES) {
      throw notASession(path, `no line break in the first ${MAX_HEADER_BYTES} bytes`);
    }
  }
  if (lineStart < size) {
    // The last line has no newline: either the recorder was killed mid-write or a tool stripped it.
    if (header === undefined) header = validateHeader(path, readRange(fd, lineStart, size - lineStart));
    starts.push(lineStart);
    ends.push(size);
    if (builder && starts.length > 1) slots.push([builder.reserve(), starts.length - 1]);
  }
  if (header === undefined) throw notASession(path, 'no header line');

  const lines = starts.length;
  let meta: HitMeta | undefined;
  if (builder) {
    // Lines the fast path could not take are parsed whole. A bad *last* line is the truncation that the
    // RecordingFile constructor reports, and an end record is not a hit: both are cut off here.
    for (const [slot, index] of slots) {
      const bytes = readRangeBytes(fd, starts.at(index), ends.at(index) - starts.at(index));
      if (
        builder.fillFromPrefix(slot, bytes.toString('latin1', 0, Math.min(bytes.length, META_PREFIX_BYTES)))
      )
        continue;
      let parsed: RecordingLine;
      try {
        parsed = JSON.parse(bytes.toString('utf8')) as RecordingLine;
      } catch (error) {
        if (index === lines - 1) break;
        throw inputError(`${path}: line ${index + 1} is not valid JSON`, {
          hint: 'The session file is damaged in the middle; only a cut-short last line is tolerated.',
          cause: error,
        });
      }
      if (parsed.type === 'hit') builder.fillFromRecord(slot, parsed);
      else if (!(parsed.type === 'end' && index === lines - 1)) {
        throw inputError(`${path}: line ${index + 1} is a "${String(parsed.type)}" record, expected a hit`);
      }
    }
    meta = builder.build();
  }

  return new RecordingFile({
    path,
    fd,
    size,
    header,
    starts: starts.data.subarray(0, lines),
    ends: ends.data.subarray(0, lines),
    lines,
    meta,
  });
}
