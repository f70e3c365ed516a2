/**
 * The CPUs a replica's container may run on: the machine type's vCPUs, capped at the host's,
 * as a cpuset (so that `nproc` and sched_getaffinity see the machine's count). Replicas of one job
 * get neighbouring sets, wrapping around the host's CPUs. Pure: CPUs are numbered 0..hostCpus-1.
 */
export interface CpuSet {
  /** How many CPUs the container gets. */
  cpus: number;
  /** Engine cpuset syntax, e.g. "0-3" or "14-15,0-1". */
  cpusetCpus: string;
}

export function cpuSetFor(vcpus: number, hostCpus: number, replicaIndex = 0): CpuSet {
  const host = Math.max(1, Math.floor(hostCpus));
  const cpus = Math.max(1, Math.min(Math.floor(vcpus), host));
  const start = (replicaIndex * cpus) % host;
  const ids = Array.from({ length: cpus }, (_, i) => (start + i) % host);
  return { cpus, cpusetCpus: formatCpuList(ids) };
}

/** "0-3", "14-15,0-1": runs of consecutive ids, in the given order. */
export function formatCpuList(ids: readonly number[]): string {
  const parts: string[] = [];
  let i = 0;
  while (i < ids.length) {
    let j = i;
    while (j + 1 < ids.length && ids[j + 1] === ids[j]! + 1) j++;
    parts.push(i === j ? `${ids[i]}` : `${ids[i]}-${ids[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/**
 * What programs that size worker pools by the CPU count will see, here and on Vertex; a warning
 * when they differ. Measured on Docker 20.10 / cgroup v1 (Debian bookworm, glibc 2.36, Python 3.11):
 * with a cpuset, `nproc` and `len(os.sched_getaffinity(0))` follow it, while `os.cpu_count()` and
 * `multiprocessing.cpu_count()` read the host's online CPUs (/sys/devices/system/cpu/online) and
 * Docker cannot change them. On Vertex both see the machine's vCPUs.
 */
export function cpuCountWarning(machine: { name: string; vcpus: number }, hostCpus: number, cpus: number): string | undefined {
  if (hostCpus === machine.vcpus) return undefined;
  const onVertex = `On Vertex, ${machine.name} shows ${machine.vcpus} CPUs to nproc, os.cpu_count() and multiprocessing.cpu_count()`;
  const here = `here nproc (the cpuset) sees ${cpus} and os.cpu_count() / multiprocessing.cpu_count() see this host's ${hostCpus}`;
  return `${onVertex}; ${here}: worker counts derived from the CPU count (Vertex's CprModelServer, gunicorn workers, DataLoader num_workers) will differ on Vertex, and so will the memory they take.`;
}
