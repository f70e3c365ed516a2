import { readdir, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGcs, type FakeGcs } from '../helpers/fakeGcsServer.js';
import { BUSYBOX, buildContext, PYTHON_BASE, ROOT, runVbe } from '../helpers/engine.js';

const SERVER_IMAGE = 'vbe-test/model-server:1';

/** `--gcs real`: the real client library against a Cloud Storage JSON API stand-in on 127.0.0.1. */
describe('--gcs real (Cloud Storage through @google-cloud/storage and STORAGE_EMULATOR_HOST)', () => {
  let gcs: FakeGcs;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    gcs = await startFakeGcs();
    env = { STORAGE_EMULATOR_HOST: gcs.endpoint };
    gcs.put('in-bucket', 'data/a.jsonl', '{"x":1}\n');
    gcs.put('in-bucket', 'data/b.jsonl', '{"x":2}\n{"x":3}\n');
    gcs.put('in-bucket', 'data/notes.txt', 'not an input\n');
    gcs.put('in-bucket', 'data/', ''); // a console-made "folder" placeholder
    gcs.put('in-bucket', 'model/weights.bin', Buffer.alloc(100_000, 7));
    gcs.put('in-bucket', 'model/config/meta.json', '{"v":1}');
    await buildContext(SERVER_IMAGE, path.join(ROOT, 'test/fixtures/model-server'), { BASE_IMAGE: PYTHON_BASE });
  }, 300_000);

  afterAll(async () => {
    await gcs.close();
  });

  const script = [
    'set -e',
    'echo "$AIP_BATCH_INPUT_URIS" > "$AIP_BATCH_OUTPUT_DIR/inputs.txt"',
    'cat $(echo "$AIP_BATCH_INPUT_URIS" | tr , " ") > "$AIP_BATCH_OUTPUT_DIR/all.jsonl"',
    'mkdir -p "$AIP_BATCH_OUTPUT_DIR/nested"',
    // AIP_MODEL_DIR is the gs:// URI, as on Vertex; the files are at its /gcs path.
    'echo "$AIP_MODEL_DIR" > "$AIP_BATCH_OUTPUT_DIR/nested/model-files.txt"',
    'find /gcs/in-bucket/model -type f | sort >> "$AIP_BATCH_OUTPUT_DIR/nested/model-files.txt"',
  ].join('\n');
  const runArgs = (output: string, input = 'gs://in-bucket/data/*.jsonl') => [
    'run', '--gcs', 'real', '--image', BUSYBOX, '--input', input, '--model-dir', 'gs://in-bucket/model', '--output', output,
    '--machine-type', 'n1-standard-2', '--json', '--command', 'sh', '--command', '-c', '--command', script,
  ];

  it('vbe run: downloads what a wildcard and a prefix name, the container reads it at /gcs, outputs are uploaded', async () => {
    const result = await runVbe(runArgs('gs://out-bucket/results/run1'), env);
    expect(result.code, result.stderr).toBe(0);
    const job = JSON.parse(result.stdout);
    expect(job.state).toBe('JOB_STATE_SUCCEEDED');
    expect(gcs.get('out-bucket', 'results/run1/inputs.txt')!.toString()).toBe('/gcs/in-bucket/data/a.jsonl,/gcs/in-bucket/data/b.jsonl\n');
    expect(gcs.get('out-bucket', 'results/run1/all.jsonl')!.toString()).toBe('{"x":1}\n{"x":2}\n{"x":3}\n');
    expect(gcs.get('out-bucket', 'results/run1/nested/model-files.txt')!.toString()).toBe('gs://in-bucket/model/\n/gcs/in-bucket/model/config/meta.json\n/gcs/in-bucket/model/weights.bin\n');
    // Our records stay local; only what the job wrote goes to Cloud Storage.
    expect(gcs.names('out-bucket')).toEqual(['results/run1/all.jsonl', 'results/run1/inputs.txt', 'results/run1/nested/model-files.txt']);
    expect(job.emulator.cloudStorage).toMatchObject({
      mode: 'real',
      endpoint: gcs.endpoint,
      downloaded: { objects: 4, bytes: 8 + 16 + 100_000 + 7 },
      uploaded: { objects: 3, destination: 'gs://out-bucket/results/run1' },
    });
    // Objects the wildcard does not match were never downloaded; the downloaded copies are gone.
    expect(gcs.requests.some((r) => r.includes('notes.txt'))).toBe(false);
    await expect(stat(path.join(job.emulator.cloudStorage.mirrorDirectory, 'in-bucket', 'data', 'a.jsonl'))).rejects.toThrow();
    expect(JSON.parse(await readFile(job.emulator.recordFile, 'utf8')).emulator.cloudStorage.uploaded.objects).toBe(3);
  }, 120_000);

  it('an input that names no object is a usage error naming it (exit 2), before any container', async () => {
    const result = await runVbe(runArgs('gs://out-bucket/results/missing', 'gs://in-bucket/nothing-here/'), env);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain('INPUT_NOT_FOUND');
    expect(result.stderr).toContain('"gs://in-bucket/nothing-here/" names no object in Cloud Storage');
  }, 60_000);

  it('Cloud Storage that does not answer is the emulator unable to work (exit 3), naming the endpoint', async () => {
    const result = await runVbe(runArgs('gs://out-bucket/x'), { STORAGE_EMULATOR_HOST: 'http://127.0.0.1:9' });
    expect(result.code, result.stderr).toBe(3);
    expect(result.stderr).toContain('GCS_UNAVAILABLE');
    expect(result.stderr).toContain('Cloud Storage at http://127.0.0.1:9 did not answer');
  }, 60_000);

  it('a job the emulator cannot run after the downloads (engine unreachable) leaves no mirror behind', async () => {
    const mirrors = async () => (await readdir(os.tmpdir())).filter((name) => name.startsWith('vbe-gcs-'));
    const before = await mirrors();
    const result = await runVbe(runArgs('gs://out-bucket/bad'), { ...env, DOCKER_HOST: 'tcp://127.0.0.1:9' });
    expect(result.code, result.stderr).toBe(3);
    expect(gcs.requests.some((r) => r.includes('alt=media'))).toBe(true); // the inputs were downloaded first
    expect(await mirrors()).toEqual(before);
  }, 60_000);

  it('--gcs real with --gcs-root is refused', async () => {
    const result = await runVbe([...runArgs('gs://out-bucket/x'), '--gcs-root', '/tmp'], env);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('GCS_ROOT_WITH_REAL');
  });

  it('an upload Cloud Storage refuses fails the job with the reason, and the outputs are kept locally', async () => {
    gcs.failUploads = 403;
    try {
      const result = await runVbe(runArgs('gs://out-bucket/results/refused'), env);
      expect(result.code, result.stderr).toBe(1);
      const job = JSON.parse(result.stdout);
      expect(job.state).toBe('JOB_STATE_FAILED');
      expect(job.error).toEqual({ code: 7, message: 'The outputs could not be written to gs://out-bucket/results/refused.' });
      const diagnosis = job.emulator.diagnoses.find((d: { code: string }) => d.code === 'OUTPUT_UPLOAD_FAILED');
      expect(diagnosis.message).toContain('HTTP 403');
      expect(await readFile(path.join(job.emulator.outputs.hostDirectory, 'all.jsonl'), 'utf8')).toBe('{"x":1}\n{"x":2}\n{"x":3}\n');
      expect(gcs.names('out-bucket').filter((n) => n.includes('refused'))).toEqual([]);
    } finally {
      gcs.failUploads = undefined;
    }
  }, 120_000);

  it('vbe batch-predict: reads the instances from Cloud Storage and writes the prediction files there', async () => {
    gcs.put('in-bucket', 'batch/instances.jsonl', '{"id":1}\n{"id":2}\n{"id":3}\n');
    const result = await runVbe(
      ['batch-predict', '--gcs', 'real', '--image', SERVER_IMAGE, '--pull', 'never', '--input', 'gs://in-bucket/batch/instances.jsonl',
        '--instances-format', 'jsonl', '--output', 'gs://out-bucket/predictions', '--json'],
      env,
    );
    expect(result.code, result.stderr).toBe(0);
    const job = JSON.parse(result.stdout);
    const prefix = job.outputInfo.gcsOutputDirectory.slice('gs://out-bucket/'.length);
    expect(prefix).toMatch(/^predictions\/prediction-.+/);
    const lines = gcs.get('out-bucket', `${prefix}/prediction.results-00000-of-00001`)!.toString().trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.instance.id).sort()).toEqual([1, 2, 3]);
    expect(gcs.names('out-bucket').filter((n) => n.startsWith(prefix) && n.includes('.vbe'))).toEqual([]);
    expect(job.emulator.cloudStorage.downloaded.objects).toBe(1);
  }, 180_000);
});
