import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type BatchPredictPhases, judgeBatchPredictPhases, observeBatchPredict } from '../../src/jobs/batchPredictOutcome.js';
import { batchPredictionJobRecord } from '../../src/jobs/batchPredictionJobRecord.js';
import { ChartRecorder } from '../../src/jobs/chartRecorder.js';
import { checkDisk } from '../../src/jobs/diskCheck.js';
import { machineLimits } from '../../src/jobs/machineLimits.js';
import { containerCommand } from '../../src/jobs/phases/containerCommand.js';
import { validateBatchPredict } from '../../src/jobs/phases/validateBatchPredict.js';
import type { ImageDetails } from '../../src/runtime/containerEngine.js';

const image: ImageDetails = { id: 'sha256:x', architecture: 'amd64', os: 'linux', user: '', entrypoint: ['python3', '/srv/app.py'], cmd: null, workingDir: '/', env: [], exposedPorts: [], sizeBytes: 100 * 2 ** 20 };

/** The phases' outputs of a job that got as far as `over` says (validate and connect always ran). */
async function phasesOf(over: Partial<BatchPredictPhases> = {}): Promise<BatchPredictPhases> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vbe-bp-outcome-'));
  await writeFile(path.join(dir, 'in.jsonl'), '{"x":1}\n{"x":2}\n');
  const createTime = new Date();
  const plan = await validateBatchPredict({ image: 'img', inputs: [path.join(dir, 'in.jsonl')], instancesFormat: 'jsonl', output: path.join(dir, 'out'), cwd: dir }, createTime);
  const limits = machineLimits(plan.spec.base.machine, { cpus: 2, memoryBytes: 64 * 2 ** 30 });
  return { jobId: '1234567890123456789', createTime, phases: [], charts: new ChartRecorder(createTime), plan, limits, hostCpus: 2, cancelled: false, end: { leftovers: [] }, ...over };
}

describe('batch-predict: the verdict and the record, built from the phases outputs', () => {
  it('an image that cannot be had: FAILED, no start time, incompleteCount -1, empty stats, no logs', async () => {
    const p = await phasesOf({ image: { pulled: false, pullFailure: { kind: 'not_found', detail: 'no such image' }, usable: false } });
    const judged = judgeBatchPredictPhases(p);
    expect(judged.observation.pullFailure).toEqual({ kind: 'not_found', detail: 'no such image' });
    expect(judged.verdict.state).toBe('JOB_STATE_FAILED');
    const record = batchPredictionJobRecord(p, judged, new Date());
    expect(record.startTime).toBeUndefined();
    expect(record.completionStats).toEqual({ successfulCount: '0', failedCount: '0', incompleteCount: '-1' });
    expect(record.resourcesConsumed).toEqual({ replicaHours: 0 });
    expect(record.emulator).toMatchObject({ logs: [], peakMemoryBytes: null, environment: {}, startup: null, disk: { enforcement: 'not-run' } });
    expect(record.emulator.routes.predict).toBe(`${record.emulator.routes.health}:predict`);
  });

  it('cancelled by the time the servers stopped, or before a phase began: CANCELLED', async () => {
    const ready = { replicas: [], startTime: new Date(), startedAtMs: 0, startup: { outcome: 'ready' as const, afterMs: 5 }, cancelled: false };
    expect(judgeBatchPredictPhases(await phasesOf({ cancelled: true })).verdict.state).toBe('JOB_STATE_CANCELLED');
    expect(judgeBatchPredictPhases(await phasesOf({ end: { cancelledBefore: 'predict', leftovers: [] }, started: ready })).verdict.state).toBe('JOB_STATE_CANCELLED');
    expect(judgeBatchPredictPhases(await phasesOf({ started: ready })).verdict.state).toBe('JOB_STATE_SUCCEEDED');
  });

  it('what the data plane returned is the stats, the partial failures and a replica that died; the disk verdict comes last', async () => {
    const failedInstances = { file: '/x/.vbe/failed-instances.jsonl', count: 1, examples: [] };
    const started = { replicas: [], startTime: new Date(), startedAtMs: 0, startup: { outcome: 'ready' as const, afterMs: 5 }, cancelled: false };
    const predicted = {
      stats: { successful: 3, failed: 1, incomplete: 2 },
      maxResponseBytes: 120,
      failuresByKind: { http: { count: 1, example: 'HTTP 500' } },
      died: { replica: 0, exitCode: 137, oomKilled: true },
      cancelled: false,
      partialFailures: [{ code: 13, message: 'HTTP 500' }],
      failedInstances,
    };
    const p = await phasesOf({ image: { image, pulled: false, usable: true }, command: containerCommand([{ name: 'AIP_MODE', value: 'PREDICTION' }], [], undefined, undefined), started, predicted, stopped: { replicaMs: 7_200_000 } });
    const judged = judgeBatchPredictPhases(p);
    expect(judged.verdict.error?.message).toMatch(/^Model server exited unexpectedly: replica 0 ran out of memory/);
    const record = batchPredictionJobRecord(p, judged, new Date());
    expect(record.completionStats).toEqual({ successfulCount: '3', failedCount: '1', incompleteCount: '2' });
    expect(record.partialFailures).toEqual([{ code: 13, message: 'HTTP 500' }]);
    expect(record.resourcesConsumed.replicaHours).toBe(2);
    expect(record.emulator).toMatchObject({ stats: { successful: 3, failed: 1, incomplete: 2, maxResponseBytes: 120 }, failedInstances, environment: { AIP_MODE: 'PREDICTION' }, container: { user: 'root' } });

    const full = checkDisk(p.plan.spec.base, image, false, p.plan.spec.base.disk.sizeBytes * 2, 0);
    const disk = await phasesOf({ image: { image, pulled: false, usable: true }, started, stopped: { disk: full, replicaMs: 0 } });
    const judgedDisk = judgeBatchPredictPhases(disk);
    expect(judgedDisk.verdict.state).toBe('JOB_STATE_FAILED');
    expect(judgedDisk.verdict.error?.message).toMatch(/^A model server replica wrote more than its boot disk/);
    expect(judgedDisk.diagnoses.at(-1)).toBe(full.diagnosis);
    expect(observeBatchPredict(disk).stats).toEqual({ successful: 0, failed: 0, incomplete: 0 });
  });

  it('warnings: what cleanup left comes last, naming vbe prune', async () => {
    const p = await phasesOf({ end: { leftovers: ['container vbe-x'] } });
    const record = batchPredictionJobRecord(p, judgeBatchPredictPhases(p), new Date());
    expect(record.emulator.warnings.at(-1)).toBe('Could not remove: container vbe-x. Run `vbe prune`.');
  });
});
