import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import {
  ContainerEngine,
  type ExitedContainer,
  type ImageDetails,
} from '../runtime/containerEngine.js';
import { ensureImage } from './ensureImage.js';
import type { RunJobHooks } from './jobHooks.js';
import { RECORD_DIR_NAME } from '../report/recordDir.js';

export type { RunJobHooks };
export { RECORD_DIR_NAME };
import { type RunAttempt, type RunJobResource, writeJsonAtomic } from '../report/jobResource.js';
import { buildEnvironment, type EnvVar, expandVertexReferences } from '../spec/expandVertexReferences.js';
import { GCS_MOUNT, parseGcsUri } from '../spec/gcsUri.js';
import { DEFAULT_RUNS_DIR, type RunJobOptions, resolveRunJobSpec } from '../spec/runJobSpec.js';
import { type CollectionResult, collectOutputs } from '../staging/collectOutputs.js';
import { collectGcsChanges, type GcsChanges } from '../staging/collectGcsChanges.js';
import { gcsInputsOnly, namedBuckets, resolveGcsBuckets } from '../staging/gcsBuckets.js';
import { DATA_MOUNT } from '../staging/containerLayout.js';
import { resolveInputs, resolveModelDir, resolveOutput } from '../staging/resolveLocations.js';
import { stageInputs } from '../staging/stageInputs.js';
import { diagnoseRunJob, formatBytes } from '../verdict/diagnoseRunJob.js';
import { isLinuxAmd64 } from '../verdict/judgeImage.js';
import { judgeRunJob, PRIMARY_REPLICA, type RunObservation } from '../verdict/judgeRunJob.js';
import { existingMissingPaths, gcsRecord } from './gcsBucketsRecord.js';
import { vertexRunEnvironment } from './runJobEnvironment.js';
import { containerRecord, imageRecord, startJobContext, vertexEnvironmentRecord } from './jobContext.js';
import { JobResources } from './jobResources.js';
import { LogCapture, maskSecrets } from './logCapture.js';
import { checkAccelerators } from './checkAccelerators.js';
import { limitsRecord, machineLimits } from './machineLimits.js';
import { checkDisk, type DiskCheck, replicaResources, unmeasuredDisk, withDiskVerdict } from './diskCheck.js';
import { realGcsOptions, withRealCloudStorage } from './withRealCloudStorage.js';
import { ChartRecorder } from './chartRecorder.js';
import { recordExitMarks, runToExit } from './runToExit.js';
import { checkInputListLength } from './checkInputListLength.js';

const CLEANUP_BUDGET_MS = 30_000;
const MAX_ADDED_PATHS = 10_000;
/** Time the copy of the outputs has at least, even when the job ran up to its --timeout. */
const COLLECT_GRACE_MS = 60_000;


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
  const { spec, inputs, model, output, buckets } = await timed('validate', async () => {
    const spec = await resolveRunJobSpec(options);
    // A CustomJob without an output directory keeps its record in ./vbe-runs/<job id>.
    if (spec.outputDefaulted) spec.output = { ...spec.output, text: path.join(DEFAULT_RUNS_DIR, jobId) };
    const inputs = await resolveInputs(spec.inputs, spec.gcsRoot);
    const model = spec.modelDir ? await resolveModelDir(spec.modelDir, spec.gcsRoot) : undefined;
    const output = await resolveOutput(spec.output, spec.gcsRoot);
    checkInputListLength(inputs);
    // Every bucket the job names is staged whole at /gcs/<bucket> (read and write, as Cloud Storage FUSE
    // shows it), but the output prefix, which starts empty.
    const outputLocation = output.gcsUri ? parseGcsUri(output.gcsUri, spec.output.field) : undefined;
    const outputPrefix = outputLocation ? [outputLocation.bucket, outputLocation.objectPath.replace(/\/+$/, '')].filter(Boolean).join('/') : undefined;
    const named = namedBuckets({ inputs: spec.inputs, modelDir: spec.modelDir, output: spec.output, extra: spec.extraBuckets });
    const excluded = outputPrefix ? [outputPrefix] : [];
    const buckets =
      spec.gcsStage === 'inputs'
        ? gcsInputsOnly(named, [...inputs.groups, ...(model?.groups ?? [])], excluded)
        : await resolveGcsBuckets(named, spec.gcsRoot, excluded);
    return { spec, inputs, model, output, buckets };
  });
  const recordDir = path.join(output.hostDir, RECORD_DIR_NAME);
  const logFiles = { stdout: path.join(recordDir, 'stdout.log'), stderr: path.join(recordDir, 'stderr.log') };

  const engine = hooks.engine ?? (await timed('connect', () => ContainerEngine.connect()));
  const host = await engine.hostInfo();
  const limits = machineLimits(spec.machine, host, spec.memoryReserve);
  const gpus = checkAccelerators(spec.accelerator, host);
  const warnings = [...spec.warnings, ...limits.warnings];
  if (buckets.excludedFileCount > 0) {
    warnings.push(
      `${buckets.excludedFileCount} file(s) already under the output prefix ${output.gcsUri} were not staged: the job sees it empty (on Vertex it would see those objects). Clear ${output.hostDir} or choose a new prefix.`,
    );
  }

  const observation: RunObservation = {
    imageUri: spec.imageUri,
    oomKilled: false,
    timedOut: false,
    cancelled: false,
    timeoutMs: spec.timeoutMs,
    stagedInputPaths: inputs.files.map((f) => f.containerPath),
    outputContainerDir: output.containerDir,
    outputFileCount: 0,
    flavour: spec.flavour.name,
    expectOutput: spec.expectOutput,
    refusedOutputs: [],
    addedPaths: [],
    logSignals: [],
    machineType: spec.machine.name,
    memoryBytes: limits.memoryBytes,
    machineMemoryBytes: limits.machineMemoryBytes,
    memoryReserveBytes: limits.memoryReserveBytes,
    logFile: logFiles.stderr,
  };
  if (spec.command) observation.command = spec.command;
  if (spec.args) observation.args = spec.args;

  const resources = new JobResources(engine, jobId, logger);
  let image: ImageDetails | undefined;
  let pulled = false;
  let startTime: Date | undefined;
  let collection: CollectionResult | undefined;
  let gcsChanges: GcsChanges | undefined;
  let environment: EnvVar[] = [];
  let command: string[] | undefined;
  let args: string[] | undefined;
  let capture: LogCapture | undefined;
  let cleanupLeftovers: string[] = [];
  let disk: DiskCheck | undefined;
  const attempts: RunAttempt[] = [];
  const cancelled = () => hooks.signal?.aborted === true;
  const charts = new ChartRecorder(createTime);

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
      const vertexEnv = vertexRunEnvironment({
        jobId,
        spec,
        inputPaths: inputs.files.map((f) => f.containerPath),
        outputContainerDir: output.containerDir,
        outputGcsUri: output.gcsUri,
        modelDir: model?.envValue,
      });
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
          ...replicaResources(spec, limits, image!),
          mounts,
          network: spec.network,
          ...(gpus ? { gpus } : {}),
        });
      const created = await timed('stage', async () => {
        await resources.volume(`vbe-${jobId}-data`);
        if (buckets.buckets.length > 0) mounts.push({ volume: await resources.volume(`vbe-${jobId}-gcs`), target: GCS_MOUNT });
        const created = await newReplica(0);
        // gs:// inputs and models are part of their staged buckets; local ones are staged under /vbe.
        const groups = [...inputs.groups, ...(model?.groups ?? [])].filter((g) => g.containerDir !== GCS_MOUNT);
        const localFiles = groups.reduce((n, g) => n + g.entries.length, 0);
        const localBytes = groups.reduce((n, g) => n + g.entries.reduce((b, e) => b + e.size, 0), 0);
        progress(
          `staging ${localFiles + buckets.fileCount} file(s), ${formatBytes(localBytes + buckets.totalBytes)}${buckets.buckets.length > 0 ? ` (bucket(s) ${buckets.buckets.join(', ')} whole)` : ''}`,
        );
        await stageInputs(created, [...groups, buckets.group], [output.containerDir, ...buckets.writableDirs], transfer);
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
            const attemptSpan = charts.begin(PRIMARY_REPLICA, `attempt ${attempt + 1}`);
            delete observation.startError;
            const start = await replica.start();
            let result: ExitedContainer;
            if ('startError' in start) {
              observation.startError = maskSecrets(start.startError, spec.secrets);
              result = start.exited;
            } else {
              const banner = attempt > 0 ? `[vbe: attempt ${attempt + 1}]` : undefined;
              result = await runToExit(start.started, capture!, deadline - Date.now(), spec, hooks.signal, observation, progress, banner, charts);
            }
            attemptSpan();
            recordExitMarks(charts, result, observation);
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
            charts.mark(PRIMARY_REPLICA, 'restart', `restart after exit ${exitCode}`);
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
          const layerBytes = exited.writableLayerBytes();
          layerBytes.catch(() => undefined);
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
          const written = await layerBytes.catch(() => undefined); // not measured: no disk verdict
          if (written !== undefined) disk = checkDisk(spec, image!, created.storageLimited, written, collection.totalBytes);
          observation.outputFileCount = collection.fileCount;
          observation.refusedOutputs = collection.refused;
          observation.refusedOutputCount = collection.refusedCount;
          if (collection.error && !collection.cancelled && !collection.timedOut) observation.collectionError = collection.error;
          // What it wrote elsewhere under /gcs becomes objects on Vertex: written back to the gcs root.
          if (buckets.buckets.length > 0 && !observation.cancelled && !observation.timedOut && !observation.collectionError) {
            gcsChanges = await timed('collect-gcs', () =>
              collectGcsChanges((sink, signal) => exited.readArchive(GCS_MOUNT, sink, signal), spec.gcsRoot, {
                manifest: buckets.manifest,
                skip: buckets.excluded,
                maxFileBytes: spec.maxOutputFileBytes,
                ...(hooks.signal ? { signal: hooks.signal } : {}),
              }),
            );
            if (gcsChanges.cancelled) observation.cancelled = true;
            else if (gcsChanges.error) observation.collectionError = gcsChanges.error;
            observation.gcsWrittenCount = gcsChanges.writtenCount;
          }
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
  observation.existingPaths = existingMissingPaths(observation.logSignals, buckets.manifest, gcsChanges, collection, output.containerDir);
  observation.stagedBuckets = buckets.buckets;
  const verdict = withDiskVerdict(judgeRunJob(observation), disk);
  const diagnoses = [...diagnoseRunJob(observation), ...(disk?.diagnosis ? [disk.diagnosis] : [])];
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
      flavour: spec.flavour.name,
      flavourReason: spec.flavour.reason,
      jobId,
      image: imageRecord(spec.imageUri, pulled, image),
      limits: limitsRecord(limits),
      sharedMemoryBytes: spec.shmSizeBytes ?? null,
      disk: disk?.record ?? unmeasuredDisk(spec),
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
      ...(buckets.buckets.length > 0 ? { gcs: gcsRecord(spec.gcsRoot, buckets, gcsChanges) } : {}),
      diagnoses,
      warnings,
      logs: { ...logFiles, truncated: capture ? capture.truncated.stdout || capture.truncated.stderr : false },
      logTail: capture?.tail.length ? capture.tail.map((t) => (t.channel === 'stderr' ? `[stderr] ${t.line}` : t.line)) : observation.startError ? [observation.startError] : [],
      recordFile,
      charts: charts.toRecord(phases),
    },
  };
  await writeJsonAtomic(recordFile, resource);
  return resource;
}
