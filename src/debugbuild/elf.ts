/**
 * A small ELF reader: just enough of the format to tell whether a containerd binary can be debugged
 * (architecture, section table, notes, Go build info) without shelling out to `file` or `go version -m`,
 * which may be missing or a different Go release than the one that built the binary.
 *
 * Layout references: the System V gABI (ELF header, section headers, notes) and Go's
 * debug/buildinfo format for `.go.buildinfo`. Everything reads through a `ByteReader`, so a 45 MB binary
 * is never loaded whole and unit tests can feed synthetic buffers.
 */
import { open } from 'node:fs/promises';

/** Reads `length` bytes at `offset`; may return fewer at end of input. */
export type ByteReader = (offset: number, length: number) => Promise<Buffer>;

export type ElfClass = 32 | 64;
export type Endianness = 'little' | 'big';

export interface ElfHeader {
  elfClass: ElfClass;
  endianness: Endianness;
  /** EI_OSABI: 0 System V (Linux and most Go targets), 3 GNU/Linux, 9 FreeBSD, 2 NetBSD, 12 OpenBSD, … */
  osAbi: number;
  /** e_type: 1 relocatable, 2 executable, 3 shared object (also PIE), 4 core. */
  type: number;
  machine: number;
  /** Go's name for the architecture (amd64, arm64, …), or `unknown(<e_machine>)`. */
  arch: string;
  entry: bigint;
  programHeaderOffset: number;
  programHeaderEntrySize: number;
  programHeaderCount: number;
  sectionHeaderOffset: number;
  sectionHeaderEntrySize: number;
  sectionCount: number;
  sectionNameIndex: number;
}

export interface ElfSection {
  name: string;
  type: number;
  flags: bigint;
  addr: bigint;
  offset: number;
  size: number;
}

export interface ElfFile {
  header: ElfHeader;
  sections: ElfSection[];
  section(name: string): ElfSection | undefined;
  /** The section's bytes as stored in the file (compressed sections stay compressed). */
  readSection(section: ElfSection): Promise<Buffer>;
  /** Bytes at a virtual address, through the section that maps it (for pointers inside Go build info). */
  readVirtual(addr: bigint, length: number): Promise<Buffer | undefined>;
}

export const SHT_NOBITS = 8;
export const SHT_SYMTAB = 2;
export const SHT_NOTE = 7;

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

export class ElfFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ElfFormatError';
  }
}

/**
 * e_machine → GOARCH. Only the machines Go targets on Linux; the class and byte order pick the variant
 * where one e_machine covers several GOARCH values.
 */
export function goArchForMachine(machine: number, elfClass: ElfClass, endianness: Endianness): string {
  switch (machine) {
    case 62:
      return 'amd64';
    case 183:
      return 'arm64';
    case 3:
      return '386';
    case 40:
      return 'arm';
    case 21:
      return endianness === 'little' ? 'ppc64le' : 'ppc64';
    case 22:
      return 's390x';
    case 243:
      return elfClass === 64 ? 'riscv64' : 'riscv';
    case 258:
      return 'loong64';
    case 8:
      if (elfClass === 64) return endianness === 'little' ? 'mips64le' : 'mips64';
      return endianness === 'little' ? 'mipsle' : 'mips';
    default:
      return `unknown(${machine})`;
  }
}

/** A cursor over one buffer that knows the file's class and byte order. */
class Fields {
  constructor(
    readonly buf: Buffer,
    readonly endianness: Endianness,
  ) {}
  u16(at: number): number {
    return this.endianness === 'little' ? this.buf.readUInt16LE(at) : this.buf.readUInt16BE(at);
  }
  u32(at: number): number {
    return this.endianness === 'little' ? this.buf.readUInt32LE(at) : this.buf.readUInt32BE(at);
  }
  u64(at: number): bigint {
    return this.endianness === 'little' ? this.buf.readBigUInt64LE(at) : this.buf.readBigUInt64BE(at);
  }
  /** A file offset or size: exact as a number below 2^53, which every real binary is. */
  word(at: number, elfClass: ElfClass): number {
    return elfClass === 64 ? Number(this.u64(at)) : this.u32(at);
  }
  addr(at: number, elfClass: ElfClass): bigint {
    return elfClass === 64 ? this.u64(at) : BigInt(this.u32(at));
  }
}

export function parseElfHeader(buf: Buffer): ElfHeader {
  if (buf.length < 16 || !buf.subarray(0, 4).equals(ELF_MAGIC)) throw new ElfFormatError('not an ELF file');
  const classByte = buf[4];
  const dataByte = buf[5];
  if (classByte !== 1 && classByte !== 2) throw new ElfFormatError(`unknown ELF class ${classByte}`);
  if (dataByte !== 1 && dataByte !== 2) throw new ElfFormatError(`unknown ELF byte order ${dataByte}`);
  const elfClass: ElfClass = classByte === 2 ? 64 : 32;
  const endianness: Endianness = dataByte === 1 ? 'little' : 'big';
  const needed = elfClass === 64 ? 64 : 52;
  if (buf.length < needed) throw new ElfFormatError('truncated ELF header');
  const f = new Fields(buf, endianness);
  const type = f.u16(16);
  const machine = f.u16(18);
  // The 32- and 64-bit headers differ only in the width of entry/phoff/shoff, which shifts what follows.
  const entry = f.addr(24, elfClass);
  const programHeaderOffset = elfClass === 64 ? f.word(32, 64) : f.u32(28);
  const sectionHeaderOffset = elfClass === 64 ? f.word(40, 64) : f.u32(32);
  const tail = elfClass === 64 ? 58 : 46;
  return {
    elfClass,
    endianness,
    osAbi: buf[7] ?? 0,
    type,
    machine,
    arch: goArchForMachine(machine, elfClass, endianness),
    entry,
    programHeaderOffset,
    programHeaderEntrySize: f.u16(tail - 4),
    programHeaderCount: f.u16(tail - 2),
    sectionHeaderOffset,
    sectionHeaderEntrySize: f.u16(tail),
    sectionCount: f.u16(tail + 2),
    sectionNameIndex: f.u16(tail + 4),
  };
}

interface RawSection extends Omit<ElfSection, 'name'> {
  nameOffset: number;
}

export function parseSectionHeaders(buf: Buffer, header: ElfHeader): RawSection[] {
  const f = new Fields(buf, header.endianness);
  const sections: RawSection[] = [];
  const size = header.sectionHeaderEntrySize;
  for (let i = 0; i < header.sectionCount; i++) {
    const at = i * size;
    if (at + size > buf.length) throw new ElfFormatError('truncated section header table');
    if (header.elfClass === 64) {
      sections.push({
        nameOffset: f.u32(at),
        type: f.u32(at + 4),
        flags: f.u64(at + 8),
        addr: f.u64(at + 16),
        offset: f.word(at + 24, 64),
        size: f.word(at + 32, 64),
      });
    } else {
      sections.push({
        nameOffset: f.u32(at),
        type: f.u32(at + 4),
        flags: BigInt(f.u32(at + 8)),
        addr: BigInt(f.u32(at + 12)),
        offset: f.u32(at + 16),
        size: f.u32(at + 20),
      });
    }
  }
  return sections;
}

export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_INTERP = 3;

export interface ElfSegment {
  type: number;
  offset: number;
  fileSize: number;
}

/** The program header table: what the kernel looks at to run the file (segments, interpreter, dynamic). */
export async function readProgramHeaders(read: ByteReader, header: ElfHeader): Promise<ElfSegment[]> {
  if (header.programHeaderOffset === 0 || header.programHeaderCount === 0) return [];
  const size = header.programHeaderEntrySize;
  const buf = await read(header.programHeaderOffset, size * header.programHeaderCount);
  const f = new Fields(buf, header.endianness);
  const segments: ElfSegment[] = [];
  for (let i = 0; i < header.programHeaderCount; i++) {
    const at = i * size;
    if (at + size > buf.length) throw new ElfFormatError('truncated program header table');
    // 64-bit: type, flags, offset, vaddr, paddr, filesz…; 32-bit: type, offset, vaddr, paddr, filesz…
    segments.push(
      header.elfClass === 64
        ? { type: f.u32(at), offset: f.word(at + 8, 64), fileSize: f.word(at + 32, 64) }
        : { type: f.u32(at), offset: f.u32(at + 4), fileSize: f.u32(at + 16) },
    );
  }
  return segments;
}

const DT_NULL = 0n;
const DT_FLAGS_1 = 0x6ffffffbn;
const DF_1_PIE = 0x08000000n;

/** True when the dynamic segment's DT_FLAGS_1 says "position-independent executable" (not a library). */
export async function hasPieFlag(read: ByteReader, header: ElfHeader, dynamic: ElfSegment): Promise<boolean> {
  const buf = await read(dynamic.offset, Math.min(dynamic.fileSize, 64 * 1024));
  const f = new Fields(buf, header.endianness);
  const entry = header.elfClass === 64 ? 16 : 8;
  for (let at = 0; at + entry <= buf.length; at += entry) {
    const tag = header.elfClass === 64 ? f.u64(at) : BigInt(f.u32(at));
    const value = header.elfClass === 64 ? f.u64(at + 8) : BigInt(f.u32(at + 4));
    if (tag === DT_NULL) break;
    if (tag === DT_FLAGS_1) return (value & DF_1_PIE) !== 0n;
  }
  return false;
}

function cString(buf: Buffer, at: number): string {
  if (at >= buf.length) return '';
  const end = buf.indexOf(0, at);
  return buf.toString('latin1', at, end === -1 ? buf.length : end);
}

/** Parses an ELF through a reader: header, section table and names. Section contents are read on demand. */
export async function parseElf(read: ByteReader): Promise<ElfFile> {
  const header = parseElfHeader(await read(0, 64));
  let sections: ElfSection[] = [];
  if (header.sectionHeaderOffset !== 0 && header.sectionCount > 0) {
    const tableSize = header.sectionCount * header.sectionHeaderEntrySize;
    const raw = parseSectionHeaders(await read(header.sectionHeaderOffset, tableSize), header);
    const names = raw[header.sectionNameIndex];
    const strtab = names ? await read(names.offset, names.size) : Buffer.alloc(0);
    sections = raw.map(({ nameOffset, ...rest }) => ({ name: cString(strtab, nameOffset), ...rest }));
  }
  const readSection = async (section: ElfSection) =>
    section.type === SHT_NOBITS ? Buffer.alloc(0) : read(section.offset, section.size);
  return {
    header,
    sections,
    section: (name) => sections.find((s) => s.name === name),
    readSection,
    readVirtual: async (addr, length) => {
      const holder = sections.find(
        (s) =>
          s.type !== SHT_NOBITS &&
          s.addr !== 0n &&
          addr >= s.addr &&
          addr + BigInt(length) <= s.addr + BigInt(s.size),
      );
      if (!holder) return undefined;
      return read(holder.offset + Number(addr - holder.addr), length);
    },
  };
}

export function bufferReader(buf: Buffer): ByteReader {
  return async (offset, length) => buf.subarray(offset, Math.min(buf.length, offset + length));
}

/** Opens a file and hands a reader over it to `use`; the file is closed afterwards. */
export async function withFileReader<T>(path: string, use: (read: ByteReader) => Promise<T>): Promise<T> {
  const handle = await open(path, 'r');
  try {
    return await use(async (offset, length) => {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buf, 0, length, offset);
      return buf.subarray(0, bytesRead);
    });
  } finally {
    await handle.close();
  }
}

/** Opens a file, parses it and hands the parsed ELF to `use`; the file is closed afterwards. */
export async function withElfFile<T>(path: string, use: (elf: ElfFile) => Promise<T>): Promise<T> {
  return withFileReader(path, async (read) => use(await parseElf(read)));
}

export interface ElfNote {
  name: string;
  type: number;
  desc: Buffer;
}

/** Splits a SHT_NOTE section into its notes (namesz, descsz, type, then 4-byte aligned name and desc). */
export function parseNotes(data: Buffer, endianness: Endianness): ElfNote[] {
  const f = new Fields(data, endianness);
  const notes: ElfNote[] = [];
  const align4 = (n: number) => (n + 3) & ~3;
  let at = 0;
  while (at + 12 <= data.length) {
    const nameSize = f.u32(at);
    const descSize = f.u32(at + 4);
    const type = f.u32(at + 8);
    const nameStart = at + 12;
    const descStart = nameStart + align4(nameSize);
    if (descStart + descSize > data.length) break;
    notes.push({
      // The stored name includes its NUL terminator.
      name: data.toString('latin1', nameStart, nameStart + nameSize).replace(/\0+$/, ''),
      type,
      desc: data.subarray(descStart, descStart + descSize),
    });
    at = descStart + align4(descSize);
  }
  return notes;
}

const NT_GNU_BUILD_ID = 3;
/** Go's linker writes its own build ID as a note named "Go" of type 4. */
const NT_GO_BUILD_ID = 4;

export async function readBuildIds(
  elf: ElfFile,
): Promise<{ gnu: string | undefined; go: string | undefined }> {
  let gnu: string | undefined;
  let go: string | undefined;
  for (const section of elf.sections) {
    if (section.type !== SHT_NOTE) continue;
    for (const note of parseNotes(await elf.readSection(section), elf.header.endianness)) {
      if (note.name === 'GNU' && note.type === NT_GNU_BUILD_ID) gnu ??= note.desc.toString('hex');
      if (note.name === 'Go' && note.type === NT_GO_BUILD_ID) go ??= note.desc.toString('latin1');
    }
  }
  return { gnu, go };
}

/* ------------------------------------------------------------------ Go build info (.go.buildinfo) */

export interface GoModule {
  path: string;
  version: string;
  sum?: string;
  replacedBy?: { path: string; version: string; sum?: string };
}

export interface GoBuildInfo {
  goVersion: string;
  /** The main package's import path (`path` line). */
  path?: string;
  main?: GoModule;
  deps: GoModule[];
  /** `build` lines: -gcflags, -ldflags, CGO_ENABLED, GOARCH, vcs.revision, … */
  settings: Record<string, string>;
}

const BUILDINFO_MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');
/** Since Go 1.18 the two strings follow the header inline instead of being pointed to. */
const FLAG_INLINE_STRINGS = 0x2;
const FLAG_BIG_ENDIAN = 0x1;
const HEADER_SIZE = 32;

/** Unsigned LEB128 as written by Go's encoding/binary.PutUvarint. */
export function readUvarint(buf: Buffer, at: number): { value: number; next: number } | undefined {
  let value = 0;
  let shift = 0;
  for (let i = at; i < buf.length && i < at + 10; i++) {
    const byte = buf[i]!;
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return { value, next: i + 1 };
    shift += 7;
  }
  return undefined;
}

/**
 * The module info string is framed by 16-byte sentinels that cmd/go adds so it can be found in a
 * binary; they are noise for us.
 */
function stripModinfoFrame(modinfo: string): string {
  if (modinfo.length >= 33 && modinfo[modinfo.length - 17] === '\n') return modinfo.slice(16, -16);
  return modinfo;
}

/**
 * Reads the `.go.buildinfo` section. Go ≥ 1.18 stores the version and module info inline as
 * varint-prefixed strings; older releases store two pointers to Go string headers, which need
 * `readVirtual` to follow.
 */
export async function parseGoBuildInfo(
  data: Buffer,
  readVirtual?: (addr: bigint, length: number) => Promise<Buffer | undefined>,
): Promise<GoBuildInfo | undefined> {
  if (data.length < HEADER_SIZE || !data.subarray(0, BUILDINFO_MAGIC.length).equals(BUILDINFO_MAGIC))
    return undefined;
  const ptrSize = data[14]!;
  const flags = data[15]!;
  let version: string | undefined;
  let modinfo: string | undefined;
  if (flags & FLAG_INLINE_STRINGS) {
    const first = readUvarint(data, HEADER_SIZE);
    if (!first) return undefined;
    version = data.toString('utf8', first.next, first.next + first.value);
    const second = readUvarint(data, first.next + first.value);
    modinfo = second ? data.toString('utf8', second.next, second.next + second.value) : '';
  } else {
    if (!readVirtual || (ptrSize !== 4 && ptrSize !== 8)) return undefined;
    const endianness: Endianness = flags & FLAG_BIG_ENDIAN ? 'big' : 'little';
    const f = new Fields(data, endianness);
    const pointer = (at: number) => (ptrSize === 8 ? f.u64(at) : BigInt(f.u32(at)));
    const readGoString = async (addr: bigint): Promise<string | undefined> => {
      const header = await readVirtual(addr, ptrSize * 2);
      if (!header || header.length < ptrSize * 2) return undefined;
      const h = new Fields(header, endianness);
      const dataAddr = ptrSize === 8 ? h.u64(0) : BigInt(h.u32(0));
      const length = ptrSize === 8 ? Number(h.u64(8)) : h.u32(4);
      if (length === 0) return '';
      return (await readVirtual(dataAddr, length))?.toString('utf8');
    };
    version = await readGoString(pointer(16));
    modinfo = (await readGoString(pointer(16 + ptrSize))) ?? '';
  }
  if (version === undefined) return undefined;
  return { goVersion: version, ...parseModinfo(stripModinfoFrame(modinfo ?? '')) };
}

/** Undoes Go's strconv.Quote for the characters it escapes in build settings. */
function unquoteGo(text: string): string {
  if (!text.startsWith('"') || !text.endsWith('"') || text.length < 2) return text;
  return text
    .slice(1, -1)
    .replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)/g, (_, esc: string) => {
      switch (esc[0]) {
        case 'n':
          return '\n';
        case 't':
          return '\t';
        case 'r':
          return '\r';
        case 'x':
        case 'u':
        case 'U':
          return String.fromCodePoint(Number.parseInt(esc.slice(1), 16));
        default:
          return esc;
      }
    });
}

/** Splits `key=value` where the key itself may be quoted (it contains '=' or spaces). */
function splitSetting(text: string): [string, string] {
  if (text.startsWith('"')) {
    const close = text.search(/(?<!\\)"=/);
    if (close > 0) return [unquoteGo(text.slice(0, close + 1)), unquoteGo(text.slice(close + 2))];
  }
  const eq = text.indexOf('=');
  if (eq === -1) return [text, ''];
  return [text.slice(0, eq), unquoteGo(text.slice(eq + 1))];
}

/** Parses the tab-separated lines `go version -m` prints: path, mod, dep, =>, build. */
export function parseModinfo(text: string): Omit<GoBuildInfo, 'goVersion'> {
  const info: Omit<GoBuildInfo, 'goVersion'> = { deps: [], settings: {} };
  let last: GoModule | undefined;
  for (const line of text.split('\n')) {
    const [kind, ...fields] = line.split('\t');
    const module = (): GoModule => ({
      path: fields[0] ?? '',
      version: fields[1] ?? '',
      ...(fields[2] ? { sum: fields[2] } : {}),
    });
    switch (kind) {
      case 'path':
        info.path = fields[0];
        break;
      case 'mod':
        last = info.main = module();
        break;
      case 'dep':
        last = module();
        info.deps.push(last);
        break;
      case '=>':
        if (last) last.replacedBy = module();
        break;
      case 'build': {
        const [key, value] = splitSetting(fields.join('\t'));
        info.settings[key] = value;
        break;
      }
    }
  }
  return info;
}
