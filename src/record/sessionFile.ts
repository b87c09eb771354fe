/**
 * Reading and writing session files (the format itself is in sessionFormat.ts).
 *
 * The reader never loads a whole recording: it streams the file once in fixed-size chunks, keeps the byte
 * range of every line in typed arrays (the line-offset index), and reads any hit later with one positioned
 * read. Per-hit metadata (seq, t, breakpoint, goroutine, location) for list/filter/summary views is taken
 * from each line's first few hundred bytes on request, without parsing the line's values.
 *
 * The writer appends one JSON line per record with a fixed key order (so the metadata fast path applies),
 * fsyncs periodically and creates the file mode 0600 (recordings can hold credentials). It never appends to or
 * overwrites a file in place: it writes a temporary file beside the target and renames it into place once the
 * header is on disk, so a crash leaves either the old file or a readable new one.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  fstatSync,
  fsyncSync,
  openSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { inputError } from '../errors.js';
import {
  type EndRecord,
  type HitRecord,
  SESSION_FORMAT,
  SESSION_VERSION,
  type SessionHeader,
  type SessionRecord,
} from './sessionFormat.js';

const NEWLINE = 0x0a;
const CHUNK_BYTES = 1 << 20;
/** A header bigger than this is not a header: refuse instead of reading a large foreign file to its end. */
const MAX_HEADER_BYTES = 16 << 20;
/** Enough of a canonical hit line to reach the end of its `location` object. */
const META_PREFIX_BYTES = 768;

export interface TruncatedTail {
  /** 1-based line number in the file. */
  line: number;
  offset: number;
  bytes: number;
  /** Why the line was dropped, e.g. "no final newline and not valid JSON". */
  reason: string;
}

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
  /** Index into `breakpoints`. */
  breakpoint: Uint32Array;
  /** Index into `locations`. */
  location: Uint32Array;
  breakpoints: BreakpointKey[];
  locations: LocationKey[];
}

export interface OpenSessionOptions {
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

// The metadata fast path: the writer's key order makes every hit line start like this. Anything else
// (hand-edited, another writer) falls back to JSON.parse of that line.
const STR = '"((?:[^"\\\\]|\\\\.)*)"';
const NUM = '(-?[0-9][0-9.eE+-]*)';
const HIT_PREFIX = new RegExp(
  `^\\{"type":"hit","seq":${NUM},"t":${NUM},"wall":${STR},"breakpoint":\\{"id":${NUM},"name":${STR},"set":${STR}` +
    `[^{}]*\\},"goroutine":\\{"id":${NUM}(?:,"function":${STR})?[^{}]*\\},"thread":${NUM},"stoppedMs":${NUM},` +
    `"location":\\{"function":${STR},"file":${STR},"line":${NUM}\\}`,
);

/**
 * Prefixes are decoded as latin1 (one char per byte: several times faster than UTF-8 for short slices, and the
 * JSON structure is ASCII), so a captured string with bytes ≥ 0x80 is re-decoded as the UTF-8 it was.
 */
function unescapeJsonString(raw: string): string {
  const text = /[^\u0000-\u007f]/.test(raw) ? Buffer.from(raw, 'latin1').toString('utf8') : raw;
  return text.includes('\\') ? (JSON.parse(`"${text}"`) as string) : text;
}

class MetaBuilder {
  seq: number[] = [];
  t: number[] = [];
  goroutine: number[] = [];
  breakpoint: number[] = [];
  location: number[] = [];
  breakpoints: BreakpointKey[] = [];
  locations: LocationKey[] = [];
  private bpIndex = new Map<string, number>();
  private locIndex = new Map<string, number>();

  /** Appends an empty slot (filled later by `fill`) and returns its index. */
  reserve(): number {
    this.seq.push(0);
    this.t.push(0);
    this.goroutine.push(0);
    this.breakpoint.push(0);
    this.location.push(0);
    return this.seq.length - 1;
  }

  get length(): number {
    return this.seq.length;
  }

  /** Drops slots from `length` on (a truncated last line, an end record). */
  truncate(length: number): void {
    for (const column of [this.seq, this.t, this.goroutine, this.breakpoint, this.location])
      column.length = length;
  }

  fill(i: number, seq: number, t: number, goroutine: number, bp: BreakpointKey, loc: LocationKey): void {
    this.seq[i] = seq;
    this.t[i] = t;
    this.goroutine[i] = goroutine;
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
    const m = HIT_PREFIX.exec(prefix);
    if (!m) return false;
    const [, seq, t, , bpId, bpName, bpSet, gid, , , , locFn, locFile, locLine] = m;
    this.fill(
      i,
      Number(seq),
      Number(t),
      Number(gid),
      { id: Number(bpId), name: unescapeJsonString(bpName ?? ''), set: unescapeJsonString(bpSet ?? '') },
      {
        function: unescapeJsonString(locFn ?? ''),
        file: unescapeJsonString(locFile ?? ''),
        line: Number(locLine),
      },
    );
    return true;
  }

  fillFromRecord(i: number, hit: HitRecord): void {
    this.fill(i, hit.seq, hit.t, hit.goroutine.id, hit.breakpoint, hit.location);
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
      breakpoint: Uint32Array.from(this.breakpoint),
      location: Uint32Array.from(this.location),
      breakpoints: this.breakpoints,
      locations: this.locations,
    };
  }
}

function openForReading(path: string): number {
  try {
    const fd = openSync(path, 'r');
    if (fstatSync(fd).isDirectory()) {
      closeSync(fd);
      throw inputError(`${path} is a directory, not a session file`, {
        hint: 'Pass the .jsonl file written by `ctrdbg attach --record`.',
      });
    }
    return fd;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw inputError(`session file not found: ${path}`, {
        hint: 'Check the path; sessions are written by `ctrdbg attach --record FILE`.',
        cause: error,
      });
    }
    if (code === 'EACCES') {
      throw inputError(`cannot read session file ${path}: permission denied`, {
        hint: 'Session files are mode 0600: read them as the user who recorded them (or with sudo).',
        cause: error,
      });
    }
    if (code === 'EISDIR') {
      throw inputError(`${path} is a directory, not a session file`, { cause: error });
    }
    throw error;
  }
}

function notASession(path: string, why: string): Error {
  return inputError(`${path} is not a ctrdbg session file (${why})`, {
    hint: 'Pass a .jsonl file written by `ctrdbg attach --record`; its first line is the session header.',
  });
}

function validateHeader(path: string, line: string): SessionHeader {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    throw notASession(path, 'line 1 is not JSON');
  }
  const header = parsed as Partial<SessionHeader> | null;
  if (header === null || typeof header !== 'object' || header.format !== SESSION_FORMAT) {
    throw notASession(path, `line 1 has no "format": "${SESSION_FORMAT}"`);
  }
  if (typeof header.version !== 'number' || !Number.isInteger(header.version) || header.version < 1) {
    throw notASession(path, 'the header has no valid version');
  }
  if (header.version > SESSION_VERSION) {
    throw inputError(
      `${path} is session format version ${header.version}, made by a newer ctrdbg (this one reads up to version ${SESSION_VERSION})`,
      {
        hint: 'Upgrade ctrdbg to replay it.',
        details: { version: header.version, supported: SESSION_VERSION },
      },
    );
  }
  if (!Array.isArray(header.breakpoints) || !Array.isArray(header.sets)) {
    throw notASession(path, 'the header lacks sets/breakpoints');
  }
  return header as SessionHeader;
}

/** An open session: header, end record, truncation report and random access to hits. */
export class SessionFile {
  readonly path: string;
  readonly header: SessionHeader;
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

  /** @internal use openSessionFile */
  constructor(init: {
    path: string;
    fd: number;
    size: number;
    header: SessionHeader;
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
      let record: SessionRecord | undefined;
      try {
        record = JSON.parse(text) as SessionRecord;
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

  /** Reads and parses hit `seq` (1-based) with one positioned read. */
  readHit(seq: number): HitRecord {
    this.checkSeq(seq);
    const index = this.indexOfSeq(seq);
    return this.readHitAt(index);
  }

  /** Reads the hit at position `index` (0-based, file order). */
  readHitAt(index: number): HitRecord {
    const line = this.firstHitLine + index;
    let record: HitRecord;
    try {
      record = JSON.parse(this.lineText(line)) as HitRecord;
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

function sliceMeta(meta: HitMeta, count: number): HitMeta {
  if (meta.seq.length <= count) return meta;
  return {
    ...meta,
    seq: meta.seq.subarray(0, count),
    t: meta.t.subarray(0, count),
    goroutine: meta.goroutine.subarray(0, count),
    breakpoint: meta.breakpoint.subarray(0, count),
    location: meta.location.subarray(0, count),
  };
}

/** Second pass for files opened without metadata: reads each hit's prefix (and the whole line if needed). */
function scanMeta(session: SessionFile): HitMeta {
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

/**
 * Opens a session file and builds its line-offset index in one streaming pass. Throws `inputError` for a
 * missing file, a file that is not a session, or a session written by a newer ctrdbg.
 */
export function openSessionFile(path: string, options: OpenSessionOptions = {}): SessionFile {
  const fd = openForReading(path);
  try {
    return scan(path, fd, options);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

function scan(path: string, fd: number, options: OpenSessionOptions): SessionFile {
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
  let header: SessionHeader | undefined;

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
    // SessionFile constructor reports, and an end record is not a hit: both are cut off here.
    for (const [slot, index] of slots) {
      const bytes = readRangeBytes(fd, starts.at(index), ends.at(index) - starts.at(index));
      if (
        builder.fillFromPrefix(slot, bytes.toString('latin1', 0, Math.min(bytes.length, META_PREFIX_BYTES)))
      )
        continue;
      let parsed: SessionRecord;
      try {
        parsed = JSON.parse(bytes.toString('utf8')) as SessionRecord;
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

  return new SessionFile({
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

function readRangeBytes(fd: number, offset: number, length: number): Buffer {
  const buffer = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buffer, done, length - done, offset + done);
    if (n === 0) break;
    done += n;
  }
  return buffer.subarray(0, done);
}

function readRange(fd: number, offset: number, length: number): string {
  return readRangeBytes(fd, offset, length).toString('utf8');
}

function checkSeqRange(path: string, seq: number, hitCount: number): void {
  if (!Number.isInteger(seq) || seq < 1 || seq > hitCount) {
    throw inputError(
      hitCount === 0
        ? `hit ${seq} does not exist: ${path} has no hits`
        : `hit ${seq} is out of range: ${path} has ${hitCount} hits (1–${hitCount})`,
      { details: { seq, hits: hitCount } },
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// Reading one hit without indexing the file

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
  header: SessionHeader;
  hit: HitRecord;
  /** The seq of the last complete hit, which is the hit count in a well-formed (contiguous) session. */
  hitCount: number;
}

/**
 * Reads hit `seq` without indexing the whole file: the header from the front, the last hit from the back
 * (its seq is the hit count, since seqs are contiguous from 1), then the requested line by counting lines
 * from whichever end is nearer. Reading hit 100000 of 100000 touches the file's last kilobytes only.
 * Returns undefined when the file breaks the contiguity rule (the line found is not hit `seq`), so the
 * caller falls back to the full index. Throws the same input errors as `openSessionFile` and `readHit`.
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
    const parse = (range: [number, number]): SessionRecord | undefined => {
      try {
        return JSON.parse(readRange(fd, range[0], range[1] - range[0])) as SessionRecord;
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

// ---------------------------------------------------------------------------------------------------------
// Writer

export interface SessionWriterOptions {
  /** Replace an existing file (otherwise an existing file is an input error). */
  force?: boolean;
  /** fsync after this many records (default 50)… */
  fsyncEveryRecords?: number;
  /** …or when this much time has passed since the last fsync (default 1000 ms), whichever comes first. */
  fsyncIntervalMs?: number;
}

export interface SessionWriter {
  readonly path: string;
  /** Records written so far. */
  readonly records: number;
  writeHeader(header: SessionHeader): void;
  writeHit(hit: HitRecord): void;
  writeEnd(end: EndRecord): void;
  /** Forces the data to disk now. */
  sync(): void;
  /** Syncs and closes; further writes throw. */
  close(): void;
}

function orderedBreakpoint(b: HitRecord['breakpoint']): HitRecord['breakpoint'] {
  const { id, name, set, ...rest } = b;
  return { id, name, set, ...rest };
}
function orderedGoroutine(g: HitRecord['goroutine']): HitRecord['goroutine'] {
  const { id, function: fn, ...rest } = g;
  return fn === undefined ? { id, ...rest } : { id, function: fn, ...rest };
}
function orderedLocation(l: HitRecord['location']): HitRecord['location'] {
  const { function: fn, file, line, ...rest } = l;
  return { function: fn, file, line, ...rest };
}

/** The JSON line for a hit in the format's key order; the identifying prefix is what HIT_PREFIX reads. */
export function serializeHit(hit: HitRecord): string {
  const {
    type: _type,
    seq,
    t,
    wall,
    breakpoint,
    goroutine,
    thread,
    stoppedMs,
    location,
    stack,
    args,
    locals,
    expressions,
    ...rest
  } = hit;
  return JSON.stringify({
    type: 'hit',
    seq,
    t,
    wall,
    breakpoint: orderedBreakpoint(breakpoint),
    goroutine: orderedGoroutine(goroutine),
    thread,
    stoppedMs,
    location: orderedLocation(location),
    stack,
    args,
    locals,
    expressions,
    ...rest,
  });
}

/**
 * Opens `path` for appending session records (created mode 0600). Writes are synchronous so a record is in
 * the kernel before the recorder continues the target; fsync runs every N records or T ms so a power cut
 * loses at most that much, without an fsync per hit slowing the node's stop time.
 */
/**
 * Checks before anything else happens (attach calls it before touching the node) that `path` can be recorded
 * to: its directory exists, and it is not an existing file unless `force`.
 */
export function checkRecordPath(path: string, force: boolean | undefined): void {
  const dir = dirname(path);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw inputError(`Cannot record to ${path}: the directory ${dir} does not exist.`, {
      hint: 'Create it first, or choose another path for --record.',
    });
  }
  if (existsSync(path)) {
    if (!statSync(path).isFile())
      throw inputError(`Cannot record to ${path}: it is not a regular file.`, {
        hint: 'Choose another path for --record.',
      });
    if (!force)
      throw inputError(`${path} exists already; ctrdbg does not overwrite or append to a recording.`, {
        hint: 'Choose another name, or pass --force to replace it (the old file stays until the new one has its header).',
      });
  }
}

export function createSessionWriter(path: string, options: SessionWriterOptions = {}): SessionWriter {
  const everyRecords = options.fsyncEveryRecords ?? 50;
  const intervalMs = options.fsyncIntervalMs ?? 1000;
  checkRecordPath(path, options.force);
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.ctrdbg-partial`);
  let fd: number;
  try {
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (error) {
    throw inputError(`cannot write session file ${path}: ${(error as Error).message}`, {
      hint: 'Choose a writable path for --record.',
      cause: error,
    });
  }
  let placed = false;
  /** The header is on disk: from now on the file at `path` is this recording. */
  const place = () => {
    fsyncSync(fd);
    renameSync(tmp, path);
    const dirFd = openSync(dirname(path), constants.O_RDONLY);
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
    placed = true;
  };
  // An existing file keeps its mode on open; a recording may hold credentials, so tighten it regardless.
  fchmodSync(fd, 0o600);
  let records = 0;
  let unsynced = 0;
  let lastSync = Date.now();
  let closed = false;

  const sync = () => {
    if (closed) return;
    fsyncSync(fd);
    unsynced = 0;
    lastSync = Date.now();
  };
  const writeLine = (line: string) => {
    if (closed) throw new Error(`session writer for ${path} is closed`);
    const buffer = Buffer.from(`${line}\n`, 'utf8');
    let done = 0;
    while (done < buffer.length) done += writeSync(fd, buffer, done, buffer.length - done);
    records++;
    unsynced++;
    if (unsynced >= everyRecords || Date.now() - lastSync >= intervalMs) sync();
  };

  return {
    path,
    get records() {
      return records;
    },
    writeHeader: (header) => {
      writeLine(JSON.stringify(header));
      place();
    },
    writeHit: (hit) => writeLine(serializeHit(hit)),
    writeEnd: (end) => {
      writeLine(JSON.stringify(end));
      sync();
    },
    sync,
    close: () => {
      if (closed) return;
      sync();
      closeSync(fd);
      closed = true;
      // Nothing was recorded (an error before the header): leave the old file, and no partial one.
      if (!placed) unlinkSync(tmp);
    },
  };
}
