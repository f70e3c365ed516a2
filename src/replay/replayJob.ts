import { access, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { usageError } from '../errors.js';
import { batchPredict } from '../jobs/batchPredict.js';
import { runJob, type RunJobHooks } from '../jobs/runJob.js';
import { type BatchPredictionJobResource, type RunJobResource, writeJsonAtomic } from '../report/jobResource.js';
import { gcsHostPath, isGcsUri, parseGcsUri } from '../spec/gcsUri.js';
import { loadSpecFile } from '../spec/loadSpecFile.js';
import type { PullPolicy } from '../spec/runJobSpec.js';
import { resolveInputs } from '../staging/resolveLocations.js';
import { compareOutcomes, type JobOutcome, type OutcomeComparison } from './compareOutcomes.js';
import { type ErrorGroup, parseErrorStats } from './errorStats.js';
import { type FailedInstancesCount, listErrorFiles, listResultsFiles, writeFailedInstances } from './failedInstances.js';
import {
  cloudOutcome,
  gcsOutputDirectory,
  JOB_NAME,
  jobIdOf,
  jobKind,
  type JobKind,
  MODEL_NAME,
  type ModelContainer,
  modelContainer,
  toLocalSpec,
  type VertexResource,
} from './vertexJobResource.js';

export interface ReplayOptions {
  /** A job resource file (JSON or YAML), or a resource name fetched from the Vertex AI API. */
  job: string;
  /** A Model resource file, for a BatchPredictionJob that names a `model`. */
  model?: string;
  image?: string;
  output?: string;
  gcs?: 'local' | 'real';
  gcsRoot?: string;
  /** Run only the instances with no line in the cloud job's results files. */
  failedOnly?: boolean;
  /** Inputs for a CustomJob (its resource has no inputConfig). */
  inputs?: string[];
  pull?: PullPolicy;
  /** The Vertex AI API endpoint (default `<region>-aiplatform.googleapis.com`). */
  apiEndpoint?: string;
  maxFailedRatio?: number;
  cwd?: string;
}

/** `emulator.replay` of the local job record. */
export interface ReplayRecord extends OutcomeComparison {
  source: string;
  kind: JobKind;
  cloudJobName?: string;
  specFile: string;
  failedOnly?: Omit<FailedInstancesCount, 'resultsFiles'> & { resultsFiles: string[] };
}

export type ReplayedJob = (RunJobResource | BatchPredictionJobResource) & { emulator: { replay?: ReplayRecord } };

const REPLAY_DIR = '.vbe-replay';

/**
 * Reproduces a Vertex job locally from its resource: the spec as the cloud ran it, inputs from the
 * local Cloud Storage mapping (or real Cloud Storage, downloaded), outputs in a local directory
 * (never the cloud job's own output directory), and the cloud's outcome beside the local one.
 */
export async function replayJob(options: ReplayOptions, hooks: RunJobHooks = {}): Promise<ReplayedJob> {
  const cwd = options.cwd ?? process.cwd();
  const progress = hooks.onProgress ?? (() => undefined);
  const { resource, fetched } = await loadResource(options.job, cwd, options.apiEndpoint);
  const source = fetched ? options.job : path.resolve(cwd, options.job);
  const kind = jobKind(resource, source);
  const { parseWithSchema, batchPredictionJobSchema, runJobSpecFileSchema } = await import('../spec/vertexSchemas.js');
  parseWithSchema(kind === 'customJob' ? runJobSpecFileSchema : batchPredictionJobSchema, resource, source);
  if (options.gcs === 'real' && options.gcsRoot !== undefined) {
    throw usageError('GCS_ROOT_WITH_REAL', '--gcs-root: a local Cloud Storage root cannot be combined with --gcs real.', 'Drop one of them.');
  }
  if (options.failedOnly && kind === 'customJob') {
    throw usageError('FAILED_ONLY_NOT_BATCH', '--failed-only: a CustomJob has no instances; it applies to a BatchPredictionJob.', 'Drop --failed-only to replay the whole CustomJob.');
  }

  const model = kind === 'batchPredictionJob' ? await modelFor(resource, options, cwd, progress, fetched) : undefined;
  const jobId = jobIdOf(resource) ?? 'job';
  const output = path.resolve(cwd, options.output ?? `replay-${jobId}`);
  const replayDir = path.join(output, REPLAY_DIR);
  await mkdir(replayDir, { recursive: true });
  const specFile = path.join(replayDir, `${kind}.json`);
  const localSpec = toLocalSpec(resource, model);
  await writeJsonAtomic(specFile, localSpec);

  const cloudDir = gcsOutputDirectory(resource);
  let gcsRoot = path.resolve(cwd, options.gcsRoot ?? 'gcs');
  let mirror: string | undefined;
  try {
    if (options.gcs === 'real') {
      mirror = await mkdtemp(path.join(os.tmpdir(), 'vbe-replay-gcs-'));
      gcsRoot = mirror;
      await downloadForReplay(localSpec, kind, options, cloudDir, mirror, progress);
    }
    const replay: ReplayRecord = { source, kind, specFile, ...compareOutcomes(cloudOutcome(resource), { state: 'JOB_STATE_UNSPECIFIED', errorGroups: [] }) };
    if (typeof resource.name === 'string') replay.cloudJobName = resource.name;
    replay.cloud.errorGroups = cloudDir ? await readErrorGroups(cloudDir, gcsRoot) : [];

    let job: ReplayedJob;
    if (kind === 'batchPredictionJob') {
      let inputs: string[] | undefined;
      if (options.failedOnly) {
        const found = await failedInstances(resource, cloudDir, gcsRoot, replayDir);
        replay.failedOnly = found;
        progress(`--failed-only: ${found.failed} of ${found.inputInstances} input instance(s) have no line in the cloud job's results files (${found.resultsFiles.length} file(s)); running those`);
        if (found.failed === 0) {
          throw usageError('NOTHING_FAILED', `--failed-only: every one of the ${found.inputInstances} input instances has a result line in ${cloudDir}: nothing failed.`, 'Drop --failed-only to replay the whole job.');
        }
        inputs = [found.file];
      }
      job = await batchPredict(
        {
          spec: specFile,
          output,
          gcsRoot,
          ...(inputs ? { inputs, instancesFormat: 'jsonl' } : {}),
          // The prediction directory is named for the Model's display name, as the cloud names it.
          ...(model?.displayName?.trim() ? { modelDisplayName: model.displayName } : {}),
          ...(options.image ? { image: options.image } : {}),
          ...(options.pull ? { pull: options.pull } : {}),
          ...(options.maxFailedRatio !== undefined ? { maxFailedRatio: options.maxFailedRatio } : {}),
        },
        hooks,
      );
    } else {
      job = await runJob(
        {
          spec: specFile,
          output,
          gcsRoot,
          ...(options.inputs?.length ? { inputs: options.inputs.map((i) => (isGcsUri(i) ? i : path.resolve(cwd, i))) } : {}),
          ...(options.image ? { image: options.image } : {}),
          ...(options.pull ? { pull: options.pull } : {}),
        },
        hooks,
      );
    }
    const compared = compareOutcomes(replay.cloud, localOutcome(job));
    Object.assign(replay, compared);
    job.emulator.replay = replay;
    await writeJsonAtomic(job.emulator.recordFile, job);
    return job;
  } finally {
    if (mirror) await rm(mirror, { recursive: true, force: true });
  }
}

async function loadResource(job: string, cwd: string, apiEndpoint: string | undefined): Promise<{ resource: VertexResource; fetched: boolean }> {
  const file = path.resolve(cwd, job);
  const exists = await access(file).then(() => true, () => false);
  if (!exists) {
    const name = JOB_NAME.exec(job);
    if (!name) {
      throw usageError('JOB_NOT_FOUND', `replay: "${job}" is neither a file nor a job resource name.`, 'Give a file from `gcloud ai batch-prediction-jobs describe ID --format=json`, or a name projects/P/locations/L/batchPredictionJobs/ID (or .../customJobs/ID).');
    }
    const { openVertexApi } = await import('../cloud/vertexApi.js');
    const api = await openVertexApi(name[2]!, apiEndpoint);
    const resource = name[3] === 'customJobs' ? await api.getCustomJob(job) : await api.getBatchPredictionJob(job);
    return { resource, fetched: true };
  }
  const text = await loadSpecFile(file).catch((error: unknown) => {
    throw usageError('JOB_FILE_UNREADABLE', `replay: ${(error as Error).message.replace(/^--spec: /, '')}`, 'Give the JSON of `gcloud ai batch-prediction-jobs describe ID --format=json`.');
  });
  if (!text || typeof text !== 'object' || Array.isArray(text)) {
    throw usageError('NOT_A_JOB_RESOURCE', `replay: ${file} does not hold a JSON object.`, 'Give the JSON of `gcloud ai batch-prediction-jobs describe ID --format=json`.');
  }
  return { resource: text as VertexResource, fetched: false };
}

/**
 * The container of a BatchPredictionJob that names a Model: from --model, or fetched (always when the
 * job itself was fetched; for a job file only without --image); none needed with an inline one.
 */
async function modelFor(resource: VertexResource, options: ReplayOptions, cwd: string, progress: (m: string) => void, jobFetched: boolean): Promise<ModelContainer | undefined> {
  if (resource.unmanagedContainerModel !== undefined) return undefined;
  if (options.model) {
    const file = path.resolve(cwd, options.model);
    const data = await loadSpecFile(file).catch((error: unknown) => {
      throw usageError('MODEL_FILE_UNREADABLE', `--model: ${(error as Error).message.replace(/^--spec: /, '')}`, 'Give the JSON of `gcloud ai models describe ID --region REGION --format=json`.');
    });
    return modelContainer(data as VertexResource, `--model ${options.model}`);
  }
  const modelName = typeof resource.model === 'string' ? resource.model : undefined;
  if (!modelName) return undefined;
  if (options.image && !jobFetched) {
    progress(`the job names the model ${modelName}; without --model its containerSpec (routes, port, env) is unknown: using --image with Vertex's defaults`);
    return undefined;
  }
  if (!MODEL_NAME.test(modelName)) {
    throw usageError('MODEL_NEEDED', `model: "${modelName}" is not a model resource name, and no --model file was given.`, 'Pass --model model.json (`gcloud ai models describe ... --format=json`) or --image.');
  }
  const { openVertexApi } = await import('../cloud/vertexApi.js');
  const api = await openVertexApi(MODEL_NAME.exec(modelName)![2]!, options.apiEndpoint);
  progress(`fetching the model ${modelName}`);
  return modelContainer(await api.getModel(modelName), modelName);
}

async function failedInstances(resource: VertexResource, cloudDir: string | undefined, gcsRoot: string, replayDir: string): Promise<FailedInstancesCount> {
  const format = (resource.inputConfig as { instancesFormat?: string } | undefined)?.instancesFormat;
  if (format !== 'jsonl') {
    throw usageError('FAILED_ONLY_FORMAT', `--failed-only: inputConfig.instancesFormat is "${format}"; finding the failed instances is available for jsonl input.`, 'Drop --failed-only to replay the whole job.');
  }
  if (!cloudDir) {
    throw usageError('NO_CLOUD_OUTPUT', '--failed-only: the resource has no outputInfo.gcsOutputDirectory, so the results files cannot be read.', 'Give the resource as the API returns it for a finished job, or drop --failed-only.');
  }
  const resultsDir = gcsHostPath(parseGcsUri(cloudDir, 'outputInfo.gcsOutputDirectory'), gcsRoot);
  const resultsFiles = await listResultsFiles(resultsDir);
  if (resultsFiles.length === 0) {
    throw usageError('NO_RESULTS_FILES', `--failed-only: no prediction.results-* (or predictions_*.jsonl) files in ${resultsDir} (${cloudDir}).`, 'Copy the cloud job\'s output directory there (gcloud storage cp -r ' + cloudDir + ' ...), or use --gcs real.');
  }
  const uris = (resource.inputConfig as { gcsSource?: { uris?: string[] } }).gcsSource?.uris ?? [];
  const inputs = await resolveInputs(uris.map((text, i) => ({ text, baseDir: gcsRoot, field: `inputConfig.gcsSource.uris[${i}]` })), gcsRoot);
  const instanceConfig = (resource.instanceConfig ?? {}) as Parameters<typeof writeFailedInstances>[0]['instanceConfig'];
  return writeFailedInstances({ inputFiles: inputs.files.map((f) => f.hostPath), resultsFiles, instanceConfig, outFile: path.join(replayDir, 'failed-instances.jsonl') });
}

async function readErrorGroups(cloudDir: string, gcsRoot: string): Promise<ErrorGroup[]> {
  if (!isGcsUri(cloudDir)) return [];
  const files = await listErrorFiles(gcsHostPath(parseGcsUri(cloudDir, 'outputInfo.gcsOutputDirectory'), gcsRoot));
  const groups = new Map<string, number>();
  for (const file of files) {
    for (const g of parseErrorStats(await readFile(file, 'utf8'))) groups.set(g.message, (groups.get(g.message) ?? 0) + g.count);
  }
  return [...groups].map(([message, count]) => ({ message, count })).sort((a, b) => b.count - a.count);
}

/** `--gcs real`: the inputs and model (of the local spec) and the cloud job's output directory (results, error files) into a mirror. */
async function downloadForReplay(resource: VertexResource, kind: JobKind, options: ReplayOptions, cloudDir: string | undefined, mirror: string, progress: (m: string) => void): Promise<void> {
  const { downloadGcsInput, openCloudStorage } = await import('../staging/cloudStorage.js');
  const storage = await openCloudStorage();
  const uris: Array<[string, string]> = [];
  if (kind === 'batchPredictionJob') {
    ((resource.inputConfig as { gcsSource?: { uris?: string[] } } | undefined)?.gcsSource?.uris ?? []).forEach((u, i) => uris.push([u, `inputConfig.gcsSource.uris[${i}]`]));
    const artifact = (resource.unmanagedContainerModel as { artifactUri?: string } | undefined)?.artifactUri;
    if (artifact && isGcsUri(artifact)) uris.push([artifact, 'unmanagedContainerModel.artifactUri']);
  }
  (options.inputs ?? []).filter(isGcsUri).forEach((u, i) => uris.push([u, `--input[${i}]`]));
  if (cloudDir) uris.push([cloudDir, 'outputInfo.gcsOutputDirectory']);
  for (const [uri, field] of uris) {
    progress(`downloading ${uri} from Cloud Storage`);
    await downloadGcsInput(storage, uri, field, mirror);
  }
}

function localOutcome(job: RunJobResource | BatchPredictionJobResource): JobOutcome {
  const outcome: JobOutcome = { state: job.state, errorGroups: [] };
  if (job.error) outcome.error = { code: job.error.code, message: job.error.message };
  if ('completionStats' in job) {
    outcome.completionStats = { ...job.completionStats };
    outcome.errorGroups = Object.entries(job.emulator.failuresByKind)
      .map(([kind, f]) => ({ message: `${kind}: ${f.example}`, count: f.count }))
      .sort((a, b) => b.count - a.count);
  } else if (job.error) {
    outcome.errorGroups = [{ message: job.error.message, count: 1 }];
  }
  return outcome;
}
