import type { ExitedContainer } from '../../runtime/containerEngine.js';
import type { RunAttempt } from '../../report/jobResource.js';
import { formatBytes } from '../../verdict/diagnoseRunJob.js';
import { PRIMARY_REPLICA } from '../../verdict/judgeRunJob.js';
import type { ChartRecorder } from '../chartRecorder.js';
import type { RunJobHooks } from '../jobHooks.js';
import type { JobPipeline } from '../jobPipeline.js';
import { LogCapture, maskSecrets } from '../logCapture.js';
import type { AppliedLimits } from '../machineLimits.js';
import { type AttemptEnd, recordExitMarks, runToExit } from '../runToExit.js';
import type { StagedRun } from './stageRunJob.js';
import type { RunPlan } from './validateRunJob.js';

/** The run phase's output: how the replica's last attempt ended, and every attempt before it. */
export interface RunOutcome extends AttemptEnd {
  startTime: Date;
  /** When --timeout runs out (epoch ms): collection counts against it too. */
  deadlineMs: number;
  exited: ExitedContainer;
  exitCode: number;
  oomKilled: boolean;
  /** The engine could not start the process of the last attempt (executable not found, ...). */
  startError?: string;
  attempts: RunAttempt[];
  capture: LogCapture;
}

/**
 * The run phase of `vbe run`: starts the replica, streams its logs, enforces --timeout, honours
 * cancellation, and restarts it by policy (exit codes, --max-restarts), as Vertex restarts a replica.
 */
export async function runAttempts(
  plan: RunPlan,
  staged: StagedRun,
  limits: AppliedLimits,
  charts: ChartRecorder,
  job: Pick<JobPipeline, 'progress' | 'signal'>,
  onContainerLine: RunJobHooks['onContainerLine'],
): Promise<RunOutcome> {
  const { spec } = plan;
  job.progress(`running ${spec.imageUri} on ${limits.machineType} (${limits.cpus} CPU, ${formatBytes(limits.memoryBytes)})`);
  const startTime = new Date();
  const capture = new LogCapture(plan.logFiles, { maxSavedBytes: spec.maxLogBytes, secrets: spec.secrets, ...(onContainerLine ? { onLine: onContainerLine } : {}) });
  const deadlineMs = Date.now() + spec.timeoutMs;
  const end: AttemptEnd = { timedOut: false, cancelled: false };
  const attempts: RunAttempt[] = [];
  let replica = staged.first;
  for (let attempt = 0; ; attempt++) {
    const attemptStarted = Date.now();
    const attemptSpan = charts.begin(PRIMARY_REPLICA, `attempt ${attempt + 1}`);
    const start = await replica.start();
    let exited: ExitedContainer;
    let startError: string | undefined;
    if ('startError' in start) {
      startError = maskSecrets(start.startError, spec.secrets);
      exited = start.exited;
    } else {
      const banner = attempt > 0 ? `[vbe: attempt ${attempt + 1}]` : undefined;
      exited = await runToExit(start.started, capture, deadlineMs - Date.now(), spec, job.signal, end, job.progress, banner, charts);
    }
    attemptSpan();
    recordExitMarks(charts, exited, end);
    const exitCode = startError && !exited.exitCode ? 127 : exited.exitCode;
    attempts.push({ attempt: attempt + 1, exitCode, oomKilled: exited.oomKilled, durationMs: Date.now() - attemptStarted, ...(startError ? { startError } : {}) });
    const restartable = exitCode !== 0 && (spec.restartExitCodes ? spec.restartExitCodes.includes(exitCode) : true);
    if (!restartable || attempt >= spec.maxRestarts || end.timedOut || end.cancelled || Date.now() >= deadlineMs) {
      return {
        ...end,
        startTime,
        deadlineMs,
        exited,
        exitCode,
        oomKilled: exited.oomKilled && !end.timedOut && !end.cancelled,
        ...(startError ? { startError } : {}),
        attempts,
        capture,
      };
    }
    job.progress(`replica exited with status ${exitCode}: restarting (attempt ${attempt + 2} of ${spec.maxRestarts + 1})`);
    charts.mark(PRIMARY_REPLICA, 'restart', `restart after exit ${exitCode}`);
    replica = await staged.replica(attempt + 1);
  }
}
