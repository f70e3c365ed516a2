import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { dynamicRange, type ElfDependencies, isElf64LittleEndian, readElfDependencies } from './elfDependencies.js';

export interface MissingLibrary {
  library: string;
  /** The shared objects that need it (first few). */
  neededBy: string[];
}

export interface SharedLibraryReport {
  sharedObjects: number;
  /** ELF files whose dependencies could not be read (e.g. a string table beyond what is kept). */
  unchecked: string[];
  missing: MissingLibrary[];
}

const HEAD_LIMIT = 16 * 1024 * 1024;
const SHARED_OBJECT = /\.so(\.[0-9][0-9.]*)?$/;
const DEFAULT_DIRS = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib64', '/usr/lib64', '/lib', '/usr/lib', '/usr/local/lib'];

type Entry = NodeJS.ReadableStream & AsyncIterable<Buffer> & { header: tarStream.Header };

export interface DirectoryInfo {
  uid: number;
  gid: number;
  mode: number;
}

export interface ImageFilesystemReport {
  libraries: SharedLibraryReport;
  /** /etc/passwd, when the image has one. */
  passwd?: string;
  /** Owner and mode of the directories asked about (e.g. WORKDIR), when they exist. */
  directories: Map<string, DirectoryInfo>;
  /**
   * The text (first 64 KiB) of the files asked about that exist and are text (the entrypoint's
   * scripts), and of script files they name that come later in the archive.
   */
  scripts?: Map<string, string>;
}

const SCRIPT_TEXT_BYTES = 64 * 1024;
/** Paths a script names that may be scripts too (`. /app/prestart.sh`, `-c /gunicorn_conf.py`). */
const NAMED_SCRIPT = /(?:^|[\s"'=:(])(\/[\w./-]+\.(?:py|sh|bash|R|r|conf|cfg|toml))\b/g;

/**
 * Reads an image's exported filesystem (a tar stream) once, in bounded memory. Reports the
 * shared libraries its shared objects need that the image does not contain, resolving them as
 * the dynamic loader would: RPATH/RUNPATH ($ORIGIN), LD_LIBRARY_PATH, ld.so.conf and the
 * default directories, following symbolic links (merged /usr included). Also keeps /etc/passwd
 * and the owner and mode of `watchDirectories`.
 */
export async function scanImageFilesystem(archive: Readable, imageEnv: readonly string[], watchDirectories: readonly string[] = [], watchFiles: readonly string[] = []): Promise<ImageFilesystemReport> {
  const watched = new Set(watchDirectories.map((d) => `/${d.replace(/^\/+|\/+$/g, '')}`));
  const wantedScripts = new Set(watchFiles.map((f) => path.posix.normalize(f)));
  const scripts = new Map<string, string>();
  const directories = new Map<string, DirectoryInfo>();
  let passwd: string | undefined;
  const files = new Set<string>();
  const links = new Map<string, string>();
  const ldConf = new Map<string, string>();
  const elves: Array<{ file: string; deps: ElfDependencies }> = [];
  const unchecked: string[] = [];
  const extract = tarStream.extract();
  const feeding = pipeline(archive, extract);
  feeding.catch(() => undefined);
  for await (const entry of extract as AsyncIterable<Entry>) {
    const name = `/${entry.header.name.replace(/^\.?\/+/, '').replace(/\/+$/, '')}`;
    if (entry.header.type === 'symlink') {
      links.set(name, entry.header.linkname ?? '');
      files.add(name);
      if (wantedScripts.has(name)) wantedScripts.add(path.posix.resolve(path.posix.dirname(name), entry.header.linkname ?? ''));
    } else if (entry.header.type === 'file' || entry.header.type === 'contiguous-file' || entry.header.type === 'link') {
      files.add(name);
    }
    if (entry.header.type === 'directory' && watched.has(name)) directories.set(name, { uid: entry.header.uid ?? 0, gid: entry.header.gid ?? 0, mode: entry.header.mode ?? 0 });
    if (entry.header.type === 'file' && wantedScripts.has(name) && (entry.header.size ?? 0) <= 1024 * 1024) {
      const head = (await keepBytes(entry, entry.header.size ?? 0, true)).head.subarray(0, SCRIPT_TEXT_BYTES);
      if (!head.includes(0)) {
        const text = head.toString('utf8');
        scripts.set(name, text);
        for (const m of text.matchAll(NAMED_SCRIPT)) wantedScripts.add(path.posix.normalize(m[1]!));
      }
      continue;
    }
    if (entry.header.type === 'file' && name === '/etc/passwd') {
      passwd = (await keepBytes(entry, entry.header.size ?? 0, true)).head.toString('utf8');
      continue;
    }
    const isConf = entry.header.type === 'file' && (name === '/etc/ld.so.conf' || (name.startsWith('/etc/ld.so.conf.d/') && name.endsWith('.conf')));
    const isCandidate = entry.header.type === 'file' && SHARED_OBJECT.test(name);
    if (!isConf && !isCandidate) {
      for await (const _chunk of entry) {
        // skip
      }
      continue;
    }
    const kept = await keepBytes(entry, entry.header.size ?? 0, isConf);
    if (isConf) {
      ldConf.set(name, kept.head.toString('utf8'));
      continue;
    }
    if (!isElf64LittleEndian(kept.head)) continue;
    const deps = kept.dynamic ? readElfDependencies(kept.head, kept.dynamic, (offset, length) => (offset + length <= kept.head.length ? kept.head.subarray(offset, offset + length) : undefined)) : undefined;
    if (deps) elves.push({ file: name, deps });
    else unchecked.push(name);
  }
  await feeding;

  const resolve = (p: string) => resolveLinks(p, links);
  const exists = (p: string) => files.has(resolve(p));
  const confDirs = ldConfDirs(ldConf);
  const envDirs = (imageEnv.find((e) => e.startsWith('LD_LIBRARY_PATH=')) ?? '').slice('LD_LIBRARY_PATH='.length).split(':').filter(Boolean);
  const missing = new Map<string, string[]>();
  for (const { file, deps } of elves) {
    const origin = path.posix.dirname(file);
    const dirs = [...deps.searchPaths.map((d) => d.replace(/\$\{?ORIGIN\}?/g, origin)), ...envDirs, ...confDirs, ...DEFAULT_DIRS];
    for (const lib of deps.needed) {
      const found = lib.includes('/') ? exists(lib) : dirs.some((d) => exists(path.posix.join(d, lib)));
      if (!found) {
        const list = missing.get(lib) ?? [];
        if (list.length < 5) list.push(file);
        missing.set(lib, list);
      }
    }
  }
  const libraries: SharedLibraryReport = {
    sharedObjects: elves.length + unchecked.length,
    unchecked,
    missing: [...missing.entries()].map(([library, neededBy]) => ({ library, neededBy })).sort((a, b) => a.library.localeCompare(b.library)),
  };
  const report: ImageFilesystemReport = passwd === undefined ? { libraries, directories } : { libraries, passwd, directories };
  if (watchFiles.length) report.scripts = scripts;
  return report;
}

/** Keeps the first HEAD_LIMIT bytes, and the ELF dynamic segment wherever it lies. */
async function keepBytes(entry: Entry, size: number, whole: boolean): Promise<{ head: Buffer; dynamic?: Buffer }> {
  const headChunks: Buffer[] = [];
  let headLength = 0;
  const limit = whole ? Math.min(size, 1024 * 1024) : Math.min(size, HEAD_LIMIT);
  let range: { offset: number; length: number } | undefined;
  let rangeChecked = false;
  let dynamic: Buffer | undefined;
  let position = 0;
  for await (const chunk of entry) {
    if (headLength < limit) {
      const part = chunk.subarray(0, limit - headLength);
      headChunks.push(part);
      headLength += part.length;
    }
    if (!whole && !rangeChecked && headLength >= 4096) {
      rangeChecked = true;
      range = dynamicRange(Buffer.concat(headChunks));
      if (range && range.offset + range.length <= limit) range = undefined; // inside the head
      if (range) dynamic = Buffer.alloc(range.length);
    }
    if (range && dynamic) {
      const start = Math.max(range.offset, position);
      const end = Math.min(range.offset + range.length, position + chunk.length);
      if (start < end) chunk.copy(dynamic, start - range.offset, start - position, end - position);
    }
    position += chunk.length;
  }
  const head = Buffer.concat(headChunks);
  if (whole) return { head };
  if (!rangeChecked) range = dynamicRange(head);
  if (!dynamic) {
    const inHead = range ?? dynamicRange(head);
    if (inHead && inHead.offset + inHead.length <= head.length) dynamic = head.subarray(inHead.offset, inHead.offset + inHead.length);
  }
  return dynamic ? { head, dynamic } : { head };
}

/** Follows symbolic links in every component of an absolute path, as the kernel would. */
export function resolveLinks(p: string, links: ReadonlyMap<string, string>): string {
  let parts = p.split('/').filter(Boolean);
  let hops = 0;
  let current = '';
  for (let i = 0; i < parts.length; i++) {
    const candidate = `${current}/${parts[i]}`;
    const target = links.get(candidate);
    if (target !== undefined && hops < 40) {
      hops += 1;
      const rest = parts.slice(i + 1);
      const base = target.startsWith('/') ? target : path.posix.join(current || '/', target);
      parts = [...path.posix.normalize(base).split('/').filter(Boolean), ...rest];
      current = '';
      i = -1;
      continue;
    }
    current = candidate;
  }
  return current || '/';
}

function ldConfDirs(conf: ReadonlyMap<string, string>): string[] {
  const dirs: string[] = [];
  const visit = (text: string) => {
    for (const raw of text.split('\n')) {
      const line = raw.replace(/#.*/, '').trim();
      if (!line) continue;
      if (line.startsWith('include ')) {
        const pattern = line.slice('include '.length).trim();
        const dir = path.posix.dirname(pattern);
        for (const [name, body] of conf) if (path.posix.dirname(name) === dir && name !== '/etc/ld.so.conf') visit(body);
      } else if (line.startsWith('/')) dirs.push(line);
    }
  };
  const main = conf.get('/etc/ld.so.conf');
  if (main) visit(main);
  else for (const [name, body] of conf) if (name !== '/etc/ld.so.conf') visit(body);
  return [...new Set(dirs)];
}
