import { Command } from 'commander';
import { formatComparison } from '../replay/compareOutcomes.js';
import { type SubmitKind, type SubmitResult, type SubmitSettings, submitJob } from '../cloud/submitJob.js';
import { parseDurationMs } from '../spec/parseDuration.js';
import { batchPredictCommand, toBatchPredictOptions } from './batchPredictCommand.js';
import type { CliContext } from './cliContext.js';
import { runCommand, toRunJobOptions } from './runCommand.js';

interface SubmitFlags {
  project?: string;
  region?: string;
  apiEndpoint?: string;
  wait?: boolean;
  pollInterval?: string;
  downloadDir?: string;
  compare?: string;
  dryRun?: boolean;
  stageTo?: string;
  batchEnv?: boolean;
  json?: boolean;
}

function settingsOf(flags: SubmitFlags, context: CliContext): SubmitSettings {
  const s: SubmitSettings = { signal: context.signal, progress: (m) => context.stderr(`› ${m}`), warn: (m) => context.stderr(`! ${m}`) };
  if (flags.project) s.project = flags.project;
  if (flags.region) s.region = flags.region;
  if (flags.apiEndpoint) s.apiEndpoint = flags.apiEndpoint;
  if (flags.wait) s.wait = true;
  if (flags.pollInterval) s.pollIntervalMs = parseDurationMs(flags.pollInterval, '--poll-interval');
  if (flags.downloadDir) s.downloadDir = flags.downloadDir;
  if (flags.compare) s.compare = flags.compare;
  if (flags.dryRun) s.dryRun = true;
  if (flags.stageTo) s.stageTo = flags.stageTo;
  if (flags.batchEnv) s.batchEnv = true;
  return s;
}

function summary(result: SubmitResult): string {
  const r = result.resource ?? {};
  const lines = ['', `${String(r.state)}  ${String(r.displayName)}  ${String(r.name)}`];
  const error = r.error as { code?: number; message?: string } | undefined;
  if (error?.message) lines.push(`  error ${error.code ?? '?'}: ${error.message}`);
  const c = r.completionStats as Record<string, string> | undefined;
  if (c) lines.push(`  instances: ${c.successfulCount ?? '0'} succeeded, ${c.failedCount ?? '0'} failed, ${c.incompleteCount ?? '0'} incomplete`);
  if (result.downloaded) lines.push(`  outputs:   ${result.downloaded.directory} (${result.downloaded.objects} file(s))`);
  return lines.join('\n');
}

/** One `vbe submit <command>`: the local command's flags, plus where and how to submit. */
function submitVariant(kind: SubmitKind, local: Command, toOptions: (flags: never) => object, context: CliContext): Command {
  return local
    .description(`Create this ${kind === 'customJob' ? 'CustomJob' : 'BatchPredictionJob'} on Vertex AI (the same flags or --spec as the local command; local-only flags are ignored)`)
    .option('--project <id>', 'Google Cloud project (default GOOGLE_CLOUD_PROJECT, then gcloud config core/project)')
    .option('--region <region>', 'Vertex AI region (default CLOUDSDK_AI_REGION, then gcloud config ai/region)')
    .option('--api-endpoint <url>', 'Vertex AI API endpoint (default https://<region>-aiplatform.googleapis.com; env VBE_VERTEX_API_ENDPOINT)')
    .option('--stage-to <gs://bucket/prefix>', 'upload local inputs and model there first (outputs go to <prefix>/outputs)')
    .option('--batch-env', 'CustomJob: set AIP_BATCH_INPUT_URIS / AIP_BATCH_OUTPUT_DIR as vbe run does (UNCONFIRMED that Vertex accepts them)')
    .option('--dry-run', 'print the exact request body as JSON on stdout and send nothing')
    .option('--wait', 'poll until the job ends, then download its outputs and error files')
    .option('--poll-interval <duration>', 'time between polls with --wait (default 30s)')
    .option('--download-dir <dir>', 'where --wait downloads the outputs (default ./submit-<job id>/)')
    .option('--compare <job.json>', "with --wait: a local run's job.json, shown beside the cloud outcome")
    .action(async (flags: SubmitFlags) => {
      const result = await submitJob(kind, toOptions(flags as never), settingsOf(flags, context));
      if (result.outcome === 'dry-run') {
        context.stdout(JSON.stringify(result.requestBody, null, 2));
        return;
      }
      if (result.outcome === 'finished') context.stderr(summary(result));
      if (result.comparison) context.stderr(formatComparison(result.comparison, 'compare'));
      if (flags.json) context.stdout(JSON.stringify(result.resource, null, 2));
      const state = String(result.resource?.state);
      context.setExitCode(result.outcome !== 'finished' || state === 'JOB_STATE_SUCCEEDED' ? 0 : 1);
    });
}

export function submitCommand(context: CliContext): Command {
  return new Command('submit')
    .description('Create on Vertex AI the job that `vbe run` (a CustomJob) or `vbe batch-predict` (a BatchPredictionJob) ran here, with @google-cloud/aiplatform and your Application Default Credentials')
    .addCommand(submitVariant('customJob', runCommand(context), toRunJobOptions as (flags: never) => object, context))
    .addCommand(submitVariant('batchPredictionJob', batchPredictCommand(context), toBatchPredictOptions as (flags: never) => object, context));
}
