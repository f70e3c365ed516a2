import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { type ImageDetails, ContainerEngine } from '../runtime/containerEngine.js';
import { type BatchPredictionJobResource, writeJsonAtomic } from '../report/jobResource.js';
import { type BatchPredictOptions, type BatchPredictSpec, resolveBatchPredictSpec } from '../spec/batchPredictSpec.js';
import { buildEnvironment, type EnvVar, expandVertexReferences } from '../spec/expandVertexReferences.js';
import { GCS_MOUNT } from '../spec/gcsUri.js';
import { DATA_MOUNT } from '../staging/containerLayout.js';
import { JsonlWriter, predictionDirectoryName, predictionFileNames } from '../staging/predictionOutputs.js';
import { FailedInstanceSink, type FailedInstancesRecord } from '../staging/failedInstances.js';
import { resolveInputs, resolveModelDir, resolveOutput } from '../staging/resolveLocations.js';
import { stageInputs } from '../staging/stageInputs.js';
import { formatBytes } from '../verdict/diagnoseRunJob.js';
import { type BatchObservation, diagnoseBatchPredict, judgeBatchPredict } from '../verdict/judgeBatchPredict.js';
import { isLinuxAmd64 } from '../verdict/judgeImage.js';
import type { JobError } from '../verdict/jobState.js';
import { ensureImage } from './ensureImage.js';
import { newJobId } from './jobId.js';
import { containerRecord, imageRecord, vertexEnvironmentRecord } from './recordSections.js';
import { CLEANUP_BUDGET_MS, JobPipeline, leftoverWarning } from './jobPipeline.js';
import { realGcsOptions, withRealCloudStorage } from './withRealCloudStorage.js';
import { ChartRecorder, replicaLane as lane } from './chartRecorder.js';
import { JobResources } from './jobResources.js';
import { LogCapture } from './logCapture.js';
import { checkAccelerators } from './checkAccelerators.js';
import { cpusetFor, limitsRecord, machineLimits } from './machineLimits.js';
import { checkDisk, type DiskCheck, replicaResources, unmeasuredDisk, withDiskVerdict } from './diskCheck.js';
import { waitUntilReady } from './serverReadiness.js';
import { PredictionClient } from './predictionClient.js';
import { idleReplicaWarning, partitionInputs } from './partitionInputs.js';
import type { RunJobHooks } from './jobHooks.js';
import { RECORD_DIR_NAME } from '../report/recordDir.js';
import { predictAll, type Replica } from './predictDataPlane.js';


/**
 * Runs a BatchPredictionJob under the documented prediction-server contract: the container is
 * an HTTP server; the emulator reads the input, POSTs batches to it on 127.0.0.1 and writes the
 * output files, exactly as Vertex does.
 */
export async function batchPredict(options: BatchPredictOptions, hooks: RunJobHooks = {}): Promise<BatchPredictionJobResource> {
  if (options.gcs === 'real') {
    const { base } = await resolveBatchPredictSpec(realGcsOptions(options));
    return withRealCloudStorage(base, hooks.onProgress ?? (() => undefined), (gcsRoot) => batchPredict({ ...options, gcs: 'local', gcsRoot }, hooks));
  }
  const job = new JobPipeline(hooks);
  const { jobId, createTime, logger, progress, transfer, phases } = job;
  const timed = <T>(name: string, fn: () => Promise<T>) => job.timed(name, fn);

  const { spec, inputs, artifact, output } = await timed('validate', async () => {
    const spec = await resolveBatchPredictSpec(options);
    const inputs = await resolveInputs(spec.base.inputs, spec.base.gcsRoot);
    const artifact = spec.base.modelDir ? await resolveModelDir(spec.base.modelDir, spec.base.gcsRoot) : undefined;
    const output = await resolveOutput(spec.base.output, spec.base.gcsRoot);
    return { spec, inputs, artifact, output };
  });
  const base = spec.base;
  // Named for the Model's display name when the job has a Model, else the job's (UNCONFIRMED for unmanaged containers).
  const dirName = predictionDirectoryName(spec.modelDisplayName ?? base.displayName, createTime);
  const predictionDir = path.join(output.hostDir, dirName);
  const recordDir = path.join(predictionDir, RECORD_DIR_NAME);
  await mkdir(recordDir, { recursive: true });

  const engine = hooks.engine ?? (await timed('connect', () => ContainerEngine.connect()));
  const host = await engine.hostInfo();
  const limits = machineLimits(base.machine, host, base.memoryReserve);
  const gpus = checkAccelerators(base.accelerator, host);
  const warnings = [...base.warnings, ...limits.warnings];
  const partition = partitionInputs(spec.instancesFormat, inputs.files.length, spec.replicaCount);
  const idle = idleReplicaWarning(spec.instancesFormat, inputs.files.map((f) => f.hostPath), spec.replicaCount, partition);
  if (idle) warnings.push(idle);
  if (spec.replicaCount > 1 && limits.cappedToHost) warnings.push(`${spec.replicaCount} replicas share this host's ${host.cpus} CPUs; each gets the machine type's limits, capped.`);

  const endpointId = newJobId();
  const deployedModelId = newJobId();
  const healthRoute = spec.healthRoute ?? `/v1/endpoints/${endpointId}/deployedModels/${deployedModelId}`;
  const predictRoute = spec.predictRoute ?? `${healthRoute}:predict`;
  const observation: BatchObservation = {
    imageUri: base.imageUri,
    cancelled: false,
    port: spec.port,
    healthRoute,
    predictRoute,
    batchSize: spec.batchSize,
    machineType: base.machine.name,
    memoryBytes: limits.memoryBytes,
    machineMemoryBytes: limits.machineMemoryBytes,
    memoryReserveBytes: limits.memoryReserveBytes,
    stats: { successful: 0, failed: 0, incomplete: 0 },
    maxResponseBytes: 0,
    failuresByKind: {},
    logSignals: [],
    logTail: [],
  };
  if (spec.maxFailedRatio !== undefined) observation.maxFailedRatio = spec.maxFailedRatio;
  const partialFailures: JobError[] = [];
  const resources = new JobResources(engine, jobId, logger);
  const replicas: Replica[] = [];
  let image: ImageDetails | undefined;
  let pulled = false;
  let startTime: Date | undefined;
  let environment: EnvVar[] = [];
  let command: string[] | undefined;
  let args: string[] | undefined;
  const shards = Array.from({ length: spec.replicaCount }, (_, i) => predictionFileNames(spec.outputNaming, i, spec.replicaCount));
  const cancelled = () => hooks.signal?.aborted === true;
  let replicaMs = 0;
  let failedInstances: FailedInstancesRecord | undefined;
  const charts = new ChartRecorder(createTime);
  let disk: DiskCheck | undefined;

  // Cancelling kills the servers at once: in-flight requests end, workers stop, cleanup runs.
  const onAbort = () => {
    progress('cancelling: stopping the model servers');
    for (const r of replicas) r.started.kill().catch(() => undefined);
  };
  hooks.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const got = await timed('image', () => ensureImage(engine, base.imageUri, base.pullPolicy, progress, transfer));
    if ('pullFailure' in got) observation.pullFailure = got.pullFailure;
    else {
      image = got.image;
      pulled = got.pulled;
      observation.image = { architecture: image.architecture, os: image.os };
    }

    if (image && isLinuxAmd64(image) && !cancelled()) {
      const vertexEnv = serverEnv({ spec, endpointId, deployedModelId, healthRoute, predictRoute, storageUri: artifact?.envValue ?? '' });
      const built = buildEnvironment(vertexEnv, base.env);
      environment = built.env;
      command = base.command?.map((p) => expandVertexReferences(p, built.variables));
      args = base.args?.map((p) => expandVertexReferences(p, built.variables));

      // Replicas: one container each, the port published on 127.0.0.1 only.
      const created = await timed('stage', async () => {
        const mounts = [{ volume: await resources.volume(`vbe-${jobId}-data`), target: DATA_MOUNT }];
        if (artifact?.usesGcs) mounts.push({ volume: await resources.volume(`vbe-${jobId}-gcs`), target: GCS_MOUNT });
        const all = [];
        for (let i = 0; i < spec.replicaCount; i++) {
          all.push(
            await resources.container({
              name: `vbe-${jobId}-replica-${i}`,
              image: base.imageUri,
              ...(command ? { entrypoint: command } : {}),
              ...(args ? { cmd: args } : {}),
              env: environment,
              nanoCpus: limits.nanoCpus,
              memoryBytes: limits.memoryBytes,
              ...replicaResources(base, limits, image!, cpusetFor(limits, host.cpus, i)),
              mounts,
              publishPort: spec.port,
              ...(gpus ? { gpus } : {}),
            }),
          );
        }
        if (artifact) {
          progress(`staging the model artifact: ${artifact.fileCount} file(s), ${formatBytes(artifact.totalBytes)}`);
          await stageInputs(all[0]!, artifact.groups, [], transfer);
        }
        return all;
      });

      startTime = new Date();
      const startedAt = performance.now();
      await timed('start', async () => {
        const startSpans: Array<() => void> = [];
        for (const [index, container] of created.entries()) {
          startSpans[index] = charts.begin(lane(index), 'start / health');
          const start = await container.start();
          if ('startError' in start) {
            charts.mark(lane(index), 'died', `could not start: exit ${start.exited.exitCode || 127}`);
            observation.startup = { outcome: 'exited', replica: index, exitCode: start.exited.exitCode || 127, oomKilled: false, startError: start.startError };
            return;
          }
          const hostPort = await start.started.publishedPort(spec.port);
          const capture = new LogCapture(
            { stdout: path.join(recordDir, `replica-${index}.stdout.log`), stderr: path.join(recordDir, `replica-${index}.stderr.log`) },
            { maxSavedBytes: base.maxLogBytes, secrets: base.secrets, ...(hooks.onContainerLine ? { onLine: (ch, line) => hooks.onContainerLine!(ch, spec.replicaCount > 1 ? `[replica-${index}] ${line}` : line) } : {}) },
          );
          const logs = await start.started.followLogs();
          const logsDone = Promise.all([capture.capture('stdout', logs.stdout), capture.capture('stderr', logs.stderr)]);
          const memory = await start.started.watchMemory(charts.statsOf(lane(index)));
          replicas.push({ index, storageLimited: container.storageLimited, started: start.started, memory, client: new PredictionClient(engine.publishedHost, hostPort ?? 0, spec.maxInFlight + 1), capture, logsDone, dead: false });
        }
        progress(`waiting for ${replicas.length} model server(s): GET ${healthRoute} on port ${spec.port}`);
        const explain = (startup: NonNullable<BatchObservation['startup']>) => diagnoseBatchPredict({ ...observation, startup });
        const results = await Promise.all(
          replicas.map((r) =>
            waitUntilReady(r, spec, healthRoute, hooks.signal, { progress, explain }).then((result) => {
              startSpans[r.index]?.();
              if (result.outcome === 'exited') charts.mark(lane(r.index), result.oomKilled ? 'oom-kill' : 'died', `${result.oomKilled ? 'OOM kill' : 'exited'} (exit ${result.exitCode})`);
              return result;
            }),
          ),
        );
        const failure = results.find((r) => r.outcome !== 'ready');
        if (failure) {
          if (failure.outcome === 'cancelled') observation.cancelled = true;
          else observation.startup = failure;
        } else observation.startup = { outcome: 'ready', afterMs: Math.round(performance.now() - startedAt) };
      });

      if (observation.startup?.outcome === 'ready' && !cancelled()) {
        progress(`predicting: batches of ${spec.batchSize} to ${predictRoute}`);
        const sink = new FailedInstanceSink(predictionDir, recordDir, shards, spec.outputNaming);
        const predictSpans = replicas.map((r) => charts.begin(lane(r.index), 'predict'));
        await timed('predict', () => predictAll(spec, inputs.files, replicas, { predictionDir, shards, partition, sink, observation, partialFailures, predictRoute, signal: hooks.signal, progress, transfer, charts }).finally(async () => (failedInstances = await sink.close())));
        for (const end of predictSpans) end();
      } else if (observation.startup?.outcome === 'ready') observation.cancelled = true;
      replicaMs = (performance.now() - startedAt) * replicas.length;
    } else if (cancelled()) observation.cancelled = true;
  } catch (error) {
    throw await engine.explainFailure(error);
  } finally {
    hooks.signal?.removeEventListener('abort', onAbort);
    if (cancelled()) observation.cancelled = true;
    await timed('stop', async () => {
      // What each server wrote to its own disk, measured before it goes (the largest counts).
      for (const r of replicas) {
        const written = await r.started.writableLayerBytes().catch(() => undefined);
        const check = written === undefined || !image ? undefined : checkDisk(base, image, Boolean(r.storageLimited), written, 0);
        if (check && (!disk || (check.record.usedBytes ?? 0) > (disk.record.usedBytes ?? 0))) disk = check;
      }
      // The outputs are written by vbe, not the server: once the data plane is done, no grace is needed.
      await Promise.all(replicas.map((r) => r.started.kill().catch(() => undefined)));
      await Promise.all(replicas.map((r) => r.logsDone));
      for (const r of replicas) {
        r.client.close();
        r.memory.stop();
      }
    });
    const leftovers = await timed('cleanup', () => resources.cleanup(CLEANUP_BUDGET_MS));
    warnings.push(...leftoverWarning(leftovers));
  }
  // Shards that were never opened (the job failed before predicting) still exist, empty, as on Vertex.
  if (observation.startup?.outcome !== 'ready') await touchShards(predictionDir, shards);

  for (const r of replicas) {
    observation.logSignals.push(...r.capture.signals);
    observation.logTail.push(...r.capture.tail.map((t) => (t.channel === 'stderr' ? `[stderr] ${t.line}` : t.line)));
  }
  const verdict = withDiskVerdict(judgeBatchPredict(observation), disk, 'A model server replica');
  const diagnoses = [...diagnoseBatchPredict(observation), ...(disk?.diagnosis ? [disk.diagnosis] : [])];
  const endTime = new Date();
  const gcsOutputDirectory = output.gcsUri ? `${output.gcsUri.replace(/\/+$/, '')}/${dirName}` : undefined;
  const stats = observation.stats;
  // The proto's convention: -1 where the count is unknown (the job ended before reading its input).
  const incompleteCount = failedInstances ? String(stats.incomplete) : '-1';
  const resource: BatchPredictionJobResource = {
    name: `projects/local/locations/local/batchPredictionJobs/${jobId}`,
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
    ...(partialFailures.length ? { partialFailures } : {}),
    completionStats: { successfulCount: String(stats.successful), failedCount: String(stats.failed), incompleteCount },
    resourcesConsumed: { replicaHours: replicaMs / 3_600_000 },
    createTime: createTime.toISOString(),
    ...(startTime ? { startTime: startTime.toISOString() } : {}),
    endTime: endTime.toISOString(),
    updateTime: endTime.toISOString(),
    emulator: {
      contract: 'prediction-server',
      jobId,
      image: imageRecord(base.imageUri, pulled, image),
      limits: limitsRecord(limits),
      sharedMemoryBytes: base.shmSizeBytes ?? null,
      disk: disk?.record ?? unmeasuredDisk(base),
      deadlines: deadlinesRecord(spec),
      ...(image ? { container: containerRecord(image, command, args) } : {}),
      environment: vertexEnvironmentRecord(environment, base.env),
      userEnvNames: base.env.map((e) => e.name),
      routes: { health: healthRoute, predict: predictRoute, port: spec.port },
      startup: observation.startup ?? null,
      stats: { ...stats, maxResponseBytes: observation.maxResponseBytes },
      peakMemoryBytes: replicas.length ? Math.max(...replicas.map((r) => r.memory.peakBytes())) : null,
      failuresByKind: observation.failuresByKind,
      ...(failedInstances ? { failedInstances } : {}),
      durationMs: endTime.getTime() - createTime.getTime(),
      phases,
      outputs: {
        directory: predictionDir,
        files: shards.flatMap((s) => [path.join(predictionDir, s.results), path.join(predictionDir, s.errors)]),
      },
      diagnoses,
      warnings,
      logs: replicas.map((r) => r.capture.files),
      logTail: observation.logTail.slice(-40),
      recordFile: path.join(recordDir, 'job.json'),
      charts: charts.toRecord(phases),
    },
  };
  await writeJsonAtomic(resource.emulator.recordFile, resource);
  return resource;
}

function serverEnv(p: { spec: BatchPredictSpec; endpointId: string; deployedModelId: string; healthRoute: string; predictRoute: string; storageUri: string }): EnvVar[] {
  const accel = p.spec.base.machine.accelerator;
  return [
    ...(accel ? [{ name: 'AIP_ACCELERATOR_TYPE', value: accel.type }] : []),
    { name: 'AIP_DEPLOYED_MODEL_ID', value: p.deployedModelId },
    { name: 'AIP_ENDPOINT_ID', value: p.endpointId },
    { name: 'AIP_FRAMEWORK', value: 'CUSTOM_CONTAINER' },
    { name: 'AIP_HEALTH_ROUTE', value: p.healthRoute },
    { name: 'AIP_HTTP_PORT', value: String(p.spec.port) },
    { name: 'AIP_MACHINE_TYPE', value: p.spec.base.machine.name },
    { name: 'AIP_MODE', value: 'PREDICTION' },
    { name: 'AIP_MODE_VERSION', value: '1.0.0' },
    { name: 'AIP_MODEL_NAME', value: p.endpointId },
    { name: 'AIP_PREDICT_ROUTE', value: p.predictRoute },
    { name: 'AIP_PROJECT_NUMBER', value: '123456789012' },
    { name: 'AIP_STORAGE_URI', value: p.storageUri },
    { name: 'AIP_VERSION_NAME', value: p.deployedModelId },
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

async function touchShards(dir: string, shards: Array<{ results: string; errors: string }>): Promise<void> {
  for (const s of shards) {
    for (const name of [s.results, s.errors]) {
      const w = new JsonlWriter(path.join(dir, name));
      await w.close();
    }
  }
}
