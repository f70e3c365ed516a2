import type { PhaseTiming } from '../report/jobResource.js';
import { type BatchObservation, type BatchVerdict, diagnoseBatchPredict, judgeBatchPredict } from '../verdict/judgeBatchPredict.js';
import type { Diagnosis } from '../verdict/jobState.js';
import type { ChartRecorder } from './chartRecorder.js';
import { withDiskVerdict } from './diskCheck.js';
import type { PipelineEnd } from './jobPipeline.js';
import type { AppliedLimits } from './machineLimits.js';
import type { ContainerCommand } from './phases/containerCommand.js';
import type { PredictOutcome } from './phases/predictInstances.js';
import type { ImageOutcome } from './phases/prepareImage.js';
import type { StartedServers } from './phases/startServers.js';
import type { StoppedServers } from './phases/stopServers.js';
import type { BatchPlan } from './phases/validateBatchPredict.js';

/** What each phase of `vbe batch-predict` produced (a phase that did not run has no output). */
export interface BatchPredictPhases {
  jobId: string;
  createTime: Date;
  phases: PhaseTiming[];
  charts: ChartRecorder;
  plan: BatchPlan;
  limits: AppliedLimits;
  /** The engine host's CPUs, which the replicas share. */
  hostCpus: number;
  image?: ImageOutcome;
  command?: ContainerCommand;
  started?: StartedServers;
  predicted?: PredictOutcome;
  stopped?: StoppedServers;
  /** The job was cancelled by the time its servers were stopped (Ctrl-C at any point until then). */
  cancelled: boolean;
  end: PipelineEnd;
}

/** The phases' outputs so far (while the job runs: what start-up's progress report is judged on). */
export type BatchPredictSoFar = Omit<BatchPredictPhases, 'end'> & { end?: PipelineEnd };

/** The verdict's input, built from the phases' outputs (pure). */
export function observeBatchPredict(p: BatchPredictSoFar): BatchObservation {
  const { spec, routes } = p.plan;
  const { limits, started, predicted } = p;
  const image = p.image?.image;
  const replicas = started?.replicas ?? [];
  return {
    imageUri: spec.base.imageUri,
    ...(p.image?.pullFailure ? { pullFailure: p.image.pullFailure } : {}),
    ...(image ? { image: { architecture: image.architecture, os: image.os } } : {}),
    cancelled: Boolean(p.cancelled || p.end?.cancelledBefore || started?.cancelled || predicted?.cancelled),
    port: spec.port,
    healthRoute: routes.health,
    predictRoute: routes.predict,
    batchSize: spec.batchSize,
    machineType: spec.base.machine.name,
    memoryBytes: limits.memoryBytes,
    machineMemoryBytes: limits.machineMemoryBytes,
    memoryReserveBytes: limits.memoryReserveBytes,
    ...(started?.startup ? { startup: started.startup } : {}),
    ...(predicted?.died ? { died: predicted.died } : {}),
    stats: predicted?.stats ?? { successful: 0, failed: 0, incomplete: 0 },
    maxResponseBytes: predicted?.maxResponseBytes ?? 0,
    failuresByKind: predicted?.failuresByKind ?? {},
    ...(spec.maxFailedRatio !== undefined ? { maxFailedRatio: spec.maxFailedRatio } : {}),
    logSignals: replicas.flatMap((r) => r.capture.signals),
    logTail: replicas.flatMap((r) => r.capture.tail.map((t) => (t.channel === 'stderr' ? `[stderr] ${t.line}` : t.line))),
  };
}

export interface JudgedBatchPredict {
  observation: BatchObservation;
  verdict: BatchVerdict;
  diagnoses: Diagnosis[];
}

/** The judge phase of `vbe batch-predict`: Vertex's verdict, the disk's, and the diagnoses (pure). */
export function judgeBatchPredictPhases(p: BatchPredictPhases): JudgedBatchPredict {
  const observation = observeBatchPredict(p);
  const disk = p.stopped?.disk;
  return {
    observation,
    verdict: withDiskVerdict(judgeBatchPredict(observation), disk, 'A model server replica'),
    diagnoses: [...diagnoseBatchPredict(observation), ...(disk?.diagnosis ? [disk.diagnosis] : [])],
  };
}
