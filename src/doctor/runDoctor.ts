import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { usageError } from '../errors.js';
import { batchPredict } from '../jobs/batchPredict.js';
import { ensureImage } from '../jobs/ensureImage.js';
import { CLEANUP_BUDGET_MS } from '../jobs/jobPipeline.js';
import { JobResources } from '../jobs/jobResources.js';
import { newJobId } from '../jobs/jobId.js';
import { silentLogger } from '../jobs/silentLogger.js';
import { runJob, type RunJobHooks } from '../jobs/runJob.js';
import { ContainerEngine } from '../runtime/containerEngine.js';
import { getMachineType, DEFAULT_MACHINE_TYPE } from '../spec/machineTypes.js';
import type { PullPolicy } from '../spec/runJobSpec.js';
import type { ChartDataRecord } from '../report/chartData.js';
import { diagnoseImage, isLinuxAmd64 } from '../verdict/judgeImage.js';
import type { Contract, DoctorCheck } from './doctorCheck.js';
import { filesChecks, serverChecks } from './liveChecks.js';
import { type ImageFilesystemReport, scanImageFilesystem } from './scanImageFilesystem.js';
import { staticChecks } from './staticChecks.js';
import { entrypointFiles, guessContract } from './guessContract.js';
import { checkEnvName } from '../spec/runJobSpec.js';

export interface DoctorOptions {
  image: string;
  contract?: Contract | 'auto';
  port?: number;
  healthRoute?: string;
  predictRoute?: string;
  /** A sample input: instances (jsonl) for a server, an input file for the file contract. */
  sample?: string;
  machineType?: string;
  args?: string[];
  env?: string[];
  pull?: PullPolicy;
  startupTimeout?: string;
  timeout?: string;
  /** Only the checks that do not run the container. */
  staticOnly?: boolean;
  /** The model artifact (a directory or gs:// URI): AIP_STORAGE_URI for a server, AIP_MODEL_DIR for a file job. */
  artifactUri?: string;
  /** Where gs:// paths live locally (default ./gcs). */
  gcsRoot?: string;
  cwd?: string;
}

export interface DoctorReport {
  image: string;
  platform?: string;
  /** `sure: false`: nothing settled the guess, so with --contract auto both contracts were checked. */
  contract?: { guess: Contract; reasons: string[]; used: Contract; sure: boolean };
  checks: DoctorCheck[];
  /** True when no check failed. */
  ok: boolean;
  /** The image's largest layers (at most 10), largest first: the report draws them. */
  layers?: Array<{ sizeBytes: number; createdBy: string }>;
  /** The live run's limits and engine stats over time, for the report's charts. */
  live?: { memoryLimitBytes: number; cpus: number; charts?: ChartDataRecord };
}

const MAX_LAYERS_RECORDED = 10;



/** The checks of the contract the image did not fit, kept as information (ids prefixed), never failing the report. */
function otherContract(checks: DoctorCheck[], contract: Contract): DoctorCheck[] {
  return checks.map((c) => ({ ...c, id: `${contract}:${c.id}`, status: c.status === 'fail' ? 'skip' : c.status, summary: `(as ${contract === 'server' ? 'a prediction server' : 'a run-to-completion job'}) ${c.summary}` }));
}

/** Checks an image against Vertex before any job runs: statically, then briefly live. */
export async function runDoctor(options: DoctorOptions, hooks: RunJobHooks = {}): Promise<DoctorReport> {
  const logger = hooks.logger ?? silentLogger;
  const progress = hooks.onProgress ?? (() => undefined);
  const cwd = options.cwd ?? process.cwd();
  if (!options.image) throw usageError('MISSING_IMAGE', 'image: no container image given.', 'Pass --image <ref>.');
  if (options.contract && !['files', 'server', 'auto'].includes(options.contract)) {
    throw usageError('INVALID_CONTRACT', `--contract: "${options.contract}" is not files, server or auto.`, 'Use --contract files, server or auto.');
  }
  // The same rule in static and live modes: Vertex rejects a job that sets AIP_* itself.
  (options.env ?? []).forEach((pair, i) => {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw usageError('INVALID_ENV', `--env[${i}]: "${pair}" is not NAME=VALUE.`, 'Write each variable as --env NAME=VALUE.');
    checkEnvName(pair.slice(0, eq), `--env ${pair.slice(0, eq)}`);
  });
  const machine = getMachineType(options.machineType ?? DEFAULT_MACHINE_TYPE, '--machine-type');
  const port = options.port ?? 8080;
  const sample = options.sample ? path.resolve(cwd, options.sample) : undefined;
  const sampleText = sample
    ? await readFile(sample, 'utf8').catch(() => {
        throw usageError('SAMPLE_UNREADABLE', `--sample: cannot read "${sample}".`, 'Pass an existing file of sample input.');
      })
    : undefined;

  const engine = hooks.engine ?? (await ContainerEngine.connect());
  const got = await ensureImage(engine, options.image, options.pull ?? 'missing', progress, hooks.onTransfer);
  if ('pullFailure' in got) {
    const d = diagnoseImage({ imageUri: options.image, pullFailure: got.pullFailure })!;
    return { image: options.image, checks: [{ id: 'image', title: 'Image', status: 'fail', summary: d.message, evidence: d.evidence ?? [], ...(d.fix ? { fix: d.fix } : {}) }], ok: false };
  }
  const image = got.image;
  const host = await engine.hostInfo();

  progress('reading the image filesystem');
  const resources = new JobResources(engine, newJobId(), logger);
  let filesystem: ImageFilesystemReport;
  try {
    const probe = await resources.container({ name: `vbe-doctor-${resources.jobId}`, image: options.image, entrypoint: ['/vbe-never-runs'], env: [], nanoCpus: 1e9, memoryBytes: 256 * 1024 ** 2, mounts: [] });
    filesystem = await scanImageFilesystem(await probe.exportFilesystem(), image.env, [image.workingDir || '/'], entrypointFiles(image));
  } finally {
    await resources.cleanup(CLEANUP_BUDGET_MS);
  }
  const guess = guessContract(image, filesystem.scripts);
  const auto = !options.contract || options.contract === 'auto';
  let used: Contract = auto ? guess.contract : options.contract as Contract;
  const history = await engine.imageHistory(options.image);
  const layers = [...history].sort((a, b) => b.sizeBytes - a.sizeBytes).slice(0, MAX_LAYERS_RECORDED);
  let live: DoctorReport['live'];
  const checks = staticChecks({
    imageUri: options.image,
    image,
    history,
    hostArchitecture: host.architecture,
    filesystem,
    port,
    contract: used,
    ...(options.args ? { args: options.args } : {}),
  });
  const contractCheck: DoctorCheck =
    used === guess.contract
      ? { id: 'contract', title: 'Contract', status: 'pass', summary: `${used === 'server' ? 'a prediction server (vbe batch-predict)' : 'a run-to-completion job (vbe run)'}: ${guess.reasons.join('; ')}` }
      : {
          id: 'contract',
          title: 'Contract',
          status: 'warn',
          summary: `checked as ${used === 'server' ? 'a prediction server' : 'a run-to-completion job'}, but it looks like ${guess.contract === 'server' ? 'a prediction server' : 'a run-to-completion job'} (${guess.reasons.join('; ')})`,
        };
  if (auto && !guess.sure) {
    contractCheck.status = 'warn';
    contractCheck.summary = `unsure which contract it fits (${guess.reasons.join('; ')})${options.staticOnly ? '; pass --contract files or server' : ': both are checked live'}`;
  }
  checks.push(contractCheck);

  if (!options.staticOnly && isLinuxAmd64(image)) {
    const work = await mkdtemp(path.join(os.tmpdir(), 'vbe-doctor-'));
    try {
      const common = {
        image: options.image,
        pull: 'never' as const,
        machineType: machine.name,
        cwd,
        ...(options.args ? { args: options.args } : {}),
        ...(options.env ? { env: options.env } : {}),
        ...(options.gcsRoot ? { gcsRoot: options.gcsRoot } : {}),
      };
      const jobHooks = { logger, ...(hooks.signal ? { signal: hooks.signal } : {}), onProgress: progress, ...(hooks.onTransfer ? { onTransfer: hooks.onTransfer } : {}) };
      const checkFiles = async () => {
        const input = sample ?? path.join(work, 'sample.jsonl');
        if (!sample) await writeFile(input, '{"instance": 1}\n');
        progress('running it once under the file contract');
        const job = await runJob({ ...common, inputs: [input], output: path.join(work, 'output'), timeout: options.timeout ?? '2m', ...(options.artifactUri ? { modelDir: options.artifactUri } : {}) }, jobHooks);
        if (job.emulator.limits) live = { memoryLimitBytes: job.emulator.limits.memoryBytes, cpus: job.emulator.limits.cpus, ...(job.emulator.charts ? { charts: job.emulator.charts } : {}) };
        return filesChecks(job, Boolean(sample));
      };
      const checkServer = async () => {
        const input = sample ?? path.join(work, 'empty.jsonl');
        if (!sample) await writeFile(input, '');
        const count = sampleText ? sampleText.split('\n').filter((l) => l.trim()).length : 0;
        progress('starting it as a model server');
        const job = await batchPredict(
          {
            ...common,
            inputs: [input],
            instancesFormat: 'jsonl',
            output: path.join(work, 'server-output'),
            port,
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
      if (auto && !guess.sure) {
        // Unsure: a server that becomes ready settles it; otherwise the file contract is tried too, and the one that passes counts.
        const server = await checkServer();
        if (server.ready) {
          used = 'server';
          checks.push(...server.checks);
        } else {
          const files = await checkFiles();
          const filesPass = files.every((c) => c.status !== 'fail');
          used = filesPass ? 'files' : 'server';
          checks.push(...(filesPass ? files : server.checks), ...otherContract(filesPass ? server.checks : files, filesPass ? 'server' : 'files'));
        }
        contractCheck.summary = `unsure which contract it fits (${guess.reasons.join('; ')}): both were checked live; ${server.ready || used === 'files' ? `it works as ${used === 'server' ? 'a prediction server (vbe batch-predict)' : 'a run-to-completion job (vbe run)'}` : 'it passed neither'}`;
      } else if (used === 'files') checks.push(...(await checkFiles()));
      else checks.push(...(await checkServer()).checks);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
  return {
    image: options.image,
    platform: `${image.os}/${image.architecture}`,
    contract: { guess: guess.contract, reasons: guess.reasons, used, sure: guess.sure },
    checks,
    ok: checks.every((c) => c.status !== 'fail'),
    layers,
    ...(live ? { live } : {}),
  };
}
