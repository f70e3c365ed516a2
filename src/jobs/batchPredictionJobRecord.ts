import path from 'node:path';
import type { BatchPredictionJobResource } from '../report/jobResource.js';
import type { BatchPredictSpec } from '../spec/batchPredictSpec.js';
import type { BatchPredictPhases, JudgedBatchPredict } from './batchPredictOutcome.js';
import { unmeasuredDisk } from './diskCheck.js';
import { leftoverWarning } from './jobPipeline.js';
import { limitsRecord } from './machineLimits.js';
import { containerRecord, imageRecord, vertexEnvironmentRecord } from './recordSections.js';

const MS_PER_HOUR = 3_600_000;
/** Lines of the replicas' logs a record keeps. */
const LOG_TAIL_LINES = 40;

/** The BatchPredictionJob resource `vbe batch-predict` writes to `<prediction dir>/.vbe/job.json`, built from its phases' outputs (pure). */
export function batchPredictionJobRecord(p: BatchPredictPhases, judged: JudgedBatchPredict, endTime: Date): BatchPredictionJobResource {
  const { spec, output, dirName, predictionDir, recordDir, shards, routes } = p.plan;
  const base = spec.base;
  const { observation, verdict, diagnoses } = judged;
  const image = p.image?.image;
  const command = p.command;
  const replicas = p.started?.replicas ?? [];
  const predicted = p.predicted;
  const gcsOutputDirectory = output.gcsUri ? `${output.gcsUri.replace(/\/+$/, '')}/${dirName}` : undefined;
  const stats = observation.stats;
  // The proto's convention: -1 where the count is unknown (the job ended before reading its input).
  const incompleteCount = predicted ? String(stats.incomplete) : '-1';
  return {
    name: `projects/local/locations/local/batchPredictionJobs/${p.jobId}`,
    displayName: base.displayName,
    unmanagedContainerModel: {
      ...(base.modelDir ? { artifactUri: base.modelDir.text } : {}),
      containerSpec: {
        imageUri: base.imageUri,
        ...(base.command ? { command: base.command } : {}),
        ...(base.args ? { args: base.args } : {}),
        ...(base.env.length ? { env: base.env.map((e) => ({ name: e.name, value: '<not recorded>' })) } : {}),
        ports: [{ containerPort: spec.port }],
        ...(spec.predictRoute ? { predictRoute: spec.predictRoute } : {}),
        ...(spec.healthRoute ? { healthRoute: spec.healthRoute } : {}),
        ...(base.shmSizeBytes ? { sharedMemorySizeMb: String(base.shmSizeBytes / 1024 ** 2) } : {}),
        ...(spec.startupProbe ? { startupProbe: spec.startupProbe } : {}),
        ...(spec.healthProbe ? { healthProbe: spec.healthProbe } : {}),
      },
    },
    inputConfig: { instancesFormat: spec.instancesFormat, gcsSource: { uris: base.inputs.map((i) => i.text) } },
    ...(Object.keys(spec.instanceConfig).length ? { instanceConfig: spec.instanceConfig } : {}),
    ...(spec.modelParameters ? { modelParameters: spec.modelParameters.value } : {}),
    outputConfig: { predictionsFormat: spec.predictionsFormat, gcsDestination: { outputUriPrefix: base.output.text } },
    dedicatedResources: { machineSpec: { machineType: base.machine.name }, startingReplicaCount: spec.replicaCount, maxReplicaCount: spec.replicaCount },
    manualBatchTuningParameters: { batchSize: spec.batchSize },
    outputInfo: { ...(gcsOutputDirectory ? { gcsOutputDirectory } : {}), outputDirectory: predictionDir },
    state: verdict.state,
    ...(verdict.error ? { error: verdict.error } : {}),
    ...(predicted?.partialFailures.length ? { partialFailures: predicted.partialFailures } : {}),
    completionStats: { successfulCount: String(stats.successful), failedCount: String(stats.failed), incompleteCount },
    resourcesConsumed: { replicaHours: (p.stopped?.replicaMs ?? 0) / MS_PER_HOUR },
    createTime: p.createTime.toISOString(),
    ...(p.started ? { startTime: p.started.startTime.toISOString() } : {}),
    endTime: endTime.toISOString(),
    updateTime: endTime.toISOString(),
    emulator: {
      contract: 'prediction-server',
      jobId: p.jobId,
      image: imageRecord(base.imageUri, p.image?.pulled ?? false, image),
      limits: limitsRecord(p.limits),
      sharedMemoryBytes: base.shmSizeBytes ?? null,
      disk: p.stopped?.disk?.record ?? unmeasuredDisk(base),
      deadlines: deadlinesRecord(spec),
      ...(image ? { container: containerRecord(image, command?.command, command?.args) } : {}),
      environment: vertexEnvironmentRecord(command?.environment ?? [], base.env),
      userEnvNames: base.env.map((e) => e.name),
      routes: { health: routes.health, predict: routes.predict, port: spec.port },
      startup: observation.startup ?? null,
      stats: { ...stats, maxResponseBytes: observation.maxResponseBytes },
      peakMemoryBytes: replicas.length ? Math.max(...replicas.map((r) => r.memory.peakBytes())) : null,
      failuresByKind: observation.failuresByKind,
      ...(predicted ? { failedInstances: predicted.failedInstances } : {}),
      durationMs: endTime.getTime() - p.createTime.getTime(),
      phases: p.phases,
      outputs: {
        directory: predictionDir,
        files: shards.flatMap((s) => [path.join(predictionDir, s.results), path.join(predictionDir, s.errors)]),
      },
      diagnoses,
      warnings: batchPredictWarnings(p),
      logs: replicas.map((r) => r.capture.files),
      logTail: observation.logTail.slice(-LOG_TAIL_LINES),
      recordFile: path.join(recordDir, 'job.json'),
      charts: p.charts.toRecord(p.phases),
    },
  };
}

/** The spec's warnings, the machine's, the replicas' (idle, sharing the host), and what cleanup left. */
function batchPredictWarnings(p: BatchPredictPhases): string[] {
  const { spec, idleWarning } = p.plan;
  return [
    ...spec.base.warnings,
    ...p.limits.warnings,
    ...(idleWarning ? [idleWarning] : []),
    ...(spec.replicaCount > 1 && p.limits.cappedToHost ? [`${spec.replicaCount} replicas share this host's ${p.hostCpus} CPUs; each gets the machine type's limits, capped.`] : []),
    ...leftoverWarning(p.end.leftovers),
  ];
}

/** The start-up and request limits a job ran under, with where Vertex's come from (`emulator.deadlines`). */
function deadlinesRecord(spec: BatchPredictSpec) {
  return {
    startupTimeoutMs: spec.startupTimeoutMs,
    requestTimeoutMs: spec.requestTimeoutMs,
    sources: {
      startup: 'Vertex: model loading "times out after approximately 40 minutes" (cloud.google.com/vertex-ai/docs/predictions/get-batch-predictions)',
      request: "Vertex: the Google Front End's 10-minute deadline per request, then 504 and retries; a container can reset it with periodic 102 responses (cloud.google.com/vertex-ai/docs/general/troubleshooting)",
    },
  };
}
