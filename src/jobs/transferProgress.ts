/**
 * Structured progress of long work, for a terminal display (src/report/progressDisplay.ts).
 * Emitted often; consumers throttle. Never part of any result or JSON output.
 */
export type TransferProgress =
  /** One event per layer status change of an image pull (bytes when the registry reports them). */
  | { kind: 'pull'; imageUri: string; layerId: string; status: string; currentBytes?: number; totalBytes?: number }
  /** Bytes of inputs (and model artifact) sent into the job's volume, or outputs copied back. */
  | { kind: 'stage' | 'collect'; doneBytes: number; totalBytes?: number; doneFiles: number; totalFiles?: number }
  /**
   * Instances answered in batch-predict (succeeded + failed); total when known. readBytes/totalBytes:
   * how far the input files have been read, for a rate and ETA when the instance count is not known.
   */
  | { kind: 'instances'; done: number; failed: number; total?: number; readBytes?: number; totalBytes?: number }
  /** The phase that emitted events is over: the display can finish its line. */
  | { kind: 'done'; of: 'pull' | 'stage' | 'collect' | 'instances' };

export type TransferListener = (event: TransferProgress) => void;

export const ignoreTransfer: TransferListener = () => undefined;
