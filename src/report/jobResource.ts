import { rename, rm, writeFile } from 'node:fs/promises';
import { emulatorError } from '../errors.js';
import path from 'node:path';
import type { Diagnosis, JobError, JobState } from '../verdict/jobState.js';
import type { FailedInstancesRecord } from '../staging/failedInstances.js';
import type { ChartDataRecord } from './chartData.js';
import type { DiskRecord } from '../jobs/diskCheck.js';

/** A phase of the job pipeline with its wall time. */
export interface PhaseTiming {
  name: string;
  durationMs: number;
  /** When it started, in ms since the job's createTime. */
  startMs?: number;
}

/** One start of the replica (more than one with --max-restarts). */
export interface RunAttempt {
  attempt: number;
  exitCode: number;
  oomKilled: boolean;
  durationMs: number;
  startError?: string;
}

/** The limits a replica ran under (`emulator.limits`): the machine type's, as Vertex leaves them. */
export interface LimitsRecord {
  machineType: string;
  cpus: number;
  /** The CPUs the container may run on (cpuset): `nproc` inside shows their count. */
  cpusetCpus?: string;
  /** The container's memory limit: machine memory minus what Vertex keeps, capped at the host. */
  memoryBytes: number;
  machineMemoryBytes?: number;
  memoryReserveBytes?: number;
  memoryReserve?: { policy: string; basis: string };
  /** The machine type's own figures. */
  requested: { cpus: number; memoryBytes: number };
  cappedToHost: boolean;
}

/** The emulator's own facts about a run, beside Vertex's fields. */
export interface RunEmulatorSection {
  contract: 'files';
  /** Which `vbe run` semantics were applied: a Vertex CustomJob, or the batch file contract. */
  flavour: 'custom-job' | 'batch-files';
  /** Why that flavour (the flag, the spec's shape, or the inputs). */
  flavourReason: string;
  jobId: string;
  image: { uri: string; id?: string; digest?: string; platform?: string; pulled: boolean };
  limits?: LimitsRecord;
  /** /dev/shm size from containerSpec.sharedMemorySizeMb; null: the engine's default (64 MiB). */
  sharedMemoryBytes?: number | null;
  /** The replica's boot disk and what it put there. */
  disk?: DiskRecord;
  container?: { command?: string[]; args?: string[]; user: string };
  attempts: RunAttempt[];
  environment: Record<string, string>;
  userEnvNames: string[];
  exitCode: number | null;
  oomKilled: boolean;
  timedOut: boolean;
  /** Highest memory use seen (engine stats, about once a second); null when not measured. */
  peakMemoryBytes: number | null;
  durationMs: number;
  phases: PhaseTiming[];
  inputs: { fileCount: number; totalBytes: number; files: Array<{ source: string; containerPath: string; sizeBytes: number }> };
  outputs: { hostDirectory: string; containerDirectory: string; complete: boolean; fileCount: number; totalBytes: number; files: Array<{ path: string; sizeBytes: number }>; refused: Array<{ path: string; reason: string }>; refusedCount?: number };
  diagnoses: Diagnosis[];
  warnings: string[];
  logs: { stdout: string; stderr: string; truncated: boolean };
  logTail: string[];
  recordFile: string;
  /** With `--gcs real`: what moved to and from Cloud Storage. */
  cloudStorage?: CloudStorageRecord;
  /** The buckets seen at /gcs/<bucket> and what the job wrote there (outside the output prefix). */
  gcs?: GcsBucketsRecord;
  /** What the HTML report draws: timeline, engine stats over time. */
  charts?: ChartDataRecord;
}

/** /gcs as the job saw it: which buckets were staged whole, and what came back. Paths are `bucket/object`. */
export interface GcsBucketsRecord {
  root: string;
  buckets: string[];
  staged: { fileCount: number; totalBytes: number };
  /** Prefixes not staged (the output prefix starts empty) and collected with the outputs instead. */
  excluded: string[];
  /** Files written or changed by the job, each as a gs:// URI and the host file it is now. */
  written: Array<{ uri: string; hostPath: string; sizeBytes: number }>;
  writtenCount: number;
  writtenBytes: number;
  /** Staged files the job deleted; kept on the host (the cautious side). */
  deleted: string[];
  refused: Array<{ path: string; reason: string }>;
  complete: boolean;
}

/** `--gcs real`: the endpoint, the local mirror and what was downloaded and uploaded. */
export interface CloudStorageRecord {
  mode: 'real';
  endpoint: string;
  mirrorDirectory: string;
  downloaded: { objects: number; bytes: number };
  uploaded: { objects: number; bytes: number; destination?: string };
  uploadError?: string;
}

/** Shaped like Vertex's job resource (CustomJob / BatchPredictionJob JSON), plus `emulator`. */
export interface RunJobResource {
  name: string;
  displayName: string;
  state: JobState;
  error?: JobError;
  createTime: string;
  startTime?: string;
  endTime: string;
  updateTime: string;
  outputInfo: { outputDirectory: string; gcsOutputDirectory?: string };
  emulator: RunEmulatorSection;
}

/**
 * Writes JSON atomically (temp file + rename), so a crash or a full disk never leaves a
 * half-written record; failing to write it at all is an emulator error (exit 3).
 */
export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    await writeFile(temp, `${JSON.stringify(value, null, 2)}\n`, 'utf8');
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw emulatorError('RECORD_WRITE_FAILED', `Could not write the job record ${file}: ${(error as Error).message}`, 'Free disk space or choose another --output, then run again.', error);
  }
}

/** A BatchPredictionJob resource (aiplatform v1 JSON), plus `emulator`. int64 counts are strings, as in REST. */
export interface BatchPredictionJobResource {
  name: string;
  displayName: string;
  unmanagedContainerModel: {
    artifactUri?: string;
    containerSpec: {
      imageUri: string;
      command?: string[];
      args?: string[];
      env?: Array<{ name: string; value: string }>;
      ports: Array<{ containerPort: number }>;
      predictRoute?: string;
      healthRoute?: string;
    };
  };
  inputConfig: { instancesFormat: string; gcsSource: { uris: string[] } };
  instanceConfig?: { instanceType?: 'object' | 'array'; keyField?: string; includedFields?: string[]; excludedFields?: string[] };
  modelParameters?: unknown;
  outputConfig: { predictionsFormat: 'jsonl'; gcsDestination: { outputUriPrefix: string } };
  dedicatedResources: { machineSpec: { machineType: string }; startingReplicaCount: number; maxReplicaCount: number };
  manualBatchTuningParameters: { batchSize: number };
  outputInfo: { gcsOutputDirectory?: string; outputDirectory: string };
  state: JobState;
  error?: JobError;
  partialFailures?: JobError[];
  completionStats: { successfulCount: string; failedCount: string; incompleteCount: string };
  resourcesConsumed: { replicaHours: number };
  createTime: string;
  startTime?: string;
  endTime: string;
  updateTime: string;
  emulator: {
    contract: 'prediction-server';
    jobId: string;
    image: { uri: string; id?: string; digest?: string; platform?: string; pulled: boolean };
    limits: LimitsRecord;
    sharedMemoryBytes?: number | null;
    disk?: DiskRecord;
    /** Start-up limit and per-request deadline, with Vertex's sources. */
    deadlines?: { startupTimeoutMs: number; requestTimeoutMs: number; sources: { startup: string; request: string } };
    container?: { command?: string[]; args?: string[]; user: string };
    environment: Record<string, string>;
    userEnvNames: string[];
    routes: { health: string; predict: string; port: number };
    startup: unknown;
    stats: { successful: number; failed: number; incomplete: number; maxResponseBytes: number };
    /** Highest memory use of any replica (engine stats, about once a second). */
    peakMemoryBytes: number | null;
    failuresByKind: Record<string, { count: number; example: string }>;
    /** vbe's per-instance failure record (`.vbe/failed-instances.jsonl`) and its first lines; absent when no instance was read. */
    failedInstances?: FailedInstancesRecord;
    durationMs: number;
    phases: PhaseTiming[];
    outputs: { directory: string; files: string[] };
    diagnoses: Diagnosis[];
    warnings: string[];
    logs: Array<{ stdout: string; stderr: string }>;
    logTail: string[];
    recordFile: string;
    cloudStorage?: CloudStorageRecord;
    /** What the HTML report draws: per-replica timeline and stats, instances over time, latency. */
    charts?: ChartDataRecord;
  };
}
