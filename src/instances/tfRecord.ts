import crc32c from 'crc-32/crc32c.js';

/** TFRecord masked CRC-32C (tensorflow/core/lib/hash/crc32c.h). */
export function maskedCrc32c(data: Uint8Array): number {
  const crc = crc32c.buf(data) >>> 0;
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}

export type TfRecordItem = { ok: true; data: Buffer } | { ok: false; message: string };

/**
 * Reads TFRecord framing (uint64 length, masked CRC of the length, data, masked CRC of the data,
 * all little-endian) from a byte stream, one record at a time. A record whose CRC does not match
 * is reported and skipped; a truncated or corrupt frame ends the file with an error item (the
 * framing cannot be trusted past it).
 */
export async function* readTfRecords(chunks: AsyncIterable<Buffer>): AsyncGenerator<TfRecordItem> {
  let buffer = Buffer.alloc(0);
  let offset = 0;
  const take = async (n: number, it: AsyncIterator<Buffer>): Promise<Buffer | undefined> => {
    while (buffer.length - offset < n) {
      const next = await it.next();
      if (next.done) return undefined;
      buffer = Buffer.concat([buffer.subarray(offset), next.value]);
      offset = 0;
    }
    const out = buffer.subarray(offset, offset + n);
    offset += n;
    return out;
  };
  const it = chunks[Symbol.asyncIterator]();
  let index = 0;
  for (;;) {
    const header = await take(12, it);
    if (!header) {
      if (buffer.length - offset > 0) yield { ok: false, message: `record ${index}: truncated header (${buffer.length - offset} trailing bytes)` };
      return;
    }
    const length = header.readBigUInt64LE(0);
    if (header.readUInt32LE(8) !== maskedCrc32c(header.subarray(0, 8))) {
      yield { ok: false, message: `record ${index}: length CRC mismatch; the file is corrupt from here on` };
      return;
    }
    if (length > BigInt(2 ** 31)) {
      yield { ok: false, message: `record ${index}: length ${length} is implausible; the file is corrupt from here on` };
      return;
    }
    const body = await take(Number(length) + 4, it);
    if (!body) {
      yield { ok: false, message: `record ${index}: truncated data (expected ${length} bytes)` };
      return;
    }
    const data = Buffer.from(body.subarray(0, Number(length)));
    if (body.readUInt32LE(Number(length)) !== maskedCrc32c(data)) yield { ok: false, message: `record ${index}: data CRC mismatch` };
    else yield { ok: true, data };
    index += 1;
  }
}

/** One TFRecord frame (used to write test fixtures and by users' tooling). */
export function encodeTfRecord(data: Uint8Array): Buffer {
  const header = Buffer.alloc(12);
  header.writeBigUInt64LE(BigInt(data.length), 0);
  header.writeUInt32LE(maskedCrc32c(header.subarray(0, 8)), 8);
  const footer = Buffer.alloc(4);
  footer.writeUInt32LE(maskedCrc32c(data), 0);
  return Buffer.concat([header, Buffer.from(data), footer]);
}
