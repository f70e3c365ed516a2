import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { batchPredict, runJob } from '../../src/index.js';
import { BUSYBOX, buildImage, docker, labelled, PYTHON_BASE, runVbe, tempDir } from '../helpers/engine.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const sh = (script: string) => ({ command: ['sh', '-c', script] });
const SERVER_IMAGE = 'vbe-test/i14-resources-server:1';

/** Allocates ALLOC_MIB MiB in 64 MiB chunks (each written), after saving the cgroup's limit. */
const ALLOCATE = `
import os
out = os.environ["AIP_BATCH_OUTPUT_DIR"]
v1, v2 = "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"
open(out + "/limit", "w").write(open(v1 if os.path.exists(v1) else v2).read().strip())
chunks = [b"x" * (64 << 20) for _ in range(int(os.environ["ALLOC_MIB"]) // 64)]
open(out + "/survived", "w").write(str(len(chunks)))
`;

/** A model server whose health route is always 200; /tmp/ready appears READY_AFTER seconds after start. */
const SERVER = `
import json, os, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
PORT = int(os.environ.get("AIP_HTTP_PORT", "8080"))
READY_AFTER = float(os.environ.get("READY_AFTER", "-1"))
def mark():
    time.sleep(READY_AFTER)
    open("/tmp/ready", "w").write("ok")
if READY_AFTER >= 0:
    threading.Thread(target=mark, daemon=True).start()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        self.send(200, {"ok": True})
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        st = os.statvfs("/dev/shm")
        facts = {"shmBytes": st.f_blocks * st.f_frsize, "affinity": len(os.sched_getaffinity(0)), "cpuCount": os.cpu_count(), "readyFile": os.path.exists("/tmp/ready")}
        self.send(200, {"predictions": [facts for _ in body["instances"]]})
ThreadingHTTPServer((os.environ.get("BIND", "0.0.0.0"), PORT), H).serve_forever()
`;

describe('resources as Vertex gives them, on a real engine', () => {
  let work: string;
  let input: string;
  beforeAll(async () => {
    work = await tempDir();
    input = path.join(work, 'items.jsonl');
    await writeFile(input, '{"id":1}\n{"id":2}\n');
    await buildImage(SERVER_IMAGE, `FROM ${PYTHON_BASE}\nENV PYTHONUNBUFFERED=1\nCOPY server.py /app/server.py\nEXPOSE 8080\nENTRYPOINT ["python3", "/app/server.py"]\n`, { 'server.py': SERVER });
  });

  const allocate = (machineType: string, allocMiB: number, out: string, memoryReserve?: string) =>
    runJob({ image: PYTHON_BASE, pull: 'never', inputs: [input], output: path.join(work, out), machineType, env: [`ALLOC_MIB=${allocMiB}`], command: ['python3', '-c', ALLOCATE], ...(memoryReserve ? { memoryReserve } : {}) });

  // Allocating memory on this VM runs at about 100 MB/s (the hypervisor backs each new page), so
  // only n1-standard-2 is filled past its limit; n1-standard-4's limit is read from the cgroup.
  it('n1-standard-2: the limit is 7.5 GiB less the 3 GiB Vertex keeps; 5 GiB (fits the machine, not what Vertex leaves) is OOM-killed with the reserve explained', async () => {
    const job = await allocate('n1-standard-2', 5 * 1024, 'oom-n1s2');
    const limits = job.emulator.limits!;
    expect(limits).toMatchObject({ memoryBytes: 4.5 * GiB, machineMemoryBytes: 7.5 * GiB, memoryReserveBytes: 3 * GiB, memoryReserve: { policy: 'vertex', basis: 'system-agents-40%' } });
    expect(Number(await readFile(path.join(work, 'oom-n1s2/limit'), 'utf8'))).toBe(4.5 * GiB);
    expect(job.state).toBe('JOB_STATE_FAILED');
    expect(job.emulator.oomKilled).toBe(true);
    expect(job.error!.message).toMatch(/^The replica workerpool0-0 ran out of memory and exited with a non-zero status of 137\./);
    const oom = job.emulator.diagnoses.find((d) => d.code === 'OUT_OF_MEMORY')!;
    expect(oom.message).toMatch(/Vertex keeps about 3\.0 GiB of n1-standard-2's 7\.5 GiB for its agents/);
    expect(oom.message).toMatch(/between 4\.5 GiB and 7\.5 GiB would fit the whole machine but not what Vertex leaves/);
    const record = JSON.parse(await readFile(job.emulator.recordFile, 'utf8'));
    expect(record.emulator.limits).toMatchObject({ memoryBytes: 4.5 * GiB, machineMemoryBytes: 7.5 * GiB, memoryReserveBytes: 3 * GiB });
  }, 400_000);

  it('n1-standard-4: the cgroup limit is 15 GiB less the 6 GiB Vertex keeps', async () => {
    const job = await allocate('n1-standard-4', 0, 'limit-n1s4');
    expect(job.state).toBe('JOB_STATE_SUCCEEDED');
    expect(job.emulator.limits).toMatchObject({ memoryBytes: 9 * GiB, machineMemoryBytes: 15 * GiB, memoryReserveBytes: 6 * GiB });
    expect(Number(await readFile(path.join(work, 'limit-n1s4/limit'), 'utf8'))).toBe(9 * GiB);
  });

  it('e2-highcpu-2: 1.5 GiB is OOM-killed under the 1.2 GiB Vertex leaves, and fits with --memory-reserve none (the whole 2 GiB)', async () => {
    const vertex = await allocate('e2-highcpu-2', 1536, 'oom-e2');
    expect(vertex.emulator.limits!.memoryBytes).toBe(Math.round(1.2 * GiB));
    expect(vertex.state).toBe('JOB_STATE_FAILED');
    expect(vertex.emulator.oomKilled).toBe(true);
    expect(vertex.emulator.diagnoses.find((d) => d.code === 'OUT_OF_MEMORY')!.message).toMatch(/Vertex keeps about 819 MiB of e2-highcpu-2's 2\.0 GiB/);
    const none = await allocate('e2-highcpu-2', 1536, 'none-e2', 'none');
    expect(none.emulator.limits!.memoryBytes).toBe(2 * GiB);
    expect(none.state).toBe('JOB_STATE_SUCCEEDED');
    expect(await readFile(path.join(work, 'none-e2/survived'), 'utf8')).toBe('24');
  }, 300_000);

  it('CPUs: nproc and the cpuset are the machine vCPUs when the host has them; a bigger machine type warns with each number', async () => {
    const hostCpus = Number(await docker('info', '--format', '{{.NCPU}}'));
    const script =
      'nproc > "$AIP_BATCH_OUTPUT_DIR/nproc"; cat /sys/fs/cgroup/cpuset/cpuset.cpus /sys/fs/cgroup/cpuset.cpus.effective 2>/dev/null | head -1 > "$AIP_BATCH_OUTPUT_DIR/cpuset";' +
      'if [ -f /sys/fs/cgroup/cpu.max ]; then cat /sys/fs/cgroup/cpu.max; else echo "$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"; fi > "$AIP_BATCH_OUTPUT_DIR/quota"';
    const fits = await runJob({ image: BUSYBOX, pull: 'never', inputs: [input], output: path.join(work, 'cpu-2'), machineType: 'n1-standard-2', ...sh(script) });
    expect(fits.state).toBe('JOB_STATE_SUCCEEDED');
    expect(hostCpus).toBeGreaterThanOrEqual(2);
    expect((await readFile(path.join(work, 'cpu-2/nproc'), 'utf8')).trim()).toBe('2');
    expect((await readFile(path.join(work, 'cpu-2/cpuset'), 'utf8')).trim()).toBe('0-1');
    const [quota, period] = (await readFile(path.join(work, 'cpu-2/quota'), 'utf8')).trim().split(/\s+/).map(Number);
    expect(quota! / period!).toBe(2);
    expect(fits.emulator.limits!.cpusetCpus).toBe('0-1');

    const bigger = await runJob({ image: BUSYBOX, pull: 'never', inputs: [input], output: path.join(work, 'cpu-8'), machineType: 'n1-standard-8', ...sh(script) });
    expect((await readFile(path.join(work, 'cpu-8/nproc'), 'utf8')).trim()).toBe(String(Math.min(8, hostCpus)));
    if (hostCpus !== 8) {
      expect(bigger.emulator.warnings.join('\n')).toContain(
        `On Vertex, n1-standard-8 shows 8 CPUs to nproc, os.cpu_count() and multiprocessing.cpu_count(); here nproc (the cpuset) sees ${Math.min(8, hostCpus)} and os.cpu_count() / multiprocessing.cpu_count() see this host's ${hostCpus}`,
      );
    }
  });

  it('containerSpec.sharedMemorySizeMb sets /dev/shm in vbe run; unset it stays Docker\'s 64 MiB', async () => {
    const spec = path.join(work, 'shm-job.json');
    await writeFile(spec, JSON.stringify({ containerSpec: { imageUri: BUSYBOX, sharedMemorySizeMb: '256', command: ['sh', '-c', 'df -k /dev/shm | tail -1 > "$AIP_BATCH_OUTPUT_DIR/shm"'] } }));
    const job = await runJob({ spec, pull: 'never', inputs: [input], output: path.join(work, 'shm') });
    expect(job.state).toBe('JOB_STATE_SUCCEEDED');
    expect((await readFile(path.join(work, 'shm/shm'), 'utf8')).trim().split(/\s+/)[1]).toBe(String(256 * 1024));
    expect(job.emulator.sharedMemoryBytes).toBe(256 * MiB);
    const plain = await runJob({ image: BUSYBOX, pull: 'never', inputs: [input], output: path.join(work, 'shm-default'), ...sh('df -k /dev/shm | tail -1 > "$AIP_BATCH_OUTPUT_DIR/shm"') });
    expect((await readFile(path.join(work, 'shm-default/shm'), 'utf8')).trim().split(/\s+/)[1]).toBe(String(64 * 1024));
    expect(plain.emulator.sharedMemoryBytes).toBeNull();
  });

  it('a job that writes more than its disk (--disk-size) FAILS with the disk diagnosis; its layer and its outputs both count', async () => {
    const imageBytes = Number(await docker('image', 'inspect', BUSYBOX, '--format', '{{.Size}}'));
    const diskSize = imageBytes + 20 * MiB;
    const full = await runJob({
      image: BUSYBOX,
      pull: 'never',
      inputs: [input],
      output: path.join(work, 'disk-full'),
      diskSize,
      ...sh('dd if=/dev/zero of=/tmp/scratch bs=1M count=13 2>/dev/null; dd if=/dev/zero of="$AIP_BATCH_OUTPUT_DIR/result.bin" bs=1M count=13 2>/dev/null'),
    });
    expect(full.emulator.exitCode).toBe(0);
    expect(full.state).toBe('JOB_STATE_FAILED');
    expect(full.error!.message).toMatch(/wrote more than its boot disk .*No space left on device/);
    const d = full.emulator.diagnoses.find((x) => x.code === 'DISK_FULL')!;
    expect(d.severity).toBe('error');
    expect(d.message).toMatch(/on a boot disk of 22 MiB/);
    expect(d.fix).toMatch(/bootDiskSizeGb/);
    expect(full.emulator.disk).toMatchObject({ sizeBytes: diskSize, source: '--disk-size', volumeBytes: 13 * MiB, imageBytes, enforcement: 'measured' });
    expect(full.emulator.disk!.writableLayerBytes).toBeGreaterThanOrEqual(13 * MiB);
    expect(d.evidence!.join('\n')).toMatch(/measured after the run \(this engine cannot enforce a size\)/);

    const near = await runJob({ image: BUSYBOX, pull: 'never', inputs: [input], output: path.join(work, 'disk-near'), diskSize, ...sh('dd if=/dev/zero of="$AIP_BATCH_OUTPUT_DIR/result.bin" bs=1M count=17 2>/dev/null') });
    expect(near.state).toBe('JOB_STATE_SUCCEEDED');
    expect(near.emulator.diagnoses.map((x) => x.code)).toContain('DISK_NEARLY_FULL');
    expect(await labelled(`dev.vbe.job-id=${full.emulator.jobId}`)).toEqual({ containers: [], volumes: [] });
  });

  const serverSpec = async (name: string, containerSpec: Record<string, unknown>) => {
    const file = path.join(work, `${name}.json`);
    await writeFile(file, JSON.stringify({ displayName: name, unmanagedContainerModel: { containerSpec: { imageUri: SERVER_IMAGE, ...containerSpec } }, dedicatedResources: { machineSpec: { machineType: 'n1-standard-2' } } }));
    return file;
  };

  it('batch-predict: an exec startupProbe that passes only once a file appears makes the server ready only then; /dev/shm and the CPUs are the spec\'s', async () => {
    const spec = await serverSpec('probe-ok', {
      env: [{ name: 'READY_AFTER', value: '8' }],
      sharedMemorySizeMb: 128,
      startupProbe: { exec: { command: ['cat', '/tmp/ready'] }, periodSeconds: 1, failureThreshold: 30 },
    });
    const job = await batchPredict({ spec, pull: 'never', instancesFormat: 'jsonl', inputs: [input], output: path.join(work, 'probe-ok') });
    expect(job.state).toBe('JOB_STATE_SUCCEEDED');
    const startup = job.emulator.startup as { outcome: string; afterMs: number };
    expect(startup.outcome).toBe('ready');
    expect(startup.afterMs).toBeGreaterThanOrEqual(8000);
    const [first] = (await readFile(path.join(job.outputInfo.outputDirectory, 'prediction.results-00000-of-00001'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(first.prediction).toMatchObject({ shmBytes: 128 * MiB, affinity: 2, readyFile: true });
    const record = JSON.parse(await readFile(job.emulator.recordFile, 'utf8'));
    expect(record.unmanagedContainerModel.containerSpec.startupProbe).toEqual({ exec: { command: ['cat', '/tmp/ready'] }, periodSeconds: 1, failureThreshold: 30 });
    expect(record.emulator.deadlines).toMatchObject({ startupTimeoutMs: 40 * 60_000, requestTimeoutMs: 600_000 });
    expect(record.emulator.deadlines.sources.request).toMatch(/10-minute deadline.*102/);
  }, 180_000);

  it('batch-predict without a probe is ready as soon as its health route answers, before the file appears', async () => {

    // The same server without the probe is ready at once, before the file exists.
    const unprobed = await batchPredict({ spec: await serverSpec('probe-none', { env: [{ name: 'READY_AFTER', value: '8' }] }), pull: 'never', instancesFormat: 'jsonl', inputs: [input], output: path.join(work, 'probe-none') });
    expect((unprobed.emulator.startup as { afterMs: number }).afterMs).toBeLessThan(8000);
  });

  it('batch-predict: a startupProbe that fails failureThreshold times FAILS "never became ready" with STARTUP_PROBE_FAILED', async () => {
    const spec = await serverSpec('probe-bad', { startupProbe: { exec: { command: ['cat', '/tmp/ready'] }, periodSeconds: 1, failureThreshold: 2 } });
    const started = Date.now();
    const job = await batchPredict({ spec, pull: 'never', instancesFormat: 'jsonl', inputs: [input], output: path.join(work, 'probe-bad') });
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(job.state).toBe('JOB_STATE_FAILED');
    expect(job.error!.message).toMatch(/model server never became ready/);
    const d = job.emulator.diagnoses.find((x) => x.code === 'STARTUP_PROBE_FAILED')!;
    expect(d.message).toMatch(/startupProbe \(exec cat \/tmp\/ready\) failed 2 times in a row/);
    expect(d.evidence!.join(' ')).toMatch(/exit 1.*No such file/);
  });

  it('batch-predict: an httpGet healthProbe replaces the default health probing; a server that fills its disk FAILS with DISK_FULL', async () => {
    const ok = await batchPredict({
      spec: await serverSpec('health-probe', { healthProbe: { httpGet: { path: '/anything', httpHeaders: [{ name: 'X-Probe', value: '1' }] }, periodSeconds: 1 } }),
      pull: 'never',
      instancesFormat: 'jsonl',
      inputs: [input],
      output: path.join(work, 'health-probe'),
    });
    expect(ok.state).toBe('JOB_STATE_SUCCEEDED');
    expect(ok.emulator.disk).toMatchObject({ sizeBytes: 100 * GiB, source: 'default', enforcement: 'measured' });

    const imageBytes = Number(await docker('image', 'inspect', SERVER_IMAGE, '--format', '{{.Size}}'));
    const full = await batchPredict({
      spec: await serverSpec('server-disk', { command: ['sh', '-c', 'dd if=/dev/zero of=/tmp/cache bs=1M count=30 2>/dev/null; exec python3 /app/server.py'] }),
      pull: 'never',
      instancesFormat: 'jsonl',
      inputs: [input],
      output: path.join(work, 'server-disk'),
      diskSize: imageBytes + 20 * MiB,
    });
    expect(full.completionStats.successfulCount).toBe('2');
    expect(full.state).toBe('JOB_STATE_FAILED');
    expect(full.error!.message).toMatch(/A model server replica wrote more than its boot disk/);
    expect(full.emulator.diagnoses.map((d) => d.code)).toContain('DISK_FULL');
    expect(full.emulator.disk!.writableLayerBytes).toBeGreaterThanOrEqual(30 * MiB);
  }, 180_000);

  it('vbe batch-predict waits up to the start-up limit but says after a minute what is wrong so far, naming --startup-timeout', async () => {
    const spec = await serverSpec('localhost-only', { env: [{ name: 'BIND', value: '127.0.0.1' }] });
    const result = await runVbe(['batch-predict', '--spec', spec, '--pull', 'never', '--instances-format', 'jsonl', '--input', input, '--output', path.join(work, 'slow'), '--startup-timeout', '68s']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/replica 0 not ready after 1m[^\n]*LISTENING_ON_LOCALHOST/);
    expect(result.stderr).toMatch(/still waiting, up to 1m ?8s as Vertex does for model loading; --startup-timeout \(e\.g\. 2m\) shortens the wait/);
    expect(result.stderr).toMatch(/model server never became ready/);
  }, 150_000);

  it('vbe run --memory-reserve <size> replaces the model; the summary shows machine memory, reserve and limit', async () => {
    const result = await runVbe(['run', '--image', BUSYBOX, '--pull', 'never', '--input', input, '--output', path.join(work, 'cli-reserve'), '--machine-type', 'e2-highcpu-2', '--memory-reserve', '512MiB', '--json', '--command', 'sh', '--command', '-c', '--command', 'echo ok > "$AIP_BATCH_OUTPUT_DIR/ok"']);
    expect(result.code).toBe(0);
    const job = JSON.parse(result.stdout);
    expect(job.emulator.limits).toMatchObject({ memoryBytes: 1.5 * GiB, machineMemoryBytes: 2 * GiB, memoryReserveBytes: 512 * MiB, memoryReserve: { basis: 'user' } });
    expect(result.stderr).toMatch(/machine: {2}e2-highcpu-2 -> 2 CPU \(cpuset 0-1\), 1\.5 GiB memory \(2\.0 GiB less 512 MiB Vertex keeps\)/);
    expect(result.stderr).toMatch(/disk: {5}used [\d.]+ [KM]iB of 100 GiB \(default\), measured after the run/);
    const bad = await runVbe(['run', '--image', BUSYBOX, '--input', input, '--output', path.join(work, 'cli-bad'), '--memory-reserve', 'lots']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--memory-reserve: "lots"/);
  });
});
