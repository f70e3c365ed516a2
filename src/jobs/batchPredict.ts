import { mkdir } from 'node:fs/promises';
import { type BatchPredictionJobResource, writeJsonAtomic } from '../report/jobResource.js';
import { type BatchPredictOptions, resolveBatchPredictSpec } from '../spec/batchPredictSpec.js';
import { touchShards } from '../staging/predictionOutputs.js';
import { diagnoseBatchPredict } from '../verdict/judgeBatchPredict.js';
import { type BatchPredictPhases, judgeBatchPredictPhases, observeBatchPredict } from './batchPredictOutcome.js';
import { batchPredictionJobRecord } from './batchPredictionJobRecord.js';
import { ChartRecorder } from './chartRecorder.js';
import { checkAccelerators } from './checkAccelerators.js';
import type { RunJobHooks } from './jobHooks.js';
import { JobPipeline } from './jobPipeline.js';
import { JobResources } from './jobResources.js';
import { machineLimits } from './machineLimits.js';
import { connectEngine } from './phases/connectEngine.js';
import { containerCommand } from './phases/containerCommand.js';
import { predictInstances } from './phases/predictInstances.js';
import { prepareImage } from './phases/prepareImage.js';
import { stageServers } from './phases/stageServers.js';
import { type ServerStartup, startServers } from './phases/startServers.js';
import { stopServers } from './phases/stopServers.js';
import { validateBatchPredict } from './phases/validateBatchPredict.js';
import type { Replica } from './predictDataPlane.js';
import { serverEnvironment } from './serverEnvironment.js';
import { realGcsOptions, withRealCloudStorage } from './withRealCloudStorage.js';

/**
 * Runs a BatchPredictionJob under the documented prediction-server contract: the container is
 * an HTTP server; the emulator reads the input, POSTs batches to it on 127.0.0.1 and writes the
 * output files, exactly as Vertex does. Its phases: validate -> connect -> image -> stage -> start
 * -> predict -> stop -> cleanup, then judge and record; each is a unit in `phases/` with typed input
 * and output, and the record is built from those outputs (`batchPredictionJobRecord.ts`).
 */
export async function batchPredict(options: BatchPredictOptions, hooks: RunJobHooks = {}): Promise<BatchPredictionJobResource> {
  if (options.gcs === 'real') {
    const { base } = await resolveBatchPredictSpec(realGcsOptions(options));
    return withRealCloudStorage(base, hooks.onProgress ?? (() => undefined), (gcsRoot) => batchPredict({ ...options, gcs: 'local', gcsRoot }, hooks));
  }
  const job = new JobPipeline(hooks);
  const connecting = connectEngine(hooks); // overlaps validation
  const plan = await job.timed('validate', () => validateBatchPredict(options, job.createTime));
  await mkdir(plan.recordDir, { recursive: true });
  const { engine, host } = await job.timed('connect', () => connecting);
  const { spec } = plan;
  const base = spec.base;
  const limits = machineLimits(base.machine, host, base.memoryReserve);
  const gpus = checkAccelerators(base.accelerator, host);

  const resources = new JobResources(engine, job.jobId, job.logger);
  const charts = new ChartRecorder(job.createTime);
  const out: Omit<BatchPredictPhases, 'end'> = { jobId: job.jobId, createTime: job.createTime, phases: job.phases, charts, plan, limits, hostCpus: host.cpus, cancelled: false };
  // The replicas started so far, shared while they run: Ctrl-C kills their servers at once (in-flight
  // requests end, workers stop, cleanup runs), and the stop phase stops them whatever happened.
  const running: Replica[] = [];
  const onAbort = () => {
    job.progress('cancelling: stopping the model servers');
    for (const r of running) r.started.kill().catch(() => undefined);
  };
  hooks.signal?.addEventListener('abort', onAbort, { once: true });
  const end = await job.run(
    async () => {
      try {
        const image = (out.image = await job.phase('image', () => prepareImage(engine, base.imageUri, base.pullPolicy, job)));
        if (!image.usable || !image.image) return; // judged: not found, denied, wrong platform
        const vertexEnv = serverEnvironment(spec, plan.routes, plan.artifact?.envValue ?? '');
        const command = (out.command = containerCommand(vertexEnv, base.env, base.command, base.args));
        const staged = await job.phase('stage', () => stageServers({ plan, image: image.image!, limits, hostCpus: host.cpus, gpus, command }, resources, job));
        // While waiting, start-up is judged on what is known so far (printed after a minute).
        const explain = (startup: ServerStartup) => diagnoseBatchPredict({ ...observeBatchPredict(out), startup });
        const started = (out.started = await job.phase('start', () => startServers({ plan, staged, publishedHost: engine.publishedHost, charts, explain, onContainerLine: hooks.onContainerLine }, running, job)));
        if (started.startup?.outcome !== 'ready') return;
        out.predicted = await job.phase('predict', () => predictInstances(plan, started, charts, job));
      } finally {
        hooks.signal?.removeEventListener('abort', onAbort);
        out.cancelled = job.cancelled;
        out.stopped = await job.timed('stop', () => stopServers(running, base, out.image?.image, out.started?.startedAtMs));
      }
    },
    (budgetMs) => resources.cleanup(budgetMs),
    (error) => engine.explainFailure(error),
  );
  // Shards that were never opened (the job failed before predicting) still exist, empty, as on Vertex.
  if (out.started?.startup?.outcome !== 'ready') await touchShards(plan.predictionDir, plan.shards);
  const phases: BatchPredictPhases = { ...out, end };
  const resource = batchPredictionJobRecord(phases, judgeBatchPredictPhases(phases), new Date());
  await writeJsonAtomic(resource.emulator.recordFile, resource);
  return resource;
}
