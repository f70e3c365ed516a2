import type { ImageDetails } from '../../runtime/containerEngine.js';
import { RECORD_DIR_NAME } from '../../report/recordDir.js';
import { GCS_MOUNT } from '../../spec/gcsUri.js';
import { collectGcsChanges, type GcsChanges } from '../../staging/collectGcsChanges.js';
import { type CollectionResult, collectOutputs } from '../../staging/collectOutputs.js';
import { DATA_MOUNT } from '../../staging/containerLayout.js';
import { checkDisk, type DiskCheck } from '../diskCheck.js';
import type { JobPipeline } from '../jobPipeline.js';
import type { RunOutcome } from './runAttempts.js';
import type { StagedRun } from './stageRunJob.js';
import type { RunPlan } from './validateRunJob.js';

/** Paths the container added outside its volumes that a record keeps at most. */
const MAX_ADDED_PATHS = 10_000;
/** Time the copy of the outputs has at least, even when the job ran up to its --timeout. */
const COLLECT_GRACE_MS = 60_000;

/** The collect phase's output: the outputs copied back, what the container wrote elsewhere, its disk use. */
export interface CollectedRun {
  collection: CollectionResult;
  /** Paths the container added to its own filesystem (outside every volume). */
  addedPaths: string[];
  /** The disk verdict's input; undefined when the engine could not measure the writable layer. */
  disk?: DiskCheck;
  /** Ctrl-C while copying: what was copied whole stays, the job is CANCELLED. */
  cancelled: boolean;
  /** The copy ran past --timeout (and its grace). */
  timedOut: boolean;
  /** Copying stopped part-way for a reason of the host's (disk full, I/O error). */
  collectionError?: string;
}

/**
 * The collect phase of `vbe run`: the outputs, copied back safely (see collectOutputs), with the
 * engine's filesystem diff and the writable layer's size asked for at the same time (three engine
 * calls at once).
 */
export async function collectRunOutputs(plan: RunPlan, image: ImageDetails, staged: StagedRun, run: RunOutcome, job: Pick<JobPipeline, 'signal' | 'transfer'>): Promise<CollectedRun> {
  const { spec, output } = plan;
  const mountPoints = new Set([DATA_MOUNT, GCS_MOUNT]);
  const changes = run.exited.changes((c) => c.kind === 'added' && !mountPoints.has(c.path), MAX_ADDED_PATHS);
  changes.catch(() => undefined); // awaited below; not unhandled when collecting fails first
  const layerBytes = run.exited.writableLayerBytes();
  layerBytes.catch(() => undefined);
  const collection = await collectOutputs(
    (sink, signal) => run.exited.readArchive(output.containerDir, sink, signal),
    output.hostDir,
    // Collection counts against --timeout too (with a minute's grace for a job that ran up to it).
    {
      maxFileBytes: spec.maxOutputFileBytes,
      reserved: [RECORD_DIR_NAME],
      deadline: Math.max(run.deadlineMs, Date.now() + COLLECT_GRACE_MS),
      ...(job.signal ? { signal: job.signal } : {}),
    },
    job.transfer,
  );
  const addedPaths = (await changes).map((c) => c.path);
  const written = await layerBytes.catch(() => undefined); // not measured: no disk verdict
  const disk = written === undefined ? undefined : checkDisk(spec, image, staged.first.storageLimited, written, collection.totalBytes);
  const cancelled = collection.cancelled === true;
  const timedOut = collection.timedOut === true;
  return {
    collection,
    addedPaths,
    ...(disk ? { disk } : {}),
    cancelled,
    timedOut,
    ...(collection.error && !cancelled && !timedOut ? { collectionError: collection.error } : {}),
  };
}

/** Whether what the job wrote under /gcs is to be written back (the outputs came back whole). */
export function bucketsToWriteBack(plan: RunPlan, collected: CollectedRun): boolean {
  return plan.buckets.buckets.length > 0 && !collected.cancelled && !collected.timedOut && !collected.collectionError;
}

/** The collect-gcs phase: what the job wrote elsewhere under /gcs becomes objects on Vertex, written back to the gcs root. */
export function collectBucketChanges(plan: RunPlan, run: RunOutcome, job: Pick<JobPipeline, 'signal'>): Promise<GcsChanges> {
  return collectGcsChanges((sink, signal) => run.exited.readArchive(GCS_MOUNT, sink, signal), plan.spec.gcsRoot, {
    manifest: plan.buckets.manifest,
    skip: plan.buckets.excluded,
    maxFileBytes: plan.spec.maxOutputFileBytes,
    ...(job.signal ? { signal: job.signal } : {}),
  });
}
