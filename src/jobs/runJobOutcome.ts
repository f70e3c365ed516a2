import type { PhaseTiming } from '../report/jobResource.js';
import type { GcsChanges } from '../staging/collectGcsChanges.js';
import { diagnoseRunJob } from '../verdict/diagnoseRunJob.js';
import type { Diagnosis } from '../verdict/jobState.js';
import { judgeRunJob, type RunObservation, type RunVerdict } from '../verdict/judgeRunJob.js';
import type { ChartRecorder } from './chartRecorder.js';
import { withDiskVerdict } from './diskCheck.js';
import { existingMissingPaths } from './gcsBucketsRecord.js';
import type { PipelineEnd } from './jobPipeline.js';
import type { AppliedLimits } from './machineLimits.js';
import type { CollectedRun } from './phases/collectRunOutputs.js';
import type { ContainerCommand } from './phases/containerCommand.js';
import type { ImageOutcome } from './phases/prepareImage.js';
import type { RunOutcome } from './phases/runAttempts.js';
import type { RunPlan } from './phases/validateRunJob.js';

/** What each phase of `vbe run` produced (a phase that did not run has no output). */
export interface RunJobPhases {
  jobId: string;
  createTime: Date;
  phases: PhaseTiming[];
  charts: ChartRecorder;
  plan: RunPlan;
  limits: AppliedLimits;
  image?: ImageOutcome;
  command?: ContainerCommand;
  run?: RunOutcome;
  collected?: CollectedRun;
  gcsChanges?: GcsChanges;
  end: PipelineEnd;
}

/** The verdict's input, built from the phases' outputs (pure). */
export function observeRunJob(p: RunJobPhases): RunObservation {
  const { spec, inputs, output, buckets, logFiles } = p.plan;
  const { run, collected, gcsChanges, limits } = p;
  const image = p.image?.image;
  const logSignals = run?.capture.signals ?? [];
  const gcsError = gcsChanges && !gcsChanges.cancelled ? gcsChanges.error : undefined;
  const collectionError = collected?.collectionError ?? gcsError;
  return {
    imageUri: spec.imageUri,
    ...(p.image?.pullFailure ? { pullFailure: p.image.pullFailure } : {}),
    ...(image ? { image: { entrypoint: image.entrypoint, cmd: image.cmd, user: image.user, exposedPorts: image.exposedPorts, architecture: image.architecture, os: image.os } } : {}),
    ...(run?.startError ? { startError: run.startError } : {}),
    ...(run ? { exitCode: run.exitCode } : {}),
    oomKilled: run?.oomKilled ?? false,
    timedOut: Boolean(run?.timedOut || collected?.timedOut),
    cancelled: Boolean(p.end.cancelledBefore || run?.cancelled || collected?.cancelled || gcsChanges?.cancelled),
    timeoutMs: spec.timeoutMs,
    ...(spec.command ? { command: spec.command } : {}),
    ...(spec.args ? { args: spec.args } : {}),
    stagedInputPaths: inputs.files.map((f) => f.containerPath),
    outputContainerDir: output.containerDir,
    outputFileCount: collected?.collection.fileCount ?? 0,
    flavour: spec.flavour.name,
    expectOutput: spec.expectOutput,
    ...(gcsChanges ? { gcsWrittenCount: gcsChanges.writtenCount } : {}),
    existingPaths: existingMissingPaths(logSignals, buckets.manifest, gcsChanges, collected?.collection, output.containerDir),
    stagedBuckets: buckets.buckets,
    refusedOutputs: collected?.collection.refused ?? [],
    ...(collected ? { refusedOutputCount: collected.collection.refusedCount } : {}),
    addedPaths: collected?.addedPaths ?? [],
    logSignals,
    machineType: spec.machine.name,
    memoryBytes: limits.memoryBytes,
    machineMemoryBytes: limits.machineMemoryBytes,
    memoryReserveBytes: limits.memoryReserveBytes,
    ...(collectionError ? { collectionError } : {}),
    ...(run?.peakMemoryBytes !== undefined ? { peakMemoryBytes: run.peakMemoryBytes } : {}),
    logFile: logFiles.stderr,
  };
}

/** The judge phase of `vbe run`: Vertex's verdict, the disk's, and the diagnoses (pure). */
export function judgeRunJobPhases(p: RunJobPhases): { observation: RunObservation; verdict: RunVerdict; diagnoses: Diagnosis[] } {
  const observation = observeRunJob(p);
  const disk = p.collected?.disk;
  return {
    observation,
    verdict: withDiskVerdict(judgeRunJob(observation), disk),
    diagnoses: [...diagnoseRunJob(observation), ...(disk?.diagnosis ? [disk.diagnosis] : [])],
  };
}
