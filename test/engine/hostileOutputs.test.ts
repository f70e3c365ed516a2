import { mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runJob } from '../../src/index.js';
import { BUSYBOX, PYTHON_BASE, runVbe, tempDir } from '../helpers/engine.js';

/** Real containers writing hostile output trees: every one ends in a job result with a record, never exit 3. */

const sh = (script: string) => ({ command: ['sh', '-c', script] });

describe('hostile output trees, through the real engine', () => {
  let work: string;
  let input: string;
  beforeAll(async () => {
    work = await tempDir();
    input = path.join(work, 'in.jsonl');
    await writeFile(input, '{"id": 1}\n');
  });

  it('255-byte names, non-UTF-8 names, a file and a symlink already in --output: refused entries, the rest copied, exit 0', async () => {
    const out = path.join(work, 'mixed');
    const outside = path.join(work, 'outside');
    await mkdir(out, { recursive: true });
    await mkdir(outside);
    await writeFile(path.join(out, 'sub'), 'a file the host already had');
    await symlink(outside, path.join(out, 'trap'));
    const long = 'n'.repeat(255);
    const script = [
      'cd $AIP_BATCH_OUTPUT_DIR',
      `echo long > ${long}`,
      `printf ff > "$(printf '\\377')"`,
      `mkdir "$(printf '\\376')" && echo in > "$(printf '\\376')/in"`,
      'mkdir sub && echo s > sub/file',
      'mkdir -p trap/deep && echo x > trap/deep/x',
      'i=0; while [ $i -lt 20 ]; do ln -s /etc/passwd l$i; i=$((i+1)); done',
      'echo ok > ok.txt',
    ].join(' && ');
    const result = await runVbe(['run', '--image', BUSYBOX, '--input', input, '--output', out, '--quiet', '--json', '--command', 'sh', '--command', '-c', '--command', script]);
    expect(result.code, result.stderr).toBe(0);
    const job = JSON.parse(result.stdout);
    expect(job.state).toBe('JOB_STATE_SUCCEEDED');
    expect(job.emulator.outputs.fileCount).toBe(2);
    expect(job.emulator.outputs.files.map((f: { path: string }) => f.path).sort()).toEqual([long, 'ok.txt']);
    expect(job.emulator.outputs.refusedCount).toBe(20 + 8);
    const refused = Object.fromEntries(job.emulator.outputs.refused.map((r: { path: string; reason: string }) => [r.path, r.reason]));
    expect(refused['\\xff']).toMatch(/not valid UTF-8/);
    expect(refused['\\xfe']).toMatch(/not valid UTF-8/);
    expect(refused['\\xfe/in']).toMatch(/not valid UTF-8/);
    expect(refused.sub).toMatch(/is a file already in the output directory/);
    expect(refused['sub/file']).toMatch(/is a file already in the output directory/);
    expect(refused.trap).toMatch(/symbolic link already in the output directory/);
    expect(refused['trap/deep/x']).toMatch(/symbolic link already in the output directory/);
    expect(job.emulator.diagnoses.find((d: { code: string }) => d.code === 'OUTPUT_REFUSED').message).toMatch(/^28 entries/);
    expect(await readFile(path.join(out, long), 'utf8')).toBe('long\n');
    expect(await readdir(outside)).toEqual([]);
    expect(await readFile(path.join(out, 'sub'), 'utf8')).toBe('a file the host already had');
  });

  it('a container that deletes its own output directory: a failed job with a record (exit 1), not an engine error', async () => {
    const out = path.join(work, 'deleted');
    const result = await runVbe(['run', '--image', BUSYBOX, '--input', input, '--output', out, '--quiet', '--json', '--command', 'sh', '--command', '-c', '--command', 'echo x > $AIP_BATCH_OUTPUT_DIR/x && rm -rf $AIP_BATCH_OUTPUT_DIR']);
    expect(result.code, result.stderr).toBe(1);
    const job = JSON.parse(result.stdout);
    expect(job.state).toBe('JOB_STATE_FAILED');
    expect(job.emulator.outputs.refused).toEqual([{ path: '.', reason: expect.stringContaining('the container removed it') }]);
    expect(JSON.parse(await readFile(path.join(out, '.vbe/job.json'), 'utf8')).state).toBe('JOB_STATE_FAILED');
  });

  it('300,000 files created in /tmp: the filesystem diff is read as it arrives, not whole (heap stays flat)', async () => {
    let peak = 0;
    const base = process.memoryUsage().heapUsed;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed - base)), 20);
    try {
      const job = await runJob({
        image: PYTHON_BASE,
        inputs: [input],
        output: path.join(work, 'tmpfiles'),
        command: ['python3', '-c', "import os\nfor i in range(300000): open('/tmp/f%d' % i, 'w').close()\nopen(os.environ['AIP_BATCH_OUTPUT_DIR'] + '/ok', 'w').write('ok')"],
      });
      expect(job.state).toBe('JOB_STATE_SUCCEEDED');
    } finally {
      clearInterval(sampler);
    }
    // Read whole, the diff's ~13 MB of JSON became ~300,000 objects: well over 60 MB of heap.
    expect(peak).toBeLessThan(40 * 1024 * 1024);
  }, 300_000);
});
