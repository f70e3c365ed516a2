import type { Logger } from 'pino';

/** What commands get from the CLI shell: output channels, logger, cancellation, exit status. */
export interface CliContext {
  logger: Logger;
  signal: AbortSignal;
  /** Results only (JSON). */
  stdout: (text: string) => void;
  /** Everything for humans: progress, container output, summaries (a progress display may swap it). */
  stderr: (text: string) => void;
  /** How logs go to stderr: human lines (progress bars allowed on a terminal) or pino JSON. */
  logFormat: 'human' | 'json';
  setExitCode: (code: number) => void;
}
