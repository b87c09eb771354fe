/**
 * One contract, two sides: the writer puts every hit line's identifying fields first, in a fixed key order
 * (serializeHit), and the reader takes them from the first few hundred bytes of a line with one regular
 * expression (parseHitPrefix) instead of parsing the whole line. Change one, change the other.
 */
import type { HitRecord } from './format.js';

// The writer's key order makes every hit line start like this. Anything else (hand-edited, another writer)
// falls back to JSON.parse of that line.
const STR = '"((?:[^"\\\\]|\\\\.)*)"';
const NUM = '(-?[0-9][0-9.eE+-]*)';
const HIT_PREFIX = new RegExp(
  `^\\{"type":"hit","seq":${NUM},"t":${NUM},"wall":${STR},"breakpoint":\\{"id":${NUM},"name":${STR},"set":${STR}` +
    `[^{}]*\\},"goroutine":\\{"id":${NUM}(?:,"function":${STR})?[^{}]*\\}` +
    `(?:,"process":\\{"pid":${NUM},"binary":${STR}\\})?,"thread":${NUM},"stoppedMs":${NUM},` +
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

/** The identifying fields of a hit line, when it starts the way serializeHit writes it. */
export interface HitPrefix {
  seq: number;
  t: number;
  goroutine: number;
  stoppedMs: number;
  breakpoint: { id: number; name: string; set: string };
  location: { function: string; file: string; line: number };
  /** A recording that followed shims: the hit's process. */
  process?: { pid: number; binary: string };
}

/** Reads a canonical hit line's first bytes (decoded as latin1); undefined when the line has another shape. */
export function parseHitPrefix(prefix: string): HitPrefix | undefined {
  const m = HIT_PREFIX.exec(prefix);
  if (!m) return undefined;
  const [, seq, t, , bpId, bpName, bpSet, gid, , pid, binary, , stopped, locFn, locFile, locLine] = m;
  return {
    ...(pid !== undefined ? { process: { pid: Number(pid), binary: unescapeJsonString(binary ?? '') } } : {}),
    seq: Number(seq),
    t: Number(t),
    goroutine: Number(gid),
    stoppedMs: Number(stopped),
    breakpoint: {
      id: Number(bpId),
      name: unescapeJsonString(bpName ?? ''),
      set: unescapeJsonString(bpSet ?? ''),
    },
    location: {
      function: unescapeJsonString(locFn ?? ''),
      file: unescapeJsonString(locFile ?? ''),
      line: Number(locLine),
    },
  };
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
    process,
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
    ...(process ? { process: { pid: process.pid, binary: process.binary } } : {}),
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
