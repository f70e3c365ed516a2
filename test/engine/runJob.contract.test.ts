import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runJob } from '../../src/index.js';
import { BUSYBOX, buildImage, labelled, runVbe, tempDir } from '../helpers/engine.js';

const sh = (script: string) => ({ command: ['sh', '-c', script] });

async function inputFile(dir: string, name = 'items.jsonl', body = '{"id":1}\n'): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, name);
  await writeFile(file, body);
  return file;
}

describe('vbe run against a real engine', () => {
  let work: string;
  beforeAll(async () => {
    work = await tempDir();
  });

  it('gives the container the Vertex environment, gs:// inputs at /gcs, and expands $(VAR) by Vertex rules', async () => {
    const gcsRoot = path.join(work, 'gcs');
    await inputFile(path.join(gcsRoot, 'my-bucket/data'), 'part-0.jsonl');
    const local = await inputFile(path.join(work, 'env-in'), 'local.jsonl');
    const out = path.join(work, 'env-out');
    const job = await runJob({
      image: BUSYBOX,
      inputs: ['gs://my-bucket/data/*.jsonl', local],
      output: out,
      gcsRoot,
      machineType: 'n1-standard-2',
      env: ['GREETING=hello', 'OUT_FILE=$(AIP_BATCH_OUTPUT_DIR)/env.txt', 'LITERAL=$$(AIP_MACHINE_TYPE)', 'UNKNOWN=$(NOT_SET)'],
      ...sh('env > "$OUT_FILE"; cat /gcs/my-bucket/data/part-0.jsonl /vbe/inputs/local.jsonl > "$AIP_BATCH_OUTPUT_DIR/both.jsonl"'),
    });
    expect(job.state).toBe('JOB_STATE_SUCCEEDED');
    const env = Object.fromEntries(
      (await readFile(path.join(out, 'env.txt'), 'utf8')).trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(env.AIP_BATCH_INPUT_URIS).toBe('/gcs/my-bucket/data/part-0.jsonl,/vbe/inputs/local.jsonl');
    expect(env.AIP_BATCH_OUTPUT_DIR).toBe('/vbe/output');
    expect(env.AIP_MACHINE_TYPE).toBe('n1-standard-2');
    expect(env.CLOUD_ML_JOB_ID).toBe(job.emulator.jobId);
    expect(JSON.parse(env.CLUSTER_SPEC!).task).toEqual({ type: 'workerpool0', index: 0 });
    expect(env.GREETING).toBe('hello');
    expect(env.OUT_FILE).toBe('/vbe/output/env.txt');
    expect(env.LITERAL).toBe('$(AIP_MACHINE_TYPE)');
    expect(env.UNKNOWN).toBe('$(NOT_SET)');
    expect(await readFile(path.join(out, 'both.jsonl'), 'utf8')).toBe('{"id":1}\n{"id":1}\n');
    expect(job.name).toMatch(/^projects\/local\/locations\/local\/customJobs\/\d{19}$/);
    expect(job.emulator.userEnvNames).toEqual(['GREETING', 'OUT_FILE', 'LITERAL', 'UNKNOWN']);
    expect(await labelled(`dev.vbe.job-id=${job.emulator.jobId}`)).toEqual({ containers: [], volumes: [] });
  });

  it('copies outputs back byte for byte, nested, for a non-root image user', async () => {
    const image = await buildImage('vbe-test/nonroot:1', `FROM ${BUSYBOX}\nUSER nobody\n`);
    const payload = randomBytes(3 * 1024 * 1024 + 17);
    const inDir = path.join(work, 'bytes-in');
    await mkdir(path.join(inDir, 'nested'), { recursive: true });
    await writeFile(path.join(inDir, 'nested', 'blob.bin'), payload);
    const out = path.join(work, 'bytes-out');
    const job = await runJob({
      image,
      inputs: [inDir],
      output: out,
      ...sh('id -u > "$AIP_BATCH_OUTPUT_DIR/uid"; mkdir -p "$AIP_BATCH_OUTPUT_DIR/a/b" && cp "$AIP_BATCH_INPUT_URIS" "$AIP_BATCH_OUTPUT_DIR/a/b/copy.bin"'),
    });
    expect(job.state).toBe('JOB_STATE_SUCCEEDED');
    expect(job.emulator.inputs.files[0]!.containerPath).toBe('/vbe/inputs/bytes-in/nested/blob.bin');
    expect((await readFile(path.join(out, 'uid'), 'utf8')).trim()).toBe('65534');
    const copy = await readFile(path.join(out, 'a/b/copy.bin'));
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    expect(sha(copy)).toBe(sha(payload));
    expect(job.emulator.outputs.fileCount).toBe(2);
    expect(job.emulator.outputs.totalBytes).toBe(payload.length + 6);
  });

  it('sets the CPU quota from the machine type, capped at the host, visible in the container cgroup', async () => {
    const input = await inputFile(path.join(work, 'cpu-in'));
    const out = path.join(work, 'cpu-out');
    const job = await runJob({
      image: BUSYBOX,
      inputs: [input],
      output: out,
      machineType: 'n1-highcpu-32',
      ...sh(
        'if [ -f /sys/fs/cgroup/cpu.max ]; then cat /sys/fs/cgroup/cpu.max; else echo "$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"; fi > "$AIP_BATCH_OUTPUT_DIR/cpu";' +
          'if [ -f /sys/fs/cgroup/memory.max ]; then cat /sys/fs/cgroup/memory.max; else cat /sys/fs/cgroup/memory/memory.limit_in_bytes; fi > "$AIP_BATCH_OUTPUT_DIR/mem"',
      ),
    });
    expect(job.state).toBe('JOB_STATE_SUCCEEDED');
    const [quota, period] = (await readFile(path.join(out, 'cpu'), 'utf8')).trim().split(/\s+/).map(Number);
    const limits = job.emulator.limits!;
    expect(limits.requested.cpus).toBe(32);
    expect(quota! / period!).toBe(limits.cpus);
    expect(limits.cpus).toBeLessThan(32);
    expect(limits.cappedToHost).toBe(true);
    expect(job.emulator.warnings.join('\n')).toMatch(/n1-highcpu-32 has 32 vCPUs; this Docker host has \d+/);
    expect(Number((await readFile(path.join(out, 'mem'), 'utf8')).trim())).toBe(limits.memoryBytes);
  });

  it('OOM-kills at the machine memory limit with Vertex message', async () => {
    const input = await inputFile(path.join(work, 'oom-in'));
    const job = await runJob({
      image: BUSYBOX,
      inputs: [input],
      output: path.join(work, 'oom-out'),
      machineType: 'e2-highcpu-2', // 2 GiB
      ...sh('tail /dev/zero'), // holds one endless "line" in memory
    });
    expect(job.state).toBe('JOB_STATE_FAILED');
    expect(job.error).toMatchObject({ code: 3 });
    expect(job.error!.message).toMatch(/^The replica workerpool0-0 ran out of memory and exited with a non-zero status of 137\./);
    expect(job.emulator.oomKilled).toBe(true);
    expect(job.emulator.limits!.memoryBytes).toBe(Math.round(1.2 * 1024 ** 3)); // 2 GiB less the 40% Vertex keeps on small machines
    expect(job.emulator.diagnoses.map((d) => d.code)).toContain('OUT_OF_MEMORY');
  });

  it('kills a job at its timeout: FAILED with DEADLINE_EXCEEDED', async () => {
    const input = await inputFile(path.join(work, 'timeout-in'));
    const started = Date.now();
    const job = await runJob({ image: BUSYBOX, inputs: [input], output: path.join(work, 'timeout-out'), timeout: '2s', ...sh('sleep 60') });
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(job.state).toBe('JOB_STATE_FAILED');
    expect(job.error).toEqual({ code: 4, message: 'The job exceeded its timeout of 2.0s and was stopped.' });
    expect(job.emulator.timedOut).toBe(true);
    expect(job.emulator.diagnoses[0]!.code).toBe('TIMEOUT');
    expect(await labelled(`dev.vbe.job-id=${job.emulator.jobId}`)).toEqual({ containers: [], volumes: [] });
  });

  it('a non-zero exit is a FAILED job (CLI exit 1) with Vertex message and the log tail', async () => {
    const input = await inputFile(path.join(work, 'exit-in'));
    const out = path.join(work, 'exit-out');
    const result = await runVbe(['run', '--image', BUSYBOX, '--input', input, '--output', out, '--json', '--command', 'sh', '--command', '-c', '--command', 'echo to-stdout; echo boom >&2; exit 3']);
    expect(result.code).toBe(1);
    const job = JSON.parse(result.stdout);
    expect(job.state).toBe('JOB_STATE_FAILED');
    expect(job.error.message).toMatch(/^The replica workerpool0-0 exited with a non-zero status of 3\. Termination reason: Error\./);
    expect(job.emulator.exitCode).toBe(3);
    expect(await readFile(path.join(out, '.vbe/stderr.log'), 'utf8')).toBe('boom\n');
    expect(await readFile(path.join(out, '.vbe/stdout.log'), 'utf8')).toBe('to-stdout\n');
    expect(JSON.parse(await readFile(path.join(out, '.vbe/job.json'), 'utf8'))).toEqual(job);
    expect(result.stderr).toContain('[stderr] boom');
    expect(result.stderr).toContain('[stdout] to-stdout');
  });

  it('exit 0 with no outputs FAILS, naming the files written outside AIP_BATCH_OUTPUT_DIR', async () => {
    const input = await inputFile(path.join(work, 'noout-in'));
    const job = await runJob({ image: BUSYBOX, inputs: [input], output: path.join(work, 'noout-out'), ...sh('mkdir -p /data && echo "{}" > /data/output.json && echo scratch > /tmp/x') });
    expect(job.state).toBe('JOB_STATE_FAILED');
    expect(job.error!.message).toContain('wrote no output files to AIP_BATCH_OUTPUT_DIR (/vbe/output)');
    const outside = job.emulator.diagnoses.find((d) => d.code === 'OUTPUT_OUTSIDE_OUTPUT_DIR');
    expect(outside?.severity).toBe('error');
    expect(outside?.evidence).toEqual(['/data/output.json']);
  });

  it('copies back only regular files and directories: links, FIFOs and climbing names are refused', async () => {
    const input = await inputFile(path.join(work, 'hostile-in'));
    const out = path.join(work, 'hostile-out');
    const job = await runJob({
      image: BUSYBOX,
      inputs: [input],
      output: out,
      ...sh('cd "$AIP_BATCH_OUTPUT_DIR" && echo ok > good.txt && ln -s /etc/passwd leak && ln -s ../../../../etc escape && mkfifo pipe && echo big > big.bin'),
      maxOutputFileBytes: 3,
    });
    expect(job.state).toBe('JOB_STATE_SUCCEEDED');
    expect((await readdir(out)).sort()).toEqual(['.vbe', 'good.txt']);
    const refused = job.emulator.outputs.refused.map((r) => r.path).sort();
    expect(refused).toEqual(['big.bin', 'escape', 'leak', 'pipe']);
    expect(job.emulator.diagnoses.map((d) => d.code)).toContain('OUTPUT_REFUSED');
  });

  it('runs a job from a Vertex-shaped YAML spec, flags overriding it, outputs under gs:// mapped by --gcs-root', async () => {
    const dir = path.join(work, 'spec');
    await inputFile(path.join(dir, 'gcs/bkt/in'), 'a.jsonl', 'A\n');
    await writeFile(
      path.join(dir, 'job.yaml'),
      [
        'displayName: spec-job',
        'inputConfig:',
        '  instancesFormat: jsonl',
        '  gcsSource: { uris: ["gs://bkt/in/a.jsonl"] }',
        'outputConfig:',
        '  gcsDestination: { outputUriPrefix: "gs://bkt/out" }',
        'dedicatedResources:',
        '  machineSpec: { machineType: n1-highmem-2 }',
        'containerSpec:',
        `  imageUri: ${BUSYBOX}`,
        '  command: ["sh", "-c"]',
        '  args: ["cp $(AIP_BATCH_INPUT_URIS) $AIP_BATCH_OUTPUT_DIR/ && echo $MODE > $AIP_BATCH_OUTPUT_DIR/mode"]',
        '  env: [{ name: MODE, value: from-spec }]',
      ].join('\n'),
    );
    const result = await runVbe(['run', '--spec', 'job.yaml', '--gcs-root', 'gcs', '--machine-type', 'e2-standard-2', '--env', 'MODE=from-flag', '--json'], {}, dir);
    expect(result.code, result.stderr).toBe(0);
    const job = JSON.parse(result.stdout);
    expect(job.displayName).toBe('spec-job');
    expect(job.outputInfo).toEqual({ outputDirectory: path.join(dir, 'gcs/bkt/out'), gcsOutputDirectory: 'gs://bkt/out' });
    expect(job.emulator.limits.machineType).toBe('e2-standard-2');
    expect(job.emulator.container.args).toEqual(['cp /gcs/bkt/in/a.jsonl $AIP_BATCH_OUTPUT_DIR/ && echo $MODE > $AIP_BATCH_OUTPUT_DIR/mode']);
    expect(await readFile(path.join(dir, 'gcs/bkt/out/a.jsonl'), 'utf8')).toBe('A\n');
    expect(await readFile(path.join(dir, 'gcs/bkt/out/mode'), 'utf8')).toBe('from-flag\n');
  });
});
