/** One reading of the engine's stats stream, in the emulator's units. */
export interface ContainerStatsSample {
  /** When it was read (epoch ms, this host's clock). */
  atMs: number;
  memoryBytes: number;
  /** CPU used since the previous reading, in cores (1.5 = one and a half CPUs busy); absent on the first. */
  cpuCores?: number;
}

export interface EngineStats {
  memory_stats?: { usage?: number; max_usage?: number; stats?: { inactive_file?: number; total_inactive_file?: number } };
  cpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number; online_cpus?: number };
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number };
}

/** As `docker stats` computes them: memory less inactive file cache; CPU share of the host's time times its CPUs. */
export function statsSample(stats: EngineStats): ContainerStatsSample {
  const m = stats.memory_stats!;
  const inactive = m.stats?.inactive_file ?? m.stats?.total_inactive_file ?? 0;
  const sample: ContainerStatsSample = { atMs: Date.now(), memoryBytes: Math.max(0, (m.usage ?? 0) - inactive) };
  const cpu = stats.cpu_stats;
  const pre = stats.precpu_stats;
  const cpuDelta = (cpu?.cpu_usage?.total_usage ?? 0) - (pre?.cpu_usage?.total_usage ?? 0);
  const systemDelta = (cpu?.system_cpu_usage ?? 0) - (pre?.system_cpu_usage ?? 0);
  if (pre?.system_cpu_usage && systemDelta > 0 && cpuDelta >= 0) sample.cpuCores = (cpuDelta / systemDelta) * (cpu?.online_cpus ?? 1);
  return sample;
}
