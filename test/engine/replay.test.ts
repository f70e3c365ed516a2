import { readFile, readdir, mkdir, writeFile, copyFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildContext, BUSYBOX, labelled, PYTHON_BASE, ROOT, runVbe, tempDir } from '../helpers/engine.js';

const IMAGE = 'vbe-test/i17-model-server:1';
const RESOURCES = path.join(ROOT, 'test/fixtures/resources');
const BATCH_JOB = path.join(RESOURCES, 'batch-prediction-job-failed.json');
const MODEL = path.join(RESOURCES, 'model.json');
const CUSTOM_JOB = path.join(RESOURCES, 'custom-job-failed.json');
const CLOUD_DIR = 'vbe-replay-data/scoring/out/prediction-scorer-2026_11_28T02_00_13_512Z';

const instance = (id: number) => ({ id, amount: 10 * id + 0.5, ...(id === 5 ? { fail: true } : {}) });
const jsonLines = (values: unknown[]) => values.map((v) => JSON.stringify(v)).join('\n') + '\n';

/**
 * What the cloud job of the fixture left in Cloud Storage: its 12 input instances in two files,
 * a model directory, and an output directory whose results file lacks the batch that failed
 * (ids 4-7: id 5 makes the server answer 500) and whose errors_stats file counts it.
 */
async function cloudStorageOfTheFailedJob(gcsRoot: string): Promise<void> {
  const day = path.join(gcsRoot, 'vbe-replay-data/scoring/2026-11-28');
  await mkdir(day, { recursive: true });
  await writeFile(path.join(day, 'instances-0.jsonl'), jsonLines([0, 1, 2, 3, 4, 5].map(instance)));
  await writeFile(path.join(day, 'instances-1.jsonl'), jsonLines([6, 7, 8, 9, 10, 11].map(instance)));
  await mkdir(path.join(gcsRoot, 'vbe-replay-data/models/scorer/3'), { recursive: true });
  await writeFile(path.join(gcsRoot, 'vbe-replay-data/models/scorer/3/model.bin'), 'weights');
  const out = path.join(gcsRoot, CLOUD_DIR);
  await mkdir(out, { recursive: true });
  // Cloud result lines are in completion order, with the key (keyField "id") and no instance.
  const done = [8, 0, 9, 1, 10, 2, 11, 3].map((id) => ({ key: id, prediction: { score: id / 12 } }));
  await writeFile(path.join(out, 'prediction.results-00000-of-00001'), jsonLines(done));
  await writeFile(
    path.join(out, 'prediction.errors_stats-00000-of-00001'),
    "('Post request fails. Cannot get predictions. Error: Exceeded retries: Non-OK result 500 (Internal Server Error) from server, retry=3, elapsed=2.31s.', 4)\n",
  );
}

async function filesUnder(dir: string): Promise<string[]> {
  return ((await readdir(dir, { recursive: true, withFileTypes: true })) as Array<{ isFile(): boolean; parentPath: string; name: string }>)
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

describe('vbe replay: a Vertex job resource reproduced locally, offline from files', () => {
  let work: string;
  let gcsRoot: string;
  beforeAll(async () => {
    await buildContext(IMAGE, path.join(ROOT, 'test/fixtures/model-server'), { BASE_IMAGE: PYTHON_BASE });
    work = await tempDir('vbe-replay-');
    gcsRoot = path.join(work, 'gcs');
    await cloudStorageOfTheFailedJob(gcsRoot);
  });

  it('accepts the BatchPredictionJob resource exactly as the API returns it (every output-only field) as a batch-predict --spec', async () => {
    const out = path.join(work, 'spec-run');
    const r = await runVbe(['batch-predict', '--spec', BATCH_JOB, '--image', IMAGE, '--pull', 'never', '--gcs-root', gcsRoot, '--output', out, '--json', '--no-progress']);
    expect(r.stderr).not.toMatch(/SPEC_INVALID/);
    const job = JSON.parse(r.stdout);
    // The resource's own fields are used: its inputs (12 instances), batch size and keyField; the server has no FAULT here.
    expect(job.completionStats).toEqual({ successfulCount: '12', failedCount: '0', incompleteCount: '0' });
    expect(job.manualBatchTuningParameters.batchSize).toBe(4);
    expect(job.instanceConfig).toEqual({ keyField: 'id' });
    expect(r.code).toBe(0);
  });

  it('a typo beside the output-only fields is still an error naming its path (exit 2)', async () => {
    const resource = JSON.parse(await readFile(BATCH_JOB, 'utf8'));
    resource.outputConfig.gcsDestinaton = resource.outputConfig.gcsDestination;
    const file = path.join(work, 'typo.json');
    await writeFile(file, JSON.stringify(resource));
    const r = await runVbe(['replay', file, '--model', MODEL, '--gcs-root', gcsRoot, '--output', path.join(work, 'typo-out')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/SPEC_INVALID/);
    expect(r.stderr).toContain('outputConfig.gcsDestinaton: unknown field');
  });

  it('--failed-only reruns exactly the instances missing from the cloud results files, and says the failure is reproduced', async () => {
    const out = path.join(work, 'failed-only');
    const before = await filesUnder(path.join(gcsRoot, 'vbe-replay-data'));
    const r = await runVbe(['replay', BATCH_JOB, '--model', MODEL, '--image', IMAGE, '--pull', 'never', '--gcs-root', gcsRoot, '--output', out, '--failed-only', '--json', '--no-progress']);
    expect(r.stderr).toContain("--failed-only: 4 of 12 input instance(s) have no line in the cloud job's results files (1 file(s)); running those");
    // The rerun input is the missing lines as written, in input order.
    const rerun = (await readFile(path.join(out, '.vbe-replay/failed-instances.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(rerun).toEqual([4, 5, 6, 7].map(instance));
    const job = JSON.parse(r.stdout);
    expect(job.completionStats).toEqual({ successfulCount: '0', failedCount: '4', incompleteCount: '0' });
    // The model's containerSpec (env FAULT, $(AIP_STORAGE_URI)) and artifactUri were used.
    expect(job.unmanagedContainerModel.artifactUri).toBe('gs://vbe-replay-data/models/scorer/3');
    expect(job.emulator.userEnvNames).toEqual(['FAULT', 'SCORER_MODEL']);
    expect(job.emulator.replay).toMatchObject({
      verdict: 'reproduced',
      kind: 'batchPredictionJob',
      cloudJobName: 'projects/123456789012/locations/us-central1/batchPredictionJobs/4417330826157752320',
      failedOnly: { inputInstances: 12, withResults: 8, failed: 4 },
      cloud: {
        state: 'JOB_STATE_FAILED',
        error: { code: 13 },
        completionStats: { successfulCount: '8', failedCount: '4', incompleteCount: '0' },
        errorGroups: [{ count: 4, message: expect.stringContaining('Non-OK result 500') }],
      },
      local: { state: 'JOB_STATE_SUCCEEDED', completionStats: { failedCount: '4' } },
    });
    expect(job.emulator.replay.local.errorGroups[0].count).toBe(4);
    // Recorded in job.json too; the outputs are local, and nothing was written into the cloud job's directory.
    const record = JSON.parse(await readFile(job.emulator.recordFile, 'utf8'));
    expect(record.emulator.replay.verdict).toBe('reproduced');
    expect(job.outputInfo.outputDirectory.startsWith(out)).toBe(true);
    expect(await filesUnder(path.join(gcsRoot, 'vbe-replay-data'))).toEqual(before);
    expect(r.stderr).toMatch(/replay: reproduced\n  cloud: JOB_STATE_FAILED/);
    expect(r.code).toBe(0); // the local job SUCCEEDED (with failed instances), as batch-predict exits
    expect(await labelled(`dev.vbe.job-id=${job.emulator.jobId}`)).toEqual({ containers: [], volumes: [] });
  });

  it('replays the whole BatchPredictionJob to ./replay-<job id>/ by default', async () => {
    const cwd = await tempDir('vbe-replay-cwd-');
    const r = await runVbe(['replay', BATCH_JOB, '--model', MODEL, '--image', IMAGE, '--pull', 'never', '--gcs-root', gcsRoot, '--json', '--no-progress', '--report', 'html=replay.html', '--report', 'markdown=replay.md'], {}, cwd);
    const job = JSON.parse(r.stdout);
    // The local job's reports, as for run and batch-predict: self-contained HTML with its charts, and the Markdown summary.
    const html = await readFile(path.join(cwd, 'replay.html'), 'utf8');
    expect(html).toContain(job.state);
    expect(html).toContain('<svg');
    expect(html).not.toContain('<script');
    expect(await readFile(path.join(cwd, 'replay.md'), 'utf8')).toContain(job.state);
    expect(job.outputInfo.outputDirectory.startsWith(path.join(cwd, 'replay-4417330826157752320'))).toBe(true);
    // Named for the Model's display name ("scorer"), as the cloud job's own directory is, not the job's.
    expect(path.basename(job.outputInfo.outputDirectory)).toMatch(/^prediction-scorer-\d{4}_\d\d_\d\dT/);
    expect(job.completionStats).toEqual({ successfulCount: '8', failedCount: '4', incompleteCount: '0' });
    expect(job.emulator.replay.verdict).toBe('reproduced');
    expect(job.emulator.replay.differences).toContain('state: cloud JOB_STATE_FAILED, local JOB_STATE_SUCCEEDED');
  });

  it('replays a CustomJob resource through vbe run, with the cloud error beside the local one (exit 1)', async () => {
    await mkdir(path.join(gcsRoot, 'vbe-replay-data/custom'), { recursive: true });
    await writeFile(path.join(gcsRoot, 'vbe-replay-data/custom/data.txt'), 'rows\n');
    const out = path.join(work, 'custom');
    const r = await runVbe(['replay', CUSTOM_JOB, '--image', BUSYBOX, '--pull', 'never', '--gcs-root', gcsRoot, '--input', 'gs://vbe-replay-data/custom/data.txt', '--output', out, '--json', '--no-progress']);
    expect(r.stderr).toContain('config.json missing');
    const job = JSON.parse(r.stdout);
    expect(job.state).toBe('JOB_STATE_FAILED');
    expect(job.error.message).toMatch(/^The replica workerpool0-0 exited with a non-zero status of 2\./);
    expect(job.emulator.replay).toMatchObject({ verdict: 'reproduced', kind: 'customJob', cloud: { state: 'JOB_STATE_FAILED', error: { code: 3 } }, local: { state: 'JOB_STATE_FAILED', error: { code: 3 } } });
    expect(job.emulator.outputs.hostDirectory).toBe(out);
    expect(r.code).toBe(1);

    // With the file the job needs, the same replay succeeds: "not reproduced".
    await copyFile(path.join(gcsRoot, 'vbe-replay-data/custom/data.txt'), path.join(gcsRoot, 'vbe-replay-data/custom/config.json'));
    const fixed = await runVbe(['replay', CUSTOM_JOB, '--image', BUSYBOX, '--pull', 'never', '--gcs-root', gcsRoot, '--input', 'gs://vbe-replay-data/custom/data.txt', 'gs://vbe-replay-data/custom/config.json', '--output', path.join(work, 'custom-fixed'), '--json', '--no-progress']);
    const fixedJob = JSON.parse(fixed.stdout);
    expect(fixedJob.state).toBe('JOB_STATE_SUCCEEDED');
    expect(await readFile(path.join(work, 'custom-fixed', 'data.txt'), 'utf8')).toBe('rows\n');
    expect(fixedJob.emulator.replay.verdict).toBe('not reproduced');
    expect(fixed.stderr).toContain('replay: not reproduced');
    expect(fixed.code).toBe(0);
  });

  it('the CustomJob resource exactly as the API returns it runs unchanged as vbe run --spec: no inputs, Vertex\'s variables, its failure', async () => {
    const root = path.join(work, 'gcs-custom-spec');
    await mkdir(path.join(root, 'vbe-replay-data/custom'), { recursive: true });
    // No --output: the spec's baseOutputDirectory (gs://vbe-replay-data/custom/out) is the output, under the gcs root.
    const r = await runVbe(['run', '--spec', CUSTOM_JOB, '--image', BUSYBOX, '--pull', 'never', '--gcs-root', root, '--json', '--no-progress']);
    expect(r.stderr).toContain('config.json missing');
    const job = JSON.parse(r.stdout);
    // A CustomJob (jobSpec.workerPoolSpecs): no --input needed; baseOutputDirectory gives the training variables.
    expect(job.emulator.flavour).toBe('custom-job');
    expect(job.emulator.environment.AIP_MODEL_DIR).toBe('gs://vbe-replay-data/custom/out/model/');
    expect(job.emulator.environment.AIP_CHECKPOINT_DIR).toBe('gs://vbe-replay-data/custom/out/checkpoints/');
    expect(job.state).toBe('JOB_STATE_FAILED');
    expect(job.error.message).toMatch(/^The replica workerpool0-0 exited with a non-zero status of 2\. Termination reason: Error\./);
    expect(job.emulator.outputs.hostDirectory).toBe(path.join(root, 'vbe-replay-data/custom/out'));
    expect(r.code).toBe(1);
  });

  it('refuses --failed-only when the cloud results files are not there (exit 2, naming the directory)', async () => {
    const r = await runVbe(['replay', BATCH_JOB, '--model', MODEL, '--image', IMAGE, '--gcs-root', path.join(work, 'empty-gcs'), '--failed-only', '--output', path.join(work, 'no-results')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/NO_RESULTS_FILES: --failed-only: no prediction\.results-\* .* files in .*empty-gcs\/vbe-replay-data\/scoring\/out\/prediction-scorer-2026_11_28T02_00_13_512Z/);
  });
});
