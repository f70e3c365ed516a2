import type { RunJobHooks } from '../jobs/jobHooks.js';
import { JobPipeline } from '../jobs/jobPipeline.js';
import { JobResources } from '../jobs/jobResources.js';
import { connectEngine } from '../jobs/phases/connectEngine.js';
import { prepareImage } from '../jobs/phases/prepareImage.js';
import { diagnoseImage, isLinuxAmd64 } from '../verdict/judgeImage.js';
import { contractCheck } from './contractCheck.js';
import type { Contract } from './doctorCheck.js';
import type { DoctorOptions, DoctorReport } from './doctorOptions.js';
import { guessContract } from './guessContract.js';
import { runLiveChecks } from './runLiveChecks.js';
import { scanImage } from './scanImage.js';
import { staticChecks } from './staticChecks.js';
import { validateDoctor } from './validateDoctor.js';

export type { DoctorOptions, DoctorReport };

const MAX_LAYERS_RECORDED = 10;

/**
 * Checks an image against Vertex before any job runs, as a pipeline of phases: validate -> connect
 * -> image -> scan (its filesystem, exported; cleanup right after) -> static checks -> live (one
 * `vbe run` and/or `vbe batch-predict`, each its own pipeline).
 */
export async function runDoctor(options: DoctorOptions, hooks: RunJobHooks = {}): Promise<DoctorReport> {
  const job = new JobPipeline(hooks);
  const connecting = connectEngine(hooks); // overlaps validation
  const plan = await job.timed('validate', () => validateDoctor(options));
  const { engine, host } = await job.timed('connect', () => connecting);
  const got = await job.timed('image', () => prepareImage(engine, plan.imageUri, options.pull ?? 'missing', job));
  if (!got.image) {
    const d = diagnoseImage({ imageUri: plan.imageUri, ...(got.pullFailure ? { pullFailure: got.pullFailure } : {}) })!;
    return { image: plan.imageUri, checks: [{ id: 'image', title: 'Image', status: 'fail', summary: d.message, evidence: d.evidence ?? [], ...(d.fix ? { fix: d.fix } : {}) }], ok: false, phases: job.phases };
  }
  const image = got.image;

  job.progress('reading the image filesystem');
  const resources = new JobResources(engine, job.jobId, job.logger);
  let scan: Awaited<ReturnType<typeof scanImage>> | undefined;
  await job.run(
    async () => {
      scan = await job.timed('scan', () => scanImage(engine, plan.imageUri, image, resources));
    },
    (budgetMs) => resources.cleanup(budgetMs),
  );
  const { filesystem, history } = scan!;
  const guess = guessContract(image, filesystem.scripts);
  let used: Contract = plan.contract ?? guess.contract;
  const checks = staticChecks({
    imageUri: plan.imageUri,
    image,
    history,
    hostArchitecture: host.architecture,
    filesystem,
    port: plan.port,
    contract: used,
    ...(options.args ? { args: options.args } : {}),
  });
  const contract = contractCheck(used, guess, !plan.contract, Boolean(options.staticOnly));
  checks.push(contract);

  let live: DoctorReport['live'];
  if (!options.staticOnly && isLinuxAmd64(image)) {
    const outcome = await job.timed('live', () => runLiveChecks(plan, options, guess, used, hooks));
    checks.push(...outcome.checks);
    used = outcome.used;
    live = outcome.live;
    if (outcome.unsureSummary) contract.summary = outcome.unsureSummary;
  }
  return {
    image: plan.imageUri,
    platform: `${image.os}/${image.architecture}`,
    contract: { guess: guess.contract, reasons: guess.reasons, used, sure: guess.sure },
    checks,
    ok: checks.every((c) => c.status !== 'fail'),
    layers: [...history].sort((a, b) => b.sizeBytes - a.sizeBytes).slice(0, MAX_LAYERS_RECORDED),
    ...(live ? { live } : {}),
    phases: job.phases,
  };
}
