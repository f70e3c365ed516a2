import { isUtf8 } from 'node:buffer';
import { BLOCK } from './tarHeader.js';

/**
 * A tar reader that is pushed bytes as they arrive and hands each member's data on in place, as
 * views of the bytes it was given: no stream per member, no copy of file data. The engine's
 * archives (Go's archive/tar) are ustar with PAX records for long names and big sizes; GNU long
 * names and base-256 sizes are read too. Written here rather than with tar-stream, whose stream
 * per member and copied chunks cost about 0.4 s of CPU per GiB collected (more than the rest of
 * the collection), on the same two cores the engine is using to write the archive.
 */

export type TarEntryType = 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo' | 'other';

export interface TarEntryHeader {
  /** The member's full name (PAX `path` or GNU long name when there is one); when its bytes are not UTF-8, with each byte past ASCII written `\xNN`. */
  name: string;
  /** The name's bytes are not valid UTF-8 (`name` is then escaped: two such names never decode to one). */
  invalidName?: true;
  type: TarEntryType;
  /** Bytes of data that follow the header. */
  size: number;
  mode: number;
  /** Modification time, whole seconds since the epoch (the ustar field; 0 when unreadable). */
  mtime: number;
  /** Target of a symbolic or hard link. */
  linkname: string;
}

export interface TarEntryHandler {
  /**
   * A member starts. Returns what takes its data (called with views that are valid only during
   * the call, in order, adding up to `header.size`), or undefined to skip the data.
   */
  entry(header: TarEntryHeader): ((data: Buffer) => void) | undefined;
  /** The member's data has all been handed on (also for a member whose data was skipped). */
  entryEnd(): void;
}

/** The archive is not a tar archive, or is damaged. */
export class TarFormatError extends Error {
  constructor(message: string) {
    super(`invalid tar archive: ${message}`);
    this.name = 'TarFormatError';
  }
}

/** Longest PAX or GNU long-name record accepted (names are at most a few KiB; this bounds memory). */
const MAX_META_BYTES = 1024 * 1024;

type State = 'header' | 'data' | 'padding' | 'end';

/** A PAX (`x`, `g`) or GNU long-name (`L`, `K`) record being read. */
interface MetaRecord {
  type: 'x' | 'g' | 'L' | 'K';
  chunks: Buffer[];
  bytes: number;
}

interface Overrides {
  path?: Buffer;
  linkpath?: string;
  size?: number;
}

export class TarReader {
  private state: State = 'header';
  private readonly block = Buffer.alloc(BLOCK);
  private blockBytes = 0;
  private remaining = 0;
  private padding = 0;
  private sink: ((data: Buffer) => void) | undefined;
  private meta: MetaRecord | undefined;
  private overrides: Overrides = {};

  constructor(private readonly handler: TarEntryHandler) {}

  /** True once the end-of-archive block has been read (what follows is ignored). */
  get ended(): boolean {
    return this.state === 'end';
  }

  /** Takes the next bytes of the archive, whatever their split. Throws TarFormatError. */
  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      switch (this.state) {
        case 'header': {
          if (this.blockBytes === 0 && chunk.length - at >= BLOCK) {
            this.header(chunk.subarray(at, at + BLOCK));
            at += BLOCK;
          } else {
            const take = Math.min(BLOCK - this.blockBytes, chunk.length - at);
            chunk.copy(this.block, this.blockBytes, at, at + take);
            this.blockBytes += take;
            at += take;
            if (this.blockBytes === BLOCK) {
              this.blockBytes = 0;
              this.header(this.block);
            }
          }
          break;
        }
        case 'data': {
          const take = Math.min(this.remaining, chunk.length - at);
          this.sink?.(chunk.subarray(at, at + take));
          at += take;
          this.remaining -= take;
          if (this.remaining === 0) this.endData();
          break;
        }
        case 'padding': {
          const take = Math.min(this.padding, chunk.length - at);
          at += take;
          this.padding -= take;
          if (this.padding === 0) this.state = 'header';
          break;
        }
        case 'end':
          return;
      }
    }
  }

  /** The archive's bytes have all been pushed: throws TarFormatError when it stopped part-way. */
  end(): void {
    if (this.state === 'end') return;
    if (this.state === 'header' && this.blockBytes === 0) return; // no end blocks: accepted, as tar does
    throw new TarFormatError('the archive ends in the middle of a member');
  }

  private header(block: Buffer): void {
    if (isZero(block)) {
      this.state = 'end';
      return;
    }
    if (!checksumMatches(block)) throw new TarFormatError('header checksum mismatch');
    const typeChar = String.fromCharCode(block[156]!);
    const isMeta = typeChar === 'x' || typeChar === 'g' || typeChar === 'L' || typeChar === 'K';
    const size = (isMeta ? undefined : this.overrides.size) ?? readNumber(block, 124, 12);
    if (size === undefined || !Number.isSafeInteger(size) || size < 0) throw new TarFormatError('invalid size field');
    if (isMeta) {
      if (size > MAX_META_BYTES) throw new TarFormatError(`a ${typeChar} record of ${size} bytes (over ${MAX_META_BYTES})`);
      // The record's data is read like a member's, into `meta` (copied: the views do not last).
      const meta: MetaRecord = { type: typeChar as 'x' | 'g' | 'L' | 'K', chunks: [], bytes: 0 };
      this.meta = meta;
      this.sink = (data) => {
        meta.chunks.push(Buffer.from(data));
        meta.bytes += data.length;
      };
      this.remaining = size;
      this.padding = pad(size);
      if (size === 0) this.endData();
      else this.state = 'data';
      return;
    }
    const ustar = block.toString('latin1', 257, 263) === 'ustar\0';
    let nameBytes = this.overrides.path ?? cBytes(block, 0, 100);
    if (this.overrides.path === undefined && ustar) {
      const prefix = cBytes(block, 345, 155);
      if (prefix.length > 0) nameBytes = Buffer.concat([prefix, Buffer.from('/'), nameBytes]);
    }
    const valid = isUtf8(nameBytes);
    const name = valid ? nameBytes.toString('utf8') : escapeBytes(nameBytes);
    const linkname = this.overrides.linkpath ?? cString(block, 157, 100);
    const mode = readNumber(block, 100, 8) ?? 0;
    const mtime = readNumber(block, 136, 12) ?? 0;
    this.overrides = {};
    const header: TarEntryHeader = { name, type: entryType(typeChar), size, mode, mtime, linkname };
    if (!valid) header.invalidName = true;
    // Directories, links and devices carry no data whatever their size field says (PAX and GNU agree).
    const dataBytes = header.type === 'file' || header.type === 'other' ? size : 0;
    header.size = dataBytes;
    this.sink = this.handler.entry(header);
    this.remaining = dataBytes;
    this.padding = pad(dataBytes);
    if (dataBytes === 0) this.endData();
    else this.state = 'data';
  }

  private endData(): void {
    this.sink = undefined;
    if (this.meta) this.endMeta();
    else this.handler.entryEnd();
    this.state = this.padding > 0 ? 'padding' : 'header';
  }

  /** A PAX or GNU long-name record is whole: what it says applies to the next member. */
  private endMeta(): void {
    const meta = this.meta!;
    this.meta = undefined;
    const data = Buffer.concat(meta.chunks, meta.bytes);
    if (meta.type === 'L') this.overrides.path = Buffer.from(cBytes(data, 0, data.length));
    else if (meta.type === 'K') this.overrides.linkpath = cString(data, 0, data.length);
    else if (meta.type === 'x') Object.assign(this.overrides, paxOverrides(data));
    // 'g' (global PAX records) holds nothing a member's name or size depends on here.
  }
}

function pad(size: number): number {
  const rest = size % BLOCK;
  return rest === 0 ? 0 : BLOCK - rest;
}

function entryType(typeChar: string): TarEntryType {
  switch (typeChar) {
    case '0':
    case '\0':
    case '7':
      return 'file';
    case '1':
      return 'link';
    case '2':
      return 'symlink';
    case '3':
      return 'character-device';
    case '4':
      return 'block-device';
    case '5':
      return 'directory';
    case '6':
      return 'fifo';
    default:
      return 'other';
  }
}

function isZero(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/** The header checksum: the sum of its bytes with the checksum field as spaces (unsigned, or signed as some old tars wrote it). */
function checksumMatches(block: Buffer): boolean {
  const stored = readNumber(block, 148, 8);
  if (stored === undefined) return false;
  let unsigned = 8 * 0x20;
  let signed = 8 * 0x20;
  for (let i = 0; i < BLOCK; i++) {
    if (i >= 148 && i < 156) continue;
    const byte = block[i]!;
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return stored === unsigned || stored === signed;
}

/** An octal field (NUL- or space-terminated), or base-256 when its first byte has the high bit set. */
function readNumber(block: Buffer, at: number, length: number): number | undefined {
  if (block[at]! & 0x80) {
    if (block[at] === 0xff) return undefined; // negative
    let value = block[at]! & 0x7f;
    for (let i = at + 1; i < at + length; i++) value = value * 256 + block[i]!;
    return value;
  }
  let value = 0;
  let digits = 0;
  let i = at;
  while (i < at + length && (block[i] === 0x20 || block[i] === 0)) i++; // leading padding
  for (; i < at + length; i++) {
    const byte = block[i]!;
    if (byte === 0 || byte === 0x20) break;
    if (byte < 0x30 || byte > 0x37) return undefined;
    value = value * 8 + (byte - 0x30);
    digits++;
  }
  return digits === 0 ? 0 : value;
}

/** A NUL-terminated UTF-8 field. */
function cString(buf: Buffer, at: number, length: number): string {
  return cBytes(buf, at, length).toString('utf8');
}

/** The bytes of a NUL-terminated field (a view). */
function cBytes(buf: Buffer, at: number, length: number): Buffer {
  const end = buf.indexOf(0, at);
  return buf.subarray(at, end === -1 || end > at + length ? at + length : end);
}

/** Bytes that are not UTF-8, readable: ASCII as it is (backslash doubled), every other byte `\xNN`. */
function escapeBytes(bytes: Buffer): string {
  let text = '';
  for (const byte of bytes) text += byte === 0x5c ? '\\\\' : byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`;
  return text;
}

/** PAX records (`<length> <key>=<value>\n`): the path, link target and size they override. */
function paxOverrides(data: Buffer): Overrides {
  const overrides: Overrides = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space === -1) break;
    const length = Number(data.toString('latin1', at, space));
    if (!Number.isSafeInteger(length) || length <= space - at || at + length > data.length) throw new TarFormatError('invalid PAX record');
    const recordEnd = at + length - 1; // without the trailing newline
    const equals = data.indexOf(0x3d, space + 1);
    if (equals !== -1 && equals < recordEnd) {
      const key = data.toString('utf8', space + 1, equals);
      const value = data.toString('utf8', equals + 1, recordEnd);
      if (key === 'path') overrides.path = Buffer.from(data.subarray(equals + 1, recordEnd));
      else if (key === 'linkpath') overrides.linkpath = value;
      else if (key === 'size') {
        if (!/^\d{1,16}$/.test(value)) throw new TarFormatError(`invalid PAX size "${value.slice(0, 20)}"`);
        overrides.size = Number(value);
      }
    }
    at += length;
  }
  return overrides;
}
