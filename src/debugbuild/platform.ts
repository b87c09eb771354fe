/**
 * What a file is, as an executable: its format (ELF, Mach-O, PE, a script, text), the OS and CPU it is for, and
 * whether it is an executable at all (not a shared library, an object file or a core dump). ctrdbg reads this
 * before it uploads anything: a dlv from a Mac is a Mach-O, a laptop's dlv may be for another CPU, and a node
 * given such a file would only fail later, with "exec format error", while containerd is being debugged.
 *
 * Layout references: the System V gABI (e_ident, e_type, PT_INTERP, DT_FLAGS_1), Apple's <mach-o/loader.h> and
 * <mach-o/fat.h> (magic, cputype, filetype), and Go's own build info (the `GOOS` build setting).
 */
import {
  type ByteReader,
  ElfFormatError,
  type ElfHeader,
  hasPieFlag,
  PT_DYNAMIC,
  PT_INTERP,
  parseElf,
  parseElfHeader,
  parseGoBuildInfo,
  readProgramHeaders,
  withFileReader,
} from './elf.js';

/** The node architectures ctrdbg supports (GOARCH names). Everything it builds or ships is for one of these. */
export const supportedArches = ['amd64', 'arm64'] as const;
export type Arch = (typeof supportedArches)[number];
export const isSupportedArch = (arch: string | undefined): arch is Arch =>
  supportedArches.includes(arch as Arch);

export type ExecutableFormat = 'elf' | 'mach-o' | 'pe' | 'script' | 'text' | 'data' | 'empty';
export type ExecutableKind = 'executable' | 'shared-library' | 'relocatable' | 'core' | 'other';

export interface ExecutableFacts {
  path: string;
  format: ExecutableFormat;
  /** Go's GOOS naming: linux, darwin, windows, freebsd, …; undefined when the format does not say. */
  os: string | undefined;
  /** Go's GOARCH naming; a universal Mach-O lists each slice (`amd64+arm64`). */
  arch: string | undefined;
  kind: ExecutableKind;
  /** ELF only: the dynamic loader the kernel starts it with (PT_INTERP); absent for a static binary. */
  interpreter?: string;
  /** One phrase for messages: "an ELF 64-bit executable for linux/arm64 (static)". */
  description: string;
}

/** What the file must be to run on a node. */
export interface NodePlatform {
  /** The node's GOARCH (probe.goArch). */
  goArch: string;
}

/* ------------------------------------------------------------------ reading */

const ELF_OSABI: Record<number, string> = {
  2: 'netbsd',
  6: 'solaris',
  9: 'freebsd',
  12: 'openbsd',
};

/** Mach-O cputype → GOARCH (CPU_ARCH_ABI64 = 0x01000000). */
const MACHO_CPU: Record<number, string> = {
  7: '386',
  16777223: 'amd64',
  12: 'arm',
  16777228: 'arm64',
  18: 'ppc',
  16777234: 'ppc64',
};
const MACHO_FILETYPE: Record<number, ExecutableKind> = {
  1: 'relocatable',
  2: 'executable',
  4: 'core',
  6: 'shared-library',
  8: 'shared-library',
};

const kindPhrase: Record<ExecutableKind, string> = {
  executable: 'executable',
  'shared-library': 'shared library',
  relocatable: 'relocatable object file',
  core: 'core dump',
  other: 'file',
};

const osNames: Record<string, string> = { darwin: 'macOS', windows: 'Windows' };

function describeBinary(format: string, kind: ExecutableKind, os?: string, arch?: string, extra?: string) {
  const target = os || arch ? ` for ${os ?? '?'}/${arch ?? '?'}` : '';
  const plain = osNames[os ?? ''];
  const notes = [plain, extra].filter(Boolean).join(', ');
  const article = format.startsWith('ELF') ? 'an' : 'a';
  return `${article} ${format} ${kindPhrase[kind]}${target}${notes ? ` (${notes})` : ''}`;
}

async function elfFacts(path: string, read: ByteReader, header: ElfHeader): Promise<ExecutableFacts> {
  const segments = await readProgramHeaders(read, header);
  const interpSegment = segments.find((s) => s.type === PT_INTERP);
  const interpreter = interpSegment
    ? (await read(interpSegment.offset, interpSegment.fileSize)).toString('latin1').replace(/\0+$/, '')
    : undefined;
  let kind: ExecutableKind;
  switch (header.type) {
    case 2:
      kind = 'executable';
      break;
    case 3: {
      // ET_DYN is both a position-independent executable and a shared library: an executable asks for a
      // loader, or says so in DT_FLAGS_1 (a static PIE).
      const dynamic = segments.find((s) => s.type === PT_DYNAMIC);
      const pie = interpreter !== undefined || (dynamic ? await hasPieFlag(read, header, dynamic) : false);
      kind = pie ? 'executable' : 'shared-library';
      break;
    }
    case 1:
      kind = 'relocatable';
      break;
    case 4:
      kind = 'core';
      break;
    default:
      kind = 'other';
  }
  // The OS: a Go binary says (its GOOS build setting), which is the only way to tell linux from dragonfly or
  // illumos, whose headers look alike; otherwise EI_OSABI and the BSDs' identification notes.
  let os: string | undefined;
  try {
    const elf = await parseElf(read);
    const buildInfo = elf.section('.go.buildinfo');
    if (buildInfo) {
      const info = await parseGoBuildInfo(await elf.readSection(buildInfo), elf.readVirtual);
      os = info?.settings.GOOS;
    }
    if (!os) {
      if (elf.section('.note.netbsd.ident')) os = 'netbsd';
      else if (elf.section('.note.openbsd.ident')) os = 'openbsd';
    }
  } catch (error) {
    if (!(error instanceof ElfFormatError)) throw error;
  }
  os ??=
    ELF_OSABI[header.osAbi] ??
    (header.osAbi === 0 || header.osAbi === 3 ? 'linux' : `osabi(${header.osAbi})`);
  const extra =
    kind === 'executable' ? (interpreter ? `dynamically linked, ${interpreter}` : 'static') : undefined;
  return {
    path,
    format: 'elf',
    os,
    arch: header.arch,
    kind,
    ...(interpreter ? { interpreter } : {}),
    description: describeBinary(`ELF ${header.elfClass}-bit`, kind, os, header.arch, extra),
  };
}

function machoFacts(path: string, head: Buffer): ExecutableFacts | undefined {
  const magic = head.readUInt32BE(0);
  const fat = magic === 0xcafebabe || magic === 0xcafebabf;
  if (fat) {
    // Java class files share the magic; their second word (the class version) is far above any slice count.
    const count = head.readUInt32BE(4);
    if (count === 0 || count > 16) return undefined;
    const entry = magic === 0xcafebabe ? 20 : 32;
    const arches: string[] = [];
    for (let i = 0; i < count && 8 + entry * (i + 1) <= head.length; i++) {
      const cpu = head.readUInt32BE(8 + entry * i);
      arches.push(MACHO_CPU[cpu] ?? `cpu(${cpu})`);
    }
    const arch = arches.join('+');
    return {
      path,
      format: 'mach-o',
      os: 'darwin',
      arch,
      kind: 'executable',
      description: describeBinary('universal Mach-O', 'executable', 'darwin', arch),
    };
  }
  const little = magic === 0xcefaedfe || magic === 0xcffaedfe;
  const big = magic === 0xfeedface || magic === 0xfeedfacf;
  if (!little && !big) return undefined;
  const u32 = (at: number) => (little ? head.readUInt32LE(at) : head.readUInt32BE(at));
  const cpu = u32(4);
  const arch = MACHO_CPU[cpu] ?? `cpu(${cpu})`;
  const kind = MACHO_FILETYPE[u32(12)] ?? 'other';
  return {
    path,
    format: 'mach-o',
    os: 'darwin',
    arch,
    kind,
    description: describeBinary('Mach-O', kind, 'darwin', arch),
  };
}

/** PE machine field → GOARCH. */
const PE_MACHINE: Record<number, string> = { 332: '386', 34404: 'amd64', 43620: 'arm64', 452: 'arm' };

async function peFacts(path: string, read: ByteReader): Promise<ExecutableFacts> {
  const dos = await read(0, 64);
  const peOffset = dos.length >= 64 ? dos.readUInt32LE(60) : 0;
  const pe = peOffset ? await read(peOffset, 6) : Buffer.alloc(0);
  const arch =
    pe.length === 6 && pe.toString('latin1', 0, 4) === 'PE\0\0'
      ? (PE_MACHINE[pe.readUInt16LE(4)] ?? `machine(${pe.readUInt16LE(4)})`)
      : undefined;
  return {
    path,
    format: 'pe',
    os: 'windows',
    arch,
    kind: 'executable',
    description: describeBinary('PE', 'executable', 'windows', arch),
  };
}

/** Reads what a file is through a byte reader (tests feed buffers). */
export async function readExecutableFactsFrom(path: string, read: ByteReader): Promise<ExecutableFacts> {
  const head = await read(0, 4096);
  const base = { path, os: undefined, arch: undefined, kind: 'other' as const };
  if (head.length === 0) return { ...base, format: 'empty', description: 'an empty file' };
  if (head.length >= 4 && head.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) {
    try {
      return await elfFacts(path, read, parseElfHeader(await read(0, 64)));
    } catch (error) {
      if (!(error instanceof ElfFormatError)) throw error;
      return { ...base, format: 'data', description: `a damaged ELF file (${error.message})` };
    }
  }
  if (head.length >= 8) {
    const macho = machoFacts(path, head);
    if (macho) return macho;
  }
  if (head.length >= 2 && head.toString('latin1', 0, 2) === 'MZ') return peFacts(path, read);
  if (head.length >= 2 && head.toString('latin1', 0, 2) === '#!') {
    const line = head
      .toString('utf8', 2, Math.max(2, head.indexOf(10) === -1 ? head.length : head.indexOf(10)))
      .trim();
    return { ...base, format: 'script', description: `a script for ${line || 'an unnamed interpreter'}` };
  }
  // Text: no NUL and mostly printable.
  const printable = [...head].filter((b) => b === 9 || b === 10 || b === 13 || (b >= 32 && b !== 127)).length;
  if (!head.includes(0) && printable / head.length > 0.95)
    return { ...base, format: 'text', description: 'a text file' };
  return { ...base, format: 'data', description: 'a data file of no executable format ctrdbg knows' };
}

export async function readExecutableFacts(path: string): Promise<ExecutableFacts> {
  return withFileReader(path, (read) => readExecutableFactsFrom(path, read));
}

/* ------------------------------------------------------------------ judging (pure) */

/**
 * Why the file cannot run on a Linux node of `node.goArch`, most basic reason first; empty when it can (as far
 * as the file tells: its dynamic loader's presence on the node is the caller's to check).
 */
export function platformProblems(facts: ExecutableFacts, node: NodePlatform, subject = 'it'): string[] {
  if (facts.format !== 'elf') return [`${subject} is ${facts.description}, not a Linux executable`];
  const problems: string[] = [];
  if (facts.os !== 'linux')
    problems.push(`${subject} is ${facts.description}: built for ${facts.os}, not Linux`);
  if (facts.kind !== 'executable') problems.push(`${subject} is ${facts.description}, not an executable`);
  if (!isSupportedArch(facts.arch))
    problems.push(
      `${subject} is for ${facts.arch}; ctrdbg supports ${supportedArches.map((a) => `linux/${a}`).join(' and ')} nodes`,
    );
  else if (facts.arch !== node.goArch)
    problems.push(`${subject} is for linux/${facts.arch}, but the node is linux/${node.goArch}`);
  return problems;
}

const NODE_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm' };

/** This machine in Go's naming: ctrdbg runs on Linux and macOS laptops. */
export const localPlatform = (): { os: string; goArch: string } => ({
  os: process.platform === 'win32' ? 'windows' : process.platform,
  goArch: NODE_ARCH[process.arch] ?? process.arch,
});

/** True when the file can run here (so ctrdbg may run it, e.g. `dlv version`). */
export function runsLocally(facts: ExecutableFacts, local = localPlatform()): boolean {
  const formatOk = local.os === 'darwin' ? facts.format === 'mach-o' : facts.format === 'elf';
  return formatOk && facts.os === local.os && facts.kind === 'executable' && facts.arch === local.goArch;
}
