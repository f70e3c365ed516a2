import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchPredict, runJob } from '../../src/index.js';
import { buildContext, docker, PYTHON_BASE, ROOT, tempDir } from '../helpers/engine.js';

/**
 * The seed article's three cases, each a broken and a fixed image built from examples/ on the
 * offline Python base: the broken one FAILS with the right diagnosis, the fixed one SUCCEEDS
 * with the expected output file.
 */
const cases = [
  { dir: '01-input-paths', name: 'input-paths', diagnosis: 'INPUT_NOT_STAGED', scale: 2 },
  { dir: '02-entrypoint-args', name: 'entrypoint-args', diagnosis: 'ARGS_REPLACED_CMD', scale: 3, args: ['--scale', '3'] },
  { dir: '03-missing-libgomp', name: 'missing-libgomp', diagnosis: 'MISSING_SHARED_LIBRARY', scale: 2 },
] as const;

describe('examples: the seed article cases', () => {
  let work: string;
  const tags: string[] = [];
  beforeAll(async () => {
    work = await tempDir();
    for (const c of cases) {
      for (const variant of ['broken', 'fixed']) {
        const tag = `vbe-example/${c.name}:${variant}`;
        await buildContext(tag, path.join(ROOT, 'examples', c.dir, variant), { BASE_IMAGE: PYTHON_BASE });
        tags.push(tag);
      }
    }
    await buildContext('vbe-example/prediction-server:test', path.join(ROOT, 'examples/04-prediction-server/server'), { BASE_IMAGE: PYTHON_BASE });
    tags.push('vbe-example/prediction-server:test');
  });
  afterAll(async () => {
    if (tags.length) await docker('rmi', '-f', ...tags).catch(() => undefined);
  });

  for (const c of cases) {
    const input = path.join(ROOT, 'examples', c.dir, 'input');
    const args = 'args' in c ? { args: [...c.args] } : {};

    it(`${c.dir}: the broken image FAILS with ${c.diagnosis}`, async () => {
      const job = await runJob({ image: `vbe-example/${c.name}:broken`, inputs: [input], output: path.join(work, `${c.name}-broken`), pull: 'never', ...args });
      expect(job.state).toBe('JOB_STATE_FAILED');
      const diagnosis = job.emulator.diagnoses.find((d) => d.code === c.diagnosis);
      expect(diagnosis, JSON.stringify(job.emulator.diagnoses, null, 2)).toBeDefined();
      expect(diagnosis!.severity).toBe('error');
      expect(job.emulator.diagnoses[0]!.code).toBe(c.diagnosis);
    });

    it(`${c.dir}: the fixed image SUCCEEDS with the expected output`, async () => {
      const out = path.join(work, `${c.name}-fixed`);
      const job = await runJob({ image: `vbe-example/${c.name}:fixed`, inputs: [input], output: out, pull: 'never', ...args });
      expect(job.state, JSON.stringify(job.emulator.logTail)).toBe('JOB_STATE_SUCCEEDED');
      const items = JSON.parse(await readFile(path.join(input, 'items.json'), 'utf8')) as Array<{ id: string; value: number }>;
      const expected = Object.fromEntries(items.map((i) => [i.id, i.value * c.scale]));
      expect(JSON.parse(await readFile(path.join(out, 'items.json'), 'utf8'))).toEqual(expected);
      expect(job.emulator.diagnoses.filter((d) => d.severity === 'error')).toEqual([]);
    });
  }

  it('01: the diagnosis names the path the model opened and where the inputs really were', async () => {
    const job = await runJob({ image: 'vbe-example/input-paths:broken', inputs: [path.join(ROOT, 'examples/01-input-paths/input')], output: path.join(work, 'again'), pull: 'never' });
    const d = job.emulator.diagnoses.find((x) => x.code === 'INPUT_NOT_STAGED')!;
    expect(d.message).toContain('/data/input.json');
    expect(d.fix).toContain('/vbe/inputs/input/items.json');
  });

  it('04: the example prediction server passes a BatchPredictionJob with parameters', async () => {
    const job = await batchPredict({
      image: 'vbe-example/prediction-server:test',
      pull: 'never',
      inputs: [path.join(ROOT, 'examples/04-prediction-server/input/instances.jsonl')],
      instancesFormat: 'jsonl',
      output: path.join(work, 'server'),
      modelParameters: { threshold: 5 },
    });
    expect(job.state, JSON.stringify(job.emulator.diagnoses)).toBe('JOB_STATE_SUCCEEDED');
    const lines = (await readFile(path.join(job.outputInfo.outputDirectory, 'prediction.results-00000-of-00001'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(5);
    expect(lines.find((l) => l.instance.id === 'i3')).toEqual({ instance: { id: 'i3', x: 3 }, prediction: { y: 6, above: true } });
  });
});
