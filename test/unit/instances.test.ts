import { mkdtemp, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { applyInstanceConfig, BadCsvCell, csvCell, csvRowToInstance, type InstanceRecord } from '../../src/instances/convertInstance.js';
import { type Line, lines, LineSplitter, readInstances, type ReadableFormat } from '../../src/instances/readInstances.js';
import { encodeTfRecord, maskedCrc32c } from '../../src/instances/tfRecord.js';
import { mergeBatchPredictSpec } from '../../src/spec/batchPredictSpec.js';
import { predictionDirectoryName, predictionFileNames } from '../../src/staging/predictionOutputs.js';
import { parseProcNetTcp } from '../../src/verdict/parseListeners.js';
import { VbeError } from '../../src/errors.js';

async function collect(files: string[], format: ReadableFormat, config = {}, gcsRoot = '/nonexistent'): Promise<InstanceRecord[]> {
  const out: InstanceRecord[] = [];
  for await (const group of readInstances(files, format, config, { gcsRoot })) out.push(...group);
  return out;
}

/** What a record sends: the instance (parsed back from its JSON text when passed through), or the error message. */
function valueOf(r: InstanceRecord): unknown {
  if (!r.ok) return r.message;
  return 'json' in r ? JSON.parse(r.json) : r.instance;
}

async function file(name: string, content: string | Buffer): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vbe-inst-'));
  const p = path.join(dir, name);
  await writeFile(p, content);
  return p;
}

describe('instanceConfig rules', () => {
  const row = { id: 7, a: 1, b: 'x', c: [1] };
  it('passes instances through untouched without a config', () => {
    expect(applyInstanceConfig([1, 2], {})).toEqual({ ok: true, instance: [1, 2], echo: [1, 2] });
  });
  it('keyField takes the key out of the instance', () => {
    expect(applyInstanceConfig(row, { keyField: 'id' })).toEqual({ ok: true, instance: { a: 1, b: 'x', c: [1] }, echo: { a: 1, b: 'x', c: [1] }, key: 7 });
  });
  it('includedFields keeps those fields in that order; instanceType array makes values', () => {
    expect(applyInstanceConfig(row, { includedFields: ['b', 'a'], instanceType: 'array' })).toMatchObject({ instance: ['x', 1] });
    expect(applyInstanceConfig(row, { includedFields: ['b', 'a'] })).toMatchObject({ instance: { b: 'x', a: 1 } });
  });
  it('excludedFields drops fields', () => {
    expect(applyInstanceConfig(row, { excludedFields: ['c', 'id'] })).toMatchObject({ instance: { a: 1, b: 'x' } });
  });
  it('problems become error records, never exceptions', () => {
    expect(applyInstanceConfig(row, { keyField: 'nope' })).toMatchObject({ ok: false, message: expect.stringContaining('"nope"') });
    expect(applyInstanceConfig(row, { includedFields: ['zz'] })).toMatchObject({ ok: false, message: expect.stringContaining('"zz"') });
    expect(applyInstanceConfig([1], { keyField: 'id' })).toMatchObject({ ok: false });
  });
  it('csv cells: quoted strings stay strings, unquoted numbers become numbers, anything else is a bad cell (as Vertex reads CSV)', () => {
    expect([csvCell('12', false), csvCell('12', true), csvCell('-1.5e3', false), csvCell('', true)]).toEqual([12, '12', -1500, '']);
    expect(csvCell('abc', false)).toEqual(new BadCsvCell('abc', 'not-a-number'));
    expect(csvCell('', false)).toEqual(new BadCsvCell('', 'not-a-number'));
    expect(csvCell('two\nlines', true)).toEqual(new BadCsvCell('two\nlines', 'newline'));
  });
  it('csv rows with an unquoted string or a newline are failed instances naming the row and the cell', () => {
    expect(csvRowToInstance([csvCell('bob', false), 41], ['name', 'age'], {}, 3)).toEqual({
      ok: false,
      echo: ['bob', 41],
      message: 'CSV row at line 3, column 1 ("name"): the unquoted cell "bob" is not a number; Vertex reads unquoted CSV cells as floating point numbers. Enclose strings in double quotation marks.',
    });
    expect(csvRowToInstance(['a', csvCell('x\ny', true)], ['n', 'v'], {}, 7)).toMatchObject({ ok: false, message: 'CSV row at line 7, column 2 ("v"): the cell contains a newline, which Vertex does not accept in CSV input.' });
  });
  it('excludedFields: the excluded fields are not sent, but the output instance is the whole record (no keyField)', () => {
    expect(csvRowToInstance(['a', 1, 2], ['n', 'v', 'w'], { excludedFields: ['w'] })).toEqual({ ok: true, instance: ['a', 1], echo: ['a', 1, 2] });
    expect(csvRowToInstance(['a', 1, 2], ['n', 'v', 'w'], { excludedFields: ['w'], instanceType: 'object' })).toEqual({ ok: true, instance: { n: 'a', v: 1 }, echo: { n: 'a', v: 1, w: 2 } });
    expect(applyInstanceConfig({ a: 1, b: 2 }, { excludedFields: ['b'] })).toEqual({ ok: true, instance: { a: 1 }, echo: { a: 1, b: 2 } });
    expect(applyInstanceConfig({ a: 1, b: 2, k: 9 }, { excludedFields: ['b'], keyField: 'k' })).toEqual({ ok: true, instance: { a: 1 }, echo: { a: 1 }, key: 9 });
  });
  it('csv rows: arrays by default, objects by header on request, ragged rows are error records', () => {
    expect(csvRowToInstance(['a', 1], ['n', 'v'], {})).toMatchObject({ ok: true, instance: ['a', 1] });
    expect(csvRowToInstance(['a', 1], ['n', 'v'], { instanceType: 'object' })).toMatchObject({ instance: { n: 'a', v: 1 } });
    expect(csvRowToInstance(['a', 1], ['n', 'v'], { keyField: 'n' })).toMatchObject({ instance: [1], key: 'a' });
    expect(csvRowToInstance(['a'], ['n', 'v'], {})).toMatchObject({ ok: false, message: expect.stringContaining('1 values; the header has 2') });
  });
});

describe('readers', () => {
  it('jsonl: one instance a line, blank lines skipped, bad lines are error records', async () => {
    const f = await file('a.jsonl', '{"a":1}\n\n[2]\nnot json\n"s"\n');
    const records = await collect([f], 'jsonl');
    expect(records.map((r) => r.ok)).toEqual([true, true, false, true]);
    expect(records[2]).toMatchObject({ echo: 'not json', message: expect.stringContaining('Invalid JSON') });
  });
  it('lines: a line over the cap is skipped to its end and reported, invalid UTF-8 too, in bounded memory', async () => {
    const f = await file('big.jsonl', Buffer.concat([Buffer.from('{"a":1}\n'), Buffer.alloc(100, 0x61), Buffer.from('\n{"b":2}\n'), Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x0a]), Buffer.from('{"c":3}')]));
    const out = [];
    for await (const group of lines(f, 16)) out.push(...group.map((l) => (l.ok ? l.text : l.message)));
    expect(out).toEqual(['{"a":1}', 'Line 2 is longer than 16 bytes (at least 100); it was skipped.', '{"b":2}', 'Line 4 is not valid UTF-8.', '{"c":3}']);
    const records = await collect([f], 'jsonl');
    expect(records.map((r) => r.ok)).toEqual([true, false, true, false, true]); // under the real cap the long line is read (and is not JSON)
  });
  it('jsonl without instanceConfig: each line kept as its JSON text (trimmed), checked to parse', async () => {
    const f = await file('raw.jsonl', '\uFEFF{"a": 1.50, "b":"\\u00e9"}  \r\n\t[1,2]\n{"c":\r3}\n{"d":\n');
    const records = await collect([f], 'jsonl');
    expect(records).toEqual([
      { ok: true, json: '{"a": 1.50, "b":"\\u00e9"}' }, // a byte order mark and CRLF are not part of the line
      { ok: true, json: '[1,2]' },
      { ok: true, json: '{"c":3}' }, // a CR inside the line is not written out
      { ok: false, echo: '{"d":', message: expect.stringMatching(/^Invalid JSON instance \(raw\.jsonl line 4\): /) },
    ]);
  });
  it('jsonl with instanceConfig: instances converted from the parsed value', async () => {
    const f = await file('conv.jsonl', '{"id": 1, "a": 2}\n[3]\n');
    const records = await collect([f], 'jsonl', { keyField: 'id' });
    expect(records[0]).toEqual({ ok: true, instance: { a: 2 }, echo: { a: 2 }, key: 1 });
    expect(records[1]).toMatchObject({ ok: false, echo: [3] });
  });
  it('lines: any chunking gives the lines a whole-file reading gives (multi-byte characters, CRLF, BOM, bad UTF-8, long lines)', () => {
    const pieces = ['{"a":1}', '\n', '\r\n', 'é', '€', '😀', '\uFEFF', ' ', '\t', '\u00a0', 'x'.repeat(9), '"q"', Buffer.from([0xff]), Buffer.from([0x80]), Buffer.from([0xe2, 0x82])];
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 300; round++) {
      const parts = Array.from({ length: 1 + random(40) }, () => pieces[random(pieces.length)]!);
      const bytes = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
      const maxBytes = [8, 16, 1000][random(3)]!;
      const splitter = new LineSplitter(maxBytes, 1 + random(4));
      const got: Line[] = [];
      for (let at = 0; at < bytes.length; ) {
        const size = 1 + random(24);
        for (const group of splitter.push(bytes.subarray(at, at + size))) got.push(...group);
        at += size;
      }
      for (const group of splitter.end()) got.push(...group);
      expect(got, JSON.stringify(bytes.toString('latin1'))).toEqual(referenceLines(bytes, maxBytes));
    }
  });
  it('csv: header dropped, quoting respected', async () => {
    const f = await file('a.csv', 'name,n\n"x, y",3\n"4",5\n');
    expect((await collect([f], 'csv')).map(valueOf)).toEqual([['x, y', 3], ['4', 5]]);
  });
  it('file-list: local paths relative to the list, b64 bytes, missing files are error records', async () => {
    const list = await file('list.txt', 'data.bin\nmissing.bin\n');
    await writeFile(path.join(path.dirname(list), 'data.bin'), Buffer.from('hi'));
    const [ok, bad] = await collect([list], 'file-list');
    expect(ok).toEqual({ ok: true, instance: { b64: Buffer.from('hi').toString('base64') }, echo: 'data.bin' });
    expect(bad).toMatchObject({ ok: false, echo: 'missing.bin' });
  });
  it('tf-record: framing and CRCs verified; a truncated file ends with an error record', async () => {
    const good = Buffer.concat([encodeTfRecord(Buffer.from('a')), encodeTfRecord(Buffer.from('bc'))]);
    const truncated = Buffer.concat([good, encodeTfRecord(Buffer.from('def')).subarray(0, 15)]);
    const records = await collect([await file('t.tfrecord', truncated)], 'tf-record');
    expect(records.slice(0, 2).map((r) => Buffer.from((valueOf(r) as { b64: string }).b64, 'base64').toString())).toEqual(['a', 'bc']);
    expect(records[2]).toMatchObject({ ok: false, message: expect.stringContaining('truncated data') });
    const gz = await collect([await file('t.gz', gzipSync(good))], 'tf-record-gzip');
    expect(gz).toHaveLength(2);
  });
  it('reports the bytes read from each input, whatever the format', async () => {
    const tf = Buffer.concat([encodeTfRecord(Buffer.from('a')), encodeTfRecord(Buffer.from('bc'))]);
    const inputs: Array<[ReadableFormat, string]> = [
      ['jsonl', await file('r.jsonl', '{"a":1}\n'.repeat(1000))],
      ['csv', await file('r.csv', `h\n${'1\n'.repeat(1000)}`)],
      ['file-list', await file('r.txt', 'missing\n')],
      ['tf-record', await file('r.tfrecord', tf)],
      ['tf-record-gzip', await file('r.gz', gzipSync(tf))],
    ];
    for (const [format, f] of inputs) {
      let bytes = 0;
      for await (const group of readInstances([f], format, {}, { gcsRoot: '/nonexistent', onRead: (n) => (bytes += n) })) expect(group.length).toBeGreaterThan(0);
      expect(bytes, format).toBe((await stat(f)).size);
    }
  });
  it('masked CRC-32C matches TensorFlow (crc32c("123456789") = 0xe3069283)', () => {
    const crc = 0xe3069283;
    expect(maskedCrc32c(Buffer.from('123456789'))).toBe((((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0);
  });
});

/** Line splitting as a whole-file reader would do it, line by line (what `lines` did before it worked by chunk). */
function referenceLines(bytes: Buffer, maxBytes: number): Line[] {
  const out: Line[] = [];
  const parts: Buffer[] = [];
  for (let start = 0; start <= bytes.length; ) {
    const nl = bytes.indexOf(10, start);
    parts.push(bytes.subarray(start, nl === -1 ? bytes.length : nl));
    if (nl === -1) break;
    start = nl + 1;
  }
  if (parts.length && parts[parts.length - 1]!.length === 0) parts.pop();
  parts.forEach((line, i) => {
    const number = i + 1;
    if (line.length > maxBytes) {
      out.push({ ok: false, number, message: `Line ${number} is longer than ${maxBytes} bytes (at least ${line.length}); it was skipped.`, echo: `(line ${number}, ${line.length}+ bytes)` });
      return;
    }
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(line).replace(/\r$/, '');
    } catch {
      out.push({ ok: false, number, message: `Line ${number} is not valid UTF-8.`, echo: line.subarray(0, 200).toString('latin1') });
      return;
    }
    if (text.trim() !== '') out.push({ ok: true, text, number });
  });
  return out;
}

describe('output naming', () => {
  it('names the directory as real jobs do', () => {
    expect(predictionDirectoryName('my model/v2', new Date('2021-08-17T01:39:36.439Z'))).toBe('prediction-my_model_v2-2021_08_17T01_39_36_439Z');
  });
  it('names shard files both ways', () => {
    expect(predictionFileNames('results', 1, 2)).toEqual({ results: 'prediction.results-00001-of-00002', errors: 'prediction.errors_stats-00001-of-00002' });
    expect(predictionFileNames('predictions', 0, 3)).toEqual({ results: 'predictions_0001.jsonl', errors: 'errors_0001.jsonl' });
  });
});

describe('/proc/net/tcp parsing', () => {
  it('finds listeners and their addresses', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1',
      '   1: 00000000:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1',
      '   2: 0100007F:1F90 0100007F:C000 01 00000000:00000000 00:00000000 00000000     0        0 3 1',
      '  sl  local_address                         remote_address                        st',
      '   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 0',
      '   1: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 0',
    ].join('\n');
    expect(parseProcNetTcp(text)).toEqual([
      { address: '127.0.0.1', port: 8080 },
      { address: '0.0.0.0', port: 5000 },
      { address: '::', port: 8080 },
      { address: '::1', port: 80 },
    ]);
  });
});

describe('batch-predict spec', () => {
  const dirs = { cwd: '/w', specDir: '/s' };
  const base = { image: 'i', inputs: ['a.jsonl'], output: 'o' };
  const usage = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(VbeError);
      return e as VbeError;
    }
    throw new Error('expected an error');
  };
  it('defaults: batch 64, one replica, port 8080, results naming, 3 retries, no parameters', () => {
    const spec = mergeBatchPredictSpec({ ...base, instancesFormat: 'jsonl' }, {}, dirs);
    expect(spec).toMatchObject({ batchSize: 64, replicaCount: 1, port: 8080, outputNaming: 'results', retries: 3, startupTimeoutMs: 40 * 60_000, requestTimeoutMs: 600_000 });
    expect(spec.modelParameters).toBeUndefined();
  });
  it('reads the REST body fields', () => {
    const spec = mergeBatchPredictSpec(
      { image: 'i', output: 'o' },
      {
        inputConfig: { instancesFormat: 'csv', gcsSource: { uris: ['gs://b/x.csv'] } },
        instanceConfig: { keyField: 'k' },
        modelParameters: { t: 1 },
        manualBatchTuningParameters: { batchSize: 8 },
        dedicatedResources: { machineSpec: { machineType: 'n1-standard-2' }, startingReplicaCount: 3 },
        unmanagedContainerModel: { artifactUri: 'gs://b/m', containerSpec: { imageUri: 'x', ports: [{ containerPort: 9000 }], healthRoute: '/h' } },
      },
      dirs,
    );
    expect(spec).toMatchObject({ instancesFormat: 'csv', batchSize: 8, replicaCount: 3, port: 9000, healthRoute: '/h', modelParameters: { value: { t: 1 } }, instanceConfig: { keyField: 'k' } });
    expect(spec.base.modelDir?.text).toBe('gs://b/m');
  });
  it.each([
    [{ instancesFormat: 'parquet' }, 'INVALID_INSTANCES_FORMAT'],
    [{ instancesFormat: 'bigquery' }, 'BIGQUERY_NOT_AVAILABLE'],
    [{}, 'MISSING_INSTANCES_FORMAT'],
    [{ instancesFormat: 'jsonl', includedFields: ['a'], excludedFields: ['b'] }, 'FIELDS_CONFLICT'],
    [{ instancesFormat: 'tf-record', keyField: 'k' }, 'INSTANCE_CONFIG_NOT_APPLICABLE'],
    [{ instancesFormat: 'jsonl', batchSize: 0 }, 'INVALID_NUMBER'],
    [{ instancesFormat: 'jsonl', replicaCount: 99 }, 'INVALID_NUMBER'],
    [{ instancesFormat: 'jsonl', modelParameters: '{oops' }, 'INVALID_MODEL_PARAMETERS'],
    [{ instancesFormat: 'jsonl', predictRoute: 'predict' }, 'INVALID_ROUTE'],
    [{ instancesFormat: 'jsonl', predictRoute: '/my model:predict' }, 'INVALID_ROUTE'],
    [{ instancesFormat: 'jsonl', healthRoute: '/health\n' }, 'INVALID_ROUTE'],
    [{ instancesFormat: 'jsonl', maxFailedRatio: 2 }, 'INVALID_RATIO'],
  ])('rejects %j with %s', (extra, code) => {
    expect(usage(() => mergeBatchPredictSpec({ ...base, ...extra } as never, {}, dirs)).code).toBe(code);
  });
});
