import { describe, expect, it } from 'vitest';
import { BoundedSeries, DEFAULT_MAX_POINTS, LatencyHistogram, perSecond } from '../../src/report/timeSeries.js';

describe('BoundedSeries: samples about once a second, downsampled so any job stays bounded', () => {
  it('keeps one point per 1 s bucket while under the bound, each at its bucket start', () => {
    const s = new BoundedSeries('bytes', 'max', 10);
    for (const [t, v] of [[0, 5], [400, 7], [1200, 3], [2999, 9]] as const) s.add(t, v);
    expect(s.toRecord()).toEqual({ unit: 'bytes', aggregate: 'max', bucketMs: 1000, points: [[0, 7], [1000, 3], [2000, 9]] });
  });

  it('a day at one sample a second stays within maxPoints: 86,400 samples -> 128 s buckets, 675 points', () => {
    const s = new BoundedSeries('bytes', 'max');
    for (let t = 0; t < 86_400; t++) s.add(t * 1000, t);
    const r = s.toRecord();
    expect(r.points.length).toBeLessThanOrEqual(DEFAULT_MAX_POINTS);
    expect(r.bucketMs).toBe(128_000);
    expect(r.points.length).toBe(Math.ceil(86_400 / 128));
    expect(JSON.stringify(r).length).toBeLessThan(20_000);
    // max keeps the peak of each merged bucket: the last bucket's value is the last sample
    expect(r.points.at(-1)).toEqual([Math.floor(86_399 / 128) * 128_000, 86_399]);
  });

  it('max keeps a one-second spike through every merge (an OOM climb is never averaged away)', () => {
    const s = new BoundedSeries('bytes', 'max', 8);
    for (let t = 0; t < 100; t++) s.add(t * 1000, t === 37 ? 1e9 : 1);
    const r = s.toRecord();
    expect(r.points.length).toBeLessThanOrEqual(8);
    expect(Math.max(...r.points.map(([, v]) => v))).toBe(1e9);
    const spike = r.points.find(([, v]) => v === 1e9)!;
    expect(spike[0]).toBeLessThanOrEqual(37_000);
    expect(spike[0] + r.bucketMs).toBeGreaterThan(37_000);
  });

  it('mean weighs merged buckets by their sample counts', () => {
    const s = new BoundedSeries('cores', 'mean', 2);
    s.add(0, 1);
    s.add(100, 3); // bucket 0: mean 2 of 2 samples
    s.add(1000, 8); // bucket 1: 8 of 1 sample
    s.add(2000, 0); // third bucket: coarsen to 2 s -> [0..2s): (1+3+8)/3 = 4
    expect(s.toRecord()).toEqual({ unit: 'cores', aggregate: 'mean', bucketMs: 2000, points: [[0, 4], [2000, 0]] });
  });

  it('sum keeps totals through merges; perSecond turns them into a rate', () => {
    const s = new BoundedSeries('instances', 'sum', 4);
    for (let t = 0; t < 8; t++) s.add(t * 1000 + 10, 64);
    const r = s.toRecord();
    expect(r.bucketMs).toBe(2000);
    expect(r.points.reduce((n, [, v]) => n + v, 0)).toBe(8 * 64);
    expect(perSecond(r)).toEqual([[0, 64], [2000, 64], [4000, 64], [6000, 64]]);
  });

  it('ignores NaN and infinite values; negative times count as 0', () => {
    const s = new BoundedSeries('bytes', 'max');
    s.add(0, Number.NaN);
    s.add(Number.POSITIVE_INFINITY, 1);
    s.add(-50, 2);
    expect(s.toRecord().points).toEqual([[0, 2]]);
  });
});

describe('LatencyHistogram: bounded, percentiles within a bucket (10 per decade)', () => {
  it('percentiles of 1..1000 ms within 26 % of the exact value, never above the largest seen', () => {
    const h = new LatencyHistogram();
    for (let ms = 1; ms <= 1000; ms++) h.add(ms);
    const r = h.toRecord();
    expect(r.count).toBe(1000);
    for (const [p, exact] of [[r.p50Ms, 500], [r.p95Ms, 950], [r.p99Ms, 990]] as const) {
      expect(p).toBeGreaterThanOrEqual(exact);
      expect(p).toBeLessThanOrEqual(exact * 1.26);
    }
    expect(r.p99Ms).toBeLessThanOrEqual(1000);
    expect(r.maxMs).toBe(1000);
    expect(r.buckets.reduce((n, b) => n + b.count, 0)).toBe(1000);
    // buckets are (lower, upper]: 1 ms closes (0.79, 1], 1 s closes (794, 1000]: 31 buckets, none empty at either end
    expect(r.buckets.length).toBe(31);
    expect(r.buckets[0]!.upToMs).toBe(1);
    expect(r.buckets.at(-1)!.upToMs).toBe(1000);
    expect(r.buckets[0]!.count).toBeGreaterThan(0);
    expect(r.buckets.at(-1)!.count).toBeGreaterThan(0);
  });

  it('one value: every percentile is that value; none: an empty record', () => {
    const h = new LatencyHistogram();
    h.add(42);
    expect(h.toRecord()).toMatchObject({ count: 1, p50Ms: 42, p99Ms: 42, maxMs: 42, buckets: [{ count: 1 }] });
    expect(new LatencyHistogram().toRecord()).toEqual({ count: 0, p50Ms: 0, p95Ms: 0, p99Ms: 0, maxMs: 0, buckets: [] });
  });

  it('a slow tail shows in p99 but not p50', () => {
    const h = new LatencyHistogram();
    for (let i = 0; i < 980; i++) h.add(10);
    for (let i = 0; i < 20; i++) h.add(5000);
    const r = h.toRecord();
    expect(r.p50Ms).toBeLessThanOrEqual(10);
    expect(r.p95Ms).toBeLessThanOrEqual(10);
    expect(r.p99Ms).toBe(5000);
  });
});
