import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tarStream from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TarEntryHeader, TarFormatError, TarReader } from '../../src/staging/tarReader.js';

interface ReadEntry {
  header: TarEntryHeader;
  data: Buffer;
}

/** Reads `archive` pushed in pieces of `pieceBytes`; every member with its data. */
function readAll(archive: Buffer, pieceBytes: number): { entries: ReadEntry[]; ended: boolean } {
  const entries: ReadEntry[] = [];
  let chunks: Buffer[] = [];
  let open: TarEntryHeader | undefined;
  const reader = new TarReader({
    entry(header) {
      open = { ...header };
      chunks = [];
      // Views are valid only during the call: copy, as a careless handler would not.
      return (data) => chunks.push(Buffer.from(data));
    },
    entryEnd() {
      entries.push({ header: open!, data: Buffer.concat(chunks) });
      open = undefined;
    },
  });
  for (let i = 0; i < archive.length; i += pieceBytes) {
    // A reused buffer, as the engine download hands them on: overwritten after each push.
    const piece = Buffer.from(archive.subarray(i, i + pieceBytes));
    reader.push(piece);
    piece.fill(0xee);
  }
  reader.end();
  return { entries, ended: reader.ended };
}

async function pack(entries: Array<Partial<tarStream.Header> & { name: string; body?: Buffer }>): Promise<Buffer> {
  const p = tarStream.pack();
  for (const { body, ...header } of entries) p.entry({ mode: 0o644, ...header } as tarStream.Header, body ?? Buffer.alloc(0));
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of p as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

const longName = `output/${'deep/'.repeat(40)}file-${'x'.repeat(120)}.bin`;
const unicodeName = 'output/résultats/预测.jsonl';

describe('TarReader', () => {
  it('reads members, long (PAX) and non-ASCII names, modes and link targets, whatever the split', async () => {
    const big = randomBytes(70_001);
    const archive = await pack([
      { name: 'output/', type: 'directory', mode: 0o755 },
      { name: 'output/a.txt', body: Buffer.from('hello\n') },
      { name: longName, body: big, mode: 0o755 },
      { name: unicodeName, body: Buffer.from('{"x":1}\n') },
      { name: 'output/empty', body: Buffer.alloc(0) },
      { name: 'output/link', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'output/hard', type: 'link', linkname: 'output/a.txt' },
    ]);
    for (const piece of [1, 7, 511, 512, 513, 4096, archive.length]) {
      const { entries, ended } = readAll(archive, piece);
      expect(ended).toBe(true);
      expect(entries.map((e) => [e.header.name, e.header.type, e.header.size])).toEqual([
        ['output/', 'directory', 0],
        ['output/a.txt', 'file', 6],
        [longName, 'file', big.length],
        [unicodeName, 'file', 8],
        ['output/empty', 'file', 0],
        ['output/link', 'symlink', 0],
        ['output/hard', 'link', 0],
      ]);
      expect(entries[1]!.data.toString()).toBe('hello\n');
      expect(entries[2]!.data.equals(big)).toBe(true);
      expect(entries[2]!.header.mode & 0o777).toBe(0o755);
      expect(entries[5]!.header.linkname).toBe('/etc/passwd');
      expect(entries[6]!.header.linkname).toBe('output/a.txt');
    }
  });

  describe('archives written by GNU tar', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'vbe-tarreader-'));
      const deep = path.join(dir, 'output', ...Array.from({ length: 6 }, (_, i) => `level-${i}-of-a-long-path`));
      await mkdir(deep, { recursive: true });
      await writeFile(path.join(deep, 'data.bin'), Buffer.from('deep data'));
      await writeFile(path.join(dir, 'output', `${'n'.repeat(150)}.txt`), Buffer.from('long leaf'));
      await symlink(`../${'t'.repeat(130)}`, path.join(dir, 'output', 'far-link'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it.each(['gnu', 'ustar', 'pax'])('--format=%s: long names and link targets come out whole', (format) => {
      // ustar cannot hold some of these names: tar says so (exit status 2) and archives the rest.
      const archive = spawnSync('tar', ['-c', `--format=${format}`, '-C', dir, 'output'], { maxBuffer: 16 * 1024 * 1024 }).stdout;
      expect(archive.length).toBeGreaterThan(2048);
      const { entries } = readAll(archive, 1000);
      const files = entries.filter((e) => e.header.type === 'file');
      const deep = files.find((e) => e.header.name.endsWith('/data.bin'))!;
      expect(deep.header.name.length).toBeGreaterThan(100); // over ustar's name field: prefix, PAX or GNU record
      expect(deep.header.name.split('/')).toHaveLength(8);
      expect(deep.data.toString()).toBe('deep data');
      if (format !== 'ustar') {
        // ustar cannot hold a 154-byte leaf name or a 133-byte link target: tar leaves them out.
        expect(files.find((e) => e.header.name === `output/${'n'.repeat(150)}.txt`)?.data.toString()).toBe('long leaf');
        expect(entries.find((e) => e.header.name === 'output/far-link')?.header.linkname).toBe(`../${'t'.repeat(130)}`);
      }
    });
  });

  it('reads a base-256 size field', async () => {
    const archive = await pack([{ name: 'output/five', body: Buffer.from('12345') }]);
    // Rewrite the size field (offset 124, 12 bytes) as base-256 and fix the checksum.
    archive.fill(0, 124, 136);
    archive[124] = 0x80;
    archive[135] = 5;
    archive.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += archive[i]!;
    archive.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    const { entries } = readAll(archive, 100);
    expect(entries[0]!.header.size).toBe(5);
    expect(entries[0]!.data.toString()).toBe('12345');
  });

  it('a damaged header or a cut archive is an error, not a short result', async () => {
    const archive = await pack([{ name: 'output/a', body: randomBytes(2000) }, { name: 'output/b', body: Buffer.from('b') }]);
    const damaged = Buffer.from(archive);
    damaged[2560 + 10] = damaged[2560 + 10]! ^ 0xff; // inside the second header's name
    expect(() => readAll(damaged, 512)).toThrow(TarFormatError);
    expect(() => readAll(damaged, 512)).toThrow(/checksum/);
    expect(() => readAll(archive.subarray(0, 1500), 512)).toThrow(/ends in the middle of a member/);
    expect(() => readAll(Buffer.from('this is not a tar archive'.padEnd(512, '!')), 512)).toThrow(TarFormatError);
  });

  it('skips the data of members the handler does not take', async () => {
    const archive = await pack([
      { name: 'output/skip', body: randomBytes(3000) },
      { name: 'output/keep', body: Buffer.from('kept') },
    ]);
    const kept: string[] = [];
    const reader = new TarReader({
      entry: (header) => (header.name.endsWith('keep') ? (data) => kept.push(data.toString()) : undefined),
      entryEnd: () => undefined,
    });
    reader.push(archive);
    reader.end();
    expect(kept.join('')).toBe('kept');
  });
});
