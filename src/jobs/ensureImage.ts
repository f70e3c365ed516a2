import { type ContainerEngine, type ImageDetails, PullFailure, type PullFailureKind } from '../runtime/containerEngine.js';
import { findRegistryAuth } from '../runtime/registryAuth.js';
import type { PullPolicy } from '../spec/runJobSpec.js';
import { ignoreTransfer, type TransferListener } from './transferProgress.js';

/** A progress message of the engine's pull stream (one per layer status change). */
interface PullEvent {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
}

/** Layer statuses; the stream also carries image-level lines ("Pulling from", "Digest:") with an id. */
const LAYER_STATUS = /^(Pulling fs layer|Waiting|Downloading|Verifying Checksum|Download complete|Extracting|Pull complete|Already exists|Retrying)/;

export interface PullFailureInfo {
  kind: PullFailureKind;
  detail: string;
}

/** Makes the image present by the pull policy; a registry refusal is a result, not an exception. */
export async function ensureImage(
  engine: ContainerEngine,
  imageUri: string,
  pullPolicy: PullPolicy,
  progress: (message: string) => void,
  transfer: TransferListener = ignoreTransfer,
): Promise<{ image: ImageDetails; pulled: boolean } | { pullFailure: PullFailureInfo }> {
  const local = pullPolicy === 'always' ? undefined : await engine.inspectImage(imageUri);
  if (local) return { image: local, pulled: false };
  if (pullPolicy === 'never') {
    return { pullFailure: { kind: 'not_found', detail: `the image is not in the local engine and --pull is "never"` } };
  }
  progress(`pulling ${imageUri}`);
  try {
    await engine.pullImage(imageUri, await findRegistryAuth(imageUri), (event: PullEvent) => {
      if (!event.id || !event.status || !LAYER_STATUS.test(event.status)) return;
      transfer({
        kind: 'pull',
        imageUri,
        layerId: event.id,
        status: event.status,
        ...(event.progressDetail?.total ? { currentBytes: event.progressDetail.current ?? 0, totalBytes: event.progressDetail.total } : {}),
      });
    });
  } catch (error) {
    if (error instanceof PullFailure) return { pullFailure: { kind: error.kind, detail: error.detail } };
    throw error;
  } finally {
    transfer({ kind: 'done', of: 'pull' });
  }
  const image = await engine.inspectImage(imageUri);
  if (!image) return { pullFailure: { kind: 'other', detail: 'the pull finished but the image is not in the engine' } };
  return { image, pulled: true };
}

