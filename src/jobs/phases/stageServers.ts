import type { CreatedContainer, ImageDetails } from '../../runtime/containerEngine.js';
import { GCS_MOUNT } from '../../spec/gcsUri.js';
import { DATA_MOUNT } from '../../staging/containerLayout.js';
import { stageInputs } from '../../staging/stageInputs.js';
import { formatBytes } from '../../verdict/diagnoseRunJob.js';
import type { JobPipeline } from '../jobPipeline.js';
import type { JobResources } from '../jobResources.js';
import { type AppliedLimits, cpusetFor } from '../machineLimits.js';
import type { ContainerCommand } from './containerCommand.js';
import { replicaContainer } from './replicaContainer.js';
import type { BatchPlan } from './validateBatchPredict.js';

/** The stage phase's output: one created (not yet started) container per replica, in replica order. */
export interface StagedServers {
  containers: CreatedContainer[];
}

export interface StageServersInput {
  plan: BatchPlan;
  image: ImageDetails;
  limits: AppliedLimits;
  hostCpus: number;
  gpus: number | undefined;
  command: ContainerCommand;
}

/**
 * The stage phase of `vbe batch-predict`: the volumes (/vbe, and /gcs when the model artifact is
 * in a bucket), one container per replica with the port published on 127.0.0.1 only, and the
 * model artifact staged into replica 0.
 */
export async function stageServers(input: StageServersInput, resources: JobResources, job: Pick<JobPipeline, 'jobId' | 'progress' | 'transfer'>): Promise<StagedServers> {
  const { plan, image, limits, hostCpus, gpus, command } = input;
  const { spec, artifact } = plan;
  const base = spec.base;
  // The volumes at once, then every replica's container at once.
  const [data, gcs] = await Promise.all([resources.volume(`vbe-${job.jobId}-data`), ...(artifact?.usesGcs ? [resources.volume(`vbe-${job.jobId}-gcs`)] : [])]);
  const mounts = [{ volume: data!, target: DATA_MOUNT }, ...(gcs ? [{ volume: gcs, target: GCS_MOUNT }] : [])];
  const containers: CreatedContainer[] = await Promise.all(
    Array.from({ length: spec.replicaCount }, (_, i) =>
      resources.container(
        replicaContainer({ name: `vbe-${job.jobId}-replica-${i}`, spec: base, image, command, limits, mounts, gpus, cpusetCpus: cpusetFor(limits, hostCpus, i), publishPort: spec.port }),
      ),
    ),
  );
  if (artifact) {
    job.progress(`staging the model artifact: ${artifact.fileCount} file(s), ${formatBytes(artifact.totalBytes)}`);
    await stageInputs(containers[0]!, artifact.groups, [], job.transfer);
  }
  return { containers };
}
