import { formatDuration } from '../spec/parseDuration.js';
import type { Diagnosis } from './jobState.js';
import { diagnoseImage } from './judgeImage.js';
import { installFix } from './libraryPackages.js';
import { outputsRequired, type RunObservation } from './judgeRunJob.js';


/** Paths a container may write to its own filesystem without it being a lost output. */
const SCRATCH = [/^\/tmp(\/|$)/, /^\/var\/tmp(\/|$)/, /^\/run(\/|$)/, /^\/dev(\/|$)/, /^\/proc(\/|$)/, /^\/sys(\/|$)/, /^\/var\/cache(\/|$)/, /^\/var\/log(\/|$)/, /\/\.cache(\/|$)/, /\/__pycache__(\/|$)/, /\.pyc$/, /^\/root\/\.[^/]+$/, /^\/home\/[^/]+\/\.[^/]+$/, /^\/etc\/(hostname|hosts|resolv\.conf|mtab)$/];

/**
 * Findings a human can act on, beside Vertex's verdict. Each has a stable code; the most
 * important come first.
 */
export function diagnoseRunJob(o: RunObservation): Diagnosis[] {
  const out: Diagnosis[] = [];
  const customJob = o.flavour === 'custom-job';
  const wroteNothing = o.outputFileCount === 0 && (!customJob || (o.gcsWrittenCount ?? 0) === 0);
  const failedRun = o.cancelled ? false : o.oomKilled || o.timedOut || (o.exitCode ?? 1) !== 0 || (wroteNothing && outputsRequired(o));

  const imageProblem = diagnoseImage(o);
  if (imageProblem) return [imageProblem];

  if (o.cancelled) {
    out.push({ code: 'CANCELLED', severity: 'info', message: 'The job was cancelled before the container finished; its outputs were not collected.' });
    return out;
  }

  const startError = o.startError ?? '';
  const usedArgsOnCmd = o.args !== undefined && o.command === undefined && !(o.image?.entrypoint?.length) && (o.image?.cmd?.length ?? 0) > 0;
  if (usedArgsOnCmd) {
    const ran = o.args!.join(' ');
    const broke = /executable file not found|no such file or directory/i.test(startError) || o.exitCode === 127 || o.exitCode === 126;
    out.push({
      code: 'ARGS_REPLACED_CMD',
      severity: broke ? 'error' : 'warning',
      message: `The job's args replaced the image's CMD ${JSON.stringify(o.image!.cmd)} (the image has no ENTRYPOINT), so the container ran \`${ran}\`${broke ? ', which is not a program' : ''}. Vertex, like Kubernetes, treats args as the CMD.`,
      fix: 'Make the program the ENTRYPOINT and keep passing "$@": ENTRYPOINT ["/app/entrypoint.sh"] with `exec python model.py "$@"` in the script (a wrapper named in CMD is replaced too), or set containerSpec.command.',
      ...(startError ? { evidence: [startError] } : {}),
    });
  } else if (/executable file not found|no such file or directory/i.test(startError)) {
    out.push({
      code: 'COMMAND_NOT_FOUND',
      severity: 'error',
      message: 'The container could not start: its command does not exist in the image.',
      fix: 'Check containerSpec.command / the image ENTRYPOINT and CMD, and that the program is on PATH in the image.',
      evidence: [startError],
    });
  }

  const execFormat = o.logSignals.find((s) => s.kind === 'exec-format-error');
  if (execFormat || /exec format error/i.test(startError)) {
    out.push({
      code: 'EXEC_FORMAT_ERROR',
      severity: 'error',
      message: 'A program in the image was built for another CPU architecture ("exec format error").',
      fix: `Rebuild for amd64: docker buildx build --platform linux/amd64 -t ${o.imageUri} .`,
      evidence: [execFormat?.line ?? startError],
    });
  }

  if (o.oomKilled) {
    out.push({
      code: 'OUT_OF_MEMORY',
      severity: 'error',
      message: `The container used more than the ${formatBytes(o.memoryBytes)} of memory that ${o.machineType} gives it and was killed.${reserveExplanation(o)}`,
      fix: 'Process the input in smaller chunks, or choose a machine type with more memory (e.g. an n1-highmem-* type).',
    });
  }

  if (o.timedOut) {
    const server = o.logSignals.find((s) => s.kind === 'server-listening');
    out.push({
      code: 'TIMEOUT',
      severity: 'error',
      message: `The container was still running after ${formatDuration(o.timeoutMs)}.`,
      fix: 'Raise --timeout (scheduling.timeout), or find where the program waits.',
    });
    if (server || (o.image?.exposedPorts.length ?? 0) > 0) {
      out.push({
        code: 'LOOKS_LIKE_SERVER',
        severity: 'warning',
        message: 'The container looks like a prediction server (it listens on a port and never exits); the file contract expects a program that runs to completion.',
        fix: 'Real BatchPredictionJobs use the prediction-server contract: run this image with `vbe batch-predict` instead.',
        evidence: server ? [server.line] : [`EXPOSE ${o.image!.exposedPorts.join(' ')}`],
      });
    }
  }

  // A path that exists somewhere (staged, written by the job, in the Cloud Storage root), one under the
  // output directory, or one opened for writing is not a missing input.
  const known = new Set([...o.stagedInputPaths, ...(o.existingPaths ?? [])]);
  const reportedMissing = new Set<string>();
  o.logSignals.forEach((signal, index) => {
    if (signal.kind !== 'missing-file' || known.has(signal.path) || reportedMissing.has(signal.path)) return;
    if (isUnder(signal.path, o.outputContainerDir) || o.logSignals[index - 1]?.kind === 'open-for-write') return;
    reportedMissing.add(signal.path);
    const underGcs = isUnder(signal.path, '/gcs');
    const object = signal.path.slice('/gcs/'.length);
    const bucket = object.split('/')[0]!;
    const bucketStaged = (o.stagedBuckets ?? []).includes(bucket);
    const inputs = o.stagedInputPaths.length > 0 ? `; the staged inputs were ${summarise(o.stagedInputPaths)}` : '';
    out.push({
      code: 'INPUT_NOT_STAGED',
      severity: failedRun ? 'error' : 'warning',
      message: !underGcs
        ? `The container tried to read ${signal.path}, which exists nowhere: it is not a staged input, nor in the image, nor written by the job.`
        : bucketStaged
          ? `The container tried to read ${signal.path}, which exists nowhere: gs://${object} was not in the staged bucket and the job did not write it.`
          : `The container tried to read ${signal.path}, but the bucket ${bucket} was not staged (vbe stages the buckets the job names).`,
      fix: underGcs
        ? bucketStaged
          ? `Put the object at <gcs-root>/${object} (with --gcs-stage inputs only the inputs are copied: use --gcs-stage buckets), or fix the path${inputs}.`
          : `Name the bucket with --gcs-bucket ${bucket} (its directory under --gcs-root is then staged whole), or fix the path.`
        : o.stagedInputPaths.length > 0
          ? `Read the input paths from AIP_BATCH_INPUT_URIS (comma-separated) instead of a fixed path${inputs}.`
          : 'Read inputs from Cloud Storage under /gcs/<bucket>/... (gs://<bucket>/... on Vertex), or pass them with --input and read AIP_BATCH_INPUT_URIS.',
      evidence: [signal.line],
    });
  });

  for (const lib of uniqueBy(o.logSignals.filter((s) => s.kind === 'missing-shared-library'), (s) => s.library)) {
    out.push({
      code: 'MISSING_SHARED_LIBRARY',
      severity: 'error',
      message: `The image lacks the shared library ${lib.library}; it fails at run time, not at build time.`,
      fix: installFix(lib.library),
      evidence: [lib.line],
    });
  }

  for (const denied of uniqueBy(o.logSignals.filter((s) => s.kind === 'permission-denied'), (s) => s.path)) {
    const inOutput = denied.path === o.outputContainerDir || denied.path.startsWith(`${o.outputContainerDir}/`);
    out.push({
      code: inOutput ? 'OUTPUT_PERMISSION_DENIED' : 'PERMISSION_DENIED',
      severity: failedRun ? 'error' : 'warning',
      message: inOutput
        ? `The container's user (${o.image?.user || 'root'}) could not write ${denied.path} in the output directory.`
        : `The container's user (${o.image?.user || 'root'}) was denied ${denied.path}.`,
      fix: inOutput
        ? 'Write into AIP_BATCH_OUTPUT_DIR itself (it is writable by any user) and do not change its permissions.'
        : 'Write results to AIP_BATCH_OUTPUT_DIR and scratch files to /tmp; a non-root USER cannot write into root-owned image directories.',
      evidence: [denied.line],
    });
  }

  const outside = lostOutputs(o.addedPaths);
  if (outside.length > 0) {
    out.push({
      code: 'OUTPUT_OUTSIDE_OUTPUT_DIR',
      severity: wroteNothing && outputsRequired(o) ? 'error' : 'warning',
      message: customJob
        ? `The container wrote ${outside.length} file(s) to its own filesystem, outside /gcs; on Vertex they vanish with the replica.`
        : `The container wrote ${outside.length} file(s) outside AIP_BATCH_OUTPUT_DIR (${o.outputContainerDir}); on Vertex they vanish with the replica.`,
      fix: customJob ? 'Write what must outlive the job under /gcs/<bucket>/... (e.g. the directory in AIP_MODEL_DIR, with gs:// read as /gcs/).' : 'Write results under the directory named by AIP_BATCH_OUTPUT_DIR.',
      evidence: outside.slice(0, 10),
    });
  }

  if (!o.timedOut && !o.oomKilled && o.exitCode === 0 && wroteNothing && (outside.length === 0 || customJob)) {
    out.push(
      customJob
        ? {
            code: 'NO_OUTPUT',
            severity: outputsRequired(o) ? 'error' : 'warning',
            message: `The container exited 0 and wrote nothing under /gcs or the output directory (${o.outputContainerDir}). Vertex calls this job SUCCEEDED${outputsRequired(o) ? '; --expect-output makes it a failure' : ''}.`,
            fix: 'If the job should produce something, write it under /gcs/<bucket>/... (e.g. the directory in AIP_MODEL_DIR); pass --expect-output to fail such runs in CI.',
          }
        : {
            code: 'NO_OUTPUT',
            severity: 'error',
            message: `The container exited 0 but wrote nothing to AIP_BATCH_OUTPUT_DIR (${o.outputContainerDir}).`,
            fix: 'Write at least one result file into the directory named by AIP_BATCH_OUTPUT_DIR.',
          },
    );
  }

  if (o.collectionError) {
    out.unshift({
      code: 'OUTPUT_COLLECTION_FAILED',
      severity: 'error',
      message: `Copying the outputs back stopped part-way: ${o.collectionError}. Files that were copied are whole; the rest are missing.`,
      fix: 'Free disk space where --output is (or choose another --output) and run again.',
    });
  }

  if (o.refusedOutputs.length > 0) {
    const refused = Math.max(o.refusedOutputCount ?? 0, o.refusedOutputs.length);
    out.push({
      code: 'OUTPUT_REFUSED',
      severity: 'warning',
      message: `${refused} entr${refused === 1 ? 'y' : 'ies'} in the output directory were not copied back (only regular files and directories inside it are).`,
      fix: 'Write plain files into AIP_BATCH_OUTPUT_DIR: no links, devices, FIFOs or paths with "..".',
      evidence: o.refusedOutputs.slice(0, 10).map((r) => `${r.path}: ${r.reason}`),
    });
  }

  if (failedRun && !o.oomKilled && (o.exitCode ?? 0) !== 0 && out.every((d) => d.severity !== 'error')) {
    out.push({
      code: 'NONZERO_EXIT',
      severity: 'error',
      message: `The container exited with status ${o.exitCode}; its last log lines (emulator.logTail, and stderr.log in the record directory) show why.`,
      fix: 'Read the container log (stderr.log in the job record directory).',
    });
  }
  return out;
}

/** Added paths that are files the user probably meant to keep (leaves only, scratch excluded). */
export function lostOutputs(addedPaths: readonly string[]): string[] {
  const kept = addedPaths.filter((p) => !SCRATCH.some((re) => re.test(p)));
  const set = new Set(kept);
  return kept.filter((p) => ![...set].some((other) => other !== p && other.startsWith(`${p}/`))).sort();
}

function isUnder(p: string, dir: string): boolean {
  return p === dir || p.startsWith(`${dir}/`);
}

function uniqueBy<T>(items: T[], key: (item: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((item) => (seen.has(key(item)) ? false : (seen.add(key(item)), true)));
}

function summarise(paths: readonly string[]): string {
  if (paths.length <= 3) return paths.join(', ');
  return `${paths.slice(0, 3).join(', ')} and ${paths.length - 3} more`;
}

/** What the OOM diagnoses need to know about the memory a replica got. */
export interface MemoryFacts {
  machineType: string;
  /** The container's limit. */
  memoryBytes: number;
  /** The machine type's whole memory and what Vertex keeps of it (absent in older records). */
  machineMemoryBytes?: number;
  memoryReserveBytes?: number;
}

/**
 * Why a job that ran out of memory here would also on Vertex, when the limit was below the
 * machine's figure because of what Vertex keeps: "Vertex keeps about 6.0 GiB of n1-standard-4 ...".
 * Empty when no reserve applied.
 */
export function reserveExplanation(m: MemoryFacts): string {
  if (!m.machineMemoryBytes || !m.memoryReserveBytes) return '';
  return (
    ` Vertex keeps about ${formatBytes(m.memoryReserveBytes)} of ${m.machineType}'s ${formatBytes(m.machineMemoryBytes)} for its agents (--memory-reserve):` +
    ` a peak between ${formatBytes(m.memoryBytes)} and ${formatBytes(m.machineMemoryBytes)} would fit the whole machine but not what Vertex leaves, so it fails there too.`
  );
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value >= 10 || unit === 0 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}
