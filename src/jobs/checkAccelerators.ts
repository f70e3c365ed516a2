import { usageError } from '../errors.js';
import type { HostInfo } from '../runtime/containerEngine.js';

/**
 * A job that asks for GPUs on an engine without the NVIDIA runtime cannot run as asked: say so,
 * and offer --no-gpu (run CPU-only) rather than silently dropping the request.
 */
export function checkAccelerators(accelerator: { type: string; count: number } | undefined, host: HostInfo): number {
  if (!accelerator) return 0;
  if (!host.nvidiaRuntime) {
    throw usageError(
      'NO_GPU',
      `The job asks for ${accelerator.count} x ${accelerator.type}, but this Docker engine has no NVIDIA GPU runtime.`,
      'Run with --no-gpu to run the container CPU-only, or use a host with NVIDIA GPUs and the NVIDIA Container Toolkit.',
    );
  }
  return accelerator.count;
}
