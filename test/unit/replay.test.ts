import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { batchPredictionJobBody, customJobBody } from '../../src/cloud/jobRequestBody.js';
import { compareOutcomes, type JobOutcome } from '../../src/replay/compareOutcomes.js';
import { parseErrorStats } from '../../src/replay/errorStats.js';
import { canonicalJson, writeFailedInstances } from '../../src/replay/failedInstances.js';
import { cloudOutcome, jobKind, toLocalSpec } from '../../src/replay/vertexJobResource.js';
import { mergeBatchPredictSpec } from '../../src/spec/batchPredictSpec.js';
import { mergeRunJobSpec } from '../../src/spec/runJobSpec.js';
import { batchPredictionJobSchema, parseWithSchema, runJobSpecFileSchema } from '../../src/spec/vertexSchemas.js';

const RESOURCES = path.resolve(import.meta.dirname, '../fixtures/resources');
const fixture = async (name: string) => JSON.parse(await readFile(path.join(RESOURCES, name), 'utf8')) as Record<string, any>;
const stats = (successfulCount: string, failedCount: string, incompleteCount = '0') => ({ successfulCount, failedCount, incompleteCount });
const side = (state: string, extra: Partial<JobOutcome> = {}): JobOutcome => ({ state, errorGroups: [], ...extra });

describe('job resources as specs', () => {
  it('accepts the fixtures with every output-only field, and still refuses a typo', async () => {
    const batch = await fixture('batch-prediction-job-failed.json');
    expect(() => parseWithSchema(batchPredictionJobSchema, batch, 'bp.json')).not.toThrow();
    const custom = await fixture('custom-job-failed.json');
    expect(() => parseWithSchema(runJobSpecFileSchema, custom, 'cj.json')).not.toThrow();
    expect(() => parseWithSchema(batchPredictionJobSchema, { ...batch, completionStat: {} }, 'bp.json')).toThrow(/completionStat: unknown field/);
  });

  it('tells the kinds apart and reads the cloud outcome', async () => {
    const batch = await fixture('batch-prediction-job-failed.json');
    expect(jobKind(batch, 'x')).toBe('batchPredictionJob');
    expect(jobKind(await fixture('custom-job-failed.json'), 'x')).toBe('customJob');
    expect(() => jobKind({ displayName: 'x' }, 'x.json')).toThrow(/neither a BatchPredictionJob/);
    expect(cloudOutcome(batch)).toEqual({ state: 'JOB_STATE_FAILED', error: { code: 13, message: expect.stringContaining('4 of 12') }, completionStats: stats('8', '4'), errorGroups: [] });
  });

  it('a local spec drops the output-only fields and inlines the Model container', async () => {
    const spec = toLocalSpec(await fixture('batch-prediction-job-failed.json'), { containerSpec: { imageUri: 'i' }, artifactUri: 'gs://b/m' });
    expect(spec).not.toHaveProperty('state');
    expect(spec).not.toHaveProperty('outputInfo');
    expect(spec).not.toHaveProperty('model');
    expect(spec.unmanagedContainerModel).toEqual({ containerSpec: { imageUri: 'i' }, artifactUri: 'gs://b/m' });
    expect(spec.instanceConfig).toEqual({ keyField: 'id' });
  });
});

describe('compareOutcomes', () => {
  it.each([
    ['instances failed in both', side('JOB_STATE_FAILED', { completionStats: stats('8', '4') }), side('JOB_STATE_SUCCEEDED', { completionStats: stats('0', '4') }), 'reproduced'],
    ['instances failed in the cloud only', side('JOB_STATE_SUCCEEDED', { completionStats: stats('8', '4') }), side('JOB_STATE_SUCCEEDED', { completionStats: stats('12', '0') }), 'not reproduced'],
    ['incomplete instances count as failed', side('JOB_STATE_FAILED', { completionStats: stats('8', '0', '4') }), side('JOB_STATE_FAILED', { completionStats: stats('0', '0', '4') }), 'reproduced'],
    ['a whole-job failure reproduced', side('JOB_STATE_FAILED', { error: { code: 3, message: 'a' } }), side('JOB_STATE_FAILED', { error: { code: 3, message: 'a' } }), 'reproduced'],
    ['a whole-job failure that succeeds here', side('JOB_STATE_FAILED', { error: { code: 3, message: 'a' } }), side('JOB_STATE_SUCCEEDED'), 'not reproduced'],
    ['a success that succeeds here', side('JOB_STATE_SUCCEEDED', { completionStats: stats('3', '0') }), side('JOB_STATE_SUCCEEDED', { completionStats: stats('3', '0') }), 'reproduced'],
    ['a success that fails instances here', side('JOB_STATE_SUCCEEDED', { completionStats: stats('3', '0') }), side('JOB_STATE_SUCCEEDED', { completionStats: stats('2', '1') }), 'not reproduced'],
  ])('%s', (_, cloud, local, verdict) => {
    expect(compareOutcomes(cloud, local).verdict).toBe(verdict);
  });

  it('lists the differences', () => {
    const c = compareOutcomes(side('JOB_STATE_FAILED', { error: { code: 13, message: 'x' }, completionStats: stats('8', '4') }), side('JOB_STATE_SUCCEEDED', { completionStats: stats('0', '4') }));
    expect(c.differences).toEqual(['state: cloud JOB_STATE_FAILED, local JOB_STATE_SUCCEEDED', 'error code: cloud 13, local -', 'successfulCount: cloud 8, local 0']);
  });
});

describe('parseErrorStats', () => {
  it('reads the Python tuple lines of prediction.errors_stats, and JSON error lines', () => {
    const text = [
      "('Post request fails. Cannot get predictions. Error: Exceeded retries: Non-OK result 504 (upstream request timeout) from server, retry=3, elapsed=600.04s.', 16)",
      `("It's a quote", 2)`,
      '{"instance": {"a": 1}, "error": {"code": 13, "message": "HTTP 500"}}',
      '{"instance": {"a": 2}, "error": {"code": 13, "message": "HTTP 500"}}',
      '',
    ].join('\n');
    expect(parseErrorStats(text)).toEqual([
      { message: expect.stringContaining('Non-OK result 504'), count: 16 },
      { message: 'HTTP 500', count: 2 },
      { message: "It's a quote", count: 2 },
    ]);
  });
});

describe('writeFailedInstances', () => {
  const setup = async (input: string, results: string) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vbe-failed-'));
    await writeFile(path.join(dir, 'in.jsonl'), input);
    await writeFile(path.join(dir, 'prediction.results-00000-of-00001'), results);
    return dir;
  };

  it('matches by canonical JSON (key order, spacing), counts duplicates, keeps the missing lines as written', async () => {
    const dir = await setup('{"a": 1, "b": [1, 2]}\n{"a":2}\n{"a":2}\n  {"a": 3}\nnot json\n', '{"instance": {"b":[1,2],"a":1}, "prediction": 1}\n{"instance": {"a": 2}, "prediction": 2}\n');
    const out = path.join(dir, 'failed.jsonl');
    const found = await writeFailedInstances({ inputFiles: [path.join(dir, 'in.jsonl')], resultsFiles: [path.join(dir, 'prediction.results-00000-of-00001')], instanceConfig: {}, outFile: out });
    expect(found).toMatchObject({ inputInstances: 5, withResults: 2, failed: 3 });
    expect(await readFile(out, 'utf8')).toBe('{"a":2}\n  {"a": 3}\nnot json\n');
  });

  it('matches by keyField, and compares instances as sent (includedFields)', async () => {
    const keyed = await setup('{"id": "x", "v": 1}\n{"id": "y", "v": 2}\n', '{"key": "y", "prediction": 0}\n');
    const out = path.join(keyed, 'failed.jsonl');
    await writeFailedInstances({ inputFiles: [path.join(keyed, 'in.jsonl')], resultsFiles: [path.join(keyed, 'prediction.results-00000-of-00001')], instanceConfig: { keyField: 'id' }, outFile: out });
    expect(await readFile(out, 'utf8')).toBe('{"id": "x", "v": 1}\n');
    const included = await setup('{"id": 1, "v": 1, "junk": 0}\n{"id": 2, "v": 2, "junk": 0}\n', '{"instance": {"v": 2}, "prediction": 0}\n');
    const out2 = path.join(included, 'failed.jsonl');
    await writeFailedInstances({ inputFiles: [path.join(included, 'in.jsonl')], resultsFiles: [path.join(included, 'prediction.results-00000-of-00001')], instanceConfig: { includedFields: ['v'] }, outFile: out2 });
    expect(await readFile(out2, 'utf8')).toBe('{"id": 1, "v": 1, "junk": 0}\n');
  });

  it('canonicalJson sorts keys at every level', () => {
    expect(canonicalJson({ b: { d: 1, c: [{ y: 1, x: 2 }] }, a: null })).toBe('{"a":null,"b":{"c":[{"x":2,"y":1}],"d":1}}');
  });
});

describe('submit request bodies', () => {
  const dirs = { cwd: '/w', specDir: '/w' };
  it('a BatchPredictionJob from batch-predict flags, secrets masked only when asked', () => {
    const spec = mergeBatchPredictSpec({ image: 'img:1', inputs: ['gs://b/in.jsonl'], output: 'gs://b/out', instancesFormat: 'jsonl', secretEnv: ['TOKEN=s3cret'], replicaCount: 2, predictRoute: '/p' }, {}, dirs);
    const where = { inputs: ['gs://b/in.jsonl'], output: 'gs://b/out' };
    const masked = batchPredictionJobBody(spec, where, { maskSecrets: true });
    expect((masked.body.unmanagedContainerModel as any).containerSpec).toEqual({ imageUri: 'img:1', env: [{ name: 'TOKEN', value: '***' }], ports: [{ containerPort: 8080 }], predictRoute: '/p' });
    expect(masked.body.dedicatedResources).toEqual({ machineSpec: { machineType: 'n1-standard-4' }, startingReplicaCount: 2, maxReplicaCount: 2 });
    expect(masked.warnings[0]).toMatch(/secret-env values are sent/);
    expect((batchPredictionJobBody(spec, where, { maskSecrets: false }).body.unmanagedContainerModel as any).containerSpec.env).toEqual([{ name: 'TOKEN', value: 's3cret' }]);
  });

  it('a CustomJob from run flags: no scheduling for the local default timeout; --batch-env sets the /gcs paths', () => {
    const spec = mergeRunJobSpec({ image: 'img:1', inputs: ['gs://b/in.jsonl'], output: 'gs://b/out' }, {}, dirs);
    const plain = customJobBody(spec, { inputs: ['gs://b/in.jsonl'], output: 'gs://b/out' }, { maskSecrets: true, batchEnv: false });
    expect((plain.body.jobSpec as any).scheduling).toBeUndefined();
    expect(plain.warnings.join()).toMatch(/Vertex sets neither AIP_BATCH_INPUT_URIS/);
    const withEnv = customJobBody(spec, { inputs: ['gs://b/in.jsonl'], output: 'gs://b/out' }, { maskSecrets: true, batchEnv: true });
    expect((withEnv.body.jobSpec as any).workerPoolSpecs[0].containerSpec.env).toEqual([
      { name: 'AIP_BATCH_INPUT_URIS', value: '/gcs/b/in.jsonl' },
      { name: 'AIP_BATCH_OUTPUT_DIR', value: '/gcs/b/out' },
    ]);
  });
});
