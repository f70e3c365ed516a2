import { usageError } from '../errors.js';

/**
 * Vertex AI machine types (cloud.google.com/vertex-ai/docs/predictions/configure-compute).
 * Memory figures are Compute Engine "GB", which are binary gigabytes (GiB).
 */
export interface MachineType {
  name: string;
  vcpus: number;
  memoryGiB: number;
  accelerator?: { type: string; count: number };
}

const table: MachineType[] = [];
const add = (name: string, vcpus: number, memoryGiB: number, accelerator?: MachineType['accelerator']) =>
  table.push(accelerator ? { name, vcpus, memoryGiB, accelerator } : { name, vcpus, memoryGiB });

for (const n of [2, 4, 8, 16, 32]) add(`n1-standard-${n}`, n, n * 3.75);
for (const n of [2, 4, 8, 16, 32]) add(`n1-highmem-${n}`, n, n * 6.5);
for (const n of [4, 8, 16, 32]) add(`n1-highcpu-${n}`, n, Math.round(n * 0.9 * 10) / 10);
for (const n of [2, 4, 8, 16, 32]) add(`e2-standard-${n}`, n, n * 4);
for (const n of [2, 4, 8, 16]) add(`e2-highmem-${n}`, n, n * 8);
for (const n of [2, 4, 8, 16, 32]) add(`e2-highcpu-${n}`, n, n);
add('a2-highgpu-1g', 12, 85, { type: 'NVIDIA_TESLA_A100', count: 1 });
add('a2-ultragpu-1g', 12, 170, { type: 'NVIDIA_A100_80GB', count: 1 });
add('a3-highgpu-1g', 26, 234, { type: 'NVIDIA_H100_80GB', count: 1 });
const g2: Array<[number, number]> = [[4, 1], [8, 1], [12, 1], [16, 1], [24, 2], [32, 1], [48, 4], [96, 8]];
for (const [n, gpus] of g2) add(`g2-standard-${n}`, n, n * 4, { type: 'NVIDIA_L4', count: gpus });

export const machineTypes: ReadonlyMap<string, MachineType> = new Map(table.map((m) => [m.name, m]));

export const DEFAULT_MACHINE_TYPE = 'n1-standard-4';

/** Looks a machine type up; an unknown one is a spec error that lists the valid names. */
export function getMachineType(name: string, field = 'machineType'): MachineType {
  const found = machineTypes.get(name);
  if (!found) {
    throw usageError(
      'UNKNOWN_MACHINE_TYPE',
      `${field}: unknown machine type "${name}".`,
      `Use one of: ${[...machineTypes.keys()].join(', ')}.`,
    );
  }
  return found;
}

export const GiB = 1024 ** 3;

export function machineMemoryBytes(machine: MachineType): number {
  return Math.round(machine.memoryGiB * GiB);
}
