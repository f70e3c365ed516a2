import { formatDuration } from '../spec/parseDuration.js';
import { formatBytes } from '../verdict/diagnoseRunJob.js';
import type { Diagnosis } from '../verdict/jobState.js';
import type { DiskRecord } from '../jobs/diskCheck.js';
import type { LimitsRecord, RunJobResource } from './jobResource.js';

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
  if (e.limits) lines.push(`  machine:  ${formatLimits(e.limits)}`);
  if (e.disk) lines.push(`  disk:     ${formatDisk(e.disk)}`);
  lines.push(`  exit:     ${e.exitCode ?? '-'}${e.oomKilled ? ' (OOM-killed)' : ''}${e.timedOut ? ' (timed out)' : ''}`);
  lines.push(`  outputs:  ${e.outputs.hostDirectory} (${e.outputs.fileCount} file(s), ${formatBytes(e.outputs.totalBytes)})`);
  if (e.gcs) lines.push(`  /gcs:     ${e.gcs.writtenCount} file(s) written back to ${e.gcs.root} (bucket(s) ${e.gcs.buckets.join(', ')})`);
  lines.push(`  logs:     ${e.logs.stdout}, ${e.logs.stderr}`);
  lines.push(`  record:   ${e.recordFile}`);
  lines.push(`  phases:   ${e.phases.map((p) => `${p.name} ${formatDuration(p.durationMs)}`).join(', ')}`);
  return lines.join('\n');
}

/** "n1-standard-4 -> 4 CPU (cpuset 0-3), 9.0 GiB memory (15 GiB less 6.0 GiB Vertex keeps)". */
export function formatLimits(l: LimitsRecord): string {
  const reserve = l.memoryReserveBytes && l.machineMemoryBytes ? ` (${formatBytes(l.machineMemoryBytes)} less ${formatBytes(l.memoryReserveBytes)} Vertex keeps)` : '';
  return `${l.machineType} -> ${l.cpus} CPU${l.cpusetCpus ? ` (cpuset ${l.cpusetCpus})` : ''}, ${formatBytes(l.memoryBytes)} memory${reserve}${l.cappedToHost ? ' (capped to this host)' : ''}`;
}

/** "used 1.2 GiB of 100 GiB (default), measured". */
export function formatDisk(d: DiskRecord): string {
  const used = d.usedBytes === null ? 'not measured' : `used ${formatBytes(d.usedBytes)} of`;
  return `${used} ${formatBytes(d.sizeBytes)} (${d.source})${d.enforcement === 'not-run' ? '' : `, ${d.enforcement === 'storage-opt' ? 'enforced by the engine' : 'measured after the run'}`}`;
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
