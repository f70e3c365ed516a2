import { formatDuration } from '../spec/parseDuration.js';
import { type JobError, type JobState, RpcCode } from './jobState.js';
import { judgeImage, type ImageObservation } from './judgeImage.js';
import type { LogSignal } from './scanLogLine.js';

export const PRIMARY_REPLICA = 'workerpool0-0';

/** Everything observed about one run-to-completion job; the input of the pure verdict. */
export interface RunObservation extends ImageObservation {
  /** The image's own entrypoint and CMD (undefined when the image could not be had). */
  image?: { entrypoint: string[] | null; cmd: string[] | null; user: string; exposedPorts: string[]; architecture: string; os: string };
  pullPolicy?: string;
  /** The engine could not start the process at all (executable not found, exec format error). */
  startError?: string;
  exitCode?: number;
  oomKilled: boolean;
  timedOut: boolean;
  cancelled: boolean;
  timeoutMs: number;
  command?: string[];
  args?: string[];
  stagedInputPaths: string[];
  outputContainerDir: string;
  outputFileCount: number;
  /**
   * Which semantics apply: 'custom-job' (exit 0 is SUCCEEDED whatever was written; no output is a
   * warning, a failure with expectOutput) or 'batch-files' (exit 0 without output files FAILS).
   * Undefined is 'batch-files'.
   */
  flavour?: 'custom-job' | 'batch-files';
  expectOutput?: boolean;
  /** Files the job wrote under /gcs outside the output directory (they become objects on Vertex). */
  gcsWrittenCount?: number;
  /** Paths named in "no such file" log lines that do exist somewhere (staged, written by the job, or in the Cloud Storage root). */
  existingPaths?: string[];
  /** Buckets staged whole at /gcs/<bucket>. */
  stagedBuckets?: string[];
  refusedOutputs: Array<{ path: string; reason: string }>;
  /** How many entries were refused in all (the list is cut short). */
  refusedOutputCount?: number;
  /** Paths the container added to its own filesystem (outside every volume). */
  addedPaths: string[];
  logSignals: LogSignal[];
  machineType: string;
  memoryBytes: number;
  /** The machine type's whole memory and what Vertex keeps of it (the limit is the difference). */
  machineMemoryBytes?: number;
  memoryReserveBytes?: number;
  /** Copying the outputs back stopped part-way (disk full, I/O error on the host). */
  collectionError?: string;
  /** Highest memory use the engine reported while it ran (sampled about once a second). */
  peakMemoryBytes?: number;
  logFile?: string;
}

export interface RunVerdict {
  state: JobState;
  error?: JobError;
}

/** Vertex's verdict on a run-to-completion job: its states and its messages. */
export function judgeRunJob(o: RunObservation): RunVerdict {
  if (o.cancelled) return failed('JOB_STATE_CANCELLED', RpcCode.CANCELLED, 'The job was cancelled.');
  const imageError = judgeImage(o, PRIMARY_REPLICA);
  if (imageError) return { state: 'JOB_STATE_FAILED', error: imageError };
  if (o.timedOut) {
    return failed('JOB_STATE_FAILED', RpcCode.DEADLINE_EXCEEDED, `The job exceeded its timeout of ${formatDuration(o.timeoutMs)} and was stopped.`);
  }
  const logs = o.logFile ? ` To find out more about why your job exited please check the logs: ${o.logFile}` : '';
  if (o.oomKilled) {
    return failed('JOB_STATE_FAILED', RpcCode.INVALID_ARGUMENT, `The replica ${PRIMARY_REPLICA} ran out of memory and exited with a non-zero status of 137.${logs}`);
  }
  const exitCode = o.exitCode ?? (o.startError ? 127 : 1);
  if (exitCode !== 0) {
    return failed('JOB_STATE_FAILED', RpcCode.INVALID_ARGUMENT, `The replica ${PRIMARY_REPLICA} exited with a non-zero status of ${exitCode}. Termination reason: Error.${logs}`);
  }
  if (o.collectionError) {
    return failed('JOB_STATE_FAILED', RpcCode.INTERNAL, `vbe could not copy all outputs back (${o.collectionError}); only the files listed in the record are complete.`);
  }
  if (o.outputFileCount === 0 && outputsRequired(o) && !(o.flavour === 'custom-job' && (o.gcsWrittenCount ?? 0) > 0)) {
    if (o.flavour === 'custom-job') {
      return failed('JOB_STATE_FAILED', RpcCode.NOT_FOUND, `The replica ${PRIMARY_REPLICA} exited with status 0 but wrote nothing (no file under /gcs or the output directory), and --expect-output requires outputs.`);
    }
    return failed(
      'JOB_STATE_FAILED',
      RpcCode.NOT_FOUND,
      `The replica ${PRIMARY_REPLICA} exited with status 0 but wrote no output files to AIP_BATCH_OUTPUT_DIR (${o.outputContainerDir}).`,
    );
  }
  return { state: 'JOB_STATE_SUCCEEDED' };
}

/** Whether an exit 0 without outputs fails: always under the batch file contract, for a CustomJob only with --expect-output. */
export function outputsRequired(o: Pick<RunObservation, 'flavour' | 'expectOutput'>): boolean {
  return o.flavour !== 'custom-job' || o.expectOutput === true;
}

function failed(state: JobState, code: number, message: string): RunVerdict {
  return { state, error: { code, message } };
}
