import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createGunzip } from 'node:zlib';
import { gcsHostPath, isGcsUri, parseGcsUri } from '../spec/gcsUri.js';
import type { InstanceConfig } from '../spec/vertexSchemas.js';
import { applyInstanceConfig, csvCell, csvRowToInstance, type InstanceRecord } from './convertInstance.js';
import { readTfRecords } from './tfRecord.js';

export type ReadableFormat = 'jsonl' | 'csv' | 'file-list' | 'tf-record' | 'tf-record-gzip';

export interface ReadContext {
  gcsRoot: string;
}

/**
 * Streams instance records from input files in Vertex's formats, one record in memory at a
 * time. Malformed records become error records; they never stop the job.
 */
export async function* readInstances(files: readonly string[], format: ReadableFormat, config: InstanceConfig, context: ReadContext): AsyncGenerator<InstanceRecord> {
  for (const file of files) {
    switch (format) {
      case 'jsonl':
        yield* readJsonl(file, config);
        break;
      case 'csv':
        yield* readCsv(file, config);
        break;
      case 'file-list':
        yield* readFileList(file, context);
        break;
      case 'tf-record':
      case 'tf-record-gzip':
        yield* readTfRecordFile(file, format === 'tf-record-gzip');
        break;
    }
  }
}

/** Longest input line (one instance) read; a longer one becomes an error record. */
export const MAX_RECORD_BYTES = 32 * 1024 * 1024;

type Line = { ok: true; text: string; number: number } | { ok: false; number: number; message: string; echo: string };

/**
 * Splits a file into lines without ever holding more than MAX_RECORD_BYTES of one line: a longer
 * line is skipped to its end and reported; a line that is not valid UTF-8 is reported too.
 */
export async function* lines(file: string, maxBytes = MAX_RECORD_BYTES): AsyncGenerator<Line> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let parts: Buffer[] = [];
  let length = 0;
  let tooLong = false;
  let number = 0;
  const finish = (): Line | undefined => {
    number += 1;
    if (tooLong) {
      const message = `Line ${number} is longer than ${maxBytes} bytes (at least ${length}); it was skipped.`;
      return { ok: false, number, message, echo: `(line ${number}, ${length}+ bytes)` };
    }
    const bytes = Buffer.concat(parts, length);
    try {
      const text = decoder.decode(bytes).replace(/\r$/, '');
      return text.trim() === '' ? undefined : { ok: true, text, number };
    } catch {
      return { ok: false, number, message: `Line ${number} is not valid UTF-8.`, echo: bytes.subarray(0, 200).toString('latin1') };
    }
  };
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      if (!tooLong) parts.push(piece);
      length += piece.length;
      if (length > maxBytes) tooLong = true;
      const line = finish();
      if (line) yield line;
      parts = [];
      length = 0;
      tooLong = false;
      start = nl + 1;
    }
    const rest = chunk.subarray(start);
    length += rest.length;
    if (length > maxBytes) {
      tooLong = true;
      parts = [];
    } else if (rest.length) parts.push(Buffer.from(rest));
  }
  if (length > 0 || parts.length > 0) {
    const line = finish();
    if (line) yield line;
  }
}

async function* readJsonl(file: string, config: InstanceConfig): AsyncGenerator<InstanceRecord> {
  for await (const item of lines(file)) {
    if (!item.ok) {
      yield { ok: false, echo: item.echo, message: `${path.basename(file)}: ${item.message}` };
      continue;
    }
    const line = item.text;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      yield { ok: false, echo: line.length > 1000 ? `${line.slice(0, 1000)}…` : line, message: `Invalid JSON instance (${path.basename(file)} line ${item.number}): ${(error as Error).message}` };
      continue;
    }
    yield applyInstanceConfig(value, config);
  }
}

async function* readCsv(file: string, config: InstanceConfig): AsyncGenerator<InstanceRecord> {
  const { parse: parseCsv } = await import('csv-parse');
  const parser = createReadStream(file).pipe(
    parseCsv({
      relax_column_count: true,
      skip_empty_lines: true,
      cast: (value, context) => (context.header ? value : csvCell(value, context.quoting)),
    }),
  );
  let header: string[] | undefined;
  try {
    for await (const row of parser as AsyncIterable<unknown[]>) {
      if (!header) {
        header = row.map(String);
        continue;
      }
      yield csvRowToInstance(row, header, config);
    }
  } catch (error) {
    yield { ok: false, echo: path.basename(file), message: `CSV parse error: ${(error as Error).message}; the rest of ${path.basename(file)} was skipped.` };
  }
}

async function* readFileList(file: string, context: ReadContext): AsyncGenerator<InstanceRecord> {
  for await (const item of lines(file)) {
    if (!item.ok) {
      yield { ok: false, echo: item.echo, message: `${path.basename(file)}: ${item.message}` };
      continue;
    }
    const uri = item.text.trim();
    let hostPath: string;
    try {
      hostPath = isGcsUri(uri) ? gcsHostPath(parseGcsUri(uri, 'file-list entry'), context.gcsRoot) : path.resolve(path.dirname(file), uri);
    } catch (error) {
      yield { ok: false, echo: uri, message: (error as Error).message };
      continue;
    }
    try {
      const bytes = await readFile(hostPath);
      yield { ok: true, instance: { b64: bytes.toString('base64') }, echo: uri };
    } catch (error) {
      yield { ok: false, echo: uri, message: `Cannot read ${uri} (${(error as NodeJS.ErrnoException).code ?? String(error)}).` };
    }
  }
}

async function* readTfRecordFile(file: string, gzip: boolean): AsyncGenerator<InstanceRecord> {
  const source = createReadStream(file);
  const stream = gzip ? source.pipe(createGunzip()) : source;
  try {
    for await (const item of readTfRecords(stream as AsyncIterable<Buffer>)) {
      if (item.ok) {
        const instance = { b64: item.data.toString('base64') };
        yield { ok: true, instance, echo: instance };
      } else yield { ok: false, echo: path.basename(file), message: `TFRecord ${path.basename(file)}: ${item.message}` };
    }
  } catch (error) {
    yield { ok: false, echo: path.basename(file), message: `Cannot read ${path.basename(file)}: ${(error as Error).message}` };
  }
}
