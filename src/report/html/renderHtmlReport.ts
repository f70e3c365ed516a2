import type { DoctorReport } from '../../doctor/runDoctor.js';
import { formatDuration } from '../../spec/parseDuration.js';
import { formatBytes } from '../../verdict/diagnoseRunJob.js';
import type { Diagnosis } from '../../verdict/jobState.js';
import type { ChartDataRecord } from '../chartData.js';
import type { BatchPredictionJobResource, RunJobResource } from '../jobResource.js';
import type { ReportSubject } from '../markdownSummary.js';
import { barsOption, cpuOption, failuresOption, latencyOption, memoryOption, throughputOption, timelineOption } from './chartOptions.js';
import { figure, html, page } from './htmlText.js';
import { renderSvg } from './svgChart.js';

const WIDTH = 940;
const HEIGHT = 280;

/**
 * The HTML report of a job record or a doctor checklist: one self-contained file (inline CSS,
 * charts as static SVG drawn here, no script, nothing from the network). The verdict and all
 * text read without JavaScript.
 */
export function renderHtmlReport(subject: ReportSubject): string {
  if ('checks' in subject) return doctorPage(subject);
  return jobPage(subject);
}

function diagnosesHtml(diagnoses: readonly Diagnosis[]): string {
  if (!diagnoses.length) return '<p class="meta">No diagnoses.</p>';
  return `<ul class="diagnoses">${diagnoses
    .map(
      (d) =>
        `<li data-code="${html(d.code)}"><span class="sev-${d.severity}">${html(d.severity)}</span> <code>${html(d.code)}</code>: ${html(d.message)}${d.fix ? `<p class="fix">${html(d.fix)}</p>` : ''}${d.evidence?.length ? `<p class="evidence">${html(d.evidence.join('\n'))}</p>` : ''}</li>`,
    )
    .join('')}</ul>`;
}

function rowsHtml(rows: ReadonlyArray<[string, string]>): string {
  return `<table class="facts">${rows.map(([k, v]) => `<tr><th>${html(k)}</th><td>${html(v)}</td></tr>`).join('')}</table>`;
}

function chartsHtml(charts: ChartDataRecord | undefined, limits: { memoryBytes: number; cpus: number; machineMemoryBytes?: number } | undefined, phases: readonly string[]): string {
  if (!charts) return '<p class="meta">This record has no chart data (written by an older vbe).</p>';
  const parts: string[] = [];
  const timeline = timelineOption(charts);
  const spans = charts.timeline.map((s) => `<li data-lane="${html(s.lane)}"><b>${html(s.name)}</b> (${html(s.lane)}): ${html(formatDuration(s.endMs - s.startMs))}, ${html(formatDuration(s.startMs))} to ${html(formatDuration(s.endMs))}</li>`);
  const marks = charts.marks.map((m) => `<li data-lane="${html(m.lane)}" data-mark="${html(m.kind)}">▲ ${html(m.label)} (${html(m.lane)}) at ${html(formatDuration(m.atMs))}</li>`);
  parts.push(
    figure(
      'timeline',
      'Timeline',
      renderSvg(timeline.option, { width: WIDTH, height: timeline.height }),
      { phases: phases.join(','), lanes: [...new Set(charts.timeline.map((s) => s.lane))].join(','), restarts: charts.marks.filter((m) => m.kind === 'restart').length },
      `<details><summary>every span and event</summary><ul class="spans">${spans.join('')}${marks.join('')}</ul></details>`,
    ),
  );
  const sampled = charts.replicas.some((r) => r.memoryBytes.points.length > 0);
  if (limits && sampled) {
    const oom = charts.marks.find((m) => m.kind === 'oom-kill');
    parts.push(
      figure('memory', 'Memory over time', renderSvg(memoryOption(charts, limits.memoryBytes, limits.machineMemoryBytes), { width: WIDTH, height: HEIGHT }), {
        'limit-bytes': limits.memoryBytes,
        ...(limits.machineMemoryBytes ? { 'machine-bytes': limits.machineMemoryBytes } : {}),
        'peak-bytes': Math.max(0, ...charts.replicas.flatMap((r) => r.memoryBytes.points.map(([, v]) => v))),
        ...(oom ? { 'oom-at-ms': oom.atMs } : {}),
      }, `Engine stats about once a second (${charts.replicas.map((r) => `${r.replica}: ${r.memoryBytes.points.length} points of ${formatDuration(r.memoryBytes.bucketMs)}`).join('; ')}), against the limit applied to the container.`),
    );
    parts.push(figure('cpu', 'CPU over time', renderSvg(cpuOption(charts, limits.cpus), { width: WIDTH, height: HEIGHT }), { 'quota-cpus': limits.cpus }));
  } else if (!sampled) parts.push('<p class="meta">No engine stats were sampled (the container ran for less than about a second).</p>');
  return parts.join('\n');
}

/** The machine type's own memory figure beside the applied limit, when a record has one. */
function machineMemoryBytes(limits: { memoryBytes: number; requested?: { memoryBytes: number }; machineMemoryBytes?: number } | undefined): number | undefined {
  return limits?.machineMemoryBytes ?? limits?.requested?.memoryBytes;
}

function jobPage(job: RunJobResource | BatchPredictionJobResource): string {
  const e = job.emulator;
  const batch = e.contract === 'prediction-server';
  const command = batch ? 'batch-predict' : 'run';
  const ok = job.state === 'JOB_STATE_SUCCEEDED';
  const rows: Array<[string, string]> = [
    ['image', e.image.uri + (e.image.digest ? ` (${e.image.digest})` : '')],
    ['created', job.createTime],
    ['duration', formatDuration(e.durationMs)],
  ];
  if (e.limits) rows.push(['machine', `${e.limits.machineType}: ${e.limits.cpus} CPU, ${formatBytes(e.limits.memoryBytes)} applied${batch ? `, ${(job as BatchPredictionJobResource).dedicatedResources.startingReplicaCount} replica(s)` : ''}`]);
  if (e.peakMemoryBytes !== null) rows.push(['peak memory', formatBytes(e.peakMemoryBytes)]);
  if (!batch) {
    const r = (job as RunJobResource).emulator;
    rows.push(['exit code', `${r.exitCode ?? '-'}${r.oomKilled ? ' (OOM kill)' : ''}${r.timedOut ? ' (timeout)' : ''}`]);
    rows.push(['attempts', String(r.attempts.length)]);
    rows.push(['outputs', `${r.outputs.fileCount} file(s), ${formatBytes(r.outputs.totalBytes)} in ${r.outputs.hostDirectory}`]);
  } else {
    const c = (job as BatchPredictionJobResource).completionStats;
    rows.push(['instances', `${c.successfulCount} succeeded, ${c.failedCount} failed, ${c.incompleteCount} incomplete`]);
    rows.push(['outputs', job.outputInfo.outputDirectory]);
  }
  rows.push(['phases', e.phases.map((p) => `${p.name} ${formatDuration(p.durationMs)}`).join(', ')]);
  const limits = e.limits ? { memoryBytes: e.limits.memoryBytes, cpus: e.limits.cpus, ...(machineMemoryBytes(e.limits) ? { machineMemoryBytes: machineMemoryBytes(e.limits)! } : {}) } : undefined;

  const body = [
    `<h1>vbe ${command}: ${html(job.displayName)}</h1>`,
    `<section class="verdict ${ok ? 'ok' : 'fail'}" id="verdict"><div class="state">${html(job.state)}</div>${job.error ? `<p class="error">error ${html(job.error.code)}: ${html(job.error.message)}</p>` : ''}<p class="meta">${html(job.name)}</p></section>`,
    '<h2>Diagnoses</h2>',
    diagnosesHtml(e.diagnoses),
    e.warnings.length ? `<h2>Warnings</h2><ul>${e.warnings.map((w) => `<li>${html(w)}</li>`).join('')}</ul>` : '',
    '<h2>Job</h2>',
    rowsHtml(rows),
    '<h2>Charts</h2>',
    chartsHtml(e.charts, limits, e.phases.map((p) => p.name)),
    batch ? batchSections(job as BatchPredictionJobResource) : '',
    e.logTail.length ? `<h2>Log tail</h2><pre class="evidence">${html(e.logTail.join('\n'))}</pre>` : '',
  ];
  return page(`vbe ${command} ${job.displayName}: ${job.state}`, body.join('\n'));
}

function batchSections(job: BatchPredictionJobResource): string {
  const charts = job.emulator.charts;
  const parts: string[] = [];
  if (charts?.instances) {
    parts.push(figure('throughput', 'Instances per second', renderSvg(throughputOption(charts), { width: WIDTH, height: HEIGHT }), { 'bucket-ms': charts.instances.succeeded.bucketMs }));
    if (charts.instances.failed.points.some(([, v]) => v > 0)) {
      parts.push(figure('failures', 'Failures over time', renderSvg(failuresOption(charts), { width: WIDTH, height: 220 }), { failed: charts.instances.failed.points.reduce((n, [, v]) => n + v, 0) }));
    }
  }
  const latency = charts?.latency;
  if (latency?.count) {
    parts.push(
      figure('latency', 'Request latency', renderSvg(latencyOption(latency), { width: WIDTH, height: HEIGHT }), { buckets: latency.buckets.length, requests: latency.count, 'p50-ms': latency.p50Ms, 'p95-ms': latency.p95Ms, 'p99-ms': latency.p99Ms }),
      `<table class="latency"><tr><th>requests</th><th>p50</th><th>p95</th><th>p99</th><th>max</th></tr><tr><td class="num">${latency.count}</td><td class="num">${html(formatDuration(latency.p50Ms))}</td><td class="num">${html(formatDuration(latency.p95Ms))}</td><td class="num">${html(formatDuration(latency.p99Ms))}</td><td class="num">${html(formatDuration(latency.maxMs))}</td></tr></table>`,
    );
  }
  const groups = Object.entries(job.emulator.failuresByKind).sort((a, b) => b[1].count - a[1].count);
  if (groups.length) {
    parts.push('<h2>Error groups</h2>');
    parts.push(figure('error-groups', 'Failed instances by kind', renderSvg(barsOption(groups.map(([kind, g]) => ({ label: kind, value: g.count })), (v) => String(Math.round(v)), '#cf222e'), { width: WIDTH, height: 40 + groups.length * 32 }), { groups: groups.length }));
    parts.push(`<table class="error-groups"><tr><th>kind</th><th>instances</th><th>example</th></tr>${groups.map(([kind, g]) => `<tr><td><code>${html(kind)}</code></td><td class="num">${g.count}</td><td>${html(g.example)}</td></tr>`).join('')}</table>`);
  }
  return parts.length ? `<h2>Predictions</h2>\n${parts.join('\n')}` : '';
}

function doctorPage(report: DoctorReport): string {
  const counts = (['pass', 'warn', 'fail', 'skip'] as const).map((s) => `${report.checks.filter((c) => c.status === s).length} ${s}`).join(', ');
  const body = [
    `<h1>vbe doctor: ${html(report.image)}</h1>`,
    `<section class="verdict ${report.ok ? 'ok' : 'fail'}" id="verdict"><div class="state">${report.ok ? 'NO CHECK FAILED' : 'CHECKS FAILED'}</div><p class="meta">${html(counts)}${report.platform ? ` · ${html(report.platform)}` : ''}${report.contract ? ` · checked as ${report.contract.used === 'server' ? 'a prediction server' : 'a run-to-completion job'}` : ''}</p></section>`,
    '<h2>Checklist</h2>',
    `<table class="checklist"><tr><th>status</th><th>check</th><th>result</th></tr>${report.checks
      .map(
        (c) =>
          `<tr data-check="${html(c.id)}"><td class="st-${c.status}">${html(c.status)}</td><td><code>${html(c.id)}</code><br>${html(c.title)}</td><td>${html(c.summary)}${c.fix ? `<p class="fix">${html(c.fix)}</p>` : ''}${c.evidence?.length ? `<p class="evidence">${html(c.evidence.join('\n'))}</p>` : ''}</td></tr>`,
      )
      .join('')}</table>`,
  ];
  const layers = (report.layers ?? []).filter((l) => l.sizeBytes > 0);
  if (layers.length) {
    body.push('<h2>Largest layers</h2>');
    body.push(
      figure('layers', 'Largest image layers', renderSvg(barsOption(layers.map((l) => ({ label: layerLabel(l.createdBy), value: l.sizeBytes })), formatBytes, '#8250df'), { width: WIDTH, height: 40 + layers.length * 30 }), { layers: layers.length, 'largest-bytes': layers[0]!.sizeBytes }),
    );
  }
  if (report.live?.charts) {
    body.push('<h2>Live run</h2>');
    body.push(chartsHtml(report.live.charts, { memoryBytes: report.live.memoryLimitBytes, cpus: report.live.cpus }, report.live.charts.timeline.filter((s) => s.lane === 'job').map((s) => s.name)));
  }
  return page(`vbe doctor ${report.image}: ${report.ok ? 'ok' : 'failed'}`, body.join('\n'));
}

const layerLabel = (createdBy: string) => createdBy.replace(/^\/bin\/sh -c (#\(nop\) )?/, '').trim() || '(no command)';
