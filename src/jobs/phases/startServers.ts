import path from 'node:path';
import type { BatchObservation } from '../../verdict/judgeBatchPredict.js';
import type { Diagnosis } from '../../verdict/jobState.js';
import { type ChartRecorder, replicaLane as lane } from '../chartRecorder.js';
import type { RunJobHooks } from '../jobHooks.js';
import type { JobPipeline } from '../jobPipeline.js';
import { LogCapture } from '../logCapture.js';
import type { Replica } from '../predictDataPlane.js';
import { PredictionClient } from '../predictionClient.js';
import { waitUntilReady } from '../serverReadiness.js';
import type { StagedServers } from './stageServers.js';
import type { BatchPlan } from './validateBatchPredict.js';

export type ServerStartup = NonNullable<BatchObservation['startup']>;

/** The start phase's output: the servers that started, and how their start-up ended. */
export interface StartedServers {
  /** The replicas whose server started (the list the abort listener and the stop phase saw). */
  replicas: Replica[];
  startTime: Date;
  /** performance.now() when the first server was started (replica time counts from here). */
  startedAtMs: number;
  /** Every replica ready, or the first that was not; absent when cancelled while waiting. */
  startup?: ServerStartup;
  /** Ctrl-C while waiting for readiness. */
  cancelled: boolean;
}

export interface StartServersInput {
  plan: BatchPlan;
  staged: StagedServers;
  /** The host the published ports are reached on (the engine's). */
  publishedHost: string;
  charts: ChartRecorder;
  /** The diagnoses a never-ready start-up would get now (printed after a minute of waiting). */
  explain: (startup: ServerStartup) => Diagnosis[];
  onContainerLine: RunJobHooks['onContainerLine'];
}

/**
 * The start phase of `vbe batch-predict`: each replica's server started, its logs followed and its
 * memory watched, then readiness (serverReadiness.ts) for all of them at once. Each started replica
 * is pushed onto `running` as it starts: Ctrl-C kills those at once, and the stop phase stops them
 * even when this phase fails part-way.
 */
export async function startServers(input: StartServersInput, running: Replica[], job: Pick<JobPipeline, 'progress' | 'signal'>): Promise<StartedServers> {
  const { plan, staged, publishedHost, charts, explain, onContainerLine } = input;
  const { spec, recordDir, routes } = plan;
  const base = spec.base;
  const startTime = new Date();
  const startedAtMs = performance.now();
  const result = (startup: ServerStartup | undefined, cancelled = false): StartedServers => ({ replicas: running, startTime, startedAtMs, ...(startup ? { startup } : {}), cancelled });
  const startSpans: Array<() => void> = [];
  for (const [index, container] of staged.containers.entries()) {
    startSpans[index] = charts.begin(lane(index), 'start / health');
    const start = await container.start();
    if ('startError' in start) {
      charts.mark(lane(index), 'died', `could not start: exit ${start.exited.exitCode || 127}`);
      return result({ outcome: 'exited', replica: index, exitCode: start.exited.exitCode || 127, oomKilled: false, startError: start.startError });
    }
    const hostPort = await start.started.publishedPort(spec.port);
    const capture = new LogCapture(
      { stdout: path.join(recordDir, `replica-${index}.stdout.log`), stderr: path.join(recordDir, `replica-${index}.stderr.log`) },
      { maxSavedBytes: base.maxLogBytes, secrets: base.secrets, ...(onContainerLine ? { onLine: (ch, line) => onContainerLine(ch, spec.replicaCount > 1 ? `[replica-${index}] ${line}` : line) } : {}) },
    );
    const logs = await start.started.followLogs();
    const logsDone = Promise.all([capture.capture('stdout', logs.stdout), capture.capture('stderr', logs.stderr)]);
    const memory = await start.started.watchMemory(charts.statsOf(lane(index)));
    running.push({ index, storageLimited: container.storageLimited, started: start.started, memory, client: new PredictionClient(publishedHost, hostPort ?? 0, spec.maxInFlight + 1), capture, logsDone, dead: false });
  }
  job.progress(`waiting for ${running.length} model server(s): GET ${routes.health} on port ${spec.port}`);
  const results = await Promise.all(
    running.map((r) =>
      waitUntilReady(r, spec, routes.health, job.signal, { progress: job.progress, explain }).then((readiness) => {
        startSpans[r.index]?.();
        if (readiness.outcome === 'exited') charts.mark(lane(r.index), readiness.oomKilled ? 'oom-kill' : 'died', `${readiness.oomKilled ? 'OOM kill' : 'exited'} (exit ${readiness.exitCode})`);
        return readiness;
      }),
    ),
  );
  const failure = results.find((r) => r.outcome !== 'ready');
  if (failure) return failure.outcome === 'cancelled' ? result(undefined, true) : result(failure);
  return result({ outcome: 'ready', afterMs: Math.round(performance.now() - startedAtMs) });
}
