import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import {
  ContainerEngine,
  type ExitedContainer,
  type ImageDetails,
  type StartedContainer,
} from '../runtime/containerEngine.js';
import { ensureImage } from './ensureImage.js';
import { type RunAttempt, type RunJobResource, writeJsonAtomic } from '../report/jobResource.js';
import { buildEnvironment, type EnvVar, expandVertexReferences } from '../spec/expandVertexReferences.js';
import { GCS_MOUNT } from '../spec/gcsUri.js';
import { type RunJobOptions, type RunJobSpec, resolveRunJobSpec } from '../spec/runJobSpec.js';
import { type CollectionResult, collectOutputs } from '../staging/collectOutputs.js';
import { DATA_MOUNT } from '../staging/containerLayout.js';
import { resolveInputs, resolveModelDir, resolveOutput, type ResolvedInputs } from '../staging/resolveLocations.js';
import { stageInputs } from '../staging/stageInputs.js';
import { diagnoseRunJob, formatBytes } from '../verdict/diagnoseRunJob.js';
import { usageError } from '../errors.js';
import { isLinuxAmd64 } from '../verdict/judgeImage.js';
import { judgeRunJob, PRIMARY_REPLICA, type RunObservation } from '../verdict/judgeRunJob.js';
import { containerRecord, imageRecord, startJobContext, vertexEnvironmentRecord } from './jobContext.js';
import { JobResources } from './jobResources.js';
import { LogCapture, type LogChannel, maskSecrets } from './logCapture.js';
import { checkAccelerators } from './checkAccelerators.js';
import { limitsRecord, machineLimits } from './machineLimits.js';
import type { TransferListener } from './transferProgress.js';
import { realGcsOptions, withRealCloudStorage } from './withRealCloudStorage.js';

/** The emulator's record directory inside the output directory. */
export const RECORD_DIR_NAME = '.vbe';
const CLEANUP_BUDGET_MS = 30_000;
const MAX_ADDED_PATHS = 10_000;
/** Time the copy of the outputs has at least, even when the job ran up to its --timeout. */
const COLLECT_GRACE_MS = 60_000;

export interface RunJobHooks {
  /** Injected logger; the library is silent without one. */
  logger?: Logger;
  /** Aborting cancels the job: the container is stopped, everything removed, state CANCELLED. */
  signal?: AbortSignal;
  /** Each line the container prints, as it prints it. */
  onContainerLine?: (channel: LogChannel, line: string) => void;
  /** Human-readable progress ("pulling image ..."). */
  onProgress?: (message: string) => void;
  /** Structured progress (pull layers, staged/collected bytes, instances) for a progress display. */
  onTransfer?: TransferListener;
  /** Use this engine instead of connecting to the default one. */
  engine?: ContainerEngine;
}

/**
 * Runs a batch job under the file contract (run to completion) and judges it as Vertex would.
 * A container that fails is a result (state FAILED); a VbeError is thrown only for bad input
 * (exit 2) or when the emulator itself cannot work (exit 3).
 */
export async function runJob(options: RunJobOptions, hooks: RunJobHooks = {}): Promise<RunJobResource> {
  if (options.gcs === 'real') {
    const spec = await resolveRunJobSpec(realGcsOptions(options));
    return withRealCloudStorage(spec, hooks.onProgress ?? (() => undefined), (gcsRoot) => runJob({ ...options, gcs: 'local', gcsRoot }, hooks));
  }
  const { jobId, createTime, logger, progress, transfer, phases, timed } = startJobContext(hooks);

  // 1. Validate everything the user gave before touching the engine: bad input loses nothing.
  const { spec, inputs, model, output } = await timed('validate', async () => {
    const spec = await resolveRunJobSpec(options);
    const inputs = await resolveInputs(spec.inputs, spec.gcsRoot);
    const model = spec.modelDir ? await resolveModelDir(spec.modelDir, spec.gcsRoot) : undefined;
    const output = await resolveOutput(spec.output, spec.gcsRoot);
    checkInputListLength(inputs);
    return { spec, inputs, model, output };
  });
  const recordDir = path.join(output.hostDir, RECORD_DIR_NAME);
  const logFiles = { stdout: path.join(recordDir, 'stdout.log'), stderr: path.join(recordDir, 'stderr.log') };

  const engine = hooks.engine ?? (await timed('connect', () => ContainerEngine.connect()));
  const host = await engine.hostInfo();
  const limits = machineLimits(spec.machine, host);
  const gpus = checkAccelerators(spec.accelerator, host);
  const warnings = [...spec.warnings, ...limits.warnings];

  const observation: RunObservation = {
    imageUri: spec.imageUri,
    oomKilled: false,
    timedOut: false,
    cancelled: false,
    timeoutMs: spec.timeoutMs,
    stagedInputPaths: inputs.files.map((f) => f.containerPath),
    outputContainerDir: output.containerDir,
    outputFileCount: 0,
    refusedOutputs: [],
    addedPaths: [],
    logSignals: [],
    machineType: spec.machine.name,
    memoryBytes: limits.memoryBytes,
    logFile: logFiles.stderr,
  };
  if (spec.command) observation.command = spec.command;
  if (spec.args) observation.args = spec.args;

  const resources = new JobResources(engine, jobId, logger);
  let image: ImageDetails | undefined;
  let pulled = false;
  let startTime: Date | undefined;
  let collection: CollectionResult | undefined;
  let environment: EnvVar[] = [];
  let command: string[] | undefined;
  let args: string[] | undefined;
  let capture: LogCapture | undefined;
  let cleanupLeftovers: string[] = [];
  const attempts: RunAttempt[] = [];
  const cancelled = () => hooks.signal?.aborted === true;

  await mkdir(recordDir, { recursive: true });
  try {
    // 2. Image: present, pulled by policy, and linux/amd64.
    const got = await timed('image', () => ensureImage(engine, spec.imageUri, spec.pullPolicy, progress, transfer));
    if ('pullFailure' in got) observation.pullFailure = got.pullFailure;
    else {
      image = got.image;
      pulled = got.pulled;
      observation.image = {
        entrypoint: image.entrypoint,
        cmd: image.cmd,
        user: image.user,
        exposedPorts: image.exposedPorts,
        architecture: image.architecture,
        os: image.os,
      };
    }

    if (image && isLinuxAmd64(image) && !cancelled()) {
      // 3. Environment, as Vertex sets it, then the user's entries expanded by Vertex's rules.
      const vertexEnv = vertexFileContractEnv(jobId, spec, inputs, output.containerDir, model?.envValue);
      const built = buildEnvironment(vertexEnv, spec.env);
      environment = built.env;
      command = spec.command?.map((part) => expandVertexReferences(part, built.variables));
      args = spec.args?.map((part) => expandVertexReferences(part, built.variables));

      // 4. Volumes, container, staging.
      const mounts = [{ volume: `vbe-${jobId}-data`, target: DATA_MOUNT }];
      const newReplica = (attempt: number) =>
        resources.container({
          name: `vbe-${jobId}-${PRIMARY_REPLICA}${attempt > 0 ? `-attempt-${attempt + 1}` : ''}`,
          image: spec.imageUri,
          ...(command ? { entrypoint: command } : {}),
          ...(args ? { cmd: args } : {}),
          env: environment,
          nanoCpus: limits.nanoCpus,
          memoryBytes: limits.memoryBytes,
          mounts,
          network: spec.network,
          ...(gpus ? { gpus } : {}),
        });
      const created = await timed('stage', async () => {
        const needsGcs = inputs.usesGcs || output.containerDir.startsWith(`${GCS_MOUNT}/`) || (model?.usesGcs ?? false);
        await resources.volume(`vbe-${jobId}-data`);
        if (needsGcs) mounts.push({ volume: await resources.volume(`vbe-${jobId}-gcs`), target: GCS_MOUNT });
        const created = await newReplica(0);
        const fileCount = inputs.fileCount + (model?.fileCount ?? 0);
        progress(`staging ${fileCount} file(s), ${formatBytes(inputs.totalBytes + (model?.totalBytes ?? 0))}`);
        await stageInputs(created, [...inputs.groups, ...(model?.groups ?? [])], [output.containerDir], transfer);
        return created;
      });

      if (cancelled()) observation.cancelled = true;
      else {
        // 5. Run: stream logs, enforce the timeout, honour cancellation; restart by policy.
        progress(`running ${spec.imageUri} on ${limits.machineType} (${limits.cpus} CPU, ${formatBytes(limits.memoryBytes)})`);
        startTime = new Date();
        capture = new LogCapture(logFiles, {
          maxSavedBytes: spec.maxLogBytes,
          secrets: spec.secrets,
          ...(hooks.onContainerLine ? { onLine: hooks.onContainerLine } : {}),
        });
        const deadline = Date.now() + spec.timeoutMs;
        const exited = await timed('run', async () => {
          let replica = created;
          for (let attempt = 0; ; attempt++) {
            const attemptStarted = Date.now();
            delete observation.startError;
            const start = await replica.start();
            let result: ExitedContainer;
            if ('startError' in start) {
              observation.startError = maskSecrets(start.startError, spec.secrets);
              result = start.exited;
            } else {
              const banner = attempt > 0 ? `[vbe: attempt ${attempt + 1}]` : undefined;
              result = await runToExit(start.started, capture!, deadline - Date.now(), spec, hooks.signal, observation, progress, banner);
            }
            const exitCode = observation.startError && !result.exitCode ? 127 : result.exitCode;
            attempts.push({
              attempt: attempt + 1,
              exitCode,
              oomKilled: result.oomKilled,
              durationMs: Date.now() - attemptStarted,
              ...(observation.startError ? { startError: observation.startError } : {}),
            });
            const restartable = exitCode !== 0 && (spec.restartExitCodes ? spec.restartExitCodes.includes(exitCode) : true);
            if (!restartable || attempt >= spec.maxRestarts || observation.timedOut || observation.cancelled || Date.now() >= deadline) return result;
            progress(`replica exited with status ${exitCode}: restarting (attempt ${attempt + 2} of ${spec.maxRestarts + 1})`);
            replica = await newReplica(attempt + 1);
          }
        });
        observation.exitCode = exited.exitCode;
        observation.oomKilled = exited.oomKilled && !observation.timedOut && !observation.cancelled;
        if (capture) observation.logSignals = capture.signals;
        if (observation.startError && !observation.exitCode) observation.exitCode = 127;

        // 6. What it wrote outside its volumes, then its outputs, copied back safely.
        if (!observation.cancelled) {
          const mountPoints = new Set([DATA_MOUNT, GCS_MOUNT]);
          // Asked for while the outputs are copied (two engine calls at once: ~15 ms less per job).
          const changes = exited.changes((c) => c.kind === 'added' && !mountPoints.has(c.path), MAX_ADDED_PATHS);
          changes.catch(() => undefined); // awaited below; not unhandled when collecting fails first
          collection = await timed('collect', async () =>
            collectOutputs(
              (sink, signal) => exited.readArchive(output.containerDir, sink, signal),
              output.hostDir,
              // Collection counts against --timeout too (with a minute's grace for a job that ran up to it).
              { maxFileBytes: spec.maxOutputFileBytes, reserved: [RECORD_DIR_NAME], deadline: Math.max(deadline, Date.now() + COLLECT_GRACE_MS), ...(hooks.signal ? { signal: hooks.signal } : {}) },
              transfer,
            ),
          );
          // Ctrl-C while copying: what was copied whole stays, the job is CANCELLED.
          if (collection.cancelled) observation.cancelled = true;
          if (collection.timedOut) observation.timedOut = true;
          observation.addedPaths = (await changes).map((c) => c.path);
          observation.outputFileCount = collection.fileCount;
          observation.refusedOutputs = collection.refused;
          observation.refusedOutputCount = collection.refusedCount;
          if (collection.error && !collection.cancelled && !collection.timedOut) observation.collectionError = collection.error;
        }
      }
    } else if (cancelled()) observation.cancelled = true;
  } catch (error) {
    throw await engine.explainFailure(error);
  } finally {
    cleanupLeftovers = await timed('cleanup', () => resources.cleanup(CLEANUP_BUDGET_MS));
  }
  if (cleanupLeftovers.length > 0) warnings.push(`Could not remove: ${cleanupLeftovers.join(', ')}. Run \`vbe prune\`.`);

  // 7. Verdict and record.
  const verdict = judgeRunJob(observation);
  const diagnoses = diagnoseRunJob(observation);
  const endTime = new Date();
  const recordFile = path.join(recordDir, 'job.json');
  const resource: RunJobResource = {
    name: `projects/local/locations/local/customJobs/${jobId}`,
    displayName: spec.displayName,
    state: verdict.state,
    ...(verdict.error ? { error: verdict.error } : {}),
    createTime: createTime.toISOString(),
    ...(startTime ? { startTime: startTime.toISOString() } : {}),
    endTime: endTime.toISOString(),
    updateTime: endTime.toISOString(),
    outputInfo: { outputDirectory: output.hostDir, ...(output.gcsUri ? { gcsOutputDirectory: output.gcsUri } : {}) },
    emulator: {
      contract: 'files',
      jobId,
      image: imageRecord(spec.imageUri, pulled, image),
      limits: limitsRecord(limits),
      ...(image ? { container: containerRecord(image, command?.map((c) => maskSecrets(c, spec.secrets)), args?.map((a) => maskSecrets(a, spec.secrets))) } : {}),
      attempts,
      environment: vertexEnvironmentRecord(environment, spec.env),
      userEnvNames: spec.env.map((e) => e.name),
      exitCode: observation.exitCode ?? null,
      oomKilled: observation.oomKilled,
      timedOut: observation.timedOut,
      peakMemoryBytes: observation.peakMemoryBytes ?? null,
      durationMs: endTime.getTime() - createTime.getTime(),
      phases,
      inputs: {
        fileCount: inputs.files.length,
        totalBytes: inputs.totalBytes,
        files: inputs.files.slice(0, 1000).map((f) => ({ source: f.source, containerPath: f.containerPath, sizeBytes: f.sizeBytes })),
      },
      outputs: {
        hostDirectory: output.hostDir,
        containerDirectory: output.containerDir,
        complete: collection?.complete ?? false,
        fileCount: collection?.fileCount ?? 0,
        totalBytes: collection?.totalBytes ?? 0,
        files: collection?.files ?? [],
        refused: collection?.refused ?? [],
        refusedCount: collection?.refusedCount ?? 0,
      },
      diagnoses,
      warnings,
      logs: { ...logFiles, truncated: capture ? capture.truncated.stdout || capture.truncated.stderr : false },
      logTail: capture?.tail.length ? capture.tail.map((t) => (t.channel === 'stderr' ? `[stderr] ${t.line}` : t.line)) : observation.startError ? [observation.startError] : [],
      recordFile,
    },
  };
  await writeJsonAtomic(recordFile, resource);
  return resource;
}

/** Waits for the container to exit, killing it at the timeout and stopping it when cancelled. */
async function runToExit(
  started: StartedContainer,
  capture: LogCapture,
  timeoutMs: number,
  spec: RunJobSpec,
  signal: AbortSignal | undefined,
  observation: RunObservation,
  progress: (message: string) => void,
  banner?: string,
): Promise<ExitedContainer> {
  const logs = await started.followLogs();
  const memory = await started.watchMemory();
  const captured = Promise.all([capture.capture('stdout', logs.stdout, banner), capture.capture('stderr', logs.stderr, banner)]);
  const timer = setTimeout(() => {
    observation.timedOut = true;
    progress(`timeout of ${spec.timeoutMs} ms reached: killing the container`);
    started.kill().catch(() => undefined);
  }, Math.max(0, timeoutMs));
  const onAbort = () => {
    observation.cancelled = true;
    progress(`cancelling: stopping the container (grace ${Math.round(spec.stopGraceMs / 1000)}s)`);
    started.stop(spec.stopGraceMs).catch(() => started.kill().catch(() => undefined));
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) onAbort();
  try {
    const exited = await started.wait();
    await captured;
    return exited;
  } finally {
    observation.peakMemoryBytes = memory.peakBytes();
    memory.stop();
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

function vertexFileContractEnv(jobId: string, spec: RunJobSpec, inputs: ResolvedInputs, outputDir: string, modelDir: string | undefined): EnvVar[] {
  const env: EnvVar[] = [
    { name: 'AIP_BATCH_INPUT_URIS', value: inputs.files.map((f) => f.containerPath).join(',') },
    { name: 'AIP_BATCH_OUTPUT_DIR', value: outputDir },
    { name: 'AIP_MACHINE_TYPE', value: spec.machine.name },
    { name: 'CLOUD_ML_JOB_ID', value: jobId },
    {
      name: 'CLUSTER_SPEC',
      value: JSON.stringify({ cluster: { workerpool0: [`${PRIMARY_REPLICA}:2222`] }, environment: 'cloud', task: { type: 'workerpool0', index: 0 } }),
    },
  ];
  if (modelDir) env.push({ name: 'AIP_MODEL_DIR', value: modelDir });
  return env;
}

/** Linux refuses one environment string longer than 32 pages (MAX_ARG_STRLEN): execve fails with E2BIG. */
const MAX_ENV_STRING_BYTES = 131_072;

function checkInputListLength(inputs: ResolvedInputs): void {
  const bytes = Buffer.byteLength(`AIP_BATCH_INPUT_URIS=${inputs.files.map((f) => f.containerPath).join(',')}`) + 1;
  if (bytes > MAX_ENV_STRING_BYTES) {
    throw usageError(
      'INPUT_LIST_TOO_LONG',
      `input: ${inputs.files.length} files make AIP_BATCH_INPUT_URIS ${bytes} bytes; Linux refuses an environment variable over ${MAX_ENV_STRING_BYTES} bytes, so the container could not start.`,
      'Pass fewer, larger input files (e.g. concatenate them, or shard the job), or give the model its data another way (a model directory with --model-dir).',
    );
  }
}
