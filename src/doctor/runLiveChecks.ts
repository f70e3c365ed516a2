import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { batchPredict } from '../jobs/batchPredict.js';
import type { RunJobHooks } from '../jobs/jobHooks.js';
import { runJob } from '../jobs/runJob.js';
import { otherContract, unsureContractSummary } from './contractCheck.js';
import type { Contract, DoctorCheck } from './doctorCheck.js';
import type { DoctorOptions, DoctorReport } from './doctorOptions.js';
import type { ContractGuess } from './guessContract.js';
import { filesChecks, serverChecks } from './liveChecks.js';
import type { DoctorPlan } from './validateDoctor.js';

/** The live phase's output: the checks of the runs, the contract they settled, and the charts. */
export interface LiveOutcome {
  checks: DoctorCheck[];
  used: Contract;
  live?: DoctorReport['live'];
  /** Set when the guess was unsure and both contracts were run: the "Contract" check's new summary. */
  unsureSummary?: string;
}

/**
 * The live phase of `vbe doctor`: the image run once as `vbe run` and/or started once as
 * `vbe batch-predict` (each its own job pipeline), in a temporary directory removed afterwards.
 */
export async function runLiveChecks(plan: DoctorPlan, options: DoctorOptions, guess: ContractGuess, used: Contract, hooks: RunJobHooks): Promise<LiveOutcome> {
  const progress = hooks.onProgress ?? (() => undefined);
  let live: DoctorReport['live'];
  const work = await mkdtemp(path.join(os.tmpdir(), 'vbe-doctor-'));
  try {
    const common = {
      image: plan.imageUri,
      pull: 'never' as const,
      machineType: plan.machine.name,
      cwd: plan.cwd,
      ...(options.args ? { args: options.args } : {}),
      ...(options.env ? { env: options.env } : {}),
      ...(options.gcsRoot ? { gcsRoot: options.gcsRoot } : {}),
    };
    const jobHooks = { ...(hooks.logger ? { logger: hooks.logger } : {}), ...(hooks.signal ? { signal: hooks.signal } : {}), onProgress: progress, ...(hooks.onTransfer ? { onTransfer: hooks.onTransfer } : {}) };
    const checkFiles = async () => {
      const input = plan.sample?.file ?? path.join(work, 'sample.jsonl');
      if (!plan.sample) await writeFile(input, '{"instance": 1}\n');
      progress('running it once under the file contract');
      const job = await runJob({ ...common, inputs: [input], output: path.join(work, 'output'), timeout: options.timeout ?? '2m', ...(options.artifactUri ? { modelDir: options.artifactUri } : {}) }, jobHooks);
      if (job.emulator.limits) live = { memoryLimitBytes: job.emulator.limits.memoryBytes, cpus: job.emulator.limits.cpus, ...(job.emulator.charts ? { charts: job.emulator.charts } : {}) };
      return filesChecks(job, Boolean(plan.sample));
    };
    const checkServer = async () => {
      const input = plan.sample?.file ?? path.join(work, 'empty.jsonl');
      if (!plan.sample) await writeFile(input, '');
      const count = plan.sample ? plan.sample.text.split('\n').filter((l) => l.trim()).length : 0;
      progress('starting it as a model server');
      const job = await batchPredict(
        {
          ...common,
          inputs: [input],
          instancesFormat: 'jsonl',
          output: path.join(work, 'server-output'),
          port: plan.port,
          batchSize: Math.max(1, Math.min(count, 100_000)),
          retries: 0,
          startupTimeout: options.startupTimeout ?? '2m',
          requestTimeout: options.timeout ?? '2m',
          ...(options.healthRoute ? { healthRoute: options.healthRoute } : {}),
          ...(options.predictRoute ? { predictRoute: options.predictRoute } : {}),
          ...(options.artifactUri ? { artifactUri: options.artifactUri } : {}),
        },
        jobHooks,
      );
      live = { memoryLimitBytes: job.emulator.limits.memoryBytes, cpus: job.emulator.limits.cpus, ...(job.emulator.charts ? { charts: job.emulator.charts } : {}) };
      return { checks: serverChecks(job, count), ready: (job.emulator.startup as { outcome?: string } | null)?.outcome === 'ready' };
    };
    const withLive = (outcome: LiveOutcome): LiveOutcome => ({ ...outcome, ...(live ? { live } : {}) });
    if (!plan.contract && !guess.sure) {
      // Unsure: a server that becomes ready settles it; otherwise the file contract is tried too, and the one that passes counts.
      const server = await checkServer();
      if (server.ready) return withLive({ checks: server.checks, used: 'server', unsureSummary: unsureContractSummary(guess, 'server', true) });
      const files = await checkFiles();
      const filesPass = files.every((c) => c.status !== 'fail');
      const settled: Contract = filesPass ? 'files' : 'server';
      const checks = [...(filesPass ? files : server.checks), ...otherContract(filesPass ? server.checks : files, filesPass ? 'server' : 'files')];
      return withLive({ checks, used: settled, unsureSummary: unsureContractSummary(guess, settled, false) });
    }
    if (used === 'files') return withLive({ checks: await checkFiles(), used });
    return withLive({ checks: (await checkServer()).checks, used });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
