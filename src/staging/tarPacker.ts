import fs from 'node:fs';
import path from 'node:path';
import { usageError, VbeError } from '../errors.js';
import { Semaphore, SyncWhileFast } from './bounded.js';
import type { StagingEntry, StagingGroup } from './resolveLocations.js';
import { BLOCK, headerBytes, padded, writeHeader } from './tarHeader.js';

/** Output buffers are about this big; files over it are read in pieces of this size. */
const CHUNK_BYTES = 1024 * 1024;
/** Bytes read ahead of what the engine has taken (memory stays bounded whatever the input size). */
const READ_AHEAD_BYTES = 4 * 1024 * 1024;
/** Files planned ahead (many tiny files make small batches in bytes but many reads). */
const READ_AHEAD_FILES = 1024;
/** Reads in flight (each opens, reads and closes one file or one piece of a big one). */
const READ_CONCURRENCY = 12;

export interface PackProgress {
  (doneBytes: number, doneFiles: number): void;
}

/** A run of the archive: its bytes are final once `ready` resolves. */
interface Part {
  buffer: Buffer;
  ready: Promise<unknown>;
  dataBytes: number;
  /** Files whose last byte is in this part. */
  files: number;
}

interface Cursor {
  group: number;
  entry: number;
  /** Next byte to read of a big file being split into pieces. */
  offset: number;
}

/**
 * The tar archive of the staged files, as ~1 MiB buffers: the empty world-writable directories
 * first, then every file of every group under its container directory, root-owned, 0644 plus the
 * file's execute bits, with the size and mtime resolution took. No directory entries for the
 * files' parents (the engine creates those root-owned, 0755), exactly as tar-fs packed them.
 *
 * Small files are read whole straight into their place in the output buffer: synchronously while
 * that is fast (see SyncWhileFast: for 100,000 files of 1 KiB it takes a fifth of the CPU of the
 * thread pool, CPU the engine needs to unpack them), else READ_CONCURRENCY at once. Files over
 * CHUNK_BYTES are read in pieces of that size, each into its own buffer, READ_CONCURRENCY at once.
 * At most READ_AHEAD_BYTES (and READ_AHEAD_FILES) are read ahead of the consumer. A file that cannot be read, or that shrank since
 * it was listed, fails the archive with a message naming it (a file that grew is cut at its listed
 * size, as tar-fs did).
 */
export async function* packStaging(groups: readonly StagingGroup[], writableDirs: readonly string[] = [], onProgress?: PackProgress): AsyncGenerator<Buffer> {
  const head = directoryEntries(writableDirs);
  if (head.length > 0) yield head;

  const reads = new Semaphore(READ_CONCURRENCY);
  const pacer = new SyncWhileFast();
  const cursor: Cursor = { group: 0, entry: 0, offset: 0 };
  const queue: Part[] = [];
  let queueHead = 0;
  let queuedBytes = 0;
  let queuedFiles = 0;
  let doneBytes = 0;
  let doneFiles = 0;
  try {
    for (;;) {
      const due = pacer.yieldIfDue();
      if (due) await due;
      // Plan ahead while there is room; while reading synchronously, only within the time slice
      // (past it, hand what is ready to the engine, yield, and read on in the next slice).
      while (queuedBytes < READ_AHEAD_BYTES && queuedFiles < READ_AHEAD_FILES && (queueHead === queue.length || !pacer.fast || pacer.inSlice())) {
        const part = nextPart(groups, cursor, reads, pacer);
        if (!part) break;
        part.ready.catch(() => undefined); // awaited in order below; never an unhandled rejection
        queue.push(part);
        queuedBytes += part.buffer.length;
        queuedFiles += part.files;
      }
      if (queueHead === queue.length) break;
      const part = queue[queueHead]!;
      queue[queueHead++] = undefined as unknown as Part;
      if (queueHead > 1024 && queueHead * 2 > queue.length) {
        queue.splice(0, queueHead);
        queueHead = 0;
      }
      await part.ready;
      queuedBytes -= part.buffer.length;
      queuedFiles -= part.files;
      yield part.buffer;
      doneBytes += part.dataBytes;
      doneFiles += part.files;
      onProgress?.(doneBytes, doneFiles);
    }
  } finally {
    // Stopped early (the engine failed, a file could not be read): let the reads finish, so no
    // file handle outlives the archive.
    await Promise.allSettled(queue.slice(queueHead).map((p) => p.ready));
  }
  yield Buffer.alloc(2 * BLOCK); // end of archive
}

/** The next part of the archive after `cursor` (advanced past it), or undefined at the end. */
function nextPart(groups: readonly StagingGroup[], cursor: Cursor, reads: Semaphore, pacer: SyncWhileFast): Part | undefined {
  let group = groups[cursor.group];
  while (group && cursor.entry >= group.entries.length) {
    group = groups[++cursor.group];
    cursor.entry = 0;
  }
  if (!group) return undefined;
  const prefix = group.containerDir.replace(/^\/+/, '');
  const first = group.entries[cursor.entry]!;

  if (first.size > CHUNK_BYTES) {
    // A big file: one piece per part, the header before the first, the padding after the last.
    const name = path.posix.join(prefix, first.relative);
    const start = cursor.offset;
    const length = Math.min(CHUNK_BYTES, first.size - start);
    const last = start + length === first.size;
    const before = start === 0 ? headerBytes(name) : 0;
    const after = last ? padded(first.size) - first.size : 0;
    const buffer = Buffer.allocUnsafe(before + length + after);
    if (before) writeHeader(buffer, 0, entryHeader(name, first, group.fileMode));
    if (after) buffer.fill(0, before + length);
    const hostPath = path.join(group.hostRoot, first.relative);
    const ready = reads.run(() => readInto(hostPath, buffer, before, length, start, first.size, group.field));
    if (last) {
      cursor.entry++;
      cursor.offset = 0;
    } else cursor.offset += length;
    return { buffer, ready, dataBytes: length, files: last ? 1 : 0 };
  }

  // Small files: as many as fit in one buffer (at least one), each read whole into its place.
  const batch: Array<{ entry: StagingEntry; name: string }> = [];
  let bytes = 0;
  for (let i = cursor.entry; i < group.entries.length; i++) {
    const entry = group.entries[i]!;
    if (entry.size > CHUNK_BYTES) break;
    const name = path.posix.join(prefix, entry.relative);
    const size = headerBytes(name) + padded(entry.size);
    if (batch.length > 0 && bytes + size > CHUNK_BYTES) break;
    batch.push({ entry, name });
    bytes += size;
  }
  cursor.entry += batch.length;
  // Synchronous reads for the whole batch when it starts within the slice (at most ~1 MiB of reads).
  const synchronous = pacer.inSlice();
  const buffer = Buffer.allocUnsafe(bytes);
  const pending: Array<Promise<void>> = [];
  let offset = 0;
  let dataBytes = 0;
  for (const { entry, name } of batch) {
    offset = writeHeader(buffer, offset, entryHeader(name, entry, group.fileMode));
    const end = offset + padded(entry.size);
    buffer.fill(0, offset + entry.size, end);
    const hostPath = path.join(group.hostRoot, entry.relative);
    const at = offset;
    if (synchronous && pacer.fast) {
      try {
        pacer.run(() => readIntoSync(hostPath, buffer, at, entry.size, group.field));
      } catch (error) {
        pending.push(Promise.reject(error));
      }
    } else pending.push(reads.run(() => readInto(hostPath, buffer, at, entry.size, 0, entry.size, group.field)));
    offset = end;
    dataBytes += entry.size;
  }
  return { buffer, ready: Promise.all(pending), dataBytes, files: batch.length };
}

function entryHeader(name: string, entry: StagingEntry, fileMode = 0o644) {
  return { name, type: 'file' as const, mode: fileMode | (entry.mode & 0o111), size: entry.size, mtime: entry.mtime };
}

/** readInto for a whole small file, synchronously (see SyncWhileFast). */
function readIntoSync(hostPath: string, buffer: Buffer, at: number, length: number, field: string | undefined): void {
  let fd: number;
  try {
    fd = fs.openSync(hostPath, 'r');
  } catch (error) {
    throw unreadable(hostPath, field, error);
  }
  try {
    let done = 0;
    while (done < length) {
      let bytesRead: number;
      try {
        bytesRead = fs.readSync(fd, buffer, at + done, length - done, done);
      } catch (error) {
        throw unreadable(hostPath, field, error);
      }
      if (bytesRead === 0) throw changed(hostPath, field, length, done);
      done += bytesRead;
    }
  } finally {
    fs.closeSync(fd);
  }
}

function unreadable(hostPath: string, field: string | undefined, error: unknown): VbeError {
  const label = field ? `${field}: ` : '';
  return usageError('INPUT_UNREADABLE', `${label}cannot read "${hostPath}" while staging it (${(error as NodeJS.ErrnoException).code ?? String(error)}).`, 'Check the file permissions.');
}

function changed(hostPath: string, field: string | undefined, listedSize: number, endsAt: number): VbeError {
  const label = field ? `${field}: ` : '';
  return usageError(
    'INPUT_CHANGED',
    `${label}"${hostPath}" changed while it was being staged: it was listed with ${listedSize} bytes and now ends at ${endsAt}.`,
    'Do not modify the inputs while the job is staging them.',
  );
}

/**
 * Reads `length` bytes at `position` of the file into buffer[at...]; fails naming the file. The
 * callback API with a plain descriptor: no FileHandle (whose native side lives until a GC) and one
 * promise per file.
 */
function readInto(hostPath: string, buffer: Buffer, at: number, length: number, position: number, listedSize: number, field: string | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    fs.open(hostPath, 'r', (openError, fd) => {
      if (openError) return reject(unreadable(hostPath, field, openError));
      let done = 0;
      const finish = (error?: VbeError) => fs.close(fd, () => (error ? reject(error) : resolve()));
      const next = () => {
        if (done >= length) return finish();
        fs.read(fd, buffer, at + done, length - done, position + done, (readError, bytesRead) => {
          if (readError) return finish(unreadable(hostPath, field, readError));
          if (bytesRead === 0) return finish(changed(hostPath, field, listedSize, position + done));
          done += bytesRead;
          next();
        });
      };
      next();
    });
  });
}

/** Directory entries for each level of each writable dir: 0755 on the way, 0777 at the end. */
function directoryEntries(writableDirs: readonly string[]): Buffer {
  // Each directory once, parents first; one that is itself writable stays 0777 when it is also another's parent.
  const modes = new Map<string, number>();
  for (const dir of writableDirs) {
    const parts = dir.replace(/^\/+|\/+$/g, '').split('/');
    for (let i = 1; i <= parts.length; i++) {
      const name = `${parts.slice(0, i).join('/')}/`;
      modes.set(name, i === parts.length ? 0o777 : (modes.get(name) ?? 0o755));
    }
  }
  const names = [...modes].map(([name, mode]) => ({ name, mode }));
  const buffer = Buffer.alloc(names.reduce((n, d) => n + headerBytes(d.name), 0));
  const mtime = Math.floor(Date.now() / 1000);
  let offset = 0;
  for (const d of names) offset = writeHeader(buffer, offset, { name: d.name, type: 'directory', mode: d.mode, size: 0, mtime });
  return buffer;
}
