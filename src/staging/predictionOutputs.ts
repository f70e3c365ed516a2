import { createWriteStream, type WriteStream } from 'node:fs';
import path from 'node:path';
import type { OutputNaming } from '../spec/batchPredictSpec.js';

/** `prediction-<displayName>-<2021_08_17T01_39_36_439Z>`, as real jobs name their output directory. */
export function predictionDirectoryName(displayName: string, createTime: Date): string {
  const stamp = createTime.toISOString().replace(/[-:.]/g, '_');
  const safeName = displayName.replace(/[^A-Za-z0-9_.-]+/g, '_');
  return `prediction-${safeName}-${stamp}`;
}

/** The two output files of one replica's shard: its predictions and its errors. */
export interface ShardFiles {
  results: string;
  errors: string;
}

/**
 * Output file names of shard `index` of `count`: custom-container jobs write
 * prediction.results-00000-of-00002 / prediction.errors_stats-00000-of-00002; the proto's
 * comments (and AutoML jobs) name predictions_0001.jsonl / errors_0001.jsonl.
 */
export function predictionFileNames(naming: OutputNaming, index: number, count: number): ShardFiles {
  if (naming === 'predictions') {
    const n = String(index + 1).padStart(4, '0');
    return { results: `predictions_${n}.jsonl`, errors: `errors_${n}.jsonl` };
  }
  const shard = `${String(index).padStart(5, '0')}-of-${String(count).padStart(5, '0')}`;
  return { results: `prediction.results-${shard}`, errors: `prediction.errors_stats-${shard}` };
}

/** Lines are gathered to this size before they are handed to the file stream (few, large writes). */
const FLUSH_CHARS = 64 * 1024;
/** Bytes the file stream may hold before a writer waits for the disk. */
const STREAM_BUFFER_BYTES = 1024 * 1024;

/** Appends JSON lines to a file in large writes, waiting when the disk is slower than the producer. */
export class JsonlWriter {
  private readonly stream: WriteStream;
  private failure: Error | undefined;
  private pending = '';
  lines = 0;

  constructor(readonly file: string) {
    this.stream = createWriteStream(file, { highWaterMark: STREAM_BUFFER_BYTES });
    this.stream.on('error', (error) => (this.failure = error));
  }

  async write(value: unknown): Promise<void> {
    await this.writeLines(`${JSON.stringify(value)}\n`, 1);
  }

  /** Several lines at once (one call per batch, not one per instance). */
  async writeMany(values: readonly unknown[]): Promise<void> {
    let text = '';
    for (const value of values) text += `${JSON.stringify(value)}\n`;
    await this.writeLines(text, values.length);
  }

  /** `count` lines already serialized, each ending with a newline. */
  async writeLines(text: string, count: number): Promise<void> {
    if (this.failure) throw this.failure;
    if (count === 0) return;
    this.lines += count;
    this.pending += text;
    if (this.pending.length < FLUSH_CHARS) return;
    const flushed = this.stream.write(this.pending);
    this.pending = '';
    if (!flushed) await new Promise<void>((resolve) => this.stream.once('drain', resolve));
  }

  async close(): Promise<void> {
    if (this.pending && !this.failure) this.stream.write(this.pending);
    this.pending = '';
    await new Promise<void>((resolve) => this.stream.end(() => resolve()));
    if (this.failure) throw this.failure;
  }
}

/** Creates each shard's files empty (shards never opened still exist, as on Vertex). */
export async function touchShards(dir: string, shards: readonly ShardFiles[]): Promise<void> {
  for (const s of shards) {
    for (const name of [s.results, s.errors]) {
      const w = new JsonlWriter(path.join(dir, name));
      await w.close();
    }
  }
}
