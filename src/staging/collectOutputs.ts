import fs from 'node:fs';
import { lstat, mkdir, realpath, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import type { TransferListener } from '../jobs/transferProgress.js';
import { SyncWhileFast } from './bounded.js';

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
}

type TarEntry = NodeJS.ReadableStream & AsyncIterable<Buffer> & { header: tarStream.Header };

const LIST_LIMIT = 1000;
const REFUSED_LIMIT = 100;
/** Files over this are streamed to disk in the background; smaller ones are read whole and written at once. */
const SMALL_FILE_BYTES = 64 * 1024;
/**
 * Big files being written at once (each: open, writes, close, rename, in the background). More
 * than a few makes the kernel's directory locks, not the disk, the limit.
 */
const FILES_IN_FLIGHT = 4;
/** Bytes read from the archive and not yet on disk; reading waits above this. */
const WRITE_BUFFER_BYTES = 16 * 1024 * 1024;
/** A file's chunks are written once this many are pending (and at its end). */
const WRITE_BATCH_BYTES = 256 * 1024;
/** A collect progress event at least every this many bytes within a big file. */
const PROGRESS_STEP_BYTES = 1024 * 1024;

/**
 * Extracts the tar stream of the container's output directory into `hostDir`, refusing anything
 * that could land outside it: absolute names, `..`, links, devices and FIFOs, and files over the
 * size cap. Each file is written under a temporary name and renamed when whole. Small files
 * (SMALL_FILE_BYTES) are read whole and written at once with synchronous calls while those are
 * fast (see SyncWhileFast: for 100,000 files of 1 KiB, several times less CPU than the thread
 * pool). Bigger ones are written in the background, FILES_IN_FLIGHT at once, in writes of
 * WRITE_BATCH_BYTES, while the archive is read on: reading waits for the disk only when
 * WRITE_BUFFER_BYTES are pending (bounded memory, whatever the file sizes). The archive's first
 * path component is the output directory's own name and is stripped.
 *
 * `onTransfer` gets `{kind: 'collect'}` events as files are taken from the archive (per file, and
 * per MiB within a big one), then `{kind: 'done', of: 'collect'}`.
 */
export async function collectOutputs(archive: Readable, hostDir: string, options: CollectOptions, onTransfer?: TransferListener): Promise<CollectionResult> {
  try {
    return await extractArchive(archive, hostDir, options, onTransfer);
  } finally {
    onTransfer?.({ kind: 'done', of: 'collect' });
  }
}

async function extractArchive(archive: Readable, hostDir: string, options: CollectOptions, onTransfer: TransferListener | undefined): Promise<CollectionResult> {
  await mkdir(hostDir, { recursive: true });
  const root = await realpath(hostDir);
  const result: CollectionResult = { hostDir, complete: true, fileCount: 0, totalBytes: 0, files: [], refused: [] };
  const listLimit = options.listLimit ?? LIST_LIMIT;
  const refuse = (entryPath: string, reason: string) => {
    if (result.refused.length < REFUSED_LIMIT) result.refused.push({ path: entryPath, reason });
  };
  let doneBytes = 0;
  let reportedBytes = 0;
  const report = () => {
    reportedBytes = doneBytes;
    onTransfer?.({ kind: 'collect', doneBytes, doneFiles: result.fileCount });
  };

  // Directories known to resolve inside the output dir; true when this collection created them
  // (then they hold only what it wrote). Checked once each, not once per file.
  const verifiedDirs = new Map<string, boolean>([[root, false]]);
  const ensureDirectory = async (dir: string): Promise<boolean> => {
    if (verifiedDirs.has(dir)) return true;
    const existed = await lstat(dir).then(
      () => true,
      () => false,
    );
    await mkdir(dir, { recursive: true });
    if (!(await staysInside(root, dir))) return false;
    verifiedDirs.set(dir, !existed);
    return true;
  };

  const budget = new ByteBudget(WRITE_BUFFER_BYTES);
  const pacer = new SyncWhileFast();
  const writes = new WriteQueue(FILES_IN_FLIGHT);
  // Files counted when taken from the archive (in archive order) whose write then failed.
  const failed: CollectedFile[] = [];
  let current: FileWriter | undefined;

  const extract = tarStream.extract();
  const feeding = pipeline(archive, extract);
  feeding.catch(() => undefined); // surfaced through the iterator below
  try {
    await extractEntries();
    await writes.drain();
  } catch (error) {
    await current?.abort();
    await writes.settle();
    const code = (error as NodeJS.ErrnoException).code;
    if (!code || !LOCAL_WRITE_ERRORS.has(code)) throw error;
    // The host side failed (disk full...): keep what was copied whole, say what happened.
    archive.destroy();
    for (const file of failed) {
      result.fileCount -= 1;
      result.totalBytes -= file.sizeBytes;
    }
    if (failed.length > 0) result.files = result.files.filter((f) => !failed.includes(f));
    result.complete = false;
    result.error = `${code}: ${(error as Error).message}`;
    return result;
  }
  if (reportedBytes !== doneBytes || doneBytes === 0) report();
  return result;

  async function extractEntries(): Promise<void> {
    for await (const entry of extract as AsyncIterable<TarEntry>) {
      const header = entry.header;
      const relative = stripFirstComponent(header.name);
      const drain = async () => {
        for await (const _chunk of entry) {
          // discard
        }
      };
      if (relative === '') {
        await drain();
        continue;
      }
      const problem = unsafeName(relative) ?? reservedName(relative, options.reserved ?? []);
      if (problem) {
        refuse(relative, problem);
        await drain();
        continue;
      }
      const target = path.join(root, ...relative.split('/'));
      switch (header.type) {
        case 'directory':
          if (!(await ensureDirectory(target))) refuse(relative, 'directory resolves outside the output directory');
          await drain();
          break;
        case 'file':
        case 'contiguous-file': {
          const size = header.size ?? 0;
          if (size > options.maxFileBytes) {
            refuse(relative, `file of ${size} bytes is over the ${options.maxFileBytes}-byte cap (--max-output-file-size)`);
            await drain();
            break;
          }
          const parent = path.dirname(target);
          if (!(await ensureDirectory(parent))) {
            refuse(relative, 'parent directory resolves outside the output directory');
            await drain();
            break;
          }
          // In a directory this collection created, nothing can be in the way; elsewhere, look first.
          const existing = verifiedDirs.get(parent) ? undefined : await lstat(target).catch(() => undefined);
          if (existing && !existing.isFile()) {
            refuse(relative, 'a non-file already exists at this path in the output directory');
            await drain();
            break;
          }
          // Written under a temporary name and renamed, so an interrupted copy never leaves a half file.
          const partial = `${target}.vbe-partial`;
          const mode = 0o644 | ((header.mode ?? 0) & 0o111);
          const record: CollectedFile = { path: relative, sizeBytes: size };
          if (size <= SMALL_FILE_BYTES && pacer.fast) {
            // A small file: read whole, written at once with synchronous calls (see SyncWhileFast).
            const chunks: Buffer[] = [];
            for await (const chunk of entry) chunks.push(chunk);
            const due = pacer.yieldIfDue();
            if (due) await due;
            pacer.run(() => writeSmallFileSync(partial, target, mode, chunks));
            doneBytes += size;
            result.fileCount += 1;
            result.totalBytes += size;
            if (result.files.length < listLimit) result.files.push(record);
            if (onTransfer) report();
            break;
          }
          await writes.slot();
          const writer = new FileWriter(partial, target, mode, budget);
          current = writer;
          for await (const chunk of entry) {
            writer.push(chunk);
            const waiting = budget.take(chunk.length);
            if (waiting) await waiting;
            writer.check();
            doneBytes += chunk.length;
            if (doneBytes - reportedBytes >= PROGRESS_STEP_BYTES) report();
          }
          current = undefined;
          writes.add(writer.finish(), () => failed.push(record));
          result.fileCount += 1;
          result.totalBytes += size;
          if (result.files.length < listLimit) result.files.push(record);
          if (onTransfer && size < PROGRESS_STEP_BYTES) report();
          break;
        }
        case 'symlink':
          refuse(relative, `symbolic link to "${header.linkname}" (links are not copied out)`);
          await drain();
          break;
        case 'link':
          refuse(relative, `hard link to "${header.linkname}" (links are not copied out)`);
          await drain();
          break;
        default:
          refuse(relative, `${header.type} (only regular files and directories are copied out)`);
          await drain();
      }
    }
    await feeding;
  }
}

/** Bytes handed to writers and not yet written: take() returns a promise to wait on when over the limit. */
class ByteBudget {
  private used = 0;
  private waiters: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  take(bytes: number): Promise<void> | undefined {
    this.used += bytes;
    if (this.used <= this.limit) return undefined;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(bytes: number): void {
    this.used -= bytes;
    if (this.used <= this.limit && this.waiters.length > 0) {
      const waiters = this.waiters;
      this.waiters = [];
      for (const wake of waiters) wake();
    }
  }
}

/**
 * One output file: opened at once, its chunks written in order (all that are pending in one
 * writev) while more are read, then closed and renamed over the target. On any failure the
 * temporary file is removed. Plain descriptors and the callback API: 100,000 small outputs leave
 * no FileHandle objects waiting for a GC.
 */
class FileWriter {
  private readonly fd: Promise<number>;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flushing: Promise<void> | undefined;
  private failure: unknown;
  private closed = false;

  constructor(
    private readonly partial: string,
    private readonly target: string,
    mode: number,
    private readonly budget: ByteBudget,
  ) {
    this.fd = new Promise<number>((resolve, reject) => fs.open(partial, 'w', mode, (error, fd) => (error ? reject(error) : resolve(fd))));
    this.fd.catch((error: unknown) => {
      this.failure ??= error;
    });
  }

  /** Queues a chunk; the caller takes its bytes from the budget (released once written, or on failure). */
  push(chunk: Buffer): void {
    if (this.failure) {
      this.budget.release(chunk.length);
      return;
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    // Few, large writes: each is a trip to the thread pool, and the archive arrives in ~64 KiB chunks.
    if (!this.flushing && this.pendingBytes >= WRITE_BATCH_BYTES) this.flushing = this.flush();
  }

  /** Throws the write failure, if there was one (stops reading the archive early). */
  check(): void {
    if (this.failure) throw this.failure;
  }

  async finish(): Promise<void> {
    try {
      await this.flushing;
      if (this.pending.length > 0) await this.flush(true);
      this.check();
      await this.close();
      await rename(this.partial, this.target);
    } catch (error) {
      await this.cleanup();
      throw error;
    }
  }

  /** Stops: waits for the write in progress, closes and removes the temporary file. */
  async abort(): Promise<void> {
    await this.flushing;
    await this.cleanup();
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const fd = await this.fd;
    await new Promise<void>((resolve, reject) => fs.close(fd, (error) => (error ? reject(error) : resolve())));
  }

  private async cleanup(): Promise<void> {
    this.budget.release(this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    await this.close().catch(() => undefined);
    await rm(this.partial, { force: true }).catch(() => undefined);
  }

  private async flush(final = false): Promise<void> {
    try {
      const fd = await this.fd;
      while (this.pending.length > 0 && !this.failure && (final || this.pendingBytes >= WRITE_BATCH_BYTES)) {
        const chunks = this.pending;
        const bytes = this.pendingBytes;
        this.pending = [];
        this.pendingBytes = 0;
        try {
          await writeAll(fd, chunks, bytes);
        } finally {
          this.budget.release(bytes);
        }
      }
    } catch (error) {
      this.failure ??= error;
    } finally {
      if (this.failure) {
        // Nothing more will be written: give the budget back, so a reader waiting on it wakes up and sees the failure.
        this.budget.release(this.pendingBytes);
        this.pending = [];
        this.pendingBytes = 0;
      }
      this.flushing = undefined;
    }
  }
}

/** A small file, written under its temporary name and renamed, with synchronous calls; nothing is left behind on failure. */
function writeSmallFileSync(partial: string, target: string, mode: number, chunks: Buffer[]): void {
  const fd = fs.openSync(partial, 'w', mode);
  let open = true;
  try {
    let rest = chunks;
    while (rest.length > 0) {
      let written = fs.writevSync(fd, rest);
      if (written === 0 && rest.some((c) => c.length > 0)) throw Object.assign(new Error(`EIO: nothing written to ${partial}`), { code: 'EIO' });
      let i = 0;
      while (i < rest.length && written >= rest[i]!.length) written -= rest[i++]!.length;
      rest = i < rest.length ? [rest[i]!.subarray(written), ...rest.slice(i + 1)] : [];
    }
    open = false;
    fs.closeSync(fd);
    fs.renameSync(partial, target);
  } catch (error) {
    if (open) fs.closeSync(fd);
    fs.rmSync(partial, { force: true });
    throw error;
  }
}

/** writev until every byte is written (a regular file can take fewer, e.g. just before ENOSPC). */
async function writeAll(fd: number, chunks: Buffer[], bytes: number): Promise<void> {
  let rest = chunks;
  let left = bytes;
  while (left > 0) {
    const written = await new Promise<number>((resolve, reject) => fs.writev(fd, rest, (error, n) => (error ? reject(error) : resolve(n))));
    left -= written;
    if (left <= 0) return;
    let skip = written;
    let i = 0;
    while (skip >= rest[i]!.length) skip -= rest[i++]!.length;
    rest = [rest[i]!.subarray(skip), ...rest.slice(i + 1)];
  }
}

/** At most `limit` file writes at once; the first failure is thrown by the next slot() or drain(). */
class WriteQueue {
  private readonly running = new Set<Promise<void>>();
  private failure: unknown;

  constructor(private readonly limit: number) {}

  /** Waits until one more write can start. */
  async slot(): Promise<void> {
    if (this.failure) throw this.failure;
    while (this.running.size >= this.limit) await Promise.race(this.running);
    if (this.failure) throw this.failure;
  }

  add(write: Promise<void>, onFailure: () => void): void {
    const run: Promise<void> = write
      .catch((error: unknown) => {
        onFailure();
        this.failure ??= error;
      })
      .finally(() => this.running.delete(run));
    this.running.add(run);
  }

  async drain(): Promise<void> {
    await Promise.all(this.running);
    if (this.failure) throw this.failure;
  }

  /** Waits for what is running, ignoring failures (the caller is already handling one). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.running);
  }
}

const LOCAL_WRITE_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'EACCES', 'EPERM', 'EFBIG', 'EMFILE', 'ENFILE']);

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

async function staysInside(root: string, dir: string): Promise<boolean> {
  const real = await realpath(dir).catch(() => undefined);
  return real !== undefined && (real === root || real.startsWith(root + path.sep));
}
