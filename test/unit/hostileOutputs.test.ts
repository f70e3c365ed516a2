import { mkdir, mkdtemp, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { beforeEach, describe, expect, it } from 'vitest';
import type { BodySink } from '../../src/http/responseParser.js';
import { collectOutputs } from '../../src/staging/collectOutputs.js';

/** Output archives a hostile container could make the engine send: every one ends in a result, never an exception. */

interface RawEntry {
  /** The name's bytes, exactly (they need not be UTF-8). */
  name: Buffer | string;
  type?: '0' | '2' | '5';
  body?: Buffer | string;
  linkname?: string;
}

/** One ustar header block for `name` (up to 100 bytes), or a PAX `path` record and a header when it is longer. */
function headerBlocks(name: Buffer, type: string, size: number, linkname = ''): Buffer {
  if (name.length > 100) {
    const body = Buffer.concat([Buffer.from(' path='), name, Buffer.from('\n')]);
    let length = body.length + 1;
    while (String(length).length + body.length !== length) length = String(length).length + body.length;
    const record = Buffer.concat([Buffer.from(String(length)), body]);
    return Buffer.concat([headerBlocks(Buffer.from('PaxHeader'), 'x', record.length), record, Buffer.alloc((512 - (record.length % 512)) % 512), headerBlocks(name.subarray(0, 100), type, size, linkname)]);
  }
  const block = Buffer.alloc(512);
  name.copy(block, 0);
  block.write(type === '5' ? '0000755\0' : '0000644\0', 100, 'latin1');
  block.write('0000000\0', 108, 'latin1');
  block.write('0000000\0', 116, 'latin1');
  block.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  block.write('00000000000\0', 136, 'latin1');
  block.write(type, 156, 'latin1');
  block.write(linkname, 157, 'utf8');
  block.write('ustar\0', 257, 'latin1');
  block.write('00', 263, 'latin1');
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return block;
}

function rawTar(entries: RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const body = Buffer.from(entry.body ?? '');
    parts.push(headerBlocks(Buffer.from(entry.name), entry.type ?? '0', body.length, entry.linkname), body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

const archive = (entries: RawEntry[]) => Readable.from([rawTar(entries)]);
const bytes = (...parts: Array<string | number[]>) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vbe-hostile-'));
});

describe('collection failures are refused entries, never exceptions; the other files are still copied', () => {
  it('a legal 255-byte file name (and 244 to 254) is collected: the temporary name is short', async () => {
    const names = [244, 250, 255].map((n) => 'n'.repeat(n));
    const out = path.join(dir, 'out');
    const result = await collectOutputs(archive([{ name: 'output/', type: '5' }, ...names.map((n) => ({ name: `output/${n}`, body: n }))]), out, { maxFileBytes: 1e9 });
    expect(result).toMatchObject({ complete: true, fileCount: 3, refusedCount: 0 });
    expect(await readFile(path.join(out, names[2]!), 'utf8')).toBe(names[2]);
    expect((await readdir(out)).sort()).toEqual(names);
  });

  it('a path legal in the container but too long once joined to a longer --output is refused (ENAMETOOLONG)', async () => {
    // --output itself 3,000 bytes deep: a 1,200-byte path below it goes past PATH_MAX (4,096).
    let out = dir;
    for (let i = 0; i < 15; i++) out = path.join(out, 'd'.repeat(200));
    const deep = Array.from({ length: 6 }, () => 'e'.repeat(200)).join('/');
    const result = await collectOutputs(archive([{ name: `output/${deep}/x.txt`, body: 'x' }, { name: 'output/ok.txt', body: 'ok' }]), out, { maxFileBytes: 1e9 });
    expect(result).toMatchObject({ complete: true, fileCount: 1, refusedCount: 1, refused: [{ path: `${deep}/x.txt`, reason: expect.stringContaining('ENAMETOOLONG') }] });
    expect(await readFile(path.join(out, 'ok.txt'), 'utf8')).toBe('ok');
  });

  it('an existing file in --output where the container now has a directory, and the reverse', async () => {
    const out = path.join(dir, 'out');
    await mkdir(path.join(out, 'was-dir'), { recursive: true });
    await writeFile(path.join(out, 'was-file'), 'old');
    const result = await collectOutputs(
      archive([
        { name: 'output/was-file/', type: '5' },
        { name: 'output/was-file/x.txt', body: 'x' },
        { name: 'output/was-dir', body: 'now a file' },
        { name: 'output/a/', type: '5' },
        { name: 'output/a', body: 'a file after a directory of that name' },
        { name: 'output/z.txt', body: 'z' },
      ]),
      out,
      { maxFileBytes: 1e9 },
    );
    expect(result.fileCount).toBe(1);
    expect(result.refused.map((r) => r.path)).toEqual(['was-file', 'was-file/x.txt', 'was-dir', 'a']);
    expect(result.refused[0]!.reason).toMatch(/is a file already in the output directory/);
    expect(result.refused[3]!.reason).toMatch(/a directory already exists|EISDIR/);
    expect(await readFile(path.join(out, 'z.txt'), 'utf8')).toBe('z');
    expect(await readFile(path.join(out, 'was-file'), 'utf8')).toBe('old');
  });

  it('non-UTF-8 names are refused byte-exact (two that decode alike never collapse into one); the record says so', async () => {
    const out = path.join(dir, 'out');
    const result = await collectOutputs(
      archive([
        { name: bytes('output/', [0xff], '/'), type: '5' },
        { name: bytes('output/', [0xff], '/in.txt'), body: 'dir' },
        { name: bytes('output/', [0xfe]), body: 'file' },
        { name: bytes('output/', 'x'.repeat(120), [0xc3]), body: 'long (PAX) name' },
        { name: 'output/é.txt', body: 'valid UTF-8 stays' },
      ]),
      out,
      { maxFileBytes: 1e9 },
    );
    expect(result.files.map((f) => f.path)).toEqual(['é.txt']);
    expect(result.refused.map((r) => r.path)).toEqual(['\\xff', '\\xff/in.txt', '\\xfe', `${'x'.repeat(120)}\\xc3`]);
    expect(result.refused.every((r) => r.reason.includes('not valid UTF-8'))).toBe(true);
    expect(await readdir(out)).toEqual(['é.txt']);
  });

  it('a container that removed its own output directory: a refused entry saying so, not an engine error', async () => {
    const result = await collectOutputs(async () => false, path.join(dir, 'out'), { maxFileBytes: 1e9 });
    expect(result).toMatchObject({ complete: true, fileCount: 0, refusedCount: 1, refused: [{ path: '.', reason: expect.stringContaining('removed it') }] });
  });
});

describe('collection never writes where it should not', () => {
  it('a symlink already in --output pointing outside: refused before anything is created through it', async () => {
    const outside = path.join(dir, 'outside');
    const out = path.join(dir, 'out');
    await mkdir(outside);
    await mkdir(out);
    await symlink(outside, path.join(out, 'trap'));
    const result = await collectOutputs(
      archive([
        { name: 'output/trap/', type: '5' },
        { name: 'output/trap/deep/er/x.txt', body: 'x' },
        { name: 'output/trap', body: 'over the link' },
        { name: 'output/ok.txt', body: 'ok' },
      ]),
      out,
      { maxFileBytes: 1e9 },
    );
    expect(result.refused.map((r) => [r.path, r.reason.split(' ').slice(0, 2).join(' ')])).toEqual([
      ['trap', 'parent directory'],
      ['trap/deep/er/x.txt', 'parent directory'],
      ['trap', 'a symbolic'],
    ]);
    expect(await readdir(outside)).toEqual([]);
    expect(result.fileCount).toBe(1);
  });

  it('"." components are normalised before every check: out/./.vbe/... is the reserved record directory', async () => {
    const out = path.join(dir, 'out');
    const result = await collectOutputs(
      archive([
        { name: 'output/./.vbe/job.json', body: '{}' },
        { name: './output/.//.vbe/x', body: '{}' },
        { name: 'output/a/./../../x', body: 'x' },
        { name: 'output/./b/./c.txt', body: 'c' },
      ]),
      out,
      { maxFileBytes: 1e9, reserved: ['.vbe'] },
    );
    expect(result.refused.map((r) => [r.path, r.reason.split(' ')[0]])).toEqual([
      ['.vbe/job.json', '".vbe"'],
      ['.vbe/x', '".vbe"'],
      ['a/../../x', 'path'],
    ]);
    expect(result.files).toEqual([{ path: 'b/c.txt', sizeBytes: 1 }]);
    expect(await readdir(out)).toEqual(['b']);
  });

  it('an archive that comes back to a directory it left is still written (only the current branch is remembered)', async () => {
    const out = path.join(dir, 'out');
    const result = await collectOutputs(
      archive([
        { name: 'output/a/b/', type: '5' },
        { name: 'output/a/b/1', body: '1' },
        { name: 'output/a/c/2', body: '2' },
        { name: 'output/a/b/3', body: '3' },
        { name: 'output/a/b/', type: '5' },
        { name: 'output/a/c', body: 'a file where a directory is' },
      ]),
      out,
      { maxFileBytes: 1e9 },
    );
    expect(result.files.map((f) => f.path)).toEqual(['a/b/1', 'a/c/2', 'a/b/3']);
    expect(result.refused.map((r) => r.path)).toEqual(['a/c']);
  });

  it('the refused list stops at 100 entries; the record has the total', async () => {
    const links = Array.from({ length: 250 }, (_, i) => ({ name: `output/l${i}`, type: '2' as const, linkname: '/etc/passwd' }));
    const result = await collectOutputs(archive(links), path.join(dir, 'out'), { maxFileBytes: 1e9 });
    expect(result.refused).toHaveLength(100);
    expect(result.refusedCount).toBe(250);
  });
});

describe('bounds', () => {
  it('a deadline stops the copy of an endless (refused) file: timedOut, what was whole stays', async () => {
    const head = rawTar([{ name: 'output/a.txt', body: 'a' }]).subarray(0, 1024);
    // A 1 TiB file over the cap: its data is skipped, but would still be read to the end.
    const big = Buffer.alloc(512);
    big.write('output/huge.bin', 0);
    const endless = async (sink: BodySink, signal?: AbortSignal) => {
      const header = headerBlocks(Buffer.from('output/huge.bin'), '0', 0);
      header.write('\x80', 124, 'latin1'); // base-256 size: 2^40
      header.fill(0, 125, 136);
      header[130] = 1;
      header.fill(0x20, 148, 156);
      let sum = 0;
      for (const byte of header) sum += byte;
      header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
      await sink([head, header]);
      const zeros = Buffer.alloc(1024 * 1024);
      while (!signal?.aborted) {
        const wait = sink([zeros]);
        await (wait ?? new Promise((r) => setImmediate(r)));
      }
      signal.throwIfAborted();
    };
    const started = Date.now();
    const result = await collectOutputs(endless, path.join(dir, 'out'), { maxFileBytes: 1e9, deadline: Date.now() + 500 });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(result).toMatchObject({ complete: false, timedOut: true, fileCount: 1, refusedCount: 1, refused: [{ path: 'huge.bin', reason: expect.stringContaining('1099511627776 bytes') }] });
    expect(await readFile(path.join(dir, 'out/a.txt'), 'utf8')).toBe('a');
  });

  it('30,000 directories: memory stays flat (the collector remembers one branch, not every directory)', async () => {
    const entries: RawEntry[] = [];
    for (let k = 0; k < 60; k++) for (let j = 0; j < 500; j++) entries.push({ name: `output/d${k}/e${j}/`, type: '5' }, { name: `output/d${k}/e${j}/f`, body: 'f' });
    const tar = rawTar(entries);
    global.gc?.();
    const before = process.memoryUsage().heapUsed;
    let peak = before;
    const source = async (sink: BodySink) => {
      for (let i = 0; i < tar.length; i += 1024 * 1024) {
        await sink([tar.subarray(i, i + 1024 * 1024)]);
        peak = Math.max(peak, process.memoryUsage().heapUsed);
      }
    };
    const result = await collectOutputs(source, path.join(dir, 'out'), { maxFileBytes: 1e9 });
    expect(result).toMatchObject({ complete: true, fileCount: 30_000, refusedCount: 0 });
    expect(peak - before).toBeLessThan(40 * 1024 * 1024);
  }, 180_000);
});

describe('input names', () => {
  it('an input file whose name is not valid UTF-8 is refused (exit 2) naming it, never silently not staged', async () => {
    const { resolveInputs } = await import('../../src/staging/resolveLocations.js');
    const { writeFileSync } = await import('node:fs');
    const data = path.join(dir, 'data');
    await mkdir(data);
    await writeFile(path.join(data, 'a.jsonl'), '{}\n');
    writeFileSync(Buffer.concat([Buffer.from(`${data}/b-`), Buffer.from([0xff]), Buffer.from('.jsonl')]), '{}\n');
    await expect(resolveInputs([{ text: data, baseDir: dir, field: '--input[0]' }], path.join(dir, 'gcs'))).rejects.toMatchObject({
      code: 'INPUT_NAME_NOT_UTF8',
      exitCode: 2,
      message: expect.stringContaining(`--input[0]: the name of "${data}/b-\uFFFD.jsonl" is not valid UTF-8`),
    });
    // The same through a glob: matched, then refused by name, never dropped.
    await expect(resolveInputs([{ text: `${data}/*.jsonl`, baseDir: dir, field: '--input[0]' }], path.join(dir, 'gcs'))).rejects.toMatchObject({
      code: 'INPUT_NAME_NOT_UTF8',
      message: expect.stringContaining(`the name of "${data}/b-\uFFFD.jsonl" is not valid UTF-8`),
    });
  });
});
