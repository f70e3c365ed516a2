import path from 'node:path';
import { usageError } from '../errors.js';

/** Where Cloud Storage appears inside a Vertex container (Cloud Storage FUSE convention). */
export const GCS_MOUNT = '/gcs';

export interface GcsLocation {
  bucket: string;
  /** Object path inside the bucket, without a leading slash; may be empty. */
  objectPath: string;
}

const bucketName = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;

export function isGcsUri(text: string): boolean {
  return text.startsWith('gs://');
}

/** Parses gs://bucket/path, naming `field` in the error when the URI is malformed. */
export function parseGcsUri(uri: string, field: string): GcsLocation {
  const rest = uri.slice('gs://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  const objectPath = slash === -1 ? '' : rest.slice(slash + 1).replace(/^\/+/, '');
  if (!bucket) {
    throw usageError('INVALID_GCS_URI', `${field}: "${uri}" has no bucket.`, 'Write Cloud Storage paths as gs://BUCKET/PATH.');
  }
  if (!bucketName.test(bucket)) {
    throw usageError(
      'INVALID_GCS_URI',
      `${field}: "${bucket}" in "${uri}" is not a valid bucket name.`,
      'Bucket names are 3-222 characters of lowercase letters, digits, dots, dashes and underscores.',
    );
  }
  if (objectPath.split('/').includes('..')) {
    throw usageError('INVALID_GCS_URI', `${field}: "${uri}" contains "..".`, 'Cloud Storage object paths cannot climb out of their bucket.');
  }
  return { bucket, objectPath };
}

/** gs://b/x/y -> <gcsRoot>/b/x/y on the host. */
export function gcsHostPath(location: GcsLocation, gcsRoot: string): string {
  return path.join(gcsRoot, location.bucket, location.objectPath);
}

/** gs://b/x/y -> /gcs/b/x/y inside the container. */
export function gcsContainerPath(location: GcsLocation): string {
  return path.posix.join(GCS_MOUNT, location.bucket, location.objectPath);
}
