import { createWriteStream } from 'node:fs';
import { mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Storage } from '@google-cloud/storage';
import { emulatorError, usageError, VbeError } from '../errors.js';
import { parseGcsUri } from '../spec/gcsUri.js';
import { forEachBounded } from './bounded.js';

/**
 * Real Cloud Storage for `--gcs real`, through @google-cloud/storage (which honours
 * STORAGE_EMULATOR_HOST and Application Default Credentials). Objects are mirrored into a local
 * directory laid out as the local mapping is (gs://b/p at <mirror>/b/p), so staging, the container
 * view (/gcs/b/p) and collection stay the same; outputs are uploaded from the mirror afterwards.
 */
export interface TransferTally {
  objects: number;
  bytes: number;
}

const CONCURRENCY = 8;
const GLOB_CHARS = /[*?[\]{}]/;

/** Loads the client only when real Cloud Storage is asked for (it is large). */
export async function openCloudStorage(): Promise<Storage> {
  const { Storage } = await import('@google-cloud/storage');
  return new Storage({ retryOptions: { autoRetry: true, maxRetries: 3 } });
}

/** Where requests go: STORAGE_EMULATOR_HOST when set, else Google's endpoint. */
export function cloudStorageEndpoint(): string {
  return process.env.STORAGE_EMULATOR_HOST || 'https://storage.googleapis.com';
}

/**
 * Downloads what one gs:// input names (an object, a "directory" prefix, or a wildcard pattern as
 * Vertex's gcsSource.uris allows) into `<mirrorRoot>/<bucket>/<object>`. Naming nothing is a usage
 * error naming the field, as for a local input.
 */
export async function downloadGcsInput(storage: Storage, uri: string, field: string, mirrorRoot: string): Promise<TransferTally & { files: string[] }> {
  const { bucket, objectPath } = parseGcsUri(uri, field);
  const names = await matchingObjects(storage, bucket, objectPath, uri, field);
  if (names.length === 0) {
    throw usageError('INPUT_NOT_FOUND', `${field}: "${uri}" names no object in Cloud Storage (${cloudStorageEndpoint()}).`, 'Check the bucket and path (gcloud storage ls ' + uri + ').');
  }
  const tally = { objects: 0, bytes: 0, files: [] as string[] };
  await forEachBounded(names, CONCURRENCY, async (name) => {
    const destination = safeMirrorPath(mirrorRoot, bucket, name, uri, field);
    tally.files.push(destination);
    await mkdir(path.dirname(destination), { recursive: true });
    try {
      await pipeline(storage.bucket(bucket).file(name).createReadStream({ validation: 'crc32c' }), createWriteStream(destination));
    } catch (error) {
      throw storageError(error, `${field}: downloading gs://${bucket}/${name}`);
    }
    const { size } = await stat(destination); // read before adding: `tally.bytes += await ...` would lose updates
    tally.objects += 1;
    tally.bytes += size;
  });
  return tally;
}

/** Uploads every file under `localDir` (but the `skip` names at its top) to the gs:// prefix `uri`. */
export async function uploadDirectory(storage: Storage, localDir: string, uri: string, field: string, skip: readonly string[]): Promise<TransferTally> {
  const { bucket, objectPath } = parseGcsUri(uri, field);
  const prefix = objectPath && !objectPath.endsWith('/') ? `${objectPath}/` : objectPath;
  const files = (await readdir(localDir, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(localDir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .filter((relative) => !skip.includes(relative.split('/')[0]!))
    .sort();
  const tally: TransferTally = { objects: 0, bytes: 0 };
  await forEachBounded(files, CONCURRENCY, async (relative) => {
    const source = path.join(localDir, relative);
    try {
      await storage.bucket(bucket).upload(source, { destination: `${prefix}${relative}`, resumable: false, validation: 'crc32c' });
    } catch (error) {
      throw storageError(error, `${field}: uploading ${relative} to gs://${bucket}/${prefix}${relative}`);
    }
    const { size } = await stat(source);
    tally.objects += 1;
    tally.bytes += size;
  });
  return tally;
}

/** Uploads single files to their gs:// URIs (what a job wrote under /gcs outside its output prefix). */
export async function uploadFiles(storage: Storage, files: ReadonlyArray<{ hostPath: string; uri: string }>, field: string): Promise<TransferTally> {
  const tally: TransferTally = { objects: 0, bytes: 0 };
  await forEachBounded(files, CONCURRENCY, async (file) => {
    const { bucket, objectPath } = parseGcsUri(file.uri, field);
    try {
      await storage.bucket(bucket).upload(file.hostPath, { destination: objectPath, resumable: false, validation: 'crc32c' });
    } catch (error) {
      throw storageError(error, `${field}: uploading ${file.uri}`);
    }
    const { size } = await stat(file.hostPath);
    tally.objects += 1;
    tally.bytes += size;
  });
  return tally;
}

async function matchingObjects(storage: Storage, bucket: string, objectPath: string, uri: string, field: string): Promise<string[]> {
  const globAt = objectPath.search(GLOB_CHARS);
  const listPrefix = globAt === -1 ? objectPath : objectPath.slice(0, objectPath.lastIndexOf('/', globAt) + 1);
  let names: string[];
  try {
    const [files] = await storage.bucket(bucket).getFiles({ prefix: listPrefix, autoPaginate: true });
    names = files.map((f) => f.name).filter((name) => !name.endsWith('/')); // folder placeholders
  } catch (error) {
    throw storageError(error, `${field}: listing ${uri}`);
  }
  if (globAt !== -1) {
    const picomatch = (await import('picomatch')).default;
    const isMatch = picomatch(objectPath, { dot: true });
    return names.filter((name) => isMatch(name));
  }
  if (!objectPath) return names;
  const directory = objectPath.endsWith('/') ? objectPath : `${objectPath}/`;
  return names.filter((name) => name === objectPath || name.startsWith(directory));
}

function safeMirrorPath(mirrorRoot: string, bucket: string, name: string, uri: string, field: string): string {
  const target = path.resolve(mirrorRoot, bucket, ...name.split('/'));
  if (!target.startsWith(path.resolve(mirrorRoot, bucket) + path.sep)) {
    throw usageError('INVALID_GCS_OBJECT', `${field}: object "${name}" under ${uri} cannot be mirrored to a file (its name climbs out of the bucket).`, 'Rename the object or narrow the input.');
  }
  return target;
}

/** Maps a client error to a VbeError: refused access and missing buckets are the user's to fix. */
function storageError(error: unknown, what: string): VbeError {
  if (error instanceof VbeError) return error;
  const e = error as { code?: number | string; message?: string };
  const message = e.message ?? String(error);
  if (/default credentials/i.test(message)) {
    return usageError('GCS_NO_CREDENTIALS', `${what}: no Google credentials were found (${message.split('\n')[0]}).`, 'Run `gcloud auth application-default login`, set GOOGLE_APPLICATION_CREDENTIALS, or use the local mapping (--gcs local).');
  }
  if (e.code === 401 || e.code === 403) {
    return usageError('GCS_ACCESS_DENIED', `${what}: Cloud Storage refused access (HTTP ${e.code}: ${message}).`, 'Log in with `gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS), and check that the account may read the inputs and write the output prefix (roles/storage.objectAdmin).');
  }
  if (e.code === 404) {
    return usageError('INPUT_NOT_FOUND', `${what}: not found (${message}).`, 'Check the bucket name and path.');
  }
  return emulatorError('GCS_UNAVAILABLE', `${what}: Cloud Storage at ${cloudStorageEndpoint()} did not answer usefully (${message}).`, 'Check the network (or STORAGE_EMULATOR_HOST) and try again.', error);
}
