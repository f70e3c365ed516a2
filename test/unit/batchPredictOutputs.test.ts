import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { entrypointFiles, guessContract } from '../../src/doctor/guessContract.js';
import { VbeError } from '../../src/errors.js';
import { idleReplicaWarning, partitionInputs } from '../../src/jobs/partitionInputs.js';
import { formatBatchSummary } from '../../src/report/formatBatchSummary.js';
import type { BatchPredictionJobResource } from '../../src/report/jobResource.js';
import type { ImageDetails } from '../../src/runtime/containerEngine.js';
import { mergeBatchPredictSpec } from '../../src/spec/batchPredictSpec.js';
import { exceededRetriesMessage, FailedInstanceSink } from '../../src/staging/failedInstances.js';
import { errorStatsLine, pythonStrRepr } from '../../src/staging/pythonRepr.js';
import { vbeMatchers } from '../../src/testing/vitestMatchers.js';
import { type BatchObservation, diagnoseBatchPredict, judgeBatchPredict } from '../../src/verdict/judgeBatchPredict.js';
import { scanLogLine } from '../../src/verdict/scanLogLine.js';

describe("errors_stats lines: Python's repr of (message, count)", () => {
  // Expected values printed by CPython 3.11: json.dumps([[c, repr(c)] for c in cases]).
  it.each([
    ['plain', "'plain'"],
    ["it's", `"it's"`],
    ['say "hi"', `'say "hi"'`],
    [`both ' and "`, `'both \\' and "'`],
    ['back\\slash', "'back\\\\slash'"],
    ['tab\there\nnew\rcr', "'tab\\there\\nnew\\rcr'"],
    ['bell\u0007 del\u007f nbsp\u00a0 \u00e9 \u65e5\u672c \u2028 \u200b \ud83d\ude00 \ue000 \udb40\udc01', "'bell\\x07 del\\x7f nbsp\\xa0 \u00e9 \u65e5\u672c \\u2028 \\u200b \ud83d\ude00 \\ue000 \\U000e0001'"],
    ['', "''"],
  ])('repr(%j) is %s', (text, expected) => {
    expect(pythonStrRepr(text)).toBe(expected);
  });
  it("matches the cloud's line for an exceeded-retries error", () => {
    const message = exceededRetriesMessage('Non-OK result 504 (upstream request timeout) from server', 3, 600_040);
    expect(message).toBe('Post request fails. Cannot get predictions. Error: Exceeded retries: Non-OK result 504 (upstream request timeout) from server, retry=3, elapsed=600.04s.');
    expect(errorStatsLine(message, 16)).toBe("('Post request fails. Cannot get predictions. Error: Exceeded retries: Non-OK result 504 (upstream request timeout) from server, retry=3, elapsed=600.04s.', 16)");
  });
  it('the sink aggregates per shard (most frequent first), keeps per-instance detail in its own record, and per-instance errors_0001.jsonl with predictions naming', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vbe-sink-'));
    const sink = new FailedInstanceSink(dir, dir, [{ errors: 'prediction.errors_stats-00000-of-00001' }], 'results');
    await sink.add(0, ['"instance":{"a":1},'], { code: 3, message: "bad 'x'" }, 0);
    await sink.add(0, ['"instance":2,', '"instance":3,'], { code: 13, message: 'boom' }, 4);
    const record = await sink.close();
    expect(await readFile(path.join(dir, 'prediction.errors_stats-00000-of-00001'), 'utf8')).toBe(`('boom', 2)\n("bad 'x'", 1)\n`);
    expect(record).toMatchObject({ count: 3, examples: [{ instance: { a: 1 }, error: { code: 3, message: "bad 'x'" }, attempts: 0 }, { instance: 2, attempts: 4 }, { instance: 3 }] });
    expect((await readFile(record.file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l))[1]).toEqual({ instance: 2, error: { code: 13, message: 'boom' }, attempts: 4 });

    const named = await mkdtemp(path.join(os.tmpdir(), 'vbe-sink-'));
    const perInstance = new FailedInstanceSink(named, named, [{ errors: 'errors_0001.jsonl' }], 'predictions');
    await perInstance.add(0, ['"key":"k1",'], { code: 13, message: 'boom' }, 1);
    await perInstance.close();
    expect(JSON.parse(await readFile(path.join(named, 'errors_0001.jsonl'), 'utf8'))).toEqual({ key: 'k1', error: { code: 13, message: 'boom' } });
  });
});

describe('partitioning among replicas', () => {
  it('jsonl and file-list are shared; csv and tf-record go by whole file, round robin', () => {
    expect(partitionInputs('jsonl', 1, 3)).toEqual({ shared: true });
    expect(partitionInputs('file-list', 1, 3)).toEqual({ shared: true });
    expect(partitionInputs('csv', 3, 2)).toEqual({ shared: false, filesByReplica: [[0, 2], [1]], idleReplicas: [] });
    expect(partitionInputs('tf-record', 1, 3)).toEqual({ shared: false, filesByReplica: [[0], [], []], idleReplicas: [1, 2] });
  });
  it('fewer files than replicas warns, naming how many replicas sit idle', () => {
    const p = partitionInputs('tf-record', 1, 3);
    expect(idleReplicaWarning('tf-record', ['/x/a.tfrecord'], 3, p)).toMatch(/^1 tf-record file\(s\) \(a\.tfrecord\) for 3 replicas: tf-record input is split by file, so 2 replica\(s\) \(replica-1, replica-2\) will sit idle\./);
    expect(idleReplicaWarning('jsonl', ['/x/a.jsonl'], 3, partitionInputs('jsonl', 1, 3))).toBeUndefined();
  });
});

describe('BatchPredictionJob spec: outputs and replicas', () => {
  const dirs = { cwd: '/tmp', specDir: '/tmp' };
  const base = { image: 'img', inputs: ['x.jsonl'], instancesFormat: 'jsonl' };
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(VbeError);
      return (e as VbeError).code;
    }
    return 'no error';
  };
  it('bigqueryDestination exits 2 saying BigQuery output is not available locally (not MISSING_OUTPUT)', () => {
    expect(code(() => mergeBatchPredictSpec(base, { outputConfig: { bigqueryDestination: { outputUri: 'bq://p.d' } } }, dirs))).toBe('BIGQUERY_OUTPUT_NOT_AVAILABLE');
  });
  it('a predictionsFormat other than jsonl is refused, naming the field', () => {
    expect(code(() => mergeBatchPredictSpec({ ...base, output: 'o' }, { outputConfig: { predictionsFormat: 'csv' } }, dirs))).toBe('PREDICTIONS_FORMAT_NOT_EMULATED');
    expect(mergeBatchPredictSpec({ ...base, output: 'o' }, { outputConfig: { predictionsFormat: 'jsonl' } }, dirs).predictionsFormat).toBe('jsonl');
  });
  it('generateExplanation / explanationSpec: a warning that explanations are not emulated', () => {
    const spec = mergeBatchPredictSpec({ ...base, output: 'o' }, { generateExplanation: true }, dirs);
    expect(spec.base.warnings.join('\n')).toContain('explanations are not emulated');
  });
  it('maxReplicaCount without startingReplicaCount: the maximum, with a warning; startingReplicaCount and --replica-count win', () => {
    const machineSpec = { machineType: 'n1-standard-2' };
    const spec = mergeBatchPredictSpec({ ...base, output: 'o' }, { dedicatedResources: { machineSpec, maxReplicaCount: 3 } }, dirs);
    expect(spec.replicaCount).toBe(3);
    expect(spec.base.warnings.join('\n')).toContain('maxReplicaCount 3 without startingReplicaCount');
    expect(mergeBatchPredictSpec({ ...base, output: 'o' }, { dedicatedResources: { machineSpec, maxReplicaCount: 3, startingReplicaCount: 2 } }, dirs).replicaCount).toBe(2);
    expect(mergeBatchPredictSpec({ ...base, output: 'o', replicaCount: 1 }, { dedicatedResources: { machineSpec, maxReplicaCount: 3 } }, dirs).replicaCount).toBe(1);
  });
  it('accepts a model display name for the output directory', () => {
    expect(mergeBatchPredictSpec({ ...base, output: 'o', modelDisplayName: 'my-model' }, {}, dirs).modelDisplayName).toBe('my-model');
    expect(code(() => mergeBatchPredictSpec({ ...base, output: 'o', modelDisplayName: ' ' }, {}, dirs))).toBe('INVALID_MODEL_DISPLAY_NAME');
  });
});

describe('verdict: every instance failed, worker crashes', () => {
  const observation = (over: Partial<BatchObservation> = {}): BatchObservation => ({
    imageUri: 'i',
    image: { architecture: 'amd64', os: 'linux' },
    cancelled: false,
    port: 8080,
    healthRoute: '/h',
    predictRoute: '/p',
    batchSize: 64,
    machineType: 'n1-standard-4',
    memoryBytes: 2 ** 30,
    startup: { outcome: 'ready', afterMs: 5 },
    stats: { successful: 0, failed: 10, incomplete: 0 },
    maxResponseBytes: 0,
    failuresByKind: { http: { count: 8, example: 'Post request fails. ... 500' }, 'bad-record': { count: 2, example: 'bad' } },
    logSignals: [],
    logTail: [],
    ...over,
  });
  it('ALL_INSTANCES_FAILED leads the diagnoses of a job that still SUCCEEDS, with the most common error; --max-failed-ratio 0 fails it', () => {
    const o = observation();
    expect(judgeBatchPredict(o).state).toBe('JOB_STATE_SUCCEEDED');
    const [first] = diagnoseBatchPredict(o);
    expect(first).toMatchObject({ code: 'ALL_INSTANCES_FAILED', severity: 'warning', message: expect.stringContaining('Most common (8 instance(s), http): Post request fails. ... 500') });
    expect(judgeBatchPredict(observation({ maxFailedRatio: 0 })).state).toBe('JOB_STATE_FAILED');
    expect(diagnoseBatchPredict(observation({ stats: { successful: 1, failed: 10, incomplete: 0 } })).map((d) => d.code)).not.toContain('ALL_INSTANCES_FAILED');
  });
  it('SERVER_WORKER_CRASHED instead of NOT_LISTENING when the log holds a worker traceback', () => {
    const neverReady = { outcome: 'never-ready' as const, replica: 0, startupTimeoutMs: 1000, lastHealth: 'no HTTP answer (ECONNRESET)', listeners: [], routesAnswering200: [] };
    const crash = scanLogLine('Process SpawnProcess-1:')!;
    expect(crash.kind).toBe('worker-crashed');
    expect(scanLogLine('[2024-01-01 00:00:00 +0000] [7] [ERROR] Exception in worker process')?.kind).toBe('worker-crashed');
    expect(scanLogLine('Traceback (most recent call last):')?.kind).toBe('worker-crashed');
    const codes = (o: BatchObservation) => diagnoseBatchPredict(o).map((d) => d.code);
    expect(codes(observation({ stats: { successful: 0, failed: 0, incomplete: 0 }, failuresByKind: {}, startup: neverReady }))).toEqual(['NOT_LISTENING']);
    const crashed = diagnoseBatchPredict(observation({ stats: { successful: 0, failed: 0, incomplete: 0 }, failuresByKind: {}, startup: neverReady, logSignals: [crash], logTail: ['[stderr] RuntimeError: no model'] }));
    expect(crashed.map((d) => d.code)).toEqual(['SERVER_WORKER_CRASHED']);
    expect(crashed[0]!.evidence).toContain('[stderr] RuntimeError: no model');
  });
});

describe('summary and matchers use the failed-instance record', () => {
  const job = {
    state: 'JOB_STATE_SUCCEEDED',
    displayName: 'j',
    completionStats: { successfulCount: '0', failedCount: '2', incompleteCount: '0' },
    dedicatedResources: { startingReplicaCount: 1 },
    manualBatchTuningParameters: { batchSize: 64 },
    outputInfo: { outputDirectory: '/o' },
    emulator: {
      contract: 'prediction-server',
      durationMs: 10,
      diagnoses: [{ code: 'ALL_INSTANCES_FAILED', severity: 'warning', message: 'All 2 instance(s) failed.' }],
      warnings: [],
      limits: { machineType: 'n1-standard-4', cpus: 2, memoryBytes: 2 ** 30 },
      routes: { health: '/h', predict: '/p', port: 8080 },
      recordFile: '/o/.vbe/job.json',
      phases: [],
      failedInstances: { file: '/o/.vbe/failed-instances.jsonl', count: 2, examples: [{ instance: { a: 1 }, error: { code: 13, message: 'boom' }, attempts: 4 }] },
    },
  } as unknown as BatchPredictionJobResource;
  it('the summary leads with ALL_INSTANCES_FAILED, before the state line, and lists the first failed instances', () => {
    const lines = formatBatchSummary(job).split('\n');
    expect(lines[1]).toBe('! ALL_INSTANCES_FAILED: All 2 instance(s) failed.');
    expect(lines[2]).toMatch(/^JOB_STATE_SUCCEEDED/);
    expect(lines).toContain('      {"a":1} -> error 13: boom (4 attempt(s))');
  });
  it('toHaveFailedInstances counts them and shows them when it fails', () => {
    expect(vbeMatchers.toHaveFailedInstances(job, 2, 'boom').pass).toBe(true);
    const miss = vbeMatchers.toHavePredictions(job, 2);
    expect(miss.pass).toBe(false);
    expect(miss.message()).toContain('{"a":1} -> error 13: boom (4 attempt(s))');
  });
});

describe('doctor: the contract guess reads the entrypoint', () => {
  const image: ImageDetails = { id: 'x', architecture: 'amd64', os: 'linux', user: '', entrypoint: null, cmd: ['/start.sh'], workingDir: '/app', env: ['PATH=/usr/local/bin:/usr/bin'], exposedPorts: [], sizeBytes: 1 };
  it('names the files to read: absolute, relative to WORKDIR, a bare program on PATH, paths in a shell string', () => {
    expect(entrypointFiles(image)).toEqual(['/start.sh']);
    expect(entrypointFiles({ ...image, cmd: ['python3', 'main.py'] })).toEqual(['/usr/local/bin/python3', '/usr/bin/python3', '/app/main.py']);
    expect(entrypointFiles({ ...image, entrypoint: ['/bin/sh', '-c'], cmd: ['exec /opt/run.sh --x'] })).toEqual(['/bin/sh', '/opt/run.sh']);
  });
  it('a start.sh that execs gunicorn is a server; a script reading AIP_BATCH_INPUT_URIS is a file job; an unreadable program is unsure', () => {
    expect(guessContract(image, new Map([['/start.sh', '#!/bin/sh\nexec gunicorn -k uvicorn.workers.UvicornWorker app:app\n']]))).toEqual({ contract: 'server', sure: true, reasons: ['/start.sh runs gunicorn'] });
    expect(guessContract({ ...image, cmd: ['Rscript', '/app/serve.R'] }, new Map([['/app/serve.R', 'pr <- plumber::plumb("api.R")\n']])).contract).toBe('server');
    expect(guessContract({ ...image, env: ['GUNICORN_CMD_ARGS=--workers 2'] }, new Map()).reasons).toContain('its environment sets GUNICORN_CMD_ARGS');
    expect(guessContract({ ...image, cmd: ['python3', '/app/job.py'] }, new Map([['/app/job.py', 'import os\nfor p in os.environ["AIP_BATCH_INPUT_URIS"].split(","): pass\n']]))).toEqual({ contract: 'files', sure: true, reasons: ['it reads AIP_BATCH_INPUT_URIS'] });
    expect(guessContract({ ...image, cmd: ['/usr/local/bin/model'] }, new Map())).toMatchObject({ contract: 'files', sure: false });
  });
});
