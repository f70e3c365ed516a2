import { createWriteStream } from 'node:fs';
import { lstat, mkdir, realpath, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';

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
const SMALL_FILE_BYTES = 4 * 1024 * 1024;
const REFUSED_LIMIT = 100;

/**
 * Extracts the tar stream of the container's output directory into `hostDir`, refusing anything
 * that could land outside it: absolute names, `..`, links, devices and FIFOs, and files over the
 * size cap. Files are streamed to disk one at a time (bounded memory). The archive's first path
 * component is the output directory's own name and is stripped.
 */
export async function collectOutputs(archive: Readable, hostDir: string, options: CollectOptions): Promise<CollectionResult> {
  await mkdir(hostDir, { recursive: true });
  const root = await realpath(hostDir);
  const result: CollectionResult = { hostDir, complete: true, fileCount: 0, totalBytes: 0, files: [], refused: [] };
  const listLimit = options.listLimit ?? LIST_LIMIT;
  const refuse = (entryPath: string, reason: string) => {
    if (result.refused.length < REFUSED_LIMIT) result.refused.push({ path: entryPath, reason });
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

  const inFlight = new WriteQueue(16);

  const extract = tarStream.extract();
  const feeding = pipeline(archive, extract);
  feeding.catch(() => undefined); // surfaced through the iterator below
  try {
    await extractEntries();
    await inFlight.drain();
  } catch (error) {
    await inFlight.settle();
    const code = (error as NodeJS.ErrnoException).code;
    if (!code || !LOCAL_WRITE_ERRORS.has(code)) throw error;
    // The host side failed (disk full...): keep what was copied whole, say what happened.
    archive.destroy();
    result.complete = false;
    result.error = `${code}: ${(error as Error).message}`;
    return result;
  }
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
          if (header.size > options.maxFileBytes) {
            refuse(relative, `file of ${header.size} bytes is over the ${options.maxFileBytes}-byte cap (--max-output-file-size)`);
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
          // Write to a temporary name and rename, so an interrupted copy never leaves a half file.
          const partial = `${target}.vbe-partial`;
          const mode = 0o644 | ((header.mode ?? 0) & 0o111);
          const writeSmall = async (data: Buffer) => {
            try {
              await writeFile(partial, data, { mode });
              await rename(partial, target);
            } catch (error) {
              await rm(partial, { force: true });
              throw error;
            }
          };
          if (header.size <= SMALL_FILE_BYTES) {
            // Small files: read whole (bounded), then write in the background, a few at a time, so
            // the disk's latency overlaps with reading the next entries.
            const chunks: Buffer[] = [];
            for await (const chunk of entry) chunks.push(chunk);
            await inFlight.add(() => writeSmall(Buffer.concat(chunks)));
          } else {
            await inFlight.drain();
            try {
              await pipeline(entry, createWriteStream(partial, { mode, highWaterMark: 1024 * 1024 }));
              await rename(partial, target);
            } catch (error) {
              await rm(partial, { force: true });
              throw error;
            }
          }
          result.fileCount += 1;
          result.totalBytes += header.size;
          if (result.files.length < listLimit) result.files.push({ path: relative, sizeBytes: header.size });
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

/** At most `limit` writes at once; the first failure is thrown by the next add() or drain(). */
class WriteQueue {
  private readonly running = new Set<Promise<void>>();
  private failure: unknown;

  constructor(private readonly limit: number) {}

  async add(task: () => Promise<void>): Promise<void> {
    if (this.failure) throw this.failure;
    while (this.running.size >= this.limit) await Promise.race(this.running);
    if (this.failure) throw this.failure;
    const run: Promise<void> = task()
      .catch((error: unknown) => {
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
