import http from 'node:http';
import type { StartedContainer } from '../runtime/containerEngine.js';
import type { ProbeSpec } from '../spec/vertexSchemas.js';

/**
 * containerSpec.startupProbe / healthProbe as model.proto's `Probe` defines them (Kubernetes
 * semantics): an `exec` runs inside the container through the engine (exit 0 is success), an
 * `httpGet` asks the served port on the engine's host (200-399 is success). Defaults from the proto:
 * period 10 s, timeout 1 s, failureThreshold 3, successThreshold 1, initialDelay 0.
 */
export const PROBE_DEFAULTS = { periodSeconds: 10, timeoutSeconds: 1, failureThreshold: 3, successThreshold: 1, initialDelaySeconds: 0 } as const;

export interface ProbeTiming {
  periodMs: number;
  timeoutMs: number;
  failureThreshold: number;
  successThreshold: number;
  initialDelayMs: number;
}

export function probeTiming(probe: ProbeSpec): ProbeTiming {
  return {
    periodMs: (probe.periodSeconds ?? PROBE_DEFAULTS.periodSeconds) * 1000,
    timeoutMs: (probe.timeoutSeconds ?? PROBE_DEFAULTS.timeoutSeconds) * 1000,
    failureThreshold: probe.failureThreshold ?? PROBE_DEFAULTS.failureThreshold,
    successThreshold: probe.successThreshold ?? PROBE_DEFAULTS.successThreshold,
    initialDelayMs: (probe.initialDelaySeconds ?? PROBE_DEFAULTS.initialDelaySeconds) * 1000,
  };
}

/** "exec cat /tmp/ready", "GET /ready on port 8080". */
export function describeProbe(probe: ProbeSpec, port: number): string {
  if (probe.exec) return `exec ${probe.exec.command.join(' ')}`;
  return `GET ${probe.httpGet?.path ?? '/'} on port ${probe.httpGet?.port ?? port}`;
}

/** Where a probe goes: the container (exec) and its served port on the engine's host (httpGet). */
export interface ProbeTarget {
  started: StartedContainer;
  host: string;
  hostPort: number;
}

export interface ProbeResult {
  ok: boolean;
  /** "exit 1: <output>", "HTTP 503", "no answer within 1s". */
  detail: string;
}

/** Runs the probe once. */
export async function runProbe(probe: ProbeSpec, target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  if (probe.exec) {
    const result = await target.started.exec(probe.exec.command, timeoutMs);
    if (!result) return { ok: false, detail: `could not run ${probe.exec.command[0]} in the container (not found, or no answer within ${timeoutMs / 1000}s)` };
    const output = result.output.trim().split('\n').slice(-2).join(' | ').slice(0, 300);
    return { ok: result.exitCode === 0, detail: `exit ${result.exitCode}${output ? `: ${output}` : ''}` };
  }
  const get = probe.httpGet ?? {};
  return httpProbe(target.host, target.hostPort, get.path ?? '/', get.httpHeaders ?? [], timeoutMs);
}

function httpProbe(host: string, port: number, path: string, headers: ReadonlyArray<{ name: string; value: string }>, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const request = http.request({ host, port, path, method: 'GET', headers: Object.fromEntries(headers.map((h) => [h.name, h.value])), agent: false }, (response) => {
      response.resume();
      const status = response.statusCode ?? 0;
      resolve({ ok: status >= 200 && status < 400, detail: `HTTP ${status}` });
    });
    request.setTimeout(timeoutMs, () => {
      request.destroy();
      resolve({ ok: false, detail: `no answer within ${timeoutMs / 1000}s` });
    });
    request.on('error', (error) => resolve({ ok: false, detail: `no HTTP answer (${(error as NodeJS.ErrnoException).code ?? error.message})` }));
    request.end();
  });
}

export type ProbeOutcome =
  | { outcome: 'passed' }
  | { outcome: 'failed'; failures: number; last: string }
  | { outcome: 'stopped' };

/**
 * Probes every period (after the initial delay) until `successThreshold` successes in a row
 * (passed), `failureThreshold` failures in a row when `failAfterThreshold` (a startup probe: the
 * container would be restarted, and a batch job's server never becomes ready), or until `stop()`
 * says to stop (the container exited, the start-up limit passed, the job was cancelled).
 */
export async function waitForProbe(
  probe: ProbeSpec,
  target: ProbeTarget,
  options: { failAfterThreshold: boolean; stop: () => Promise<boolean>; onResult?: (result: ProbeResult) => void },
): Promise<ProbeOutcome> {
  const timing = probeTiming(probe);
  let successes = 0;
  let failures = 0;
  if (timing.initialDelayMs > 0 && (await sleepUnlessStopped(timing.initialDelayMs, options.stop))) return { outcome: 'stopped' };
  for (;;) {
    if (await options.stop()) return { outcome: 'stopped' };
    const result = await runProbe(probe, target, timing.timeoutMs);
    options.onResult?.(result);
    if (result.ok) {
      failures = 0;
      if (++successes >= timing.successThreshold) return { outcome: 'passed' };
    } else {
      successes = 0;
      if (++failures >= timing.failureThreshold && options.failAfterThreshold) return { outcome: 'failed', failures, last: result.detail };
    }
    if (await sleepUnlessStopped(timing.periodMs, options.stop)) return { outcome: 'stopped' };
  }
}

/** Sleeps in short steps, checking `stop` between them; true when stopped. */
async function sleepUnlessStopped(ms: number, stop: () => Promise<boolean>): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, Math.min(500, end - Date.now())));
    if (await stop()) return true;
  }
  return false;
}
