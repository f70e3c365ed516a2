import path from 'node:path';
import { usageError } from '../errors.js';
import { type EnvVar } from './expandVertexReferences.js';
import { loadSpecFile } from './loadSpecFile.js';
import { DEFAULT_MACHINE_TYPE, getMachineType, GiB, type MachineType } from './machineTypes.js';
import { DEFAULT_MEMORY_RESERVE, type MemoryReservePolicy, parseMemoryReserve } from './memoryReserve.js';
import { parseDurationMs } from './parseDuration.js';
import { parseSizeBytes } from './parseSize.js';
import type { ContainerSpec, RunJobSpecFile } from './vertexSchemas.js';

export type PullPolicy = 'missing' | 'always' | 'never';
export const PULL_POLICIES: readonly PullPolicy[] = ['missing', 'always', 'never'];

/** What a caller (the CLI or a test) asks for. Flags override the spec file's fields. */
export interface RunJobOptions {
  image?: string;
  inputs?: string[];
  output?: string;
  machineType?: string;
  /** `K=V` strings (as from the CLI) or a record. */
  env?: string[] | Record<string, string>;
  command?: string[];
  args?: string[];
  /** Duration such as "30m", or milliseconds as a number. */
  timeout?: string | number;
  /** Cloud Storage: `local` maps gs://b/p to <gcsRoot>/b/p (default); `real` uses the real service (or STORAGE_EMULATOR_HOST). */
  gcs?: 'local' | 'real';
  gcsRoot?: string;
  /** Path of a JSON or YAML file with Vertex field names. */
  spec?: string;
  pull?: PullPolicy;
  displayName?: string;
  /** A model directory (local or gs://) staged into the container; sets AIP_MODEL_DIR. */
  modelDir?: string;
  /** How long a stopped container gets between SIGTERM and SIGKILL. */
  stopGrace?: string | number;
  /** Largest single output file collected, in bytes. */
  maxOutputFileBytes?: number;
  /** Directory relative paths are resolved against (default: process.cwd()). */
  cwd?: string;
  /**
   * Environment variables whose values are secret: `K=V`, or `K` alone to take the value from
   * this process's environment. Their values never appear in logs, job.json or diagnoses.
   */
  secretEnv?: string[] | Record<string, string>;
  /** Bytes of each container log stream saved to disk (the live view is not cut). */
  maxLogBytes?: number;
  /** Restarts of a replica that exits with a restarted code, as Vertex does. Default 3; 0 turns restarts off. */
  maxRestarts?: number;
  /** Which exit codes are restarted: a list, 'vertex' (6, 11, 134, 139: SIGABRT, SIGSEGV; the default) or 'any' non-zero. */
  restartExitCodes?: number[] | 'vertex' | 'any';
  /**
   * Which `vbe run` flavour applies: 'custom-job' (Vertex's CustomJob semantics: inputs optional, exit 0
   * is SUCCEEDED) or 'batch-files' (the AIP_BATCH_INPUT_URIS / AIP_BATCH_OUTPUT_DIR contract). Default:
   * custom-job for a spec with jobSpec.workerPoolSpecs or a job without inputs, else batch-files.
   */
  contract?: JobFlavour;
  /** A CustomJob that exits 0 without writing anything FAILS instead of only warning (for CI). */
  expectOutput?: boolean;
  /** More buckets under the gcs root to stage whole at /gcs/<bucket> (the job's own buckets always are). */
  gcsBuckets?: string[];
  /** What of the named buckets is copied in: 'buckets' (whole, as FUSE shows them; default) or 'inputs' (only the gs:// inputs and model: faster for big buckets). */
  gcsStage?: 'buckets' | 'inputs';
  /** The container's network: 'bridge' (default, like a Vertex replica) or 'none' (hermetic). */
  network?: 'bridge' | 'none';
  /** Run CPU-only even when the machine spec asks for accelerators. */
  noGpu?: boolean;
  /** What Vertex keeps of the machine's memory: `vertex` (default), `none`, a size or a percentage. */
  memoryReserve?: string;
  /** The replica's disk in bytes (or a size such as "2GiB"), replacing diskSpec.bootDiskSizeGb: to test the disk check quickly. */
  diskSize?: string | number;
}

/** A path or URI as written, with the directory a relative local path is relative to. */
export interface LocationRef {
  text: string;
  baseDir: string;
  field: string;
}

/** The two flavours of `vbe run`: a Vertex CustomJob, or the article's batch file contract. */
export type JobFlavour = 'custom-job' | 'batch-files';
export const JOB_FLAVOURS: readonly JobFlavour[] = ['custom-job', 'batch-files'];

export interface RunJobSpec {
  /** Which semantics apply, and why (the record and the summary say it). */
  flavour: { name: JobFlavour; reason: string };
  /** CustomJob: an exit 0 without outputs FAILS (default: a warning). */
  expectOutput: boolean;
  /** CustomJob baseOutputDirectory (gs:// or local), from the spec or --output: sets AIP_MODEL_DIR and friends. */
  baseOutputDirectory?: string;
  /** Buckets named with --gcs-bucket, staged whole beside the job's own. */
  extraBuckets: string[];
  gcsStage: 'buckets' | 'inputs';
  /** Worker pools of the spec that are not run (only workerpool0 is). */
  skippedPools: number;
  displayName: string;
  imageUri: string;
  command?: string[];
  args?: string[];
  env: EnvVar[];
  inputs: LocationRef[];
  output: LocationRef;
  /** A CustomJob without baseOutputDirectory or --output: the record goes to ./vbe-runs/<job id>. */
  outputDefaulted?: boolean;
  modelDir?: LocationRef;
  machine: MachineType;
  timeoutMs: number;
  stopGraceMs: number;
  pullPolicy: PullPolicy;
  gcsRoot: string;
  maxOutputFileBytes: number;
  /** Secret values to mask wherever the emulator prints or records anything. */
  secrets: string[];
  maxLogBytes: number;
  maxRestarts: number;
  network: 'bridge' | 'none';
  /** GPUs the job asks for (machineSpec.acceleratorType/Count or a GPU machine type), unless --no-gpu. */
  accelerator?: { type: string; count: number };
  /** Undefined: any non-zero exit is restarted (when maxRestarts > 0). */
  restartExitCodes?: number[];
  /** Things the user should know that do not stop the job (ignored fields, GPU requests). */
  warnings: string[];
  memoryReserve: MemoryReservePolicy;
  /** /dev/shm size from containerSpec.sharedMemorySizeMb (unset: the engine's 64 MiB). */
  shmSizeBytes?: number;
  /** The replica's boot disk: what the container may write. */
  disk: { sizeBytes: number; source: 'default' | 'diskSpec.bootDiskSizeGb' | '--disk-size' };
}

/** diskSpec.bootDiskSizeGb's default [proto machine_resources.proto DiskSpec]. */
export const DEFAULT_BOOT_DISK_SIZE_GB = 100;

export const DEFAULT_TIMEOUT = '30m';
export const DEFAULT_STOP_GRACE = '10s';
export const DEFAULT_MAX_OUTPUT_FILE_BYTES = 4 * 1024 ** 3;
export const DEFAULT_MAX_LOG_BYTES = 256 * 1024 ** 2;
/** Vertex restarts a job that dies of SIGABRT or SIGSEGV up to three times ([train]): 6/11 as signals, 134/139 as shell statuses. */
export const VERTEX_RESTARTED_EXIT_CODES = [6, 11, 134, 139];
export const DEFAULT_MAX_RESTARTS = 3;
/** Where a CustomJob without an output directory keeps its record: <cwd>/vbe-runs/<job id>. */
export const DEFAULT_RUNS_DIR = 'vbe-runs';

/** Reads the spec file (if any), merges the options over it and validates the result. */
export async function resolveRunJobSpec(options: RunJobOptions): Promise<RunJobSpec> {
  const cwd = options.cwd ?? process.cwd();
  let file: RunJobSpecFile = {};
  let specDir = cwd;
  if (options.spec) {
    const specPath = path.resolve(cwd, options.spec);
    // The schema library is loaded only when a spec file is given: a plain run starts faster.
    const { parseWithSchema, runJobSpecFileSchema } = await import('./vertexSchemas.js');
    file = parseWithSchema(runJobSpecFileSchema, await loadSpecFile(specPath), `--spec ${options.spec}`);
    specDir = path.dirname(specPath);
  }
  return mergeRunJobSpec(options, file, { cwd, specDir });
}

/** Pure merge of options over a validated spec file. */
export function mergeRunJobSpec(options: RunJobOptions, file: RunJobSpecFile, dirs: { cwd: string; specDir: string }): RunJobSpec {
  const warnings: string[] = [];
  const pool = file.jobSpec?.workerPoolSpecs[0];
  // Vertex leaves a pool given as {} unused; any other pool after the first would run replicas that vbe does not.
  const notRun = (file.jobSpec?.workerPoolSpecs ?? [])
    .map((p, i) => ({ i, used: Object.keys(p).length > 0, replicas: p.replicaCount ?? 1 }))
    .filter((p) => p.i > 0 && p.used);
  if (notRun.length > 0) {
    warnings.push(
      `jobSpec.workerPoolSpecs: only workerpool0 (its primary replica) is run; not run: ${notRun.map((p) => `workerpool${p.i} (${p.replicas} replica(s))`).join(', ')}. Code that waits for those replicas will hang or fail here.`,
    );
  }
  const containerSpec: ContainerSpec =
    file.containerSpec ?? file.unmanagedContainerModel?.containerSpec ?? pool?.containerSpec ?? {};
  const specField = file.containerSpec
    ? 'containerSpec'
    : file.unmanagedContainerModel
      ? 'unmanagedContainerModel.containerSpec'
      : 'jobSpec.workerPoolSpecs[0].containerSpec';

  const imageUri = options.image ?? containerSpec.imageUri;
  if (!imageUri) {
    throw usageError('MISSING_IMAGE', 'image: no container image given.', `Pass --image <ref> or set ${specField}.imageUri in the spec.`);
  }

  const flagInputs = options.inputs ?? [];
  const inputs: LocationRef[] =
    flagInputs.length > 0
      ? flagInputs.map((text, i) => ({ text, baseDir: dirs.cwd, field: `--input[${i}]` }))
      : (file.inputConfig?.gcsSource?.uris ?? []).map((text, i) => ({ text, baseDir: dirs.specDir, field: `inputConfig.gcsSource.uris[${i}]` }));
  if (options.contract !== undefined && !JOB_FLAVOURS.includes(options.contract)) {
    throw usageError('INVALID_CONTRACT', `--contract: "${options.contract}" is not a run flavour.`, `Use one of: ${JOB_FLAVOURS.join(', ')}.`);
  }
  const flavour = chooseFlavour(options.contract, file.jobSpec !== undefined, inputs.length > 0);
  if (inputs.length === 0 && flavour.name === 'batch-files') {
    throw usageError('MISSING_INPUT', 'input: no input files given (the batch file contract needs them).', 'Pass --input <path|dir|glob|gs://...> (repeatable) or set inputConfig.gcsSource.uris in the spec, or run it as a CustomJob (--contract custom-job), which needs no inputs.');
  }
  if (options.expectOutput && flavour.name !== 'custom-job') {
    warnings.push('--expect-output: the batch file contract always requires outputs; the flag changes nothing here.');
  }

  const specOutput = file.outputConfig?.gcsDestination?.outputUriPrefix ?? file.jobSpec?.baseOutputDirectory?.outputUriPrefix;
  const output: LocationRef | undefined = options.output
    ? { text: options.output, baseDir: dirs.cwd, field: '--output' }
    : specOutput
      ? { text: specOutput, baseDir: dirs.specDir, field: file.outputConfig ? 'outputConfig.gcsDestination.outputUriPrefix' : 'jobSpec.baseOutputDirectory.outputUriPrefix' }
      : undefined;
  if (!output && flavour.name === 'batch-files') {
    throw usageError('MISSING_OUTPUT', 'output: no output location given.', 'Pass --output <dir> or set outputConfig.gcsDestination.outputUriPrefix in the spec.');
  }

  const machineSpec = file.dedicatedResources?.machineSpec ?? pool?.machineSpec;
  const machineField = options.machineType ? '--machine-type' : machineSpec ? 'dedicatedResources.machineSpec.machineType' : 'machineType';
  const machine = getMachineType(options.machineType ?? machineSpec?.machineType ?? DEFAULT_MACHINE_TYPE, machineField);
  const acceleratorType = machineSpec?.acceleratorType ?? machine.accelerator?.type;
  const acceleratorCount = machineSpec?.acceleratorCount ?? machine.accelerator?.count ?? (acceleratorType ? 1 : 0);
  let accelerator: RunJobSpec['accelerator'];
  if (acceleratorType && acceleratorCount > 0) {
    if (options.noGpu) warnings.push(`${acceleratorCount} x ${acceleratorType} requested; running CPU-only (--no-gpu).`);
    else accelerator = { type: acceleratorType, count: acceleratorCount };
  }

  const env = mergeEnv(containerSpec.env ?? [], options.env, specField);
  const secrets: string[] = [];
  for (const [name, value] of secretPairs(options.secretEnv)) {
    checkEnvName(name, `--secret-env ${name}`);
    const existing = env.findIndex((e) => e.name === name);
    if (existing >= 0) env.splice(existing, 1);
    env.push({ name, value });
    if (value) secrets.push(value);
  }
  const maxLogBytes = options.maxLogBytes ?? DEFAULT_MAX_LOG_BYTES;
  if (!Number.isSafeInteger(maxLogBytes) || maxLogBytes < 1024) {
    throw usageError('INVALID_SIZE', `--max-log-size: ${maxLogBytes} is not a size of at least 1 KiB.`, 'Give a size such as 100MB.');
  }
  const maxRestarts = options.maxRestarts ?? DEFAULT_MAX_RESTARTS;
  if (!Number.isInteger(maxRestarts) || maxRestarts < 0 || maxRestarts > 10) {
    throw usageError('INVALID_NUMBER', `--max-restarts: ${maxRestarts} is not a whole number from 0 to 10.`, 'Give --max-restarts 0 to 10.');
  }

  const timeoutText = options.timeout ?? file.jobSpec?.scheduling?.timeout ?? file.scheduling?.timeout ?? DEFAULT_TIMEOUT;
  const timeoutMs =
    typeof options.timeout === 'number' ? options.timeout : parseDurationMs(timeoutText, options.timeout !== undefined ? '--timeout' : 'scheduling.timeout');
  const stopGraceMs =
    typeof options.stopGrace === 'number' ? options.stopGrace : parseDurationMs(options.stopGrace ?? DEFAULT_STOP_GRACE, '--stop-grace');

  const pullPolicy = options.pull ?? 'missing';
  if (!(PULL_POLICIES as readonly string[]).includes(pullPolicy)) {
    throw usageError('INVALID_PULL_POLICY', `--pull: "${pullPolicy}" is not a pull policy.`, `Use one of: ${PULL_POLICIES.join(', ')}.`);
  }

  const maxOutputFileBytes = options.maxOutputFileBytes ?? DEFAULT_MAX_OUTPUT_FILE_BYTES;
  if (!Number.isSafeInteger(maxOutputFileBytes) || maxOutputFileBytes <= 0) {
    throw usageError('INVALID_SIZE', `--max-output-file-size: ${maxOutputFileBytes} is not a positive size.`, 'Give a size in bytes, or with a unit such as 500MB or 4GiB.');
  }

  const skippedPools = notRun.length;
  const extraBuckets = options.gcsBuckets ?? [];
  for (const [i, bucket] of extraBuckets.entries()) {
    if (!/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/.test(bucket)) {
      throw usageError('INVALID_GCS_URI', `--gcs-bucket[${i}]: "${bucket}" is not a bucket name.`, 'Give a bucket name (lowercase letters, digits, dots, dashes, underscores), without gs://.');
    }
  }
  const spec: RunJobSpec = {
    flavour,
    expectOutput: options.expectOutput === true,
    extraBuckets,
    gcsStage: options.gcsStage ?? 'buckets',
    skippedPools,
    displayName: options.displayName ?? file.displayName ?? defaultDisplayName(imageUri),
    imageUri,
    env,
    inputs,
    output: output ?? { text: DEFAULT_RUNS_DIR, baseDir: dirs.cwd, field: '--output' },
    ...(output ? {} : { outputDefaulted: true }),
    machine,
    timeoutMs,
    stopGraceMs,
    pullPolicy,
    gcsRoot: path.resolve(dirs.cwd, options.gcsRoot ?? 'gcs'),
    maxOutputFileBytes,
    secrets,
    maxLogBytes,
    maxRestarts,
    network: options.network ?? 'bridge',
    warnings,
    memoryReserve: parseMemoryReserve(options.memoryReserve ?? DEFAULT_MEMORY_RESERVE),
    disk: resolveDisk(options, pool?.diskSpec?.bootDiskSizeGb, warnings),
  };
  if (!['buckets', 'inputs'].includes(spec.gcsStage)) {
    throw usageError('INVALID_GCS_STAGE', `--gcs-stage: "${spec.gcsStage}" is not buckets or inputs.`, 'Use --gcs-stage buckets (default) or --gcs-stage inputs.');
  }
  if (containerSpec.sharedMemorySizeMb !== undefined) spec.shmSizeBytes = containerSpec.sharedMemorySizeMb * 1024 ** 2;
  if (!['bridge', 'none'].includes(spec.network)) {
    throw usageError('INVALID_NETWORK', `--network: "${spec.network}" is not bridge or none.`, 'Use --network bridge (default) or --network none.');
  }
  if (accelerator) spec.accelerator = accelerator;
  const restartCodes = options.restartExitCodes === 'any' ? undefined : options.restartExitCodes === 'vertex' || options.restartExitCodes === undefined ? VERTEX_RESTARTED_EXIT_CODES : options.restartExitCodes;
  if (restartCodes) spec.restartExitCodes = restartCodes;
  if (flavour.name === 'custom-job' && output) spec.baseOutputDirectory = output.text;
  const command = options.command ?? containerSpec.command;
  const args = options.args ?? containerSpec.args;
  if (command) spec.command = command;
  if (args) spec.args = args;
  const modelDir = options.modelDir ?? file.unmanagedContainerModel?.artifactUri;
  if (modelDir) spec.modelDir = { text: modelDir, baseDir: options.modelDir ? dirs.cwd : dirs.specDir, field: options.modelDir ? '--model-dir' : 'unmanagedContainerModel.artifactUri' };
  return spec;
}

/** Which flavour applies, and why: the flag, then the spec's shape, then whether inputs were given. */
export function chooseFlavour(flag: JobFlavour | undefined, hasJobSpec: boolean, hasInputs: boolean): RunJobSpec['flavour'] {
  if (flag) return { name: flag, reason: `--contract ${flag}` };
  if (hasJobSpec) return { name: 'custom-job', reason: 'the spec is a CustomJob (jobSpec.workerPoolSpecs)' };
  if (hasInputs) return { name: 'batch-files', reason: 'inputs were given without a CustomJob spec: the batch file contract (AIP_BATCH_INPUT_URIS / AIP_BATCH_OUTPUT_DIR)' };
  return { name: 'custom-job', reason: 'no inputs and no spec shape: a CustomJob' };
}

function resolveDisk(options: RunJobOptions, bootDiskSizeGb: number | undefined, warnings: string[]): RunJobSpec['disk'] {
  if (options.diskSize !== undefined) {
    const sizeBytes = typeof options.diskSize === 'number' ? options.diskSize : parseSizeBytes(options.diskSize, '--disk-size');
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 1024 ** 2) throw usageError('INVALID_SIZE', `--disk-size: ${sizeBytes} is not a size of at least 1 MiB.`, 'Give a size such as 50MiB or 10GiB.');
    return { sizeBytes, source: '--disk-size' };
  }
  if (bootDiskSizeGb === undefined) return { sizeBytes: DEFAULT_BOOT_DISK_SIZE_GB * GiB, source: 'default' };
  if (bootDiskSizeGb < DEFAULT_BOOT_DISK_SIZE_GB) {
    warnings.push(
      `jobSpec.workerPoolSpecs[0].diskSpec.bootDiskSizeGb: ${bootDiskSizeGb} GB is below the ${DEFAULT_BOOT_DISK_SIZE_GB} GB default. Vertex publishes no minimum (UNCONFIRMED); Compute Engine refuses a boot disk smaller than its OS image, and the image and the OS take part of the disk.`,
    );
  }
  return { sizeBytes: bootDiskSizeGb * GiB, source: 'diskSpec.bootDiskSizeGb' };
}

function defaultDisplayName(imageUri: string): string {
  const withoutDigest = imageUri.split('@')[0]!;
  const lastSegment = withoutDigest.split('/').pop()!;
  return `vbe-${lastSegment.replace(/:/g, '-')}`.slice(0, 128);
}

const envName = /^[A-Za-z_][A-Za-z0-9_]*$/;

function secretPairs(secretEnv: RunJobOptions['secretEnv']): Array<[string, string]> {
  if (!secretEnv) return [];
  if (!Array.isArray(secretEnv)) return Object.entries(secretEnv);
  return secretEnv.map((item) => {
    const eq = item.indexOf('=');
    if (eq > 0) return [item.slice(0, eq), item.slice(eq + 1)];
    const fromEnv = process.env[item];
    if (fromEnv === undefined) {
      throw usageError('SECRET_NOT_SET', `--secret-env ${item}: no value given and ${item} is not set in this environment.`, `Export ${item} before running vbe, or write --secret-env ${item}=VALUE.`);
    }
    return [item, fromEnv];
  });
}

function mergeEnv(specEnv: ReadonlyArray<{ name: string; value: string }>, flags: RunJobOptions['env'], specField: string): EnvVar[] {
  const merged: EnvVar[] = specEnv.map((e, i) => {
    checkEnvName(e.name, `${specField}.env[${i}].name`);
    return { name: e.name, value: e.value };
  });
  const fromFlags: Array<[string, string, string]> = [];
  if (Array.isArray(flags)) {
    flags.forEach((pair, i) => {
      const eq = pair.indexOf('=');
      if (eq <= 0) {
        throw usageError('INVALID_ENV', `--env[${i}]: "${pair}" is not NAME=VALUE.`, 'Write each variable as --env NAME=VALUE.');
      }
      fromFlags.push([pair.slice(0, eq), pair.slice(eq + 1), `--env ${pair.slice(0, eq)}`]);
    });
  } else if (flags) {
    for (const [name, value] of Object.entries(flags)) fromFlags.push([name, value, `env.${name}`]);
  }
  for (const [name, value, field] of fromFlags) {
    checkEnvName(name, field);
    const existing = merged.findIndex((e) => e.name === name);
    if (existing >= 0) merged[existing] = { name, value };
    else merged.push({ name, value });
  }
  return merged;
}

export function checkEnvName(name: string, field: string): void {
  if (!envName.test(name)) {
    throw usageError('INVALID_ENV', `${field}: "${name}" is not a valid environment variable name.`, 'Use letters, digits and underscores, not starting with a digit.');
  }
  if (name.startsWith('AIP_')) {
    throw usageError(
      'RESERVED_ENV',
      `${field}: "${name}" starts with AIP_, which Vertex AI reserves for itself; Vertex rejects jobs that set it.`,
      'Rename the variable (Vertex sets the AIP_* variables itself, and so does vbe).',
    );
  }
}
