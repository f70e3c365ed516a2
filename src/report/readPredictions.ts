import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { BatchPredictionJobResource } from './jobResource.js';

export interface PredictionLine {
  instance?: unknown;
  key?: unknown;
  prediction?: unknown;
  error?: { code?: number; message?: string };
}

/**
 * Streams the result lines (or, with `errors: true`, the error lines) of a finished
 * BatchPredictionJob from every shard file, in shard order.
 */
export async function* readPredictions(job: Pick<BatchPredictionJobResource, 'outputInfo'>, options: { errors?: boolean } = {}): AsyncGenerator<PredictionLine> {
  const dir = job.outputInfo.outputDirectory;
  const pattern = options.errors ? /^(prediction\.errors_stats-\d{5}-of-\d{5}|errors_\d{4}\.jsonl)$/ : /^(prediction\.results-\d{5}-of-\d{5}|predictions_\d{4}\.jsonl)$/;
  const files = (await readdir(dir)).filter((f) => pattern.test(f)).sort();
  for (const file of files) {
    const lines = createInterface({ input: createReadStream(path.join(dir, file), { encoding: 'utf8' }), crlfDelay: Infinity });
    for await (const line of lines) if (line.trim()) yield JSON.parse(line) as PredictionLine;
  }
}
