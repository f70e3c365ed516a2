import { formatDuration } from '../spec/parseDuration.js';
import { formatBytes } from '../verdict/diagnoseRunJob.js';
import type { BatchPredictionJobResource } from './jobResource.js';
import { formatDiagnoses, formatDisk, formatLimits } from './formatRunSummary.js';

/** The human summary printed on stderr at the end of `vbe batch-predict`. */
export function formatBatchSummary(job: BatchPredictionJobResource): string {
  const e = job.emulator;
  const c = job.completionStats;
  const lines = ['', `${job.state}  ${job.displayName}  (${formatDuration(e.durationMs)})`];
  if (job.error) lines.push(`  error ${job.error.code}: ${job.error.message}`);
  lines.push(...formatDiagnoses(e.diagnoses, e.warnings));
  lines.push(`  machine:   ${formatLimits(e.limits)} x ${job.dedicatedResources.startingReplicaCount} replica(s)`);
  if (e.deadlines) lines.push(`  limits:    start-up ${formatDuration(e.deadlines.startupTimeoutMs)}, each request ${formatDuration(e.deadlines.requestTimeoutMs)}${e.disk ? `; disk ${formatDisk(e.disk)}` : ''}`);
  lines.push(`  routes:    GET ${e.routes.health}, POST ${e.routes.predict} on port ${e.routes.port}`);
  lines.push(`  instances: ${c.successfulCount} succeeded, ${c.failedCount} failed, ${c.incompleteCount} incomplete (batches of ${job.manualBatchTuningParameters.batchSize})`);
  lines.push(`  outputs:   ${job.outputInfo.outputDirectory}`);
  lines.push(`  record:    ${e.recordFile}`);
  lines.push(`  phases:    ${e.phases.map((p) => `${p.name} ${formatDuration(p.durationMs)}`).join(', ')}`);
  return lines.join('\n');
}
