import type { BatchPredictionJobResource, LimitsRecord, RunJobResource } from '../report/jobResource.js';
import { formatDuration } from '../spec/parseDuration.js';
import { formatBytes } from '../verdict/diagnoseRunJob.js';
import type { Diagnosis } from '../verdict/jobState.js';
import type { DoctorCheck } from './doctorCheck.js';

const SAMPLE_SENSITIVE = new Set(['NONZERO_EXIT']);
const describe = (d: Diagnosis) => `${d.code}: ${d.message}`;

/** Turns a file-contract run of the image into checklist lines. */
export function filesChecks(job: RunJobResource, sampleGiven: boolean): DoctorCheck[] {
  const e = job.emulator;
  const errors = e.diagnoses.filter((d) => d.severity === 'error');
  const evidence = [`exit ${e.exitCode ?? '-'} after ${formatDuration(e.durationMs)}, ${e.outputs.fileCount} output file(s)`, ...e.diagnoses.map(describe), ...e.logTail.slice(-5)];
  let run: DoctorCheck;
  if (job.state === 'JOB_STATE_SUCCEEDED') {
    run = { id: 'files-run', title: 'Run with a sample input', status: 'pass', summary: `read AIP_BATCH_INPUT_URIS, wrote ${e.outputs.fileCount} file(s) to AIP_BATCH_OUTPUT_DIR, exit 0 in ${formatDuration(e.durationMs)}`, evidence };
  } else {
    const onlySampleTrouble = !sampleGiven && errors.every((d) => SAMPLE_SENSITIVE.has(d.code));
    run = {
      id: 'files-run',
      title: 'Run with a sample input',
      status: onlySampleTrouble ? 'warn' : 'fail',
      summary: onlySampleTrouble
        ? `exited ${e.exitCode} on a generated sample input; pass --sample with a real input file for a real verdict`
        : `${job.error?.message ?? job.state}`,
      evidence,
      ...(errors[0]?.fix ? { fix: errors[0].fix } : {}),
    };
  }
  return [run, memoryCheck(e.peakMemoryBytes, e.limits, e.oomKilled)];
}

/** Turns a prediction-server run of the image into checklist lines. */
export function serverChecks(job: BatchPredictionJobResource, sampleCount: number): DoctorCheck[] {
  const e = job.emulator;
  const startup = e.startup as { outcome?: string; afterMs?: number } | null;
  const has = (...codes: string[]) => e.diagnoses.find((d) => codes.includes(d.code));
  const checks: DoctorCheck[] = [];
  const crashed = has('SERVER_WORKER_CRASHED');
  const exited = crashed ?? (startup?.outcome === 'exited' ? has('RUNS_TO_COMPLETION', 'SERVER_EXITED_AT_START', 'OUT_OF_MEMORY') : undefined);
  checks.push(
    exited
      ? { id: 'server-starts', title: 'Server stays up', status: 'fail', summary: exited.message, evidence: exited.evidence ?? [], ...(exited.fix ? { fix: exited.fix } : {}) }
      : { id: 'server-starts', title: 'Server stays up', status: startup ? 'pass' : 'skip', summary: startup ? 'the entrypoint keeps running' : 'not started' },
  );
  const network = has('NOT_LISTENING', 'LISTENING_ON_LOCALHOST', 'WRONG_PORT');
  checks.push(
    network
      ? { id: 'server-listens', title: `Listens on 0.0.0.0:${e.routes.port}`, status: 'fail', summary: network.message, evidence: network.evidence ?? [], ...(network.fix ? { fix: network.fix } : {}) }
      : {
          id: 'server-listens',
          title: `Listens on 0.0.0.0:${e.routes.port}`,
          status: startup?.outcome === 'ready' ? 'pass' : 'skip',
          summary: startup?.outcome === 'ready' ? `reachable from outside the container on port ${e.routes.port}` : 'not reached',
        },
  );
  const health = has('HEALTH_ROUTE_NOT_FOUND', 'HEALTH_NOT_OK');
  checks.push(
    health
      ? { id: 'health-route', title: 'Health route', status: 'fail', summary: health.message, evidence: health.evidence ?? [], ...(health.fix ? { fix: health.fix } : {}) }
      : {
          id: 'health-route',
          title: 'Health route',
          status: startup?.outcome === 'ready' ? 'pass' : 'skip',
          summary: startup?.outcome === 'ready' ? `GET ${e.routes.health} answered 200` : 'not reached',
        },
  );
  if (startup?.outcome === 'ready') {
    checks.push({
      id: 'startup-time',
      title: 'Start-up time',
      status: (startup.afterMs ?? 0) > 10 * 60_000 ? 'warn' : 'pass',
      summary: `healthy ${formatDuration(startup.afterMs ?? 0)} after start`,
    });
  }
  if (sampleCount === 0) {
    checks.push({ id: 'predict-sample', title: 'Predict a sample batch', status: 'skip', summary: 'no --sample given', fix: 'Pass --sample instances.jsonl to send one real batch.' });
  } else if (startup?.outcome === 'ready') {
    const ok = e.stats.successful === sampleCount;
    const failure = Object.values(e.failuresByKind)[0];
    checks.push({
      id: 'predict-sample',
      title: 'Predict a sample batch',
      status: ok ? 'pass' : 'fail',
      summary: ok
        ? `${sampleCount} instance(s) in one request to ${e.routes.predict}: ${sampleCount} predictions, response ${formatBytes(e.stats.maxResponseBytes)}`
        : `${e.stats.failed} of ${sampleCount} instance(s) failed`,
      ...(failure ? { evidence: [failure.example] } : {}),
      ...(!ok ? { fix: has('PREDICT_COUNT_MISMATCH', 'PREDICT_NO_PREDICTIONS', 'PREDICT_NOT_JSON', 'PREDICT_HTTP_ERROR', 'PREDICT_TIMEOUT')?.fix ?? 'Read the server log.' } : {}),
    });
  }
  checks.push(memoryCheck(e.peakMemoryBytes, e.limits, Boolean(has('OUT_OF_MEMORY'))));
  return checks;
}

/**
 * Peak memory against the limit the job ran under: the machine's memory minus what Vertex keeps
 * (--memory-reserve), the same limit `vbe run` and `vbe batch-predict` apply.
 */
function memoryCheck(peak: number | null, limits: LimitsRecord | undefined, oom: boolean): DoctorCheck {
  const limit = limits?.memoryBytes ?? 0;
  const machineType = limits?.machineType ?? '';
  const kept = limits?.memoryReserveBytes && limits.machineMemoryBytes ? `${formatBytes(limits.machineMemoryBytes)} less ${formatBytes(limits.memoryReserveBytes)} Vertex keeps` : '';
  const of = `${formatBytes(limit)} (${machineType}${kept ? `: ${kept}` : ''})`;
  if (oom) return { id: 'memory', title: 'Memory', status: 'fail', summary: `ran out of the ${of}`, fix: 'Choose a machine type with more memory, use less, or (servers) lower the batch size.' };
  if (!peak) return { id: 'memory', title: 'Memory', status: 'skip', summary: 'no memory sample (the container ran for less than a second)' };
  const ratio = peak / limit;
  return {
    id: 'memory',
    title: 'Memory',
    status: ratio >= 0.8 ? 'warn' : 'pass',
    summary: `peak ${formatBytes(peak)} of ${of}, ${(ratio * 100).toFixed(1)}%`,
    ...(ratio >= 0.8 ? { fix: 'Real inputs may be larger than the sample: leave headroom, or choose a machine type with more memory.' } : {}),
  };
}
