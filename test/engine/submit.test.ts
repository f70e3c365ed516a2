import { generateKeyPairSync } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeGcs, type FakeGcs } from '../helpers/fakeGcsServer.js';
import { startFakeVertex, type FakeVertex } from '../helpers/fakeVertexServer.js';
import { buildContext, PYTHON_BASE, ROOT, runVbe, tempDir } from '../helpers/engine.js';

const IMAGE = 'vbe-test/i17-model-server:1';
const RESOURCES = path.join(ROOT, 'test/fixtures/resources');
const BATCH_JOB_NAME = 'projects/123456789012/locations/us-central1/batchPredictionJobs/4417330826157752320';
const CLOUD_DIR = 'vbe-replay-data/scoring/out/prediction-scorer-2026_11_28T02_00_13_512Z';

/**
 * `vbe replay <resource name>` and `vbe submit` against stand-ins on 127.0.0.1: the Vertex AI REST
 * API (the real @google-cloud/aiplatform client talks to it) and Cloud Storage
 * (@google-cloud/storage, via STORAGE_EMULATOR_HOST). Credentials are a service account key made
 * here: the client signs its own JWT with it (no token server is contacted), and the metadata
 * server is never probed (METADATA_SERVER_DETECTION=none), so nothing leaves loopback.
 */
describe('vbe replay <name> and vbe submit, against a Vertex AI API stand-in', () => {
  let work: string;
  let vertex: FakeVertex;
  let gcs: FakeGcs;
  let env: NodeJS.ProcessEnv;
  const emptyHome = () => tempDir('vbe-nohome-');

  beforeAll(async () => {
    await buildContext(IMAGE, path.join(ROOT, 'test/fixtures/model-server'), { BASE_IMAGE: PYTHON_BASE });
    work = await tempDir('vbe-submit-');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyFile = path.join(work, 'sa.json');
    await writeFile(keyFile, JSON.stringify({ type: 'service_account', project_id: 'my-project', private_key_id: 'k1', private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }), client_email: 'vbe-test@my-project.iam.gserviceaccount.com', client_id: '1' }));
    vertex = await startFakeVertex();
    gcs = await startFakeGcs();
    env = { GOOGLE_APPLICATION_CREDENTIALS: keyFile, METADATA_SERVER_DETECTION: 'none', VBE_VERTEX_API_ENDPOINT: vertex.endpoint, STORAGE_EMULATOR_HOST: gcs.endpoint, CLOUDSDK_CONFIG: path.join(work, 'no-gcloud') };
  });
  afterAll(async () => {
    await vertex?.close();
    await gcs?.close();
  });
  beforeEach(() => {
    vertex.requests.length = 0;
    vertex.failWith = undefined;
  });

  it('replays a failed BatchPredictionJob by resource name: the job and its Model fetched with ADC, --failed-only from the local files', async () => {
    const job = JSON.parse(await readFile(path.join(RESOURCES, 'batch-prediction-job-failed.json'), 'utf8'));
    const model = JSON.parse(await readFile(path.join(RESOURCES, 'model.json'), 'utf8'));
    vertex.resources.set(job.name, job);
    vertex.resources.set(model.name, model);
    const gcsRoot = path.join(work, 'gcs');
    const day = path.join(gcsRoot, 'vbe-replay-data/scoring/2026-11-28');
    await mkdir(day, { recursive: true });
    await mkdir(path.join(gcsRoot, 'vbe-replay-data/models/scorer/3'), { recursive: true });
    await writeFile(path.join(gcsRoot, 'vbe-replay-data/models/scorer/3/model.bin'), 'weights');
    const lines = (ids: number[]) => ids.map((id) => JSON.stringify({ id, amount: id, ...(id === 5 ? { fail: true } : {}) })).join('\n') + '\n';
    await writeFile(path.join(day, 'instances-0.jsonl'), lines([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]));
    await mkdir(path.join(gcsRoot, CLOUD_DIR), { recursive: true });
    await writeFile(path.join(gcsRoot, CLOUD_DIR, 'prediction.results-00000-of-00001'), [0, 1, 2, 3, 8, 9, 10, 11].map((key) => JSON.stringify({ key, prediction: 1 })).join('\n') + '\n');

    const r = await runVbe(['replay', BATCH_JOB_NAME, '--image', IMAGE, '--pull', 'never', '--gcs-root', gcsRoot, '--failed-only', '--output', path.join(work, 'by-name'), '--json', '--no-progress'], env);
    expect(r.stderr).toContain('4 of 12 input instance(s) have no line');
    const local = JSON.parse(r.stdout);
    expect(local.emulator.userEnvNames).toEqual(['FAULT', 'SCORER_MODEL']); // from the fetched Model's containerSpec
    expect(local.emulator.replay).toMatchObject({ verdict: 'reproduced', source: BATCH_JOB_NAME, cloud: { state: 'JOB_STATE_FAILED', completionStats: { failedCount: '4' } } });
    expect(vertex.requests.map((q) => `${q.method} ${q.path}`)).toEqual([`GET /v1/${job.name}`, `GET /v1/${model.name}`]);
    // A self-signed JWT from the service account key, as Application Default Credentials give.
    const jwt = JSON.parse(Buffer.from(vertex.requests[0]!.authorization!.split(' ')[1]!.split('.')[1]!, 'base64url').toString());
    expect(jwt.iss).toBe('vbe-test@my-project.iam.gserviceaccount.com');
    expect(r.code).toBe(0);
  });

  it('replay --gcs real: inputs, model and the cloud results downloaded from Cloud Storage, outputs kept local', async () => {
    const lines = (ids: number[]) => ids.map((id) => JSON.stringify({ id, amount: id, ...(id === 5 ? { fail: true } : {}) })).join('\n') + '\n';
    gcs.put('vbe-replay-data', 'scoring/2026-11-28/instances-0.jsonl', lines([0, 1, 2, 3, 4, 5]));
    gcs.put('vbe-replay-data', 'scoring/2026-11-28/instances-1.jsonl', lines([6, 7, 8, 9, 10, 11]));
    gcs.put('vbe-replay-data', 'models/scorer/3/model.bin', 'weights');
    gcs.put('vbe-replay-data', `${CLOUD_DIR.replace('vbe-replay-data/', '')}/prediction.results-00000-of-00001`, [0, 1, 2, 3, 8, 9, 10, 11].map((key) => JSON.stringify({ key, prediction: 1 })).join('\n') + '\n');
    gcs.put('vbe-replay-data', `${CLOUD_DIR.replace('vbe-replay-data/', '')}/prediction.errors_stats-00000-of-00001`, "('Post request fails. Cannot get predictions. Error: Non-OK result 500', 4)\n");
    const before = gcs.names('vbe-replay-data');
    const out = path.join(work, 'gcs-real');
    const r = await runVbe(['replay', path.join(RESOURCES, 'batch-prediction-job-failed.json'), '--model', path.join(RESOURCES, 'model.json'), '--image', IMAGE, '--pull', 'never', '--gcs', 'real', '--failed-only', '--output', out, '--json', '--no-progress'], env);
    const job = JSON.parse(r.stdout);
    expect(job.emulator.replay).toMatchObject({ verdict: 'reproduced', failedOnly: { inputInstances: 12, withResults: 8, failed: 4 }, cloud: { errorGroups: [{ count: 4 }] } });
    expect(job.completionStats).toEqual({ successfulCount: '0', failedCount: '4', incompleteCount: '0' });
    expect(job.outputInfo.outputDirectory.startsWith(out)).toBe(true);
    expect(gcs.names('vbe-replay-data')).toEqual(before); // nothing uploaded, never into the cloud job's directory
    expect(vertex.requests).toEqual([]); // a job file and a model file: no API call
    expect(r.code).toBe(0);
  });

  it('submit batch-predict --wait: the body --dry-run printed is what the API gets; polls to the end, downloads the outputs, compares with a local job.json', async () => {
    gcs.put('vbe-sub', 'in/a.jsonl', '{"x": 1}\n{"x": 2}\n');
    const flags = ['submit', 'batch-predict', '--image', 'us-docker.pkg.dev/p/r/scorer:2', '--input', 'gs://vbe-sub/in/*.jsonl', '--instances-format', 'jsonl', '--output', 'gs://vbe-sub/out', '--project', 'my-project', '--region', 'us-central1', '--batch-size', '16', '--model-parameters', '{"threshold":0.5}', '--key-field', 'id', '--env', 'MODE=fast'];
    const dry = await runVbe([...flags, '--dry-run'], env);
    expect(dry.code).toBe(0);
    expect(vertex.requests).toEqual([]);
    const body = JSON.parse(dry.stdout);
    expect(body).toMatchObject({
      displayName: 'vbe-scorer-2',
      unmanagedContainerModel: { containerSpec: { imageUri: 'us-docker.pkg.dev/p/r/scorer:2', env: [{ name: 'MODE', value: 'fast' }], ports: [{ containerPort: 8080 }] } },
      inputConfig: { instancesFormat: 'jsonl', gcsSource: { uris: ['gs://vbe-sub/in/*.jsonl'] } },
      instanceConfig: { keyField: 'id' },
      modelParameters: { threshold: 0.5 },
      outputConfig: { predictionsFormat: 'jsonl', gcsDestination: { outputUriPrefix: 'gs://vbe-sub/out' } },
      dedicatedResources: { machineSpec: { machineType: 'n1-standard-4' }, startingReplicaCount: 1, maxReplicaCount: 1 },
      manualBatchTuningParameters: { batchSize: 16 },
      labels: { 'submitted-by': 'vbe' },
    });

    const outDir = 'out/prediction-vbe-scorer-2-2026_11_30T00_00_00_000Z';
    vertex.finish = () => {
      gcs.put('vbe-sub', `${outDir}/prediction.results-00000-of-00001`, '{"key": 1, "prediction": 0.9}\n');
      gcs.put('vbe-sub', `${outDir}/prediction.errors_stats-00000-of-00001`, "('Post request fails. Cannot get predictions. Error: Non-OK result 500', 1)\n");
      return { state: 'JOB_STATE_SUCCEEDED', outputInfo: { gcsOutputDirectory: `gs://vbe-sub/${outDir}` }, completionStats: { successfulCount: '1', failedCount: '1' } };
    };
    const localRecord = path.join(work, 'local-job.json');
    await writeFile(localRecord, JSON.stringify({ state: 'JOB_STATE_SUCCEEDED', completionStats: { successfulCount: '1', failedCount: '1', incompleteCount: '0' }, emulator: { failuresByKind: { http_500: { count: 1, example: 'HTTP 500' } } } }));
    const download = path.join(work, 'downloaded');
    const r = await runVbe([...flags, '--wait', '--poll-interval', '50ms', '--download-dir', download, '--compare', localRecord, '--json'], env);
    expect(r.stderr).toMatch(/› created projects\/my-project\/locations\/us-central1\/batchPredictionJobs\/\d+/);
    expect(r.stderr).toContain('› JOB_STATE_RUNNING');
    expect(r.stderr).toContain('› JOB_STATE_SUCCEEDED');
    const posted = vertex.requests.filter((q) => q.method === 'POST');
    expect(posted).toHaveLength(1);
    expect(posted[0]!.path).toBe('/v1/projects/my-project/locations/us-central1/batchPredictionJobs');
    expect(posted[0]!.body).toEqual(body);
    const base = path.join(download, path.basename(outDir));
    expect(await readFile(path.join(base, 'prediction.results-00000-of-00001'), 'utf8')).toBe('{"key": 1, "prediction": 0.9}\n');
    expect(await readFile(path.join(base, 'prediction.errors_stats-00000-of-00001'), 'utf8')).toContain('Non-OK result 500');
    expect(JSON.parse(await readFile(path.join(download, 'cloud-job.json'), 'utf8')).state).toBe('JOB_STATE_SUCCEEDED');
    expect(r.stderr).toMatch(/compare: reproduced\n  cloud: JOB_STATE_SUCCEEDED/);
    expect(r.stderr).toContain('1 x Post request fails. Cannot get predictions. Error: Non-OK result 500');
    expect(JSON.parse(r.stdout).completionStats).toEqual({ successfulCount: '1', failedCount: '1' });
    expect(r.code).toBe(0);
  });

  it('submit run: a CustomJob with workerpool0, the output as baseOutputDirectory, --timeout as scheduling.timeout', async () => {
    vertex.finish = () => ({ state: 'JOB_STATE_FAILED', error: { code: 3, message: 'The replica workerpool0-0 exited with a non-zero status of 1. Termination reason: Error.' } });
    const r = await runVbe(['submit', 'run', '--image', 'eu.gcr.io/p/job:1', '--input', 'gs://vbe-sub/in/a.jsonl', '--output', 'gs://vbe-sub/custom-out', '--machine-type', 'n1-highmem-4', '--args=--rows', '--args=10', '--timeout', '2h', '--project', 'my-project', '--region', 'europe-west4', '--wait', '--poll-interval', '50ms', '--download-dir', path.join(work, 'custom-download')], env);
    const posted = vertex.requests.find((q) => q.method === 'POST')!;
    expect(posted.path).toBe('/v1/projects/my-project/locations/europe-west4/customJobs');
    // The client serializes unset map fields as {} (webAccessUris): the same resource.
    expect(posted.body).toEqual({
      webAccessUris: {},
      displayName: 'vbe-job-1',
      jobSpec: {
        workerPoolSpecs: [{ machineSpec: { machineType: 'n1-highmem-4' }, replicaCount: '1', containerSpec: { imageUri: 'eu.gcr.io/p/job:1', args: ['--rows', '10'] } }],
        baseOutputDirectory: { outputUriPrefix: 'gs://vbe-sub/custom-out' },
        scheduling: { timeout: '7200s' },
      },
      labels: { 'submitted-by': 'vbe' },
    });
    expect(r.stderr).toContain('Vertex sets neither AIP_BATCH_INPUT_URIS nor AIP_BATCH_OUTPUT_DIR for a CustomJob');
    expect(r.stderr).toContain('error 3: The replica workerpool0-0 exited with a non-zero status of 1.');
    expect(r.stderr).toContain('gs://vbe-sub/custom-out holds no files: nothing to download');
    expect(r.code).toBe(1); // the cloud job FAILED
  });

  it('a spec vbe refuses never reaches the API (exit 2)', async () => {
    const spec = path.join(work, 'bad.json');
    await writeFile(spec, JSON.stringify({ displayName: 'x', containerSpec: { imageUri: 'x', env: [{ name: 'AIP_MODE', value: 'y' }] }, inputConfig: { gcsSource: { uris: ['gs://vbe-sub/in/a.jsonl'] } }, outputConfig: { gcsDestination: { outputUriPrefix: 'gs://vbe-sub/o' } } }));
    const reserved = await runVbe(['submit', 'run', '--spec', spec, '--project', 'my-project', '--region', 'us-central1'], env);
    expect(reserved.code).toBe(2);
    expect(reserved.stderr).toContain('RESERVED_ENV');
    await writeFile(spec, JSON.stringify({ displayName: 'x', containerSpec: { imageUri: 'x', comand: ['sh'] } }));
    const typo = await runVbe(['submit', 'run', '--spec', spec, '--project', 'my-project', '--region', 'us-central1'], env);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('containerSpec.comand: unknown field');
    const local = await runVbe(['submit', 'batch-predict', '--image', 'x', '--input', 'data.jsonl', '--instances-format', 'jsonl', '--output', 'gs://vbe-sub/o', '--project', 'my-project', '--region', 'us-central1'], env);
    expect(local.code).toBe(2);
    expect(local.stderr).toContain('LOCAL_PATH_NOT_SUBMITTABLE: --input[0]: "data.jsonl" is a local path');
    expect(local.stderr).toContain('--stage-to gs://BUCKET/PREFIX');
    expect(vertex.requests).toEqual([]);
  });

  it('--stage-to uploads a local input to Cloud Storage and submits its gs:// URI', async () => {
    const input = path.join(work, 'rows.jsonl');
    await writeFile(input, '{"x": 3}\n');
    const r = await runVbe(['submit', 'batch-predict', '--image', 'x:1', '--input', input, '--instances-format', 'jsonl', '--output', 'gs://vbe-sub/staged-out', '--stage-to', 'gs://vbe-sub/staging', '--project', 'my-project', '--region', 'us-central1', '--json'], env);
    expect(r.code).toBe(0);
    expect(gcs.get('vbe-sub', 'staging/inputs/rows.jsonl')?.toString()).toBe('{"x": 3}\n');
    expect(vertex.requests.find((q) => q.method === 'POST')!.body).toMatchObject({ inputConfig: { gcsSource: { uris: ['gs://vbe-sub/staging/inputs/rows.jsonl'] } } });
    expect(JSON.parse(r.stdout).state).toBe('JOB_STATE_PENDING');
  });

  it('without credentials: exit 2 with the `gcloud auth application-default login` fix, and nothing sent', async () => {
    const home = await emptyHome();
    const noCreds = { ...env, GOOGLE_APPLICATION_CREDENTIALS: '', HOME: home, CLOUDSDK_CONFIG: path.join(home, 'gcloud') };
    const r = await runVbe(['submit', 'run', '--image', 'x', '--input', 'gs://vbe-sub/in/a.jsonl', '--output', 'gs://vbe-sub/o', '--project', 'my-project', '--region', 'us-central1'], noCreds);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('VERTEX_CREDENTIALS_MISSING');
    expect(r.stderr).toContain('fix: Run `gcloud auth application-default login`');
    const replay = await runVbe(['replay', BATCH_JOB_NAME, '--output', path.join(work, 'no-creds')], noCreds);
    expect(replay.code).toBe(2);
    expect(replay.stderr).toContain('gcloud auth application-default login');
    expect(vertex.requests).toEqual([]);
  });

  it.each([
    [403, 2, 'VERTEX_ACCESS_DENIED', 'roles/aiplatform.user'],
    [404, 2, 'VERTEX_NOT_FOUND', 'Check the project, the region'],
    [503, 3, 'VERTEX_UNAVAILABLE', 'Try again later'],
  ])('the API answering %i: clear exit %i (%s)', async (status, exit, code, fix) => {
    vertex.failWith = status;
    const replay = await runVbe(['replay', BATCH_JOB_NAME, '--output', path.join(work, `api-${status}`)], env);
    expect(replay.code).toBe(exit);
    expect(replay.stderr).toContain(`vbe: error ${code}: getting ${BATCH_JOB_NAME}`);
    expect(replay.stderr).toContain(`HTTP ${status}`);
    expect(replay.stderr).toContain(fix);
    const submit = await runVbe(['submit', 'run', '--image', 'x', '--input', 'gs://vbe-sub/in/a.jsonl', '--output', 'gs://vbe-sub/o', '--project', 'my-project', '--region', 'us-central1'], env);
    expect(submit.code).toBe(exit);
    expect(submit.stderr).toContain(`vbe: error ${code}: creating a CustomJob in projects/my-project/locations/us-central1`);
    expect(submit.stderr).not.toMatch(/internal error|at .*\.js:\d+/);
  });
});
