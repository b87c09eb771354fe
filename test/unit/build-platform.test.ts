import { describe, expect, it } from 'vitest';
import { bufferReader } from '../../src/debugbuild/elf.js';
import {
  type ExecutableFacts,
  platformProblems,
  readExecutableFactsFrom,
  runsLocally,
} from '../../src/debugbuild/platform.js';

/** A 64-bit little-endian ELF with a program header table (and optionally PT_INTERP / PT_DYNAMIC), no sections. */
function elf64(options: {
  type: number;
  machine: number;
  osAbi?: number;
  interp?: string;
  dynamicFlags1?: bigint;
}): Buffer {
  const phentsize = 56;
  const segments: { type: number; data: Buffer }[] = [];
  if (options.interp) segments.push({ type: 3, data: Buffer.from(`${options.interp}\0`, 'latin1') });
  if (options.dynamicFlags1 !== undefined) {
    const dyn = Buffer.alloc(32);
    dyn.writeBigUInt64LE(0x6ffffffbn, 0);
    dyn.writeBigUInt64LE(options.dynamicFlags1, 8);
    segments.push({ type: 2, data: dyn });
  }
  const phoff = 64;
  let cursor = phoff + phentsize * segments.length;
  const offsets = segments.map((s) => {
    const at = cursor;
    cursor += s.data.length;
    return at;
  });
  const buf = Buffer.alloc(cursor);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, options.osAbi ?? 0]).copy(buf, 0);
  buf.writeUInt16LE(options.type, 16);
  buf.writeUInt16LE(options.machine, 18);
  buf.writeUInt32LE(1, 20);
  buf.writeBigUInt64LE(BigInt(segments.length ? phoff : 0), 32);
  buf.writeUInt16LE(64, 52);
  buf.writeUInt16LE(phentsize, 54);
  buf.writeUInt16LE(segments.length, 56);
  segments.forEach((s, i) => {
    const at = phoff + phentsize * i;
    buf.writeUInt32LE(s.type, at);
    buf.writeBigUInt64LE(BigInt(offsets[i]!), at + 8);
    buf.writeBigUInt64LE(BigInt(s.data.length), at + 32);
    s.data.copy(buf, offsets[i]!);
  });
  return buf;
}

function macho(cpu: number, filetype: number): Buffer {
  const buf = Buffer.alloc(32);
  buf.writeUInt32LE(0xfeedfacf, 0); // stored little-endian: cf fa ed fe
  buf.writeUInt32LE(cpu, 4);
  buf.writeUInt32LE(filetype, 12);
  return buf;
}

const facts = (buf: Buffer) => readExecutableFactsFrom('/x', bufferReader(buf));

describe('readExecutableFacts', () => {
  it('tells executables, PIEs, shared libraries, objects and core dumps apart', async () => {
    expect(await facts(elf64({ type: 2, machine: 62 }))).toMatchObject({
      format: 'elf',
      os: 'linux',
      arch: 'amd64',
      kind: 'executable',
      description: 'an ELF 64-bit executable for linux/amd64 (static)',
    });
    const pie = await facts(elf64({ type: 3, machine: 183, interp: '/lib/ld-linux-aarch64.so.1' }));
    expect(pie).toMatchObject({
      kind: 'executable',
      arch: 'arm64',
      interpreter: '/lib/ld-linux-aarch64.so.1',
    });
    expect(pie.description).toBe(
      'an ELF 64-bit executable for linux/arm64 (dynamically linked, /lib/ld-linux-aarch64.so.1)',
    );
    expect((await facts(elf64({ type: 3, machine: 62, dynamicFlags1: 0x08000000n }))).kind).toBe(
      'executable',
    );
    expect((await facts(elf64({ type: 3, machine: 62, dynamicFlags1: 0n }))).kind).toBe('shared-library');
    expect((await facts(elf64({ type: 1, machine: 62 }))).kind).toBe('relocatable');
    expect((await facts(elf64({ type: 4, machine: 62 }))).kind).toBe('core');
  });

  it('reads the OS from EI_OSABI when the binary does not say', async () => {
    expect((await facts(elf64({ type: 2, machine: 62, osAbi: 9 }))).os).toBe('freebsd');
    expect((await facts(elf64({ type: 2, machine: 62, osAbi: 3 }))).os).toBe('linux');
  });

  it('recognises Mach-O (thin and universal), PE, scripts, text and empty files', async () => {
    expect(await facts(macho(0x0100000c, 2))).toMatchObject({
      format: 'mach-o',
      os: 'darwin',
      arch: 'arm64',
      kind: 'executable',
      description: 'a Mach-O executable for darwin/arm64 (macOS)',
    });
    expect((await facts(macho(0x01000007, 6))).kind).toBe('shared-library');
    const fat = Buffer.alloc(48);
    fat.writeUInt32BE(0xcafebabe, 0);
    fat.writeUInt32BE(2, 4);
    fat.writeUInt32BE(0x01000007, 8);
    fat.writeUInt32BE(0x0100000c, 28);
    expect(await facts(fat)).toMatchObject({ format: 'mach-o', arch: 'amd64+arm64' });
    const pe = Buffer.alloc(200);
    pe.write('MZ', 0, 'latin1');
    pe.writeUInt32LE(128, 60);
    pe.write('PE\0\0', 128, 'latin1');
    pe.writeUInt16LE(0x8664, 132);
    expect(await facts(pe)).toMatchObject({ format: 'pe', os: 'windows', arch: 'amd64' });
    expect((await facts(Buffer.from('#!/bin/sh\necho hi\n'))).description).toBe('a script for /bin/sh');
    expect((await facts(Buffer.from('just some words\n'))).format).toBe('text');
    expect((await facts(Buffer.alloc(0))).format).toBe('empty');
    expect((await facts(Buffer.from([0, 1, 2, 3, 255, 254]))).format).toBe('data');
  });
});

describe('platformProblems', () => {
  const node = { goArch: 'amd64' };
  it('accepts a Linux executable for the node’s arch, and nothing else', async () => {
    expect(platformProblems(await facts(elf64({ type: 2, machine: 62 })), node)).toEqual([]);
    expect(platformProblems(await facts(elf64({ type: 2, machine: 183 })), node)).toEqual([
      'it is for linux/arm64, but the node is linux/amd64',
    ]);
    expect(platformProblems(await facts(elf64({ type: 2, machine: 3 })), node)).toEqual([
      'it is for 386; ctrdbg supports linux/amd64 and linux/arm64 nodes',
    ]);
    expect(platformProblems(await facts(macho(0x01000007, 2)), node)).toEqual([
      'it is a Mach-O executable for darwin/amd64 (macOS), not a Linux executable',
    ]);
    expect(platformProblems(await facts(elf64({ type: 1, machine: 62 })), node)).toEqual([
      'it is an ELF 64-bit relocatable object file for linux/amd64, not an executable',
    ]);
    expect(platformProblems(await facts(elf64({ type: 2, machine: 62, osAbi: 9 })), node)[0]).toBe(
      'it is an ELF 64-bit executable for freebsd/amd64 (static): built for freebsd, not Linux',
    );
    expect(platformProblems(await facts(Buffer.from('text\n')), node, 'the binary')).toEqual([
      'the binary is a text file, not a Linux executable',
    ]);
  });

  it('runsLocally: only what this machine can execute', () => {
    const f = (over: Partial<ExecutableFacts>): ExecutableFacts => ({
      path: '/x',
      format: 'elf',
      os: 'linux',
      arch: 'amd64',
      kind: 'executable',
      description: '',
      ...over,
    });
    const linux = { os: 'linux', goArch: 'amd64' };
    expect(runsLocally(f({}), linux)).toBe(true);
    expect(runsLocally(f({ arch: 'arm64' }), linux)).toBe(false);
    expect(
      runsLocally(f({ format: 'mach-o', os: 'darwin', arch: 'arm64' }), { os: 'darwin', goArch: 'arm64' }),
    ).toBe(true);
    expect(runsLocally(f({}), { os: 'darwin', goArch: 'amd64' })).toBe(false);
  });
});
