import path from 'node:path';
import type { StartedContainer } from '../runtime/containerEngine.js';
import type { BatchPredictSpec } from '../spec/batchPredictSpec.js';
import { JsonlWriter, type ShardFiles } from '../staging/predictionOutputs.js';
import { exceededRetriesMessage, type FailedInstanceSink } from '../staging/failedInstances.js';
import type { BadInstance, ConvertedInstance, InstanceRecord, JsonInstance } from '../instances/convertInstance.js';
import { readInstances } from '../instances/readInstances.js';
import type { BatchObservation, FailureKind } from '../verdict/judgeBatchPredict.js';
import type { JobError } from '../verdict/jobState.js';
import { type ChartRecorder, replicaLane as lane } from './chartRecorder.js';
import type { LogCapture } from './logCapture.js';
import type { PredictionClient, PredictOutcome } from './predictionClient.js';
import type { Partition } from './partitionInputs.js';
import type { TransferListener } from './transferProgress.js';

const MAX_PARTIAL_FAILURES = 20;

export interface Replica {
  index: number;
  storageLimited?: boolean;
  started: StartedContainer;
  memory: { peakBytes: () => number; stop: () => void };
  client: PredictionClient;
  capture: LogCapture;
  logsDone: Promise<unknown>;
  dead: boolean;
}

export interface PredictContext {
  predictionDir: string;
  shards: readonly ShardFiles[];
  partition: Partition;
  sink: FailedInstanceSink;
  predictRoute: string;
  signal: AbortSignal | undefined;
  progress: (message: string) => void;
  transfer: TransferListener;
  charts: ChartRecorder;
}

/**
 * What the data plane observed, updated as it goes (the instances' counts, the failures by kind, a
 * replica that died); predictAll owns it and returns it.
 */
export interface DataPlaneOutcome {
  stats: BatchObservation['stats'];
  /** Largest predict response body seen, in bytes. */
  maxResponseBytes: number;
  failuresByKind: BatchObservation['failuresByKind'];
  died?: BatchObservation['died'];
  /** Ctrl-C while predicting: instances not yet answered are incomplete. */
  cancelled: boolean;
  /** The first failed requests, as the job's partialFailures. */
  partialFailures: JobError[];
}

interface Batch {
  ok: Array<ConvertedInstance | JsonInstance>;
  bad: BadInstance[];
}

/** A batch and its request body (none when it holds only bad records). */
interface Prepared {
  batch: Batch;
  body: Buffer | undefined;
}

/** A batch sent: the answer to come. */
interface InFlight extends Prepared {
  answer: Promise<PredictOutcome> | undefined;
  /** When the first request went out (performance.now()): the `elapsed` of an exceeded-retries error. */
  sentAt: number;
}

/**
 * The data plane: one shared stream of batches, pulled by `maxInFlight` workers per replica, so
 * each instance is sent exactly once, in bounded memory, whatever the input size. Request bodies
 * and output lines are assembled from JSON texts: a JSONL instance as written, each prediction as
 * the server wrote it.
 */
export async function predictAll(spec: BatchPredictSpec, files: ReadonlyArray<{ hostPath: string; sizeBytes: number }>, replicas: Replica[], ctx: PredictContext): Promise<DataPlaneOutcome> {
  const o: DataPlaneOutcome = { stats: { successful: 0, failed: 0, incomplete: 0 }, maxResponseBytes: 0, failuresByKind: {}, cancelled: false, partialFailures: [] };
  const stats = o.stats;
  const keyed = spec.instanceConfig.keyField !== undefined;
  const writers = ctx.shards.map((s) => ({ results: new JsonlWriter(path.join(ctx.predictionDir, s.results)) }));
  const totalBytes = files.reduce((n, f) => n + f.sizeBytes, 0);
  let readBytes = 0;
  const onRead = (bytes: number) => {
    readBytes += bytes;
  };
  const streamOf = (list: ReadonlyArray<{ hostPath: string }>) =>
    batchesOf(readInstances(list.map((f) => f.hostPath), spec.instancesFormat, spec.instanceConfig, { gcsRoot: spec.base.gcsRoot, onRead }), spec.batchSize);
  // One stream all replicas pull from (jsonl, file-list), or one per replica over its own files (csv, tf-record).
  const streams = ctx.partition.shared ? [streamOf(files)] : ctx.partition.filesByReplica.map((indexes) => streamOf(indexes.map((i) => files[i]!)));
  const streamFor = (replica: Replica) => streams[ctx.partition.shared ? 0 : replica.index]!;
  const parameters = spec.modelParameters ? JSON.stringify(spec.modelParameters.value) : undefined;
  const bodyEnd = parameters === undefined ? ']}' : `],"parameters":${parameters}}`;
  let stop = false;
  const recordFailure = (kind: FailureKind, count: number, message: string, code: number) => {
    const entry = (o.failuresByKind[kind] ??= { count: 0, example: message });
    entry.count += count;
    if (o.partialFailures.length < MAX_PARTIAL_FAILURES) o.partialFailures.push({ code, message });
  };
  const reportTransfer = () => ctx.transfer({ kind: 'instances', done: stats.successful + stats.failed, failed: stats.failed, readBytes, totalBytes });
  let lastReport = Date.now();
  const t0 = Date.now();

  const halted = () => stop || ctx.signal?.aborted === true;
  // Small records (text lines) are read a batch ahead, while a request is in flight; files and
  // TFRecords can be large, so only one batch of them per worker is held.
  const readAhead = spec.instancesFormat === 'jsonl' || spec.instancesFormat === 'csv';
  /** The next batch with its request body. */
  const prepare = async (batches: AsyncGenerator<Batch>): Promise<Prepared | undefined> => {
    const next = await batches.next();
    if (next.done) return undefined;
    const { ok } = next.value;
    return { batch: next.value, body: ok.length ? Buffer.from(requestText(ok, bodyEnd)) : undefined };
  };
  /** A batch read but never sent (the job stopped early) is counted, not lost silently. */
  const unsent = (prepared: Prepared | undefined) => {
    if (prepared) stats.incomplete += prepared.batch.ok.length + prepared.batch.bad.length;
  };

  const worker = async (replica: Replica) => {
    const out = writers[replica.index]!;
    const batches = streamFor(replica);
    const predict = (body: Buffer, count: number) => {
      const sentAt = performance.now();
      const answer = replica.client.predict(ctx.predictRoute, body, count, spec.requestTimeoutMs);
      answer.then(() => ctx.charts.requestLatency(performance.now() - sentAt), () => undefined);
      return answer;
    };
    const send = (prepared: Prepared): InFlight => {
      const answer = prepared.body && predict(prepared.body, prepared.batch.ok.length);
      answer?.catch(() => undefined); // awaited later, where a failure surfaces: not an unhandled rejection meanwhile
      return { ...prepared, answer, sentAt: performance.now() };
    };
    const sendUnlessHalted = (prepared: Prepared | undefined): InFlight | undefined => {
      if (prepared && !halted()) return send(prepared);
      unsent(prepared);
      return undefined;
    };
    let current = sendUnlessHalted(halted() ? undefined : await prepare(batches));
    while (current) {
      const upcoming = readAhead ? await prepare(batches) : undefined;
      const { batch: { ok, bad }, body } = current;
      if (bad.length) {
        for (const b of bad) await ctx.sink.add(replica.index, [`"instance":${jsonText(b.echo)},`], { code: 3, message: b.message }, 0);
        stats.failed += bad.length;
        ctx.charts.instances(0, bad.length);
        for (const b of bad) recordFailure('bad-record', 1, b.message, 3);
      }
      let outcome = current.answer && (await current.answer);
      let attempts = 1;
      for (let attempt = 1; body && outcome && !outcome.ok && attempt <= spec.retries && !ctx.signal?.aborted; attempt++) {
        const status = await replica.started.status();
        if (!status.running) break;
        await new Promise((r) => setTimeout(r, 250 * 2 ** (attempt - 1)));
        outcome = await predict(body, ok.length);
        attempts += 1;
      }
      if (outcome && !outcome.ok) {
        if (ctx.signal?.aborted) {
          stats.incomplete += ok.length; // cancelled while in flight: not answered, not failed
          unsent(upcoming);
          return;
        }
        const status = await replica.started.status();
        if (!status.running) {
          replica.dead = true;
          if (!o.died) ctx.charts.mark(lane(replica.index), status.exited.oomKilled ? 'oom-kill' : 'died', `${status.exited.oomKilled ? 'OOM kill' : 'died'} (exit ${status.exited.exitCode})`);
          o.died ??= { replica: replica.index, exitCode: status.exited.exitCode, oomKilled: status.exited.oomKilled };
          stats.incomplete += ok.length;
          stop = true;
          unsent(upcoming);
          return;
        }
      }
      // The next request goes out before this batch's lines are written: the server works meanwhile.
      const next = readAhead ? sendUnlessHalted(upcoming) : undefined;
      if (outcome?.ok) {
        o.maxResponseBytes = Math.max(o.maxResponseBytes, outcome.responseBytes);
        const predictions = outcome.predictions;
        let lines = '';
        for (let i = 0; i < ok.length; i++) lines += `{${echoMember(ok[i]!, keyed)}"prediction":${predictions[i]}}\n`;
        await out.results.writeLines(lines, ok.length);
        stats.successful += ok.length;
        ctx.charts.instances(ok.length, 0);
      } else if (outcome) {
        const message = outcome.kind === 'http' || outcome.kind === 'timeout' || outcome.kind === 'connection'
          ? exceededRetriesMessage(outcome.message, spec.retries, performance.now() - current.sentAt)
          : outcome.message;
        await ctx.sink.add(replica.index, ok.map((record) => echoMember(record, keyed)), { code: outcome.code, message }, attempts);
        stats.failed += ok.length;
        ctx.charts.instances(0, ok.length);
        recordFailure(outcome.kind, ok.length, message, outcome.code);
      }
      reportTransfer();
      if (Date.now() - lastReport > 5000) {
        lastReport = Date.now();
        const done = stats.successful + stats.failed;
        ctx.progress(`${done} instances (${stats.failed} failed), ${Math.round(done / ((Date.now() - t0) / 1000))}/s`);
      }
      current = readAhead ? next : sendUnlessHalted(halted() ? undefined : await prepare(batches));
    }
  };

  try {
    await Promise.all(replicas.flatMap((r) => Array.from({ length: spec.maxInFlight }, () => worker(r))));
    if (ctx.signal?.aborted) o.cancelled = true;
    // Whatever was not sent (the job stopped early) is counted, not lost silently.
    for (const batches of streams) for await (const rest of batches) stats.incomplete += rest.ok.length + rest.bad.length;
  } finally {
    ctx.transfer({ kind: 'done', of: 'instances' });
    await Promise.all(writers.map((w) => w.results.close()));
  }
  return o;
}

/** `{"instances":[…]` and `bodyEnd` (`]}`, or the parameters then `}`), from each instance's JSON text. */
function requestText(ok: ReadonlyArray<ConvertedInstance | JsonInstance>, bodyEnd: string): string {
  let text = '{"instances":[';
  for (let i = 0; i < ok.length; i++) {
    const record = ok[i]!;
    const json = 'json' in record ? record.json : jsonText(record.instance);
    text += i === 0 ? json : `,${json}`;
  }
  return text + bodyEnd;
}

/** The start of an output line: `"instance":…,`, or with keyField `"key":…,` (Vertex's order). */
function echoMember(record: ConvertedInstance | JsonInstance, keyed: boolean): string {
  if ('json' in record) return `"instance":${record.json},`;
  if (!keyed) return `"instance":${jsonText(record.echo)},`;
  return record.key === undefined ? '' : `"key":${jsonText(record.key)},`;
}

/** JSON.stringify of a value read from an input (never undefined; null if it were). */
function jsonText(value: unknown): string {
  return JSON.stringify(value) ?? 'null';
}

async function* batchesOf(groups: AsyncIterable<InstanceRecord[]>, size: number): AsyncGenerator<Batch> {
  let batch: Batch = { ok: [], bad: [] };
  for await (const records of groups) {
    for (const record of records) {
      if (record.ok) batch.ok.push(record);
      else batch.bad.push(record);
      if (batch.ok.length >= size || batch.bad.length >= size) {
        yield batch;
        batch = { ok: [], bad: [] };
      }
    }
  }
  if (batch.ok.length || batch.bad.length) yield batch;
}
