import { type Diagnosis, type JobError, RpcCode } from './jobState.js';

/** What is known about the image before anything runs (shared by both contracts). */
export interface ImageObservation {
  imageUri: string;
  image?: { architecture: string; os: string };
  pullFailure?: { kind: 'not_found' | 'denied' | 'unreachable' | 'other'; detail: string };
}

export function isLinuxAmd64(image: { architecture: string; os: string }): boolean {
  return image.os === 'linux' && image.architecture === 'amd64';
}

/** The job error when the image cannot be had or cannot run on Vertex; undefined when it can. */
export function judgeImage(o: ImageObservation, replica: string): JobError | undefined {
  if (o.pullFailure) {
    const { kind, detail } = o.pullFailure;
    if (kind === 'denied') return { code: RpcCode.PERMISSION_DENIED, message: `Unable to pull the image ${o.imageUri}: permission denied (${detail}).` };
    if (kind === 'not_found') return { code: RpcCode.NOT_FOUND, message: `Unable to pull the image ${o.imageUri}: not found (${detail}).` };
    return { code: RpcCode.UNAVAILABLE, message: `Unable to pull the image ${o.imageUri}: ${detail}` };
  }
  if (o.image && !isLinuxAmd64(o.image)) {
    return {
      code: RpcCode.INVALID_ARGUMENT,
      message: `The replica ${replica} exited with a non-zero status of 1. Termination reason: Error. exec format error: the image is ${o.image.os}/${o.image.architecture}, and Vertex AI runs only linux/amd64.`,
    };
  }
  return undefined;
}

/** The one finding for an image that cannot be had or cannot run; undefined when it can. */
export function diagnoseImage(o: ImageObservation): Diagnosis | undefined {
  if (o.pullFailure) {
    const codes = { denied: 'IMAGE_PULL_DENIED', not_found: 'IMAGE_NOT_FOUND', unreachable: 'REGISTRY_UNREACHABLE', other: 'IMAGE_PULL_FAILED' } as const;
    const fixes = {
      denied:
        'Log in to the registry (`docker login REGISTRY`, or `gcloud auth configure-docker REGION-docker.pkg.dev` for Artifact Registry). On Vertex, grant the Vertex AI service agent roles/artifactregistry.reader on the repository.',
      not_found: `Check the image name and tag; push it (\`docker push ${o.imageUri}\`) or build it locally and run with --pull never.`,
      unreachable: 'Check that the registry host is reachable from the Docker engine, or build the image locally and use --pull never.',
      other: 'Check the image reference and the registry.',
    } as const;
    return { code: codes[o.pullFailure.kind], severity: 'error', message: `The image ${o.imageUri} could not be pulled.`, fix: fixes[o.pullFailure.kind], evidence: [o.pullFailure.detail] };
  }
  if (o.image && !isLinuxAmd64(o.image)) {
    return {
      code: 'EXEC_FORMAT_ERROR',
      severity: 'error',
      message: `The image is ${o.image.os}/${o.image.architecture}; Vertex AI runs only linux/amd64 and the container would fail with "exec format error" (typical for images built on an Apple silicon laptop).`,
      fix: `Rebuild for amd64: docker buildx build --platform linux/amd64 -t ${o.imageUri} . (then push it again).`,
    };
  }
  return undefined;
}
