/**
 * Writing a recording: one JSON line per record in the format's key order (hitLine.ts), fsynced periodically,
 * mode 0600 (recordings can hold credentials). It never appends to or overwrites a file in place: it writes a
 * temporary file beside the target and renames it into place once the header is on disk, so a crash leaves
 * either the old file or a readable new one.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  fsyncSync,
  openSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { inputError } from '../errors.js';
import type { EndRecord, HitRecord, RecordingHeader } from './format.js';
import { serializeHit } from './hitLine.js';

export interface RecordingWriterOptions {
  /** Replace an existing file (otherwise an existing file is an input error). */
  force?: boolean;
  /** fsync after this many records (default 2000)… */
  fsyncEveryRecords?: number;
  /** …or when this much time has passed since the last fsync (default 1000 ms), whichever comes first. */
  fsyncIntervalMs?: number;
}

export interface RecordingWriter {
  readonly path: string;
  /** Records written so far. */
  readonly records: number;
  writeHeader(header: RecordingHeader): void;
  writeHit(hit: HitRecord): void;
  writeEnd(end: EndRecord): void;
  /** Forces the data to disk now. */
  sync(): void;
  /** Syncs and closes; further writes throw. */
  close(): void;
}

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

export function createRecordingWriter(path: string, options: RecordingWriterOptions = {}): RecordingWriter {
  const everyRecords = options.fsyncEveryRecords ?? 2000;
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

  // Hits arrive in bursts (every hit of one agent read): their lines are joined and written once per turn of the
  // event loop, or at 256 KB; the header, the end record and every sync write at once.
  let pending: string[] = [];
  let pendingBytes = 0;
  let scheduled = false;
  const writeOut = () => {
    if (pending.length === 0) return;
    const buffer = Buffer.from(pending.join(''), 'utf8');
    pending = [];
    pendingBytes = 0;
    let done = 0;
    while (done < buffer.length) done += writeSync(fd, buffer, done, buffer.length - done);
  };
  const sync = () => {
    if (closed) return;
    writeOut();
    fsyncSync(fd);
    unsynced = 0;
    lastSync = Date.now();
  };
  const writeLine = (line: string, now = false) => {
    if (closed) throw new Error(`session writer for ${path} is closed`);
    pending.push(`${line}\n`);
    pendingBytes += line.length + 1;
    records++;
    unsynced++;
    if (now || pendingBytes >= 256 * 1024) writeOut();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        if (!closed) writeOut();
      });
    }
    if (unsynced >= everyRecords || Date.now() - lastSync >= intervalMs) sync();
  };

  return {
    path,
    get records() {
      return records;
    },
    writeHeader: (header) => {
      writeLine(JSON.stringify(header), true);
      place();
    },
    writeHit: (hit) => writeLine(serializeHit(hit)),
    writeEnd: (end) => {
      writeLine(JSON.stringify(end), true);
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
