import type { CreatedContainer, ImageDetails } from '../../runtime/containerEngine.js';
import { GCS_MOUNT } from '../../spec/gcsUri.js';
import { DATA_MOUNT } from '../../staging/containerLayout.js';
import { stageInputs } from '../../staging/stageInputs.js';
import { formatBytes } from '../../verdict/diagnoseRunJob.js';
import { PRIMARY_REPLICA } from '../../verdict/judgeRunJob.js';
import type { JobPipeline } from '../jobPipeline.js';
import type { JobResources } from '../jobResources.js';
import type { AppliedLimits } from '../machineLimits.js';
import type { ContainerCommand } from './containerCommand.js';
import { replicaContainer } from './replicaContainer.js';
import type { RunPlan } from './validateRunJob.js';

/** The stage phase's output: the first replica, created with its inputs in, and how to make the next. */
export interface StagedRun {
  first: CreatedContainer;
  /** A fresh replica for a restart (same volumes: what the job wrote stays, as on Vertex). */
  replica(attempt: number): Promise<CreatedContainer>;
}

export interface StageRunInput {
  plan: RunPlan;
  image: ImageDetails;
  limits: AppliedLimits;
  gpus: number | undefined;
  command: ContainerCommand;
}

/**
 * The stage phase of `vbe run`: the volumes (/vbe, and /gcs when buckets are staged), the first
 * replica's container, and one tar stream with the inputs, the model and the buckets (no bind
 * mounts: a remote engine works the same).
 */
export async function stageRunJob(input: StageRunInput, resources: JobResources, job: Pick<JobPipeline, 'jobId' | 'progress' | 'transfer'>): Promise<StagedRun> {
  const { plan, image, limits, gpus, command } = input;
  const { spec, inputs, model, output, buckets } = plan;
  const volumes = [resources.volume(`vbe-${job.jobId}-data`), ...(buckets.buckets.length > 0 ? [resources.volume(`vbe-${job.jobId}-gcs`)] : [])];
  const [data, gcs] = await Promise.all(volumes);
  const mounts = [{ volume: data!, target: DATA_MOUNT }, ...(gcs ? [{ volume: gcs, target: GCS_MOUNT }] : [])];
  const replica = (attempt: number) =>
    resources.container(
      replicaContainer({ name: `vbe-${job.jobId}-${PRIMARY_REPLICA}${attempt > 0 ? `-attempt-${attempt + 1}` : ''}`, spec, image, command, limits, mounts, gpus, network: spec.network }),
    );
  const first = await replica(0);
  // gs:// inputs and models are part of their staged buckets; local ones are staged under /vbe.
  const groups = [...inputs.groups, ...(model?.groups ?? [])].filter((g) => g.containerDir !== GCS_MOUNT);
  const localFiles = groups.reduce((n, g) => n + g.entries.length, 0);
  const localBytes = groups.reduce((n, g) => n + g.entries.reduce((b, e) => b + e.size, 0), 0);
  job.progress(
    `staging ${localFiles + buckets.fileCount} file(s), ${formatBytes(localBytes + buckets.totalBytes)}${buckets.buckets.length > 0 ? ` (bucket(s) ${buckets.buckets.join(', ')} whole)` : ''}`,
  );
  await stageInputs(first, [...groups, buckets.group], [output.containerDir, ...buckets.writableDirs], job.transfer);
  return { first, replica };
}
