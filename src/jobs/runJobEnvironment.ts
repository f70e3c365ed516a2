import type { EnvVar } from '../spec/expandVertexReferences.js';
import type { RunJobSpec } from '../spec/runJobSpec.js';
import { PRIMARY_REPLICA } from '../verdict/judgeRunJob.js';

/** The port the replicas of a Vertex training cluster are addressed on (CLUSTER_SPEC, TF_CONFIG). */
const CLUSTER_PORT = 2222;

export interface RunEnvironmentInput {
  jobId: string;
  spec: Pick<RunJobSpec, 'flavour' | 'machine' | 'imageUri' | 'baseOutputDirectory'>;
  /** Container paths of the staged inputs (AIP_BATCH_INPUT_URIS). */
  inputPaths: readonly string[];
  /** Where AIP_BATCH_OUTPUT_DIR points inside the container. */
  outputContainerDir: string;
  /** The output as a gs:// URI when it is one. */
  outputGcsUri?: string | undefined;
  /** --model-dir / artifactUri: the gs:// URI or local container path (overrides the baseOutputDirectory one). */
  modelDir?: string | undefined;
}

/**
 * The variables Vertex sets for a run-to-completion replica, before the user's env entries.
 *
 * - Batch file contract: `AIP_BATCH_INPUT_URIS`, `AIP_BATCH_OUTPUT_DIR` (the article's names).
 *   A CustomJob gets them only when inputs were given (Vertex itself sets neither).
 * - CustomJob with a baseOutputDirectory: `AIP_MODEL_DIR` = `<base>/model/`, `AIP_CHECKPOINT_DIR` =
 *   `<base>/checkpoints/`, `AIP_TENSORBOARD_LOG_DIR` = `<base>/logs/` (custom_job.proto), as gs:// URIs
 *   (the container reaches them at /gcs/...), or container paths for a local output directory.
 * - `CLUSTER_SPEC` and `TF_CONFIG` in the shapes python-aiplatform's training_utils and cloud profiler
 *   read: `{"cluster": {"workerpool0": ["host:2222"]}, "environment": "cloud", "task": {"type":
 *   "workerpool0", "index": 0}, "job": "<json>"}` and `{"cluster": {"chief": [...]}, ..., "task":
 *   {"type": "chief", "index": 0}}`. The host names and the `job` string are UNCONFIRMED.
 */
export function vertexRunEnvironment(input: RunEnvironmentInput): EnvVar[] {
  const { jobId, spec } = input;
  const env: EnvVar[] = [];
  if (spec.flavour.name === 'batch-files' || input.inputPaths.length > 0) {
    env.push({ name: 'AIP_BATCH_INPUT_URIS', value: input.inputPaths.join(',') });
    env.push({ name: 'AIP_BATCH_OUTPUT_DIR', value: input.outputContainerDir });
  }
  env.push({ name: 'AIP_MACHINE_TYPE', value: spec.machine.name }, { name: 'CLOUD_ML_JOB_ID', value: jobId });
  const address = `${PRIMARY_REPLICA}:${CLUSTER_PORT}`;
  const job = JSON.stringify({ workerPoolSpecs: [{ machineSpec: { machineType: spec.machine.name }, replicaCount: '1', containerSpec: { imageUri: spec.imageUri } }] });
  env.push({ name: 'CLUSTER_SPEC', value: JSON.stringify({ cluster: { workerpool0: [address] }, environment: 'cloud', task: { type: 'workerpool0', index: 0 }, job }) });
  env.push({ name: 'TF_CONFIG', value: JSON.stringify({ cluster: { chief: [address] }, environment: 'cloud', task: { type: 'chief', index: 0 }, job }) });

  const base = spec.flavour.name === 'custom-job' ? baseDirectory(input) : undefined;
  const modelDir = input.modelDir ?? (base ? `${base}model/` : undefined);
  if (modelDir) env.push({ name: 'AIP_MODEL_DIR', value: modelDir });
  if (base) {
    env.push({ name: 'AIP_CHECKPOINT_DIR', value: `${base}checkpoints/` });
    env.push({ name: 'AIP_TENSORBOARD_LOG_DIR', value: `${base}logs/` });
  }
  return env;
}

/** The base output directory with a trailing slash: the gs:// URI, or the container path of a local one. */
function baseDirectory(input: RunEnvironmentInput): string | undefined {
  if (!input.spec.baseOutputDirectory) return undefined;
  const base = input.outputGcsUri ?? input.outputContainerDir;
  return base.endsWith('/') ? base : `${base}/`;
}
