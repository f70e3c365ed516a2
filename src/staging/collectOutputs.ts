import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { TransferListener } from '../jobs/transferProgress.js';
import { emulatorError } from '../errors.js';
import type { BodySink } from '../http/responseParser.js';
import { entryParts, hostProblem, reservedName, unsafeName } from './outputEntryNames.js';
import { type TarEntryHandler, type TarEntryHeader, TarFormatError, TarReader } from './tarReader.js';
import { ENTRY_ERRORS, LOCAL_WRITE_ERRORS, lstatOrUndefined, Refusal, type RefusedEntry } from './entryRefusals.js';

export type { RefusedEntry };

export interface CollectedFile {
  /** Path relative to the output directory (POSIX separators). */
  path: string;
  sizeBytes: number;
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
  /** The first entries refused (the list is cut at REFUSED_LIMIT; `refusedCount` is exact). */
  refused: RefusedEntry[];
  refusedCount: number;
  /** Copying was stopped at `deadline` (the files listed are whole). */
  timedOut?: boolean;
}

export interface CollectOptions {
  maxFileBytes: number;
  /** How many collected file names to keep for the record. */
  listLimit?: number;
  /** Relative paths the collector must not write (the emulator's own record directory). */
  reserved?: readonly string[];
  /** Stops copying (Ctrl-C): what is whole stays, the file being written is removed. */
  signal?: AbortSignal;
  /** When copying must stop (epoch ms), whatever the archive still holds: `timedOut`, what is whole stays. */
  deadline?: number;
  /**
   * Which safe entries to write (`relative` has the archive's first component stripped): false passes
   * one over silently, a string refuses it with that reason. Called once per entry that passed the safety checks.
   */
  select?: (relative: string, header: TarEntryHeader) => boolean | string;
}

/**
 * The output archive: a stream, or a reader that pushes its bytes into a sink (ExitedContainer.readArchive),
 * stopping when `signal` fires, and resolving false when the directory is not in the container (it removed it).
 */
export type ArchiveSource = Readable | ((sink: BodySink, signal?: AbortSignal) => Promise<boolean | void>);

/** File names a record lists at most (the counts are exact). */
export const LIST_LIMIT = 1000;
const REFUSED_LIMIT = 100;
/** A collect progress event at least every this many bytes within a big file. */
const PROGRESS_STEP_BYTES = 1024 * 1024;
/** Synchronous work between two turns of the event loop (timers, signals, the progress display). */
const SLICE_MS = 8;
/** Temporary files are named `.vbe-partial-<n>` in the target's directory (short: a 255-byte name still has room). */
const PARTIAL_PREFIX = '.vbe-partial-';

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
   * The directories of the last entry, from the output dir down, checked (no link, no file in the
   * way) or created: `dirNames` their names, `dirPaths` their host paths, `dirCreated` whether this
   * collection created them (then they hold only what it wrote). An archive lists a directory's
   * entries together, so remembering one branch spares almost every check, and memory stays at
   * one path however many directories there are.
   */
  private readonly dirNames: string[] = [];
  private readonly dirPaths: string[];
  private readonly dirCreated: boolean[] = [false];
  private file: OpenFile | undefined;
  private partialCount = 0;
  private doneBytes = 0;
  private reportedBytes = 0;
  private sliceEnd = performance.now() + SLICE_MS;
  /** The current file's data from the bytes being pushed: written together (one writev) before push returns. */
  private views: Buffer[] = [];
  /** Aborted by the caller's signal or at the deadline. */
  private readonly stop = new AbortController();
  private deadlineTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly root: string,
    hostDir: string,
    private readonly options: CollectOptions,
    private readonly onTransfer: TransferListener | undefined,
  ) {
    this.result = { hostDir, complete: true, fileCount: 0, totalBytes: 0, files: [], refused: [], refusedCount: 0 };
    this.listLimit = options.listLimit ?? LIST_LIMIT;
    this.dirPaths = [root];
  }

  async run(source: ArchiveSource): Promise<CollectionResult> {
    const sink: BodySink = (parts) => this.push(parts);
    const { signal, deadline } = this.options;
    const onAbort = () => this.stop.abort(signal!.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (deadline !== undefined) {
      this.deadlineTimer = setTimeout(() => this.stop.abort(new Error('deadline')), Math.max(0, deadline - Date.now()));
    }
    try {
      signal?.throwIfAborted();
      if (typeof source === 'function') {
        if ((await source(sink, this.stop.signal)) === false) this.refuse('.', 'the output directory is not in the container any more (the container removed it): nothing to copy back');
      } else {
        for await (const chunk of source as AsyncIterable<Buffer>) {
          const wait = sink([chunk]);
          if (wait) await wait;
        }
      }
      this.reader.end();
    } catch (error) {
      this.abandonFile();
      if (typeof source !== 'function') source.destroy();
      if (signal?.aborted) {
        this.result.complete = false;
        this.result.cancelled = true;
        this.result.error = 'cancelled';
        return this.result;
      }
      if (this.stop.signal.aborted) {
        this.result.complete = false;
        this.result.timedOut = true;
        this.result.error = `copying was stopped at the job's deadline (${this.result.fileCount} file(s) copied whole)`;
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
    } finally {
      clearTimeout(this.deadlineTimer);
      signal?.removeEventListener('abort', onAbort);
    }
    if (this.reportedBytes !== this.doneBytes || this.doneBytes === 0) this.report();
    return this.result;
  }

  /** Takes the archive's next bytes (the current file's written at once); a promise when the event loop is due a turn before more. */
  private push(parts: Buffer[]): Promise<void> | undefined {
    this.stop.signal.throwIfAborted();
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
    const parts = entryParts(header.name);
    if (parts === undefined) return this.refuse(header.name, 'absolute path');
    if (parts.length === 0) return undefined;
    const relative = parts.join('/');
    try {
      if (header.invalidName) throw new Refusal('the name is not valid UTF-8 (Cloud Storage object names must be; it is not renamed, so two such names can never land on one file)');
      const problem = unsafeName(relative, parts) ?? reservedName(parts[0]!, this.options.reserved ?? []);
      if (problem) throw new Refusal(problem);
      const selected = this.options.select?.(relative, header) ?? true;
      if (typeof selected === 'string') throw new Refusal(selected);
      if (!selected) return undefined;
      switch (header.type) {
        case 'directory':
          this.ensureDirectory(parts, parts.length);
          return undefined;
        case 'file':
          return this.openFile(header, parts, relative);
        case 'symlink':
          throw new Refusal(`symbolic link to "${header.linkname}" (links are not copied out)`);
        case 'link':
          throw new Refusal(`hard link to "${header.linkname}" (links are not copied out)`);
        default:
          throw new Refusal(`${header.type} (only regular files and directories are copied out)`);
      }
    } catch (error) {
      return this.refuseFor(relative, error);
    }
  }

  private openFile(header: TarEntryHeader, parts: string[], relative: string): (data: Buffer) => void {
    const size = header.size;
    if (size > this.options.maxFileBytes) throw new Refusal(`file of ${size} bytes is over the ${this.options.maxFileBytes}-byte cap (--max-output-file-size)`);
    const depth = parts.length - 1;
    this.ensureDirectory(parts, depth);
    const parent = this.dirPaths[depth]!;
    const target = path.join(parent, parts[depth]!);
    // In a directory this collection created, nothing can be in the way; elsewhere, look first.
    if (!this.dirCreated[depth]) {
      const existing = lstatOrUndefined(target);
      if (existing && !existing.isFile()) throw new Refusal(`a ${existing.isSymbolicLink() ? 'symbolic link' : existing.isDirectory() ? 'directory' : 'non-file'} already exists at this path in the output directory`);
    }
    // Written under a short temporary name and renamed, so an interrupted copy never leaves a half file.
    let partial: string;
    let fd: number;
    for (;;) {
      partial = path.join(parent, `${PARTIAL_PREFIX}${this.partialCount++}`);
      try {
        fd = fs.openSync(partial, 'wx', 0o644 | (header.mode & 0o111));
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
    this.file = { partial, target, fd, record: { path: relative, sizeBytes: size } };
    return (data) => this.write(data);
  }

  entryEnd(): void {
    const file = this.file;
    if (!file) return;
    try {
      this.flushViews();
      fs.closeSync(file.fd);
      file.fd = -1;
    } catch (error) {
      this.abandonFile();
      throw error;
    }
    try {
      fs.renameSync(file.partial, file.target);
    } catch (error) {
      // The name was taken meanwhile by what the archive itself holds (a directory of that name...): this entry is refused.
      this.abandonFile();
      this.refuseFor(file.record.path, error);
      return;
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

  /**
   * Makes the first `depth` directories of `parts` exist inside the output dir, one level at a
   * time, looking at each before creating anything below it: a symbolic link or a file in the
   * way refuses the entry before anything is created through it (as node-tar does).
   */
  private ensureDirectory(parts: string[], depth: number): void {
    let known = 0;
    const names = this.dirNames;
    while (known < names.length && known < depth && names[known] === parts[known]) known += 1;
    names.length = known;
    this.dirPaths.length = known + 1;
    this.dirCreated.length = known + 1;
    for (let i = known; i < depth; i++) {
      const dir = path.join(this.dirPaths[i]!, parts[i]!);
      let created = false;
      if (this.dirCreated[i]) {
        // In a directory this collection created, only what it wrote can be there: this directory
        // (an archive that comes back to it) or a file (EEXIST, the entry is refused).
        created = true;
        try {
          fs.mkdirSync(dir);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || !lstatOrUndefined(dir)?.isDirectory()) throw error;
        }
      } else {
        const existing = lstatOrUndefined(dir);
        if (!existing) {
          fs.mkdirSync(dir);
          created = true;
        } else if (existing.isSymbolicLink()) {
          throw new Refusal(`parent directory "${parts.slice(0, i + 1).join('/')}" is a symbolic link already in the output directory (nothing is written through links)`);
        } else if (!existing.isDirectory()) {
          throw new Refusal(`parent directory "${parts.slice(0, i + 1).join('/')}" is a file already in the output directory`);
        }
      }
      names.push(parts[i]!);
      this.dirPaths.push(dir);
      this.dirCreated.push(created);
    }
  }

  /** Refuses an entry for a Refusal or an error of its own name or place on the host; other errors go on up. */
  private refuseFor(entryPath: string, error: unknown): undefined {
    if (error instanceof Refusal) return this.refuse(entryPath, error.reason);
    const code = (error as NodeJS.ErrnoException).code;
    if (!code || !ENTRY_ERRORS.has(code)) throw error;
    // The branch remembered may be what failed (a directory removed, a file in its place): look again next time.
    this.dirNames.length = 0;
    this.dirPaths.length = 1;
    this.dirCreated.length = 1;
    return this.refuse(entryPath, `could not be written on the host (${code}: ${hostProblem(code)})`);
  }

  private refuse(entryPath: string, reason: string): undefined {
    this.result.refusedCount += 1;
    if (this.result.refused.length < REFUSED_LIMIT) this.result.refused.push({ path: entryPath, reason });
    return undefined;
  }

  private report(): void {
    this.reportedBytes = this.doneBytes;
    this.onTransfer?.({ kind: 'collect', doneBytes: this.doneBytes, doneFiles: this.result.fileCount });
  }
}
