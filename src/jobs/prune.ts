import os from 'node:os';
import { type ContainerEngine, LABELS } from '../runtime/containerEngine.js';

export interface PruneOptions {
  /** Remove resources of vbe processes that are still running too. */
  all?: boolean;
  engine: ContainerEngine;
}

export interface PruneResult {
  removed: { containers: string[]; volumes: string[]; networks: string[] };
  skipped: { containers: string[]; volumes: string[]; networks: string[] };
}

/**
 * Removes what killed runs left behind: every container, volume and network with our labels,
 * except those of a vbe process on this host that is still running (unless `all`).
 */
export async function pruneResources(options: PruneOptions): Promise<PruneResult> {
  const { engine } = options;
  const found = await engine.listLabelled();
  const live = (labels: Record<string, string>) => !options.all && belongsToLiveProcess(labels);
  const result: PruneResult = { removed: { containers: [], volumes: [], networks: [] }, skipped: { containers: [], volumes: [], networks: [] } };
  for (const c of found.containers) {
    if (live(c.labels)) result.skipped.containers.push(c.name);
    else {
      await engine.removeContainer(c.id);
      result.removed.containers.push(c.name);
    }
  }
  for (const v of found.volumes) {
    if (live(v.labels)) result.skipped.volumes.push(v.name);
    else {
      await engine.removeVolume(v.name);
      result.removed.volumes.push(v.name);
    }
  }
  for (const n of found.networks) {
    if (live(n.labels)) result.skipped.networks.push(n.name);
    else {
      await engine.removeNetwork(n.id);
      result.removed.networks.push(n.name);
    }
  }
  return result;
}

function belongsToLiveProcess(labels: Record<string, string>): boolean {
  if (labels[LABELS.host] !== os.hostname()) return false;
  const pid = Number(labels[LABELS.pid]);
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
