import fs from 'node:fs';
import path from 'node:path';
import { emulatorError } from '../errors.js';
import type { BodySink } from '../http/responseParser.js';
import type { CollectedFile, RefusedEntry } from './collectOutputs.js';
import type { StagedObject } from './gcsBuckets.js';
import { type TarEntryHandler, type TarEntryHeader, TarFormatError, TarReader } from './tarReader.js';

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

const LIST_LIMIT = 1000;
const REFUSED_LIMIT = 100;
const LOCAL_WRITE_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'EACCES', 'EPERM', 'EFBIG', 'EMFILE', 'ENFILE']);

/**
 * Reads the archive of the container's /gcs and writes back to `gcsRoot` every regular file that is
 * new or differs (size or mtime) from what was staged: what Cloud Storage FUSE would have made objects
 * of. Files whose data is unchanged are skipped without being written. Links, devices and names that
 * climb out are refused; each file is written under a temporary name and renamed when whole.
 */
export async function collectGcsChanges(source: (sink: BodySink, signal?: AbortSignal) => Promise<unknown>, gcsRoot: string, options: GcsChangesOptions): Promise<GcsChanges> {
  fs.mkdirSync(gcsRoot, { recursive: true });
  const handler = new ChangeWriter(fs.realpathSync(gcsRoot), options);
  const reader = new TarReader(handler);
  try {
    options.signal?.throwIfAborted();
    await source((parts) => {
      options.signal?.throwIfAborted();
      for (const part of parts) reader.push(part);
      return undefined;
    }, options.signal);
    reader.end();
  } catch (error) {
    handler.abandon();
    const result = handler.result;
    result.complete = false;
    if (options.signal?.aborted) {
      result.cancelled = true;
      result.error = 'cancelled';
      return result;
    }
    if (error instanceof TarFormatError) {
      throw emulatorError('OUTPUT_ARCHIVE_INVALID', `The engine's archive of /gcs could not be read (${error.message}); the files written back before that are whole in ${gcsRoot}.`, 'Run the job again; if it happens again, check the engine and its logs.', error);
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (!code || !LOCAL_WRITE_ERRORS.has(code)) throw error;
    result.error = `${code}: ${(error as Error).message}`;
    return result;
  }
  handler.finish();
  return handler.result;
}

class ChangeWriter implements TarEntryHandler {
  readonly result: GcsChanges = { complete: true, writtenCount: 0, writtenBytes: 0, written: [], deleted: [], refused: [] };
  private readonly seen = new Set<string>();
  private readonly checkedDirs = new Set<string>();
  private file: { fd: number; partial: string; target: string; record: CollectedFile } | undefined;

  constructor(
    private readonly root: string,
    private readonly options: GcsChangesOptions,
  ) {}

  entry(header: TarEntryHeader): ((data: Buffer) => void) | undefined {
    const relative = stripFirstComponent(header.name);
    if (relative === '' || this.skipped(relative)) return undefined;
    this.seen.add(relative);
    if (header.type === 'directory') return undefined;
    if (relative.startsWith('/') || relative.includes('\0') || relative.split('/').includes('..')) return this.refuse(relative, 'unsafe name');
    if (header.type !== 'file') return this.refuse(relative, `${header.type} (only regular files become objects)`);
    const staged = this.options.manifest.get(relative);
    if (staged && staged.size === header.size && staged.mtime === header.mtime) return undefined; // unchanged
    if (header.size > this.options.maxFileBytes) return this.refuse(relative, `file of ${header.size} bytes is over the ${this.options.maxFileBytes}-byte cap (--max-output-file-size)`);
    const target = path.join(this.root, ...relative.split('/'));
    const parent = path.dirname(target);
    if (!this.ensureDirectory(parent)) return this.refuse(relative, 'its directory resolves outside the Cloud Storage root');
    const existing = fs.lstatSync(target, { throwIfNoEntry: false });
    if (existing && !existing.isFile()) return this.refuse(relative, 'a non-file already exists at this path under the Cloud Storage root');
    const partial = `${target}.vbe-partial`;
    const fd = fs.openSync(partial, 'w', 0o644 | (header.mode & 0o111));
    this.file = { fd, partial, target, record: { path: relative, sizeBytes: header.size } };
    return (data) => {
      let rest = data;
      while (rest.length > 0) rest = rest.subarray(fs.writeSync(fd, rest));
    };
  }

  entryEnd(): void {
    const file = this.file;
    if (!file) return;
    this.file = undefined;
    fs.closeSync(file.fd);
    fs.renameSync(file.partial, file.target);
    this.result.writtenCount += 1;
    this.result.writtenBytes += file.record.sizeBytes;
    if (this.result.written.length < LIST_LIMIT) this.result.written.push(file.record);
  }

  /** After the whole archive: staged files that are gone were deleted by the job. */
  finish(): void {
    for (const relative of this.options.manifest.keys()) {
      if (!this.seen.has(relative) && !this.skipped(relative) && this.result.deleted.length < LIST_LIMIT) this.result.deleted.push(relative);
    }
  }

  abandon(): void {
    const file = this.file;
    if (!file) return;
    this.file = undefined;
    try {
      fs.closeSync(file.fd);
    } catch {
      // the failure being handled may have been this close
    }
    fs.rmSync(file.partial, { force: true });
  }

  private skipped(relative: string): boolean {
    return this.options.skip.some((prefix) => relative === prefix || relative.startsWith(`${prefix}/`) || prefix.startsWith(`${relative}/`));
  }

  private ensureDirectory(dir: string): boolean {
    if (this.checkedDirs.has(dir)) return true;
    fs.mkdirSync(dir, { recursive: true });
    let real: string;
    try {
      real = fs.realpathSync(dir);
    } catch {
      return false;
    }
    if (real !== this.root && !real.startsWith(this.root + path.sep)) return false;
    this.checkedDirs.add(dir);
    return true;
  }

  private refuse(relative: string, reason: string): undefined {
    if (this.result.refused.length < REFUSED_LIMIT) this.result.refused.push({ path: relative, reason });
    return undefined;
  }
}

function stripFirstComponent(name: string): string {
  const trimmed = name.replace(/^\.\//, '');
  const slash = trimmed.indexOf('/');
  return slash === -1 ? '' : trimmed.slice(slash + 1).replace(/\/+$/, '');
}
