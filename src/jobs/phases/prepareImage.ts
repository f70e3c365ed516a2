import type { ContainerEngine, ImageDetails } from '../../runtime/containerEngine.js';
import type { PullPolicy } from '../../spec/runJobSpec.js';
import { isLinuxAmd64 } from '../../verdict/judgeImage.js';
import { ensureImage, type PullFailureInfo } from '../ensureImage.js';
import type { JobPipeline } from '../jobPipeline.js';

/** The image phase's output: the image (when it could be had) and whether a replica can run it. */
export interface ImageOutcome {
  image?: ImageDetails;
  pulled: boolean;
  pullFailure?: PullFailureInfo;
  /** Present and linux/amd64, as a Vertex replica needs (anything else is judged, not run). */
  usable: boolean;
}

/** Makes the image present by the pull policy; a refusal or a wrong platform is a result. */
export async function prepareImage(engine: ContainerEngine, imageUri: string, pullPolicy: PullPolicy, job: Pick<JobPipeline, 'progress' | 'transfer'>): Promise<ImageOutcome> {
  const got = await ensureImage(engine, imageUri, pullPolicy, job.progress, job.transfer);
  if ('pullFailure' in got) return { pulled: false, pullFailure: got.pullFailure, usable: false };
  return { image: got.image, pulled: got.pulled, usable: isLinuxAmd64(got.image) };
}
