/**
 * Tar (ustar) headers for the staging packer, written straight into the caller's buffer. Names
 * that do not fit ustar's 100 + 155 bytes, or are not ASCII, get a PAX `path` record first, as
 * tar-stream (and tar-fs before it) wrote them; docker's extractor reads both. Written here rather than
 * with tar-stream's encoder because its package exports only the stream API (not `headers.js`), and
 * the packer needs headers placed in its own output buffers (one allocation per MiB, not per file).
 */

export const BLOCK = 512;

export interface TarHeader {
  /** Entry name (POSIX separators; a directory's ends with '/'). */
  name: string;
  type: 'file' | 'directory';
  mode: number;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
}

/** Bytes the header of `name` takes: one block, or three (PAX header, PAX record, header). */
export function headerBytes(name: string): number {
  if (splitUstarName(name)) return BLOCK;
  return BLOCK + padded(paxRecord(name).length) + BLOCK;
}

/** Bytes an entry takes in the archive with its data padded to a whole block. */
export function padded(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

/**
 * Writes the header(s) of `header` at `offset` in `buf` (which must have headerBytes(name) free
 * bytes there) and returns the offset after them. Every byte of the header blocks is written.
 */
export function writeHeader(buf: Buffer, offset: number, header: TarHeader): number {
  const split = splitUstarName(header.name);
  if (split) return writeUstar(buf, offset, header, split.name, split.prefix);
  const record = paxRecord(header.name);
  offset = writeUstar(buf, offset, { ...header, type: 'pax', size: record.length }, 'PaxHeader', '');
  record.copy(buf, offset);
  const end = offset + padded(record.length);
  buf.fill(0, offset + record.length, end);
  return writeUstar(buf, end, header, 'PaxHeader', '');
}

function writeUstar(buf: Buffer, offset: number, header: Omit<TarHeader, 'type'> & { type: TarHeader['type'] | 'pax' }, name: string, prefix: string): number {
  buf.fill(0, offset, offset + BLOCK);
  buf.write(name, offset, 'latin1');
  writeOctal(buf, offset + 100, header.mode & 0o7777, 7);
  writeOctal(buf, offset + 108, 0, 7); // uid: root
  writeOctal(buf, offset + 116, 0, 7); // gid: root
  writeSize(buf, offset + 124, header.size);
  writeOctal(buf, offset + 136, Math.max(0, Math.floor(header.mtime)), 11);
  buf[offset + 156] = header.type === 'file' ? 0x30 : header.type === 'directory' ? 0x35 : 0x78; // '0', '5', 'x'
  buf.write('ustar\u000000', offset + 257, 'latin1');
  writeOctal(buf, offset + 329, 0, 7);
  writeOctal(buf, offset + 337, 0, 7);
  if (prefix) buf.write(prefix, offset + 345, 'latin1');
  // The checksum is computed with its own field as eight spaces.
  buf.fill(0x20, offset + 148, offset + 156);
  let sum = 0;
  for (let i = offset; i < offset + BLOCK; i++) sum += buf[i]!;
  writeOctal(buf, offset + 148, sum, 6);
  buf[offset + 154] = 0;
  buf[offset + 155] = 0x20;
  return offset + BLOCK;
}

/** `digits` octal digits then a NUL (or a space, as tar-stream wrote them: both are read). */
function writeOctal(buf: Buffer, at: number, value: number, digits: number): void {
  const text = value.toString(8).padStart(digits, '0');
  buf.write(text.length > digits ? '7'.repeat(digits) : text, at, 'latin1');
  buf[at + digits] = 0x20;
}

const MAX_OCTAL_SIZE = 0o77777777777; // 8 GiB - 1

/** Sizes of 8 GiB and more in base-256 (GNU; Go's archive/tar reads it). */
function writeSize(buf: Buffer, at: number, size: number): void {
  if (size <= MAX_OCTAL_SIZE) {
    writeOctal(buf, at, size, 11);
    return;
  }
  buf.fill(0, at, at + 12);
  buf[at] = 0x80;
  let rest = size;
  for (let i = at + 11; i > at && rest > 0; i--) {
    buf[i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
}

/** The name in ustar's name (100) and prefix (155) fields, split at a '/', or undefined. */
function splitUstarName(name: string): { name: string; prefix: string } | undefined {
  // eslint-disable-next-line no-control-regex
  if (!/^[\x01-\x7f]*$/.test(name)) return undefined;
  if (name.length <= 100) return { name, prefix: '' };
  // The longest prefix (<= 155) that ends at a '/' and leaves a name of at most 100 bytes.
  const cut = name.lastIndexOf('/', Math.min(155, name.length - 2));
  if (cut <= 0 || name.length - cut - 1 > 100) return undefined;
  return { name: name.slice(cut + 1), prefix: name.slice(0, cut) };
}

function paxRecord(name: string): Buffer {
  const body = ` path=${name}\n`;
  const len = Buffer.byteLength(body);
  let digits = String(len).length;
  if (len + digits >= 10 ** digits) digits++;
  return Buffer.from(`${len + digits}${body}`, 'utf8');
}
