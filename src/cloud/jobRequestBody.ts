import type { BatchPredictSpec } from '../spec/batchPredictSpec.js';
import { DEFAULT_TIMEOUT, type RunJobSpec } from '../spec/runJobSpec.js';
import { parseDurationMs } from '../spec/parseDuration.js';

/** Label set on every job vbe creates on Vertex, so they can be found (`--filter labels.submitted-by=vbe`). */
export const SUBMIT_LABELS = { 'submitted-by': 'vbe' } as const;

/** Where each local location ended up in Cloud Storage (gs:// as given, or staged by --stage-to). */
export interface CloudLocations {
  inputs: string[];
  output: string;
  modelDir?: string;
}

export interface RequestBody {
  body: Record<string, unknown>;
  warnings: string[];
}

function env(spec: RunJobSpec, mask: boolean): Array<{ name: string; value: string }> {
  return spec.env.map((e) => ({ name: e.name, value: mask && spec.secrets.includes(e.value) ? '***' : e.value }));
}

function machineSpec(spec: RunJobSpec): Record<string, unknown> {
  return { machineType: spec.machine.name, ...(spec.accelerator ? { acceleratorType: spec.accelerator.type, acceleratorCount: spec.accelerator.count } : {}) };
}

function secretWarning(spec: RunJobSpec): string[] {
  return spec.secrets.length
    ? ['--secret-env values are sent in the job resource: anyone who can describe the job on Vertex can read them (use Secret Manager in the container instead). --dry-run shows them as ***.']
    : [];
}

/**
 * The CustomJob for a `vbe run` job: workerpool0 with the container, machine and env; the output
 * as baseOutputDirectory. `batchEnv` adds AIP_BATCH_INPUT_URIS / AIP_BATCH_OUTPUT_DIR, which
 * Vertex does not set for a CustomJob (whether it accepts AIP_* names there is UNCONFIRMED).
 */
export function customJobBody(spec: RunJobSpec, where: CloudLocations, options: { maskSecrets: boolean; batchEnv: boolean }): RequestBody {
  const warnings = [...secretWarning(spec)];
  const variables = env(spec, options.maskSecrets);
  const mount = (uri: string) => `/gcs/${uri.slice('gs://'.length)}`;
  if (options.batchEnv) {
    variables.unshift({ name: 'AIP_BATCH_INPUT_URIS', value: where.inputs.map(mount).join(',') }, { name: 'AIP_BATCH_OUTPUT_DIR', value: mount(where.output) });
  } else {
    warnings.push(`Vertex sets neither AIP_BATCH_INPUT_URIS nor AIP_BATCH_OUTPUT_DIR for a CustomJob: the container must find its inputs another way (e.g. args naming ${where.inputs.map(mount).slice(0, 2).join(', ')}), or pass --batch-env to set them (UNCONFIRMED whether Vertex accepts AIP_* names there).`);
  }
  const containerSpec: Record<string, unknown> = { imageUri: spec.imageUri };
  if (spec.command) containerSpec.command = spec.command;
  if (spec.args) containerSpec.args = spec.args;
  if (variables.length) containerSpec.env = variables;
  const jobSpec: Record<string, unknown> = {
    workerPoolSpecs: [{ machineSpec: machineSpec(spec), replicaCount: '1', containerSpec }],
    baseOutputDirectory: { outputUriPrefix: where.output },
  };
  if (spec.timeoutMs !== parseDurationMs(DEFAULT_TIMEOUT, 'timeout')) jobSpec.scheduling = { timeout: `${spec.timeoutMs / 1000}s` };
  if (spec.maxRestarts > 0) warnings.push('--max-restarts is local only: Vertex restarts replicas by its own rules.');
  return { body: { displayName: spec.displayName, jobSpec, labels: { ...SUBMIT_LABELS } }, warnings };
}

/** The BatchPredictionJob for a `vbe batch-predict` job, with the container inline (unmanagedContainerModel). */
export function batchPredictionJobBody(spec: BatchPredictSpec, where: CloudLocations, options: { maskSecrets: boolean }): RequestBody {
  const base = spec.base;
  const warnings = [...secretWarning(base)];
  const containerSpec: Record<string, unknown> = { imageUri: base.imageUri };
  if (base.command) containerSpec.command = base.command;
  if (base.args) containerSpec.args = base.args;
  const variables = env(base, options.maskSecrets);
  if (variables.length) containerSpec.env = variables;
  containerSpec.ports = [{ containerPort: spec.port }];
  if (spec.predictRoute) containerSpec.predictRoute = spec.predictRoute;
  if (spec.healthRoute) containerSpec.healthRoute = spec.healthRoute;
  const body: Record<string, unknown> = {
    displayName: base.displayName,
    unmanagedContainerModel: { ...(where.modelDir ? { artifactUri: where.modelDir } : {}), containerSpec },
    inputConfig: { instancesFormat: spec.instancesFormat, gcsSource: { uris: where.inputs } },
  };
  if (Object.keys(spec.instanceConfig).length) body.instanceConfig = spec.instanceConfig;
  if (spec.modelParameters) body.modelParameters = spec.modelParameters.value;
  body.outputConfig = { predictionsFormat: 'jsonl', gcsDestination: { outputUriPrefix: where.output } };
  body.dedicatedResources = { machineSpec: machineSpec(base), startingReplicaCount: spec.replicaCount, maxReplicaCount: spec.replicaCount };
  body.manualBatchTuningParameters = { batchSize: spec.batchSize };
  body.labels = { ...SUBMIT_LABELS };
  if (spec.maxFailedRatio !== undefined) warnings.push('--max-failed-ratio is local only: Vertex decides by itself when failed instances fail the job.');
  return { body, warnings };
}
