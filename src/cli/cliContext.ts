import type { Logger } from 'pino';

/** What commands get from the CLI shell: output channels, logger, cancellation, exit status. */
export interface CliContext {
  logger: Logger;
  signal: AbortSignal;
  /** Results only (JSON). */
  stdout: (text: string) => void;
  /** Everything for humans: progress, container output, summaries. */
  stderr: (text: string) => void;
  setExitCode: (code: number) => void;
}
