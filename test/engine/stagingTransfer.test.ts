import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runJob } from '../../src/index.js';
import type { TransferProgress } from '../../src/jobs/transferProgress.js';
import { BUSYBOX, tempDir } from '../helpers/engine.js';

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

describe('staging and collection against a real engine: layout, modes, bytes, progress', () => {
  let work: string;
  beforeAll(async () => {
    work = await tempDir();
  });

  it('stages inputs and a model directory with the same paths, owners and modes as before, and reports both transfers', async () => {
    const inDir = path.join(work, 'in');
    const model = path.join(work, 'model');
    await mkdir(path.join(inDir, 'nested'), { recursive: true });
    await mkdir(path.join(model, 'sub/deeper'), { recursive: true });
    const big = randomBytes(5 * 1024 * 1024 + 123);
    await writeFile(path.join(inDir, 'nested/big.bin'), big);
    await writeFile(path.join(inDir, 'a.jsonl'), '{"a":1}\n');
    await writeFile(path.join(model, 'weights.bin'), randomBytes(70_000));
    await writeFile(path.join(model, 'run.sh'), '#!/bin/sh\n');
    await chmod(path.join(model, 'run.sh'), 0o700);
    await writeFile(path.join(work, 'outside.txt'), 'linked');
    await symlink(path.join(work, 'outside.txt'), path.join(model, 'sub/deeper/link.txt'));
    for (let i = 0; i < 200; i++) await writeFile(path.join(model, 'sub', `s${i}.txt`), `${i}\n`);

    const events: TransferProgress[] = [];
    const out = path.join(work, 'out');
    const job = await runJob(
      {
        image: BUSYBOX,
        inputs: [inDir],
        modelDir: model,
        output: out,
        command: ['sh', '-c'],
        args: [
          'cd / && for p in /vbe /vbe/inputs /vbe/inputs/in /vbe/inputs/in/nested /vbe/inputs/in/nested/big.bin /vbe/inputs/in/a.jsonl /vbe/model /vbe/model/run.sh /vbe/model/weights.bin /vbe/model/sub /vbe/model/sub/deeper/link.txt /vbe/output; do stat -c "%n %u %g %a %F" $p; done > "$AIP_BATCH_OUTPUT_DIR/stat.txt"; ' +
            'md5sum /vbe/inputs/in/nested/big.bin > "$AIP_BATCH_OUTPUT_DIR/md5.txt"; cat /vbe/model/sub/deeper/link.txt > "$AIP_BATCH_OUTPUT_DIR/link.txt"; ls /vbe/model/sub | wc -l > "$AIP_BATCH_OUTPUT_DIR/count.txt"; ' +
            'echo "$AIP_BATCH_INPUT_URIS" > "$AIP_BATCH_OUTPUT_DIR/uris.txt"; echo "$AIP_MODEL_DIR" > "$AIP_BATCH_OUTPUT_DIR/model.txt"; cp /vbe/inputs/in/nested/big.bin "$AIP_BATCH_OUTPUT_DIR/big-copy.bin"',
        ],
      },
      { onTransfer: (e) => events.push(e) },
    );
    expect(job.state, JSON.stringify(job.emulator.logTail)).toBe('JOB_STATE_SUCCEEDED');

    expect((await readFile(path.join(out, 'stat.txt'), 'utf8')).trim().split('\n')).toEqual([
      '/vbe 0 0 755 directory',
      '/vbe/inputs 0 0 755 directory',
      '/vbe/inputs/in 0 0 755 directory',
      '/vbe/inputs/in/nested 0 0 755 directory',
      '/vbe/inputs/in/nested/big.bin 0 0 644 regular file',
      '/vbe/inputs/in/a.jsonl 0 0 644 regular file',
      '/vbe/model 0 0 755 directory',
      '/vbe/model/run.sh 0 0 744 regular file',
      '/vbe/model/weights.bin 0 0 644 regular file',
      '/vbe/model/sub 0 0 755 directory',
      '/vbe/model/sub/deeper/link.txt 0 0 644 regular file',
      '/vbe/output 0 0 777 directory',
    ]);
    expect((await readFile(path.join(out, 'md5.txt'), 'utf8')).split(' ')[0]).toBe(md5(big));
    expect(await readFile(path.join(out, 'link.txt'), 'utf8')).toBe('linked');
    expect((await readFile(path.join(out, 'count.txt'), 'utf8')).trim()).toBe('201'); // 200 files and deeper/
    expect((await readFile(path.join(out, 'uris.txt'), 'utf8')).trim()).toBe('/vbe/inputs/in/a.jsonl,/vbe/inputs/in/nested/big.bin');
    expect((await readFile(path.join(out, 'model.txt'), 'utf8')).trim()).toBe('/vbe/model');
    expect(md5(await readFile(path.join(out, 'big-copy.bin')))).toBe(md5(big));
    expect(job.emulator.inputs.fileCount).toBe(2);

    const stage = events.filter((e): e is Extract<TransferProgress, { doneBytes: number }> => e.kind === 'stage');
    const modelBytes = 70_000 + 10 + 6 + Array.from({ length: 200 }, (_, i) => `${i}\n`.length).reduce((a, b) => a + b, 0);
    const stagedBytes = big.length + 8 + modelBytes;
    expect(stage.at(-1)).toEqual({ kind: 'stage', doneBytes: stagedBytes, totalBytes: stagedBytes, doneFiles: 2 + 203, totalFiles: 2 + 203 });
    const collect = events.filter((e): e is Extract<TransferProgress, { doneBytes: number }> => e.kind === 'collect');
    expect(collect.at(-1)).toEqual({ kind: 'collect', doneBytes: job.emulator.outputs.totalBytes, doneFiles: job.emulator.outputs.fileCount });
    expect(job.emulator.outputs.fileCount).toBe(7);
    const done = events.filter((e) => e.kind === 'done').map((e) => (e as { of: string }).of);
    expect(done.indexOf('stage')).toBeLessThan(done.indexOf('collect'));
    // Every stage event comes before the stage's done, every collect event after it.
    const stageDone = events.findIndex((e) => e.kind === 'done' && e.of === 'stage');
    expect(events.findLastIndex((e) => e.kind === 'stage')).toBeLessThan(stageDone);
    expect(events.findIndex((e) => e.kind === 'collect')).toBeGreaterThan(stageDone);
  });

  it('Ctrl-C while outputs are copied back stops the copy: CANCELLED, the files listed are whole, no partial file', async () => {
    const out = path.join(work, 'cancelled-collect');
    const input = path.join(work, 'cancel-input.jsonl');
    await writeFile(input, '{}\n');
    const controller = new AbortController();
    const job = await runJob(
      {
        image: BUSYBOX,
        inputs: [input],
        output: out,
        command: ['sh', '-c'],
        args: ['i=0; while [ $i -lt 300 ]; do head -c 1048576 /dev/zero > "$AIP_BATCH_OUTPUT_DIR/f$i.bin"; i=$((i+1)); done'],
      },
      {
        signal: controller.signal,
        onTransfer: (e) => {
          if (e.kind === 'collect' && e.doneFiles >= 5) controller.abort();
        },
      },
    );
    expect(job.state).toBe('JOB_STATE_CANCELLED');
    const onDisk = (await readdir(out)).filter((n) => n !== '.vbe');
    expect(onDisk.filter((n) => n.endsWith('.vbe-partial'))).toEqual([]);
    expect(onDisk.length).toBeGreaterThanOrEqual(5);
    expect(onDisk.length).toBeLessThan(300);
    expect(job.emulator.outputs).toMatchObject({ complete: false, fileCount: onDisk.length });
    for (const name of onDisk) expect((await stat(path.join(out, name))).size).toBe(1024 * 1024);
  });
});
