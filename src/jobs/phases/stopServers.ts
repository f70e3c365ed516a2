import type { ImageDetails } from '../../runtime/containerEngine.js';
import type { RunJobSpec } from '../../spec/runJobSpec.js';
import { checkDisk, type DiskCheck } from '../diskCheck.js';
import type { Replica } from '../predictDataPlane.js';

/** The stop phase's output: the replicas' disk use and the time they ran. */
export interface StoppedServers {
  /** The disk verdict's input: the replica that wrote the most; undefined when none was measured. */
  disk?: DiskCheck;
  /** The replicas' time from the first start to the stop, added up (resourcesConsumed.replicaHours). */
  replicaMs: number;
}

/**
 * The stop phase of `vbe batch-predict` (runs whatever happened before it): each server's disk use
 * measured before it goes, every server killed, its logs drained, its client and memory watch closed.
 */
export async function stopServers(replicas: readonly Replica[], spec: RunJobSpec, image: ImageDetails | undefined, startedAtMs: number | undefined): Promise<StoppedServers> {
  const replicaMs = startedAtMs === undefined ? 0 : (performance.now() - startedAtMs) * replicas.length;
  let disk: DiskCheck | undefined;
  // What each server wrote to its own disk, measured (all at once) before it goes; the largest counts.
  const writtenBytes = await Promise.all(replicas.map((r) => r.started.writableLayerBytes().catch(() => undefined)));
  for (const [i, r] of replicas.entries()) {
    const written = writtenBytes[i];
    const check = written === undefined || !image ? undefined : checkDisk(spec, image, Boolean(r.storageLimited), written, 0);
    if (check && (!disk || (check.record.usedBytes ?? 0) > (disk.record.usedBytes ?? 0))) disk = check;
  }
  // The outputs are written by vbe, not the server: once the data plane is done, no grace is needed.
  await Promise.all(replicas.map((r) => r.started.kill().catch(() => undefined)));
  await Promise.all(replicas.map((r) => r.logsDone));
  for (const r of replicas) {
    r.client.close();
    r.memory.stop();
  }
  return { ...(disk ? { disk } : {}), replicaMs };
}
