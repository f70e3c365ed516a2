import type { ImageDetails } from '../runtime/containerEngine.js';
import type { RunJobSpec } from '../spec/runJobSpec.js';
import type { Diagnosis } from '../verdict/jobState.js';
import { judgeDisk } from '../verdict/judgeDisk.js';
import type { RunVerdict } from '../verdict/judgeRunJob.js';
import { RpcCode } from '../verdict/jobState.js';
import { PRIMARY_REPLICA } from '../verdict/judgeRunJob.js';
import type { AppliedLimits } from './machineLimits.js';

/** `emulator.disk` in a job record. */
export interface DiskRecord {
  sizeBytes: number;
  source: string;
  /** What the replica put on its disk (writable layer + outputs + image); null when it did not run. */
  usedBytes: number | null;
  writableLayerBytes?: number;
  volumeBytes?: number;
  imageBytes?: number;
  /** 'storage-opt': enforced by the engine; 'measured': compared after the run; 'not-run'. */
  enforcement: 'storage-opt' | 'measured' | 'not-run';
}

export interface DiskCheck {
  record: DiskRecord;
  full: boolean;
  diagnosis?: Diagnosis;
}

const MIN_STORAGE_BYTES = 64 * 1024 ** 2;

/** The container-create fields for the machine's CPUs, shared memory and disk. */
export function replicaResources(spec: RunJobSpec, limits: AppliedLimits, image: ImageDetails, cpusetCpus = limits.cpusetCpus) {
  return {
    cpusetCpus,
    ...(spec.shmSizeBytes ? { shmSizeBytes: spec.shmSizeBytes } : {}),
    // The image shares the boot disk; the engine's storage-opt limits the writable layer alone.
    storageSizeBytes: Math.max(MIN_STORAGE_BYTES, spec.disk.sizeBytes - image.sizeBytes),
  };
}

/** Compares what the replica wrote with its boot disk. */
export function checkDisk(spec: RunJobSpec, image: ImageDetails, enforced: boolean, writableLayerBytes: number, volumeBytes: number): DiskCheck {
  const enforcement = enforced ? 'storage-opt' : 'measured';
  const verdict = judgeDisk({ writableLayerBytes, volumeBytes, imageBytes: image.sizeBytes, diskBytes: spec.disk.sizeBytes, source: spec.disk.source, enforcement });
  return {
    record: { sizeBytes: spec.disk.sizeBytes, source: spec.disk.source, usedBytes: verdict.usedBytes, writableLayerBytes, volumeBytes, imageBytes: image.sizeBytes, enforcement },
    full: verdict.full,
    ...(verdict.diagnosis ? { diagnosis: verdict.diagnosis } : {}),
  };
}

export function unmeasuredDisk(spec: RunJobSpec): DiskRecord {
  return { sizeBytes: spec.disk.sizeBytes, source: spec.disk.source, usedBytes: null, enforcement: 'not-run' };
}

/** A job that otherwise succeeded FAILS when it wrote more than its disk holds. */
export function withDiskVerdict<V extends RunVerdict>(verdict: V, disk: DiskCheck | undefined, replica = `The replica ${PRIMARY_REPLICA}`): V | RunVerdict {
  if (verdict.state !== 'JOB_STATE_SUCCEEDED' || !disk?.full) return verdict;
  return {
    state: 'JOB_STATE_FAILED',
    error: {
      code: RpcCode.INVALID_ARGUMENT,
      message: `${replica} wrote more than its boot disk of ${Math.round((disk.record.sizeBytes / 1024 ** 3) * 100) / 100} GB holds (${disk.record.usedBytes} of ${disk.record.sizeBytes} bytes); on Vertex it fails with "No space left on device".`,
    },
  };
}
