/**
 * Reads what a 64-bit little-endian ELF shared object or executable needs from the dynamic
 * loader (DT_NEEDED), and where it asks the loader to look (DT_RPATH / DT_RUNPATH), from the
 * bytes of the file that were kept while it streamed past (see ElfCollector).
 */
export interface ElfDependencies {
  needed: string[];
  searchPaths: string[];
  soname?: string;
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;
const DT_STRSZ = 10n;
const DT_SONAME = 14n;
const DT_RPATH = 15n;
const DT_RUNPATH = 29n;

export function isElf64LittleEndian(head: Uint8Array): boolean {
  return head.length >= 64 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46 && head[4] === 2 && head[5] === 1;
}

interface Segment {
  type: number;
  offset: number;
  vaddr: number;
  filesz: number;
}

/** Program headers, from the start of the file (they follow the ELF header). */
export function programHeaders(head: Buffer): Segment[] | undefined {
  if (!isElf64LittleEndian(head)) return undefined;
  const phoff = Number(head.readBigUInt64LE(0x20));
  const phentsize = head.readUInt16LE(0x36);
  const phnum = head.readUInt16LE(0x38);
  if (phentsize < 56 || phoff + phnum * phentsize > head.length) return undefined;
  const out: Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    out.push({ type: head.readUInt32LE(at), offset: Number(head.readBigUInt64LE(at + 8)), vaddr: Number(head.readBigUInt64LE(at + 16)), filesz: Number(head.readBigUInt64LE(at + 32)) });
  }
  return out;
}

/** Byte ranges of the file a dependency read needs beyond the head: the dynamic segment. */
export function dynamicRange(head: Buffer): { offset: number; length: number } | undefined {
  const dyn = programHeaders(head)?.find((s) => s.type === PT_DYNAMIC);
  return dyn ? { offset: dyn.offset, length: dyn.filesz } : undefined;
}

/**
 * Parses dependencies given the file's head and its dynamic segment bytes. `readAt` returns kept
 * bytes at a file offset, or undefined when they were not kept (then the result is undefined:
 * the file could not be checked).
 */
export function readElfDependencies(head: Buffer, dynamic: Buffer, readAt: (offset: number, length: number) => Buffer | undefined): ElfDependencies | undefined {
  const segments = programHeaders(head);
  if (!segments) return undefined;
  const entries: Array<[bigint, bigint]> = [];
  for (let at = 0; at + 16 <= dynamic.length; at += 16) {
    const tag = dynamic.readBigInt64LE(at);
    if (tag === 0n) break;
    entries.push([tag, dynamic.readBigUInt64LE(at + 8)]);
  }
  const strtabAddr = entries.find(([t]) => t === DT_STRTAB)?.[1];
  const strsz = entries.find(([t]) => t === DT_STRSZ)?.[1];
  if (strtabAddr === undefined || strsz === undefined) return { needed: [], searchPaths: [] };
  const load = segments.find((s) => s.type === PT_LOAD && Number(strtabAddr) >= s.vaddr && Number(strtabAddr) < s.vaddr + s.filesz);
  if (!load) return undefined;
  const strtab = readAt(load.offset + (Number(strtabAddr) - load.vaddr), Number(strsz));
  if (!strtab) return undefined;
  const str = (offset: bigint) => {
    const start = Number(offset);
    const end = strtab.indexOf(0, start);
    return strtab.subarray(start, end === -1 ? strtab.length : end).toString('utf8');
  };
  const result: ElfDependencies = { needed: [], searchPaths: [] };
  for (const [tag, value] of entries) {
    if (tag === DT_NEEDED) result.needed.push(str(value));
    else if (tag === DT_RPATH || tag === DT_RUNPATH) result.searchPaths.push(...str(value).split(':').filter(Boolean));
    else if (tag === DT_SONAME) result.soname = str(value);
  }
  return result;
}
