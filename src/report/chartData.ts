import type { LatencyRecord, SeriesRecord } from './timeSeries.js';

/** A stretch of time on one lane of the timeline (`job`, `workerpool0-0`, `replica-1`). */
export interface TimelineSpan {
  lane: string;
  name: string;
  startMs: number;
  endMs: number;
}

/** A moment on a lane: a restart, an OOM kill, a server that died, the timeout. */
export interface TimelineMark {
  lane: string;
  atMs: number;
  kind: 'restart' | 'oom-kill' | 'exit' | 'died' | 'timeout' | 'cancelled';
  label: string;
}

/** Engine stats of one container, about once a second, downsampled. */
export interface ReplicaSeries {
  replica: string;
  memoryBytes: SeriesRecord;
  cpuCores: SeriesRecord;
}

/**
 * `emulator.charts` in `job.json`: what the HTML report draws. Times are ms since `originTime`
 * (the job's createTime).
 */
export interface ChartDataRecord {
  originTime: string;
  sampleIntervalMs: number;
  timeline: TimelineSpan[];
  marks: TimelineMark[];
  replicas: ReplicaSeries[];
  /** batch-predict: instances answered and failed per bucket (a `sum` series). */
  instances?: { succeeded: SeriesRecord; failed: SeriesRecord };
  /** batch-predict: predict request latency (each request, retries included). */
  latency?: LatencyRecord;
}
