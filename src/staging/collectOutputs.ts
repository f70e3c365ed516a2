import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { TransferListener } from '../jobs/transferProgress.js';
import { emulatorError } from '../errors.js';
import type { BodySink } from '../http/responseParser.js';
import { type TarEntryHandler, type TarEntryHeader, TarFormatError, TarReader } from './tarReader.js';

export interface CollectedFile {
  /** Path relative to the output directory (POSIX separators). */
  path: string;
  sizeBytes: number;
}

export interface RefusedEntry {
  path: string;
  reason: string;
}

export interface CollectionResult {
  hostDir: string;
  /** False when copying stopped part-way (disk full, I/O error): the files listed are complete, the rest were not copied. */
  complete: boolean;
  /** Why copying stopped, when it did. */
  error?: string;
  /** Copying stopped because the job was cancelled (the files listed are whole). */
  cancelled?: boolean;
  fileCount: number;
  totalBytes: number;
  /** The first files collected (the full list can be millions long; the count is exact). */
  files: CollectedFile[];
  refused: RefusedEntry[];
}

export interface CollectOptions {
  maxFileBytes: number;
  /** How many collected file names to keep for the record. */
  listLimit?: number;
  /** Relative paths the collector must not write (the emulator's own record directory). */
  reserved?: readonly string[];
  /** Stops copying (Ctrl-C): what is whole stays, the file being written is removed. */
  signal?: AbortSignal;
}

/** The output archive: a stream, or a reader that pushes its bytes into a sink (ExitedContainer.readArchive), stopping when `signal` fires. */
export type ArchiveSource = Readable | ((sink: BodySink, signal?: AbortSignal) => Promise<void>);

const LIST_LIMIT = 1000;
const REFUSED_LIMIT = 100;
/** A collect progress event at least every this many bytes within a big file. */
const PROGRESS_STEP_BYTES = 1024 * 1024;
/** Synchronous work between two turns of the event loop (timers, signals, the progress display). */
const SLICE_MS = 8;

/**
 * Extracts the tar archive of the container's output directory into `hostDir`, refusing anything
 * that could land outside it: absolute names, `..`, links, devices and FIFOs, and files over the
 * size cap. Each file is written under a temporary name and renamed when whole. The archive's
 * first path component is the output directory's own name and is stripped.
 *
 * Files are written with synchronous calls, straight from the bytes as they arrive (TarReader hands
 * on views, nothing is copied), one file after the other, as `docker cp` does: on a local disk
 * those calls cost less CPU than the thread pool's (for 100,000 files of 1 KiB, several times
 * less), and the engine writing the archive needs the other core. Reading pauses for a turn of
 * the event loop every SLICE_MS. Memory stays at the reader's buffer, whatever the sizes.
 *
 * `onTransfer` gets `{kind: 'collect'}` events as files are written (per file, and per MiB within
 * a big one), then `{kind: 'done', of: 'collect'}`.
 */
export async function collectOutputs(source: ArchiveSource, hostDir: string, options: CollectOptions, onTransfer?: TransferListener): Promise<CollectionResult> {
  try {
    fs.mkdirSync(hostDir, { recursive: true });
    const extractor = new OutputExtractor(fs.realpathSync(hostDir), hostDir, options, onTransfer);
    return await extractor.run(source);
  } finally {
    onTransfer?.({ kind: 'done', of: 'collect' });
  }
}

/** The file being written: its temporary name, descriptor and record. */
interface OpenFile {
  partial: string;
  target: string;
  /** -1 once closed. */
  fd: number;
  record: CollectedFile;
}

class OutputExtractor implements TarEntryHandler {
  private readonly result: CollectionResult;
  private readonly listLimit: number;
  private readonly reader = new TarReader(this);
  /**
   * Directories known to resolve inside the output dir; true when this collection created them
   * (then they hold only what it wrote). Checked once each, not once per file.
   */
  private readonly verifiedDirs: Map<string, boolean>;
  private file: OpenFile | undefined;
  private doneBytes = 0;
  private reportedBytes = 0;
  private sliceEnd = performance.now() + SLICE_MS;
  /** The current file's data from the bytes being pushed: written together (one writev) before push returns. */
  private views: Buffer[] = [];

  constructor(
    private readonly root: string,
    hostDir: string,
    private readonly options: CollectOptions,
    private readonly onTransfer: TransferListener | undefined,
  ) {
    this.result = { hostDir, complete: true, fileCount: 0, totalBytes: 0, files: [], refused: [] };
    this.listLimit = options.listLimit ?? LIST_LIMIT;
    this.verifiedDirs = new Map([[root, false]]);
  }

  async run(source: ArchiveSource): Promise<CollectionResult> {
    const sink: BodySink = (parts) => this.push(parts);
    try {
      this.options.signal?.throwIfAborted();
      if (typeof source === 'function') await source(sink, this.options.signal);
      else {
        for await (const chunk of source as AsyncIterable<Buffer>) {
          const wait = sink([chunk]);
          if (wait) await wait;
        }
      }
      this.reader.end();
    } catch (error) {
      this.abandonFile();
      if (typeof source !== 'function') source.destroy();
      if (this.options.signal?.aborted) {
        this.result.complete = false;
        this.result.cancelled = true;
        this.result.error = 'cancelled';
        return this.result;
      }
      if (error instanceof TarFormatError) {
        throw emulatorError(
          'OUTPUT_ARCHIVE_INVALID',
          `The engine's archive of the output directory could not be read (${error.message}); the files copied before that are whole in ${this.result.hostDir}.`,
          'Run the job again; if it happens again, check the engine (`docker cp <container>:<output dir> .` of a similar container) and its logs.',
          error,
        );
      }
      const code = (error as NodeJS.ErrnoException).code;
      if (!code || !LOCAL_WRITE_ERRORS.has(code)) throw error;
      // The host side failed (disk full...): keep what was copied whole, say what happened.
      this.result.complete = false;
      this.result.error = `${code}: ${(error as Error).message}`;
      return this.result;
    }
    if (this.reportedBytes !== this.doneBytes || this.doneBytes === 0) this.report();
    return this.result;
  }

  /** Takes the archive's next bytes (the current file's written at once); a promise when the event loop is due a turn before more. */
  private push(parts: Buffer[]): Promise<void> | undefined {
    this.options.signal?.throwIfAborted();
    for (const part of parts) this.reader.push(part);
    this.flushViews();
    if (performance.now() < this.sliceEnd) return undefined;
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        this.sliceEnd = performance.now() + SLICE_MS;
        resolve();
      }),
    );
  }

  entry(header: TarEntryHeader): ((data: Buffer) => void) | undefined {
    const relative = stripFirstComponent(header.name);
    if (relative === '') return undefined;
    const problem = unsafeName(relative) ?? reservedName(relative, this.options.reserved ?? []);
    if (problem) return this.refuse(relative, problem);
    const target = path.join(this.root, ...relative.split('/'));
    switch (header.type) {
      case 'directory':
        if (!this.ensureDirectory(target)) this.refuse(relative, 'directory resolves outside the output directory');
        return undefined;
      case 'file': {
        const size = header.size;
        if (size > this.options.maxFileBytes) return this.refuse(relative, `file of ${size} bytes is over the ${this.options.maxFileBytes}-byte cap (--max-output-file-size)`);
        const parent = path.dirname(target);
        if (!this.ensureDirectory(parent)) return this.refuse(relative, 'parent directory resolves outside the output directory');
        // In a directory this collection created, nothing can be in the way; elsewhere, look first.
        if (!this.verifiedDirs.get(parent)) {
          const existing = lstatOrUndefined(target);
          if (existing && !existing.isFile()) return this.refuse(relative, 'a non-file already exists at this path in the output directory');
        }
        // Written under a temporary name and renamed, so an interrupted copy never leaves a half file.
        const partial = `${target}.vbe-partial`;
        const fd = fs.openSync(partial, 'w', 0o644 | (header.mode & 0o111));
        this.file = { partial, target, fd, record: { path: relative, sizeBytes: size } };
        return (data) => this.write(data);
      }
      case 'symlink':
        return this.refuse(relative, `symbolic link to "${header.linkname}" (links are not copied out)`);
      case 'link':
        return this.refuse(relative, `hard link to "${header.linkname}" (links are not copied out)`);
      default:
        return this.refuse(relative, `${header.type} (only regular files and directories are copied out)`);
    }
  }

  entryEnd(): void {
    const file = this.file;
    if (!file) return;
    try {
      this.flushViews();
      fs.closeSync(file.fd);
      file.fd = -1;
      fs.renameSync(file.partial, file.target);
    } catch (error) {
      this.abandonFile();
      throw error;
    }
    this.file = undefined;
    const result = this.result;
    result.fileCount += 1;
    result.totalBytes += file.record.sizeBytes;
    if (result.files.length < this.listLimit) result.files.push(file.record);
    if (this.onTransfer) this.report();
  }

  private write(data: Buffer): void {
    this.views.push(data);
    this.doneBytes += data.length;
    if (this.onTransfer && this.doneBytes - this.reportedBytes >= PROGRESS_STEP_BYTES) this.report();
  }

  /** Writes the views kept for the current file (all of them: a regular file can take fewer bytes at a time, e.g. just before ENOSPC). */
  private flushViews(): void {
    if (this.views.length === 0) return;
    let rest = this.views;
    this.views = [];
    const fd = this.file!.fd;
    while (rest.length > 0) {
      let written = rest.length === 1 ? fs.writeSync(fd, rest[0]!) : fs.writevSync(fd, rest);
      if (written === 0) throw Object.assign(new Error(`EIO: nothing written to ${this.file!.partial}`), { code: 'EIO' });
      let i = 0;
      while (i < rest.length && written >= rest[i]!.length) written -= rest[i++]!.length;
      rest = i < rest.length ? [rest[i]!.subarray(written), ...rest.slice(i + 1)] : [];
    }
  }

  /** After a failure: closes and removes the temporary file being written, if any. */
  private abandonFile(): void {
    const file = this.file;
    if (!file) return;
    this.file = undefined;
    this.views = [];
    if (file.fd >= 0) {
      try {
        fs.closeSync(file.fd);
      } catch {
        // the failure being handled may have been this close
      }
    }
    fs.rmSync(file.partial, { force: true });
  }

  private ensureDirectory(dir: string): boolean {
    if (this.verifiedDirs.has(dir)) return true;
    const existed = lstatOrUndefined(dir) !== undefined;
    fs.mkdirSync(dir, { recursive: true });
    if (!staysInside(this.root, dir)) return false;
    this.verifiedDirs.set(dir, !existed);
    return true;
  }

  private refuse(entryPath: string, reason: string): undefined {
    if (this.result.refused.length < REFUSED_LIMIT) this.result.refused.push({ path: entryPath, reason });
    return undefined;
  }

  private report(): void {
    this.reportedBytes = this.doneBytes;
    this.onTransfer?.({ kind: 'collect', doneBytes: this.doneBytes, doneFiles: this.result.fileCount });
  }
}

const LOCAL_WRITE_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'EACCES', 'EPERM', 'EFBIG', 'EMFILE', 'ENFILE']);

function lstatOrUndefined(target: string): fs.Stats | undefined {
  return fs.lstatSync(target, { throwIfNoEntry: false });
}

function stripFirstComponent(name: string): string {
  const trimmed = name.replace(/^\.\//, '');
  const slash = trimmed.indexOf('/');
  return slash === -1 ? '' : trimmed.slice(slash + 1).replace(/\/+$/, '');
}

function unsafeName(relative: string): string | undefined {
  if (relative.startsWith('/')) return 'absolute path';
  if (relative.includes('\0')) return 'NUL byte in name';
  if (relative.split('/').some((part) => part === '..')) return 'path climbs out with ".."';
  return undefined;
}

function reservedName(relative: string, reserved: readonly string[]): string | undefined {
  const first = relative.split('/')[0]!;
  return reserved.includes(first) ? `"${first}" is reserved for the emulator's own record` : undefined;
}

function staysInside(root: string, dir: string): boolean {
  let real: string;
  try {
    real = fs.realpathSync(dir);
  } catch {
    return false;
  }
  return real === root || real.startsWith(root + path.sep);
}
