/**
 * Batch jobs as integration tests: run your image the way Vertex would, in Vitest.
 *
 *   npm install --save-dev vertex-batch-emulator vitest
 *   npx vitest run examples/vitest
 *
 * The images are the bundled examples (examples/01-input-paths and 04-prediction-server), built
 * FROM $VBE_BASE_IMAGE (default python:3.11-slim).
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { batchPredict, readPredictions, runJob } from 'vertex-batch-emulator';
import 'vertex-batch-emulator/vitest';

const examples = path.resolve(import.meta.dirname, '..');
const base = process.env.VBE_BASE_IMAGE ?? 'python:3.11-slim';
const build = (tag: string, dir: string) =>
  execFileSync('docker', ['build', '-q', '--build-arg', `BASE_IMAGE=${base}`, '-t', tag, path.join(examples, dir)], { env: { ...process.env, DOCKER_BUILDKIT: '0' }, stdio: 'pipe' });

describe('my batch containers', () => {
  beforeAll(() => {
    build('my-team/input-paths:fixed', '01-input-paths/fixed');
    build('my-team/input-paths:broken', '01-input-paths/broken');
    build('my-team/prediction-server:latest', '04-prediction-server/server');
  });

  it('the file-contract job succeeds', async () => {
    const job = await runJob({ image: 'my-team/input-paths:fixed', inputs: [path.join(examples, '01-input-paths/input')], output: path.join(examples, '.out/fixed'), pull: 'never' });
    expect(job).toSucceed();
  });

  it('the broken one fails the way Vertex would, and says why', async () => {
    const job = await runJob({ image: 'my-team/input-paths:broken', inputs: [path.join(examples, '01-input-paths/input')], output: path.join(examples, '.out/broken'), pull: 'never' });
    expect(job).toFailWith('INPUT_NOT_STAGED');
    expect(job).toFailWith(3);
  });

  it('the model server answers every instance of a BatchPredictionJob', async () => {
    const job = await batchPredict({
      image: 'my-team/prediction-server:latest',
      inputs: [path.join(examples, '04-prediction-server/input/instances.jsonl')],
      instancesFormat: 'jsonl',
      output: path.join(examples, '.out/predictions'),
      pull: 'never',
    });
    expect(job).toHavePredictions(5);
    for await (const line of readPredictions(job)) expect(line.prediction).toHaveProperty('y');
  });
});
