import { mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { beforeEach, describe, expect, it } from 'vitest';
import { VbeError } from '../../src/errors.js';
import { collectOutputs } from '../../src/staging/collectOutputs.js';
import { resolveInputs, resolveOutput } from '../../src/staging/resolveLocations.js';
import { mkdtemp } from 'node:fs/promises';

async function tarOf(entries: Array<Partial<tarStream.Header> & { name: string; body?: string }>): Promise<Readable> {
  const pack = tarStream.pack();
  for (const { body, ...header } of entries) pack.entry(header as tarStream.Header, body ?? "");
  pack.finalize();
  return Readable.from(pack as unknown as AsyncIterable<Buffer>);
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vbe-unit-'));
});

describe('collectOutputs', () => {
  it('writes regular files and directories, and refuses everything that could escape', async () => {
    const outside = path.join(dir, 'outside');
    await mkdir(outside);
    const out = path.join(dir, 'out');
    await mkdir(out);
    await symlink(outside, path.join(out, 'trap')); // a link the host already had
    const archive = await tarOf([
      { name: 'output/', type: 'directory', mode: 0o777 },
      { name: 'output/a.txt', type: 'file', body: 'A' },
      { name: 'output/sub/', type: 'directory' },
      { name: 'output/sub/b.txt', type: 'file', body: 'BB' },
      { name: 'output/../../evil.txt', type: 'file', body: 'x' },
      { name: 'output/link', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'output/hard', type: 'link', linkname: 'output/a.txt' },
      { name: 'output/dev', type: 'character-device', devmajor: 1, devminor: 3 },
      { name: 'output/big.bin', type: 'file', body: '0123456789' },
      { name: 'output/trap/x.txt', type: 'file', body: 'e' },
      { name: 'output/.vbe/job.json', type: 'file', body: '{}' },
    ]);
    const result = await collectOutputs(archive, out, { maxFileBytes: 5, reserved: ['.vbe'] });
    expect(result.fileCount).toBe(2);
    expect(result.totalBytes).toBe(3);
    expect(result.files).toEqual([{ path: 'a.txt', sizeBytes: 1 }, { path: 'sub/b.txt', sizeBytes: 2 }]);
    expect(Object.fromEntries(result.refused.map((r) => [r.path, r.reason.split(' ')[0]]))).toEqual({
      '../../evil.txt': 'path',
      link: 'symbolic',
      hard: 'hard',
      dev: 'character-device',
      'big.bin': 'file',
      'trap/x.txt': 'parent',
      '.vbe/job.json': '".vbe"',
    });
    expect(await readFile(path.join(out, 'sub/b.txt'), 'utf8')).toBe('BB');
    expect(await readdir(outside)).toEqual([]);
    expect(await readdir(dir)).toEqual(['out', 'outside']);
  });
});

describe('resolveInputs', () => {
  beforeEach(async () => {
    await mkdir(path.join(dir, 'data/nested'), { recursive: true });
    await writeFile(path.join(dir, 'data/a.jsonl'), 'a');
    await writeFile(path.join(dir, 'data/b.csv'), 'bb');
    await writeFile(path.join(dir, 'data/nested/c.jsonl'), 'ccc');
    await mkdir(path.join(dir, 'gcs/bkt/p'), { recursive: true });
    await writeFile(path.join(dir, 'gcs/bkt/p/x.jsonl'), 'x');
    await writeFile(path.join(dir, 'gcs/bkt/p/y.jsonl'), 'y');
    await mkdir(path.join(dir, 'empty'));
  });
  const ref = (text: string, i = 0) => ({ text, baseDir: dir, field: `--input[${i}]` });
  const gcsRoot = () => path.join(dir, 'gcs');

  it('maps files, directories, globs and gs:// URIs to container paths', async () => {
    const r = await resolveInputs([ref('data/a.jsonl'), ref('data/**/*.jsonl', 1), ref('gs://bkt/p/*.jsonl', 2), ref('data', 3)], gcsRoot());
    expect(r.files.map((f) => f.containerPath)).toEqual([
      '/vbe/inputs/a.jsonl',
      '/vbe/inputs/nested/c.jsonl',
      '/gcs/bkt/p/x.jsonl',
      '/gcs/bkt/p/y.jsonl',
      '/vbe/inputs/data/a.jsonl',
      '/vbe/inputs/data/b.csv',
      '/vbe/inputs/data/nested/c.jsonl',
    ]);
    expect(r.usesGcs).toBe(true);
    expect(r.totalBytes).toBe(1 + 3 + 1 + 1 + 1 + 2 + 3);
    expect(r.groups.map((g) => [g.containerDir, g.entries.length])).toEqual([
      ['/vbe/inputs', 2],
      ['/gcs', 2],
      ['/vbe/inputs', 3],
    ]);
  });

  it.each([
    ['data/missing.jsonl', 'INPUT_NOT_FOUND', /"data\/missing.jsonl" does not exist/],
    ['data/*.parquet', 'INPUT_NO_MATCH', /matches no files/],
    ['empty', 'INPUT_EMPTY_DIR', /holds no files/],
    ['gs://bkt/nope.jsonl', 'INPUT_NOT_FOUND', /mapped from gs:\/\/bkt\/nope.jsonl with --gcs-root/],
  ])('%s is a usage error naming the input', async (text, code, message) => {
    const error = (await resolveInputs([ref(text)], gcsRoot()).catch((e: unknown) => e)) as VbeError;
    expect(error).toBeInstanceOf(VbeError);
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
    expect(error.message).toContain('--input[0]');
  });

  it('two different files landing on one container path is an error naming both', async () => {
    await mkdir(path.join(dir, 'other'));
    await writeFile(path.join(dir, 'other/a.jsonl'), 'z');
    await expect(resolveInputs([ref('data/a.jsonl'), ref('other/a.jsonl', 1)], gcsRoot())).rejects.toThrow(/both be staged at \/vbe\/inputs\/a.jsonl/);
  });

  it('outputs: local dirs write from /vbe/output, gs:// prefixes from /gcs', async () => {
    expect(await resolveOutput(ref('out'), gcsRoot())).toEqual({ hostDir: path.join(dir, 'out'), containerDir: '/vbe/output' });
    expect(await resolveOutput(ref('gs://bkt/preds'), gcsRoot())).toEqual({ hostDir: path.join(dir, 'gcs/bkt/preds'), containerDir: '/gcs/bkt/preds', gcsUri: 'gs://bkt/preds' });
    await expect(resolveOutput(ref('data/a.jsonl'), gcsRoot())).rejects.toThrow(/is not a directory/);
    // A whole bucket is a valid output (a CustomJob's baseOutputDirectory can be gs://bucket).
    expect(await resolveOutput(ref('gs://bkt'), gcsRoot())).toEqual({ hostDir: path.join(dir, 'gcs/bkt'), containerDir: '/gcs/bkt', gcsUri: 'gs://bkt' });
  });
});
