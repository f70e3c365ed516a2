import { rename, rm, writeFile } from 'node:fs/promises';
import { emulatorError } from '../errors.js';
import path from 'node:path';
import type { Diagnosis, JobError, JobState } from '../verdict/jobState.js';

/** A phase of the job pipeline with its wall time. */
export interface PhaseTiming {
  name: string;
  durationMs: number;
}

/** One start of the replica (more than one with --max-restarts). */
export interface RunAttempt {
  attempt: number;
  exitCode: number;
  oomKilled: boolean;
  durationMs: number;
  startError?: string;
}

/** The emulator's own facts about a run, beside Vertex's fields. */
export interface RunEmulatorSection {
  contract: 'files';
  jobId: string;
  image: { uri: string; id?: string; digest?: string; platform?: string; pulled: boolean };
  limits?: { machineType: string; cpus: number; memoryBytes: number; requested: { cpus: number; memoryBytes: number }; cappedToHost: boolean };
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
    limits: { machineType: string; cpus: number; memoryBytes: number; requested: { cpus: number; memoryBytes: number }; cappedToHost: boolean };
    container?: { command?: string[]; args?: string[]; user: string };
    environment: Record<string, string>;
    userEnvNames: string[];
    routes: { health: string; predict: string; port: number };
    startup: unknown;
    stats: { successful: number; failed: number; incomplete: number; maxResponseBytes: number };
    /** Highest memory use of any replica (engine stats, about once a second). */
    peakMemoryBytes: number | null;
    failuresByKind: Record<string, { count: number; example: string }>;
    durationMs: number;
    phases: PhaseTiming[];
    outputs: { directory: string; files: string[] };
    diagnoses: Diagnosis[];
    warnings: string[];
    logs: Array<{ stdout: string; stderr: string }>;
    logTail: string[];
    recordFile: string;
    cloudStorage?: CloudStorageRecord;
  };
}
