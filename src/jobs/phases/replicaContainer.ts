import type { ContainerCreateSpec, ImageDetails, MountSpec } from '../../runtime/containerEngine.js';
import type { RunJobSpec } from '../../spec/runJobSpec.js';
import { replicaResources } from '../diskCheck.js';
import type { AppliedLimits } from '../machineLimits.js';
import type { ContainerCommand } from './containerCommand.js';

export interface ReplicaContainerInput {
  name: string;
  spec: RunJobSpec;
  image: ImageDetails;
  command: ContainerCommand;
  limits: AppliedLimits;
  mounts: MountSpec[];
  gpus: number | undefined;
  /** The replica's CPUs (default: the machine type's, from `limits`). */
  cpusetCpus?: string;
  network?: 'bridge' | 'none';
  publishPort?: number;
}

/**
 * The container one replica runs in, for `vbe run` and `vbe batch-predict` alike: the image with
 * the command and environment Vertex gives it, the machine type's limits, shared memory and disk,
 * the job's volumes, and its GPUs (pure).
 */
export function replicaContainer(r: ReplicaContainerInput): Omit<ContainerCreateSpec, 'labels'> {
  return {
    name: r.name,
    image: r.spec.imageUri,
    ...(r.command.command ? { entrypoint: r.command.command } : {}),
    ...(r.command.args ? { cmd: r.command.args } : {}),
    env: r.command.environment,
    nanoCpus: r.limits.nanoCpus,
    memoryBytes: r.limits.memoryBytes,
    ...replicaResources(r.spec, r.limits, r.image, r.cpusetCpus ?? r.limits.cpusetCpus),
    mounts: r.mounts,
    ...(r.network ? { network: r.network } : {}),
    ...(r.publishPort !== undefined ? { publishPort: r.publishPort } : {}),
    ...(r.gpus ? { gpus: r.gpus } : {}),
  };
}
