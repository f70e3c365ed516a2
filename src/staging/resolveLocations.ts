import { constants } from 'node:fs';
import { access, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { glob, isDynamicPattern } from 'tinyglobby';
import { usageError } from '../errors.js';
import { gcsContainerPath, gcsHostPath, GCS_MOUNT, isGcsUri, parseGcsUri } from '../spec/gcsUri.js';
import type { LocationRef } from '../spec/runJobSpec.js';
import { LOCAL_INPUT_DIR, LOCAL_MODEL_DIR, LOCAL_OUTPUT_DIR } from './containerLayout.js';

/** One host file and where it appears in the container. */
export interface StagedFile {
  source: string;
  hostPath: string;
  containerPath: string;
  sizeBytes: number;
}

/** Files copied in one tar stream: all under `hostRoot`, landing under `containerDir`. */
export interface StagingGroup {
  hostRoot: string;
  containerDir: string;
  /** Paths relative to hostRoot (POSIX separators). */
  entries: string[];
}

export interface ResolvedInputs {
  files: StagedFile[];
  groups: StagingGroup[];
  totalBytes: number;
  usesGcs: boolean;
}

interface Candidate {
  source: string;
  field: string;
  hostRoot: string;
  relative: string;
  containerDir: string;
}

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
      for (const file of await expand(ref, hostPath, `mapped from ${ref.text} with --gcs-root ${gcsRoot}`)) {
        candidates.push({ source: ref.text, field: ref.field, hostRoot: gcsRoot, relative: toPosix(path.relative(gcsRoot, file)), containerDir: GCS_MOUNT });
      }
    } else {
      const hostPath = path.resolve(ref.baseDir, ref.text);
      // A file or a directory keeps its own name under the input dir; a glob keeps paths below its static part.
      const base = isDynamicPattern(toPosix(ref.text)) ? globBase(hostPath) : path.dirname(hostPath);
      for (const file of await expand(ref, hostPath)) {
        candidates.push({ source: ref.text, field: ref.field, hostRoot: base, relative: toPosix(path.relative(base, file)), containerDir: containerDirForLocal });
      }
    }
  }

  const byContainerPath = new Map<string, StagedFile>();
  const groups = new Map<string, StagingGroup>();
  let totalBytes = 0;
  for (const c of candidates) {
    const hostPath = path.join(c.hostRoot, c.relative);
    const containerPath = path.posix.join(c.containerDir, c.relative);
    const existing = byContainerPath.get(containerPath);
    if (existing) {
      if (existing.hostPath === hostPath) continue; // named twice: stage once
      throw usageError(
        'INPUT_COLLISION',
        `${c.field}: "${hostPath}" and "${existing.hostPath}" would both be staged at ${containerPath}.`,
        'Rename one of them, or pass their common parent directory as the input instead.',
      );
    }
    try {
      await access(hostPath, constants.R_OK);
    } catch {
      throw usageError('INPUT_UNREADABLE', `${c.field}: cannot read "${hostPath}".`, 'Check the file permissions.');
    }
    const sizeBytes = (await stat(hostPath)).size;
    totalBytes += sizeBytes;
    byContainerPath.set(containerPath, { source: c.source, hostPath, containerPath, sizeBytes });
    const key = `${c.hostRoot}\0${c.containerDir}`;
    const group = groups.get(key) ?? { hostRoot: c.hostRoot, containerDir: c.containerDir, entries: [] };
    group.entries.push(c.relative);
    groups.set(key, group);
  }
  return { files: [...byContainerPath.values()], groups: [...groups.values()], totalBytes, usesGcs };
}

/** A model directory (local or gs://), staged whole. AIP_MODEL_DIR is the gs:// URI or the local container path. */
export async function resolveModelDir(ref: LocationRef, gcsRoot: string): Promise<ResolvedInputs & { envValue: string }> {
  if (isGcsUri(ref.text)) {
    const resolved = await resolveInputs([ref], gcsRoot);
    return { ...resolved, envValue: ref.text.endsWith('/') ? ref.text : `${ref.text}/` };
  }
  const hostPath = path.resolve(ref.baseDir, ref.text);
  if (!(await isDirectory(hostPath))) {
    throw usageError('MODEL_DIR_NOT_FOUND', `${ref.field}: "${hostPath}" is not a directory.`, 'Pass the directory that holds the model artifacts.');
  }
  const files = await listFiles(hostPath);
  if (files.length === 0) throw usageError('MODEL_DIR_EMPTY', `${ref.field}: "${hostPath}" holds no files.`, 'Pass the directory that holds the model artifacts.');
  const group: StagingGroup = { hostRoot: hostPath, containerDir: LOCAL_MODEL_DIR, entries: files.map((f) => toPosix(path.relative(hostPath, f))) };
  const staged = await Promise.all(
    files.map(async (f) => ({ source: ref.text, hostPath: f, containerPath: path.posix.join(LOCAL_MODEL_DIR, toPosix(path.relative(hostPath, f))), sizeBytes: (await stat(f)).size })),
  );
  return { files: staged, groups: [group], totalBytes: staged.reduce((n, f) => n + f.sizeBytes, 0), usesGcs: false, envValue: LOCAL_MODEL_DIR };
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
    const location = parseGcsUri(ref.text, ref.field);
    if (!location.objectPath) {
      throw usageError('INVALID_OUTPUT', `${ref.field}: "${ref.text}" names a whole bucket.`, 'Give a prefix inside the bucket, e.g. gs://BUCKET/predictions.');
    }
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

async function expand(ref: LocationRef, hostPath: string, mappedNote?: string): Promise<string[]> {
  const note = mappedNote ? ` (${mappedNote})` : '';
  if (isDynamicPattern(toPosix(hostPath))) {
    const matches = await glob(toPosix(hostPath), { absolute: true, onlyFiles: true, dot: false, followSymbolicLinks: true, expandDirectories: false });
    if (matches.length === 0) {
      throw usageError('INPUT_NO_MATCH', `${ref.field}: "${ref.text}" matches no files${note}.`, 'Check the pattern, or pass a file or directory.');
    }
    return matches.map((m) => path.resolve(m)).sort();
  }
  let info;
  try {
    info = await stat(hostPath);
  } catch {
    throw usageError('INPUT_NOT_FOUND', `${ref.field}: "${ref.text}" does not exist${note || ` (looked at ${hostPath})`}.`, 'Pass an existing file, directory or glob.');
  }
  if (info.isDirectory()) {
    const files = await listFiles(hostPath);
    if (files.length === 0) throw usageError('INPUT_EMPTY_DIR', `${ref.field}: directory "${ref.text}" holds no files${note}.`, 'Put the input files in it, or pass the files themselves.');
    return files;
  }
  if (!info.isFile()) throw usageError('INPUT_NOT_A_FILE', `${ref.field}: "${ref.text}" is not a regular file${note}.`, 'Pass regular files, directories or globs.');
  return [hostPath];
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  for (const entry of entries) {
    const full = path.join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name);
    if (entry.isFile()) out.push(full);
    else if (entry.isSymbolicLink()) {
      const target = await stat(full).catch(() => undefined);
      if (target?.isFile()) out.push(full);
    }
  }
  return out.sort();
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
