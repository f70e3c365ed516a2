import { type MachineType, machineMemoryBytes } from '../spec/machineTypes.js';
import { formatBytes } from '../verdict/diagnoseRunJob.js';

export interface AppliedLimits {
  machineType: string;
  cpus: number;
  nanoCpus: number;
  memoryBytes: number;
  requested: { cpus: number; memoryBytes: number };
  cappedToHost: boolean;
  warnings: string[];
}

/** The machine type's vCPUs and memory as container limits, capped at what the engine's host has. */
export function machineLimits(machine: MachineType, host: { cpus: number; memoryBytes: number }): AppliedLimits {
  const requestedMemory = machineMemoryBytes(machine);
  const cpus = Math.min(machine.vcpus, host.cpus);
  const memoryBytes = Math.min(requestedMemory, host.memoryBytes);
  const warnings: string[] = [];
  if (cpus < machine.vcpus) warnings.push(`${machine.name} has ${machine.vcpus} vCPUs; this Docker host has ${host.cpus}, so the container gets ${cpus}.`);
  if (memoryBytes < requestedMemory) {
    warnings.push(`${machine.name} has ${formatBytes(requestedMemory)} of memory; this Docker host has ${formatBytes(host.memoryBytes)}, so the container gets that.`);
  }
  return {
    machineType: machine.name,
    cpus,
    nanoCpus: Math.round(cpus * 1e9),
    memoryBytes,
    requested: { cpus: machine.vcpus, memoryBytes: requestedMemory },
    cappedToHost: warnings.length > 0,
    warnings,
  };
}

/** The `emulator.limits` section of a job record. */
export function limitsRecord(limits: AppliedLimits) {
  return { machineType: limits.machineType, cpus: limits.cpus, memoryBytes: limits.memoryBytes, requested: limits.requested, cappedToHost: limits.cappedToHost };
}
