import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { OutputNaming } from '../spec/batchPredictSpec.js';
import { JsonlWriter } from './predictionOutputs.js';
import { errorStatsLine } from './pythonRepr.js';

/** vbe's own per-instance failure record, beside job.json (the cloud gives no such file). */
export const FAILED_INSTANCES_FILE = 'failed-instances.jsonl';
/** Failed instances kept in the job record for summaries, reports and matchers. */
const EXAMPLES_KEPT = 5;

/**
 * The cloud's wording for a request that failed after its retries ([trouble]):
 * `Post request fails. Cannot get predictions. Error: Exceeded retries: Non-OK result 504 (...) from server, retry=3, elapsed=600.04s.`
 */
export function exceededRetriesMessage(reason: string, retries: number, elapsedMs: number): string {
  return `Post request fails. Cannot get predictions. Error: Exceeded retries: ${reason}, retry=${retries}, elapsed=${(elapsedMs / 1000).toFixed(2)}s.`;
}

/** One failed instance as vbe records it: what was sent (or its key), the error and how many requests were tried. */
export interface FailedInstance {
  instance?: unknown;
  key?: unknown;
  error: { code: number; message: string };
  attempts: number;
}

/** The first failed instances, with where the rest are. */
export interface FailedInstancesRecord {
  file: string;
  count: number;
  examples: FailedInstance[];
}

/**
 * Where failed instances go, Vertex's way and vbe's: each shard's `prediction.errors_stats-*` holds
 * one Python tuple `('message', count)` per distinct message (written when the shard closes); with
 * `--output-naming predictions` the proto's `errors_000N.jsonl` holds one `{instance, error}` line
 * per instance instead. Every failed instance also goes, with its attempt count, to
 * `.vbe/failed-instances.jsonl`, which `readPredictions(job, { errors: true })` reads.
 */
export class FailedInstanceSink {
  private readonly record: JsonlWriter;
  private readonly stats: Array<Map<string, number>>;
  private readonly perInstance: JsonlWriter[] | undefined;
  private readonly examples: FailedInstance[] = [];
  private count = 0;

  constructor(
    private readonly predictionDir: string,
    recordDir: string,
    private readonly shardFiles: ReadonlyArray<{ errors: string }>,
    naming: OutputNaming,
  ) {
    this.record = new JsonlWriter(path.join(recordDir, FAILED_INSTANCES_FILE));
    this.stats = shardFiles.map(() => new Map());
    this.perInstance = naming === 'predictions' ? shardFiles.map((s) => new JsonlWriter(path.join(predictionDir, s.errors))) : undefined;
  }

  /** Failed instances of one request (or bad records) of shard `shard`. `echo` is each output line's start: `"instance":…,` or `"key":…,`. */
  async add(shard: number, echoes: readonly string[], error: { code: number; message: string }, attempts: number): Promise<void> {
    if (echoes.length === 0) return;
    const stats = this.stats[shard]!;
    stats.set(error.message, (stats.get(error.message) ?? 0) + echoes.length);
    const errorJson = JSON.stringify(error);
    let recordLines = '';
    let outputLines = '';
    for (const echo of echoes) {
      recordLines += `{${echo}"error":${errorJson},"attempts":${attempts}}\n`;
      if (this.perInstance) outputLines += `{${echo}"error":${errorJson}}\n`;
      if (this.examples.length < EXAMPLES_KEPT) this.examples.push({ ...(JSON.parse(`{${echo.slice(0, -1)}}`) as object), error, attempts });
    }
    this.count += echoes.length;
    await this.record.writeLines(recordLines, echoes.length);
    if (this.perInstance) await this.perInstance[shard]!.writeLines(outputLines, echoes.length);
  }

  /** Closes the files; the errors_stats files are written now (most frequent message first). */
  async close(): Promise<FailedInstancesRecord> {
    await this.record.close();
    if (this.perInstance) await Promise.all(this.perInstance.map((w) => w.close()));
    else {
      await Promise.all(
        this.shardFiles.map((s, i) => {
          const lines = [...this.stats[i]!.entries()].sort((a, b) => b[1] - a[1]).map(([message, n]) => `${errorStatsLine(message, n)}\n`);
          return writeFile(path.join(this.predictionDir, s.errors), lines.join(''), 'utf8');
        }),
      );
    }
    return { file: this.record.file, count: this.count, examples: this.examples };
  }
}
