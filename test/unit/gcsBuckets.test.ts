import { mkdir, mkdtemp, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tarStream from 'tar-stream';
import { beforeEach, describe, expect, it } from 'vitest';
import type { BodySink } from '../../src/http/responseParser.js';
import { collectGcsChanges } from '../../src/staging/collectGcsChanges.js';
import { resolveGcsBuckets } from '../../src/staging/gcsBuckets.js';

async function pack(entries: Array<Partial<tarStream.Header> & { name: string; body?: string }>): Promise<Buffer> {
  const p = tarStream.pack();
  for (const { body, ...header } of entries) p.entry({ mode: 0o644, ...header } as tarStream.Header, Buffer.from(body ?? ''));
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of p as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

const source = (archive: Buffer) => async (sink: BodySink) => {
  for (let i = 0; i < archive.length; i += 700) await sink([archive.subarray(i, i + 700)]);
};

describe('/gcs buckets: what is staged, and what comes back', () => {
  let root: string;
  const mtime = new Date('2024-01-02T03:04:05Z');
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'vbe-i13-gcs-'));
    const files: Array<[string, string]> = [['b/in/a.jsonl', 'a'], ['b/lookup/t.csv', 'k,v'], ['b/out/old.txt', 'old']];
    for (const [name, body] of files) {
      await mkdir(path.dirname(path.join(root, name)), { recursive: true });
      await writeFile(path.join(root, name), body);
      await utimes(path.join(root, name), mtime, mtime);
    }
  });

  it('stages named buckets whole, but the output prefix; directories writable; a missing bucket only when it may be created', async () => {
    const staged = await resolveGcsBuckets([{ name: 'b', field: '--input[0]', mayCreate: false }, { name: 'new-out', field: '--output', mayCreate: true }], root, ['b/out']);
    expect(staged.buckets).toEqual(['b', 'new-out']);
    expect(staged.group.entries.map((e) => e.relative)).toEqual(['b/in/a.jsonl', 'b/lookup/t.csv']);
    expect(staged.excludedFileCount).toBe(1);
    expect(staged.writableDirs).toEqual(['/gcs/b', '/gcs/b/in', '/gcs/b/lookup', '/gcs/new-out']);
    expect(staged.group.fileMode).toBe(0o666);
    await expect(resolveGcsBuckets([{ name: 'nope', field: '--gcs-bucket[0]', mayCreate: false }], root, [])).rejects.toThrow(/--gcs-bucket\[0\]: bucket "nope" is not a directory/);
  });

  it('writes back new and changed files only, skips the output prefix, lists deletions without deleting, refuses links and ".."', async () => {
    const staged = await resolveGcsBuckets([{ name: 'b', field: '--input[0]', mayCreate: false }], root, ['b/out']);
    const seconds = Math.floor(mtime.getTime() / 1000);
    const archive = await pack([
      { name: 'gcs/', type: 'directory' },
      { name: 'gcs/b/in/a.jsonl', body: 'a', mtime: new Date(seconds * 1000) }, // unchanged
      { name: 'gcs/b/lookup/t.csv', body: 'k,v\n1,2', mtime: new Date() }, // changed
      { name: 'gcs/b/models/m.bin', body: 'model' }, // new, in a new directory
      { name: 'gcs/b/out/pred.txt', body: 'p' }, // the output prefix: collected elsewhere
      { name: 'gcs/b/link', type: 'symlink', linkname: '/etc/passwd' },
    ]);
    const before = await stat(path.join(root, 'b/in/a.jsonl'));
    const changes = await collectGcsChanges(source(archive), root, { manifest: staged.manifest, skip: staged.excluded, maxFileBytes: 1024 });
    expect(changes.complete).toBe(true);
    expect(changes.written.map((f) => f.path).sort()).toEqual(['b/lookup/t.csv', 'b/models/m.bin']);
    expect(changes.writtenBytes).toBe(7 + 5);
    expect(await readFile(path.join(root, 'b/models/m.bin'), 'utf8')).toBe('model');
    expect(await readFile(path.join(root, 'b/lookup/t.csv'), 'utf8')).toBe('k,v\n1,2');
    expect((await stat(path.join(root, 'b/in/a.jsonl'))).mtimeMs).toBe(before.mtimeMs);
    await expect(stat(path.join(root, 'b/out/pred.txt'))).rejects.toThrow();
    expect(changes.refused).toEqual([{ path: 'b/link', reason: 'symlink (only regular files become objects)' }]);
    expect(changes.deleted).toEqual([]);

    const deleted = await collectGcsChanges(source(await pack([{ name: 'gcs/b/in/a.jsonl', body: 'a', mtime: new Date(seconds * 1000) }])), root, { manifest: staged.manifest, skip: staged.excluded, maxFileBytes: 1024 });
    expect(deleted.deleted).toEqual(['b/lookup/t.csv']);
    expect(await readFile(path.join(root, 'b/lookup/t.csv'), 'utf8')).toBe('k,v\n1,2'); // kept on the host
  });

  it('a file over the size cap is refused, the rest written', async () => {
    const changes = await collectGcsChanges(source(await pack([{ name: 'gcs/b/big.bin', body: 'x'.repeat(2000) }, { name: 'gcs/b/small.txt', body: 's' }])), root, { manifest: new Map(), skip: [], maxFileBytes: 1024 });
    expect(changes.refused[0]).toMatchObject({ path: 'b/big.bin', reason: expect.stringContaining('--max-output-file-size') });
    expect(changes.written.map((f) => f.path)).toEqual(['b/small.txt']);
  });
});
