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
  /** Restarts of a replica that exits non-zero (Vertex retries some exits). Default 0. */
  maxRestarts?: number;
  /** Which exit codes are restarted: a list, or 'vertex' for 134 and 139 (SIGABRT, SIGSEGV). Default: any non-zero. */
  restartExitCodes?: number[] | 'vertex';
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

export interface RunJobSpec {
  displayName: string;
  imageUri: string;
  command?: string[];
  args?: string[];
  env: EnvVar[];
  inputs: LocationRef[];
  output: LocationRef;
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
export const VERTEX_RESTARTED_EXIT_CODES = [134, 139];

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
  if (file.jobSpec && file.jobSpec.workerPoolSpecs.length > 1) {
    warnings.push('jobSpec.workerPoolSpecs: only the first worker pool (workerpool0) is run; the others are ignored.');
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
  if (inputs.length === 0) {
    throw usageError('MISSING_INPUT', 'input: no input files given.', 'Pass --input <path|dir|glob|gs://...> (repeatable) or set inputConfig.gcsSource.uris in the spec.');
  }

  const specOutput = file.outputConfig?.gcsDestination?.outputUriPrefix ?? file.jobSpec?.baseOutputDirectory?.outputUriPrefix;
  const output: LocationRef | undefined = options.output
    ? { text: options.output, baseDir: dirs.cwd, field: '--output' }
    : specOutput
      ? { text: specOutput, baseDir: dirs.specDir, field: file.outputConfig ? 'outputConfig.gcsDestination.outputUriPrefix' : 'jobSpec.baseOutputDirectory.outputUriPrefix' }
      : undefined;
  if (!output) {
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
  const maxRestarts = options.maxRestarts ?? 0;
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

  const spec: RunJobSpec = {
    displayName: options.displayName ?? file.displayName ?? defaultDisplayName(imageUri),
    imageUri,
    env,
    inputs,
    output,
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
  if (containerSpec.sharedMemorySizeMb !== undefined) spec.shmSizeBytes = containerSpec.sharedMemorySizeMb * 1024 ** 2;
  if (!['bridge', 'none'].includes(spec.network)) {
    throw usageError('INVALID_NETWORK', `--network: "${spec.network}" is not bridge or none.`, 'Use --network bridge (default) or --network none.');
  }
  if (accelerator) spec.accelerator = accelerator;
  const restartCodes = options.restartExitCodes === 'vertex' ? VERTEX_RESTARTED_EXIT_CODES : options.restartExitCodes;
  if (restartCodes) spec.restartExitCodes = restartCodes;
  const command = options.command ?? containerSpec.command;
  const args = options.args ?? containerSpec.args;
  if (command) spec.command = command;
  if (args) spec.args = args;
  const modelDir = options.modelDir ?? file.unmanagedContainerModel?.artifactUri;
  if (modelDir) spec.modelDir = { text: modelDir, baseDir: options.modelDir ? dirs.cwd : dirs.specDir, field: options.modelDir ? '--model-dir' : 'unmanagedContainerModel.artifactUri' };
  return spec;
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

function checkEnvName(name: string, field: string): void {
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
