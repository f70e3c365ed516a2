import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runJob } from '../../src/index.js';
import { BUSYBOX, labelled, runVbe, tempDir } from '../helpers/engine.js';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Each named variable as the container saw it: `NAME <length> <sha256>` per line. */
const reportScript = (names: string[]) =>
  names.map((n) => `printf '%s %s %s\\n' ${n} "$(printf %s "$${n}" | wc -c)" "$(printf %s "$${n}" | sha256sum | cut -d' ' -f1)"`).join('; ');

function parseReport(text: string): Record<string, { length: number; sha256: string }> {
  return Object.fromEntries(
    text
      .trim()
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .map(([name, length, hash]) => [name!, { length: Number(length), sha256: hash! }]),
  );
}

/**
 * Container options travel in the create request's body only: an Env of hundreds of KiB (the URL
 * once carried it too, and the engine refused a URL over 1 MiB with HTTP 431) reaches the
 * container whole.
 */
describe('large environments', () => {
  let work: string;
  beforeAll(async () => {
    work = await tempDir();
  });

  it('about 120 KiB of environment (2,000 input files and a 36 KiB --env) reaches the container', async () => {
    const many = path.join(work, 'many');
    await mkdir(many);
    const count = 2000;
    await Promise.all(Array.from({ length: count }, (_, i) => writeFile(path.join(many, `part-${String(i).padStart(5, '0')}-of-${count}.jsonl`), '{}\n')));
    const big = 'v/,='.repeat(9_216); // 36 KiB, of characters a URL has to escape
    const out = path.join(work, 'many-out');
    const job = await runJob({
      image: BUSYBOX,
      inputs: [many],
      output: out,
      env: { BIG: big },
      command: ['sh', '-c', `(${reportScript(['AIP_BATCH_INPUT_URIS', 'BIG'])}) > "$AIP_BATCH_OUTPUT_DIR/env.txt"`],
    });
    expect(job.state, JSON.stringify(job.error)).toBe('JOB_STATE_SUCCEEDED');
    const uris = Array.from({ length: count }, (_, i) => `/vbe/inputs/many/part-${String(i).padStart(5, '0')}-of-${count}.jsonl`).join(',');
    expect(uris.length + big.length).toBeGreaterThan(115 * 1024);
    expect(parseReport(await readFile(path.join(out, 'env.txt'), 'utf8'))).toEqual({
      AIP_BATCH_INPUT_URIS: { length: uris.length, sha256: sha256(uris) },
      BIG: { length: big.length, sha256: sha256(big) },
    });
    expect(await labelled(`dev.vbe.job-id=${job.emulator.jobId}`)).toEqual({ containers: [], volumes: [] });
  });

  it('`vbe run` with 400 KB of --env values (over 1 MiB once URL-escaped) runs, and the container sees them', async () => {
    const input = path.join(work, 'in.jsonl');
    await writeFile(input, '{}\n');
    const values = ['A', 'B', 'C', 'D'].map((letter) => `${letter}${',/'.repeat(49_999)}${letter}`); // 100,000 characters each
    const names = values.map((_, i) => `LARGE_${i}`);
    const out = path.join(work, 'cli-out');
    const result = await runVbe([
      'run',
      '--image',
      BUSYBOX,
      '--pull',
      'never',
      '--input',
      input,
      '--output',
      out,
      '--json',
      ...values.flatMap((value, i) => ['--env', `${names[i]}=${value}`]),
      '--command',
      'sh',
      '--command',
      '-c',
      '--command',
      `(${reportScript(names)}) > "$AIP_BATCH_OUTPUT_DIR/env.txt"`,
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(parseReport(await readFile(path.join(out, 'env.txt'), 'utf8'))).toEqual(
      Object.fromEntries(values.map((value, i) => [names[i], { length: value.length, sha256: sha256(value) }])),
    );
    // Only the names of the user's variables are recorded, never their values.
    const record = await readFile(path.join(out, '.vbe/job.json'), 'utf8');
    expect(record).not.toContain(values[0]);
    expect(JSON.parse(result.stdout).emulator.userEnvNames).toEqual(names);
  });
});
