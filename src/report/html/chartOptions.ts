import type { EChartsOption } from 'echarts';
import { formatDuration } from '../../spec/parseDuration.js';
import { formatBytes } from '../../verdict/diagnoseRunJob.js';
import type { ChartDataRecord, TimelineMark } from '../chartData.js';
import { perSecond, type LatencyRecord } from '../timeSeries.js';

/** ECharts options for each chart of the report, from the job record's data. Pure. */

const COLORS = ['#0969da', '#8250df', '#bf8700', '#1a7f37', '#cf222e', '#57606a'];
const MARK_COLORS: Record<TimelineMark['kind'], string> = { restart: '#bf8700', 'oom-kill': '#cf222e', exit: '#57606a', died: '#cf222e', timeout: '#cf222e', cancelled: '#57606a' };
const seconds = (ms: number) => formatDuration(ms);
const timeAxis = (maxMs: number) => ({ type: 'value' as const, name: 'time since created', nameLocation: 'middle' as const, nameGap: 26, min: 0, max: Math.max(1000, Math.ceil(maxMs / 1000) * 1000), axisLabel: { formatter: (v: number) => seconds(v), showMaxLabel: false } });
const grid = { left: 80, right: 150, top: 36, bottom: 44 };

/** The end of everything on the timeline, in ms. */
export function timelineEndMs(charts: ChartDataRecord): number {
  return Math.max(1000, ...charts.timeline.map((s) => s.endMs), ...charts.marks.map((m) => m.atMs));
}

/** Phases and per-replica spans as bars on lanes, restarts, OOM kills and exits as marks. */
export function timelineOption(charts: ChartDataRecord): { option: EChartsOption; height: number } {
  const lanes = [...new Set([...charts.timeline.map((s) => s.lane), ...charts.marks.map((m) => m.lane)])];
  const names = [...new Set(charts.timeline.map((s) => s.name))];
  const color = (name: string) => COLORS[names.indexOf(name) % COLORS.length]!;
  const height = 70 + lanes.length * 44;
  const option: EChartsOption = {
    grid: { ...grid, left: 110 },
    xAxis: timeAxis(timelineEndMs(charts)),
    yAxis: { type: 'category', data: lanes, inverse: true, axisTick: { show: false } },
    series: [
      {
        type: 'custom',
        name: 'phases',
        renderItem: (params, api) => {
          const lane = api.value(0) as number;
          const start = api.coord([api.value(1), lane]) as number[];
          const end = api.coord([api.value(2), lane]) as number[];
          const bandHeight = (api.size!([0, 1]) as number[])[1]! * 0.6;
          const width = Math.max(1, end[0]! - start[0]!);
          const name = String(charts.timeline[params.dataIndex]?.name ?? '');
          const rect = { type: 'rect' as const, shape: { x: start[0]!, y: start[1]! - bandHeight / 2, width, height: bandHeight }, style: { fill: color(name), opacity: 0.85 } };
          // A name is written where it fits; the caption lists every span with its times.
          const fits = width >= name.length * 6 + 4;
          return {
            type: 'group',
            children: fits ? [rect, { type: 'text' as const, style: { text: name, x: start[0]! + 3, y: start[1]! - 6, fill: '#fff', fontSize: 11 } }] : [rect],
          };
        },
        encode: { x: [1, 2], y: 0 },
        data: charts.timeline.map((s) => [lanes.indexOf(s.lane), s.startMs, s.endMs]),
      },
      {
        type: 'scatter',
        name: 'events',
        symbol: 'triangle',
        symbolSize: 12,
        data: charts.marks.map((m) => ({ value: [m.atMs, lanes.indexOf(m.lane)], name: m.label, itemStyle: { color: MARK_COLORS[m.kind] }, label: { show: true, position: 'right', formatter: m.label, color: MARK_COLORS[m.kind], fontSize: 11 } })),
      },
    ],
  };
  return { option, height };
}

interface LimitLine {
  value: number;
  label: string;
  dashed?: boolean;
}

/** One line per replica over time, horizontal lines at the limits, vertical ones at OOM kills. */
function seriesOverTime(p: {
  lines: Array<{ name: string; points: Array<[number, number]> }>;
  limits: LimitLine[];
  marks: TimelineMark[];
  endMs: number;
  unitFormat: (v: number) => string;
  yName: string;
}): EChartsOption {
  const highest = Math.max(0, ...p.limits.map((l) => l.value), ...p.lines.flatMap((l) => l.points.map(([, v]) => v)));
  return {
    grid,
    legend: { top: 4, right: 8 },
    xAxis: timeAxis(p.endMs),
    yAxis: { type: 'value', name: p.yName, min: 0, max: highest > 0 ? highest * 1.08 : 1, axisLabel: { formatter: (v: number) => p.unitFormat(v) } },
    series: p.lines.map((line, i) => ({
      type: 'line',
      name: line.name,
      showSymbol: line.points.length < 3,
      step: 'end',
      data: line.points,
      lineStyle: { width: 1.5 },
      color: COLORS[i % COLORS.length]!,
      ...(i === 0
        ? {
            markLine: {
              symbol: 'none',
              silent: true,
              data: [
                ...p.limits.map((l) => ({ yAxis: l.value, name: l.label, lineStyle: { color: l.dashed ? '#57606a' : '#cf222e', type: l.dashed ? ('dotted' as const) : ('dashed' as const) }, label: { formatter: l.label, position: 'end' as const, color: '#1f2328' } })),
                ...p.marks.map((m) => ({ xAxis: m.atMs, name: m.label, lineStyle: { color: MARK_COLORS[m.kind], type: 'solid' as const, width: 2 }, label: { formatter: `${m.label}${m.lane ? ` (${m.lane})` : ''}`, position: 'insideEndTop' as const, color: MARK_COLORS[m.kind] } })),
              ],
            },
          }
        : {}),
    })),
  };
}

export function memoryOption(charts: ChartDataRecord, limitBytes: number, machineBytes: number | undefined): EChartsOption {
  const limits: LimitLine[] = [{ value: limitBytes, label: `limit ${formatBytes(limitBytes)}` }];
  if (machineBytes && machineBytes !== limitBytes) limits.push({ value: machineBytes, label: `machine type ${formatBytes(machineBytes)}`, dashed: true });
  return seriesOverTime({
    lines: charts.replicas.map((r) => ({ name: r.replica, points: r.memoryBytes.points })),
    limits,
    marks: charts.marks.filter((m) => m.kind === 'oom-kill'),
    endMs: timelineEndMs(charts),
    unitFormat: formatBytes,
    yName: 'memory',
  });
}

export function cpuOption(charts: ChartDataRecord, cpus: number): EChartsOption {
  return seriesOverTime({
    lines: charts.replicas.map((r) => ({ name: r.replica, points: r.cpuCores.points })),
    limits: [{ value: cpus, label: `quota ${cpus} CPU` }],
    marks: [],
    endMs: timelineEndMs(charts),
    unitFormat: (v) => `${Math.round(v * 100) / 100}`,
    yName: 'CPUs busy',
  });
}

export function throughputOption(charts: ChartDataRecord): EChartsOption {
  const instances = charts.instances!;
  return seriesOverTime({
    lines: [
      { name: 'answered / s', points: perSecond(instances.succeeded) },
      { name: 'failed / s', points: perSecond(instances.failed) },
    ],
    limits: [],
    marks: [],
    endMs: timelineEndMs(charts),
    unitFormat: (v) => `${Math.round(v)}`,
    yName: 'instances / s',
  });
}

export function failuresOption(charts: ChartDataRecord): EChartsOption {
  const failed = charts.instances!.failed;
  return {
    grid,
    xAxis: timeAxis(timelineEndMs(charts)),
    yAxis: { type: 'value', name: `failed per ${formatDuration(failed.bucketMs)}`, minInterval: 1 },
    series: [{ type: 'bar', name: 'failed instances', data: failed.points.filter(([, v]) => v > 0), color: '#cf222e', barMaxWidth: 12 }],
  };
}

/** Buckets of the latency histogram as bars; p50 / p95 / p99 as vertical lines at their buckets. */
export function latencyOption(latency: LatencyRecord): EChartsOption {
  const labels = latency.buckets.map((b) => `≤ ${formatDuration(b.upToMs)}`);
  const bucketOf = (ms: number) => labels[Math.max(0, latency.buckets.findIndex((b) => b.upToMs >= ms))]!;
  return {
    grid: { ...grid, bottom: 60 },
    xAxis: { type: 'category', data: labels, name: 'request latency', nameLocation: 'middle', nameGap: 44, axisLabel: { rotate: 30, fontSize: 10, interval: 0 } },
    yAxis: { type: 'value', name: 'requests', minInterval: 1 },
    series: [
      {
        type: 'bar',
        name: 'requests',
        data: latency.buckets.map((b) => b.count),
        color: '#0969da',
        markLine: {
          symbol: 'none',
          silent: true,
          data: (
            [
              ['p50', latency.p50Ms],
              ['p95', latency.p95Ms],
              ['p99', latency.p99Ms],
            ] as const
          ).map(([name, ms]) => ({ xAxis: bucketOf(ms), name, label: { formatter: `${name} ${formatDuration(ms)}`, position: 'insideEndTop' as const }, lineStyle: { color: '#bf8700' } })),
        },
      },
    ],
  };
}

/** Horizontal bars: one per label, with its value. */
export function barsOption(items: Array<{ label: string; value: number }>, format: (v: number) => string, color: string): EChartsOption {
  return {
    grid: { left: 300, right: 80, top: 10, bottom: 24 },
    xAxis: { type: 'value', axisLabel: { formatter: (v: number) => format(v) } },
    yAxis: { type: 'category', inverse: true, data: items.map((i) => i.label), axisLabel: { fontSize: 11, width: 240, overflow: 'truncate' } },
    series: [{ type: 'bar', data: items.map((i) => i.value), color, label: { show: true, position: 'right', formatter: (p) => format(Number(p.value)) }, barMaxWidth: 18 }],
  };
}
