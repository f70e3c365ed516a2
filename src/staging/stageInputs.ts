import { Readable } from 'node:stream';
import type { TransferListener } from '../jobs/transferProgress.js';
import type { CreatedContainer } from '../runtime/containerEngine.js';
import type { StagingGroup } from './resolveLocations.js';
import { packStaging } from './tarPacker.js';

/** Bytes of archive buffered between the packer and the engine connection. */
const STREAM_HIGH_WATER_MARK = 512 * 1024;

/**
 * Copies input files into the created container's volumes as one tar stream (no bind mounts, so a
 * remote engine works the same), with the empty, world-writable directories first (the output dir
 * must be writable by whatever user the image runs as, as the Cloud Storage mount is on Vertex).
 * Files arrive root-owned and world-readable. The stats taken when the inputs were resolved are
 * reused; memory stays bounded whatever the number and size of the files (see packStaging).
 *
 * `onTransfer` gets `{kind: 'stage'}` events as the archive is handed to the engine, then
 * `{kind: 'done', of: 'stage'}`.
 */
export async function stageInputs(container: CreatedContainer, groups: readonly StagingGroup[], writableDirs: readonly string[] = [], onTransfer?: TransferListener): Promise<void> {
  let totalBytes = 0;
  let totalFiles = 0;
  for (const group of groups) {
    totalFiles += group.entries.length;
    for (const entry of group.entries) totalBytes += entry.size;
  }
  const progress = onTransfer
    ? (doneBytes: number, doneFiles: number) => onTransfer({ kind: 'stage', doneBytes, totalBytes, doneFiles, totalFiles })
    : undefined;

  // The packer's own error (a file that cannot be read, naming it) wins over the engine's view of
  // the aborted upload.
  let packError: unknown;
  const archive = Readable.from(
    (async function* () {
      try {
        yield* packStaging(groups, writableDirs, progress);
      } catch (error) {
        packError = error;
        throw error;
      }
    })(),
    { objectMode: false, highWaterMark: STREAM_HIGH_WATER_MARK },
  );
  progress?.(0, 0);
  try {
    await container.putArchive(archive, '/');
  } catch (error) {
    throw packError ?? error;
  } finally {
    archive.destroy();
    onTransfer?.({ kind: 'done', of: 'stage' });
  }
  if (packError) throw packError;
}
