import path from 'node:path';
import type { GcsBucketsRecord } from '../report/jobResource.js';
import { GCS_MOUNT } from '../spec/gcsUri.js';
import type { CollectionResult } from '../staging/collectOutputs.js';
import type { GcsChanges } from '../staging/collectGcsChanges.js';
import type { GcsBucketStaging, StagedObject } from '../staging/gcsBuckets.js';
import type { LogSignal } from '../verdict/scanLogLine.js';

/** The job record's view of /gcs: the buckets staged and what the job wrote back. */
export function gcsRecord(gcsRoot: string, staging: GcsBucketStaging, changes: GcsChanges | undefined): GcsBucketsRecord {
  return {
    root: gcsRoot,
    buckets: staging.buckets,
    staged: { fileCount: staging.fileCount, totalBytes: staging.totalBytes },
    excluded: staging.excluded,
    written: (changes?.written ?? []).map((f) => ({ uri: `gs://${f.path}`, hostPath: path.join(gcsRoot, ...f.path.split('/')), sizeBytes: f.sizeBytes })),
    writtenCount: changes?.writtenCount ?? 0,
    writtenBytes: changes?.writtenBytes ?? 0,
    deleted: changes?.deleted ?? [],
    refused: changes?.refused ?? [],
    complete: changes?.complete ?? false,
  };
}

/**
 * Of the paths named in "no such file" log lines, those that exist somewhere: staged under /gcs, written
 * back by the job, or collected as outputs. The verdict reports only the others as inputs not staged.
 */
export function existingMissingPaths(
  signals: readonly LogSignal[],
  manifest: ReadonlyMap<string, StagedObject>,
  changes: GcsChanges | undefined,
  collection: CollectionResult | undefined,
  outputContainerDir: string,
): string[] {
  const written = new Set((changes?.written ?? []).map((f) => f.path));
  const outputs = new Set((collection?.files ?? []).map((f) => path.posix.join(outputContainerDir, f.path)));
  const found: string[] = [];
  for (const signal of signals) {
    if (signal.kind !== 'missing-file') continue;
    const p = signal.path;
    if (outputs.has(p)) found.push(p);
    else if (p.startsWith(`${GCS_MOUNT}/`)) {
      const relative = p.slice(GCS_MOUNT.length + 1);
      if (manifest.has(relative) || written.has(relative)) found.push(p);
    }
  }
  return found;
}
