/** Low-level reading of recording files: opening with clear errors, positioned reads, header validation. */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { inputError } from '../errors.js';
import { RECORDING_FORMAT, RECORDING_VERSION, type RecordingHeader } from './format.js';

export const NEWLINE = 0x0a;
export const CHUNK_BYTES = 1 << 20;
/** A header bigger than this is not a header: refuse instead of reading a large foreign file to its end. */
export const MAX_HEADER_BYTES = 16 << 20;
/** Enough of a canonical hit line to reach the end of its `location` object. */
export const META_PREFIX_BYTES = 768;

export function openForReading(path: string): number {
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

export function notASession(path: string, why: string): Error {
  return inputError(`${path} is not a ctrdbg session file (${why})`, {
    hint: 'Pass a .jsonl file written by `ctrdbg attach --record`; its first line is the session header.',
  });
}

export function validateHeader(path: string, line: string): RecordingHeader {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    throw notASession(path, 'line 1 is not JSON');
  }
  const header = parsed as Partial<RecordingHeader> | null;
  if (header === null || typeof header !== 'object' || header.format !== RECORDING_FORMAT) {
    throw notASession(path, `line 1 has no "format": "${RECORDING_FORMAT}"`);
  }
  if (typeof header.version !== 'number' || !Number.isInteger(header.version) || header.version < 1) {
    throw notASession(path, 'the header has no valid version');
  }
  if (header.version > RECORDING_VERSION) {
    throw inputError(
      `${path} is session format version ${header.version}, made by a newer ctrdbg (this one reads up to version ${RECORDING_VERSION})`,
      {
        hint: 'Upgrade ctrdbg to replay it.',
        details: { version: header.version, supported: RECORDING_VERSION },
      },
    );
  }
  if (!Array.isArray(header.breakpoints) || !Array.isArray(header.sets)) {
    throw notASession(path, 'the header lacks sets/breakpoints');
  }
  return header as RecordingHeader;
}

export function readRangeBytes(fd: number, offset: number, length: number): Buffer {
  const buffer = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buffer, done, length - done, offset + done);
    if (n === 0) break;
    done += n;
  }
  return buffer.subarray(0, done);
}

export function readRange(fd: number, offset: number, length: number): string {
  return readRangeBytes(fd, offset, length).toString('utf8');
}

export function checkSeqRange(path: string, seq: number, hitCount: number): void {
  if (!Number.isInteger(seq) || seq < 1 || seq > hitCount) {
    throw inputError(
      hitCount === 0
        ? `hit ${seq} does not exist: ${path} has no hits`
        : `hit ${seq} is out of range: ${path} has ${hitCount} hits (1–${hitCount})`,
      { details: { seq, hits: hitCount } },
    );
  }
}
