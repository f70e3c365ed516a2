import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUSYBOX, CLI, docker, runVbe, tempDir } from '../helpers/engine.js';

const exec = promisify(execFile);
const REGISTRY = '127.0.0.1:5000';

/** Runs the CLI on a real pseudo-terminal (util-linux `script`) and returns what the terminal showed. */
async function runOnTerminal(args: string[]): Promise<{ code: number; screen: string }> {
  const quoted = [process.execPath, CLI, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  try {
    const { stdout } = await exec('script', ['-qfec', quoted, '/dev/null'], { env: { ...process.env, TERM: 'xterm', COLUMNS: '160' }, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, screen: stdout };
  } catch (error) {
    const e = error as { code?: number; stdout?: string };
    return { code: e.code ?? -1, screen: e.stdout ?? '' };
  }
}

describe('terminal progress', () => {
  let work: string;
  const tag = `p${Date.now()}`;
  const ref = `${REGISTRY}/vbe-test/progress:${tag}`;

  beforeAll(async () => {
    work = await tempDir();
    const context = path.join(work, 'image');
    await exec('mkdir', ['-p', context]);
    // A layer of incompressible bytes, so the registry reports download progress for it.
    await writeFile(path.join(context, 'blob.bin'), randomBytes(8 * 1024 * 1024));
    await writeFile(path.join(context, 'Dockerfile'), `FROM ${BUSYBOX}\nCOPY blob.bin /blob.bin\n`);
    await docker('build', '-q', '-t', ref, context);
    await docker('push', ref);
    await docker('rmi', ref); // so the pull below downloads the new layer
    await writeFile(path.join(work, 'in.bin'), randomBytes(3 * 1024 * 1024));
  }, 120_000);

  afterAll(async () => {
    await docker('rmi', '-f', ref).catch(() => undefined);
  });

  const jobArgs = (out: string) => [
    'run', '--image', ref, '--pull', 'always', '--input', path.join(work, 'in.bin'), '--output', path.join(work, out),
    '--machine-type', 'n1-standard-2', '--command', 'sh', '--command', '-c',
    '--command', 'head -c 2097152 /blob.bin > "$AIP_BATCH_OUTPUT_DIR/out.bin"',
  ];

  it('on a terminal: bars for the pull by layer, staging and collection, and one line per finished phase', async () => {
    const { code, screen } = await runOnTerminal(jobArgs('tty'));
    expect(code, screen).toBe(0);
    expect(screen).toContain('\u001b[?25l'); // the bars hid the cursor ...
    expect(screen).toContain('\u001b[?25h'); // ... and gave it back
    expect(screen).toMatch(new RegExp(`› pulled ${ref.replaceAll('.', '\\.')}: [1-9]\\d* layer\\(s\\), [\\d.]+ MiB downloaded in`));
    expect(screen).toMatch(/› staged 1 file\(s\), 3\.0 MiB in [\d.]+s/);
    expect(screen).toMatch(/› collected 1 file\(s\), 2\.0 MiB in [\d.]+s/);
    expect(screen).toContain('JOB_STATE_SUCCEEDED');
    expect(await readFile(path.join(work, 'tty', 'out.bin'))).toHaveLength(2 * 1024 * 1024);
  }, 120_000);

  it('piped, or on a terminal with --no-progress: no bars, no escape codes, no transfer lines', async () => {
    const piped = await runVbe(jobArgs('piped'), { FORCE_COLOR: '0' });
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stderr).not.toContain('\u001b[');
    expect(piped.stderr).not.toMatch(/› (pulled|staged|collected) /);
    const off = await runOnTerminal([...jobArgs('off'), '--no-progress']);
    expect(off.code, off.screen).toBe(0);
    expect(off.screen).not.toContain('\u001b[?25l');
    expect(off.screen).not.toMatch(/› (staged|collected) /);
  }, 120_000);
});
