import { formatDuration } from '../spec/parseDuration.js';
import { formatBytes } from '../verdict/diagnoseRunJob.js';
import type { Diagnosis } from '../verdict/jobState.js';
import type { RunJobResource } from './jobResource.js';

const marks = { error: '✗', warning: '!', info: 'i' } as const;

/** The human summary printed on stderr at the end of `vbe run`. */
export function formatRunSummary(job: RunJobResource): string {
  const e = job.emulator;
  const lines: string[] = [];
  lines.push('');
  lines.push(`${job.state}  ${job.displayName}  (${formatDuration(e.durationMs)})`);
  if (job.error) lines.push(`  error ${job.error.code}: ${job.error.message}`);
  if (e.flavour) lines.push(`  as:       ${e.flavour === 'custom-job' ? 'a CustomJob' : 'the batch file contract'} (${e.flavourReason})`);
  lines.push(...formatDiagnoses(e.diagnoses, e.warnings));
  if (e.limits) {
    lines.push(`  machine:  ${e.limits.machineType} -> ${e.limits.cpus} CPU, ${formatBytes(e.limits.memoryBytes)}${e.limits.cappedToHost ? ' (capped to this host)' : ''}`);
  }
  lines.push(`  exit:     ${e.exitCode ?? '-'}${e.oomKilled ? ' (OOM-killed)' : ''}${e.timedOut ? ' (timed out)' : ''}`);
  lines.push(`  outputs:  ${e.outputs.hostDirectory} (${e.outputs.fileCount} file(s), ${formatBytes(e.outputs.totalBytes)})`);
  if (e.gcs) lines.push(`  /gcs:     ${e.gcs.writtenCount} file(s) written back to ${e.gcs.root} (bucket(s) ${e.gcs.buckets.join(', ')})`);
  lines.push(`  logs:     ${e.logs.stdout}, ${e.logs.stderr}`);
  lines.push(`  record:   ${e.recordFile}`);
  lines.push(`  phases:   ${e.phases.map((p) => `${p.name} ${formatDuration(p.durationMs)}`).join(', ')}`);
  return lines.join('\n');
}

/** Diagnoses (with evidence and fix) and warnings, indented for a summary. */
export function formatDiagnoses(diagnoses: readonly Diagnosis[], warnings: readonly string[]): string[] {
  const lines: string[] = [];
  for (const d of diagnoses) {
    lines.push(`  ${marks[d.severity]} ${d.code}: ${d.message}`);
    for (const ev of d.evidence ?? []) lines.push(`      ${ev}`);
    if (d.fix) lines.push(`      fix: ${d.fix}`);
  }
  for (const w of warnings) lines.push(`  ! ${w}`);
  return lines;
}
