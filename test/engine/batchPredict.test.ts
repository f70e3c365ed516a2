import { readFile, readdir, mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { batchPredict, type BatchPredictOptions, encodeTfRecord, readPredictions } from '../../src/index.js';
import type { TransferProgress } from '../../src/jobs/transferProgress.js';
import { buildContext, labelled, PYTHON_BASE, ROOT, runVbe, tempDir } from '../helpers/engine.js';

const IMAGE = 'vbe-test/model-server:1';

async function lines(file: string): Promise<Array<Record<string, any>>> {
  const text = await readFile(file, 'utf8');
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

describe('vbe batch-predict against real model servers', () => {
  let work: string;
  let jsonl: string;
  beforeAll(async () => {
    await buildContext(IMAGE, path.join(ROOT, 'test/fixtures/model-server'), { BASE_IMAGE: PYTHON_BASE });
    work = await tempDir();
    jsonl = path.join(work, 'instances.jsonl');
    await writeFile(jsonl, Array.from({ length: 10 }, (_, i) => JSON.stringify({ id: i, x: i + 0.5, note: `n${i}` })).join('\n') + '\n');
  });

  const run = (options: BatchPredictOptions) => batchPredict({ image: IMAGE, pull: 'never', instancesFormat: 'jsonl', inputs: [jsonl], ...options });
  const results = (job: { outputInfo: { outputDirectory: string } }, name = 'prediction.results-00000-of-00001') => lines(path.join(job.outputInfo.outputDirectory, name));
  // Failed instances, one per line, from vbe's record (errors_stats holds only counts per message, as on Vertex).
  const errors = async (job: { outputInfo: { outputDirectory: string } }) => {
    const out: Array<Record<string, any>> = [];
    for await (const line of readPredictions(job, { errors: true })) out.push(line);
    return out;
  };

  it('feeds jsonl batches to the cloud routes with the full AIP_* environment, and writes Vertex output files', async () => {
    const artifact = path.join(work, 'model');
    await mkdir(artifact);
    await writeFile(path.join(artifact, 'model.bin'), 'weights');
    const job = await run({ output: path.join(work, 'out-jsonl'), batchSize: 3, artifactUri: artifact, inputs: [jsonl, await extra()], displayName: 'my job' });
    expect(job.state).toBe('JOB_STATE_SUCCEEDED');
    expect(job.completionStats).toEqual({ successfulCount: '11', failedCount: '0', incompleteCount: '0' });
    expect(path.basename(job.outputInfo.outputDirectory)).toMatch(/^prediction-my_job-\d{4}_\d\d_\d\dT\d\d_\d\d_\d\d_\d{3}Z$/);
    expect((await readdir(job.outputInfo.outputDirectory)).sort()).toEqual(['.vbe', 'prediction.errors_stats-00000-of-00001', 'prediction.results-00000-of-00001']);
    const out = await results(job);
    expect(out).toHaveLength(11);
    const byId = new Map(out.map((l) => [l.instance.id, l]));
    expect(byId.get(3)).toMatchObject({ instance: { id: 3, x: 3.5, note: 'n3' }, prediction: { double: { id: 6, x: 7, note: 'n3' }, has_parameters: false } });
    const env = out.find((l) => l.instance.__env__)!.prediction.env as Record<string, string>;
    expect(env.AIP_HEALTH_ROUTE).toMatch(/^\/v1\/endpoints\/\d+\/deployedModels\/\d+$/);
    expect(env.AIP_PREDICT_ROUTE).toBe(`${env.AIP_HEALTH_ROUTE}:predict`);
    expect(env).toMatchObject({ AIP_MODE: 'PREDICTION', AIP_MODE_VERSION: '1.0.0', AIP_FRAMEWORK: 'CUSTOM_CONTAINER', AIP_HTTP_PORT: '8080', AIP_MACHINE_TYPE: 'n1-standard-4', AIP_STORAGE_URI: '/vbe/model' });
    expect(env.AIP_MODEL_NAME).toBe(env.AIP_ENDPOINT_ID);
    expect(env.AIP_VERSION_NAME).toBe(env.AIP_DEPLOYED_MODEL_ID);
    expect(env.AIP_ACCELERATOR_TYPE).toBeUndefined();
    expect(out.find((l) => l.instance.__env__)!.prediction.storage).toEqual(['model.bin']);
    expect(await labelled(`dev.vbe.job-id=${job.emulator.jobId}`)).toEqual({ containers: [], volumes: [] });
  });

  async function extra(): Promise<string> {
    const file = path.join(work, 'env.jsonl');
    await writeFile(file, '{"id": 100, "__env__": true}\n');
    return file;
  }

  it('forwards modelParameters as the request parameters', async () => {
    const job = await run({ output: path.join(work, 'out-params'), modelParameters: '{"threshold": 0.25}' });
    expect((await results(job))[0]!.prediction).toMatchObject({ parameters: { threshold: 0.25 }, has_parameters: true });
    expect(job.modelParameters).toEqual({ threshold: 0.25 });
  });

  it('csv: header dropped, quoted cells strings, unquoted numbers; arrays by default, objects on request', async () => {
    const csv = path.join(work, 'rows.csv');
    await writeFile(csv, 'name,age,score\n"alice",30,1.5\n"bob","41",2\n');
    const arrays = await run({ instancesFormat: 'csv', inputs: [csv], output: path.join(work, 'out-csv') });
    expect((await results(arrays)).map((l) => l.instance)).toEqual([['alice', 30, 1.5], ['bob', '41', 2]]);
    const objects = await run({ instancesFormat: 'csv', inputs: [csv], output: path.join(work, 'out-csv-obj'), instanceType: 'object', excludedFields: ['score'] });
    // excludedFields: not sent, but the output's instance is the whole record (no keyField).
    expect((await results(objects)).map((l) => l.instance)).toEqual([{ name: 'alice', age: 30, score: 1.5 }, { name: 'bob', age: '41', score: 2 }]);
    expect((await results(objects)).map((l) => l.prediction.instance)).toEqual([{ name: 'alice', age: 30 }, { name: 'bob', age: '41' }]);
  });

  it('file-list: each gs:// file goes as {"b64"} and the output instance is its URI', async () => {
    const gcsRoot = path.join(work, 'gcs');
    await mkdir(path.join(gcsRoot, 'bkt/images'), { recursive: true });
    await writeFile(path.join(gcsRoot, 'bkt/images/a.bin'), Buffer.from([0, 1, 2, 255]));
    await writeFile(path.join(gcsRoot, 'bkt/list.txt'), 'gs://bkt/images/a.bin\ngs://bkt/images/missing.bin\n');
    const job = await run({ instancesFormat: 'file-list', inputs: ['gs://bkt/list.txt'], gcsRoot, output: 'gs://bkt/preds' });
    expect(job.outputInfo.gcsOutputDirectory).toMatch(/^gs:\/\/bkt\/preds\/prediction-/);
    const [ok] = await results(job);
    expect(ok).toMatchObject({ instance: 'gs://bkt/images/a.bin', prediction: { instance: { b64: Buffer.from([0, 1, 2, 255]).toString('base64') } } });
    const [bad] = await errors(job);
    expect(bad).toMatchObject({ instance: 'gs://bkt/images/missing.bin', error: { code: 3 } });
    expect(bad!.error.message).toContain('ENOENT');
  });

  it.each(['tf-record', 'tf-record-gzip'] as const)('%s: every record, CRC-checked, as {"b64"}', async (format) => {
    const records = [Buffer.from('first'), Buffer.from(''), Buffer.from([1, 2, 3])];
    let bytes = Buffer.concat(records.map((r) => encodeTfRecord(r)));
    const corrupt = encodeTfRecord(Buffer.from('bad'));
    corrupt.writeUInt8(corrupt.readUInt8(corrupt.length - 1) ^ 0xff, corrupt.length - 1); // data CRC no longer matches
    bytes = Buffer.concat([bytes, corrupt]);
    const file = path.join(work, `data.${format}`);
    await writeFile(file, format === 'tf-record-gzip' ? gzipSync(bytes) : bytes);
    const job = await run({ instancesFormat: format, inputs: [file], output: path.join(work, `out-${format}`) });
    expect((await results(job)).map((l) => Buffer.from(l.instance.b64, 'base64').toString())).toEqual(['first', '', '\u0001\u0002\u0003']);
    expect((await errors(job))[0]!.error.message).toContain('data CRC mismatch');
    expect(job.completionStats.failedCount).toBe('1');
  });

  it('keyField and includedFields: the key leaves the instance and replaces it in the output', async () => {
    const job = await run({ output: path.join(work, 'out-key'), keyField: 'id', includedFields: ['x'], instanceType: 'array' });
    const out = await results(job);
    expect(out.find((l) => l.key === 2)).toEqual({ key: 2, prediction: expect.objectContaining({ instance: [2.5] }) });
    expect(out.every((l) => !('instance' in l))).toBe(true);
  });

  it('two replicas split the input and answer every instance exactly once', async () => {
    const many = path.join(work, 'many.jsonl');
    await writeFile(many, Array.from({ length: 500 }, (_, i) => JSON.stringify({ id: i })).join('\n'));
    const job = await run({ inputs: [many], output: path.join(work, 'out-replicas'), replicaCount: 2, batchSize: 7 });
    expect(job.state).toBe('JOB_STATE_SUCCEEDED');
    const shard0 = await results(job, 'prediction.results-00000-of-00002');
    const shard1 = await results(job, 'prediction.results-00001-of-00002');
    expect(shard0.length).toBeGreaterThan(0);
    expect(shard1.length).toBeGreaterThan(0);
    const ids = [...shard0, ...shard1].map((l) => l.instance.id).sort((a, b) => a - b);
    expect(ids).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(job.emulator.logs).toHaveLength(2);
  });

  it('reports instances answered and input bytes read as it goes (for a progress display)', async () => {
    const events: TransferProgress[] = [];
    const job = await batchPredict({ image: IMAGE, pull: 'never', instancesFormat: 'jsonl', inputs: [jsonl], output: path.join(work, 'out-progress'), batchSize: 3 }, { onTransfer: (e) => events.push(e) });
    expect(job.completionStats.successfulCount).toBe('10');
    const instances = events.filter((e) => e.kind === 'instances');
    expect(instances.length).toBeGreaterThanOrEqual(4); // one per batch
    const totalBytes = (await stat(jsonl)).size;
    expect(instances.at(-1)).toEqual({ kind: 'instances', done: 10, failed: 0, readBytes: totalBytes, totalBytes });
    expect(instances.map((e) => e.done)).toEqual([...instances.map((e) => e.done)].sort((a, b) => a - b));
    expect(events.filter((e) => e.kind === 'done' && e.of === 'instances')).toHaveLength(1);
    expect(events.findIndex((e) => e.kind === 'done' && e.of === 'instances')).toBeGreaterThan(events.lastIndexOf(instances.at(-1)!));
  });

  it('--output-naming predictions writes predictions_0001.jsonl / errors_0001.jsonl', async () => {
    const job = await run({ output: path.join(work, 'out-naming'), outputNaming: 'predictions' });
    expect((await readdir(job.outputInfo.outputDirectory)).sort()).toEqual(['.vbe', 'errors_0001.jsonl', 'predictions_0001.jsonl']);
  });

  describe('broken servers fail the way they fail on Vertex, with the reason', () => {
    const broken = (fault: string, extra: BatchPredictOptions = {}) => run({ output: path.join(work, `out-${fault}`), env: [`FAULT=${fault}`], startupTimeout: '3s', ...extra });

    it('bound to 127.0.0.1: never ready, LISTENING_ON_LOCALHOST', async () => {
      const job = await broken('bind-localhost');
      expect(job.state).toBe('JOB_STATE_FAILED');
      expect(job.error!.message).toBe('model server never became ready. Please validate that your model file or container configuration are valid.');
      expect(job.emulator.diagnoses[0]).toMatchObject({ code: 'LISTENING_ON_LOCALHOST' });
      expect(job.emulator.diagnoses[0]!.evidence!.join()).toContain('127.0.0.1:8080');
    });

    it('on another port: WRONG_PORT naming both ports', async () => {
      const job = await broken('wrong-port');
      expect(job.emulator.diagnoses[0]).toMatchObject({ code: 'WRONG_PORT' });
      expect(job.emulator.diagnoses[0]!.message).toContain('port 5000, but Vertex sends requests to AIP_HTTP_PORT=8080');
    });

    it('health route answering 404: HEALTH_ROUTE_NOT_FOUND, and which route answered 200', async () => {
      const job = await broken('health-404');
      const d = job.emulator.diagnoses[0]!;
      expect(d.code).toBe('HEALTH_ROUTE_NOT_FOUND');
      expect(d.fix).toContain('/health');
    });

    it('exits on start: "Model server terminated" with the log tail', async () => {
      const job = await broken('exit-on-start');
      expect(job.error!.message).toMatch(/^Model server terminated/);
      expect(job.emulator.diagnoses[0]).toMatchObject({ code: 'SERVER_EXITED_AT_START' });
      expect(job.emulator.diagnoses[0]!.evidence!.join()).toContain('failing at start on purpose');
      expect(job.completionStats.successfulCount).toBe('0');
    });

    it('a run-to-completion image given to batch-predict is told to use vbe run', async () => {
      const job = await broken('exit-zero');
      expect(job.emulator.diagnoses[0]).toMatchObject({ code: 'RUNS_TO_COMPLETION' });
      expect(job.emulator.diagnoses[0]!.fix).toContain('vbe run');
    });

    it('crashes mid-job: FAILED, what was not answered is incomplete', async () => {
      const job = await broken('crash-after', { env: ['FAULT=crash-after', 'CRASH_AFTER=1'], batchSize: 2, maxInFlight: 1 });
      expect(job.state).toBe('JOB_STATE_FAILED');
      expect(job.error!.message).toMatch(/^Model server exited unexpectedly: replica 0 exited with status 7/);
      expect(job.completionStats.successfulCount).toBe('2');
      expect(job.completionStats.incompleteCount).toBe('8');
      expect(job.emulator.diagnoses[0]).toMatchObject({ code: 'SERVER_DIED' });
    });

    it('answers 500 for some batches: those instances become error records, the job SUCCEEDS', async () => {
      const file = path.join(work, 'some-fail.jsonl');
      await writeFile(file, ['{"id":1}', '{"id":2}', '{"id":3,"fail":true}', '{"id":4}'].join('\n'));
      const job = await broken('fail-some', { inputs: [file], batchSize: 2, retries: 1 });
      expect(job.state).toBe('JOB_STATE_SUCCEEDED');
      expect(job.completionStats).toEqual({ successfulCount: '2', failedCount: '2', incompleteCount: '0' });
      const errs = await errors(job);
      expect(errs.map((e) => e.instance.id).sort()).toEqual([3, 4]);
      expect(errs[0]!.error.message).toMatch(/^Post request fails\. Cannot get predictions\. Error: Exceeded retries: Non-OK result 500/);
      expect(job.partialFailures).toHaveLength(1);
      expect(job.emulator.diagnoses.map((d) => d.code)).toContain('PREDICT_HTTP_ERROR');
      const strict = await broken('fail-some', { inputs: [file], batchSize: 2, retries: 0, maxFailedRatio: 0.25, output: path.join(work, 'out-strict') });
      expect(strict.state).toBe('JOB_STATE_FAILED');
      expect(strict.error!.message).toContain('2 of 4 instances failed');
    });

    it('returns the wrong number of predictions: PREDICT_COUNT_MISMATCH error records', async () => {
      const job = await broken('wrong-count', { batchSize: 5, retries: 0 });
      expect(job.completionStats.failedCount).toBe('10');
      expect((await errors(job))[0]!.error.message).toBe('The model server returned 4 predictions for 5 instances.');
      expect(job.emulator.diagnoses.map((d) => d.code)).toContain('PREDICT_COUNT_MISMATCH');
    });

    it('answers too slowly: PREDICT_TIMEOUT error records after the request timeout', async () => {
      const file = path.join(work, 'one.jsonl');
      await writeFile(file, '{"id":1}\n');
      const job = await broken('slow', { inputs: [file], env: ['FAULT=slow', 'SLOW_SECONDS=5'], requestTimeout: '1s', retries: 0 });
      expect(job.completionStats.failedCount).toBe('1');
      expect((await errors(job))[0]!.error).toMatchObject({ code: 4 });
      expect(job.emulator.diagnoses.map((d) => d.code)).toContain('PREDICT_TIMEOUT');
    });
  });

  it('runs a real BatchPredictionJob REST body unchanged (gs:// mapped by --gcs-root), via the CLI', async () => {
    const dir = path.join(work, 'rest');
    await mkdir(path.join(dir, 'gcs/bkt/in'), { recursive: true });
    await writeFile(path.join(dir, 'gcs/bkt/in/a.jsonl'), '{"v": 1}\n{"v": 2}\n');
    await writeFile(
      path.join(dir, 'job.json'),
      JSON.stringify({
        displayName: 'rest-job',
        model: 'projects/p/locations/us-central1/models/123',
        unmanagedContainerModel: { containerSpec: { imageUri: IMAGE, predictRoute: '/predict', healthRoute: '/health', ports: [{ containerPort: 8080 }] } },
        inputConfig: { instancesFormat: 'jsonl', gcsSource: { uris: ['gs://bkt/in/*.jsonl'] } },
        modelParameters: { k: 1 },
        outputConfig: { predictionsFormat: 'jsonl', gcsDestination: { outputUriPrefix: 'gs://bkt/out' } },
        dedicatedResources: { machineSpec: { machineType: 'n1-standard-2' }, startingReplicaCount: 1, maxReplicaCount: 1 },
        manualBatchTuningParameters: { batchSize: 16 },
      }),
    );
    const result = await runVbe(['batch-predict', '--spec', 'job.json', '--gcs-root', 'gcs', '--pull', 'never', '--json'], {}, dir);
    expect(result.code, result.stderr).toBe(0);
    const job = JSON.parse(result.stdout);
    expect(job.emulator.routes).toEqual({ health: '/health', predict: '/predict', port: 8080 });
    expect(job.completionStats.successfulCount).toBe('2');
    const dirName = job.outputInfo.gcsOutputDirectory.split('/').pop();
    expect((await lines(path.join(dir, 'gcs/bkt/out', dirName, 'prediction.results-00000-of-00001')))[0]!.prediction.parameters).toEqual({ k: 1 });
  });

  it('a server image given to vbe run is diagnosed as a server (use batch-predict)', async () => {
    const job = await (await import('../../src/index.js')).runJob({ image: IMAGE, pull: 'never', inputs: [jsonl], output: path.join(work, 'misuse'), timeout: '3s' });
    expect(job.state).toBe('JOB_STATE_FAILED');
    const d = job.emulator.diagnoses.find((x) => x.code === 'LOOKS_LIKE_SERVER');
    expect(d?.fix).toContain('vbe batch-predict');
  });

  it('usage errors exit 2 naming the field', async () => {
    const both = await runVbe(['batch-predict', '--image', IMAGE, '--input', jsonl, '--instances-format', 'jsonl', '--output', work, '--included-fields', 'a', '--excluded-fields', 'b']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('includedFields and excludedFields cannot both be set');
    const bq = await runVbe(['batch-predict', '--image', IMAGE, '--input', jsonl, '--instances-format', 'bigquery', '--output', work]);
    expect(bq.code).toBe(2);
    expect(bq.stderr).toContain('bigquery input is not available locally');
    const size = await runVbe(['batch-predict', '--image', IMAGE, '--input', jsonl, '--instances-format', 'jsonl', '--output', work, '--batch-size', '-3']);
    expect(size.code).toBe(2);
  });
});
