import { FailedInstanceSink, type FailedInstancesRecord } from '../../staging/failedInstances.js';
import { type ChartRecorder, replicaLane as lane } from '../chartRecorder.js';
import type { JobPipeline } from '../jobPipeline.js';
import { type DataPlaneOutcome, predictAll } from '../predictDataPlane.js';
import type { StartedServers } from './startServers.js';
import type { BatchPlan } from './validateBatchPredict.js';

/** The predict phase's output: what the data plane observed, and where the failed instances went. */
export interface PredictOutcome extends DataPlaneOutcome {
  failedInstances: FailedInstancesRecord;
}

/**
 * The predict phase of `vbe batch-predict`: every instance read, batched and POSTed to the ready
 * replicas by the data plane (predictDataPlane.ts), predictions written to each replica's shard and
 * failed instances to the sink, which is closed whatever happens.
 */
export async function predictInstances(plan: BatchPlan, started: StartedServers, charts: ChartRecorder, job: Pick<JobPipeline, 'progress' | 'transfer' | 'signal'>): Promise<PredictOutcome> {
  const { spec, inputs, predictionDir, recordDir, shards, partition, routes } = plan;
  job.progress(`predicting: batches of ${spec.batchSize} to ${routes.predict}`);
  const sink = new FailedInstanceSink(predictionDir, recordDir, shards, spec.outputNaming);
  const predictSpans = started.replicas.map((r) => charts.begin(lane(r.index), 'predict'));
  let failedInstances: FailedInstancesRecord | undefined;
  const outcome = await predictAll(spec, inputs.files, started.replicas, {
    predictionDir,
    shards,
    partition,
    sink,
    predictRoute: routes.predict,
    signal: job.signal,
    progress: job.progress,
    transfer: job.transfer,
    charts,
  }).finally(async () => (failedInstances = await sink.close()));
  for (const end of predictSpans) end();
  return { ...outcome, failedInstances: failedInstances! };
}
