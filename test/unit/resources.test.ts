import { describe, expect, it } from 'vitest';
import { VbeError } from '../../src/errors.js';
import { PROBE_DEFAULTS, probeTiming, describeProbe } from '../../src/jobs/probes.js';
import { mergeBatchPredictSpec } from '../../src/spec/batchPredictSpec.js';
import { cpuCountWarning, cpuSetFor, formatCpuList } from '../../src/spec/cpuSet.js';
import { getMachineType, GiB } from '../../src/spec/machineTypes.js';
import { EVICTION_THRESHOLD_BYTES, gkeReservedMemoryBytes, memoryReserve, MiB, parseMemoryReserve } from '../../src/spec/memoryReserve.js';
import { mergeRunJobSpec } from '../../src/spec/runJobSpec.js';
import { parseWithSchema, batchPredictionJobSchema, runJobSpecFileSchema } from '../../src/spec/vertexSchemas.js';
import { diagnoseRunJob } from '../../src/verdict/diagnoseRunJob.js';
import { judgeDisk } from '../../src/verdict/judgeDisk.js';
import type { RunObservation } from '../../src/verdict/judgeRunJob.js';

const dirs = { cwd: '/work', specDir: '/work' };
const base = { image: 'img:1', inputs: ['a.jsonl'], output: 'out' };
const usage = (fn: () => unknown): VbeError => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(VbeError);
    return e as VbeError;
  }
  throw new Error('expected an error');
};

describe('memory Vertex keeps (--memory-reserve vertex)', () => {
  it("GKE's kube-reserved tiers: 255 MiB under 1 GiB, 25/20/10/6/2% above", () => {
    expect(gkeReservedMemoryBytes(0.5 * GiB)).toBe(255 * MiB);
    expect(gkeReservedMemoryBytes(4 * GiB)).toBe(1 * GiB);
    expect(gkeReservedMemoryBytes(8 * GiB)).toBe(Math.round(1.8 * GiB));
    expect(gkeReservedMemoryBytes(16 * GiB)).toBe(Math.round(2.6 * GiB));
    expect(gkeReservedMemoryBytes(128 * GiB)).toBe(Math.round(9.32 * GiB));
    expect(gkeReservedMemoryBytes(208 * GiB)).toBe(Math.round(10.92 * GiB));
  });

  // machine type, machine GiB, reserve GiB, limit GiB, basis
  const table: Array<[string, number, number, number, string]> = [
    ['e2-highcpu-2', 2, 0.8, 1.2, 'system-agents-40%'],
    ['n1-standard-2', 7.5, 3, 4.5, 'system-agents-40%'],
    ['n1-standard-4', 15, 6, 9, 'system-agents-40%'],
    ['e2-standard-4', 16, 6.4, 9.6, 'system-agents-40%'],
    ['n1-highmem-4', 26, 10.4, 15.6, 'system-agents-40%'],
    ['n1-standard-8', 30, 3.44 + 100 / 1024, 30 - 3.44 - 100 / 1024, 'gke-allocatable'],
    ['n1-standard-16', 60, 5.24 + 100 / 1024, 60 - 5.24 - 100 / 1024, 'gke-allocatable'],
    ['n1-highmem-32', 208, 10.92 + 100 / 1024, 208 - 10.92 - 100 / 1024, 'gke-allocatable'],
  ];
  it.each(table)('%s: %d GiB, Vertex keeps %d GiB, the container gets %d GiB', (name, machineGiB, reserveGiB, limitGiB, basis) => {
    const r = memoryReserve(getMachineType(name));
    expect(r.machineMemoryBytes).toBe(Math.round(machineGiB * GiB));
    expect(r.reserveBytes / GiB).toBeCloseTo(reserveGiB, 6);
    expect(r.limitBytes / GiB).toBeCloseTo(limitGiB, 6);
    expect(r.limitBytes + r.reserveBytes).toBe(r.machineMemoryBytes);
    expect(r.basis).toBe(basis);
  });

  it('the reserve always includes the eviction threshold, and the limit is always below the machine', () => {
    for (const name of ['n1-standard-32', 'a2-highgpu-1g', 'g2-standard-96', 'e2-highmem-16']) {
      const machine = getMachineType(name);
      const r = memoryReserve(machine);
      expect(r.reserveBytes).toBeGreaterThanOrEqual(gkeReservedMemoryBytes(r.machineMemoryBytes) + EVICTION_THRESHOLD_BYTES);
      expect(r.limitBytes).toBeLessThan(r.machineMemoryBytes);
    }
  });

  it('none, a size and a percentage replace the model; nonsense is a usage error naming the flag', () => {
    const n1s4 = getMachineType('n1-standard-4');
    expect(memoryReserve(n1s4, parseMemoryReserve('none'))).toMatchObject({ reserveBytes: 0, limitBytes: 15 * GiB, policy: 'none' });
    expect(memoryReserve(n1s4, parseMemoryReserve('2GiB'))).toMatchObject({ reserveBytes: 2 * GiB, limitBytes: 13 * GiB, basis: 'user' });
    expect(memoryReserve(n1s4, parseMemoryReserve('20%'))).toMatchObject({ reserveBytes: 3 * GiB, limitBytes: 12 * GiB, policy: '20%' });
    expect(usage(() => parseMemoryReserve('lots')).message).toMatch(/--memory-reserve: "lots"/);
    expect(usage(() => parseMemoryReserve('100%')).code).toBe('INVALID_MEMORY_RESERVE');
    expect(usage(() => memoryReserve(n1s4, parseMemoryReserve('16GiB'))).message).toMatch(/all of n1-standard-4's memory/);
  });

  it('the OOM diagnosis says what Vertex keeps and why the whole machine would not help', () => {
    const o: RunObservation = {
      imageUri: 'img:1', exitCode: 137, oomKilled: true, timedOut: false, cancelled: false, timeoutMs: 1, stagedInputPaths: [], outputContainerDir: '/vbe/output',
      outputFileCount: 0, refusedOutputs: [], addedPaths: [], logSignals: [], machineType: 'n1-standard-4', memoryBytes: 9 * GiB, machineMemoryBytes: 15 * GiB, memoryReserveBytes: 6 * GiB,
    };
    const d = diagnoseRunJob(o).find((x) => x.code === 'OUT_OF_MEMORY')!;
    expect(d.message).toMatch(/Vertex keeps about 6\.0 GiB of n1-standard-4's 15 GiB for its agents/);
    expect(d.message).toMatch(/between 9\.0 GiB and 15 GiB would fit the whole machine but not what Vertex leaves/);
    expect(d.fix).toMatch(/machine type with more memory/);
  });
});

describe('CPU sets: the machine type on hosts of 2, 16 and 64 cores', () => {
  // machine vCPUs, host cores, replica, expected cpus, cpuset
  const table: Array<[number, number, number, number, string]> = [
    [4, 2, 0, 2, '0-1'],
    [8, 2, 0, 2, '0-1'],
    [2, 2, 1, 2, '0-1'],
    [4, 16, 0, 4, '0-3'],
    [4, 16, 1, 4, '4-7'],
    [4, 16, 3, 4, '12-15'],
    [4, 16, 4, 4, '0-3'],
    [12, 16, 1, 12, '12-15,0-7'],
    [32, 16, 0, 16, '0-15'],
    [8, 64, 0, 8, '0-7'],
    [8, 64, 7, 8, '56-63'],
    [96, 64, 0, 64, '0-63'],
    [26, 64, 2, 26, '52-63,0-13'],
  ];
  it.each(table)('%i vCPUs on %i cores, replica %i: %i CPUs, cpuset %s', (vcpus, host, replica, cpus, set) => {
    expect(cpuSetFor(vcpus, host, replica)).toEqual({ cpus, cpusetCpus: set });
  });

  it('formats CPU lists as runs', () => {
    expect(formatCpuList([0])).toBe('0');
    expect(formatCpuList([3, 4, 5, 9, 0, 1])).toBe('3-5,9,0-1');
  });

  it('warns, naming each number, when the host and the machine type differ', () => {
    expect(cpuCountWarning({ name: 'n1-standard-8', vcpus: 8 }, 8, 8)).toBeUndefined();
    const fewer = cpuCountWarning({ name: 'n1-standard-8', vcpus: 8 }, 2, 2)!;
    expect(fewer).toMatch(/On Vertex, n1-standard-8 shows 8 CPUs to nproc, os\.cpu_count\(\) and multiprocessing\.cpu_count\(\)/);
    expect(fewer).toMatch(/here nproc \(the cpuset\) sees 2 and os\.cpu_count\(\) \/ multiprocessing\.cpu_count\(\) see this host's 2/);
    const more = cpuCountWarning({ name: 'n1-standard-4', vcpus: 4 }, 16, 4)!;
    expect(more).toMatch(/nproc \(the cpuset\) sees 4 and .* see this host's 16/);
    expect(more).toMatch(/CprModelServer/);
  });
});

describe('disk check', () => {
  const disk = { writableLayerBytes: 0, volumeBytes: 0, imageBytes: 10 * MiB, diskBytes: 100 * MiB, source: '--disk-size', enforcement: 'measured' as const };
  it('over the disk FAILS with the bytes, the size and the fix; over 80% warns; below passes', () => {
    const full = judgeDisk({ ...disk, writableLayerBytes: 80 * MiB, volumeBytes: 20 * MiB });
    expect(full.full).toBe(true);
    expect(full.usedBytes).toBe(110 * MiB);
    expect(full.diagnosis).toMatchObject({ code: 'DISK_FULL', severity: 'error' });
    expect(full.diagnosis!.message).toMatch(/110 MiB \(115343360 bytes\) on a boot disk of 100 MiB.*No space left on device/);
    expect(full.diagnosis!.fix).toMatch(/bootDiskSizeGb/);
    expect(full.diagnosis!.evidence!.join('\n')).toMatch(/measured after the run/);
    const near = judgeDisk({ ...disk, writableLayerBytes: 75 * MiB });
    expect(near).toMatchObject({ full: false, diagnosis: { code: 'DISK_NEARLY_FULL', severity: 'warning' } });
    expect(judgeDisk({ ...disk, writableLayerBytes: 50 * MiB })).toEqual({ usedBytes: 60 * MiB, full: false });
  });

  it('bootDiskSizeGb (default 100) and --disk-size set the size; under 100 GB warns (minimum UNCONFIRMED); 0 is refused', () => {
    expect(mergeRunJobSpec(base, {}, dirs).disk).toEqual({ sizeBytes: 100 * GiB, source: 'default' });
    const file = parseWithSchema(runJobSpecFileSchema, { jobSpec: { workerPoolSpecs: [{ diskSpec: { bootDiskSizeGb: 50, bootDiskType: 'pd-standard' } }] } }, 'spec');
    const spec = mergeRunJobSpec(base, file, dirs);
    expect(spec.disk).toEqual({ sizeBytes: 50 * GiB, source: 'diskSpec.bootDiskSizeGb' });
    expect(spec.warnings.join('\n')).toMatch(/bootDiskSizeGb: 50 GB is below the 100 GB default.*UNCONFIRMED/);
    expect(mergeRunJobSpec({ ...base, diskSize: '64MiB' }, file, dirs).disk).toEqual({ sizeBytes: 64 * MiB, source: '--disk-size' });
    expect(usage(() => parseWithSchema(runJobSpecFileSchema, { jobSpec: { workerPoolSpecs: [{ diskSpec: { bootDiskSizeGb: 0 } }] } }, 'spec')).message).toMatch(/diskSpec\.bootDiskSizeGb: must be a positive number of GB/);
    expect(usage(() => parseWithSchema(runJobSpecFileSchema, { jobSpec: { workerPoolSpecs: [{ diskSpec: { bootDiskType: 'nvme' } }] } }, 'spec')).message).toMatch(/bootDiskType/);
    expect(usage(() => mergeRunJobSpec({ ...base, diskSize: '10KiB' }, {}, dirs)).message).toMatch(/--disk-size/);
  });
});

describe('shared memory, probes, deploymentTimeout, deadlines', () => {
  it('sharedMemorySizeMb (number or int64 string) sets /dev/shm; unset keeps the engine default', () => {
    const read = (containerSpec: object) => mergeRunJobSpec(base, parseWithSchema(runJobSpecFileSchema, { containerSpec }, 'spec'), dirs).shmSizeBytes;
    expect(read({ sharedMemorySizeMb: 256 })).toBe(256 * MiB);
    expect(read({ sharedMemorySizeMb: '1024' })).toBe(1024 * MiB);
    expect(read({})).toBeUndefined();
    expect(usage(() => read({ sharedMemorySizeMb: 0 })).message).toMatch(/sharedMemorySizeMb/);
    expect(usage(() => read({ sharedMemorySizeMb: 'big' })).message).toMatch(/sharedMemorySizeMb: must be a whole number/);
  });

  it('probes take the proto defaults: period 10 s, timeout 1 s, failureThreshold 3', () => {
    expect(PROBE_DEFAULTS).toEqual({ periodSeconds: 10, timeoutSeconds: 1, failureThreshold: 3, successThreshold: 1, initialDelaySeconds: 0 });
    expect(probeTiming({ exec: { command: ['true'] } })).toEqual({ periodMs: 10_000, timeoutMs: 1000, failureThreshold: 3, successThreshold: 1, initialDelayMs: 0 });
    expect(probeTiming({ httpGet: { path: '/r' }, periodSeconds: 2, timeoutSeconds: 5, failureThreshold: 30, initialDelaySeconds: 4 })).toMatchObject({ periodMs: 2000, timeoutMs: 5000, failureThreshold: 30, initialDelayMs: 4000 });
    expect(describeProbe({ exec: { command: ['cat', '/tmp/ready'] } }, 8080)).toBe('exec cat /tmp/ready');
    expect(describeProbe({ httpGet: { path: '/ready' } }, 8080)).toBe('GET /ready on port 8080');
  });

  it('startupProbe / healthProbe and deploymentTimeout are accepted from the REST body; unsupported or ambiguous probes are usage errors', () => {
    const read = (containerSpec: object) =>
      mergeBatchPredictSpec({ ...base, instancesFormat: 'jsonl' }, parseWithSchema(batchPredictionJobSchema, { unmanagedContainerModel: { containerSpec } }, 'spec'), dirs);
    const spec = read({ deploymentTimeout: '1800s', startupProbe: { exec: { command: ['cat', '/tmp/ready'] }, periodSeconds: 1 }, healthProbe: { httpGet: { path: '/ready', port: 8080 } } });
    expect(spec.startupProbe).toEqual({ exec: { command: ['cat', '/tmp/ready'] }, periodSeconds: 1 });
    expect(spec.healthProbe).toEqual({ httpGet: { path: '/ready', port: 8080 } });
    expect(spec.startupTimeoutMs).toBe(40 * 60_000);
    expect(spec.requestTimeoutMs).toBe(600_000);
    expect(usage(() => read({ startupProbe: { exec: { command: ['true'] }, httpGet: { path: '/' } } })).message).toMatch(/startupProbe: sets exec and httpGet/);
    expect(usage(() => read({ healthProbe: { tcpSocket: { port: 8080 } } })).code).toBe('PROBE_NOT_SUPPORTED');
    expect(usage(() => read({ healthProbe: { httpGet: { path: '/r', port: 9000 } } })).message).toMatch(/healthProbe\.httpGet\.port: 9000 is not the served port 8080/);
    expect(usage(() => read({ deploymentTimeout: 'soon' })).message).toMatch(/deploymentTimeout/);
    expect(usage(() => read({ startupProbe: { exec: { command: [] } } })).message).toMatch(/startupProbe\.exec\.command/);
  });
});
