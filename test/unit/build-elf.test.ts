import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  bufferReader,
  type ElfClass,
  ElfFormatError,
  type Endianness,
  goArchForMachine,
  parseElf,
  parseGoBuildInfo,
  parseModinfo,
  parseNotes,
  readBuildIds,
  readUvarint,
  SHT_NOTE,
  SHT_SYMTAB,
  withElfFile,
} from '../../src/debugbuild/elf.js';

interface SectionSpec {
  name: string;
  type: number;
  data: Buffer;
  addr?: bigint;
}

/** Writes a minimal ELF: header, section contents, .shstrtab, then the section header table. */
function makeElf(options: {
  elfClass: ElfClass;
  endianness: Endianness;
  machine: number;
  sections: SectionSpec[];
}): Buffer {
  const { elfClass, endianness } = options;
  const le = endianness === 'little';
  const headerSize = elfClass === 64 ? 64 : 52;
  const entrySize = elfClass === 64 ? 64 : 40;
  const all: SectionSpec[] = [...options.sections];
  const names = ['', ...all.map((s) => s.name), '.shstrtab'];
  const nameOffsets: number[] = [];
  let strtab = '';
  for (const name of names) {
    nameOffsets.push(strtab.length);
    strtab += `${name}\0`;
  }
  all.push({ name: '.shstrtab', type: 3, data: Buffer.from(strtab, 'latin1') });
  const offsets: number[] = [];
  let cursor = headerSize;
  for (const section of all) {
    offsets.push(cursor);
    cursor += section.data.length;
  }
  const shoff = (cursor + 7) & ~7;
  const total = shoff + entrySize * (all.length + 1);
  const buf = Buffer.alloc(total);
  const u16 = (v: number, at: number) => (le ? buf.writeUInt16LE(v, at) : buf.writeUInt16BE(v, at));
  const u32 = (v: number, at: number) => (le ? buf.writeUInt32LE(v, at) : buf.writeUInt32BE(v, at));
  const u64 = (v: bigint, at: number) => (le ? buf.writeBigUInt64LE(v, at) : buf.writeBigUInt64BE(v, at));
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, elfClass === 64 ? 2 : 1, le ? 1 : 2, 1]).copy(buf, 0);
  u16(2, 16);
  u16(options.machine, 18);
  u32(1, 20);
  if (elfClass === 64) {
    u64(0x401000n, 24);
    u64(BigInt(shoff), 40);
    u16(headerSize, 52);
    u16(entrySize, 58);
    u16(all.length + 1, 60);
    u16(all.length, 62);
  } else {
    u32(0x401000, 24);
    u32(shoff, 32);
    u16(headerSize, 40);
    u16(entrySize, 46);
    u16(all.length + 1, 48);
    u16(all.length, 50);
  }
  all.forEach((section, i) => {
    section.data.copy(buf, offsets[i]!);
    const at = shoff + entrySize * (i + 1);
    u32(nameOffsets[i + 1]!, at);
    u32(section.type, at + 4);
    if (elfClass === 64) {
      u64(section.addr ?? 0n, at + 16);
      u64(BigInt(offsets[i]!), at + 24);
      u64(BigInt(section.data.length), at + 32);
    } else {
      u32(Number(section.addr ?? 0n), at + 12);
      u32(offsets[i]!, at + 16);
      u32(section.data.length, at + 20);
    }
  });
  return buf;
}

function note(name: string, type: number, desc: Buffer, endianness: Endianness = 'little'): Buffer {
  const pad = (n: number) => (n + 3) & ~3;
  const nameBytes = Buffer.from(`${name}\0`, 'latin1');
  const out = Buffer.alloc(12 + pad(nameBytes.length) + pad(desc.length));
  const w = (v: number, at: number) =>
    endianness === 'little' ? out.writeUInt32LE(v, at) : out.writeUInt32BE(v, at);
  w(nameBytes.length, 0);
  w(desc.length, 4);
  w(type, 8);
  nameBytes.copy(out, 12);
  desc.copy(out, 12 + pad(nameBytes.length));
  return out;
}

function uvarint(n: number): Buffer {
  const bytes: number[] = [];
  let v = n;
  while (v >= 0x80) {
    bytes.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

const SENTINEL_START = Buffer.from('3077af0c9274080241e1c107e6d618e6', 'hex');
const SENTINEL_END = Buffer.from('f932433186182072008242104116d8f2', 'hex');
const MODINFO = [
  'path\tctrdbg.lab/containerd',
  'mod\tgithub.com/containerd/containerd\t(devel)\t',
  'dep\tgithub.com/pkg/errors\tv0.9.1\th1:abc=',
  'dep\tgolang.org/x/sys\tv0.1.0\th1:def=',
  '=>\t../sys\t(devel)\t',
  'build\t-compiler=gc',
  'build\t-gcflags="all=-N -l"',
  'build\t-ldflags="-X github.com/containerd/containerd/version.Version=1.6.20~ds1"',
  'build\t"weird=key"="v\\tx"',
  'build\tCGO_ENABLED=0',
  'build\tGOARCH=arm64',
  '',
].join('\n');

/** The Go ≥ 1.18 layout: 32-byte header, then varint-prefixed version and framed module info. */
function inlineBuildInfo(version: string, modinfo: string): Buffer {
  const header = Buffer.alloc(32);
  Buffer.from('\xff Go buildinf:', 'latin1').copy(header, 0);
  header[14] = 8;
  header[15] = 2;
  const framed = Buffer.concat([SENTINEL_START, Buffer.from(modinfo), SENTINEL_END]);
  return Buffer.concat([
    header,
    uvarint(version.length),
    Buffer.from(version),
    uvarint(framed.length),
    framed,
  ]);
}

describe('ELF header and sections', () => {
  it('parses a synthetic 64-bit little-endian x86-64 file with notes, build info and a symbol table', async () => {
    const gnuId = Buffer.from('b31f0708d353bcd5d7136b6d8e55cbcd23c49a89', 'hex');
    const elf = makeElf({
      elfClass: 64,
      endianness: 'little',
      machine: 62,
      sections: [
        { name: '.note.gnu.build-id', type: SHT_NOTE, data: note('GNU', 3, gnuId) },
        { name: '.note.go.buildid', type: SHT_NOTE, data: note('Go', 4, Buffer.from('abc/def')) },
        { name: '.go.buildinfo', type: 1, data: inlineBuildInfo('go1.19.8', MODINFO), addr: 0x2000000n },
        { name: '.symtab', type: SHT_SYMTAB, data: Buffer.alloc(24) },
      ],
    });
    const parsed = await parseElf(bufferReader(elf));
    expect(parsed.header).toMatchObject({
      elfClass: 64,
      endianness: 'little',
      machine: 62,
      arch: 'amd64',
      type: 2,
    });
    expect(parsed.sections.map((s) => s.name)).toEqual([
      '',
      '.note.gnu.build-id',
      '.note.go.buildid',
      '.go.buildinfo',
      '.symtab',
      '.shstrtab',
    ]);
    expect(await readBuildIds(parsed)).toEqual({ gnu: gnuId.toString('hex'), go: 'abc/def' });
    const info = await parseGoBuildInfo(await parsed.readSection(parsed.section('.go.buildinfo')!));
    expect(info?.goVersion).toBe('go1.19.8');
    expect(info?.path).toBe('ctrdbg.lab/containerd');
    expect(info?.settings['-gcflags']).toBe('all=-N -l');
    expect(info?.settings.GOARCH).toBe('arm64');
    // A byte read at a virtual address goes through the section that maps it.
    expect((await parsed.readVirtual(0x2000000n, 14))?.toString('latin1')).toBe('\xff Go buildinf:');
    expect(await parsed.readVirtual(0x1000n, 4)).toBeUndefined();
  });

  it('parses a 32-bit big-endian file and maps its machine', async () => {
    const elf = makeElf({
      elfClass: 32,
      endianness: 'big',
      machine: 8,
      sections: [
        {
          name: '.note.gnu.build-id',
          type: SHT_NOTE,
          data: note('GNU', 3, Buffer.from([1, 2, 3, 4]), 'big'),
        },
      ],
    });
    const parsed = await parseElf(bufferReader(elf));
    expect(parsed.header).toMatchObject({ elfClass: 32, endianness: 'big', arch: 'mips' });
    expect(parsed.sections.map((s) => s.name)).toEqual(['', '.note.gnu.build-id', '.shstrtab']);
    expect((await readBuildIds(parsed)).gnu).toBe('01020304');
  });

  it('rejects what is not ELF', async () => {
    await expect(parseElf(bufferReader(Buffer.from('#!/bin/sh\necho hi\n')))).rejects.toBeInstanceOf(
      ElfFormatError,
    );
    const badClass = Buffer.alloc(64);
    Buffer.from([0x7f, 0x45, 0x4c, 0x46, 9, 1]).copy(badClass);
    await expect(parseElf(bufferReader(badClass))).rejects.toThrow(/class/);
  });

  it.each([
    [62, 64, 'little', 'amd64'],
    [183, 64, 'little', 'arm64'],
    [3, 32, 'little', '386'],
    [40, 32, 'little', 'arm'],
    [21, 64, 'little', 'ppc64le'],
    [21, 64, 'big', 'ppc64'],
    [22, 64, 'big', 's390x'],
    [243, 64, 'little', 'riscv64'],
    [8, 64, 'little', 'mips64le'],
    [9999, 64, 'little', 'unknown(9999)'],
  ] as const)('maps e_machine %d (%d-bit %s) to %s', (machine, elfClass, endianness, arch) => {
    expect(goArchForMachine(machine, elfClass, endianness)).toBe(arch);
  });

  it('reads the real stripped /usr/bin/containerd: amd64, no .symtab, no DWARF, build ID as `file` shows it', async () => {
    const fileOutput = execFileSync('file', ['-b', '/usr/bin/containerd'], { encoding: 'utf8' });
    const expectedId = /BuildID\[sha1\]=([0-9a-f]+)/.exec(fileOutput)?.[1];
    await withElfFile('/usr/bin/containerd', async (elf) => {
      expect(elf.header.arch).toBe('amd64');
      expect(elf.section('.symtab')).toBeUndefined();
      expect(elf.section('.debug_info')).toBeUndefined();
      expect(elf.section('.go.buildinfo')).toBeDefined();
      expect((await readBuildIds(elf)).gnu).toBe(expectedId);
      const info = await parseGoBuildInfo(
        await elf.readSection(elf.section('.go.buildinfo')!),
        elf.readVirtual,
      );
      const goVersion = execFileSync('go', ['version', '/usr/bin/containerd'], { encoding: 'utf8' })
        .split(': ')[1]
        ?.trim();
      expect(info?.goVersion).toBe(goVersion);
      expect(info?.path).toBe('github.com/containerd/containerd/cmd/containerd');
    });
  });

  it('reads /bin/true: an ELF with no Go build info', async () => {
    await withElfFile('/bin/true', async (elf) => {
      expect(elf.header.type).toBe(3); // PIE
      expect(elf.section('.go.buildinfo')).toBeUndefined();
    });
  });
});

describe('Go build info', () => {
  it('returns undefined without the magic', async () => {
    expect(await parseGoBuildInfo(Buffer.alloc(64))).toBeUndefined();
  });

  it('follows pointers in the pre-1.18 layout', async () => {
    // Header: magic, ptrsize 8, flags 0 (little-endian, pointers), then two pointers to string headers.
    const header = Buffer.alloc(32);
    Buffer.from('\xff Go buildinf:', 'latin1').copy(header, 0);
    header[14] = 8;
    header.writeBigUInt64LE(0x5000n, 16);
    header.writeBigUInt64LE(0x5010n, 24);
    const memory = new Map<bigint, Buffer>();
    const stringHeader = (ptr: bigint, len: number) => {
      const b = Buffer.alloc(16);
      b.writeBigUInt64LE(ptr, 0);
      b.writeBigUInt64LE(BigInt(len), 8);
      return b;
    };
    const modinfo = Buffer.concat([
      SENTINEL_START,
      Buffer.from('path\tx/y\nbuild\tGOARCH=amd64\n'),
      SENTINEL_END,
    ]);
    memory.set(0x5000n, stringHeader(0x6000n, 8));
    memory.set(0x5010n, stringHeader(0x7000n, modinfo.length));
    memory.set(0x6000n, Buffer.from('go1.17.3'));
    memory.set(0x7000n, modinfo);
    const info = await parseGoBuildInfo(header, async (addr, length) =>
      memory.get(addr)?.subarray(0, length),
    );
    expect(info).toEqual({ goVersion: 'go1.17.3', path: 'x/y', deps: [], settings: { GOARCH: 'amd64' } });
  });

  it('parses module info lines, replacements and quoted settings', () => {
    const info = parseModinfo(MODINFO);
    expect(info.main).toEqual({ path: 'github.com/containerd/containerd', version: '(devel)' });
    expect(info.deps).toEqual([
      { path: 'github.com/pkg/errors', version: 'v0.9.1', sum: 'h1:abc=' },
      {
        path: 'golang.org/x/sys',
        version: 'v0.1.0',
        sum: 'h1:def=',
        replacedBy: { path: '../sys', version: '(devel)' },
      },
    ]);
    expect(info.settings['-ldflags']).toBe('-X github.com/containerd/containerd/version.Version=1.6.20~ds1');
    expect(info.settings['weird=key']).toBe('v\tx');
    expect(info.settings.CGO_ENABLED).toBe('0');
  });

  it('decodes unsigned varints', () => {
    expect(readUvarint(Buffer.from([0x05]), 0)).toEqual({ value: 5, next: 1 });
    expect(readUvarint(Buffer.from([0xcf, 0x02]), 0)).toEqual({ value: 335, next: 2 });
    expect(readUvarint(Buffer.from([0x80]), 0)).toBeUndefined();
  });

  it('splits notes with padding', () => {
    const data = Buffer.concat([
      note('GNU', 3, Buffer.from([0xaa, 0xbb, 0xcc])),
      note('Go', 4, Buffer.from('id')),
    ]);
    expect(parseNotes(data, 'little').map((n) => [n.name, n.type, n.desc.toString('hex')])).toEqual([
      ['GNU', 3, 'aabbcc'],
      ['Go', 4, '6964'],
    ]);
  });
});
