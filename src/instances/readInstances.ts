import { isUtf8 } from 'node:buffer';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createGunzip } from 'node:zlib';
import { gcsHostPath, isGcsUri, parseGcsUri } from '../spec/gcsUri.js';
import type { InstanceConfig } from '../spec/vertexSchemas.js';
import { applyInstanceConfig, csvCell, csvRowToInstance, type InstanceRecord, needsConversion } from './convertInstance.js';
import { isJsonText } from './jsonSyntax.js';
import { readTfRecords } from './tfRecord.js';

export type ReadableFormat = 'jsonl' | 'csv' | 'file-list' | 'tf-record' | 'tf-record-gzip';

export interface ReadContext {
  gcsRoot: string;
  /** Called with the size of every chunk read from an input file (progress). */
  onRead?: (bytes: number) => void;
}

/**
 * Streams instance records from input files in Vertex's formats, a group of records at a time
 * (never more than one read chunk's worth in memory). Malformed records become error records;
 * they never stop the job.
 */
export async function* readInstances(files: readonly string[], format: ReadableFormat, config: InstanceConfig, context: ReadContext): AsyncGenerator<InstanceRecord[]> {
  for (const file of files) {
    switch (format) {
      case 'jsonl':
        yield* readJsonl(file, config, context);
        break;
      case 'csv':
        yield* readCsv(file, config, context);
        break;
      case 'file-list':
        yield* readFileList(file, context);
        break;
      case 'tf-record':
      case 'tf-record-gzip':
        yield* readTfRecordFile(file, format === 'tf-record-gzip', context);
        break;
    }
  }
}

/** Longest input line (one instance) read; a longer one becomes an error record. */
export const MAX_RECORD_BYTES = 32 * 1024 * 1024;
/**
 * Bytes read from an input file at a time. Larger reads are no faster, and each chunk's decoded
 * string would be a large object that only a full GC frees (1 MiB reads: peak RSS ~130 MB instead
 * of ~96 MB over a million instances).
 */
const READ_CHUNK_BYTES = 64 * 1024;
/**
 * Lines handed on at a time: a chunk's lines are split and parsed a group at a time as they are
 * consumed (the work is spread between requests, and short-lived objects die young).
 */
const LINES_PER_GROUP = 256;

export type Line = { ok: true; text: string; number: number } | { ok: false; number: number; message: string; echo: string };

/**
 * Splits a file into lines, yielding them in groups, without ever holding more than
 * MAX_RECORD_BYTES of one line: a longer line is skipped to its end and reported; a line that is
 * not valid UTF-8 is reported too. Blank lines are skipped (they still count in line numbers).
 */
export async function* lines(file: string, maxBytes = MAX_RECORD_BYTES, onRead?: (bytes: number) => void): AsyncGenerator<Line[]> {
  const splitter = new LineSplitter(maxBytes, LINES_PER_GROUP);
  for await (const chunk of createReadStream(file, { highWaterMark: READ_CHUNK_BYTES }) as AsyncIterable<Buffer>) {
    onRead?.(chunk.length);
    yield* splitter.push(chunk);
  }
  yield* splitter.end();
}

/**
 * The line splitting of `lines`, chunk by chunk. The bytes between a chunk's first and last
 * newline are checked as UTF-8 and decoded at once (a newline byte never occurs inside a UTF-8
 * sequence); only a region that is not valid UTF-8 is decoded line by line, to name the bad lines.
 */
export class LineSplitter {
  /** The start of a line continued in the next chunk (dropped once over the limit). */
  private carried: Buffer[] = [];
  private carriedBytes = 0;
  private tooLong = false;
  private number = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly groupSize: number,
  ) {}

  /** The lines a chunk completes, `groupSize` at a time, split as they are asked for. */
  *push(chunk: Buffer): Generator<Line[]> {
    let out: Line[] = [];
    let start = 0;
    if (this.carriedBytes > 0) {
      const nl = chunk.indexOf(10);
      if (nl === -1) {
        this.carry(chunk);
        return;
      }
      this.carry(chunk.subarray(0, nl));
      this.finishCarried(out);
      start = nl + 1;
    }
    const last = chunk.lastIndexOf(10);
    if (last >= start) {
      const region = chunk.subarray(start, last);
      if (isUtf8(region)) {
        const text = region.toString('utf8');
        // Only a region longer than the limit can hold a line longer than it.
        const checkLength = region.length > this.maxBytes;
        for (let from = 0; ; ) {
          const nl = text.indexOf('\n', from);
          this.decodedLine(nl === -1 ? text.slice(from) : text.slice(from, nl), checkLength, out);
          if (out.length >= this.groupSize) {
            yield out;
            out = [];
          }
          if (nl === -1) break;
          from = nl + 1;
        }
      } else {
        for (let from = start; ; ) {
          const nl = chunk.indexOf(10, from);
          this.bytesLine(chunk.subarray(from, nl), out);
          if (out.length >= this.groupSize) {
            yield out;
            out = [];
          }
          if (nl >= last) break;
          from = nl + 1;
        }
      }
      start = last + 1;
    }
    if (start < chunk.length) this.carry(chunk.subarray(start));
    if (out.length) yield out;
  }

  /** The last line, when the file does not end with a newline. */
  *end(): Generator<Line[]> {
    const out: Line[] = [];
    if (this.carriedBytes > 0) this.finishCarried(out);
    if (out.length) yield out;
  }

  private carry(piece: Buffer): void {
    this.carriedBytes += piece.length;
    if (this.tooLong || this.carriedBytes > this.maxBytes) {
      this.tooLong = true;
      this.carried = [];
    } else this.carried.push(Buffer.from(piece)); // a copy: the chunk is not kept alive
  }

  private finishCarried(out: Line[]): void {
    if (this.tooLong) {
      this.number += 1;
      out.push(this.tooLongLine(this.carriedBytes));
    } else this.bytesLine(Buffer.concat(this.carried, this.carriedBytes), out);
    this.carried = [];
    this.carriedBytes = 0;
    this.tooLong = false;
  }

  private bytesLine(bytes: Buffer, out: Line[]): void {
    if (bytes.length > this.maxBytes) {
      this.number += 1;
      out.push(this.tooLongLine(bytes.length));
    } else if (!isUtf8(bytes)) {
      this.number += 1;
      out.push({ ok: false, number: this.number, message: `Line ${this.number} is not valid UTF-8.`, echo: bytes.subarray(0, 200).toString('latin1') });
    } else this.decodedLine(bytes.toString('utf8'), false, out);
  }

  /** A decoded line: a leading byte order mark and a trailing CR are not part of it; a blank line is skipped. */
  private decodedLine(decoded: string, checkLength: boolean, out: Line[]): void {
    this.number += 1;
    // UTF-16 units never outnumber UTF-8 bytes, and one unit is at most 3 bytes.
    if (checkLength && decoded.length * 3 > this.maxBytes) {
      const size = Buffer.byteLength(decoded);
      if (size > this.maxBytes) {
        out.push(this.tooLongLine(size));
        return;
      }
    }
    let text = decoded;
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (text.charCodeAt(text.length - 1) === 13) text = text.slice(0, -1);
    if (isBlank(text)) return;
    out.push({ ok: true, text, number: this.number });
  }

  private tooLongLine(size: number): Line {
    const n = this.number;
    return { ok: false, number: n, message: `Line ${n} is longer than ${this.maxBytes} bytes (at least ${size}); it was skipped.`, echo: `(line ${n}, ${size}+ bytes)` };
  }
}

function isBlank(text: string): boolean {
  if (text.length === 0) return true;
  const first = text.charCodeAt(0);
  // Every character trim() removes is a control/space character or at or above U+00A0.
  if (first > 32 && first < 0xa0) return false;
  return text.trim() === '';
}

async function* readJsonl(file: string, config: InstanceConfig, context: ReadContext): AsyncGenerator<InstanceRecord[]> {
  const name = path.basename(file);
  const asWritten = !needsConversion(config);
  for await (const group of lines(file, MAX_RECORD_BYTES, context.onRead)) {
    const records: InstanceRecord[] = [];
    for (const item of group) {
      if (!item.ok) {
        records.push({ ok: false, echo: item.echo, message: `${name}: ${item.message}` });
        continue;
      }
      const line = item.text;
      // Sent as written: its syntax is checked, no value is built (unless it holds a CR, below).
      if (asWritten && isJsonText(line) && !line.includes('\r')) {
        records.push({ ok: true, json: line.trim() }); // only JSON whitespace can surround it
        continue;
      }
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (error) {
        records.push({ ok: false, echo: line.length > 1000 ? `${line.slice(0, 1000)}…` : line, message: `Invalid JSON instance (${name} line ${item.number}): ${(error as Error).message}` });
        continue;
      }
      // A CR inside a line (JSON whitespace) would end it for some readers: such a line is written serialized again.
      records.push(asWritten ? { ok: true, json: JSON.stringify(value) } : applyInstanceConfig(value, config));
    }
    yield records;
  }
}

async function* readCsv(file: string, config: InstanceConfig, context: ReadContext): AsyncGenerator<InstanceRecord[]> {
  const { parse: parseCsv } = await import('csv-parse');
  const source = createReadStream(file, { highWaterMark: READ_CHUNK_BYTES });
  const parser = source.pipe(
    parseCsv({
      relax_column_count: true,
      skip_empty_lines: true,
      info: true,
      // The header row stays text; every other cell as Vertex reads it.
      cast: (value, context) => (context.records === 0 ? value : csvCell(value, context.quoting)),
    }),
  );
  if (context.onRead) source.on('data', (chunk) => context.onRead!(chunk.length)); // alongside the pipe
  let header: string[] | undefined;
  try {
    for await (const { record: row, info } of parser as AsyncIterable<{ record: unknown[]; info: { lines: number } }>) {
      if (!header) {
        header = row.map(String);
        continue;
      }
      yield [csvRowToInstance(row, header, config, info.lines)];
    }
  } catch (error) {
    yield [{ ok: false, echo: path.basename(file), message: `CSV parse error: ${(error as Error).message}; the rest of ${path.basename(file)} was skipped.` }];
  }
}

async function* readFileList(file: string, context: ReadContext): AsyncGenerator<InstanceRecord[]> {
  for await (const found of lines(file, MAX_RECORD_BYTES, context.onRead)) {
    for (const item of found) {
      if (!item.ok) {
        yield [{ ok: false, echo: item.echo, message: `${path.basename(file)}: ${item.message}` }];
        continue;
      }
      yield [await readListedFile(file, item.text.trim(), context)];
    }
  }
}

/** One file named in a file list, as {"b64"} (one file in memory at a time). */
async function readListedFile(list: string, uri: string, context: ReadContext): Promise<InstanceRecord> {
  let hostPath: string;
  try {
    hostPath = isGcsUri(uri) ? gcsHostPath(parseGcsUri(uri, 'file-list entry'), context.gcsRoot) : path.resolve(path.dirname(list), uri);
  } catch (error) {
    return { ok: false, echo: uri, message: (error as Error).message };
  }
  try {
    const bytes = await readFile(hostPath);
    return { ok: true, instance: { b64: bytes.toString('base64') }, echo: uri };
  } catch (error) {
    return { ok: false, echo: uri, message: `Cannot read ${uri} (${(error as NodeJS.ErrnoException).code ?? String(error)}).` };
  }
}

async function* readTfRecordFile(file: string, gzip: boolean, context: ReadContext): AsyncGenerator<InstanceRecord[]> {
  const source = createReadStream(file);
  let stream: AsyncIterable<Buffer> = source;
  if (gzip) {
    stream = source.pipe(createGunzip());
    if (context.onRead) source.on('data', (chunk) => context.onRead!(chunk.length)); // alongside the pipe
  } else if (context.onRead) stream = counted(source, context.onRead);
  try {
    for await (const item of readTfRecords(stream)) {
      if (item.ok) {
        const instance = { b64: item.data.toString('base64') };
        yield [{ ok: true, instance, echo: instance }];
      } else yield [{ ok: false, echo: path.basename(file), message: `TFRecord ${path.basename(file)}: ${item.message}` }];
    }
  } catch (error) {
    yield [{ ok: false, echo: path.basename(file), message: `Cannot read ${path.basename(file)}: ${(error as Error).message}` }];
  }
}

async function* counted(chunks: AsyncIterable<Buffer>, onRead: (bytes: number) => void): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) {
    onRead(chunk.length);
    yield chunk;
  }
}
