import path from 'node:path';
import { RECORD_DIR_NAME } from '../../report/recordDir.js';
import { parseGcsUri } from '../../spec/gcsUri.js';
import { DEFAULT_RUNS_DIR, type RunJobOptions, type RunJobSpec, resolveRunJobSpec } from '../../spec/runJobSpec.js';
import { type GcsBucketStaging, gcsInputsOnly, namedBuckets, resolveGcsBuckets } from '../../staging/gcsBuckets.js';
import { type ResolvedInputs, type ResolvedModelDir, type ResolvedOutput, resolveInputs, resolveModelDir, resolveOutput } from '../../staging/resolveLocations.js';
import { checkInputListLength } from '../checkInputListLength.js';

/** Everything `vbe run` needs from the user's input, checked before the engine is touched. */
export interface RunPlan {
  spec: RunJobSpec;
  inputs: ResolvedInputs;
  model?: ResolvedModelDir;
  output: ResolvedOutput;
  /** The buckets staged whole at /gcs/<bucket>. */
  buckets: GcsBucketStaging;
  /** `<output>/.vbe`: the job record and the logs. */
  recordDir: string;
  logFiles: { stdout: string; stderr: string };
  /** Staging's warnings (the spec's own are in `spec.warnings`). */
  stagingWarnings: string[];
}

/** The validate phase of `vbe run`: bad input is a usage error here, and loses nothing. */
export async function validateRunJob(options: RunJobOptions, jobId: string): Promise<RunPlan> {
  const spec = await resolveRunJobSpec(options);
  // A CustomJob without an output directory keeps its record in ./vbe-runs/<job id>.
  if (spec.outputDefaulted) spec.output = { ...spec.output, text: path.join(DEFAULT_RUNS_DIR, jobId) };
  const inputs = await resolveInputs(spec.inputs, spec.gcsRoot);
  const model = spec.modelDir ? await resolveModelDir(spec.modelDir, spec.gcsRoot) : undefined;
  const output = await resolveOutput(spec.output, spec.gcsRoot);
  checkInputListLength(inputs);
  // Every bucket the job names is staged whole at /gcs/<bucket> (read and write, as Cloud Storage
  // FUSE shows it), but the output prefix, which starts empty.
  const outputLocation = output.gcsUri ? parseGcsUri(output.gcsUri, spec.output.field) : undefined;
  const outputPrefix = outputLocation ? [outputLocation.bucket, outputLocation.objectPath.replace(/\/+$/, '')].filter(Boolean).join('/') : undefined;
  const named = namedBuckets({ inputs: spec.inputs, modelDir: spec.modelDir, output: spec.output, extra: spec.extraBuckets });
  const excluded = outputPrefix ? [outputPrefix] : [];
  const buckets =
    spec.gcsStage === 'inputs'
      ? gcsInputsOnly(named, [...inputs.groups, ...(model?.groups ?? [])], excluded)
      : await resolveGcsBuckets(named, spec.gcsRoot, excluded);
  const stagingWarnings: string[] = [];
  if (buckets.excludedFileCount > 0) {
    stagingWarnings.push(
      `${buckets.excludedFileCount} file(s) already under the output prefix ${output.gcsUri} were not staged: the job sees it empty (on Vertex it would see those objects). Clear ${output.hostDir} or choose a new prefix.`,
    );
  }
  const recordDir = path.join(output.hostDir, RECORD_DIR_NAME);
  const logFiles = { stdout: path.join(recordDir, 'stdout.log'), stderr: path.join(recordDir, 'stderr.log') };
  return { spec, inputs, ...(model ? { model } : {}), output, buckets, recordDir, logFiles, stagingWarnings };
}
