import type { ExitedContainer, StartedContainer } from '../runtime/containerEngine.js';
import type { RunJobSpec } from '../spec/runJobSpec.js';
import { PRIMARY_REPLICA } from '../verdict/judgeRunJob.js';
import type { ChartRecorder } from './chartRecorder.js';
import type { LogCapture } from './logCapture.js';

/** How an attempt ended, besides its exit status: what the timeout, Ctrl-C and the stats saw. */
export interface AttemptEnd {
  timedOut: boolean;
  cancelled: boolean;
  peakMemoryBytes?: number;
}

/** Waits for the container to exit, killing it at the timeout and stopping it when cancelled. */
export async function runToExit(
  started: StartedContainer,
  capture: LogCapture,
  timeoutMs: number,
  spec: RunJobSpec,
  signal: AbortSignal | undefined,
  end: AttemptEnd,
  progress: (message: string) => void,
  banner?: string,
  charts?: ChartRecorder,
): Promise<ExitedContainer> {
  const logs = await started.followLogs();
  const memory = await started.watchMemory(charts?.statsOf(PRIMARY_REPLICA));
  const captured = Promise.all([capture.capture('stdout', logs.stdout, banner), capture.capture('stderr', logs.stderr, banner)]);
  const timer = setTimeout(() => {
    end.timedOut = true;
    progress(`timeout of ${spec.timeoutMs} ms reached: killing the container`);
    started.kill().catch(() => undefined);
  }, Math.max(0, timeoutMs));
  const onAbort = () => {
    end.cancelled = true;
    progress(`cancelling: stopping the container (grace ${Math.round(spec.stopGraceMs / 1000)}s)`);
    started.stop(spec.stopGraceMs).catch(() => started.kill().catch(() => undefined));
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) onAbort();
  try {
    const exited = await started.wait();
    await captured;
    return exited;
  } finally {
    end.peakMemoryBytes = memory.peakBytes();
    memory.stop();
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

/** The end of an attempt on the timeline: OOM kill, timeout, cancellation or its exit status. */
export function recordExitMarks(charts: ChartRecorder, result: ExitedContainer, end: AttemptEnd): void {
  if (end.timedOut) charts.mark(PRIMARY_REPLICA, 'timeout', 'timeout: killed');
  else if (end.cancelled) charts.mark(PRIMARY_REPLICA, 'cancelled', 'cancelled');
  else if (result.oomKilled) charts.mark(PRIMARY_REPLICA, 'oom-kill', `OOM kill (exit ${result.exitCode})`);
  else charts.mark(PRIMARY_REPLICA, 'exit', `exit ${result.exitCode}`);
}
