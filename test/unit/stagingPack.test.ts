import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execFileSync } from 'node:child_process';
import tarStream from 'tar-stream';
import { beforeEach, describe, expect, it } from 'vitest';
import { VbeError } from '../../src/errors.js';
import type { TransferProgress } from '../../src/jobs/transferProgress.js';
import type { CreatedContainer } from '../../src/runtime/containerEngine.js';
import { resolveInputs, resolveModelDir } from '../../src/staging/resolveLocations.js';
import { stageInputs } from '../../src/staging/stageInputs.js';
import { packStaging } from '../../src/staging/tarPacker.js';

interface Unpacked {
  header: tarStream.Header;
  body: Buffer;
}

async function unpack(archive: AsyncIterable<Buffer> | Readable): Promise<Unpacked[]> {
  const extract = tarStream.extract();
  const source = archive instanceof Readable ? archive : Readable.from(archive);
  pipeline(source, extract as unknown as NodeJS.WritableStream).catch((error: unknown) => extract.destroy(error as Error));
  const out: Unpacked[] = [];
  for await (const entry of extract as AsyncIterable<NodeJS.ReadableStream & AsyncIterable<Buffer> & { header: tarStream.Header }>) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk);
    out.push({ header: entry.header, body: Buffer.concat(chunks) });
  }
  return out;
}

/** A container whose putArchive unpacks what it is sent. */
function fakeContainer(): { container: CreatedContainer; received: Promise<Unpacked[]>; destination: () => string | undefined } {
  let resolve!: (value: Unpacked[]) => void;
  let reject!: (error: unknown) => void;
  const received = new Promise<Unpacked[]>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  received.catch(() => undefined);
  let destination: string | undefined;
  const container = {
    async putArchive(tar: Readable, dest: string) {
      destination = dest;
      try {
        resolve(await unpack(tar));
      } catch (error) {
        reject(error);
        throw error;
      }
    },
  } as unknown as CreatedContainer;
  return { container, received, destination: () => destination };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vbe-pack-'));
});

const ref = (text: string, field = '--input[0]') => ({ text, baseDir: dir, field });

describe('packStaging: the tar stream of staged files', () => {
  it('writes every file under its container path, root-owned, 0644 plus execute bits, with the bytes and stats of the file', async () => {
    const long = `${'d'.repeat(90)}/${'e'.repeat(90)}/${'f'.repeat(60)}.bin`; // over 100 bytes: ustar prefix
    const veryLong = `${'g'.repeat(120)}/${'h'.repeat(120)}`; // no 100-byte tail: PAX path
    const files: Record<string, Buffer> = {
      'data/a.jsonl': Buffer.from('{"a":1}\n'),
      'data/empty.txt': Buffer.alloc(0),
      'data/block.bin': randomBytes(512),
      'data/run.sh': Buffer.from('#!/bin/sh\necho hi\n'),
      'data/naïve-ünïcode.txt': Buffer.from('u'),
      [`data/${long}`]: randomBytes(3000),
      [`data/${veryLong}`]: randomBytes(10),
      'data/big.bin': randomBytes(1024 * 1024 * 2 + 777), // over the 1 MiB piece size
      'data/exact.bin': randomBytes(1024 * 1024), // exactly one piece
    };
    for (const [name, body] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
      await writeFile(path.join(dir, name), body);
    }
    await chmod(path.join(dir, 'data/run.sh'), 0o750);
    const inputs = await resolveInputs([ref('data')], dir);
    const entries = await unpack(packStaging(inputs.groups, ['/vbe/output', '/gcs/bkt/preds']));

    expect(entries.slice(0, 5).map((e) => [e.header.name, e.header.type, (e.header.mode ?? 0).toString(8)])).toEqual([
      ['vbe/', 'directory', '755'],
      ['vbe/output/', 'directory', '777'],
      ['gcs/', 'directory', '755'],
      ['gcs/bkt/', 'directory', '755'],
      ['gcs/bkt/preds/', 'directory', '777'],
    ]);
    const staged = entries.slice(5);
    // Only the files: their parent directories are created by the engine (root, 0755), as before.
    expect(staged.map((e) => e.header.name)).toEqual(inputs.files.map((f) => f.containerPath.slice(1)));
    expect(staged.map((e) => e.header.name).sort()).toEqual(Object.keys(files).map((f) => `vbe/inputs/${f}`).sort());
    for (const e of staged) {
      const name = e.header.name.slice('vbe/inputs/'.length);
      expect(e.body.equals(files[name]!), name).toBe(true);
      expect(e.header.type).toBe('file');
      expect(e.header.size).toBe(files[name]!.length);
      expect(e.header.uid).toBe(0);
      expect(e.header.gid).toBe(0);
      expect(e.header.mode, name).toBe(name === 'data/run.sh' ? 0o754 : 0o644); // 0644 | the execute bits of 0750
      expect(Math.abs(e.header.mtime!.getTime() - Date.now())).toBeLessThan(60_000);
    }
  });

  it('a model directory: symlinks to files staged as the files, links to directories and FIFOs skipped, nothing listed per file', async () => {
    const model = path.join(dir, 'model');
    await mkdir(path.join(model, 'sub'), { recursive: true });
    await mkdir(path.join(dir, 'elsewhere'));
    await writeFile(path.join(dir, 'elsewhere/w.bin'), 'weights');
    await writeFile(path.join(model, 'sub/b.txt'), 'bb');
    await writeFile(path.join(model, 'a.txt'), 'a');
    await symlink(path.join(dir, 'elsewhere/w.bin'), path.join(model, 'w.bin'));
    await symlink(path.join(dir, 'elsewhere'), path.join(model, 'linked-dir'));
    await symlink(path.join(dir, 'missing'), path.join(model, 'dangling'));
    execFileSync('mkfifo', [path.join(model, 'pipe')]);

    const resolved = await resolveModelDir(ref('model', '--model-dir'), dir);
    expect(resolved).not.toHaveProperty('files');
    expect(resolved.fileCount).toBe(3);
    expect(resolved.totalBytes).toBe(1 + 2 + 7);
    expect(resolved.envValue).toBe('/vbe/model');
    const entries = await unpack(packStaging(resolved.groups));
    expect(entries.map((e) => [e.header.name, e.body.toString()])).toEqual([
      ['vbe/model/a.txt', 'a'],
      ['vbe/model/sub/b.txt', 'bb'],
      ['vbe/model/w.bin', 'weights'],
    ]);
  });

  it('a file that disappeared or shrank after it was listed fails the stream with a message naming it', async () => {
    await mkdir(path.join(dir, 'm'));
    await writeFile(path.join(dir, 'm/gone.bin'), 'x');
    await writeFile(path.join(dir, 'm/shrunk.bin'), randomBytes(4096));
    const resolved = await resolveModelDir(ref('m', '--model-dir'), dir);

    await rm(path.join(dir, 'm/gone.bin'));
    let error = (await unpack(packStaging(resolved.groups)).catch((e: unknown) => e)) as VbeError;
    expect(error).toBeInstanceOf(VbeError);
    expect(error.code).toBe('INPUT_UNREADABLE');
    expect(error.message).toContain(`--model-dir: cannot read "${path.join(dir, 'm/gone.bin')}"`);

    await writeFile(path.join(dir, 'm/gone.bin'), 'x');
    await truncate(path.join(dir, 'm/shrunk.bin'), 100);
    error = (await unpack(packStaging(resolved.groups)).catch((e: unknown) => e)) as VbeError;
    expect(error.code).toBe('INPUT_CHANGED');
    expect(error.message).toContain(`"${path.join(dir, 'm/shrunk.bin')}" changed while it was being staged`);
  });
});

describe('stageInputs: progress and errors', () => {
  it('reports stage progress up to the totals, then done', async () => {
    await mkdir(path.join(dir, 'data'));
    for (let i = 0; i < 300; i++) await writeFile(path.join(dir, `data/f${i}.txt`), `file ${i}\n`);
    await writeFile(path.join(dir, 'data/big.bin'), randomBytes(3 * 1024 * 1024 + 5));
    const inputs = await resolveInputs([ref('data')], dir);
    const events: TransferProgress[] = [];
    const { container, received, destination } = fakeContainer();
    await stageInputs(container, inputs.groups, ['/vbe/output'], (e) => events.push(e));
    expect(destination()).toBe('/');
    expect((await received).filter((e) => e.header.type === 'file')).toHaveLength(301);

    const stage = events.filter((e): e is Extract<TransferProgress, { doneBytes: number }> => e.kind === 'stage');
    expect(stage.length).toBeGreaterThan(2);
    for (const e of stage) {
      expect(e.totalBytes).toBe(inputs.totalBytes);
      expect(e.totalFiles).toBe(301);
    }
    for (let i = 1; i < stage.length; i++) {
      expect(stage[i]!.doneBytes).toBeGreaterThanOrEqual(stage[i - 1]!.doneBytes);
      expect(stage[i]!.doneFiles).toBeGreaterThanOrEqual(stage[i - 1]!.doneFiles);
    }
    expect(stage.at(-1)).toEqual({ kind: 'stage', doneBytes: inputs.totalBytes, totalBytes: inputs.totalBytes, doneFiles: 301, totalFiles: 301 });
    expect(events.at(-1)).toEqual({ kind: 'done', of: 'stage' });
  });

  it("the packer's own error (naming the file) wins over the engine's view of the aborted upload", async () => {
    await mkdir(path.join(dir, 'm'));
    await writeFile(path.join(dir, 'm/a.bin'), 'a');
    const resolved = await resolveModelDir(ref('m', '--model-dir'), dir);
    await rm(path.join(dir, 'm/a.bin'));
    const events: TransferProgress[] = [];
    const container = {
      async putArchive(tar: Readable) {
        await unpack(tar).catch(() => undefined);
        throw new Error('engine: upload aborted');
      },
    } as unknown as CreatedContainer;
    const error = (await stageInputs(container, resolved.groups, [], (e) => events.push(e)).catch((e: unknown) => e)) as VbeError;
    expect(error.code).toBe('INPUT_UNREADABLE');
    expect(error.message).toContain('a.bin');
    expect(events.at(-1)).toEqual({ kind: 'done', of: 'stage' });
  });
});
