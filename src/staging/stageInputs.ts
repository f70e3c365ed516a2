import path from 'node:path';
import { Readable } from 'node:stream';
import tarFs from 'tar-fs';
import tarStream from 'tar-stream';
import type { CreatedContainer } from '../runtime/containerEngine.js';
import type { StagingGroup } from './resolveLocations.js';

/**
 * Copies input files into the created container's volumes as one tar stream (no bind mounts, so a
 * remote engine works the same), with the empty, world-writable directories first (the output dir
 * must be writable by whatever user the image runs as, as the Cloud Storage mount is on Vertex).
 * Files arrive root-owned and world-readable.
 */
export async function stageInputs(container: CreatedContainer, groups: readonly StagingGroup[], writableDirs: readonly string[] = []): Promise<void> {
  const pack = tarStream.pack();
  for (const dir of writableDirs) {
    const parts = dir.replace(/^\/+|\/+$/g, '').split('/');
    for (let i = 1; i <= parts.length; i++) {
      pack.entry({ name: `${parts.slice(0, i).join('/')}/`, type: 'directory', mode: i === parts.length ? 0o777 : 0o755, uid: 0, gid: 0, mtime: new Date() });
    }
  }
  const filling = (async () => {
    for (const group of groups) {
      const prefix = group.containerDir.replace(/^\/+/, '');
      await new Promise<void>((resolve) => {
        tarFs.pack(group.hostRoot, {
          pack,
          finalize: false,
          finish: () => resolve(),
          entries: group.entries.map((e) => e.split('/').join(path.sep)),
          dereference: true,
          map: (header) => {
            header.name = path.posix.join(prefix, header.name.split(path.sep).join('/'));
            header.uid = 0;
            header.gid = 0;
            header.mode = header.type === 'directory' ? 0o755 : 0o644 | (header.mode & 0o111);
            return header;
          },
        });
      });
    }
    pack.finalize();
  })();
  filling.catch((error: unknown) => pack.destroy(error as Error));
  await Promise.all([container.putArchive(Readable.from(pack as unknown as AsyncIterable<Buffer>), '/'), filling]);
}
