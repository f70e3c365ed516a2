import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { usageError } from '../errors.js';
import { writeJsonAtomic } from '../report/jobResource.js';
import { compareOutcomes, type JobOutcome, type OutcomeComparison } from '../replay/compareOutcomes.js';
import { cloudOutcome } from '../replay/vertexJobResource.js';
import { type BatchPredictOptions, resolveBatchPredictSpec } from '../spec/batchPredictSpec.js';
import { isGcsUri, parseGcsUri } from '../spec/gcsUri.js';
import { type LocationRef, resolveRunJobSpec, type RunJobOptions } from '../spec/runJobSpec.js';
import { resolveProject, resolveRegion } from './gcloudDefaults.js';
import { batchPredictionJobBody, type CloudLocations, customJobBody } from './jobRequestBody.js';

export type SubmitKind = 'customJob' | 'batchPredictionJob';

export interface SubmitSettings {
  project?: string;
  region?: string;
  apiEndpoint?: string;
  /** Poll until a terminal state, then download the outputs. */
  wait?: boolean;
  pollIntervalMs?: number;
  /** Where --wait downloads the outputs (default ./submit-<job id>/). */
  downloadDir?: string;
  /** A local job.json to compare the cloud outcome with. */
  compare?: string;
  dryRun?: boolean;
  /** gs://bucket/prefix: local inputs, model and output are staged here. */
  stageTo?: string;
  /** Set AIP_BATCH_INPUT_URIS / AIP_BATCH_OUTPUT_DIR on a CustomJob. */
  batchEnv?: boolean;
  cwd?: string;
  signal?: AbortSignal;
  progress?: (message: string) => void;
  /** Told each warning as soon as it is known (before anything is sent). */
  warn?: (message: string) => void;
}

export interface SubmitResult {
  /** `dry-run`: nothing was sent; `created`: sent, not waited for; `finished`: waited for. */
  outcome: 'dry-run' | 'created' | 'finished' | 'detached';
  requestBody: Record<string, unknown>;
  parent: string;
  warnings: string[];
  resource?: Record<string, unknown>;
  downloaded?: { directory: string; objects: number; bytes: number };
  comparison?: OutcomeComparison;
}

const TERMINAL = new Set(['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED', 'JOB_STATE_PARTIALLY_SUCCEEDED', 'JOB_STATE_EXPIRED']);
const DEFAULT_POLL_MS = 30_000;

/**
 * Creates on Vertex the job a local command would run: the same validation first (a spec vbe
 * refuses is never sent), inputs and outputs in Cloud Storage (or staged with --stage-to), then
 * optionally waits for it, downloads its outputs and compares it with a local run.
 */
export async function submitJob(kind: SubmitKind, options: RunJobOptions | BatchPredictOptions, settings: SubmitSettings): Promise<SubmitResult> {
  const progress = settings.progress ?? (() => undefined);
  const cwd = settings.cwd ?? process.cwd();
  const spec = kind === 'customJob' ? await resolveRunJobSpec({ ...options, cwd } as RunJobOptions) : await resolveBatchPredictSpec({ ...options, cwd } as BatchPredictOptions);
  const base = 'base' in spec ? spec.base : spec;
  const project = resolveProject(settings.project);
  const region = resolveRegion(settings.region);
  const parent = `projects/${project}/locations/${region}`;
  if (settings.stageTo) parseGcsUri(settings.stageTo, '--stage-to');
  checkCloudLocations(base.inputs, base.output, base.modelDir, settings.stageTo);

  const where = await cloudLocations(base.inputs, base.output, base.modelDir, settings, progress);
  const build = (maskSecrets: boolean) =>
    'base' in spec ? batchPredictionJobBody(spec, where, { maskSecrets }) : customJobBody(spec, where, { maskSecrets, batchEnv: settings.batchEnv === true });
  if (settings.dryRun) {
    const { body, warnings } = build(true);
    for (const w of warnings) settings.warn?.(w);
    return { outcome: 'dry-run', requestBody: body, parent, warnings };
  }
  const { body, warnings } = build(false);
  for (const w of warnings) settings.warn?.(w);
  const { openVertexApi } = await import('./vertexApi.js');
  const api = await openVertexApi(region, settings.apiEndpoint);
  progress(`creating the ${kind === 'customJob' ? 'CustomJob' : 'BatchPredictionJob'} in ${parent} (${api.endpoint})`);
  let resource = kind === 'customJob' ? await api.createCustomJob(parent, body) : await api.createBatchPredictionJob(parent, body);
  const name = String(resource.name);
  progress(`created ${name}`);
  const result: SubmitResult = { outcome: 'created', requestBody: build(true).body, parent, warnings, resource };
  if (!settings.wait) return result;

  const get = () => (kind === 'customJob' ? api.getCustomJob(name) : api.getBatchPredictionJob(name));
  let state = String(resource.state);
  const started = Date.now();
  while (!TERMINAL.has(state)) {
    if (settings.signal?.aborted) {
      progress(`stopped waiting; ${name} keeps running on Vertex (cancel it with: gcloud ai ${kind === 'customJob' ? 'custom-jobs' : 'batch-prediction-jobs'} cancel ${name.split('/').pop()} --region ${region})`);
      return { ...result, outcome: 'detached' };
    }
    await sleep(settings.pollIntervalMs ?? DEFAULT_POLL_MS, settings.signal);
    if (settings.signal?.aborted) continue;
    resource = await get();
    if (String(resource.state) !== state) {
      state = String(resource.state);
      progress(`${state} after ${Math.round((Date.now() - started) / 1000)}s`);
    }
  }
  result.outcome = 'finished';
  result.resource = resource;
  const downloadDir = path.resolve(cwd, settings.downloadDir ?? `submit-${name.split('/').pop()}`);
  await mkdir(downloadDir, { recursive: true });
  await writeJsonAtomic(path.join(downloadDir, 'cloud-job.json'), resource);
  const outputUri = kind === 'batchPredictionJob' ? (resource.outputInfo as { gcsOutputDirectory?: string } | undefined)?.gcsOutputDirectory : where.output;
  if (outputUri) result.downloaded = await downloadPrefix(outputUri, downloadDir, progress);
  if (settings.compare) result.comparison = compareOutcomes(await cloudSide(resource, downloadDir), await localSide(path.resolve(cwd, settings.compare)));
  return result;
}

/** Local paths are never uploaded silently: without --stage-to every location must be gs://. */
function checkCloudLocations(inputs: readonly LocationRef[], output: LocationRef, modelDir: LocationRef | undefined, stageTo: string | undefined): void {
  if (stageTo) return;
  for (const ref of [...inputs, output, ...(modelDir ? [modelDir] : [])]) {
    if (!isGcsUri(ref.text)) {
      throw usageError('LOCAL_PATH_NOT_SUBMITTABLE', `${ref.field}: "${ref.text}" is a local path; a job on Vertex reads and writes Cloud Storage only.`, 'Give gs:// URIs, or pass --stage-to gs://BUCKET/PREFIX to upload the local inputs (and write the outputs) there first.');
    }
  }
}

async function cloudLocations(inputs: readonly LocationRef[], output: LocationRef, modelDir: LocationRef | undefined, settings: SubmitSettings, progress: (m: string) => void): Promise<CloudLocations> {
  const stageTo = settings.stageTo?.replace(/\/+$/, '');
  const needsUpload = [...inputs, ...(modelDir ? [modelDir] : [])].some((ref) => !isGcsUri(ref.text));
  const storage = needsUpload && !settings.dryRun ? await (await import('../staging/cloudStorage.js')).openCloudStorage() : undefined;
  const stage = async (ref: LocationRef, under: string): Promise<string> => {
    if (isGcsUri(ref.text)) return ref.text;
    const local = path.resolve(ref.baseDir, ref.text);
    const info = await stat(local).catch(() => undefined);
    if (!info) throw usageError('INPUT_NOT_FOUND', `${ref.field}: "${local}" does not exist (globs are not staged; name files or directories).`, 'Give an existing file or directory to stage.');
    const uri = `${stageTo}/${under}/${path.basename(local)}`;
    if (storage) {
      progress(`staging ${local} to ${uri}`);
      const { uploadDirectory } = await import('../staging/cloudStorage.js');
      if (info.isDirectory()) await uploadDirectory(storage, local, uri, ref.field, []);
      else {
        const { bucket, objectPath } = parseGcsUri(uri, ref.field);
        await storage.bucket(bucket).upload(local, { destination: objectPath, resumable: false, validation: 'crc32c' });
      }
    }
    return uri;
  };
  const where: CloudLocations = { inputs: [], output: isGcsUri(output.text) ? output.text : `${stageTo}/outputs` };
  for (const ref of inputs) where.inputs.push(await stage(ref, 'inputs'));
  if (modelDir) where.modelDir = await stage(modelDir, 'model');
  return where;
}

/** Downloads everything under a gs:// prefix into `directory/<last part of the prefix>/`. */
async function downloadPrefix(uri: string, directory: string, progress: (m: string) => void): Promise<{ directory: string; objects: number; bytes: number }> {
  const { downloadGcsInput, openCloudStorage } = await import('../staging/cloudStorage.js');
  const { bucket, objectPath } = parseGcsUri(uri, 'output');
  const target = path.join(directory, path.basename(objectPath.replace(/\/+$/, '')) || bucket);
  const mirror = path.join(directory, '.vbe-download');
  progress(`downloading ${uri} to ${target}`);
  try {
    let got: { objects: number; bytes: number };
    try {
      got = await downloadGcsInput(await openCloudStorage(), uri, 'output', mirror);
    } catch (error) {
      if ((error as { code?: string }).code !== 'INPUT_NOT_FOUND') throw error;
      progress(`${uri} holds no files: nothing to download`);
      return { directory: target, objects: 0, bytes: 0 };
    }
    await rm(target, { recursive: true, force: true });
    await rename(path.join(mirror, bucket, ...objectPath.replace(/\/+$/, '').split('/')), target);
    return { directory: target, objects: got.objects, bytes: got.bytes };
  } finally {
    await rm(mirror, { recursive: true, force: true });
  }
}

async function cloudSide(resource: Record<string, unknown>, downloadDir: string): Promise<JobOutcome> {
  const outcome = cloudOutcome(resource);
  const { listErrorFiles } = await import('../replay/failedInstances.js');
  const { parseErrorStats } = await import('../replay/errorStats.js');
  const dir = (resource.outputInfo as { gcsOutputDirectory?: string } | undefined)?.gcsOutputDirectory;
  if (dir) {
    for (const file of await listErrorFiles(path.join(downloadDir, path.basename(dir)))) outcome.errorGroups.push(...parseErrorStats(await readFile(file, 'utf8')));
  }
  return outcome;
}

async function localSide(file: string): Promise<JobOutcome> {
  let job: { state?: string; error?: { code: number; message: string }; completionStats?: JobOutcome['completionStats']; emulator?: { failuresByKind?: Record<string, { count: number; example: string }> } };
  try {
    job = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw usageError('COMPARE_UNREADABLE', `--compare: cannot read the local job record "${file}" (${(error as Error).message}).`, 'Give the .vbe/job.json of a local run.');
  }
  const outcome: JobOutcome = { state: job.state ?? 'JOB_STATE_UNSPECIFIED', errorGroups: [] };
  if (job.error) outcome.error = job.error;
  if (job.completionStats) outcome.completionStats = job.completionStats;
  for (const [kind, f] of Object.entries(job.emulator?.failuresByKind ?? {})) outcome.errorGroups.push({ message: `${kind}: ${f.example}`, count: f.count });
  return outcome;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
