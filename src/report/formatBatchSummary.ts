import { formatDuration } from '../spec/parseDuration.js';
import { formatBytes } from '../verdict/diagnoseRunJob.js';
import type { BatchPredictionJobResource } from './jobResource.js';
import { formatDiagnoses, formatDisk, formatLimits } from './formatRunSummary.js';
import type { FailedInstance } from '../staging/failedInstances.js';

/** One failed instance on one line: what was sent (cut), the error and the attempts. */
export function formatFailedInstance(f: FailedInstance): string {
  const sent = JSON.stringify('key' in f ? { key: f.key } : (f.instance ?? null)) ?? 'null';
  return `${sent.length > 120 ? `${sent.slice(0, 120)}…` : sent} -> error ${f.error.code}: ${f.error.message} (${f.attempts} attempt(s))`;
}

/** The human summary printed on stderr at the end of `vbe batch-predict`. */
export function formatBatchSummary(job: BatchPredictionJobResource): string {
  const e = job.emulator;
  const c = job.completionStats;
  const lines = [''];
  // Every instance failed in a job that still SUCCEEDED: said first, before the green state line.
  const allFailed = e.diagnoses.find((d) => d.code === 'ALL_INSTANCES_FAILED');
  if (allFailed) lines.push(`! ALL_INSTANCES_FAILED: ${allFailed.message}`);
  lines.push(`${job.state}  ${job.displayName}  (${formatDuration(e.durationMs)})`);
  if (job.error) lines.push(`  error ${job.error.code}: ${job.error.message}`);
  lines.push(...formatDiagnoses(e.diagnoses, e.warnings));
  lines.push(`  machine:   ${formatLimits(e.limits)} x ${job.dedicatedResources.startingReplicaCount} replica(s)`);
  if (e.deadlines) lines.push(`  limits:    start-up ${formatDuration(e.deadlines.startupTimeoutMs)}, each request ${formatDuration(e.deadlines.requestTimeoutMs)}${e.disk ? `; disk ${formatDisk(e.disk)}` : ''}`);
  lines.push(`  routes:    GET ${e.routes.health}, POST ${e.routes.predict} on port ${e.routes.port}`);
  lines.push(`  instances: ${c.successfulCount} succeeded, ${c.failedCount} failed, ${c.incompleteCount} incomplete (batches of ${job.manualBatchTuningParameters.batchSize})`);
  lines.push(`  outputs:   ${job.outputInfo.outputDirectory}`);
  const failed = e.failedInstances;
  if (failed?.count) {
    lines.push(`  failed:    ${failed.count} instance(s), each in ${failed.file}; first:`);
    for (const f of failed.examples.slice(0, 3)) lines.push(`      ${formatFailedInstance(f)}`);
  }
  lines.push(`  record:    ${e.recordFile}`);
  lines.push(`  phases:    ${e.phases.map((p) => `${p.name} ${formatDuration(p.durationMs)}`).join(', ')}`);
  return lines.join('\n');
}
