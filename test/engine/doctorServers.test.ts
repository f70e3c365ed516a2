import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchPredict, runDoctor, type DoctorOptions, type DoctorReport } from '../../src/index.js';
import { buildContext, docker, PYTHON_BASE, PYTHON_WEB, ROOT, runVbe, tempDir } from '../helpers/engine.js';

/** doctor (and batch-predict) on servers built the way real-world samples build them (issue 15). */
const FASTAPI = 'vbe-test/i15-fastapi:1';
const FLASK = 'vbe-test/i15-flask:1';
const ZIP_JOB = 'vbe-test/i15-zip-job:1';
const ZIP_SERVER = 'vbe-test/i15-zip-server:1';

const check = (report: DoctorReport, id: string) => report.checks.find((c) => c.id === id);
const failed = (report: DoctorReport) => report.checks.filter((c) => c.status === 'fail').map((c) => c.id);

describe('vbe doctor on real-world servers', () => {
  let work: string;
  let sample: string;
  beforeAll(async () => {
    await buildContext(FASTAPI, path.join(ROOT, 'test/fixtures/fastapi-gunicorn'), { BASE_IMAGE: PYTHON_WEB });
    await buildContext(FLASK, path.join(ROOT, 'test/fixtures/flask-server'), { BASE_IMAGE: PYTHON_WEB });
    await buildContext(ZIP_JOB, path.join(ROOT, 'test/fixtures/zip-app'), { BASE_IMAGE: PYTHON_BASE, APP: 'job.py' });
    await buildContext(ZIP_SERVER, path.join(ROOT, 'test/fixtures/zip-app'), { BASE_IMAGE: PYTHON_BASE, APP: 'server.py' });
    work = await tempDir('vbe-i15-doctor-');
    sample = path.join(work, 'sample.jsonl');
    await writeFile(sample, '[1, 2]\n[3, 4]\n');
  });
  afterAll(async () => {
    await docker('rmi', '-f', FASTAPI, FLASK, ZIP_JOB, ZIP_SERVER).catch(() => undefined);
  });
  const doctor = (image: string, extra: Partial<DoctorOptions> = {}) => runDoctor({ image, pull: 'never', startupTimeout: '30s', ...extra });

  it('tiangolo pattern (CMD ["/start.sh"] execs gunicorn with uvicorn workers, no EXPOSE): a server, read from /start.sh; passes live; batch-predict answers', async () => {
    const report = await doctor(FASTAPI, { sample });
    expect(report.contract).toMatchObject({ guess: 'server', used: 'server', sure: true });
    expect(report.contract!.reasons.join()).toMatch(/^\/start\.sh runs (gunicorn|uvicorn)/);
    expect(failed(report)).toEqual([]);
    expect(check(report, 'predict-sample')).toMatchObject({ status: 'pass' });
    const job = await batchPredict({ image: FASTAPI, pull: 'never', inputs: [sample], instancesFormat: 'jsonl', output: path.join(work, 'fastapi') });
    expect(job.state).toBe('JOB_STATE_SUCCEEDED');
    const lines = (await readFile(path.join(job.outputInfo.outputDirectory, 'prediction.results-00000-of-00001'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toEqual([{ instance: [1, 2], prediction: { echo: [1, 2], model: null } }, { instance: [3, 4], prediction: { echo: [3, 4], model: null } }]);
  });

  it('Flask started as `python3 /srv/app.py`: a server, read from the script; passes live; batch-predict answers', async () => {
    const report = await doctor(FLASK, { sample });
    expect(report.contract).toMatchObject({ guess: 'server', used: 'server', sure: true, reasons: ['/srv/app.py runs Flask'] });
    expect(failed(report)).toEqual([]);
    const job = await batchPredict({ image: FLASK, pull: 'never', inputs: [sample], instancesFormat: 'jsonl', output: path.join(work, 'flask') });
    expect(job.completionStats).toEqual({ successfulCount: '2', failedCount: '0', incompleteCount: '0' });
  });

  it('--artifact-uri: a server that loads its model from AIP_STORAGE_URI fails without it and passes with it', async () => {
    const without = await doctor(FASTAPI, { env: ['NEEDS_MODEL=1'], sample });
    expect(check(without, 'server-starts')?.status).toBe('fail');
    expect((check(without, 'server-starts')?.evidence ?? []).join('\n')).toContain('AIP_STORAGE_URI is empty: no model to load');
    const model = path.join(work, 'model');
    await mkdir(model, { recursive: true });
    await writeFile(path.join(model, 'model.txt'), 'weights-v1\n');
    const cli = await runVbe(['doctor', '--image', FASTAPI, '--pull', 'never', '--env', 'NEEDS_MODEL=1', '--artifact-uri', model, '--sample', sample, '--json', '--no-progress']);
    expect(cli.code, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout).checks.find((c: { id: string }) => c.id === 'predict-sample').status).toBe('pass');
  });

  it('a reserved --env AIP_... is refused the same way with --static-only and live (exit 2)', async () => {
    const args = ['doctor', '--image', FLASK, '--pull', 'never', '--env', 'AIP_STORAGE_URI=/x'];
    const staticOnly = await runVbe([...args, '--static-only']);
    const live = await runVbe(args);
    expect(staticOnly.code).toBe(2);
    expect(live.code).toBe(2);
    expect(staticOnly.stderr).toContain('--env AIP_STORAGE_URI: "AIP_STORAGE_URI" starts with AIP_, which Vertex AI reserves');
    expect(live.stderr).toContain('--env AIP_STORAGE_URI: "AIP_STORAGE_URI" starts with AIP_, which Vertex AI reserves');
  });

  it('a worker that crashes while its parent stays up is SERVER_WORKER_CRASHED with the traceback, in doctor and batch-predict, not NOT_LISTENING', async () => {
    const env = ['FAULT=import-crash', 'SERVER=uvicorn-workers'];
    const report = await doctor(FASTAPI, { env, startupTimeout: '8s' });
    const starts = check(report, 'server-starts')!;
    expect(starts.status).toBe('fail');
    expect(starts.summary).toContain('its worker crashed');
    expect(starts.evidence!.join('\n')).toContain('RuntimeError: model weights could not be loaded (FAULT=import-crash)');
    expect(report.checks.map((c) => c.summary).join('\n')).not.toContain('Nothing in the container listens');
    const job = await batchPredict({ image: FASTAPI, pull: 'never', env, inputs: [sample], instancesFormat: 'jsonl', output: path.join(work, 'crash'), startupTimeout: '8s' });
    expect(job.state).toBe('JOB_STATE_FAILED');
    expect(job.emulator.diagnoses.map((d) => d.code)).toEqual(['SERVER_WORKER_CRASHED']);
    expect(job.emulator.diagnoses[0]!.evidence!.join('\n')).toContain('FAULT=import-crash');
  });

  it('an entrypoint it cannot read: unsure, so both contracts are checked live and the one that works counts', async () => {
    const server = await doctor(ZIP_SERVER);
    expect(server.contract).toMatchObject({ sure: false, used: 'server' });
    expect(check(server, 'contract')).toMatchObject({ status: 'warn', summary: expect.stringContaining('both were checked live; it works as a prediction server') });
    expect(check(server, 'health-route')?.status).toBe('pass');
    expect(server.ok).toBe(true);

    const job = await doctor(ZIP_JOB);
    expect(job.contract).toMatchObject({ sure: false, used: 'files' });
    expect(check(job, 'files-run')?.status).toBe('pass');
    expect(check(job, 'server:server-starts')).toMatchObject({ status: 'skip', summary: expect.stringMatching(/^\(as a prediction server\) /) });
    expect(job.ok).toBe(true);
  });
});
