import { execFileSync } from 'node:child_process';
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchPredict, runJob } from '../../src/index.js';
import { startPrivateEngine } from '../helpers/privateEngine.js';
import { BUSYBOX, buildContext, docker, labelled, PYTHON_BASE, ROOT, runVbe, startVbe, tempDir, waitFor } from '../helpers/engine.js';

const sh = (script: string) => ({ command: ['sh', '-c', script] });
const SERVER = 'vbe-test/reliability-server:1';

describe('reliability: hostile containers, faults and concurrency', () => {
  let work: string;
  let input: string;
  beforeAll(async () => {
    work = await tempDir();
    input = path.join(work, 'in.jsonl');
    await writeFile(input, '{"id": 1}\n');
    await buildContext(SERVER, path.join(ROOT, 'test/fixtures/model-server'), { BASE_IMAGE: PYTHON_BASE });
  });

  describe('hostile logs', () => {
    it('gigabytes of output are streamed, and the saved log is cut at --max-log-size with a note', async () => {
      const out = path.join(work, 'loud');
      const result = await runVbe(['run', '--image', BUSYBOX, '--input', input, '--output', out, '--quiet', '--max-log-size', '1MiB', '--json', '--command', 'sh', '--command', '-c', '--command', 'yes "a line of log output that repeats" | head -c 100000000; echo done > $AIP_BATCH_OUTPUT_DIR/ok']);
      expect(result.code, result.stderr).toBe(0);
      const saved = await stat(path.join(out, '.vbe/stdout.log'));
      expect(saved.size).toBeLessThan(1024 * 1024 + 200);
      expect(saved.size).toBeGreaterThan(1024 * 1024 - 100);
      expect(await readFile(path.join(out, '.vbe/stdout.log'), 'utf8')).toMatch(/\[vbe: log cut at 1048576 bytes \(--max-log-size\); the rest was shown live but not saved\]\n$/);
      expect(JSON.parse(result.stdout).emulator.logs.truncated).toBe(true);
    });

    it('one endless line without a newline is shown and saved in pieces, never held whole', async () => {
      const job = await runJob({ image: BUSYBOX, inputs: [input], output: path.join(work, 'oneline'), ...sh('head -c 20000000 /dev/zero | tr "\\0" x; echo done > $AIP_BATCH_OUTPUT_DIR/ok') });
      expect(job.state).toBe('JOB_STATE_SUCCEEDED');
      expect((await stat(job.emulator.logs.stdout)).size).toBe(20_000_000);
      expect(Math.max(...job.emulator.logTail.map((l) => l.length))).toBeLessThanOrEqual(64 * 1024);
    });
  });

  describe('hostile outputs', () => {
    it('device nodes are refused and many small files are copied, with the record list capped', async () => {
      const out = path.join(work, 'many');
      const job = await runJob({
        image: BUSYBOX,
        inputs: [input],
        output: out,
        ...sh('cd $AIP_BATCH_OUTPUT_DIR && mknod null-dev c 1 3 && mkdir d && cd d && i=0; while [ $i -lt 20000 ]; do echo $i > f$i; i=$((i+1)); done'),
      });
      expect(job.state).toBe('JOB_STATE_SUCCEEDED');
      expect(job.emulator.outputs.fileCount).toBe(20000);
      expect(job.emulator.outputs.files).toHaveLength(1000);
      expect((await readdir(path.join(out, 'd'))).length).toBe(20000);
      expect(await readFile(path.join(out, 'd/f19999'), 'utf8')).toBe('19999\n');
      expect(job.emulator.outputs.refused).toEqual([{ path: 'null-dev', reason: 'character-device (only regular files and directories are copied out)' }]);
      await expect(stat(path.join(out, 'null-dev'))).rejects.toThrow();
    });
  });

  describe('secrets and isolation', () => {
    it('a secret env value reaches the container but never logs, job.json, --json or the terminal', async () => {
      const secret = 's3cr3t-token-value-123';
      const out = path.join(work, 'secret');
      const result = await runVbe(
        ['run', '--image', BUSYBOX, '--input', input, '--output', out, '--json', '--secret-env', 'API_TOKEN', '--args', 'token=$(API_TOKEN)', '--command', 'sh', '--command', '-c', '--command', 'echo "using $API_TOKEN"; echo "$1" >&2; echo -n "$API_TOKEN" > $AIP_BATCH_OUTPUT_DIR/seen; head -c 100000 /dev/zero | tr "\\0" y; echo "$API_TOKEN"', '--'],
        { API_TOKEN: secret },
      );
      expect(result.code, result.stderr).toBe(0);
      expect(await readFile(path.join(out, 'seen'), 'utf8')).toBe(secret);
      for (const text of [result.stdout, result.stderr, await readFile(path.join(out, '.vbe/stdout.log'), 'utf8'), await readFile(path.join(out, '.vbe/stderr.log'), 'utf8'), await readFile(path.join(out, '.vbe/job.json'), 'utf8')]) {
        expect(text).not.toContain(secret);
      }
      expect(await readFile(path.join(out, '.vbe/stdout.log'), 'utf8')).toContain('using ***');
      expect(JSON.parse(result.stdout).emulator.userEnvNames).toEqual(['API_TOKEN']);
    });

    it('the container gets no Docker socket, no privileges, no host network; server ports bind to 127.0.0.1 only', async () => {
      const { child, done } = startVbe(['run', '--image', BUSYBOX, '--input', input, '--output', path.join(work, 'iso'), '--command', 'sh', '--command', '-c', '--command', 'sleep 3; echo ok > $AIP_BATCH_OUTPUT_DIR/ok']);
      const id = await waitFor('the container', async () => (await labelled(`dev.vbe.pid=${child.pid}`)).containers[0]);
      const info = JSON.parse(await docker('inspect', id))[0];
      expect(info.HostConfig.Privileged).toBe(false);
      expect(info.HostConfig.NetworkMode).toBe('bridge');
      expect(info.HostConfig.Binds).toBeNull();
      expect(info.HostConfig.CapAdd).toBeNull();
      expect(info.Mounts.every((m: { Type: string }) => m.Type === 'volume')).toBe(true);
      expect(info.Mounts.map((m: { Destination: string }) => m.Destination).sort()).toEqual(['/vbe']);
      expect((await done).code).toBe(0);

      const server = batchPredict({ image: SERVER, pull: 'never', inputs: [input], instancesFormat: 'jsonl', output: path.join(work, 'iso-bp'), env: ['FAULT=slow', 'SLOW_SECONDS=3'] });
      const serverId = await waitFor('the server', async () => {
        const all = (await docker('ps', '-q', '--filter', 'label=dev.vbe.managed=true', '--filter', `label=dev.vbe.pid=${process.pid}`)).split('\n').filter(Boolean);
        return all[0];
      });
      const bindings = JSON.parse(await docker('inspect', serverId))[0].HostConfig.PortBindings;
      expect(bindings['8080/tcp']).toEqual([{ HostIp: '127.0.0.1', HostPort: '' }]);
      expect((await server).state).toBe('JOB_STATE_SUCCEEDED');
    });
  });

  describe('restarts, as Vertex does them', () => {
    // The first attempt dies of SIGSEGV (a child process, since PID 1 ignores signals it has no
    // handler for). `$$$$` because Vertex expands `$$` in command and args to `$`.
    const flaky = sh(`if [ -f /vbe/tried ]; then echo ok > $AIP_BATCH_OUTPUT_DIR/ok; else touch /vbe/tried; sh -c 'kill -SEGV $$$$'; exit $?; fi`);
    it('a replica that crashes with SIGSEGV (139) is restarted under the vertex policy, every attempt recorded', async () => {
      const job = await runJob({ image: BUSYBOX, inputs: [input], output: path.join(work, 'restart'), maxRestarts: 2, restartExitCodes: 'vertex', ...flaky });
      expect(job.state).toBe('JOB_STATE_SUCCEEDED');
      expect(job.emulator.attempts.map((a) => a.exitCode)).toEqual([139, 0]);
      expect(await readFile(job.emulator.logs.stdout, 'utf8')).toContain('[vbe: attempt 2]');
    });
    it('exits outside the policy, and runs with --max-restarts 0, are not restarted', async () => {
      const plain = await runJob({ image: BUSYBOX, inputs: [input], output: path.join(work, 'norestart'), maxRestarts: 0, ...flaky });
      expect(plain.emulator.attempts).toHaveLength(1);
      expect(plain.state).toBe('JOB_STATE_FAILED');
      const exit1 = await runJob({ image: BUSYBOX, inputs: [input], output: path.join(work, 'exit1'), maxRestarts: 3, restartExitCodes: 'vertex', ...sh('exit 1') });
      expect(exit1.emulator.attempts).toHaveLength(1);
      const always = await runJob({ image: BUSYBOX, inputs: [input], output: path.join(work, 'always'), maxRestarts: 2, restartExitCodes: 'any', ...sh('exit 1') });
      expect(always.emulator.attempts.map((a) => a.exitCode)).toEqual([1, 1, 1]);
      expect(always.error!.message).toContain('non-zero status of 1');
    });
  });

  describe('concurrency', () => {
    it('several runs and batch predictions at once on one engine: no collisions, each cleans up only its own', async () => {
      const runs = Array.from({ length: 3 }, (_, i) =>
        runJob({ image: BUSYBOX, inputs: [input], output: path.join(work, `conc-run-${i}`), ...sh(`sleep 1; echo ${i} > $AIP_BATCH_OUTPUT_DIR/me`) }),
      );
      const predictions = Array.from({ length: 2 }, (_, i) =>
        batchPredict({ image: SERVER, pull: 'never', inputs: [input], instancesFormat: 'jsonl', output: path.join(work, `conc-bp-${i}`), displayName: `conc-${i}` }),
      );
      const [jobs, bps] = await Promise.all([Promise.all(runs), Promise.all(predictions)]);
      for (const [i, job] of jobs.entries()) {
        expect(job.state).toBe('JOB_STATE_SUCCEEDED');
        expect(await readFile(path.join(work, `conc-run-${i}`, 'me'), 'utf8')).toBe(`${i}\n`);
      }
      expect(bps.map((b) => b.state)).toEqual(['JOB_STATE_SUCCEEDED', 'JOB_STATE_SUCCEEDED']);
      expect(new Set([...jobs, ...bps].map((j) => j.emulator.jobId)).size).toBe(5);
      for (const j of [...jobs, ...bps]) expect(await labelled(`dev.vbe.job-id=${j.emulator.jobId}`)).toEqual({ containers: [], volumes: [] });
    });
  });

  describe('engine and host faults', () => {
    it('a registry that is down is a FAILED job: REGISTRY_UNREACHABLE', async () => {
      const job = await runJob({ image: '127.0.0.1:5999/vbe-test/nothing-listens:1', inputs: [input], output: path.join(work, 'regdown') });
      expect(job.state).toBe('JOB_STATE_FAILED');
      expect(job.emulator.diagnoses[0]!.code).toBe('REGISTRY_UNREACHABLE');
    });

    it('the engine stopping under a running job ends vbe with a clear message, not a hang', async () => {
      const engine = await startPrivateEngine([BUSYBOX]);
      try {
        const { child, done } = startVbe(['run', '--image', BUSYBOX, '--pull', 'never', '--network', 'none', '--input', input, '--output', path.join(work, 'engine-stop'), '--command', 'sleep', '--command', '600'], { DOCKER_HOST: engine.host });
        await waitFor('the job container on the private engine', async () => (engine.docker('ps', '-q', '--filter', `label=dev.vbe.pid=${child.pid}`) ? true : undefined));
        const stopped = Date.now();
        await engine.stop();
        const result = await done;
        expect(Date.now() - stopped).toBeLessThan(60_000);
        expect(result.code, result.stderr).toBe(3);
        expect(result.stderr).toMatch(/error ENGINE_LOST: The Docker engine at unix:\/\/.*docker\.sock stopped answering during the job/);
        expect(result.stderr).toContain('fix: Start Docker again, then run `vbe prune`');
        expect(result.stderr).not.toContain('"level"'); // no raw log lines for a person to decode
      } finally {
        await engine.destroy();
      }
    });

    const tmpfs = path.join(ROOT, '.tmp-disk-full');
    afterAll(async () => {
      try {
        execFileSync('umount', [tmpfs]);
      } catch {
        // not mounted
      }
      await rm(tmpfs, { recursive: true, force: true });
    });
    it('a disk that fills up while collecting: the job FAILS clearly, copied files are whole, job.json is valid', async () => {
      await mkdir(tmpfs, { recursive: true });
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', tmpfs]);
      const out = path.join(tmpfs, 'out');
      const result = await runVbe(['run', '--image', BUSYBOX, '--input', input, '--output', out, '--json', '--command', 'sh', '--command', '-c', '--command', 'cd $AIP_BATCH_OUTPUT_DIR && head -c 1000000 /dev/zero > a.bin && head -c 8000000 /dev/zero > b.bin']);
      expect(result.code).toBe(1);
      const job = JSON.parse(await readFile(path.join(out, '.vbe/job.json'), 'utf8'));
      expect(job.state).toBe('JOB_STATE_FAILED');
      expect(job.error.message).toContain('ENOSPC');
      expect(job.emulator.outputs.complete).toBe(false);
      expect(job.emulator.diagnoses[0].code).toBe('OUTPUT_COLLECTION_FAILED');
      const left = (await readdir(out)).sort();
      expect(left).toEqual(['.vbe', 'a.bin']);
      expect((await stat(path.join(out, 'a.bin'))).size).toBe(1_000_000);
    });
  });

  describe('per-record problems in batch-predict become error records; the job goes on', () => {
    it('invalid UTF-8, a line far over the size limit, ragged CSV rows, an empty file', async () => {
      const jsonl = path.join(work, 'mixed.jsonl');
      const huge = Buffer.alloc(40 * 1024 * 1024, 0x20);
      await writeFile(jsonl, Buffer.concat([Buffer.from('{"ok": 1}\n'), Buffer.from([0x7b, 0xc3, 0x28, 0x7d, 0x0a]), Buffer.from('{"big": "'), huge, Buffer.from('"}\n{"ok": 2}\n')]));
      const empty = path.join(work, 'empty.jsonl');
      await writeFile(empty, '');
      const job = await batchPredict({ image: SERVER, pull: 'never', inputs: [jsonl, empty], instancesFormat: 'jsonl', output: path.join(work, 'mixed') });
      expect(job.state).toBe('JOB_STATE_SUCCEEDED');
      expect(job.completionStats).toEqual({ successfulCount: '2', failedCount: '2', incompleteCount: '0' });
      const errors = (await readFile(path.join(job.outputInfo.outputDirectory, '.vbe/failed-instances.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
      expect(errors.map((e) => e.error.message)).toEqual(['mixed.jsonl: Line 2 is not valid UTF-8.', expect.stringMatching(/^mixed\.jsonl: Line 3 is longer than 33554432 bytes/)]);

      const csv = path.join(work, 'ragged.csv');
      await writeFile(csv, 'a,b\n1,2\n3\n4,5,6\n7,8\n');
      const rows = await batchPredict({ image: SERVER, pull: 'never', inputs: [csv], instancesFormat: 'csv', output: path.join(work, 'ragged') });
      expect(rows.completionStats).toEqual({ successfulCount: '2', failedCount: '2', incompleteCount: '0' });
    });
  });
});
