import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { beforeEach, describe, expect, it } from 'vitest';
import type { TransferProgress } from '../../src/jobs/transferProgress.js';
import { collectOutputs } from '../../src/staging/collectOutputs.js';

type Entry = Partial<tarStream.Header> & { name: string; body?: Buffer };

/** A tar stream cut into chunks of `chunkBytes`, as an engine connection delivers it. */
async function tarOf(entries: Entry[], chunkBytes = 16 * 1024): Promise<Readable> {
  const pack = tarStream.pack();
  for (const { body, ...header } of entries) pack.entry({ mode: 0o644, ...header } as tarStream.Header, body ?? Buffer.alloc(0));
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
  const whole = Buffer.concat(chunks);
  return Readable.from(
    (function* () {
      for (let i = 0; i < whole.length; i += chunkBytes) yield whole.subarray(i, i + chunkBytes);
    })(),
  );
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vbe-collect-'));
});

describe('collectOutputs: writing files back', () => {
  it('copies small and big files byte for byte, keeps execute bits, lists them in archive order, leaves no temporary file', async () => {
    const big = randomBytes(5 * 1024 * 1024 + 333);
    const mid = randomBytes(200 * 1024);
    const small = Array.from({ length: 50 }, (_, i) => Buffer.from(`small ${i}\n`));
    const archive = await tarOf([
      { name: 'output/', type: 'directory' },
      { name: 'output/big.bin', type: 'file', body: big, mode: 0o755 },
      ...small.map((body, i) => ({ name: `output/s/f${i}.txt`, type: 'file' as const, body })),
      { name: 'output/mid.bin', type: 'file', body: mid },
      { name: 'output/empty', type: 'file' },
    ]);
    const out = path.join(dir, 'out');
    const result = await collectOutputs(archive, out, { maxFileBytes: 1024 ** 3 });
    expect(result.complete).toBe(true);
    expect(result.fileCount).toBe(53);
    expect(result.totalBytes).toBe(big.length + mid.length + small.reduce((n, b) => n + b.length, 0));
    expect(result.files.map((f) => f.path)).toEqual(['big.bin', ...small.map((_, i) => `s/f${i}.txt`), 'mid.bin', 'empty']);
    expect((await readFile(path.join(out, 'big.bin'))).equals(big)).toBe(true);
    expect((await readFile(path.join(out, 'mid.bin'))).equals(mid)).toBe(true);
    expect(await readFile(path.join(out, 's/f49.txt'), 'utf8')).toBe('small 49\n');
    expect((await stat(path.join(out, 'empty'))).size).toBe(0);
    expect((await stat(path.join(out, 'big.bin'))).mode & 0o111).toBe(0o111);
    expect((await stat(path.join(out, 'mid.bin'))).mode & 0o111).toBe(0);
    expect((await readdir(out)).filter((n) => n.endsWith('.vbe-partial'))).toEqual([]);
    expect((await readdir(path.join(out, 's'))).filter((n) => n.endsWith('.vbe-partial'))).toEqual([]);
  });

  it('reports collect progress as files come out of the archive, up to the totals, then done', async () => {
    const big = randomBytes(3 * 1024 * 1024 + 1);
    const archive = await tarOf([
      { name: 'output/', type: 'directory' },
      ...Array.from({ length: 20 }, (_, i) => ({ name: `output/f${i}`, type: 'file' as const, body: Buffer.from(`${i}`) })),
      { name: 'output/big.bin', type: 'file', body: big },
      { name: 'output/link', type: 'symlink', linkname: '/etc/passwd' },
    ]);
    const events: TransferProgress[] = [];
    const result = await collectOutputs(archive, path.join(dir, 'out'), { maxFileBytes: 1024 ** 3 }, (e) => events.push(e));
    const collect = events.filter((e): e is Extract<TransferProgress, { doneBytes: number }> => e.kind === 'collect');
    expect(collect.length).toBeGreaterThanOrEqual(20 + 3); // per small file, and per MiB of the big one
    for (let i = 1; i < collect.length; i++) {
      expect(collect[i]!.doneBytes).toBeGreaterThanOrEqual(collect[i - 1]!.doneBytes);
      expect(collect[i]!.doneFiles).toBeGreaterThanOrEqual(collect[i - 1]!.doneFiles);
    }
    expect(collect.at(-1)).toMatchObject({ doneBytes: result.totalBytes, doneFiles: 21 });
    expect(result.totalBytes).toBe(big.length + 30);
    expect(events.at(-1)).toEqual({ kind: 'done', of: 'collect' });
    expect(result.refused).toHaveLength(1);
  });

  it('an empty output directory still ends with a progress event and done', async () => {
    const events: TransferProgress[] = [];
    const result = await collectOutputs(await tarOf([{ name: 'output/', type: 'directory' }]), path.join(dir, 'out'), { maxFileBytes: 10 }, (e) => events.push(e));
    expect(result.fileCount).toBe(0);
    expect(events).toEqual([
      { kind: 'collect', doneBytes: 0, doneFiles: 0 },
      { kind: 'done', of: 'collect' },
    ]);
  });

  it('a file that cannot be written where it goes is refused, without hanging; the others are copied and no temporary file is left', async () => {
    const out = path.join(dir, 'out');
    // A directory where big.bin would go (the temporary name of old, too): the entry is refused, not the collection.
    await mkdir(path.join(out, 'big.bin'), { recursive: true });
    await mkdir(path.join(out, 'big.bin.vbe-partial'), { recursive: true });
    const archive = await tarOf([
      { name: 'output/', type: 'directory' },
      { name: 'output/a.txt', type: 'file', body: Buffer.from('a') },
      { name: 'output/big.bin', type: 'file', body: randomBytes(40 * 1024 * 1024) }, // more than the write buffer
      { name: 'output/z.txt', type: 'file', body: Buffer.from('z') },
    ]);
    const events: TransferProgress[] = [];
    const result = await collectOutputs(archive, out, { maxFileBytes: 1024 ** 3 }, (e) => events.push(e));
    expect(result).toMatchObject({ complete: true, fileCount: 2, refusedCount: 1, refused: [{ path: 'big.bin', reason: expect.stringContaining('a directory already exists at this path') }] });
    expect(await readFile(path.join(out, 'z.txt'), 'utf8')).toBe('z');
    expect((await readdir(out)).sort()).toEqual(['a.txt', 'big.bin', 'big.bin.vbe-partial', 'z.txt']);
    expect(events.at(-1)).toEqual({ kind: 'done', of: 'collect' });
  });

  it('a damaged or cut archive fails the collection (never a short "complete" result); whole files stay', async () => {
    const archive = await tarOf([
      { name: 'output/', type: 'directory' },
      { name: 'output/a.txt', type: 'file', body: Buffer.from('a') },
      { name: 'output/b.bin', type: 'file', body: randomBytes(100_000) },
    ]);
    const whole = Buffer.concat(await archive.toArray());
    const out = path.join(dir, 'out');
    await expect(collectOutputs(Readable.from([whole.subarray(0, 60_000)]), out, { maxFileBytes: 1024 ** 3 })).rejects.toMatchObject({ code: 'OUTPUT_ARCHIVE_INVALID', message: expect.stringMatching(/ends in the middle of a member/) });
    expect((await readdir(out)).sort()).toEqual(['a.txt']);
    await expect(collectOutputs(Readable.from([Buffer.alloc(1024, 0x41)]), path.join(dir, 'out2'), { maxFileBytes: 1024 ** 3 })).rejects.toThrow(/invalid tar archive/);
  });

  it('takes the archive from a reader that pushes parts into a sink (as the engine download does), waiting when asked', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 5);
    const whole = Buffer.concat(await (await tarOf([{ name: 'output/', type: 'directory' }, { name: 'output/x/big.bin', type: 'file', body }])).toArray());
    const reused = Buffer.alloc(100_000);
    const out = path.join(dir, 'out');
    const result = await collectOutputs(
      async (sink) => {
        for (let at = 0; at < whole.length; at += reused.length) {
          const n = whole.copy(reused, 0, at, at + reused.length);
          // Two parts per read, as chunk framing splits them; the buffer is overwritten after each call.
          const wait = sink([reused.subarray(0, n >> 1), reused.subarray(n >> 1, n)]);
          reused.fill(0xee);
          if (wait) await wait;
        }
      },
      out,
      { maxFileBytes: 1024 ** 3 },
    );
    expect(result).toMatchObject({ complete: true, fileCount: 1, totalBytes: body.length });
    expect((await readFile(path.join(out, 'x/big.bin'))).equals(body)).toBe(true);
  });

  const isRoot = process.getuid?.() === 0;
  it.runIf(isRoot)('a disk that fills up: the result says so, and every file listed is on disk, whole; no temporary file is left', async () => {
    const tmpfs = path.join(dir, 'small-disk');
    await mkdir(tmpfs);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', tmpfs]);
    try {
      const files = Array.from({ length: 150 }, (_, i) => ({ name: `output/d/f${String(i).padStart(3, '0')}`, type: 'file' as const, body: randomBytes(10 * 1024) }));
      const archive = await tarOf([{ name: 'output/', type: 'directory' }, { name: 'output/d/', type: 'directory' }, ...files, { name: 'output/big.bin', type: 'file', body: randomBytes(3 * 1024 * 1024) }]);
      const result = await collectOutputs(archive, tmpfs, { maxFileBytes: 1024 ** 3 });
      expect(result.complete).toBe(false);
      expect(result.error).toMatch(/^ENOSPC/);
      const onDisk = (await readdir(path.join(tmpfs, 'd'))).sort();
      expect(onDisk.filter((n) => n.endsWith('.vbe-partial'))).toEqual([]);
      expect(result.files.map((f) => f.path)).toEqual(onDisk.map((n) => `d/${n}`));
      expect(result.fileCount).toBe(onDisk.length);
      expect(result.fileCount).toBeGreaterThan(10);
      expect(result.fileCount).toBeLessThan(150);
      for (const name of onDisk) expect((await stat(path.join(tmpfs, 'd', name))).size).toBe(10 * 1024);
    } finally {
      execFileSync('umount', [tmpfs]);
      await rm(tmpfs, { recursive: true, force: true });
    }
  });
});
