import { formatBytes, reserveExplanation } from './diagnoseRunJob.js';
import { type Diagnosis, type JobError, type JobState, RpcCode } from './jobState.js';
import { diagnoseImage, type ImageObservation, judgeImage } from './judgeImage.js';
import { isLoopback, isWildcard, type Listener } from './parseListeners.js';
import { installFix } from './libraryPackages.js';
import type { LogSignal } from './scanLogLine.js';

export const NEVER_READY_MESSAGE = 'model server never became ready. Please validate that your model file or container configuration are valid.';

/** A containerSpec.startupProbe that failed its threshold, or a healthProbe that never passed. */
export interface ProbeFailure {
  field: 'startupProbe' | 'healthProbe';
  action: string;
  failures: number;
  last: string;
}

export type FailureKind = 'http' | 'timeout' | 'connection' | 'not-json' | 'no-predictions' | 'count-mismatch' | 'bad-record';

/** Everything observed about one BatchPredictionJob run; the input of the pure verdict. */
export interface BatchObservation extends ImageObservation {
  cancelled: boolean;
  port: number;
  healthRoute: string;
  predictRoute: string;
  batchSize: number;
  machineType: string;
  memoryBytes: number;
  machineMemoryBytes?: number;
  memoryReserveBytes?: number;
  startup?:
    | { outcome: 'ready'; afterMs: number }
    | { outcome: 'exited'; replica: number; exitCode: number; oomKilled: boolean; startError?: string }
    | { outcome: 'never-ready'; replica: number; startupTimeoutMs: number; lastHealth: string; listeners?: Listener[]; routesAnswering200: string[]; probe?: ProbeFailure };
  /** A replica's server stopped during the job. */
  died?: { replica: number; exitCode: number; oomKilled: boolean };
  stats: { successful: number; failed: number; incomplete: number };
  /** Largest predict response body seen, in bytes. */
  maxResponseBytes: number;
  failuresByKind: Partial<Record<FailureKind, { count: number; example: string }>>;
  maxFailedRatio?: number;
  logSignals: LogSignal[];
  logTail: string[];
}

export interface BatchVerdict {
  state: JobState;
  error?: JobError;
}

/** Vertex's verdict on a BatchPredictionJob, in its states and messages. */
export function judgeBatchPredict(o: BatchObservation): BatchVerdict {
  if (o.cancelled) return { state: 'JOB_STATE_CANCELLED', error: { code: RpcCode.CANCELLED, message: 'The job was cancelled.' } };
  const imageError = judgeImage(o, 'replica 0');
  if (imageError) return { state: 'JOB_STATE_FAILED', error: imageError };
  if (o.startup?.outcome === 'exited') {
    const how = o.startup.oomKilled ? 'ran out of memory' : `exited with status ${o.startup.exitCode}`;
    return { state: 'JOB_STATE_FAILED', error: { code: RpcCode.FAILED_PRECONDITION, message: `Model server terminated: the container ${how} before it became ready.` } };
  }
  if (o.startup?.outcome === 'never-ready') return { state: 'JOB_STATE_FAILED', error: { code: RpcCode.DEADLINE_EXCEEDED, message: NEVER_READY_MESSAGE } };
  if (o.died) {
    const how = o.died.oomKilled ? 'ran out of memory and exited with a non-zero status of 137' : `exited with status ${o.died.exitCode}`;
    return { state: 'JOB_STATE_FAILED', error: { code: RpcCode.INTERNAL, message: `Model server exited unexpectedly: replica ${o.died.replica} ${how}.` } };
  }
  const total = o.stats.successful + o.stats.failed + o.stats.incomplete;
  if (o.maxFailedRatio !== undefined && total > 0 && o.stats.failed / total > o.maxFailedRatio) {
    return {
      state: 'JOB_STATE_FAILED',
      error: { code: RpcCode.FAILED_PRECONDITION, message: `${o.stats.failed} of ${total} instances failed (${percent(o.stats.failed / total)}), more than --max-failed-ratio ${o.maxFailedRatio}.` },
    };
  }
  return { state: 'JOB_STATE_SUCCEEDED' };
}

/** Findings a human can act on for the prediction-server contract. */
export function diagnoseBatchPredict(o: BatchObservation): Diagnosis[] {
  const imageProblem = diagnoseImage(o);
  if (imageProblem) return [imageProblem];
  if (o.cancelled) return [{ code: 'CANCELLED', severity: 'info', message: 'The job was cancelled; instances not yet answered are counted as incomplete.' }];
  const out: Diagnosis[] = [];
  const allFailed = allInstancesFailed(o);
  if (allFailed) out.push(allFailed);
  const s = o.startup;
  if (s?.outcome === 'exited') {
    if (s.exitCode === 0 && !s.oomKilled) {
      out.push({
        code: 'RUNS_TO_COMPLETION',
        severity: 'error',
        message: 'The container exited with status 0 at start: it looks like a run-to-completion job, not a model server. A BatchPredictionJob needs an HTTP server that runs until it is stopped.',
        fix: 'Run this image with `vbe run` (file contract), or make its entrypoint start a server in the foreground (no `&`, no daemon mode).',
      });
    } else {
      out.push({
        code: s.oomKilled ? 'OUT_OF_MEMORY' : 'SERVER_EXITED_AT_START',
        severity: 'error',
        message: s.oomKilled
          ? `The model server used more than the ${formatBytes(o.memoryBytes)} of memory that ${o.machineType} gives it while starting.${reserveExplanation(o)}`
          : `The model server exited with status ${s.exitCode} while starting.`,
        fix: s.oomKilled ? 'Choose a machine type with more memory, or load a smaller model.' : 'Read the log lines shown above (the evidence; all of them in the replica logs): the server crashed before it answered its health route.',
        evidence: s.startError ? [s.startError, ...o.logTail.slice(-5)] : o.logTail.slice(-10),
      });
    }
  }
  if (s?.outcome === 'never-ready') out.push(...(s.probe ? [probeDiagnosis(s.probe, s.startupTimeoutMs)] : diagnoseNeverReady(o, s)));
  if (o.died) {
    out.push({
      code: o.died.oomKilled ? 'OUT_OF_MEMORY' : 'SERVER_DIED',
      severity: 'error',
      message: o.died.oomKilled
        ? `Replica ${o.died.replica} ran out of memory (${formatBytes(o.memoryBytes)} on ${o.machineType}) while predicting batches of ${o.batchSize}.${reserveExplanation(o)}`
        : `Replica ${o.died.replica}'s model server exited with status ${o.died.exitCode} in the middle of the job.`,
      fix: o.died.oomKilled
        ? `Lower manualBatchTuningParameters.batchSize (--batch-size; now ${o.batchSize}) or choose a machine type with more memory.`
        : 'Read the log tail: the server crashed while answering a request.',
      evidence: o.logTail.slice(-10),
    });
  }
  const labels: Record<FailureKind, [string, string]> = {
    http: ['PREDICT_HTTP_ERROR', 'The predict route answered with a non-2xx status.'],
    timeout: ['PREDICT_TIMEOUT', 'The predict route did not answer within --request-timeout.'],
    connection: ['PREDICT_CONNECTION_ERROR', 'The connection to the model server failed.'],
    'not-json': ['PREDICT_NOT_JSON', 'The predict route answered with a body that is not JSON.'],
    'no-predictions': ['PREDICT_NO_PREDICTIONS', 'The predict route answered JSON without a "predictions" array.'],
    'count-mismatch': ['PREDICT_COUNT_MISMATCH', 'The predict route returned a different number of predictions than instances sent.'],
    'bad-record': ['BAD_INPUT_RECORDS', 'Some input records could not be read or converted into instances.'],
  };
  const fixes: Record<FailureKind, string> = {
    http: 'Read the server log for the failing requests; the errors file holds each failed instance.',
    timeout: `Make each request faster, lower --batch-size (now ${o.batchSize}), or raise --request-timeout.`,
    connection: 'The server closed connections: check its log for crashes or worker restarts.',
    'not-json': 'Return Content-Type application/json with a body {"predictions": [...]}.',
    'no-predictions': 'Return {"predictions": [...]} with one entry per instance, in order.',
    'count-mismatch': 'Return exactly one prediction per instance, in the same order as "instances".',
    'bad-record': 'Fix the input records listed in the errors file (each line names its problem).',
  };
  for (const [kind, info] of Object.entries(o.failuresByKind) as Array<[FailureKind, { count: number; example: string }]>) {
    out.push({ code: labels[kind][0], severity: 'warning', message: `${labels[kind][1]} ${info.count} instance(s) affected.`, fix: fixes[kind], evidence: [info.example] });
  }
  for (const lib of o.logSignals.filter((x) => x.kind === 'missing-shared-library').slice(0, 1)) {
    out.push({ code: 'MISSING_SHARED_LIBRARY', severity: 'error', message: `The image lacks the shared library ${lib.kind === 'missing-shared-library' ? lib.library : ''}.`, fix: lib.kind === 'missing-shared-library' ? installFix(lib.library) : '', evidence: [lib.line] });
  }
  return out;
}

/**
 * A job in which every instance failed ends as Vertex would (SUCCEEDED, unless --max-failed-ratio),
 * but the summary leads with this warning, so that a green CI run is not read as a working server.
 */
function allInstancesFailed(o: BatchObservation): Diagnosis | undefined {
  if (o.cancelled || o.stats.successful > 0 || o.stats.failed === 0 || o.died) return undefined;
  const [kind, top] = (Object.entries(o.failuresByKind) as Array<[FailureKind, { count: number; example: string }]>).sort((a, b) => b[1].count - a[1].count)[0] ?? [];
  return {
    code: 'ALL_INSTANCES_FAILED',
    severity: 'warning',
    message: `All ${o.stats.failed} instance(s) failed; not one prediction was written.${top ? ` Most common (${top.count} instance(s), ${kind}): ${top.example}` : ''}`,
    fix: 'Read .vbe/failed-instances.jsonl and the server log. In CI, pass --max-failed-ratio 0 to make any failed instance fail the job.',
    ...(top ? { evidence: [top.example] } : {}),
  };
}

function probeDiagnosis(p: ProbeFailure, startupTimeoutMs: number): Diagnosis {
  const startup = p.field === 'startupProbe';
  return {
    code: startup ? 'STARTUP_PROBE_FAILED' : 'HEALTH_PROBE_FAILED',
    severity: 'error',
    message: startup
      ? `containerSpec.startupProbe (${p.action}) failed ${p.failures} times in a row (its failureThreshold): the server never became ready.`
      : `containerSpec.healthProbe (${p.action}) did not pass within the start-up limit of ${Math.round(startupTimeoutMs / 1000)}s.`,
    fix: startup
      ? 'Make the probe pass once the model is loaded, or give slow loading more time: raise failureThreshold or periodSeconds (the probe may take failureThreshold x periodSeconds).'
      : 'Make the probe pass once the server can answer predictions, or check its command/path by hand (docker exec).',
    evidence: [`last result: ${p.last}`],
  };
}

function diagnoseNeverReady(o: BatchObservation, s: Extract<NonNullable<BatchObservation['startup']>, { outcome: 'never-ready' }>): Diagnosis[] {
  const out: Diagnosis[] = [];
  const listeners = s.listeners;
  const evidence = [`GET ${o.healthRoute} on port ${o.port}: ${s.lastHealth}`];
  if (listeners) evidence.push(`listening inside the container: ${listeners.length ? listeners.map((l) => `${l.address}:${l.port}`).join(', ') : 'nothing'}`);
  const onPort = listeners?.filter((l) => l.port === o.port) ?? [];
  const crash = o.logSignals.find((x) => x.kind === 'worker-crashed');
  const unanswered = !/^HTTP \d+/.test(s.lastHealth);
  if (crash && (!listeners || listeners.length === 0 || (onPort.length > 0 && unanswered))) {
    // The parent process stays up (it may even hold the socket), but the worker that would answer died.
    out.push({
      code: 'SERVER_WORKER_CRASHED',
      severity: 'error',
      message: `The server's process stayed up, but its worker crashed (a traceback is in the log), so nothing answered GET ${o.healthRoute}.`,
      fix: 'Read the log tail: fix the error in the worker (often an import or model-loading error in the app module); gunicorn/uvicorn keep the parent running when a worker dies.',
      evidence: [...evidence, `log: ${crash.line}`, ...o.logTail.slice(-12)],
    });
    return out;
  }
  if (listeners && listeners.length === 0) {
    out.push({ code: 'NOT_LISTENING', severity: 'error', message: 'Nothing in the container listens on any TCP port.', fix: `Start the HTTP server in the foreground on 0.0.0.0:${o.port} (read the port from AIP_HTTP_PORT).`, evidence });
  } else if (listeners && onPort.length > 0 && onPort.every((l) => isLoopback(l.address))) {
    out.push({
      code: 'LISTENING_ON_LOCALHOST',
      severity: 'error',
      message: `The server listens on ${onPort.map((l) => l.address).join(', ')}:${o.port} only; Vertex reaches the container from outside, so it never answers.`,
      fix: `Bind to 0.0.0.0 (e.g. \`uvicorn --host 0.0.0.0\`, \`app.run(host="0.0.0.0")\`, \`gunicorn -b 0.0.0.0:${o.port}\`).`,
      evidence,
    });
  } else if (listeners && onPort.length === 0) {
    const others = listeners.filter((l) => !isLoopback(l.address) || isWildcard(l.address));
    out.push({
      code: 'WRONG_PORT',
      severity: 'error',
      message: `The server listens on port ${[...new Set(listeners.map((l) => l.port))].join(', ')}, but Vertex sends requests to AIP_HTTP_PORT=${o.port}.`,
      fix: `Listen on the port in AIP_HTTP_PORT (${o.port}), or declare the server's port in containerSpec.ports (--port ${others[0]?.port ?? listeners[0]!.port}).`,
      evidence,
    });
  } else {
    const status = /^HTTP (\d+)/.exec(s.lastHealth)?.[1];
    const alternatives = s.routesAnswering200.filter((r) => r !== o.healthRoute);
    out.push({
      code: status === '404' ? 'HEALTH_ROUTE_NOT_FOUND' : 'HEALTH_NOT_OK',
      severity: 'error',
      message: status
        ? `GET ${o.healthRoute} answered ${status}; Vertex needs 200 from the health route (AIP_HEALTH_ROUTE) within 10 s.`
        : `GET ${o.healthRoute} got no answer (${s.lastHealth}).`,
      fix: alternatives.length
        ? `The server answers 200 on ${alternatives.join(', ')}: serve the health check on AIP_HEALTH_ROUTE, or set containerSpec.healthRoute (--health-route ${alternatives[0]}).`
        : 'Serve GET on the path in AIP_HEALTH_ROUTE and answer 200 once the model is loaded.',
      evidence: [...evidence, ...(alternatives.length ? [`answered 200: ${alternatives.join(', ')}`] : [])],
    });
  }
  return out;
}

function percent(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}
