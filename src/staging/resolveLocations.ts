import { createRequire } from 'node:module';
import fs, { constants, type Stats } from 'node:fs';
import { access, opendir, stat } from 'node:fs/promises';
import path from 'node:path';
import { usageError, VbeError } from '../errors.js';
import { gcsContainerPath, gcsHostPath, GCS_MOUNT, isGcsUri, parseGcsUri } from '../spec/gcsUri.js';
import type { LocationRef } from '../spec/runJobSpec.js';
import { forEachBounded, Semaphore, SyncWhileFast } from './bounded.js';
import { LOCAL_INPUT_DIR, LOCAL_MODEL_DIR, LOCAL_OUTPUT_DIR } from './containerLayout.js';

/** Characters without which a path cannot be a glob pattern (tinyglobby's syntax: picomatch's). */
const GLOB_CHARACTERS = /[*?[\]{}()!+@\\]/;
let tinyglobby: typeof import('tinyglobby') | undefined;
/** tinyglobby (with picomatch: ~20-30 ms to load), loaded only for a path that may be a pattern. */
const globLibrary = () => (tinyglobby ??= createRequire(import.meta.url)('tinyglobby') as typeof import('tinyglobby'));

function isDynamicPattern(text: string): boolean {
  return GLOB_CHARACTERS.test(text) && globLibrary().isDynamicPattern(text);
}

/** One input file and where it appears in the container (inputs only: AIP_BATCH_INPUT_URIS lists them). */
export interface StagedFile {
  source: string;
  hostPath: string;
  containerPath: string;
  sizeBytes: number;
}

/**
 * One file to stage, as resolution saw it: the packer reuses this stat instead of taking another.
 * Kept small on purpose: a model directory can hold hundreds of thousands of files.
 */
export interface StagingEntry {
  /** Path relative to the group's hostRoot (POSIX separators). */
  relative: string;
  size: number;
  /** st_mode (the packer keeps only the execute bits). */
  mode: number;
  /** Modification time, whole seconds since the epoch. */
  mtime: number;
}

/** Files copied in one tar stream: all under `hostRoot`, landing under `containerDir`. */
export interface StagingGroup {
  hostRoot: string;
  containerDir: string;
  entries: StagingEntry[];
  /** The flag or spec field the files came from, for error messages. */
  field?: string;
  /** Permission bits of the staged files (default 0644, plus the source's execute bits). */
  fileMode?: number;
}

export interface ResolvedInputs {
  /** Every input file (the job record and AIP_BATCH_INPUT_URIS need them). */
  files: StagedFile[];
  fileCount: number;
  groups: StagingGroup[];
  totalBytes: number;
  usesGcs: boolean;
}

/** A model directory, staged whole: counted, not listed file by file (nothing needs the list). */
export interface ResolvedModelDir {
  fileCount: number;
  groups: StagingGroup[];
  totalBytes: number;
  usesGcs: boolean;
  /** AIP_MODEL_DIR (storageUri): the gs:// URI, or the local container path. */
  envValue: string;
}

interface FileStat {
  size: number;
  mode: number;
  mtime: number;
}

interface Found {
  /** Absolute host path. */
  file: string;
  stat?: FileStat;
}

interface Candidate extends Found {
  source: string;
  field: string;
  hostRoot: string;
  relative: string;
  containerDir: string;
}

/** File-system requests in flight while resolving: 100,000 files never queue 100,000 requests. */
const FS_CONCURRENCY = 16;

/**
 * Expands inputs (files, directories, globs, gs:// URIs mapped under gcsRoot) to files, and
 * decides each one's container path: gs://b/p at /gcs/b/p, local files under /vbe/inputs.
 * Anything that names nothing is a usage error that names the input.
 */
export async function resolveInputs(refs: readonly LocationRef[], gcsRoot: string, containerDirForLocal = LOCAL_INPUT_DIR): Promise<ResolvedInputs> {
  const candidates: Candidate[] = [];
  let usesGcs = false;
  for (const ref of refs) {
    if (isGcsUri(ref.text)) {
      usesGcs = true;
      const location = parseGcsUri(ref.text, ref.field);
      const hostPath = gcsHostPath(location, gcsRoot);
      for (const found of await expand(ref, hostPath, `mapped from ${ref.text} with --gcs-root ${gcsRoot}`)) {
        candidates.push({ ...found, source: ref.text, field: ref.field, hostRoot: gcsRoot, relative: toPosix(path.relative(gcsRoot, found.file)), containerDir: GCS_MOUNT });
      }
    } else {
      const hostPath = path.resolve(ref.baseDir, ref.text);
      // A file or a directory keeps its own name under the input dir; a glob keeps paths below its static part.
      const base = isDynamicPattern(toPosix(ref.text)) ? globBase(hostPath) : path.dirname(hostPath);
      for (const found of await expand(ref, hostPath)) {
        candidates.push({ ...found, source: ref.text, field: ref.field, hostRoot: base, relative: toPosix(path.relative(base, found.file)), containerDir: containerDirForLocal });
      }
    }
  }

  // In order, as the files are listed: the first problem is the one reported. A collision stops
  // the list; the files before it are still checked, and an unreadable one is reported first.
  const byContainerPath = new Map<string, string>();
  const unique: Array<{ candidate: Candidate; hostPath: string; containerPath: string }> = [];
  let collision: Error | undefined;
  for (const c of candidates) {
    const hostPath = path.join(c.hostRoot, c.relative);
    const containerPath = path.posix.join(c.containerDir, c.relative);
    const existing = byContainerPath.get(containerPath);
    if (existing !== undefined) {
      if (existing === hostPath) continue; // named twice: stage once
      collision = usageError(
        'INPUT_COLLISION',
        `${c.field}: "${hostPath}" and "${existing}" would both be staged at ${containerPath}.`,
        'Rename one of them, or pass their common parent directory as the input instead.',
      );
      break;
    }
    byContainerPath.set(containerPath, hostPath);
    unique.push({ candidate: c, hostPath, containerPath });
  }
  byContainerPath.clear();

  const unreadable: boolean[] = [];
  await forEachBounded(unique, FS_CONCURRENCY, async (u, index) => {
    try {
      await access(u.hostPath, constants.R_OK);
      u.candidate.stat ??= fileStat(await stat(u.hostPath));
    } catch {
      unreadable[index] = true;
    }
  });
  const firstUnreadable = unreadable.findIndex((u) => u === true);
  if (firstUnreadable !== -1) {
    const u = unique[firstUnreadable]!;
    throw usageError('INPUT_UNREADABLE', `${u.candidate.field}: cannot read "${u.hostPath}".`, 'Check the file permissions.');
  }
  if (collision) throw collision;

  const files: StagedFile[] = [];
  const groups = new Map<string, StagingGroup>();
  let totalBytes = 0;
  for (const { candidate: c, hostPath, containerPath } of unique) {
    const info = c.stat!;
    totalBytes += info.size;
    files.push({ source: c.source, hostPath, containerPath, sizeBytes: info.size });
    const key = `${c.hostRoot}\0${c.containerDir}`;
    let group = groups.get(key);
    if (!group) {
      group = { hostRoot: c.hostRoot, containerDir: c.containerDir, entries: [], field: c.field };
      groups.set(key, group);
    }
    group.entries.push({ relative: c.relative, size: info.size, mode: info.mode, mtime: info.mtime });
  }
  return { files, fileCount: files.length, groups: [...groups.values()], totalBytes, usesGcs };
}

/** A model directory (local or gs://), staged whole. AIP_MODEL_DIR is the gs:// URI or the local container path. */
export async function resolveModelDir(ref: LocationRef, gcsRoot: string): Promise<ResolvedModelDir> {
  if (isGcsUri(ref.text)) {
    const { files: _files, ...resolved } = await resolveInputs([ref], gcsRoot);
    return { ...resolved, envValue: ref.text.endsWith('/') ? ref.text : `${ref.text}/` };
  }
  const hostPath = path.resolve(ref.baseDir, ref.text);
  if (!(await isDirectory(hostPath))) {
    throw usageError('MODEL_DIR_NOT_FOUND', `${ref.field}: "${hostPath}" is not a directory.`, 'Pass the directory that holds the model artifacts.');
  }
  const entries = await walkFiles(hostPath, ref.field);
  if (entries.length === 0) throw usageError('MODEL_DIR_EMPTY', `${ref.field}: "${hostPath}" holds no files.`, 'Pass the directory that holds the model artifacts.');
  let totalBytes = 0;
  for (const e of entries) totalBytes += e.size;
  return {
    fileCount: entries.length,
    groups: [{ hostRoot: hostPath, containerDir: LOCAL_MODEL_DIR, entries, field: ref.field }],
    totalBytes,
    usesGcs: false,
    envValue: LOCAL_MODEL_DIR,
  };
}

export interface ResolvedOutput {
  hostDir: string;
  containerDir: string;
  gcsUri?: string;
}

/** gs://b/p writes to <gcsRoot>/b/p (container /gcs/b/p); a local dir is written from /vbe/output. */
export async function resolveOutput(ref: LocationRef, gcsRoot: string): Promise<ResolvedOutput> {
  let resolved: ResolvedOutput;
  if (isGcsUri(ref.text)) {
    // A whole bucket is a valid output (a CustomJob's baseOutputDirectory can be gs://bucket).
    const location = parseGcsUri(ref.text, ref.field);
    resolved = { hostDir: gcsHostPath(location, gcsRoot), containerDir: gcsContainerPath(location), gcsUri: ref.text };
  } else {
    resolved = { hostDir: path.resolve(ref.baseDir, ref.text), containerDir: LOCAL_OUTPUT_DIR };
  }
  try {
    const info = await stat(resolved.hostDir);
    if (!info.isDirectory()) {
      throw usageError('INVALID_OUTPUT', `${ref.field}: "${resolved.hostDir}" exists and is not a directory.`, 'Pass a directory (it is created if missing).');
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return resolved;
}

async function expand(ref: LocationRef, hostPath: string, mappedNote?: string): Promise<Found[]> {
  const note = mappedNote ? ` (${mappedNote})` : '';
  if (isDynamicPattern(toPosix(hostPath))) {
    const matches = await globLibrary().glob(toPosix(hostPath), { absolute: true, onlyFiles: true, dot: false, followSymbolicLinks: true, expandDirectories: false });
    if (matches.length === 0) {
      throw usageError('INPUT_NO_MATCH', `${ref.field}: "${ref.text}" matches no files${note}.`, 'Check the pattern, or pass a file or directory.');
    }
    const files = matches.map((m) => path.resolve(m)).sort();
    // A name that is not UTF-8 comes back with U+FFFD in it and cannot be opened by that name: refused, never skipped.
    const broken = files.find((f) => f.includes('\uFFFD') && !fs.existsSync(f));
    if (broken) throw notUtf8(ref.field, broken);
    return files.map((file) => ({ file }));
  }
  let info;
  try {
    info = await stat(hostPath);
  } catch {
    throw usageError('INPUT_NOT_FOUND', `${ref.field}: "${ref.text}" does not exist${note || ` (looked at ${hostPath})`}.`, 'Pass an existing file, directory or glob.');
  }
  if (info.isDirectory()) {
    const entries = await walkFiles(hostPath, ref.field);
    if (entries.length === 0) throw usageError('INPUT_EMPTY_DIR', `${ref.field}: directory "${ref.text}" holds no files${note}.`, 'Put the input files in it, or pass the files themselves.');
    return entries.map((e) => ({ file: path.join(hostPath, e.relative), stat: { size: e.size, mode: e.mode, mtime: e.mtime } }));
  }
  if (!info.isFile()) throw usageError('INPUT_NOT_A_FILE', `${ref.field}: "${ref.text}" is not a regular file${note}.`, 'Pass regular files, directories or globs.');
  return [{ file: hostPath, stat: fileStat(info) }];
}

/**
 * The regular files under `root`, sorted by path, each with the stat the packer reuses. Symbolic
 * links to files count as the files they point to; links to directories are not followed, and
 * other kinds (FIFOs, sockets, devices) are skipped, as is a file gone since its directory was
 * read. Directories are read as streams (never a huge directory's entries all at once). Stats are
 * synchronous while they are fast (see SyncWhileFast), else FS_CONCURRENCY at once with callbacks.
 */
export async function walkFiles(root: string, field: string): Promise<StagingEntry[]> {
  const out: StagingEntry[] = [];
  const pacer = new SyncWhileFast();
  const stats = new Semaphore(FS_CONCURRENCY);
  const add = (relative: string, info: Stats | undefined) => {
    if (info?.isFile()) out.push({ relative, size: info.size, mode: info.mode, mtime: Math.floor(info.mtimeMs / 1000) });
  };
  const dirs: string[] = [''];
  while (dirs.length > 0) {
    const dir = dirs.pop()!;
    const abs = dir ? path.join(root, dir) : root;
    try {
      for await (const d of await opendir(abs, { bufferSize: 256 })) {
        const relative = dir ? `${dir}/${d.name}` : d.name;
        // A name that is not UTF-8 comes back with U+FFFD in it and cannot be found again by that name: refused, never skipped silently.
        if (d.name.includes('\uFFFD') && !fs.existsSync(path.join(root, relative))) throw notUtf8(field, path.join(abs, d.name));
        if (d.isDirectory()) dirs.push(relative);
        else if (d.isFile() || d.isSymbolicLink()) {
          const full = path.join(root, relative);
          if (pacer.fast) {
            const due = pacer.yieldIfDue();
            if (due) await due;
            add(relative, pacer.run(() => statIfAny(full)));
          } else {
            const waiting = stats.acquire();
            if (waiting) await waiting;
            fs.stat(full, (error, info) => {
              add(relative, error ? undefined : info);
              stats.release();
            });
          }
        }
      }
    } catch (error) {
      if (error instanceof VbeError) throw error;
      throw usageError('INPUT_UNREADABLE', `${field}: cannot read the directory "${abs}" (${(error as NodeJS.ErrnoException).code ?? String(error)}).`, 'Check the permissions.');
    } finally {
      await stats.idle();
    }
  }
  return out.sort((a, b) => (a.relative < b.relative ? -1 : a.relative > b.relative ? 1 : 0));
}

function statIfAny(file: string): Stats | undefined {
  try {
    return fs.statSync(file, { throwIfNoEntry: false });
  } catch {
    return undefined; // a link loop, a permission problem on the way: not a file to stage
  }
}

function fileStat(info: Stats): FileStat {
  return { size: info.size, mode: info.mode, mtime: Math.floor(info.mtimeMs / 1000) };
}

async function isDirectory(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isDirectory() ?? false;
}

function globBase(pattern: string): string {
  const parts = pattern.split(path.sep);
  const staticParts: string[] = [];
  for (const part of parts) {
    if (isDynamicPattern(part)) break;
    staticParts.push(part);
  }
  return staticParts.join(path.sep) || path.sep;
}

function toPosix(p: string): string {
  return p.split(path.sep).join('/');
}

function notUtf8(field: string, file: string): VbeError {
  return usageError(
    'INPUT_NAME_NOT_UTF8',
    `${field}: the name of "${file}" is not valid UTF-8 (shown with \uFFFD for the bytes that are not).`,
    'Rename the file: Cloud Storage object names, and so Vertex inputs, must be UTF-8.',
  );
}
