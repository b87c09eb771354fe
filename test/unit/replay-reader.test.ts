/** The session reader (line-offset index, validation, truncation) and the writer the recorder uses. */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CtrdbgError, ExitCode } from '../../src/errors.js';
import type { HitRecord, RecordingHeader } from '../../src/recording/format.js';
import { serializeHit } from '../../src/recording/hitLine.js';
import { openRecording } from '../../src/recording/reader.js';
import { seekHit } from '../../src/recording/tailSeek.js';
import { createRecordingWriter } from '../../src/recording/writer.js';

const sample = resolve(import.meta.dirname, '..', 'fixtures', 'sessions', 'sample.jsonl');
const sampleLines = readFileSync(sample, 'utf8')
  .split('\n')
  .filter((l) => l !== '');
const header = JSON.parse(sampleLines[0]!) as RecordingHeader;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ctrdbg-reader-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function inputFailure(fn: () => unknown): CtrdbgError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CtrdbgError);
    expect((error as CtrdbgError).kind).toBe('input');
    expect((error as CtrdbgError).exitCode).toBe(ExitCode.input);
    return error as CtrdbgError;
  }
  throw new Error('expected an input error');
}

describe('openRecording', () => {
  it('indexes the sample: header, 12 hits, end record, metadata from the line prefixes', () => {
    const session = openRecording(sample, { hitMeta: true });
    try {
      expect(session.header.format).toBe('ctrdbg-session');
      expect(session.hitCount).toBe(12);
      expect(session.end?.reason).toBe('trigger-finished');
      expect(session.truncated).toBeUndefined();
      const meta = session.meta();
      expect([...meta.seq]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      expect([...meta.goroutine]).toEqual([41, 57, 63, 57, 57, 63, 63, 88, 41, 41, 41, 88]);
      expect(meta.breakpoints.map((b) => b.name)).toEqual([
        'lab-create/namespace-create',
        'lab-create/create-container',
        'lab-create/create-task',
        'tasks-create/shim-create',
      ]);
      expect(meta.locations[meta.location[3]!]).toEqual(expect.objectContaining({ line: 157 }));
      expect(session.readHit(7)).toEqual(JSON.parse(sampleLines[7]!));
      expect(session.readHit(1).seq).toBe(1);
    } finally {
      session.close();
    }
  });

  it('computes the same metadata lazily, and for lines in a foreign key order (JSON.parse fallback)', () => {
    const fast = openRecording(sample, { hitMeta: true });
    const lazy = openRecording(sample);
    // Same records, keys reversed: the prefix fast path cannot read them.
    const reversed = sampleLines.map((line, i) => {
      if (i === 0 || i === sampleLines.length - 1) return line;
      const record = JSON.parse(line) as Record<string, unknown>;
      return JSON.stringify(Object.fromEntries(Object.entries(record).reverse()));
    });
    const foreign = openRecording(write('foreign.jsonl', `${reversed.join('\n')}\n`), { hitMeta: true });
    try {
      expect(lazy.meta()).toEqual(fast.meta());
      expect(foreign.meta()).toEqual(fast.meta());
      expect(foreign.readHit(12).seq).toBe(12);
    } finally {
      fast.close();
      lazy.close();
      foreign.close();
    }
  });

  it('decodes non-ASCII and escaped names in the metadata exactly as JSON.parse does', () => {
    const hit = JSON.parse(sampleLines[1]!) as HitRecord;
    const odd = {
      ...hit,
      breakpoint: { ...hit.breakpoint, name: 'lab-create/créer "ns" 🚀' },
      location: { ...hit.location, file: '/home/jürgen/src/containerd/local.go' },
    };
    const path = write('odd.jsonl', `${sampleLines[0]}\n${serializeHit(odd)}\n`);
    const session = openRecording(path, { hitMeta: true });
    try {
      const meta = session.meta();
      expect(meta.breakpoints[0]?.name).toBe('lab-create/créer "ns" 🚀');
      expect(meta.locations[0]?.file).toBe('/home/jürgen/src/containerd/local.go');
    } finally {
      session.close();
    }
  });

  it('reads hits whose lines straddle its read chunks (large hits)', () => {
    const big = JSON.parse(sampleLines[2]!) as HitRecord;
    const filler = 'x'.repeat(700_000);
    const hits = [1, 2, 3].map((seq) =>
      serializeHit({
        ...big,
        seq,
        locals: [{ name: 'blob', type: 'string', kind: 'string', value: filler }],
      }),
    );
    const path = write('big.jsonl', `${sampleLines[0]}\n${hits.join('\n')}\n`);
    const session = openRecording(path, { hitMeta: true });
    try {
      expect(session.hitCount).toBe(3);
      expect([...session.meta().seq]).toEqual([1, 2, 3]);
      expect(session.readHit(3).locals[0]?.value).toHaveLength(700_000);
      expect(session.end).toBeUndefined();
    } finally {
      session.close();
    }
  });

  it('tolerates and reports a cut-short last line (recorder killed mid-write) and a missing end record', () => {
    const cut = sampleLines[12]!.slice(0, 400);
    const path = write('killed.jsonl', `${sampleLines.slice(0, 12).join('\n')}\n${cut}`);
    const session = openRecording(path, { hitMeta: true });
    try {
      expect(session.hitCount).toBe(11);
      expect(session.end).toBeUndefined();
      expect(session.truncated).toEqual({
        line: 13,
        offset: statSync(path).size - 400,
        bytes: 400,
        reason: 'cut short (no final newline, not valid JSON)',
      });
      expect(session.meta().seq).toHaveLength(11);
      expect(session.readHit(11).seq).toBe(11);
      expect(inputFailure(() => session.readHit(12)).message).toContain('out of range');
    } finally {
      session.close();
    }
  });

  it('accepts a complete last record without its final newline', () => {
    const path = write('nonewline.jsonl', sampleLines.join('\n'));
    const session = openRecording(path);
    try {
      expect(session.hitCount).toBe(12);
      expect(session.end?.hits).toBe(12);
      expect(session.truncated).toBeUndefined();
    } finally {
      session.close();
    }
  });

  it('refuses a missing file, a directory, an empty file and a file that is not a session', () => {
    expect(inputFailure(() => openRecording(join(dir, 'nope.jsonl'))).message).toMatch(
      /session file not found: .*nope\.jsonl/,
    );
    expect(inputFailure(() => openRecording(dir)).message).toContain('is a directory');
    expect(inputFailure(() => openRecording(write('empty.jsonl', ''))).message).toContain(
      'the file is empty',
    );
    const pkg = resolve(import.meta.dirname, '..', '..', 'package.json');
    const notSession = inputFailure(() => openRecording(pkg));
    expect(notSession.message).toContain('package.json is not a ctrdbg session file');
    expect(notSession.hint).toContain('attach --record');
    const otherJson = write('other.jsonl', '{"format":"something-else","version":1}\n');
    expect(inputFailure(() => openRecording(otherJson)).message).toContain(
      'other.jsonl is not a ctrdbg session file',
    );
  });

  it('refuses a session from a newer ctrdbg with a hint to upgrade', () => {
    const newer = write('newer.jsonl', `${JSON.stringify({ ...header, version: 7 })}\n${sampleLines[1]}\n`);
    const error = inputFailure(() => openRecording(newer));
    expect(error.message).toContain('made by a newer ctrdbg');
    expect(error.hint).toBe('Upgrade ctrdbg to replay it.');
    expect(error.details).toEqual({ version: 7, supported: 1 });
  });

  it('names the damaged line when a line in the middle is not JSON', () => {
    const lines = [...sampleLines];
    lines[5] = '{"type":"hit","seq":5, oops';
    const session = openRecording(write('damaged.jsonl', `${lines.join('\n')}\n`));
    try {
      expect(inputFailure(() => session.readHit(5)).message).toContain('line 6 is not valid JSON');
    } finally {
      session.close();
    }
    expect(
      inputFailure(() => openRecording(join(dir, 'damaged.jsonl'), { hitMeta: true })).message,
    ).toContain('line 6');
  });

  it('refuses hit numbers out of range', () => {
    const session = openRecording(sample);
    try {
      for (const seq of [0, 13, -1, 1.5]) {
        expect(inputFailure(() => session.readHit(seq)).message).toMatch(
          /out of range: .* has 12 hits \(1–12\)/,
        );
      }
    } finally {
      session.close();
    }
  });
});

describe('seekHit (one hit without indexing the file)', () => {
  it('finds every hit of the sample from either end, and reports the hit count', () => {
    for (let seq = 1; seq <= 12; seq++) {
      const found = seekHit(sample, seq);
      expect(found?.hit).toEqual(JSON.parse(sampleLines[seq]!));
      expect(found?.hitCount).toBe(12);
      expect(found?.header.format).toBe('ctrdbg-session');
    }
    expect(inputFailure(() => seekHit(sample, 13)).message).toContain('out of range');
    expect(inputFailure(() => seekHit(join(dir, 'gone.jsonl'), 1)).message).toContain('not found');
  });

  it('skips a cut-short tail, a missing end record, blank lines and CRLF', () => {
    const body = sampleLines.slice(1, 12).join('\r\n\n');
    const path = write('messy.jsonl', `${sampleLines[0]}\n\n${body}\r\n${sampleLines[12]!.slice(0, 99)}`);
    for (const seq of [1, 5, 6, 7, 11]) expect(seekHit(path, seq)?.hit.seq).toBe(seq);
    expect(seekHit(path, 11)?.hitCount).toBe(11);
    expect(inputFailure(() => seekHit(path, 12)).message).toContain('has 11 hits');
  });

  it('reads across chunk boundaries backwards and forwards', () => {
    const big = JSON.parse(sampleLines[2]!) as HitRecord;
    const hits = [1, 2, 3, 4, 5].map((seq) =>
      serializeHit({
        ...big,
        seq,
        locals: [{ name: 'blob', type: 'string', kind: 'string', value: 'y'.repeat(600_000 + seq) }],
      }),
    );
    const path = write('big.jsonl', `${sampleLines[0]}\n${hits.join('\n')}\n${sampleLines[13]}\n`);
    for (const seq of [1, 2, 3, 4, 5])
      expect(seekHit(path, seq)?.hit.locals[0]?.value).toHaveLength(600_000 + seq);
  });

  it('gives up (undefined) when seqs are not contiguous, so the caller uses the full index', () => {
    const lines = sampleLines.filter((_, i) => i !== 4); // hit 4 missing
    const path = write('gap.jsonl', `${lines.join('\n')}\n`);
    expect(seekHit(path, 12)?.hit.seq).toBe(12);
    expect(seekHit(path, 8)?.hit.seq).toBe(8); // counted from the end, past the gap: still right
    expect(seekHit(path, 6)).toBeUndefined(); // counted from the start, across the gap: line 6 is hit 7
    const session = openRecording(path);
    try {
      expect(session.readHit(6).seq).toBe(6);
    } finally {
      session.close();
    }
  });

  it('refuses what openRecording refuses', () => {
    expect(
      inputFailure(() => seekHit(resolve(import.meta.dirname, '..', '..', 'package.json'), 1)).message,
    ).toContain('not a ctrdbg session file');
    const newer = write('newer.jsonl', `${JSON.stringify({ ...header, version: 9 })}\n${sampleLines[1]}\n`);
    expect(inputFailure(() => seekHit(newer, 1)).message).toContain('made by a newer ctrdbg');
    expect(
      inputFailure(() => seekHit(write('header-only.jsonl', `${sampleLines[0]}\n`), 1)).message,
    ).toContain('has no hits');
  });
});

describe('createRecordingWriter', () => {
  it('writes canonical lines, mode 0600, replacing an existing file only with force', () => {
    const path = join(dir, 'rec.jsonl');
    writeFileSync(path, 'an earlier recording\n', { mode: 0o644 });
    expect(inputFailure(() => createRecordingWriter(path)).message).toContain('exists already');
    const writer = createRecordingWriter(path, { fsyncEveryRecords: 2, force: true });
    // Until the header is on disk, the old file is untouched.
    expect(readFileSync(path, 'utf8')).toBe('an earlier recording\n');
    writer.writeHeader(header);
    const hits = sampleLines.slice(1, 13).map((l) => JSON.parse(l) as HitRecord);
    // Scrambled key order in, canonical order out.
    for (const hit of hits)
      writer.writeHit(Object.fromEntries(Object.entries(hit).reverse()) as unknown as HitRecord);
    writer.writeEnd(JSON.parse(sampleLines[13]!));
    writer.close();
    expect(writer.records).toBe(14);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, 'utf8')).toBe(`${sampleLines.join('\n')}\n`);
    expect(() => writer.writeHit(hits[0]!)).toThrow(/closed/);
    expect(readdirSync(dir).filter((f) => f.includes('ctrdbg-partial'))).toEqual([]);
  });

  it('leaves the old file and no partial one when it ends before the header', () => {
    const path = join(dir, 'kept.jsonl');
    writeFileSync(path, 'keep me\n');
    const writer = createRecordingWriter(path, { force: true });
    expect(readdirSync(dir).some((f) => f.startsWith('.kept.jsonl.') && f.endsWith('.ctrdbg-partial'))).toBe(
      true,
    );
    writer.close();
    expect(readFileSync(path, 'utf8')).toBe('keep me\n');
    expect(readdirSync(dir).filter((f) => f.includes('ctrdbg-partial'))).toEqual([]);
  });

  it('creates a new file mode 0600 and reports an unwritable path as an input error', () => {
    const path = join(dir, 'new.jsonl');
    const writer = createRecordingWriter(path);
    writer.writeHeader(header);
    writer.close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(inputFailure(() => createRecordingWriter(join(dir, 'missing-dir', 'x.jsonl'))).message).toContain(
      'does not exist',
    );
  });
});
