import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runJob } from '../../src/index.js';
import type { RunJobResource } from '../../src/report/jobResource.js';
import { BUSYBOX, buildImage, labelled, PYTHON_BASE, runVbe, tempDir } from '../helpers/engine.js';
import { startFakeGcs } from '../helpers/fakeGcsServer.js';

const sh = (script: string) => ({ command: ['sh', '-c', script] });

async function put(file: string, body: string): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, body);
  return file;
}

const readJson = async (file: string) => JSON.parse(await readFile(file, 'utf8')) as RunJobResource;

describe('vbe run as a Vertex CustomJob (real engine)', () => {
  let work: string;
  beforeAll(async () => {
    work = await tempDir('vbe-i13-');
  });

  it('a CustomJob spec with no inputs SUCCEEDS; it sees AIP_MODEL_DIR/CHECKPOINT/TENSORBOARD from baseOutputDirectory, CLUSTER_SPEC and TF_CONFIG, and its model comes back', async () => {
    const gcsRoot = path.join(work, 'gcs-spec');
    await mkdir(gcsRoot, { recursive: true });
    const specFile = await put(
      path.join(work, 'custom-job.json'),
      JSON.stringify({
        displayName: 'train-r',
        jobSpec: {
          workerPoolSpecs: [
            {
              machineSpec: { machineType: 'n1-standard-4' },
              replicaCount: '1',
              containerSpec: {
                imageUri: BUSYBOX,
                command: ['sh', '-c', 'env > /tmp/env.txt; d=$(echo "$AIP_MODEL_DIR" | sed "s#^gs://#/gcs/#"); mkdir -p "$d" && cp /tmp/env.txt "$d/env.txt" && echo model > "$d/model.RData"'],
              },
            },
            {},
            { machineSpec: { machineType: 'n1-standard-4' }, replicaCount: '2', containerSpec: { imageUri: BUSYBOX } },
          ],
          baseOutputDirectory: { outputUriPrefix: 'gs://models-bkt/run1' },
        },
      }),
    );
    const cli = await runVbe(['run', '--spec', specFile, '--gcs-root', gcsRoot, '--json', '--no-progress']);
    expect(cli.code).toBe(0);
    const job = JSON.parse(cli.stdout) as RunJobResource;
    expect(job.state).toBe('JOB_STATE_SUCCEEDED');
    expect(job.emulator.flavour).toBe('custom-job');
    expect(cli.stderr).toContain('as:       a CustomJob (the spec is a CustomJob (jobSpec.workerPoolSpecs))');
    expect(job.emulator.warnings.join('\n')).toContain('not run: workerpool2 (2 replica(s))');

    const modelDir = path.join(gcsRoot, 'models-bkt/run1/model');
    expect(await readFile(path.join(modelDir, 'model.RData'), 'utf8')).toBe('model\n');
    const env = Object.fromEntries(
      (await readFile(path.join(modelDir, 'env.txt'), 'utf8')).trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(env.AIP_MODEL_DIR).toBe('gs://models-bkt/run1/model/');
    expect(env.AIP_CHECKPOINT_DIR).toBe('gs://models-bkt/run1/checkpoints/');
    expect(env.AIP_TENSORBOARD_LOG_DIR).toBe('gs://models-bkt/run1/logs/');
    expect(env.AIP_BATCH_INPUT_URIS).toBeUndefined(); // Vertex sets no batch variables for a CustomJob
    const clusterSpec = JSON.parse(env.CLUSTER_SPEC!);
    expect(clusterSpec).toMatchObject({ cluster: { workerpool0: ['workerpool0-0:2222'] }, environment: 'cloud', task: { type: 'workerpool0', index: 0 } });
    expect(typeof clusterSpec.job).toBe('string');
    expect(JSON.parse(env.TF_CONFIG!)).toMatchObject({ cluster: { chief: ['workerpool0-0:2222'] }, environment: 'cloud', task: { type: 'chief', index: 0 } });
    expect(job.emulator.outputs.files.map((f) => f.path).sort()).toEqual(['model/env.txt', 'model/model.RData']);
    expect(await labelled(`dev.vbe.job-id=${job.emulator.jobId}`)).toEqual({ containers: [], volumes: [] });
  });

  it('an exit-0 CustomJob that writes nothing SUCCEEDS with a NO_OUTPUT warning, and FAILS with --expect-output', async () => {
    const gcsRoot = path.join(work, 'gcs-empty');
    const common = ['run', '--contract', 'custom-job', '--image', BUSYBOX, '--command', 'true', '--output', 'gs://empty-bkt/base', '--gcs-root', gcsRoot, '--json', '--no-progress'];
    const lenient = await runVbe(common);
    expect(lenient.code).toBe(0);
    const job = JSON.parse(lenient.stdout) as RunJobResource;
    expect(job.state).toBe('JOB_STATE_SUCCEEDED');
    expect(job.emulator.diagnoses.map((d) => [d.code, d.severity])).toEqual([['NO_OUTPUT', 'warning']]);

    const strict = await runVbe([...common, '--expect-output']);
    expect(strict.code).toBe(1);
    const failed = JSON.parse(strict.stdout) as RunJobResource;
    expect(failed.state).toBe('JOB_STATE_FAILED');
    expect(failed.error!.message).toContain('--expect-output');
    expect(failed.emulator.diagnoses.map((d) => [d.code, d.severity])).toEqual([['NO_OUTPUT', 'error']]);
  });

  it('a job without inputs or output SUCCEEDS; its record goes to ./vbe-runs/<job id>', async () => {
    const cwd = path.join(work, 'bare');
    await mkdir(cwd, { recursive: true });
    const job = await runJob({ image: BUSYBOX, cwd, ...sh('echo hello') });
    expect(job.state).toBe('JOB_STATE_SUCCEEDED');
    expect(job.emulator.flavour).toBe('custom-job');
    expect(job.emulator.recordFile).toBe(path.join(cwd, 'vbe-runs', job.emulator.jobId, '.vbe/job.json'));
    expect(await readFile(job.emulator.logs.stdout, 'utf8')).toBe('hello\n');
  });

  it('/gcs is the buckets: an object that is not an input is readable, a non-root user writes anywhere in the bucket, and it all comes back (and is listed)', async () => {
    const gcsRoot = path.join(work, 'gcs-buckets');
    await put(path.join(gcsRoot, 'data-bkt/inputs/a.jsonl'), '{"id":1}\n');
    await put(path.join(gcsRoot, 'data-bkt/lookup/table.csv'), 'k,v\n1,one\n');
    await put(path.join(gcsRoot, 'data-bkt/lookup/old.txt'), 'old\n');
    const before = await stat(path.join(gcsRoot, 'data-bkt/inputs/a.jsonl'));
    const image = await buildImage('vbe-test/i13-nonroot:1', `FROM ${BUSYBOX}\nUSER nobody\n`);
    const job = await runJob({
      image,
      inputs: ['gs://data-bkt/inputs/a.jsonl'],
      output: 'gs://out-bkt/preds',
      gcsRoot,
      ...sh(
        'cat /gcs/data-bkt/lookup/table.csv > "$AIP_BATCH_OUTPUT_DIR/copied.csv" && ' +
          'mkdir -p /gcs/data-bkt/elsewhere/deep && echo side > /gcs/data-bkt/elsewhere/deep/side.txt && ' +
          'echo new > /gcs/data-bkt/lookup/old.txt',
      ),
    });
    expect(job.emulator.logTail).toEqual([]);
    expect(job.emulator.diagnoses).toEqual([]);
    expect(job.state).toBe('JOB_STATE_SUCCEEDED');
    expect(job.emulator.flavour).toBe('batch-files');
    expect(await readFile(path.join(gcsRoot, 'out-bkt/preds/copied.csv'), 'utf8')).toBe('k,v\n1,one\n');
    expect(await readFile(path.join(gcsRoot, 'data-bkt/elsewhere/deep/side.txt'), 'utf8')).toBe('side\n');
    expect(await readFile(path.join(gcsRoot, 'data-bkt/lookup/old.txt'), 'utf8')).toBe('new\n');
    const gcs = job.emulator.gcs!;
    expect(gcs.buckets.sort()).toEqual(['data-bkt', 'out-bkt']);
    expect(gcs.written.map((w) => w.uri).sort()).toEqual(['gs://data-bkt/elsewhere/deep/side.txt', 'gs://data-bkt/lookup/old.txt']);
    expect(gcs.writtenCount).toBe(2);
    // Unchanged objects are not rewritten.
    expect((await stat(path.join(gcsRoot, 'data-bkt/inputs/a.jsonl'))).mtimeMs).toBe(before.mtimeMs);
  });

  it('--gcs-stage inputs copies only the inputs: another object is INPUT_NOT_STAGED, writes still come back', async () => {
    const gcsRoot = path.join(work, 'gcs-inputs-only');
    await put(path.join(gcsRoot, 'data-bkt/inputs/a.jsonl'), '{"id":1}\n');
    await put(path.join(gcsRoot, 'data-bkt/lookup/table.csv'), 'k,v\n');
    const job = await runJob({
      image: BUSYBOX,
      inputs: ['gs://data-bkt/inputs/a.jsonl'],
      output: 'gs://out-bkt/preds',
      gcsRoot,
      gcsStage: 'inputs',
      maxRestarts: 0,
      ...sh('cp $AIP_BATCH_INPUT_URIS "$AIP_BATCH_OUTPUT_DIR/" && echo s > /gcs/data-bkt/inputs/side.txt && cat /gcs/data-bkt/lookup/table.csv'),
    });
    expect(job.emulator.gcs).toMatchObject({ staged: { fileCount: 1 }, writtenCount: 1 });
    expect(await readFile(path.join(gcsRoot, 'data-bkt/inputs/side.txt'), 'utf8')).toBe('s\n');
    expect(job.state).toBe('JOB_STATE_FAILED');
    expect(job.emulator.diagnoses[0]).toMatchObject({ code: 'INPUT_NOT_STAGED', fix: expect.stringContaining('--gcs-stage buckets') });
  });

  it('with --gcs real, what a CustomJob writes under /gcs outside its output prefix is uploaded too', async () => {
    const gcs = await startFakeGcs();
    try {
      const result = await runVbe(
        ['run', '--gcs', 'real', '--contract', 'custom-job', '--image', BUSYBOX, '--output', 'gs://out-bucket/base', '--json', '--no-progress',
          '--command', 'sh', '--command', '-c', '--command', 'mkdir -p /gcs/out-bucket/base/model /gcs/out-bucket/side && echo m > /gcs/out-bucket/base/model/m.bin && echo s > /gcs/out-bucket/side/s.txt'],
        { STORAGE_EMULATOR_HOST: gcs.endpoint },
      );
      expect(result.code, result.stderr).toBe(0);
      const job = JSON.parse(result.stdout) as RunJobResource;
      expect(gcs.names('out-bucket')).toEqual(['base/model/m.bin', 'side/s.txt']);
      expect(gcs.get('out-bucket', 'side/s.txt')!.toString()).toBe('s\n');
      expect(job.emulator.cloudStorage).toMatchObject({ uploaded: { objects: 2 } });
    } finally {
      await gcs.close();
    }
  }, 120_000);

  it('Vertex restarts by default: exit 139 then 0 SUCCEEDS with two attempts, /gcs state persisting between them; --max-restarts 0 turns it off', async () => {
    const gcsRoot = path.join(work, 'gcs-restart');
    await mkdir(path.join(gcsRoot, 'ckpt-bkt'), { recursive: true });
    // The first attempt leaves a checkpoint in the bucket and dies of SIGSEGV; the second finds it.
    // `$$$$` because Vertex expands `$$` in command and args to `$`.
    const flaky = sh(`if [ -f $$STATE/step1 ]; then echo resumed > $$STATE/done; else echo 1 > $$STATE/step1; sh -c 'kill -SEGV $$$$'; exit $?; fi`);
    const job = await runJob({ image: BUSYBOX, contract: 'custom-job', output: 'gs://ckpt-bkt/base', env: ['STATE=/gcs/ckpt-bkt/base'], gcsRoot, ...flaky });
    expect(job.emulator.attempts.map((a) => a.exitCode)).toEqual([139, 0]);
    expect(job.state).toBe('JOB_STATE_SUCCEEDED');
    expect(await readFile(path.join(gcsRoot, 'ckpt-bkt/base/done'), 'utf8')).toBe('resumed\n');

    const off = await runJob({ image: BUSYBOX, contract: 'custom-job', output: 'gs://ckpt-bkt/off', env: ['STATE=/gcs/ckpt-bkt/off'], gcsRoot, maxRestarts: 0, ...flaky });
    expect(off.emulator.attempts.map((a) => a.exitCode)).toEqual([139]);
    expect(off.state).toBe('JOB_STATE_FAILED');
    const plain = await runJob({ image: BUSYBOX, contract: 'custom-job', output: 'gs://ckpt-bkt/exit1', gcsRoot, ...sh('exit 1') });
    expect(plain.emulator.attempts).toHaveLength(1);
  });

  it('INPUT_NOT_STAGED only for a read of a file that exists nowhere, never for a file opened for writing', async () => {
    const gcsRoot = path.join(work, 'gcs-diag');
    await put(
      path.join(gcsRoot, 'code-bkt/write.py'),
      'import os\nbase = os.environ["AIP_MODEL_DIR"].replace("gs://", "/gcs/")\nwith open(os.path.join(base, "model.RData"), "w") as f:\n    f.write("m")\n',
    );
    await put(path.join(gcsRoot, 'code-bkt/read.py'), 'with open("/gcs/code-bkt/data/missing.csv") as f:\n    print(f.read())\n');
    const writer = await runJob({ image: PYTHON_BASE, contract: 'custom-job', output: 'gs://code-bkt/run', gcsRoot, command: ['python3', '/gcs/code-bkt/write.py'], maxRestarts: 0 });
    expect(writer.state).toBe('JOB_STATE_FAILED');
    expect(writer.emulator.diagnoses.map((d) => d.code)).toEqual(['NONZERO_EXIT']);
    expect(writer.emulator.diagnoses[0]!.message).not.toMatch(/above|below/);

    const reader = await runJob({ image: PYTHON_BASE, contract: 'custom-job', output: 'gs://code-bkt/run2', gcsRoot, command: ['python3', '/gcs/code-bkt/read.py'], maxRestarts: 0 });
    expect(reader.state).toBe('JOB_STATE_FAILED');
    const [missing] = reader.emulator.diagnoses;
    expect(missing).toMatchObject({ code: 'INPUT_NOT_STAGED', severity: 'error' });
    expect(missing!.message).toContain('gs://code-bkt/data/missing.csv was not in the staged bucket');
  });
});
