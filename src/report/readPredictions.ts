import { createReadStream } from 'node:fs';
import { access, readdir } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { FAILED_INSTANCES_FILE } from '../staging/failedInstances.js';
import type { BatchPredictionJobResource } from './jobResource.js';

export interface PredictionLine {
  instance?: unknown;
  key?: unknown;
  prediction?: unknown;
  error?: { code?: number; message?: string };
  /** Failed instances only: how many requests carried it (0 for a record that could not be read). */
  attempts?: number;
}

/**
 * Streams the result lines of a finished BatchPredictionJob from every shard file, in shard
 * order; with `errors: true`, its failed instances, one per line with the error and the attempt
 * count, from vbe's record `.vbe/failed-instances.jsonl` (the cloud's `prediction.errors_stats-*`
 * holds only counts per message).
 */
export async function* readPredictions(job: Pick<BatchPredictionJobResource, 'outputInfo'>, options: { errors?: boolean } = {}): AsyncGenerator<PredictionLine> {
  const dir = job.outputInfo.outputDirectory;
  const files = options.errors
    ? [path.join('.vbe', FAILED_INSTANCES_FILE)]
    : (await readdir(dir)).filter((f) => /^(prediction\.results-\d{5}-of-\d{5}|predictions_\d{4}\.jsonl)$/.test(f)).sort();
  for (const file of files) {
    // No record: the job ended before any instance was read.
    if (options.errors && !(await access(path.join(dir, file)).then(() => true, () => false))) return;
    const input = createReadStream(path.join(dir, file), { encoding: 'utf8' });
    const lines = createInterface({ input, crlfDelay: Infinity });
    for await (const line of lines) if (line.trim()) yield JSON.parse(line) as PredictionLine;
  }
}
