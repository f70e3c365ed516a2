import { createHash, hash } from 'node:crypto';
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

/**
 * 64 bits of SHA-256 of an instance's identity, as two 32-bit words: a million instances have a
 * ~3e-8 chance of one collision. The one-shot `crypto.hash` where Node has it (>= 20.12): a Hash
 * object per line leaves native-backed garbage waiting for a full GC.
 */
function identityHash(identity: string): [number, number] {
  const digest = typeof hash === 'function' ? (hash('sha256', identity, 'buffer') as unknown as Buffer) : createHash('sha256').update(identity).digest();
  return [digest.readUInt32BE(0), digest.readUInt32BE(4)];
}

/**
 * A multiset of 64-bit hashes in one Uint32Array (high, low words interleaved): 8 bytes each, sorted
 * once by an LSD radix sort (no BigInt: sorting a BigUint64Array puts every element on the JS heap,
 * ~50 MB for a million), each occurrence consumed at most once.
 */
class HashMultiset {
  private words = new Uint32Array(2048);
  private used: Uint8Array = new Uint8Array(0);
  size = 0;

  add([high, low]: [number, number]): void {
    if (this.size * 2 === this.words.length) {
      const bigger = new Uint32Array(this.words.length * 2);
      bigger.set(this.words);
      this.words = bigger;
    }
    this.words[this.size * 2] = high;
    this.words[this.size * 2 + 1] = low;
    this.size += 1;
  }

  seal(): void {
    let from = this.words.subarray(0, this.size * 2);
    let to = new Uint32Array(this.size * 2);
    // Four 16-bit digits, least significant first: low word's low half ... high word's high half.
    for (const [word, shift] of [[1, 0], [1, 16], [0, 0], [0, 16]] as const) {
      const counts = new Uint32Array(65537);
      for (let i = 0; i < this.size; i++) counts[((from[i * 2 + word]! >>> shift) & 0xffff) + 1]! += 1;
      for (let d = 1; d <= 65536; d++) counts[d]! += counts[d - 1]!;
      for (let i = 0; i < this.size; i++) {
        const at = counts[(from[i * 2 + word]! >>> shift) & 0xffff]!++;
        to[at * 2] = from[i * 2]!;
        to[at * 2 + 1] = from[i * 2 + 1]!;
      }
      [from, to] = [to, from];
    }
    this.words = from.slice();
    this.used = new Uint8Array(this.size);
  }

  /** Consumes one unused occurrence of the hash; false when there is none. */
  take([high, low]: [number, number]): boolean {
    const w = this.words;
    let lo = 0;
    let hi = this.size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (w[mid * 2]! < high || (w[mid * 2] === high && w[mid * 2 + 1]! < low)) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.size && w[i * 2] === high && w[i * 2 + 1] === low; i++) {
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
 * never the input (1M input lines, 999,000 result lines: finishes in a 64 MB heap, peak RSS 124 MB). Writes the missing instances' lines, as written, to `outFile` (jsonl).
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
            // A copy: the line is a slice of its 64 KiB read chunk, which it would keep alive until written.
            text += `${Buffer.from(raw, 'utf8').toString('utf8')}\n`;
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
