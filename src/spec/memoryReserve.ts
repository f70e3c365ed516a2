import { usageError } from '../errors.js';
import { GiB, type MachineType, machineMemoryBytes } from './machineTypes.js';
import { parseSizeBytes } from './parseSize.js';

/**
 * The memory Vertex keeps on a replica's machine for itself, as a pure function of the machine
 * type. Vertex publishes no formula; the model takes the larger of two public figures:
 *
 * - GKE's node-allocatable memory reservation (cloud.google.com/kubernetes-engine/docs/concepts/
 *   plan-node-sizes): 255 MiB on machines under 1 GiB, else 25% of the first 4 GiB, 20% of the next
 *   4 GiB, 10% of the next 8 GiB, 6% of the next 112 GiB and 2% above 128 GiB, plus the kubelet's
 *   100 MiB hard-eviction threshold;
 * - Google's training-service page: "On the smallest machine types (such as n1-standard-4), system
 *   agents can take up to 40% of total memory". Which types are "the smallest" is UNCONFIRMED: the
 *   model applies the 40% to every machine type with at most 4 vCPUs (the cautious side).
 */

export type MemoryReservePolicy = { kind: 'vertex' } | { kind: 'none' } | { kind: 'size'; bytes: number } | { kind: 'fraction'; fraction: number };

export type MemoryReserveBasis = 'gke-allocatable' | 'system-agents-40%' | 'none' | 'user';

export interface MemoryReserve {
  /** The machine type's memory (Compute Engine GB, which are GiB). */
  machineMemoryBytes: number;
  /** What Vertex keeps (by the policy). */
  reserveBytes: number;
  /** What the container may use: machine memory minus the reserve (before any cap to the host). */
  limitBytes: number;
  /** The policy as the user wrote it (`vertex`, `none`, a size or a percentage). */
  policy: string;
  basis: MemoryReserveBasis;
}

export const MiB = 1024 ** 2;
export const EVICTION_THRESHOLD_BYTES = 100 * MiB;
/** Share of memory that system agents "can take" on the smallest machine types [train]. */
export const SMALL_MACHINE_AGENT_SHARE = 0.4;
/** Machine types up to this many vCPUs count as "the smallest" (n1-standard-4 is one). UNCONFIRMED. */
export const SMALL_MACHINE_MAX_VCPUS = 4;
export const DEFAULT_MEMORY_RESERVE = 'vertex';

/** GKE's kube-reserved memory for a node of `memoryBytes` (without the eviction threshold). */
export function gkeReservedMemoryBytes(memoryBytes: number): number {
  if (memoryBytes < GiB) return 255 * MiB;
  const tiers: Array<[number, number]> = [
    [4 * GiB, 0.25],
    [4 * GiB, 0.2],
    [8 * GiB, 0.1],
    [112 * GiB, 0.06],
    [Number.POSITIVE_INFINITY, 0.02],
  ];
  let rest = memoryBytes;
  let reserved = 0;
  for (const [size, share] of tiers) {
    const part = Math.min(rest, size);
    reserved += part * share;
    rest -= part;
    if (rest <= 0) break;
  }
  return Math.round(reserved);
}

/** Vertex's reserve by the model above: the larger of GKE's figure and the small-machine 40%. */
export function vertexMemoryReserve(machine: MachineType): { reserveBytes: number; basis: MemoryReserveBasis } {
  const memory = machineMemoryBytes(machine);
  const gke = gkeReservedMemoryBytes(memory) + EVICTION_THRESHOLD_BYTES;
  const agents = machine.vcpus <= SMALL_MACHINE_MAX_VCPUS ? Math.round(memory * SMALL_MACHINE_AGENT_SHARE) : 0;
  return agents > gke ? { reserveBytes: agents, basis: 'system-agents-40%' } : { reserveBytes: gke, basis: 'gke-allocatable' };
}

/** `vertex` | `none` | a size (`3GiB`) | a percentage of the machine's memory (`25%`). */
export function parseMemoryReserve(text: string, field = '--memory-reserve'): MemoryReservePolicy {
  const value = text.trim().toLowerCase();
  if (value === 'vertex') return { kind: 'vertex' };
  if (value === 'none' || value === '0') return { kind: 'none' };
  const percent = /^(\d+(?:\.\d+)?)\s*%$/.exec(value);
  if (percent) {
    const fraction = Number(percent[1]) / 100;
    if (fraction >= 1) throw usageError('INVALID_MEMORY_RESERVE', `${field}: "${text}" would leave the container no memory.`, 'Give a percentage under 100%, a size such as 2GiB, vertex or none.');
    return { kind: 'fraction', fraction };
  }
  try {
    return { kind: 'size', bytes: parseSizeBytes(value, field) };
  } catch {
    throw usageError('INVALID_MEMORY_RESERVE', `${field}: "${text}" is not vertex, none, a size or a percentage.`, 'Use --memory-reserve vertex (default), none, a size such as 2GiB, or a percentage such as 25%.');
  }
}

/** The memory the container gets on `machine` under `policy`. */
export function memoryReserve(machine: MachineType, policy: MemoryReservePolicy = { kind: 'vertex' }): MemoryReserve {
  const machineBytes = machineMemoryBytes(machine);
  let reserveBytes: number;
  let basis: MemoryReserveBasis;
  let text: string;
  switch (policy.kind) {
    case 'vertex':
      ({ reserveBytes, basis } = vertexMemoryReserve(machine));
      text = 'vertex';
      break;
    case 'none':
      reserveBytes = 0;
      basis = 'none';
      text = 'none';
      break;
    case 'size':
      reserveBytes = policy.bytes;
      basis = 'user';
      text = `${policy.bytes}`;
      break;
    case 'fraction':
      reserveBytes = Math.round(machineBytes * policy.fraction);
      basis = 'user';
      text = `${+(policy.fraction * 100).toFixed(4)}%`;
      break;
  }
  if (reserveBytes >= machineBytes) {
    throw usageError('INVALID_MEMORY_RESERVE', `--memory-reserve: ${reserveBytes} bytes is all of ${machine.name}'s memory (${machineBytes} bytes).`, 'Give a smaller reserve, or vertex (default) or none.');
  }
  return { machineMemoryBytes: machineBytes, reserveBytes, limitBytes: machineBytes - reserveBytes, policy: text, basis };
}
