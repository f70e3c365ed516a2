import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isVbeError, usageError } from '../errors.js';
import { type BatchPredictionJobResource, type CloudStorageRecord, type RunJobResource, writeJsonAtomic } from '../report/jobResource.js';
import { isGcsUri } from '../spec/gcsUri.js';
import type { LocationRef } from '../spec/runJobSpec.js';
import { cloudStorageEndpoint, downloadGcsInput, openCloudStorage, type TransferTally, uploadDirectory, uploadFiles } from '../staging/cloudStorage.js';
import { RpcCode } from '../verdict/jobState.js';
import { RECORD_DIR_NAME } from '../report/recordDir.js';

/** Where Cloud Storage lives for a job: a local directory standing in for it, or the real service. */
export type GcsMode = 'local' | 'real';

export interface RealCloudStorageRefs {
  inputs: readonly LocationRef[];
  modelDir?: LocationRef | undefined;
  output: LocationRef;
}

/**
 * `--gcs real`: downloads the gs:// inputs (and model) into a fresh mirror directory, runs the job
 * with that mirror as its Cloud Storage root (so the container sees /gcs/b/p as usual), then uploads
 * what the job wrote to the gs:// output and removes the downloaded inputs. The job record says
 * what moved; an upload that fails turns the job FAILED (Vertex could not have written its outputs)
 * and the local copy is kept.
 */
export async function withRealCloudStorage<R extends RunJobResource | BatchPredictionJobResource>(
  refs: RealCloudStorageRefs,
  progress: (message: string) => void,
  run: (gcsRoot: string) => Promise<R>,
): Promise<R> {
  const gcsRefs = [...refs.inputs, ...(refs.modelDir ? [refs.modelDir] : [])].filter((ref) => isGcsUri(ref.text));
  const outputIsGcs = isGcsUri(refs.output.text);
  if (gcsRefs.length === 0 && !outputIsGcs) {
    throw usageError('GCS_REAL_UNUSED', '--gcs real: no input, model or output is a gs:// URI.', 'Name gs:// locations, or drop --gcs real.');
  }
  const storage = await openCloudStorage();
  const mirror = await mkdtemp(path.join(os.tmpdir(), 'vbe-gcs-'));
  const downloaded: TransferTally = { objects: 0, bytes: 0 };
  const downloadedFiles: string[] = [];
  try {
    for (const ref of gcsRefs) {
      progress(`downloading ${ref.text} from Cloud Storage`);
      const got = await downloadGcsInput(storage, ref.text, ref.field, mirror);
      downloaded.objects += got.objects;
      downloaded.bytes += got.bytes;
      downloadedFiles.push(...got.files);
    }
  } catch (error) {
    await rm(mirror, { recursive: true, force: true });
    throw error;
  }

  let resource: R;
  try {
    resource = await run(mirror);
  } catch (error) {
    // The emulator could not run the job (bad spec, engine unreachable): nothing of it is worth keeping.
    await rm(mirror, { recursive: true, force: true });
    throw error;
  }
  const record: CloudStorageRecord = { mode: 'real', endpoint: cloudStorageEndpoint(), mirrorDirectory: mirror, downloaded, uploaded: { objects: 0, bytes: 0 } };
  const localOutput = 'hostDirectory' in resource.emulator.outputs ? resource.emulator.outputs.hostDirectory : resource.emulator.outputs.directory;
  const destination = resource.outputInfo.gcsOutputDirectory;
  if (outputIsGcs && destination) {
    progress(`uploading the outputs to ${destination}`);
    try {
      const sent = await uploadDirectory(storage, localOutput, destination, refs.output.field, [RECORD_DIR_NAME]);
      record.uploaded = { ...sent, destination };
    } catch (error) {
      record.uploadError = (error as Error).message;
      markUploadFailed(resource, destination, error, localOutput);
    }
  }
  // What a CustomJob wrote elsewhere under /gcs becomes objects too, as with Cloud Storage FUSE.
  const written = 'gcs' in resource.emulator ? (resource.emulator.gcs?.written ?? []) : [];
  if (written.length > 0 && !record.uploadError) {
    progress(`uploading ${written.length} file(s) the job wrote under /gcs`);
    try {
      const sent = await uploadFiles(storage, written.map((w) => ({ hostPath: w.hostPath, uri: w.uri })), '/gcs');
      record.uploaded = { ...record.uploaded, objects: record.uploaded.objects + sent.objects, bytes: record.uploaded.bytes + sent.bytes };
    } catch (error) {
      record.uploadError = (error as Error).message;
      markUploadFailed(resource, written[0]!.uri, error, path.dirname(written[0]!.hostPath));
    }
  }
  // The downloaded inputs are copies; the outputs and the job's records stay in the mirror.
  await Promise.all(downloadedFiles.map((file) => rm(file, { force: true })));
  resource.emulator.cloudStorage = record;
  await writeJsonAtomic(resource.emulator.recordFile, resource);
  return resource;
}

/** Checks the options of a `--gcs real` job: the local mapping's root has no meaning there. */
export function realGcsOptions<O extends { gcsRoot?: string }>(options: O): O {
  if (options.gcsRoot !== undefined) {
    throw usageError('GCS_ROOT_WITH_REAL', '--gcs-root: a local Cloud Storage root cannot be combined with --gcs real.', 'Drop --gcs-root (real Cloud Storage is used), or drop --gcs real (the local mapping is used).');
  }
  return options;
}

function markUploadFailed(resource: RunJobResource | BatchPredictionJobResource, destination: string, error: unknown, localOutput: string) {
  const reason = (error as Error).message;
  if (resource.state === 'JOB_STATE_SUCCEEDED' || resource.state === 'JOB_STATE_PARTIALLY_SUCCEEDED') {
    resource.state = 'JOB_STATE_FAILED';
    const code = isVbeError(error) && error.code === 'GCS_ACCESS_DENIED' ? RpcCode.PERMISSION_DENIED : RpcCode.UNAVAILABLE;
    resource.error = { code, message: `The outputs could not be written to ${destination}.` };
  }
  resource.emulator.diagnoses.push({
    code: 'OUTPUT_UPLOAD_FAILED',
    severity: 'error',
    message: `Uploading the outputs to ${destination} failed: ${reason}`,
    fix: `Check that your credentials may write to ${destination}. The outputs are kept in ${localOutput}.`,
  });
}
