import type { DoctorReport } from '../doctor/runDoctor.js';
import { formatDuration } from '../spec/parseDuration.js';
import { formatBytes } from '../verdict/diagnoseRunJob.js';
import type { Diagnosis } from '../verdict/jobState.js';
import type { BatchPredictionJobResource, RunJobResource } from './jobResource.js';

/** What a report is made from: a job record (run, batch-predict) or a doctor checklist. */
export type ReportSubject = RunJobResource | BatchPredictionJobResource | DoctorReport;

const MAX_DIAGNOSES = 10;
const MAX_CELL_CHARS = 300;

/** Text safe in a Markdown table cell or line: no pipes, no newlines, no HTML, no links. */
export function markdownText(text: string, max = MAX_CELL_CHARS): string {
  const flat = text.replace(/\s*\n\s*/g, ' ').replace(/[\\`*_[\]<>|]/g, (c) => `\\${c}`).replace(/(https?):\/\//g, '$1:\u200b//');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

const icon = (ok: boolean) => (ok ? '✅' : '❌');
const SEVERITY: Record<Diagnosis['severity'], string> = { error: '❌', warning: '⚠️', info: 'ℹ️' };

function diagnosisLines(diagnoses: readonly Diagnosis[]): string[] {
  if (!diagnoses.length) return [];
  const lines = ['', '**Diagnoses**', ''];
  for (const d of diagnoses.slice(0, MAX_DIAGNOSES)) {
    lines.push(`- ${SEVERITY[d.severity]} \`${d.code}\`: ${markdownText(d.message)}`);
    if (d.fix) lines.push(`  - fix: ${markdownText(d.fix)}`);
  }
  if (diagnoses.length > MAX_DIAGNOSES) lines.push(`- … and ${diagnoses.length - MAX_DIAGNOSES} more (see the job record)`);
  return lines;
}

function table(rows: ReadonlyArray<[string, string]>): string[] {
  return ['', '| | |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)];
}

function jobSummary(job: RunJobResource | BatchPredictionJobResource): string[] {
  const e = job.emulator;
  const batch = e.contract === 'prediction-server';
  const ok = job.state === 'JOB_STATE_SUCCEEDED';
  const lines = [`### ${icon(ok)} vbe ${batch ? 'batch-predict' : 'run'} ${markdownText(job.displayName, 120)}: ${job.state}`];
  if (job.error) lines.push('', `> error ${job.error.code}: ${markdownText(job.error.message, 1000)}`);
  const rows: Array<[string, string]> = [
    ['image', markdownText(e.image.uri, 200)],
    ['duration', formatDuration(e.durationMs)],
  ];
  if (e.limits) rows.push(['machine', `${e.limits.machineType}: ${e.limits.cpus} CPU, ${formatBytes(e.limits.memoryBytes)}${batch ? ` × ${(job as BatchPredictionJobResource).dedicatedResources.startingReplicaCount} replica(s)` : ''}`]);
  if (e.peakMemoryBytes !== null && e.limits) rows.push(['peak memory', `${formatBytes(e.peakMemoryBytes)} of ${formatBytes(e.limits.memoryBytes)}`]);
  if (e.contract === 'files') {
    const run = job as RunJobResource;
    rows.push(['exit code', `${run.emulator.exitCode ?? '-'}${run.emulator.oomKilled ? ' (OOM kill)' : ''}${run.emulator.timedOut ? ' (timeout)' : ''}`]);
    if (run.emulator.attempts.length > 1) rows.push(['attempts', String(run.emulator.attempts.length)]);
    rows.push(['inputs', `${run.emulator.inputs.fileCount} file(s), ${formatBytes(run.emulator.inputs.totalBytes)}`]);
    rows.push(['outputs', `${run.emulator.outputs.fileCount} file(s), ${formatBytes(run.emulator.outputs.totalBytes)}`]);
  } else {
    const bp = job as BatchPredictionJobResource;
    const c = bp.completionStats;
    rows.push(['instances', `${c.successfulCount} succeeded, ${c.failedCount} failed, ${c.incompleteCount} incomplete`]);
    const latency = bp.emulator.charts?.latency;
    if (latency?.count) rows.push(['request latency', `p50 ${formatDuration(latency.p50Ms)}, p95 ${formatDuration(latency.p95Ms)}, p99 ${formatDuration(latency.p99Ms)} (${latency.count} requests)`]);
    for (const [kind, info] of Object.entries(bp.emulator.failuresByKind)) rows.push([`failed: ${markdownText(kind, 40)}`, `${info.count}: ${markdownText(info.example, 200)}`]);
  }
  if (e.phases.length) rows.push(['phases', e.phases.map((p) => `${markdownText(p.name, 40)} ${formatDuration(p.durationMs)}`).join(', ')]);
  lines.push(...table(rows), ...diagnosisLines(e.diagnoses));
  if (e.warnings.length) lines.push('', ...e.warnings.slice(0, MAX_DIAGNOSES).map((w) => `- ⚠️ ${markdownText(w)}`));
  return lines;
}

const CHECK_ICON = { pass: '✅', warn: '⚠️', fail: '❌', skip: '➖' } as const;

function doctorSummary(report: DoctorReport): string[] {
  const counts = (['pass', 'warn', 'fail', 'skip'] as const).map((s) => `${report.checks.filter((c) => c.status === s).length} ${s}`).join(', ');
  const lines = [`### ${icon(report.ok)} vbe doctor ${markdownText(report.image, 200)}: ${report.ok ? 'no check failed' : 'checks failed'}`, '', counts];
  lines.push('', '| | check | result |', '|---|---|---|');
  for (const c of report.checks) lines.push(`| ${CHECK_ICON[c.status]} | ${markdownText(c.id, 40)} | ${markdownText(c.summary)}${c.status === 'fail' && c.fix ? ` (fix: ${markdownText(c.fix)})` : ''} |`);
  return lines;
}

/** A short Markdown summary for CI (GitHub's job summary, GitLab and others as a file): no links, no HTML. */
export function markdownSummary(subject: ReportSubject): string {
  return `${('checks' in subject ? doctorSummary(subject) : jobSummary(subject)).join('\n')}\n`;
}
