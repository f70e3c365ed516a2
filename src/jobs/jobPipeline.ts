import type { Logger } from 'pino';
import type { PhaseTiming } from '../report/jobResource.js';
import { newJobId } from './jobId.js';
import type { RunJobHooks } from './jobHooks.js';
import { silentLogger } from './silentLogger.js';
import { ignoreTransfer, type TransferListener } from './transferProgress.js';

/** Time cleanup has to remove what a job created, whatever happened before it. */
export const CLEANUP_BUDGET_MS = 30_000;

/** Thrown by `phase` when the job was cancelled before the phase began; `run` turns it into a result. */
class PipelineCancelled extends Error {
  constructor(readonly phase: string) {
    super(`cancelled before ${phase}`);
  }
}

/** How the body of a pipeline ended (what a job record needs besides the phases' own outputs). */
export interface PipelineEnd {
  /** The job was cancelled before one of its phases began: that phase and the rest did not run. */
  cancelledBefore?: string;
  /** What cleanup could not remove (each named), for a warning that names `vbe prune`. */
  leftovers: string[];
}

/**
 * One job's pipeline of named phases, as nektos/act composes executors: each phase is timed
 * (`emulator.phases`, with its start) and cancellable in one place (a phase does not begin once the
 * job is cancelled; phases that run long take `signal` themselves), and cleanup always runs last,
 * under its own budget, whatever the phases did.
 */
export class JobPipeline {
  readonly jobId = newJobId();
  readonly createTime = new Date();
  readonly phases: PhaseTiming[] = [];
  readonly logger: Logger;
  /** Human-readable progress ("staging 3 file(s) ..."). */
  readonly progress: (message: string) => void;
  /** Structured progress (bytes, layers, instances) for a terminal display. */
  readonly transfer: TransferListener;
  readonly signal: AbortSignal | undefined;
  private readonly origin = performance.now();

  constructor(hooks: RunJobHooks) {
    this.logger = hooks.logger ?? silentLogger;
    this.progress = hooks.onProgress ?? (() => undefined);
    this.transfer = hooks.onTransfer ?? ignoreTransfer;
    this.signal = hooks.signal;
  }

  get cancelled(): boolean {
    return this.signal?.aborted === true;
  }

  /** Runs one named phase and records its wall time; none begins once the job is cancelled. */
  phase<T>(name: string, fn: () => Promise<T>): Promise<T> {
    if (this.cancelled) return Promise.reject(new PipelineCancelled(name));
    return this.timed(name, fn);
  }

  /** Runs a step that is timed but never skipped (validation, cleanup, the record). */
  async timed<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await fn();
    } finally {
      this.phases.push({ name, durationMs: Math.round(performance.now() - started), startMs: Math.round(started - this.origin) });
      this.logger.debug({ phase: name }, 'phase done');
    }
  }

  /**
   * Runs `body` (its phases), then `cleanup` as the last phase, always, within `budgetMs`. A
   * cancellation before a phase ends the body as a result (`cancelledBefore`); any other error is
   * passed through `explain` (an engine that went away becomes ENGINE_LOST) and thrown after cleanup.
   */
  async run(body: () => Promise<void>, cleanup: (budgetMs: number) => Promise<string[]>, explain: (error: unknown) => Promise<unknown> = async (e) => e): Promise<PipelineEnd> {
    const end: PipelineEnd = { leftovers: [] };
    try {
      await body();
    } catch (error) {
      if (error instanceof PipelineCancelled) end.cancelledBefore = error.phase;
      else throw await explain(error);
    } finally {
      end.leftovers = await this.timed('cleanup', () => cleanup(CLEANUP_BUDGET_MS));
    }
    return end;
  }
}

/** The warning a job record carries when cleanup left something behind. */
export function leftoverWarning(leftovers: readonly string[]): string[] {
  return leftovers.length > 0 ? [`Could not remove: ${leftovers.join(', ')}. Run \`vbe prune\`.`] : [];
}
