import path from 'node:path';
import { RECORD_DIR_NAME } from '../../report/recordDir.js';
import { type BatchPredictOptions, type BatchPredictSpec, resolveBatchPredictSpec } from '../../spec/batchPredictSpec.js';
import { predictionDirectoryName, predictionFileNames, type ShardFiles } from '../../staging/predictionOutputs.js';
import { type ResolvedInputs, type ResolvedModelDir, type ResolvedOutput, resolveInputs, resolveModelDir, resolveOutput } from '../../staging/resolveLocations.js';
import { newJobId } from '../jobId.js';
import { idleReplicaWarning, type Partition, partitionInputs } from '../partitionInputs.js';

/** Where the model servers are reached, and the ids Vertex gives the endpoint and deployed model. */
export interface ServerRoutes {
  endpointId: string;
  deployedModelId: string;
  health: string;
  predict: string;
}

/** Everything `vbe batch-predict` needs from the user's input, checked before the engine is touched. */
export interface BatchPlan {
  spec: BatchPredictSpec;
  inputs: ResolvedInputs;
  /** The model artifact (artifactUri / --model-dir), staged into replica 0. */
  artifact?: ResolvedModelDir;
  output: ResolvedOutput;
  /** `prediction-<name>-<time>`: the job's directory under the output. */
  dirName: string;
  predictionDir: string;
  /** `<predictionDir>/.vbe`: the job record, the logs, the failed instances. */
  recordDir: string;
  /** The output files of each replica (one shard each). */
  shards: ShardFiles[];
  /** How the input files are divided among the replicas. */
  partition: Partition;
  /** Replicas left without input, when the format is split by file. */
  idleWarning?: string;
  routes: ServerRoutes;
}

/** The validate phase of `vbe batch-predict`: bad input is a usage error here, and loses nothing. */
export async function validateBatchPredict(options: BatchPredictOptions, createTime: Date): Promise<BatchPlan> {
  const spec = await resolveBatchPredictSpec(options);
  const base = spec.base;
  const inputs = await resolveInputs(base.inputs, base.gcsRoot);
  const artifact = base.modelDir ? await resolveModelDir(base.modelDir, base.gcsRoot) : undefined;
  const output = await resolveOutput(base.output, base.gcsRoot);
  // Named for the Model's display name when the job has a Model, else the job's (UNCONFIRMED for unmanaged containers).
  const dirName = predictionDirectoryName(spec.modelDisplayName ?? base.displayName, createTime);
  const predictionDir = path.join(output.hostDir, dirName);
  const shards = Array.from({ length: spec.replicaCount }, (_, i) => predictionFileNames(spec.outputNaming, i, spec.replicaCount));
  const partition = partitionInputs(spec.instancesFormat, inputs.files.length, spec.replicaCount);
  const idleWarning = idleReplicaWarning(spec.instancesFormat, inputs.files.map((f) => f.hostPath), spec.replicaCount, partition);
  return {
    spec,
    inputs,
    ...(artifact ? { artifact } : {}),
    output,
    dirName,
    predictionDir,
    recordDir: path.join(predictionDir, RECORD_DIR_NAME),
    shards,
    partition,
    ...(idleWarning ? { idleWarning } : {}),
    routes: serverRoutes(spec),
  };
}

/** The routes Vertex gives a deployed model, unless the containerSpec names its own. */
function serverRoutes(spec: BatchPredictSpec): ServerRoutes {
  const endpointId = newJobId();
  const deployedModelId = newJobId();
  const health = spec.healthRoute ?? `/v1/endpoints/${endpointId}/deployedModels/${deployedModelId}`;
  return { endpointId, deployedModelId, health, predict: spec.predictRoute ?? `${health}:predict` };
}
