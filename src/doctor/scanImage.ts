import type { ContainerEngine, ImageDetails } from '../runtime/containerEngine.js';
import type { JobResources } from '../jobs/jobResources.js';
import { entrypointFiles } from './guessContract.js';
import { type ImageFilesystemReport, scanImageFilesystem } from './scanImageFilesystem.js';

/** The scan phase's output: what is in the image's filesystem, and its layers. */
export interface ImageScan {
  filesystem: ImageFilesystemReport;
  history: Array<{ createdBy: string; sizeBytes: number }>;
}

/**
 * The scan phase of `vbe doctor`: the image's filesystem, exported from a container that never
 * runs, read as a stream (libraries, scripts the entrypoint names), with its layer history asked
 * for at the same time.
 */
export async function scanImage(engine: ContainerEngine, imageUri: string, image: ImageDetails, resources: JobResources): Promise<ImageScan> {
  const history = engine.imageHistory(imageUri);
  history.catch(() => undefined); // awaited below; not unhandled when the export fails first
  const probe = await resources.container({ name: `vbe-doctor-${resources.jobId}`, image: imageUri, entrypoint: ['/vbe-never-runs'], env: [], nanoCpus: 1e9, memoryBytes: 256 * 1024 ** 2, mounts: [] });
  const filesystem = await scanImageFilesystem(await probe.exportFilesystem(), image.env, [image.workingDir || '/'], entrypointFiles(image));
  return { filesystem, history: await history };
}
