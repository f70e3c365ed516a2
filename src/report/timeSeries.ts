/**
 * Time series for the job record, bounded whatever the job's length: samples (about one a
 * second) go into buckets of `bucketMs`; when there would be more than `maxPoints` buckets, the
 * bucket width doubles and neighbours merge. A day-long job at one sample a second keeps at most
 * `maxPoints` points (86,400 s at 720 points: 128 s buckets, 675 points).
 */

/** How the samples falling into one bucket become its value. */
export type Aggregate = 'max' | 'mean' | 'sum';

/** A series as recorded in `job.json`: `[msSinceOrigin, value]`, each point the start of its bucket. */
export interface SeriesRecord {
  unit: string;
  aggregate: Aggregate;
  bucketMs: number;
  points: Array<[number, number]>;
}

export const DEFAULT_MAX_POINTS = 720;
export const SAMPLE_INTERVAL_MS = 1000;

interface Bucket {
  startMs: number;
  value: number;
  count: number;
}

export class BoundedSeries {
  private buckets: Bucket[] = [];
  private widthMs: number;

  constructor(
    readonly unit: string,
    readonly aggregate: Aggregate,
    readonly maxPoints = DEFAULT_MAX_POINTS,
    initialBucketMs = SAMPLE_INTERVAL_MS,
  ) {
    if (maxPoints < 2) throw new Error('maxPoints must be at least 2');
    this.widthMs = initialBucketMs;
  }

  get bucketMs(): number {
    return this.widthMs;
  }

  get length(): number {
    return this.buckets.length;
  }

  /** One sample at `atMs` (ms since the series' origin; negative times count as 0). */
  add(atMs: number, value: number): void {
    if (!Number.isFinite(value) || !Number.isFinite(atMs)) return;
    const startMs = Math.floor(Math.max(0, atMs) / this.widthMs) * this.widthMs;
    const last = this.buckets[this.buckets.length - 1];
    if (last && startMs <= last.startMs) merge(last, value, 1, this.aggregate);
    else this.buckets.push({ startMs, value, count: 1 });
    while (this.buckets.length > this.maxPoints) this.coarsen();
  }

  /** Doubles the bucket width and merges the buckets that now share one. */
  private coarsen(): void {
    this.widthMs *= 2;
    const merged: Bucket[] = [];
    for (const b of this.buckets) {
      const startMs = Math.floor(b.startMs / this.widthMs) * this.widthMs;
      const last = merged[merged.length - 1];
      if (last && last.startMs === startMs) merge(last, b.value, b.count, this.aggregate);
      else merged.push({ startMs, value: b.value, count: b.count });
    }
    this.buckets = merged;
  }

  toRecord(): SeriesRecord {
    return { unit: this.unit, aggregate: this.aggregate, bucketMs: this.widthMs, points: this.buckets.map((b) => [b.startMs, round(b.value)]) };
  }
}

/** Folds `value` (itself the aggregate of `count` samples) into `into`. */
function merge(into: Bucket, value: number, count: number, aggregate: Aggregate): void {
  if (aggregate === 'max') into.value = Math.max(into.value, value);
  else if (aggregate === 'sum') into.value += value;
  else into.value = (into.value * into.count + value * count) / (into.count + count);
  into.count += count;
}

const round = (v: number) => (Number.isInteger(v) ? v : Math.round(v * 1000) / 1000);

/** A `sum` series as a rate per second of each bucket (instances per second). */
export function perSecond(series: SeriesRecord): Array<[number, number]> {
  return series.points.map(([t, v]) => [t, round(v / (series.bucketMs / 1000))]);
}

/**
 * Request latencies in a fixed log-scale histogram (10 buckets per decade from 0.1 ms to
 * 1,000 s): bounded memory for any number of requests, percentiles within ~12 %.
 */
export class LatencyHistogram {
  private static readonly PER_DECADE = 10;
  private static readonly MIN_MS = 0.1;
  private static readonly BUCKETS = 80; // 0.1 ms .. 10^7 * 0.1 ms = 1,000 s
  private readonly counts = new Array<number>(LatencyHistogram.BUCKETS + 1).fill(0);
  private total = 0;
  private maxMs = 0;

  add(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.counts[LatencyHistogram.indexOf(ms)]! += 1;
    this.total += 1;
    this.maxMs = Math.max(this.maxMs, ms);
  }

  get count(): number {
    return this.total;
  }

  /** Upper bound (ms) of bucket i; the last bucket is open-ended (its bound is the largest value seen). */
  private static upperMs(i: number): number {
    return LatencyHistogram.MIN_MS * 10 ** ((i + 1) / LatencyHistogram.PER_DECADE);
  }

  private static indexOf(ms: number): number {
    if (ms <= LatencyHistogram.MIN_MS) return 0;
    const i = Math.ceil(Math.log10(ms / LatencyHistogram.MIN_MS) * LatencyHistogram.PER_DECADE - 1e-9) - 1;
    return Math.min(Math.max(i, 0), LatencyHistogram.BUCKETS);
  }

  /** The value below which `q` (0..1) of the requests fall: the upper bound of its bucket, at most the largest seen. */
  percentile(q: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return round(Math.min(LatencyHistogram.upperMs(i), this.maxMs));
    }
    return round(this.maxMs);
  }

  toRecord(): LatencyRecord {
    const first = this.counts.findIndex((c) => c > 0);
    let last = this.counts.length - 1;
    while (last >= 0 && this.counts[last] === 0) last--;
    const buckets = first < 0 ? [] : this.counts.slice(first, last + 1).map((count, k) => ({ upToMs: round(Math.min(LatencyHistogram.upperMs(first + k), first + k === LatencyHistogram.BUCKETS ? this.maxMs : Infinity)), count }));
    return { count: this.total, p50Ms: this.percentile(0.5), p95Ms: this.percentile(0.95), p99Ms: this.percentile(0.99), maxMs: round(this.maxMs), buckets };
  }
}

/** The latency distribution in `job.json`: non-empty range of the histogram, percentiles in ms. */
export interface LatencyRecord {
  count: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  buckets: Array<{ upToMs: number; count: number }>;
}
