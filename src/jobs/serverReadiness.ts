import type { StartedContainer } from '../runtime/containerEngine.js';
import type { BatchPredictSpec } from '../spec/batchPredictSpec.js';
import { formatDuration } from '../spec/parseDuration.js';
import type { BatchObservation, ProbeFailure } from '../verdict/judgeBatchPredict.js';
import type { Diagnosis } from '../verdict/jobState.js';
import { parseProcNetTcp, type Listener } from '../verdict/parseListeners.js';
import type { PredictionClient } from './predictionClient.js';
import { describeProbe, type ProbeTarget, waitForProbe } from './probes.js';
import type { ProbeSpec } from '../spec/vertexSchemas.js';

const PROBE_TIMEOUT_MS = 10_000; // Vertex's health probe timeout
// Probe often while a server starts (most are up within a second), then back off.
const PROBE_INTERVAL_MS = 500;
const FIRST_PROBE_INTERVAL_MS = 50;
const FAST_PROBE_WINDOW_MS = 5000;
const PROBE_ROUTES = ['/', '/health', '/healthz', '/ping', '/ready', '/v1/models', '/predict', '/isalive'];

/** What start-up needs of a replica (batchPredict's Replica). */
export interface ReadinessReplica {
  index: number;
  started: StartedContainer;
  client: PredictionClient;
  dead: boolean;
}

export type Readiness = NonNullable<BatchObservation['startup']> | { outcome: 'cancelled' };

/** After this long without a ready server, vbe prints what is wrong so far and keeps waiting. */
const STARTUP_REPORT_AFTER_MS = 60_000;

export interface ReadinessHooks {
  progress: (message: string) => void;
  /** The diagnoses a never-ready start-up would get now. */
  explain: (startup: NonNullable<BatchObservation['startup']>) => Diagnosis[];
}

/**
 * The containerSpec.startupProbe when there is one, then readiness: the healthProbe, or GET on the
 * health route as Vertex probes; until ready, exited, past the start-up limit or cancelled. After a
 * minute without readiness, what is wrong so far is printed while waiting goes on.
 */
export async function waitUntilReady(replica: ReadinessReplica, spec: BatchPredictSpec, healthRoute: string, signal: AbortSignal | undefined, hooks: ReadinessHooks): Promise<Readiness> {
  const startedAt = Date.now();
  const deadline = startedAt + spec.startupTimeoutMs;
  const target: ProbeTarget = { started: replica.started, host: replica.client.host, hostPort: replica.client.hostPort };
  let exited: Readiness | undefined;
  const gone = async (): Promise<boolean> => {
    if (signal?.aborted) return true;
    const status = await replica.started.status();
    if (status.running) return false;
    replica.dead = true;
    exited = { outcome: 'exited', replica: replica.index, exitCode: status.exited.exitCode, oomKilled: status.exited.oomKilled };
    return true;
  };
  const neverReady = async (lastHealth: string, probe?: ProbeFailure): Promise<Readiness> => {
    const listeners = await listListeners(replica.started);
    const routesAnswering200: string[] = [];
    if (!probe && listeners?.some((l) => l.port === spec.port)) {
      for (const route of [healthRoute, ...PROBE_ROUTES]) {
        const answer = await replica.client.get(route, 2000);
        if ('status' in answer && answer.status === 200) routesAnswering200.push(route);
      }
    }
    return { outcome: 'never-ready', replica: replica.index, startupTimeoutMs: spec.startupTimeoutMs, lastHealth, ...(listeners ? { listeners } : {}), routesAnswering200, ...(probe ? { probe } : {}) };
  };
  let reported = false;
  const reportSoFar = async (lastHealth: string, probe?: ProbeFailure) => {
    if (reported || Date.now() - startedAt < STARTUP_REPORT_AFTER_MS) return;
    reported = true;
    const soFar = await neverReady(lastHealth, probe);
    const problems = soFar.outcome === 'never-ready' ? hooks.explain(soFar).filter((d) => d.severity === 'error') : [];
    const limit = formatDuration(spec.startupTimeoutMs);
    hooks.progress(`replica ${replica.index} not ready after ${formatDuration(Date.now() - startedAt)}; what is wrong so far: ${problems.map((d) => `${d.code}: ${d.message}${d.fix ? ` (fix: ${d.fix})` : ''}`).join('; ') || lastHealth}`);
    hooks.progress(`still waiting, up to ${limit} as Vertex does for model loading; --startup-timeout (e.g. 2m) shortens the wait`);
  };

  // One of the containerSpec's probes, run until it settles; what it said last feeds the report so far.
  const runProbe = async (field: 'startupProbe' | 'healthProbe', probe: ProbeSpec, failAfterThreshold: boolean) => {
    const action = describeProbe(probe, spec.port);
    let last = 'not run yet';
    const result = await waitForProbe(probe, target, {
      failAfterThreshold,
      stop: async () => (await gone()) || Date.now() >= deadline,
      onResult: (r) => {
        last = r.detail;
        void reportSoFar(`${field} (${action}): ${r.detail}`, { field, action, failures: 0, last: r.detail });
      },
    });
    return { result, action, last };
  };

  if (spec.startupProbe) {
    const { result, action, last } = await runProbe('startupProbe', spec.startupProbe, true);
    if (signal?.aborted) return { outcome: 'cancelled' };
    if (exited) return exited;
    if (result.outcome === 'failed') return neverReady(`startupProbe (${action}): ${result.last}`, { field: 'startupProbe', action, failures: result.failures, last: result.last });
    if (result.outcome === 'stopped') return neverReady(`startupProbe (${action}): ${last}`, { field: 'startupProbe', action, failures: 0, last });
  }

  if (spec.healthProbe) {
    const { result, action, last } = await runProbe('healthProbe', spec.healthProbe, false);
    if (signal?.aborted) return { outcome: 'cancelled' };
    if (exited) return exited;
    if (result.outcome === 'passed') return { outcome: 'ready', afterMs: 0 };
    return neverReady(`healthProbe (${action}): ${last}`, { field: 'healthProbe', action, failures: 0, last });
  }

  let lastHealth = 'no answer yet';
  for (;;) {
    if (await gone()) return exited ?? { outcome: 'cancelled' };
    const answer = await replica.client.get(healthRoute, Math.min(PROBE_TIMEOUT_MS, Math.max(1000, deadline - Date.now())));
    if ('status' in answer && answer.status === 200) return { outcome: 'ready', afterMs: 0 };
    lastHealth = 'status' in answer ? `HTTP ${answer.status}` : `no HTTP answer (${answer.error})`;
    if (Date.now() >= deadline) return neverReady(lastHealth);
    await reportSoFar(lastHealth);
    const waited = Date.now() - startedAt;
    await new Promise((r) => setTimeout(r, waited < FAST_PROBE_WINDOW_MS ? FIRST_PROBE_INTERVAL_MS : PROBE_INTERVAL_MS));
  }
}

/** What listens inside the container's network namespace, read from /proc/net/tcp{,6} in it. */
async function listListeners(started: StartedContainer): Promise<Listener[] | undefined> {
  const attempts = [
    ['cat', '/proc/net/tcp', '/proc/net/tcp6'],
    ['python3', '-c', 'import sys\nfor f in ("/proc/net/tcp","/proc/net/tcp6"):\n  try: sys.stdout.write(open(f).read())\n  except OSError: pass'],
  ];
  for (const cmd of attempts) {
    const result = await started.exec(cmd);
    if (result && result.output.includes('local_address')) return parseProcNetTcp(result.output);
  }
  return undefined;
}
