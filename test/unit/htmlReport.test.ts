import { describe, expect, it } from 'vitest';
import { ChartRecorder } from '../../src/jobs/chartRecorder.js';
import { renderHtmlReport } from '../../src/report/html/renderHtmlReport.js';
import type { BatchPredictionJobResource } from '../../src/report/jobResource.js';

/** A day-long two-replica batch prediction, recorded the way batchPredict records it (samples once a second). */
function dayLongJob(): BatchPredictionJobResource {
  const origin = new Date('2026-01-01T00:00:00Z');
  const charts = new ChartRecorder(origin);
  const now = { ms: 0 };
  charts.now = () => now.ms;
  const stats = [charts.statsOf('replica-0'), charts.statsOf('replica-1')];
  for (let s = 0; s < 86_400; s++) {
    now.ms = s * 1000;
    for (const [i, onSample] of stats.entries()) onSample({ atMs: origin.getTime() + now.ms, memoryBytes: 1e9 + (s % 600) * 1e6 + i, cpuCores: 1.5 });
    charts.instances(64, s % 100 === 0 ? 1 : 0);
    charts.requestLatency(20 + (s % 50));
  }
  charts.mark('replica-1', 'died', 'died (exit 7)', 86_000_000);
  const record = charts.toRecord([{ name: 'predict', startMs: 1000, durationMs: 86_398_000 }]);
  return {
    name: 'projects/local/locations/local/batchPredictionJobs/1',
    displayName: 'day <long>',
    state: 'JOB_STATE_SUCCEEDED',
    completionStats: { successfulCount: '5529600', failedCount: '864', incompleteCount: '0' },
    dedicatedResources: { machineSpec: { machineType: 'n1-standard-4' }, startingReplicaCount: 2, maxReplicaCount: 2 },
    outputInfo: { outputDirectory: '/out' },
    createTime: origin.toISOString(),
    emulator: {
      contract: 'prediction-server',
      image: { uri: 'server:1', pulled: false },
      limits: { machineType: 'n1-standard-4', cpus: 4, memoryBytes: 15 * 1024 ** 3, requested: { cpus: 4, memoryBytes: 15 * 1024 ** 3 }, cappedToHost: false },
      peakMemoryBytes: 2e9,
      failuresByKind: { http: { count: 864, example: 'HTTP 500 <b>bold</b>' } },
      durationMs: 86_400_000,
      phases: [{ name: 'predict', durationMs: 86_398_000, startMs: 1000 }],
      diagnoses: [{ code: 'PREDICT_HTTP_ERROR', severity: 'warning', message: 'The predict route answered <500>.', fix: 'Read the server log.' }],
      warnings: [],
      logTail: [],
      charts: record,
    },
  } as unknown as BatchPredictionJobResource;
}

describe('HTML report from a record (pure rendering)', () => {
  it('a day-long job: the record stays bounded and the page well under 1 MB, with no script and the text escaped', () => {
    const job = dayLongJob();
    const charts = job.emulator.charts!;
    expect(charts.replicas[0]!.memoryBytes.points.length).toBeLessThanOrEqual(720);
    expect(charts.instances!.succeeded.points.length).toBeLessThanOrEqual(720);
    expect(JSON.stringify(charts).length).toBeLessThan(100_000);
    const page = renderHtmlReport(job);
    expect(page.length).toBeLessThan(1024 * 1024);
    expect(page).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org\/)/i);
    expect(page).toContain('day &lt;long&gt;');
    expect(page).toContain('HTTP 500 &lt;b&gt;bold&lt;/b&gt;');
    expect(page).toContain('The predict route answered &lt;500&gt;.');
    expect(page).toContain(`data-limit-bytes="${15 * 1024 ** 3}"`);
    expect(page).toContain(`data-buckets="${charts.latency!.buckets.length}"`);
    expect(page).toMatch(/data-chart="failures" data-failed="864"/);
    expect(page).toContain('died (exit 7)');
  });
});
