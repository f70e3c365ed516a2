import { mkdir } from 'node:fs/promises';
import { type RunJobResource, writeJsonAtomic } from '../report/jobResource.js';
import { RECORD_DIR_NAME } from '../report/recordDir.js';
import { type RunJobOptions, resolveRunJobSpec } from '../spec/runJobSpec.js';
import { ChartRecorder } from './chartRecorder.js';
import { checkAccelerators } from './checkAccelerators.js';
import type { RunJobHooks } from './jobHooks.js';
import { JobPipeline } from './jobPipeline.js';
import { JobResources } from './jobResources.js';
import { machineLimits } from './machineLimits.js';
import { bucketsToWriteBack, collectBucketChanges, collectRunOutputs } from './phases/collectRunOutputs.js';
import { connectEngine } from './phases/connectEngine.js';
import { containerCommand } from './phases/containerCommand.js';
import { prepareImage } from './phases/prepareImage.js';
import { runAttempts } from './phases/runAttempts.js';
import { stageRunJob } from './phases/stageRunJob.js';
import { validateRunJob } from './phases/validateRunJob.js';
import { judgeRunJobPhases, type RunJobPhases } from './runJobOutcome.js';
import { vertexRunEnvironment } from './runJobEnvironment.js';
import { runJobRecord } from './runJobRecord.js';
import { realGcsOptions, withRealCloudStorage } from './withRealCloudStorage.js';

export type { RunJobHooks };
export { RECORD_DIR_NAME };

/**
 * Runs a batch job under the file contract or as a CustomJob (run to completion) and judges it as
 * Vertex would: validate -> connect -> image -> stage -> run -> collect -> collect-gcs -> cleanup,
 * then judge and record. Each phase is a unit in `phases/` with typed input and output; the record
 * is built from those outputs (`runJobRecord.ts`). A container that fails is a result (state
 * FAILED); a VbeError is thrown only for bad input (exit 2) or when the emulator itself cannot work (exit 3).
 */
export async function runJob(options: RunJobOptions, hooks: RunJobHooks = {}): Promise<RunJobResource> {
  if (options.gcs === 'real') {
    const spec = await resolveRunJobSpec(realGcsOptions(options));
    return withRealCloudStorage(spec, hooks.onProgress ?? (() => undefined), (gcsRoot) => runJob({ ...options, gcs: 'local', gcsRoot }, hooks));
  }
  const job = new JobPipeline(hooks);
  const connecting = connectEngine(hooks); // overlaps validation
  const plan = await job.timed('validate', () => validateRunJob(options, job.jobId));
  const { engine, host } = await job.timed('connect', () => connecting);
  const { spec } = plan;
  const limits = machineLimits(spec.machine, host, spec.memoryReserve);
  const gpus = checkAccelerators(spec.accelerator, host);
  const recordDirMade = mkdir(plan.recordDir, { recursive: true }); // overlaps the image phase
  recordDirMade.catch(() => undefined); // awaited before the first file is written in it

  const resources = new JobResources(engine, job.jobId, job.logger);
  const charts = new ChartRecorder(job.createTime);
  const out: Omit<RunJobPhases, 'end'> = { jobId: job.jobId, createTime: job.createTime, phases: job.phases, charts, plan, limits };
  const end = await job.run(
    async () => {
      const image = (out.image = await job.phase('image', () => prepareImage(engine, spec.imageUri, spec.pullPolicy, job)));
      await recordDirMade;
      if (!image.usable || !image.image) return; // judged: not found, denied, wrong platform
      const vertexEnv = vertexRunEnvironment({
        jobId: job.jobId,
        spec,
        inputPaths: plan.inputs.files.map((f) => f.containerPath),
        outputContainerDir: plan.output.containerDir,
        outputGcsUri: plan.output.gcsUri,
        modelDir: plan.model?.envValue,
      });
      const command = (out.command = containerCommand(vertexEnv, spec.env, spec.command, spec.args));
      const staged = await job.phase('stage', () => stageRunJob({ plan, image: image.image!, limits, gpus, command }, resources, job));
      const run = (out.run = await job.phase('run', () => runAttempts(plan, staged, limits, charts, job, hooks.onContainerLine)));
      if (run.cancelled) return;
      const collected = (out.collected = await job.phase('collect', () => collectRunOutputs(plan, image.image!, staged, run, job)));
      if (bucketsToWriteBack(plan, collected)) out.gcsChanges = await job.phase('collect-gcs', () => collectBucketChanges(plan, run, job));
    },
    (budgetMs) => resources.cleanup(budgetMs),
    (error) => engine.explainFailure(error),
  );
  await recordDirMade;
  const phases: RunJobPhases = { ...out, end };
  const resource = runJobRecord(phases, judgeRunJobPhases(phases), new Date());
  await writeJsonAtomic(resource.emulator.recordFile, resource);
  return resource;
}
