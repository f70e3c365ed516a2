import { Command, Option } from 'commander';
import { usageError } from '../errors.js';
import type { BatchPredictionJobResource, RunJobResource } from '../report/jobResource.js';
import { formatBatchSummary } from '../report/formatBatchSummary.js';
import { formatRunSummary } from '../report/formatRunSummary.js';
import { formatComparison } from '../replay/compareOutcomes.js';
import { type ReplayOptions, replayJob } from '../replay/replayJob.js';
import { PULL_POLICIES, type PullPolicy } from '../spec/runJobSpec.js';
import type { CliContext } from './cliContext.js';
import { withProgress } from './progressDisplay.js';
import { cliJobHooks } from './runCommand.js';
import { parseReportTargets, withStepSummary, writeReports } from '../report/writeReports.js';

interface ReplayFlags {
  model?: string;
  image?: string;
  output?: string;
  gcs?: 'local' | 'real';
  gcsRoot?: string;
  failedOnly?: boolean;
  input?: string[];
  pull?: PullPolicy;
  apiEndpoint?: string;
  maxFailedRatio?: string;
  quiet?: boolean;
  progress?: boolean;
  json?: boolean;
  report?: string[];
  stepSummary?: boolean;
}

export function toReplayOptions(job: string, f: ReplayFlags): ReplayOptions {
  const o: ReplayOptions = { job };
  if (f.model) o.model = f.model;
  if (f.image) o.image = f.image;
  if (f.output) o.output = f.output;
  if (f.gcs) o.gcs = f.gcs;
  if (f.gcsRoot) o.gcsRoot = f.gcsRoot;
  if (f.failedOnly) o.failedOnly = true;
  if (f.input?.length) o.inputs = f.input;
  if (f.pull) o.pull = f.pull;
  if (f.apiEndpoint) o.apiEndpoint = f.apiEndpoint;
  if (f.maxFailedRatio !== undefined) {
    const ratio = Number(f.maxFailedRatio);
    if (!Number.isFinite(ratio)) throw usageError('INVALID_RATIO', `--max-failed-ratio: "${f.maxFailedRatio}" is not a number.`, 'Give a fraction such as 0.05.');
    o.maxFailedRatio = ratio;
  }
  return o;
}

export function replayCommand(context: CliContext): Command {
  return new Command('replay')
    .description('Reproduce a Vertex AI job locally from its resource (a file from `gcloud ai ... describe --format=json`, or a resource name fetched with your Application Default Credentials), and put the cloud outcome beside the local one.')
    .argument('<job>', 'job resource file (JSON or YAML), or projects/P/locations/L/batchPredictionJobs/ID | .../customJobs/ID')
    .option('--model <file>', 'the Model resource (`gcloud ai models describe --format=json`) of a BatchPredictionJob that names a model')
    .option('--image <ref>', "override the container image")
    .option('--output <dir>', 'where the local outputs and record go (default ./replay-<job id>/); never the cloud job\'s output directory')
    .option('--failed-only', "run only the input instances with no line in the cloud job's results files (jsonl input)")
    .option('--input <path...>', 'inputs for a CustomJob (its resource has none): paths, globs or gs:// URIs')
    .addOption(new Option('--gcs <mode>', 'Cloud Storage: local (gs://b/p is <gcs-root>/b/p, default) or real (downloaded with your Application Default Credentials)').choices(['local', 'real']))
    .option('--gcs-root <dir>', 'host directory standing in for Cloud Storage (default ./gcs)')
    .addOption(new Option('--pull <policy>', 'when to pull the image').choices([...PULL_POLICIES]))
    .option('--api-endpoint <url>', 'Vertex AI API endpoint (default https://<region>-aiplatform.googleapis.com; env VBE_VERTEX_API_ENDPOINT)')
    .option('--max-failed-ratio <fraction>', 'FAIL the local BatchPredictionJob when more than this fraction of instances failed')
    .option('--no-progress', 'no progress bars')
    .option('--quiet', "do not stream the container's output")
    .option('--report <format=file...>', 'also write a report of the local job: junit=<file>, json=<file>, html=<file> (self-contained, with charts) or markdown=<file> (repeatable)')
    .option('--no-step-summary', 'do not append the Markdown summary to GITHUB_STEP_SUMMARY (appended by default when it is set)')
    .option('--json', 'print the local job resource (with emulator.replay) as JSON on stdout')
    .action(async (job: string, flags: ReplayFlags) => {
      const reports = parseReportTargets(flags.report);
      const result = await withProgress(context, flags, (onTransfer) => replayJob(toReplayOptions(job, flags), cliJobHooks(context, flags, onTransfer)));
      context.stderr('completionStats' in result ? formatBatchSummary(result as BatchPredictionJobResource) : formatRunSummary(result as RunJobResource));
      if (result.emulator.replay) context.stderr(formatComparison(result.emulator.replay));
      for (const warning of await writeReports(reports, result, withStepSummary(flags))) context.stderr(`vbe warn: ${warning}`);
      if (flags.json) context.stdout(JSON.stringify(result, null, 2));
      context.setExitCode(result.state === 'JOB_STATE_SUCCEEDED' ? 0 : 1);
    });
}
