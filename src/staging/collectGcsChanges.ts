import type { BodySink } from '../http/responseParser.js';
import { type CollectedFile, collectOutputs, LIST_LIMIT, type RefusedEntry } from './collectOutputs.js';
import type { StagedObject } from './gcsBuckets.js';
import type { TarEntryHeader } from './tarReader.js';

/** What a job changed under /gcs, written back to the gcs root. Paths are relative to it (`bucket/x`). */
export interface GcsChanges {
  /** False when copying stopped part-way (disk full, cancelled): the files listed are whole. */
  complete: boolean;
  error?: string;
  cancelled?: boolean;
  writtenCount: number;
  writtenBytes: number;
  /** The first files written back (the count is exact). */
  written: CollectedFile[];
  /** Staged files the job removed. They are NOT removed on the host (the cautious side); listed here. */
  deleted: string[];
  refused: RefusedEntry[];
}

export interface GcsChangesOptions {
  /** Staged files, to tell which ones the job changed. */
  manifest: ReadonlyMap<string, StagedObject>;
  /** Prefixes (relative to the gcs root) collected another way (the output directory): skipped here. */
  skip: readonly string[];
  maxFileBytes: number;
  signal?: AbortSignal;
}


/**
 * Reads the archive of the container's /gcs and writes back to `gcsRoot` every regular file that is
 * new or differs (size or mtime) from what was staged: what Cloud Storage FUSE would have made objects
 * of. Files whose data is unchanged are skipped without being written. The writing is the output
 * collector's (collectOutputs): the same refusals (links, devices, names that climb out or are not
 * UTF-8, anything in the way), never through a link, each file under a temporary name and renamed.
 */
export async function collectGcsChanges(source: (sink: BodySink, signal?: AbortSignal) => Promise<unknown>, gcsRoot: string, options: GcsChangesOptions): Promise<GcsChanges> {
  const seen = new Set<string>();
  const skipped = (relative: string) => options.skip.some((prefix) => relative === prefix || relative.startsWith(`${prefix}/`) || prefix.startsWith(`${relative}/`));
  const select = (relative: string, header: TarEntryHeader): boolean | string => {
    if (skipped(relative)) return false;
    seen.add(relative);
    if (header.type === 'directory') return false; // not an object: made only as a file's parent
    if (header.type !== 'file') return `${header.type} (only regular files become objects)`;
    const staged = options.manifest.get(relative);
    return !(staged && staged.size === header.size && staged.mtime === header.mtime); // unchanged: not written
  };
  const collected = await collectOutputs(async (sink, signal) => void (await source(sink, signal)), gcsRoot, {
    maxFileBytes: options.maxFileBytes,
    select,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  // Staged files that are gone were deleted by the job (kept on the host: the cautious side).
  const deleted: string[] = [];
  for (const relative of options.manifest.keys()) {
    if (!seen.has(relative) && !skipped(relative) && deleted.length < LIST_LIMIT) deleted.push(relative);
  }
  return {
    complete: collected.complete,
    ...(collected.error !== undefined ? { error: collected.error } : {}),
    ...(collected.cancelled ? { cancelled: true } : {}),
    writtenCount: collected.fileCount,
    writtenBytes: collected.totalBytes,
    written: collected.files,
    deleted,
    refused: collected.refused,
  };
}
