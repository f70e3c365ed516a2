import path from 'node:path';
import { usageError } from '../errors.js';
import { loadSpecFile } from './loadSpecFile.js';
import { parseDurationMs } from './parseDuration.js';
import { mergeRunJobSpec, type RunJobOptions, type RunJobSpec } from './runJobSpec.js';
import { INSTANCES_FORMATS, type InstancesFormat } from './instancesFormats.js';
import type { BatchPredictionJobFile, InstanceConfig, ProbeSpec } from './vertexSchemas.js';

export type OutputNaming = 'results' | 'predictions';

/** What a caller asks of `vbe batch-predict`; flags override the BatchPredictionJob file. */
export interface BatchPredictOptions extends Omit<RunJobOptions, 'modelDir' | 'timeout' | 'maxOutputFileBytes' | 'maxRestarts' | 'restartExitCodes' | 'network'> {
  instancesFormat?: string;
  batchSize?: number;
  replicaCount?: number;
  /** A JSON value, or JSON text (as from the CLI). */
  modelParameters?: unknown;
  keyField?: string;
  includedFields?: string[];
  excludedFields?: string[];
  instanceType?: 'object' | 'array';
  artifactUri?: string;
  predictRoute?: string;
  healthRoute?: string;
  port?: number;
  startupTimeout?: string | number;
  requestTimeout?: string | number;
  outputNaming?: OutputNaming;
  /** Fail the job when more than this fraction of instances failed (0..1). */
  maxFailedRatio?: number;
  /** Requests in flight per replica. */
  maxInFlight?: number;
  /** Retries of a failed request (Vertex retries 3 times). */
  retries?: number;
  /**
   * The display name of the job's Model (a `model` resource, e.g. from a replayed job): the
   * prediction directory is named for it, as Vertex names it for the model; else the job's.
   */
  modelDisplayName?: string;
}

export interface BatchPredictSpec {
  base: RunJobSpec;
  instancesFormat: Exclude<InstancesFormat, 'bigquery'>;
  instanceConfig: InstanceConfig;
  batchSize: number;
  replicaCount: number;
  /** Present only when the job sets modelParameters. */
  modelParameters?: { value: unknown };
  port: number;
  predictRoute?: string;
  healthRoute?: string;
  startupTimeoutMs: number;
  requestTimeoutMs: number;
  outputNaming: OutputNaming;
  maxFailedRatio?: number;
  maxInFlight: number;
  retries: number;
  /** Only jsonl is written (other formats are refused up front). */
  predictionsFormat: 'jsonl';
  modelDisplayName?: string;
  /** containerSpec.startupProbe / healthProbe, as given (defaults applied in src/jobs/probes.ts). */
  startupProbe?: ProbeSpec;
  healthProbe?: ProbeSpec;
}

export const DEFAULT_BATCH_SIZE = 64;
/** Model loading "times out after approximately 40 minutes" on Vertex [batch]. */
export const DEFAULT_STARTUP_TIMEOUT = '40m';
/** The front end's deadline for one request: 10 minutes (Google's troubleshooting page, batch "Exceeded retries"). */
export const DEFAULT_REQUEST_TIMEOUT = '600s';

export async function resolveBatchPredictSpec(options: BatchPredictOptions): Promise<BatchPredictSpec> {
  const cwd = options.cwd ?? process.cwd();
  let file: BatchPredictionJobFile = {};
  let specDir = cwd;
  if (options.spec) {
    const specPath = path.resolve(cwd, options.spec);
    const { parseWithSchema, batchPredictionJobSchema } = await import('./vertexSchemas.js');
    file = parseWithSchema(batchPredictionJobSchema, await loadSpecFile(specPath), `--spec ${options.spec}`);
    specDir = path.dirname(specPath);
  }
  return mergeBatchPredictSpec(options, file, { cwd, specDir });
}

export function mergeBatchPredictSpec(options: BatchPredictOptions, file: BatchPredictionJobFile, dirs: { cwd: string; specDir: string }): BatchPredictSpec {
  const { artifactUri, modelDisplayName, ...common } = options;
  const outputChecks = checkOutputConfig(file, options.output !== undefined);
  const base = mergeRunJobSpec({ ...common, contract: 'batch-files', ...(artifactUri ? { modelDir: artifactUri } : {}) }, file, dirs);
  if (base.modelDir && artifactUri) base.modelDir.field = '--artifact-uri';

  const formatText = options.instancesFormat ?? file.inputConfig?.instancesFormat;
  const formatField = options.instancesFormat ? '--instances-format' : 'inputConfig.instancesFormat';
  if (!formatText) {
    throw usageError('MISSING_INSTANCES_FORMAT', 'instancesFormat: no input format given.', `Pass --instances-format ${INSTANCES_FORMATS.filter((f) => f !== 'bigquery').join('|')} or set inputConfig.instancesFormat.`);
  }
  if (!(INSTANCES_FORMATS as readonly string[]).includes(formatText)) {
    throw usageError('INVALID_INSTANCES_FORMAT', `${formatField}: "${formatText}" is not an instances format.`, `Use one of: ${INSTANCES_FORMATS.join(', ')}.`);
  }
  if (formatText === 'bigquery') {
    throw usageError('BIGQUERY_NOT_AVAILABLE', `${formatField}: bigquery input is not available locally.`, 'Export the table to JSONL or CSV (bq extract --destination_format NEWLINE_DELIMITED_JSON) and pass those files.');
  }
  const instancesFormat = formatText as BatchPredictSpec['instancesFormat'];

  const instanceConfig: InstanceConfig = { ...(file.instanceConfig ?? {}) };
  if (options.instanceType) instanceConfig.instanceType = options.instanceType;
  if (options.keyField) instanceConfig.keyField = options.keyField;
  if (options.includedFields) instanceConfig.includedFields = options.includedFields;
  if (options.excludedFields) instanceConfig.excludedFields = options.excludedFields;
  if (instanceConfig.instanceType && !['object', 'array'].includes(instanceConfig.instanceType)) {
    throw usageError('INVALID_INSTANCE_TYPE', `instanceType: "${instanceConfig.instanceType}" is not object or array.`, 'Use --instance-type object or --instance-type array.');
  }
  if (instanceConfig.includedFields?.length && instanceConfig.excludedFields?.length) {
    throw usageError('FIELDS_CONFLICT', 'instanceConfig: includedFields and excludedFields cannot both be set.', 'Keep one of --included-fields / --excluded-fields.');
  }
  const usesFields = instanceConfig.keyField || instanceConfig.includedFields?.length || instanceConfig.excludedFields?.length || instanceConfig.instanceType;
  if (usesFields && !['jsonl', 'csv'].includes(instancesFormat)) {
    throw usageError('INSTANCE_CONFIG_NOT_APPLICABLE', `instanceConfig: key, included and excluded fields and instanceType apply to jsonl and csv input, not ${instancesFormat}.`, 'Remove the instanceConfig options for this format.');
  }

  const batchSize = options.batchSize ?? file.manualBatchTuningParameters?.batchSize ?? DEFAULT_BATCH_SIZE;
  checkInteger(batchSize, options.batchSize !== undefined ? '--batch-size' : 'manualBatchTuningParameters.batchSize', 1, 100_000);
  const replicas = chooseReplicaCount(options.replicaCount, file.dedicatedResources);
  const replicaCount = replicas.count;
  checkInteger(replicaCount, replicas.field, 1, 16);
  if (replicas.warning) base.warnings.push(replicas.warning);
  base.warnings.push(...outputChecks.warnings);
  const maxInFlight = options.maxInFlight ?? 2;
  checkInteger(maxInFlight, '--max-in-flight', 1, 64);
  const retries = options.retries ?? 3;
  checkInteger(retries, '--retries', 0, 10);

  const containerSpec = file.containerSpec ?? file.unmanagedContainerModel?.containerSpec ?? {};
  const port = options.port ?? containerSpec.ports?.[0]?.containerPort ?? 8080;
  checkInteger(port, options.port !== undefined ? '--port' : 'containerSpec.ports[0].containerPort', 1, 65535);
  const predictRoute = options.predictRoute ?? containerSpec.predictRoute;
  const healthRoute = options.healthRoute ?? containerSpec.healthRoute;
  for (const [route, field] of [[predictRoute, '--predict-route'], [healthRoute, '--health-route']] as const) {
    if (route !== undefined && !route.startsWith('/')) throw usageError('INVALID_ROUTE', `${field}: "${route}" must start with "/".`, 'Give a path such as /predict.');
    if (route !== undefined && !/^[\x21-\x7e]+$/.test(route)) {
      throw usageError('INVALID_ROUTE', `${field}: "${route}" has a space, a control or a non-ASCII character, which cannot go in an HTTP request line.`, 'Percent-encode it (a space is %20), as the route would be sent on Vertex.');
    }
  }

  const spec: BatchPredictSpec = {
    base,
    instancesFormat,
    instanceConfig,
    batchSize,
    replicaCount,
    port,
    startupTimeoutMs: duration(options.startupTimeout, DEFAULT_STARTUP_TIMEOUT, '--startup-timeout'),
    requestTimeoutMs: duration(options.requestTimeout, DEFAULT_REQUEST_TIMEOUT, '--request-timeout'),
    outputNaming: options.outputNaming ?? 'results',
    maxInFlight,
    retries,
    predictionsFormat: 'jsonl',
  };
  if (modelDisplayName !== undefined) {
    if (!modelDisplayName.trim()) throw usageError('INVALID_MODEL_DISPLAY_NAME', 'modelDisplayName: an empty name.', 'Give the Model\'s display name, or leave it out to name the output for the job.');
    spec.modelDisplayName = modelDisplayName;
  }
  if (!['results', 'predictions'].includes(spec.outputNaming)) {
    throw usageError('INVALID_OUTPUT_NAMING', `--output-naming: "${spec.outputNaming}" is not results or predictions.`, 'Use results (prediction.results-00000-of-00001) or predictions (predictions_00001.jsonl).');
  }
  if (predictRoute) spec.predictRoute = predictRoute;
  if (healthRoute) spec.healthRoute = healthRoute;
  const specField = file.containerSpec ? 'containerSpec' : 'unmanagedContainerModel.containerSpec';
  if (containerSpec.startupProbe) spec.startupProbe = checkProbe(containerSpec.startupProbe, `${specField}.startupProbe`, port);
  if (containerSpec.healthProbe) spec.healthProbe = checkProbe(containerSpec.healthProbe, `${specField}.healthProbe`, port);
  const parameters = options.modelParameters !== undefined ? parseParameters(options.modelParameters) : file.modelParameters;
  if (parameters !== undefined) spec.modelParameters = { value: parameters };
  if (options.maxFailedRatio !== undefined) {
    if (!(options.maxFailedRatio >= 0 && options.maxFailedRatio <= 1)) {
      throw usageError('INVALID_RATIO', `--max-failed-ratio: ${options.maxFailedRatio} is not between 0 and 1.`, 'Give a fraction such as 0.05.');
    }
    spec.maxFailedRatio = options.maxFailedRatio;
  }
  return spec;
}

/**
 * `dedicatedResources`: startingReplicaCount, else (UNCONFIRMED, the cautious choice) maxReplicaCount:
 * with only a maximum "Vertex AI decides starting number, not greater than max_replica_count", and a
 * job must work with any count it picks, so vbe runs the most replicas (idle replicas and
 * partitioning problems show up), with a warning. `--replica-count` overrides both.
 */
function chooseReplicaCount(flag: number | undefined, resources: BatchPredictionJobFile['dedicatedResources']): { count: number; field: string; warning?: string } {
  if (flag !== undefined) return { count: flag, field: '--replica-count' };
  if (resources?.startingReplicaCount !== undefined) return { count: resources.startingReplicaCount, field: 'dedicatedResources.startingReplicaCount' };
  const max = resources?.maxReplicaCount;
  if (max === undefined || max === 1) return { count: 1, field: 'dedicatedResources.maxReplicaCount' };
  return {
    count: max,
    field: 'dedicatedResources.maxReplicaCount',
    warning: `dedicatedResources sets maxReplicaCount ${max} without startingReplicaCount: Vertex picks a count up to ${max}; vbe runs ${max} (the most), so the job is checked at the largest split. Set startingReplicaCount (or --replica-count) to choose.`,
  };
}

/**
 * outputConfig beyond gcsDestination: BigQuery output cannot be written locally (exit 2), only
 * jsonl predictions are written (another predictionsFormat is refused, exit 2), and explanations
 * are not emulated (a warning).
 */
function checkOutputConfig(file: BatchPredictionJobFile, outputFlag: boolean): { warnings: string[] } {
  const out = file.outputConfig;
  if (out?.bigqueryDestination !== undefined && !outputFlag) {
    throw usageError(
      'BIGQUERY_OUTPUT_NOT_AVAILABLE',
      'outputConfig.bigqueryDestination: BigQuery output is not available locally; vbe writes prediction files.',
      'Give a local or gs:// output with --output (or outputConfig.gcsDestination.outputUriPrefix), and read the jsonl predictions from outputInfo.gcsOutputDirectory.',
    );
  }
  const format = out?.predictionsFormat;
  if (format !== undefined && format !== 'jsonl') {
    throw usageError(
      'PREDICTIONS_FORMAT_NOT_EMULATED',
      `outputConfig.predictionsFormat: "${format}" is not emulated; vbe writes custom-container predictions as jsonl only${format === 'bigquery' ? ' (BigQuery output is not available locally)' : ''}.`,
      'Set outputConfig.predictionsFormat to "jsonl" (or leave it out).',
    );
  }
  const warnings: string[] = [];
  const f = file as { generateExplanation?: unknown; explanationSpec?: unknown };
  if (f.generateExplanation === true || f.explanationSpec !== undefined) {
    warnings.push('generateExplanation / explanationSpec: explanations are not emulated; the output lines carry predictions only (no "explanation").');
  }
  return { warnings };
}

/** One action, and one vbe can run: exec (inside the container) or httpGet on the served port. */
function checkProbe(probe: ProbeSpec, field: string, port: number): ProbeSpec {
  const actions = (['exec', 'httpGet', 'grpc', 'tcpSocket'] as const).filter((a) => probe[a] !== undefined);
  if (actions.length !== 1) {
    throw usageError('INVALID_PROBE', `${field}: ${actions.length ? `sets ${actions.join(' and ')}` : 'sets no action'}; a probe has exactly one of exec, httpGet, grpc, tcpSocket.`, 'Keep one action, e.g. {"exec": {"command": ["cat", "/tmp/ready"]}}.');
  }
  if (probe.grpc || probe.tcpSocket) {
    throw usageError('PROBE_NOT_SUPPORTED', `${field}: ${actions[0]} probes are not supported by vbe.`, 'Use an exec probe (runs inside the container) or httpGet on the served port.');
  }
  const http = probe.httpGet;
  if (http?.port !== undefined && http.port !== port) {
    throw usageError('PROBE_NOT_SUPPORTED', `${field}.httpGet.port: ${http.port} is not the served port ${port}; vbe publishes only that port.`, `Probe port ${port}, or use an exec probe (e.g. ["curl", "-f", "http://localhost:${http.port}/..."]).`);
  }
  if (http?.scheme !== undefined && http.scheme.toUpperCase() !== 'HTTP') {
    throw usageError('PROBE_NOT_SUPPORTED', `${field}.httpGet.scheme: "${http.scheme}" is not supported by vbe (HTTP only).`, 'Probe over HTTP, or use an exec probe.');
  }
  if (http?.path !== undefined && !/^\/[\x21-\x7e]*$/.test(http.path)) {
    throw usageError('INVALID_PROBE', `${field}.httpGet.path: "${http.path}" must start with "/" and have no spaces or control characters.`, 'Give a path such as /ready.');
  }
  return probe;
}

function parseParameters(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch (error) {
    throw usageError('INVALID_MODEL_PARAMETERS', `--model-parameters: not valid JSON (${(error as Error).message}).`, `Pass a JSON value, e.g. --model-parameters '{"threshold": 0.5}'.`);
  }
}

function checkInteger(value: number, field: string, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw usageError('INVALID_NUMBER', `${field}: ${value} is not a whole number from ${min} to ${max}.`, `Give ${field} a value from ${min} to ${max}.`);
  }
}

function duration(value: string | number | undefined, fallback: string, field: string): number {
  if (typeof value === 'number') return value;
  return parseDurationMs(value ?? fallback, field);
}
