import type { ChartDataRecord, ReplicaSeries, TimelineMark, TimelineSpan } from '../report/chartData.js';
import type { PhaseTiming } from '../report/jobResource.js';
import { BoundedSeries, LatencyHistogram, SAMPLE_INTERVAL_MS } from '../report/timeSeries.js';
import type { ContainerStatsSample } from '../runtime/containerEngine.js';

/** The timeline lane and stats series name of a batch-predict replica. */
export const replicaLane = (index: number) => `replica-${index}`;

interface ReplicaState {
  replica: string;
  memory: BoundedSeries;
  cpu: BoundedSeries;
}

/**
 * Collects what the HTML report draws while a job runs: engine stats per container, timeline
 * spans and marks, instances over time and request latencies. Bounded in memory whatever the
 * job's length (see BoundedSeries).
 */
export class ChartRecorder {
  private readonly spans: TimelineSpan[] = [];
  private readonly marks: TimelineMark[] = [];
  private readonly replicas = new Map<string, ReplicaState>();
  private succeeded?: BoundedSeries;
  private failed?: BoundedSeries;
  private latency?: LatencyHistogram;

  constructor(private readonly origin: Date) {}

  /** ms since the job's createTime. */
  now(): number {
    return Date.now() - this.origin.getTime();
  }

  /** Starts a span now; the returned function ends it. */
  begin(lane: string, name: string): () => void {
    const startMs = this.now();
    return () => {
      this.spans.push({ lane, name, startMs, endMs: this.now() });
    };
  }

  mark(lane: string, kind: TimelineMark['kind'], label: string, atMs = this.now()): void {
    this.marks.push({ lane, atMs, kind, label });
  }

  /** The stats listener for one container (samples of restarted attempts go on the same lane). */
  statsOf(replica: string): (sample: ContainerStatsSample) => void {
    let state = this.replicas.get(replica);
    if (!state) {
      state = { replica, memory: new BoundedSeries('bytes', 'max'), cpu: new BoundedSeries('cores', 'mean') };
      this.replicas.set(replica, state);
    }
    const s = state;
    return (sample) => {
      const at = sample.atMs - this.origin.getTime();
      s.memory.add(at, sample.memoryBytes);
      if (sample.cpuCores !== undefined) s.cpu.add(at, sample.cpuCores);
    };
  }

  /** Instances answered (`succeeded`) and failed, counted now. */
  instances(succeeded: number, failed: number): void {
    this.succeeded ??= new BoundedSeries('instances', 'sum');
    this.failed ??= new BoundedSeries('instances', 'sum');
    const at = this.now();
    this.succeeded.add(at, succeeded);
    this.failed.add(at, failed);
  }

  requestLatency(ms: number): void {
    (this.latency ??= new LatencyHistogram()).add(ms);
  }

  /** The record; `phases` (with their start offsets) become the `job` lane. */
  toRecord(phases: readonly PhaseTiming[]): ChartDataRecord {
    const phaseSpans = phases.filter((p) => p.startMs !== undefined).map((p) => ({ lane: 'job', name: p.name, startMs: p.startMs!, endMs: p.startMs! + p.durationMs }));
    const replicas: ReplicaSeries[] = [...this.replicas.values()].map((r) => ({ replica: r.replica, memoryBytes: r.memory.toRecord(), cpuCores: r.cpu.toRecord() }));
    return {
      originTime: this.origin.toISOString(),
      sampleIntervalMs: SAMPLE_INTERVAL_MS,
      timeline: [...phaseSpans, ...this.spans],
      marks: this.marks,
      replicas,
      ...(this.succeeded && this.failed ? { instances: { succeeded: this.succeeded.toRecord(), failed: this.failed.toRecord() } } : {}),
      ...(this.latency ? { latency: this.latency.toRecord() } : {}),
    };
  }
}
