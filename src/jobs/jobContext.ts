import type { Logger } from 'pino';
import type { PhaseTiming } from '../report/jobResource.js';
import type { ImageDetails } from '../runtime/containerEngine.js';
import type { EnvVar } from '../spec/expandVertexReferences.js';
import { newJobId } from './jobId.js';
import { ignoreTransfer, type TransferListener } from './transferProgress.js';
import type { RunJobHooks } from './jobHooks.js';

/** What every job lifecycle starts with: its id, clock, logger, progress and named, timed phases. */
export interface JobContext {
  jobId: string;
  createTime: Date;
  logger: Logger;
  progress: (message: string) => void;
  /** Structured progress (bytes, layers, instances) for a terminal display. */
  transfer: TransferListener;
  phases: PhaseTiming[];
  /** Runs one named phase of the pipeline and records its wall time. */
  timed<T>(name: string, fn: () => Promise<T>): Promise<T>;
}

/** The library's default logger: pino's `silent` level, without loading pino (~25 ms at start-up). */
export const silentLogger: Logger = (() => {
  const none = () => undefined;
  const logger = { level: 'silent', isLevelEnabled: () => false, trace: none, debug: none, info: none, warn: none, error: none, fatal: none, silent: none, child: () => logger };
  return logger as unknown as Logger;
})();

export function startJobContext(hooks: RunJobHooks): JobContext {
  const logger = hooks.logger ?? silentLogger;
  const phases: PhaseTiming[] = [];
  const createTime = new Date();
  const origin = performance.now();
  return {
    jobId: newJobId(),
    createTime,
    logger,
    progress: hooks.onProgress ?? (() => undefined),
    transfer: hooks.onTransfer ?? ignoreTransfer,
    phases,
    async timed(name, fn) {
      const started = performance.now();
      try {
        return await fn();
      } finally {
        phases.push({ name, durationMs: Math.round(performance.now() - started), startMs: Math.round(started - origin) });
        logger.debug({ phase: name }, 'phase done');
      }
    },
  };
}

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
