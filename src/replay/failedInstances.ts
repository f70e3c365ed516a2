import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { applyInstanceConfig } from '../instances/convertInstance.js';
import { lines } from '../instances/readInstances.js';
import { JsonlWriter } from '../staging/predictionOutputs.js';
import type { InstanceConfig } from '../spec/vertexSchemas.js';

/** What `--failed-only` found: input instances, those with a result line, and those written to rerun. */
export interface FailedInstancesCount {
  inputInstances: number;
  withResults: number;
  failed: number;
  resultsFiles: string[];
  file: string;
}

/** Results files of a BatchPredictionJob output directory (both namings). */
export async function listResultsFiles(directory: string): Promise<string[]> {
  const names = await readdir(directory).catch(() => [] as string[]);
  return names.filter((n) => /^prediction\.results-\d+-of-\d+$/.test(n) || /^predictions_\d+\.jsonl$/.test(n)).sort().map((n) => path.join(directory, n));
}

/** Error statistics files of a BatchPredictionJob output directory (both namings). */
export async function listErrorFiles(directory: string): Promise<string[]> {
  const names = await readdir(directory).catch(() => [] as string[]);
  return names.filter((n) => /^prediction\.errors_stats-\d+-of-\d+$/.test(n) || /^errors_\d+\.jsonl$/.test(n)).sort().map((n) => path.join(directory, n));
}

/** JSON with object keys sorted at every level: equal values give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.keys(value as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** 64 bits of SHA-256 of an instance's identity: 1M instances have a ~3e-8 chance of one collision. */
function identityHash(identity: string): bigint {
  return createHash('sha256').update(identity).digest().readBigUInt64BE(0);
}

/** A growable multiset of 64-bit hashes, sorted once, each occurrence consumed at most once. */
class HashMultiset {
  private hashes = new BigUint64Array(1024);
  private used: Uint8Array = new Uint8Array(0);
  size = 0;

  add(hash: bigint): void {
    if (this.size === this.hashes.length) {
      const bigger = new BigUint64Array(this.hashes.length * 2);
      bigger.set(this.hashes);
      this.hashes = bigger;
    }
    this.hashes[this.size++] = hash;
  }

  seal(): void {
    this.hashes = this.hashes.slice(0, this.size).sort();
    this.used = new Uint8Array(this.size);
  }

  /** Consumes one unused occurrence of `hash`; false when there is none. */
  take(hash: bigint): boolean {
    let lo = 0;
    let hi = this.size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.hashes[mid]! < hash) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.size && this.hashes[i] === hash; i++) {
      if (!this.used[i]) {
        this.used[i] = 1;
        return true;
      }
    }
    return false;
  }
}

/**
 * The identity of an input instance as its result line shows it: the key with keyField, else the
 * instance as sent (instanceConfig applied), as canonical JSON.
 */
function inputIdentity(value: unknown, config: InstanceConfig): string {
  const converted = applyInstanceConfig(value, config);
  if (!converted.ok) return `bad:${canonicalJson(value)}`;
  if (config.keyField) return `key:${canonicalJson(converted.key)}`;
  return `instance:${canonicalJson(converted.echo)}`;
}

function resultIdentity(line: Record<string, unknown>, config: InstanceConfig): string | undefined {
  if (config.keyField) return 'key' in line ? `key:${canonicalJson(line.key)}` : undefined;
  return 'instance' in line ? `instance:${canonicalJson(line.instance)}` : undefined;
}

/**
 * Vertex's error files hold only aggregated counts, so the instances that failed are the input
 * instances with no line in the results files. Streams both: memory holds 8 bytes per result line,
 * never the input. Writes the missing instances' lines, as written, to `outFile` (jsonl).
 */
export async function writeFailedInstances(input: { inputFiles: readonly string[]; resultsFiles: readonly string[]; instanceConfig: InstanceConfig; outFile: string }): Promise<FailedInstancesCount> {
  const done = new HashMultiset();
  for (const file of input.resultsFiles) {
    for await (const group of lines(file)) {
      for (const line of group) {
        if (!line.ok) continue;
        let parsed: unknown;
        try {
          parsed = JSON.parse(line.text);
        } catch {
          continue;
        }
        if (!parsed || typeof parsed !== 'object') continue;
        const identity = resultIdentity(parsed as Record<string, unknown>, input.instanceConfig);
        if (identity !== undefined) done.add(identityHash(identity));
      }
    }
  }
  done.seal();

  const writer = new JsonlWriter(input.outFile);
  let inputInstances = 0;
  let withResults = 0;
  try {
    for (const file of input.inputFiles) {
      for await (const group of lines(file)) {
        let text = '';
        let count = 0;
        for (const line of group) {
          inputInstances += 1;
          const raw = line.ok ? line.text : line.echo;
          let identity: string;
          try {
            identity = inputIdentity(JSON.parse(raw), input.instanceConfig);
          } catch {
            identity = `unparsable:${raw}`;
          }
          if (done.take(identityHash(identity))) {
            withResults += 1;
          } else {
            text += `${raw}\n`;
            count += 1;
          }
        }
        await writer.writeLines(text, count);
      }
    }
  } finally {
    await writer.close();
  }
  return { inputInstances, withResults, failed: inputInstances - withResults, resultsFiles: [...input.resultsFiles], file: input.outFile };
}
