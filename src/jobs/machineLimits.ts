import type { MachineType } from '../spec/machineTypes.js';
import { cpuCountWarning, cpuSetFor } from '../spec/cpuSet.js';
import { memoryReserve, type MemoryReserveBasis, type MemoryReservePolicy } from '../spec/memoryReserve.js';
import { formatBytes } from '../verdict/diagnoseRunJob.js';

export interface AppliedLimits {
  machineType: string;
  cpus: number;
  nanoCpus: number;
  /** The CPUs of replica 0 (cpuset syntax); `cpusetFor` gives another replica's. */
  cpusetCpus: string;
  /** The container's memory limit: the machine's memory minus Vertex's reserve, capped at the host. */
  memoryBytes: number;
  /** The machine type's whole memory, and what Vertex keeps of it (by --memory-reserve). */
  machineMemoryBytes: number;
  memoryReserveBytes: number;
  memoryReserve: { policy: string; basis: MemoryReserveBasis };
  requested: { cpus: number; memoryBytes: number };
  cappedToHost: boolean;
  warnings: string[];
}

/**
 * The machine type's vCPUs (quota and cpuset) and the memory Vertex leaves a replica (the machine's
 * memory minus what Vertex keeps: src/spec/memoryReserve.ts) as container limits, capped at the host.
 */
export function machineLimits(machine: MachineType, host: { cpus: number; memoryBytes: number }, policy?: MemoryReservePolicy): AppliedLimits {
  const reserve = memoryReserve(machine, policy);
  const { cpus, cpusetCpus } = cpuSetFor(machine.vcpus, host.cpus);
  const memoryBytes = Math.min(reserve.limitBytes, host.memoryBytes);
  const warnings: string[] = [];
  if (cpus < machine.vcpus) warnings.push(`${machine.name} has ${machine.vcpus} vCPUs; this Docker host has ${host.cpus}, so the container gets ${cpus}.`);
  const cpuCount = cpuCountWarning(machine, host.cpus, cpus);
  if (cpuCount) warnings.push(cpuCount);
  if (memoryBytes < reserve.limitBytes) {
    warnings.push(`${machine.name} leaves a replica ${formatBytes(reserve.limitBytes)} of memory; this Docker host has ${formatBytes(host.memoryBytes)}, so the container gets that.`);
  }
  return {
    machineType: machine.name,
    cpus,
    nanoCpus: Math.round(cpus * 1e9),
    cpusetCpus,
    memoryBytes,
    machineMemoryBytes: reserve.machineMemoryBytes,
    memoryReserveBytes: reserve.reserveBytes,
    memoryReserve: { policy: reserve.policy, basis: reserve.basis },
    requested: { cpus: machine.vcpus, memoryBytes: reserve.machineMemoryBytes },
    cappedToHost: cpus < machine.vcpus || memoryBytes < reserve.limitBytes,
    warnings,
  };
}

/** The cpuset of replica `index` under these limits. */
export function cpusetFor(limits: AppliedLimits, hostCpus: number, index: number): string {
  return cpuSetFor(limits.cpus, hostCpus, index).cpusetCpus;
}

/** The `emulator.limits` section of a job record. */
export function limitsRecord(limits: AppliedLimits) {
  return {
    machineType: limits.machineType,
    cpus: limits.cpus,
    cpusetCpus: limits.cpusetCpus,
    memoryBytes: limits.memoryBytes,
    machineMemoryBytes: limits.machineMemoryBytes,
    memoryReserveBytes: limits.memoryReserveBytes,
    memoryReserve: limits.memoryReserve,
    requested: limits.requested,
    cappedToHost: limits.cappedToHost,
  };
}
