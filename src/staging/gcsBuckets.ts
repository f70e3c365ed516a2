import { stat } from 'node:fs/promises';
import path from 'node:path';
import { usageError } from '../errors.js';
import { GCS_MOUNT, isGcsUri, parseGcsUri } from '../spec/gcsUri.js';
import type { LocationRef } from '../spec/runJobSpec.js';
import { type StagingGroup, walkFiles } from './resolveLocations.js';

/** What a staged file was, to tell afterwards whether the job changed it. */
export interface StagedObject {
  size: number;
  /** Whole seconds since the epoch, as the archive carries it. */
  mtime: number;
}

/**
 * The buckets a job sees at /gcs/<bucket>, staged whole from `<gcs root>/<bucket>`, as Cloud Storage
 * FUSE shows every object of a bucket (read and write) to a Vertex replica.
 */
export interface GcsBucketStaging {
  buckets: string[];
  /** One staging group: host root = the gcs root, container dir = /gcs, paths `bucket/...`. */
  group: StagingGroup;
  /** Staged files by path relative to the gcs root (`bucket/x/y`). */
  manifest: Map<string, StagedObject>;
  /** Container directories made world-writable (each bucket and every directory in it), as FUSE lets any user write. */
  writableDirs: string[];
  fileCount: number;
  totalBytes: number;
  /** Paths relative to the gcs root whose contents are not staged: the output prefix (it starts empty, as today). */
  excluded: string[];
  /** Files left out because they are under an excluded prefix. */
  excludedFileCount: number;
}

/**
 * Lists every file of each bucket under `gcsRoot` for staging, leaving out the `excluded` prefixes
 * (relative to the gcs root). A bucket that does not exist on the host is created empty when it
 * `mayCreate` (the output's bucket), else a usage error naming the flag.
 */
export async function resolveGcsBuckets(
  buckets: ReadonlyArray<{ name: string; field: string; mayCreate: boolean }>,
  gcsRoot: string,
  excluded: readonly string[],
): Promise<GcsBucketStaging> {
  const names: string[] = [];
  const entries: StagingGroup['entries'] = [];
  const manifest = new Map<string, StagedObject>();
  const dirs = new Set<string>();
  let totalBytes = 0;
  let excludedFileCount = 0;
  const isExcluded = (relative: string) => excluded.some((prefix) => relative === prefix || relative.startsWith(`${prefix}/`));
  for (const bucket of buckets) {
    if (names.includes(bucket.name)) continue;
    const hostDir = path.join(gcsRoot, bucket.name);
    const info = await stat(hostDir).catch(() => undefined);
    if (!info?.isDirectory()) {
      if (!bucket.mayCreate) {
        throw usageError('GCS_BUCKET_NOT_FOUND', `${bucket.field}: bucket "${bucket.name}" is not a directory under the Cloud Storage root (looked at ${hostDir}).`, `Create ${hostDir} (a bucket is a directory under --gcs-root), or check --gcs-root.`);
      }
    }
    names.push(bucket.name);
    dirs.add(path.posix.join(GCS_MOUNT, bucket.name));
    if (!info?.isDirectory()) continue;
    for (const entry of await walkFiles(hostDir, bucket.field)) {
      const relative = `${bucket.name}/${entry.relative}`;
      if (isExcluded(relative)) {
        excludedFileCount += 1;
        continue;
      }
      entries.push({ ...entry, relative });
      manifest.set(relative, { size: entry.size, mtime: entry.mtime });
      totalBytes += entry.size;
      for (let dir = path.posix.dirname(relative); dir !== bucket.name && dir !== '.'; dir = path.posix.dirname(dir)) {
        const containerDir = path.posix.join(GCS_MOUNT, dir);
        if (dirs.has(containerDir)) break;
        dirs.add(containerDir);
      }
    }
  }
  return {
    buckets: names,
    // Objects are writable by any user, as through a Cloud Storage FUSE mount.
    group: { hostRoot: gcsRoot, containerDir: GCS_MOUNT, entries, field: '--gcs-root', fileMode: 0o666 },
    manifest,
    writableDirs: [...dirs].sort(),
    fileCount: entries.length,
    totalBytes,
    excluded: [...excluded],
    excludedFileCount,
  };
}

/** The buckets a job names (inputs, model directory, output, --gcs-bucket): staged whole. Only the output's may be created. */
export function namedBuckets(refs: { inputs: readonly LocationRef[]; modelDir?: LocationRef | undefined; output: LocationRef; extra: readonly string[] }): Array<{ name: string; field: string; mayCreate: boolean }> {
  const out: Array<{ name: string; field: string; mayCreate: boolean }> = [];
  const add = (ref: LocationRef | undefined, mayCreate: boolean) => {
    if (ref && isGcsUri(ref.text)) out.push({ name: parseGcsUri(ref.text, ref.field).bucket, field: ref.field, mayCreate });
  };
  add(refs.output, true);
  for (const ref of refs.inputs) add(ref, false);
  add(refs.modelDir, false);
  refs.extra.forEach((name, i) => out.push({ name, field: `--gcs-bucket[${i}]`, mayCreate: false }));
  return out;
}

/**
 * `--gcs-stage inputs`: only the named gs:// inputs (and model) are copied in, not their whole buckets
 * (faster for big buckets; a read of another object fails as INPUT_NOT_STAGED). The buckets are still
 * there and writable, and what the job writes comes back the same way.
 */
export function gcsInputsOnly(buckets: ReadonlyArray<{ name: string }>, groups: readonly StagingGroup[], excluded: readonly string[]): GcsBucketStaging {
  const names = [...new Set(buckets.map((b) => b.name))];
  const entries: StagingGroup['entries'] = [];
  const manifest = new Map<string, StagedObject>();
  const dirs = new Set(names.map((name) => path.posix.join(GCS_MOUNT, name)));
  let totalBytes = 0;
  for (const group of groups) {
    if (group.containerDir !== GCS_MOUNT) continue;
    for (const entry of group.entries) {
      if (manifest.has(entry.relative)) continue;
      entries.push(entry);
      manifest.set(entry.relative, { size: entry.size, mtime: entry.mtime });
      totalBytes += entry.size;
      for (let dir = path.posix.dirname(entry.relative); dir.includes('/'); dir = path.posix.dirname(dir)) dirs.add(path.posix.join(GCS_MOUNT, dir));
    }
  }
  return {
    buckets: names,
    group: { hostRoot: groups.find((g) => g.containerDir === GCS_MOUNT)?.hostRoot ?? '/', containerDir: GCS_MOUNT, entries, field: '--input', fileMode: 0o666 },
    manifest,
    writableDirs: [...dirs].sort(),
    fileCount: entries.length,
    totalBytes,
    excluded: [...excluded],
    excludedFileCount: 0,
  };
}
