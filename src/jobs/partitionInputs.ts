import path from 'node:path';
import type { InstancesFormat } from '../spec/instancesFormats.js';

/**
 * How a BatchPredictionJob's input files are divided among replicas, as Vertex does
 * ("Partition data" in get-batch-predictions): jsonl and file-list input is partitioned
 * automatically (here: one shared stream every replica pulls from); a CSV file is never split
 * (each file goes whole to one replica); tf-record input is split by file. Files are dealt out
 * in order, file i to replica i mod N; a replica given no file sits idle.
 */
export type Partition = { shared: true } | { shared: false; filesByReplica: number[][]; idleReplicas: number[] };

export function partitionInputs(format: InstancesFormat, fileCount: number, replicaCount: number): Partition {
  if (format === 'jsonl' || format === 'file-list') return { shared: true };
  const filesByReplica: number[][] = Array.from({ length: replicaCount }, () => []);
  for (let i = 0; i < fileCount; i++) filesByReplica[i % replicaCount]!.push(i);
  const idleReplicas = filesByReplica.flatMap((files, replica) => (files.length === 0 ? [replica] : []));
  return { shared: false, filesByReplica, idleReplicas };
}

/** The warning for replicas left without input, or undefined when every replica has a file. */
export function idleReplicaWarning(format: InstancesFormat, files: readonly string[], replicaCount: number, partition: Partition): string | undefined {
  if (partition.shared || partition.idleReplicas.length === 0) return undefined;
  const how = format === 'csv' ? 'Vertex does not split a CSV file: each file goes whole to one replica' : `${format} input is split by file`;
  const names = files.slice(0, 5).map((f) => path.basename(f)).join(', ');
  return (
    `${files.length} ${format} file(s) (${names}${files.length > 5 ? ', …' : ''}) for ${replicaCount} replicas: ${how}, so ${partition.idleReplicas.length} replica(s) ` +
    `(${partition.idleReplicas.map((r) => `replica-${r}`).join(', ')}) will sit idle. Split the input into at least ${replicaCount} files, or lower startingReplicaCount (--replica-count).`
  );
}
