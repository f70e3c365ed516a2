import type { ImageDetails } from '../runtime/containerEngine.js';
import type { EnvVar } from '../spec/expandVertexReferences.js';

/** The `emulator.image` section of a job record. */
export function imageRecord(uri: string, pulled: boolean, image: ImageDetails | undefined) {
  return {
    uri,
    pulled,
    ...(image ? { id: image.id, platform: `${image.os}/${image.architecture}` } : {}),
    ...(image?.repoDigest ? { digest: image.repoDigest } : {}),
  };
}

/** The `emulator.container` section: what ran instead of the image's ENTRYPOINT/CMD, and as whom. */
export function containerRecord(image: ImageDetails, command: string[] | undefined, args: string[] | undefined) {
  return { ...(command ? { command } : {}), ...(args ? { args } : {}), user: image.user || 'root' };
}

/** The variables the emulator set; the user's own values are never recorded (they may be secrets). */
export function vertexEnvironmentRecord(environment: readonly EnvVar[], userEnv: readonly EnvVar[]): Record<string, string> {
  return Object.fromEntries(environment.filter((e) => !userEnv.some((u) => u.name === e.name)).map((e) => [e.name, e.value]));
}
