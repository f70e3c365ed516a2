import fs from 'node:fs';

/** An entry of a container's archive that was not written, and why. */
export interface RefusedEntry {
  path: string;
  reason: string;
}

/** Why an entry is refused: thrown inside an extractor, caught where the entry started. */
export class Refusal {
  constructor(readonly reason: string) {}
}

/** Errors of one entry's own name or place on the host (too long once joined, a file or link in the way, a directory gone): that entry is refused, the others copied. */
export const ENTRY_ERRORS = new Set(['ENAMETOOLONG', 'EISDIR', 'ENOTDIR', 'EEXIST', 'ENOENT', 'ELOOP', 'ENOTEMPTY', 'EINVAL']);

/** Errors of the host's disk or permissions (disk full, read-only...): copying stops, what is whole stays, the job says why. */
export const LOCAL_WRITE_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'EACCES', 'EPERM', 'EFBIG', 'EMFILE', 'ENFILE']);

export function lstatOrUndefined(target: string): fs.Stats | undefined {
  return fs.lstatSync(target, { throwIfNoEntry: false });
}
