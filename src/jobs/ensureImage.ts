import { type ContainerEngine, type ImageDetails, PullFailure, type PullFailureKind } from '../runtime/containerEngine.js';
import { findRegistryAuth } from '../runtime/registryAuth.js';
import type { PullPolicy } from '../spec/runJobSpec.js';

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
): Promise<{ image: ImageDetails; pulled: boolean } | { pullFailure: PullFailureInfo }> {
  const local = pullPolicy === 'always' ? undefined : await engine.inspectImage(imageUri);
  if (local) return { image: local, pulled: false };
  if (pullPolicy === 'never') {
    return { pullFailure: { kind: 'not_found', detail: `the image is not in the local engine and --pull is "never"` } };
  }
  progress(`pulling ${imageUri}`);
  try {
    await engine.pullImage(imageUri, await findRegistryAuth(imageUri));
  } catch (error) {
    if (error instanceof PullFailure) return { pullFailure: { kind: error.kind, detail: error.detail } };
    throw error;
  }
  const image = await engine.inspectImage(imageUri);
  if (!image) return { pullFailure: { kind: 'other', detail: 'the pull finished but the image is not in the engine' } };
  return { image, pulled: true };
}

