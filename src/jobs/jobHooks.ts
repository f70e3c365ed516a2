import type { Logger } from 'pino';
import type { ContainerEngine } from '../runtime/containerEngine.js';
import type { LogChannel } from './logCapture.js';
import type { TransferListener } from './transferProgress.js';

/** What a caller of the library's job functions (runJob, batchPredict, runDoctor, replay) may inject. */
export interface RunJobHooks {
  /** Injected logger; the library is silent without one. */
  logger?: Logger;
  /** Aborting cancels the job: the container is stopped, everything removed, state CANCELLED. */
  signal?: AbortSignal;
  /** Each line the container prints, as it prints it. */
  onContainerLine?: (channel: LogChannel, line: string) => void;
  /** Human-readable progress ("pulling image ..."). */
  onProgress?: (message: string) => void;
  /** Structured progress (pull layers, staged/collected bytes, instances) for a progress display. */
  onTransfer?: TransferListener;
  /** Use this engine instead of connecting to the default one. */
  engine?: ContainerEngine;
}
