import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchPredict, type BatchPredictOptions, encodeTfRecord, readPredictions } from '../../src/index.js';
import '../../src/vitest.js';
import { buildContext, docker, PYTHON_BASE, ROOT, runVbe, tempDir } from '../helpers/engine.js';

/** batch-predict writes and reads data as Vertex does (issue 15), on the real model-server fixture. */
const IMAGE = 'vbe-test/i15-model-server:1';

async function lines(file: string): Promise<Array<Record<string, any>>> {
  return (await readFile(file, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

describe('batch-predict outputs and inputs as Vertex has them', () => {
  let work: string;
  beforeAll(async () => {
    await buildContext(IMAGE, path.join(ROOT, 'test/fixtures/model-server'), { BASE_IMAGE: PYTHON_BASE });
    work = await tempDir('vbe-i15-');
  });
  afterAll(async () => {
    await docker('rmi', '-f', IMAGE).catch(() => undefined);
  });
  const run = (options: BatchPredictOptions) => batchPredict({ image: IMAGE, pull: 'never', instancesFormat: 'jsonl', ...options });
  const jsonl = async (name: string, rows: unknown[]) => {
    const file = path.join(work, name);
    await writeFile(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    return file;
  };
  const failed = async (job: { outputInfo: { outputDirectory: string } }) => {
    const out = [];
    for await (const line of readPredictions(job, { errors: true })) out.push(line);
    return out;
  };
  /** Python itself reads each errors_stats line back as a (str, int) tuple. */
  const pythonReads = async (text: string) =>
    JSON.parse(await docker('run', '--rm', '--network', 'none', PYTHON_BASE, 'python3', '-c', 'import ast, json, sys\nprint(json.dumps([list(ast.literal_eval(l)) for l in sys.argv[1].splitlines()]))', text));

  it('errors_stats: one Python tuple per distinct message with its count, the cloud wording (retry, elapsed); failed instances only in .vbe/failed-instances.jsonl', async () => {
    const input = await jsonl('some-fail.jsonl', [{ id: 1, fail: true }, { id: 2 }, { id: 3 }, { id: 4 }]);
    const job = await run({ inputs: [input], output: path.join(work, 'stats'), env: ['FAULT=fail-some'], batchSize: 2, retries: 1 });
    expect(job.state).toBe('JOB_STATE_SUCCEEDED');
    expect(job.completionStats).toEqual({ successfulCount: '2', failedCount: '2', incompleteCount: '0' });
    const dir = job.outputInfo.outputDirectory;
    const stats = await readFile(path.join(dir, 'prediction.errors_stats-00000-of-00001'), 'utf8');
    expect(stats).toMatch(/^\('Post request fails\. Cannot get predictions\. Error: Exceeded retries: Non-OK result 500 \(\{"error": "instance asked to fail"\}\) from server, retry=1, elapsed=\d+\.\d\ds\.', 2\)\n$/);
    const [[message, count]] = await pythonReads(stats);
    expect(count).toBe(2);
    expect(message).toMatch(/^Post request fails\. .*retry=1, elapsed=\d+\.\d\ds\.$/);
    expect((await lines(path.join(dir, 'prediction.results-00000-of-00001'))).map((l) => l.instance.id).sort()).toEqual([3, 4]);
    const record = await failed(job);
    expect(record.map((l) => l.instance)).toEqual([{ id: 1, fail: true }, { id: 2 }]);
    expect(record[0]).toMatchObject({ error: { code: 13, message }, attempts: 2 });
    expect(job.emulator.failedInstances).toMatchObject({ count: 2, file: path.join(dir, '.vbe/failed-instances.jsonl') });
    expect(job).toHaveFailedInstances(2, 'Non-OK result 500');
    expect(job).toHavePredictions(2);
  });

  it('the same message from many batches is one line with the total; a quote in a message is escaped as Python does', async () => {
    const input = await jsonl('ten.jsonl', Array.from({ length: 10 }, (_, i) => ({ id: i })));
    const job = await run({ inputs: [input], output: path.join(work, 'aggregated'), env: ['FAULT=wrong-count'], batchSize: 5, retries: 0 });
    const stats = await readFile(path.join(job.outputInfo.outputDirectory, 'prediction.errors_stats-00000-of-00001'), 'utf8');
    expect(stats).toBe("('The model server returned 4 predictions for 5 instances.', 10)\n");
    const bad = path.join(work, 'bad.jsonl');
    await writeFile(bad, "{'single': 1}\n");
    const quoted = await run({ inputs: [bad], output: path.join(work, 'quoted') });
    const line = (await readFile(path.join(quoted.outputInfo.outputDirectory, 'prediction.errors_stats-00000-of-00001'), 'utf8')).trim();
    const [[message, n]] = await pythonReads(line);
    expect(n).toBe(1);
    expect(message).toBe((await failed(quoted))[0]!.error!.message);
  });

  it('every instance failed: the job still SUCCEEDS, but ALL_INSTANCES_FAILED leads the summary and junit lists the failed instances; --max-failed-ratio 0 fails it', async () => {
    const input = await jsonl('all-fail.jsonl', Array.from({ length: 10 }, (_, i) => ({ id: i })));
    const report = path.join(work, 'all-fail.xml');
    const cli = await runVbe(['batch-predict', '--image', IMAGE, '--pull', 'never', '--input', input, '--instances-format', 'jsonl', '--output', path.join(work, 'all-fail'), '--env', 'FAULT=wrong-count', '--batch-size', '5', '--retries', '0', '--report', `junit=${report}`, '--no-progress']);
    expect(cli.code, cli.stderr).toBe(0);
    const summary = cli.stderr.slice(cli.stderr.lastIndexOf('\n! ALL_INSTANCES_FAILED'));
    expect(summary).toMatch(/^\n! ALL_INSTANCES_FAILED: All 10 instance\(s\) failed; not one prediction was written\. Most common \(10 instance\(s\), count-mismatch\): The model server returned 4 predictions for 5 instances\.\nJOB_STATE_SUCCEEDED/);
    expect(summary).toContain('failed:    10 instance(s), each in ');
    expect(summary).toMatch(/\n {6}\{"id":\d\} -> error 13: The model server returned 4 predictions for 5 instances\. \(1 attempt\(s\)\)\n/); // two requests in flight: either batch first
    const xml = await readFile(report, 'utf8');
    expect(xml).toContain('failed instances (10, all in ');
    expect(xml).toMatch(/\{&quot;id&quot;:\d\} -&gt; error 13/);
    const strict = await runVbe(['batch-predict', '--image', IMAGE, '--pull', 'never', '--input', input, '--instances-format', 'jsonl', '--output', path.join(work, 'all-fail-strict'), '--env', 'FAULT=wrong-count', '--batch-size', '5', '--retries', '0', '--max-failed-ratio', '0', '--no-progress']);
    expect(strict.code).toBe(1);
  });

  it('--output-naming predictions keeps per-instance errors_0001.jsonl (the proto names it so)', async () => {
    const input = await jsonl('naming.jsonl', [{ id: 1, fail: true }, { id: 2 }]);
    const job = await run({ inputs: [input], output: path.join(work, 'naming'), env: ['FAULT=fail-some'], batchSize: 1, retries: 0, outputNaming: 'predictions' });
    const errs = await lines(path.join(job.outputInfo.outputDirectory, 'errors_0001.jsonl'));
    expect(errs).toEqual([{ instance: { id: 1, fail: true }, error: { code: 13, message: expect.stringMatching(/^Post request fails\..*retry=0, elapsed=/) } }]);
    expect((await failed(job))[0]).toMatchObject({ instance: { id: 1, fail: true }, attempts: 1 });
  });

  it('excludedFields: not sent to the server, but the output instance is the whole original record', async () => {
    const input = await jsonl('excluded.jsonl', [{ id: 1, secret: 's', x: 2 }]);
    const job = await run({ inputs: [input], output: path.join(work, 'excluded'), excludedFields: ['secret'] });
    const [line] = await lines(path.join(job.outputInfo.outputDirectory, 'prediction.results-00000-of-00001'));
    expect(line!.instance).toEqual({ id: 1, secret: 's', x: 2 });
    expect(line!.prediction.instance).toEqual({ id: 1, x: 2 }); // what the server received
  });

  it('incompleteCount is -1 when the job failed before reading its input; the directory is named for the model display name when given', async () => {
    const input = await jsonl('one.jsonl', [{ id: 1 }]);
    const job = await run({ inputs: [input], output: path.join(work, 'unknown'), env: ['FAULT=exit-on-start'], displayName: 'the-job', modelDisplayName: 'the model' });
    expect(job.state).toBe('JOB_STATE_FAILED');
    expect(job.completionStats).toEqual({ successfulCount: '0', failedCount: '0', incompleteCount: '-1' });
    expect(path.basename(job.outputInfo.outputDirectory)).toMatch(/^prediction-the_model-\d{4}_/);
    expect(await failed(job)).toEqual([]);
  });

  it('CSV as Vertex reads it: an unquoted string or a cell with a newline is a failed instance naming the row and cell', async () => {
    const csv = path.join(work, 'cells.csv');
    await writeFile(csv, 'name,age\n"alice",30\nbob,41\n"multi\nline",5\n"carol",7\n');
    const job = await run({ instancesFormat: 'csv', inputs: [csv], output: path.join(work, 'cells') });
    expect(job.completionStats).toEqual({ successfulCount: '2', failedCount: '2', incompleteCount: '0' });
    expect((await lines(path.join(job.outputInfo.outputDirectory, 'prediction.results-00000-of-00001'))).map((l) => l.instance)).toEqual([['alice', 30], ['carol', 7]]);
    const messages = (await failed(job)).map((l) => l.error!.message);
    expect(messages[0]).toBe('CSV row at line 3, column 1 ("name"): the unquoted cell "bob" is not a number; Vertex reads unquoted CSV cells as floating point numbers. Enclose strings in double quotation marks.');
    expect(messages[1]).toMatch(/^CSV row at line 5, column 1 \("name"\): the cell contains a newline/);
  });

  it('partitioning: a CSV file goes whole to one replica (the other sits idle, with a warning); tf-record is split by file', async () => {
    const csv = path.join(work, 'whole.csv');
    await writeFile(csv, 'v\n' + Array.from({ length: 40 }, (_, i) => String(i)).join('\n') + '\n');
    const job = await run({ instancesFormat: 'csv', inputs: [csv], output: path.join(work, 'csv-split'), replicaCount: 2, batchSize: 3 });
    expect(job.completionStats.successfulCount).toBe('40');
    const dir = job.outputInfo.outputDirectory;
    expect(await lines(path.join(dir, 'prediction.results-00000-of-00002'))).toHaveLength(40);
    expect(await lines(path.join(dir, 'prediction.results-00001-of-00002'))).toHaveLength(0);
    expect(job.emulator.warnings.join('\n')).toContain('1 csv file(s) (whole.csv) for 2 replicas: Vertex does not split a CSV file: each file goes whole to one replica, so 1 replica(s) (replica-1) will sit idle.');

    const tf = await mkdir(path.join(work, 'tf'), { recursive: true }).then(() => path.join(work, 'tf'));
    for (const f of ['a', 'b', 'c']) await writeFile(path.join(tf, `${f}.tfrecord`), Buffer.concat([1, 2].map((n) => encodeTfRecord(Buffer.from(`${f}${n}`)))));
    const split = await run({ instancesFormat: 'tf-record', inputs: [tf], output: path.join(work, 'tf-split'), replicaCount: 2, batchSize: 1 });
    const decode = async (name: string) => (await lines(path.join(split.outputInfo.outputDirectory, name))).map((l) => Buffer.from(l.instance.b64, 'base64').toString()).sort();
    expect(await decode('prediction.results-00000-of-00002')).toEqual(['a1', 'a2', 'c1', 'c2']);
    expect(await decode('prediction.results-00001-of-00002')).toEqual(['b1', 'b2']);
    expect(split.emulator.warnings.join('\n')).not.toContain('idle');
  });

  it('spec: maxReplicaCount alone runs that many replicas (warned); bigqueryDestination and predictionsFormat csv exit 2; explanations warn', async () => {
    const dir = path.join(work, 'spec');
    await mkdir(path.join(dir, 'gcs/bkt/in'), { recursive: true });
    await writeFile(path.join(dir, 'gcs/bkt/in/a.jsonl'), '{"v": 1}\n{"v": 2}\n{"v": 3}\n');
    const body = {
      displayName: 'spec-job',
      unmanagedContainerModel: { containerSpec: { imageUri: IMAGE } },
      inputConfig: { instancesFormat: 'jsonl', gcsSource: { uris: ['gs://bkt/in/a.jsonl'] } },
      outputConfig: { predictionsFormat: 'jsonl', gcsDestination: { outputUriPrefix: 'gs://bkt/out' } },
      dedicatedResources: { machineSpec: { machineType: 'n1-standard-2' }, maxReplicaCount: 2 },
      generateExplanation: true,
    };
    const write = (name: string, value: unknown) => writeFile(path.join(dir, name), JSON.stringify(value));
    await write('job.json', body);
    const ok = await runVbe(['batch-predict', '--spec', 'job.json', '--gcs-root', 'gcs', '--pull', 'never', '--json', '--no-progress'], {}, dir);
    expect(ok.code, ok.stderr).toBe(0);
    const job = JSON.parse(ok.stdout);
    expect(job.emulator.logs).toHaveLength(2);
    expect(job.dedicatedResources.startingReplicaCount).toBe(2);
    expect(job.emulator.warnings.join('\n')).toContain('maxReplicaCount 2 without startingReplicaCount');
    expect(job.emulator.warnings.join('\n')).toContain('explanations are not emulated');

    await write('bq.json', { ...body, outputConfig: { predictionsFormat: 'bigquery', bigqueryDestination: { outputUri: 'bq://project.dataset' } } });
    const bq = await runVbe(['batch-predict', '--spec', 'bq.json', '--gcs-root', 'gcs', '--pull', 'never'], {}, dir);
    expect(bq.code).toBe(2);
    expect(bq.stderr).toContain('outputConfig.bigqueryDestination: BigQuery output is not available locally');
    expect(bq.stderr).not.toContain('MISSING_OUTPUT');
    await write('csv.json', { ...body, outputConfig: { ...body.outputConfig, predictionsFormat: 'csv' } });
    const csv = await runVbe(['batch-predict', '--spec', 'csv.json', '--gcs-root', 'gcs', '--pull', 'never'], {}, dir);
    expect(csv.code).toBe(2);
    expect(csv.stderr).toContain('outputConfig.predictionsFormat: "csv" is not emulated');
    expect(await readdir(path.join(dir, 'gcs/bkt/out'))).toHaveLength(1); // the refused specs created nothing
  });
});
