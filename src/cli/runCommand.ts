import { Command, Option } from 'commander';
import { runJob, type RunJobHooks } from '../jobs/runJob.js';
import type { TransferListener } from '../jobs/transferProgress.js';
import { formatRunSummary } from '../report/formatRunSummary.js';
import { usageError } from '../errors.js';
import { parseSizeBytes } from '../spec/parseSize.js';
import { JOB_FLAVOURS, type JobFlavour, PULL_POLICIES, type PullPolicy, type RunJobOptions } from '../spec/runJobSpec.js';
import { parseReportTargets, withStepSummary, writeReports } from '../report/writeReports.js';
import type { CliContext } from './cliContext.js';
import { withProgress } from './progressDisplay.js';

interface RunFlags {
  image?: string;
  input?: string[];
  output?: string;
  machineType?: string;
  env?: string[];
  command?: string[];
  args?: string[];
  timeout?: string;
  gcsRoot?: string;
  gcs?: 'local' | 'real';
  spec?: string;
  pull?: PullPolicy;
  json?: boolean;
  displayName?: string;
  modelDir?: string;
  stopGrace?: string;
  maxOutputFileSize?: string;
  quiet?: boolean;
  progress?: boolean;
  secretEnv?: string[];
  maxLogSize?: string;
  gpu?: boolean;
  maxRestarts?: string;
  restartExitCodes?: string;
  network?: 'bridge' | 'none';
  report?: string[];
  contract?: JobFlavour;
  expectOutput?: boolean;
  gcsBucket?: string[];
  gcsStage?: 'buckets' | 'inputs';
  stepSummary?: boolean;
  memoryReserve?: string;
  diskSize?: string;
}

/** The resource flags both job commands take (README "Resources"). */
export function addResourceOptions(command: Command): Command {
  return command
    .option('--memory-reserve <vertex|none|size|N%>', "memory Vertex keeps of the machine type for its agents: vertex (default: GKE's reservation or 40% on machines of up to 4 vCPUs), none, a size (2GiB) or a percentage")
    .option('--disk-size <size>', "the replica's disk (default diskSpec.bootDiskSizeGb, 100 GB): a smaller size tests the disk check quickly");
}

/** `--args '["--scale","3"]'` (a JSON array) or repeated `--args=--scale --args=3`. */
export function collectParts(flag: string) {
  return (value: string, previous: string[] | undefined): string[] => {
    const trimmed = value.trim();
    if (trimmed.startsWith('[')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(trimmed);
      } catch {
        throw usageError('INVALID_LIST', `${flag}: "${value}" looks like a JSON array but does not parse.`, `Write ${flag} '["a","b"]' or repeat ${flag}=a ${flag}=b.`);
      }
      if (!Array.isArray(parsed) || parsed.some((p) => typeof p !== 'string')) {
        throw usageError('INVALID_LIST', `${flag}: the JSON value must be an array of strings.`, `Write ${flag} '["a","b"]'.`);
      }
      return [...(previous ?? []), ...(parsed as string[])];
    }
    return [...(previous ?? []), value];
  };
}

/** Flags both job commands share, as options. */
export function commonJobFlags(flags: { secretEnv?: string[]; maxLogSize?: string; gpu?: boolean; memoryReserve?: string; diskSize?: string }): Pick<RunJobOptions, 'secretEnv' | 'maxLogBytes' | 'noGpu' | 'memoryReserve' | 'diskSize'> {
  const out: Pick<RunJobOptions, 'secretEnv' | 'maxLogBytes' | 'noGpu' | 'memoryReserve' | 'diskSize'> = {};
  if (flags.memoryReserve !== undefined) out.memoryReserve = flags.memoryReserve;
  if (flags.diskSize !== undefined) out.diskSize = flags.diskSize;
  if (flags.gpu === false) out.noGpu = true;
  if (flags.secretEnv?.length) out.secretEnv = flags.secretEnv;
  if (flags.maxLogSize) out.maxLogBytes = parseSizeBytes(flags.maxLogSize, '--max-log-size');
  return out;
}

export function wholeNumber(value: string, flag: string): number {
  if (!/^\d+$/.test(value.trim())) throw usageError('INVALID_NUMBER', `${flag}: "${value}" is not a whole number.`, `Give ${flag} a whole number.`);
  return Number(value);
}

export function toRunJobOptions(flags: RunFlags): RunJobOptions {
  const options: RunJobOptions = {};
  if (flags.image) options.image = flags.image;
  if (flags.input?.length) options.inputs = flags.input;
  if (flags.output) options.output = flags.output;
  if (flags.machineType) options.machineType = flags.machineType;
  if (flags.env?.length) options.env = flags.env;
  if (flags.command) options.command = flags.command;
  if (flags.args) options.args = flags.args;
  if (flags.timeout) options.timeout = flags.timeout;
  if (flags.gcsRoot) options.gcsRoot = flags.gcsRoot;
  if (flags.gcs) options.gcs = flags.gcs;
  if (flags.spec) options.spec = flags.spec;
  if (flags.pull) options.pull = flags.pull;
  if (flags.displayName) options.displayName = flags.displayName;
  if (flags.modelDir) options.modelDir = flags.modelDir;
  if (flags.stopGrace) options.stopGrace = flags.stopGrace;
  if (flags.maxOutputFileSize) options.maxOutputFileBytes = parseSizeBytes(flags.maxOutputFileSize, '--max-output-file-size');
  Object.assign(options, commonJobFlags(flags));
  if (flags.network) options.network = flags.network;
  if (flags.maxRestarts !== undefined) options.maxRestarts = wholeNumber(flags.maxRestarts, '--max-restarts');
  if (flags.restartExitCodes !== undefined) {
    options.restartExitCodes =
      flags.restartExitCodes === 'vertex' || flags.restartExitCodes === 'any'
        ? flags.restartExitCodes
        : flags.restartExitCodes.split(',').map((c) => wholeNumber(c.trim(), '--restart-exit-codes'));
  }
  if (flags.contract) options.contract = flags.contract;
  if (flags.expectOutput) options.expectOutput = true;
  if (flags.gcsBucket?.length) options.gcsBuckets = flags.gcsBucket;
  if (flags.gcsStage) options.gcsStage = flags.gcsStage;
  return options;
}

/** The hooks both job commands give the library: progress and container lines on stderr. */
export function cliJobHooks(context: CliContext, flags: { quiet?: boolean }, onTransfer: TransferListener): RunJobHooks {
  return {
    logger: context.logger,
    signal: context.signal,
    onProgress: (message) => context.stderr(`› ${message}`),
    onTransfer,
    ...(flags.quiet ? {} : { onContainerLine: (channel, line) => context.stderr(`${channel === 'stderr' ? '[stderr]' : '[stdout]'} ${line}`) }),
  };
}

export function runCommand(context: CliContext): Command {
  return addResourceOptions(new Command('run'))
    .description('Run a run-to-completion container as a Vertex CustomJob, or under the batch file contract (AIP_BATCH_INPUT_URIS / AIP_BATCH_OUTPUT_DIR), and judge it as Vertex AI would.')
    .option('--image <ref>', 'container image (containerSpec.imageUri)')
    .addOption(new Option('--contract <flavour>', 'custom-job (Vertex CustomJob: inputs optional, exit 0 is SUCCEEDED) or batch-files (exit 0 without outputs FAILS); default: custom-job for a jobSpec spec or a job without inputs').choices([...JOB_FLAVOURS]))
    .option('--input <path...>', 'input files: paths, directories, globs or gs:// URIs (repeatable; optional for a CustomJob)')
    .option('--output <dir>', 'where outputs are copied back (a directory, or gs:// mapped under --gcs-root; a CustomJob baseOutputDirectory)')
    .option('--expect-output', 'a CustomJob that exits 0 without writing anything FAILS (for CI; Vertex calls it SUCCEEDED)')
    .addOption(new Option('--gcs-stage <what>', 'what of the named buckets is copied to /gcs: buckets (whole, as Vertex shows them; default) or inputs (only the gs:// inputs: faster for big buckets)').choices(['buckets', 'inputs']))
    .option('--gcs-bucket <name...>', 'also stage this bucket of --gcs-root whole at /gcs/<name> (the buckets the job names always are)')
    .option('--machine-type <type>', 'Vertex machine type: sets CPU and memory limits (default n1-standard-4)')
    .option('--env <NAME=VALUE...>', 'environment variable for the container (repeatable; AIP_* is reserved)')
    .option('--command <part>', 'replace the image ENTRYPOINT (repeat, or a JSON array)', collectParts('--command'))
    .option('--args <part>', "replace the image CMD (repeat as --args=--flag, or a JSON array '[\"--flag\",\"v\"]')", collectParts('--args'))
    .option('--timeout <duration>', 'kill the job after this long (e.g. 90s, 30m; default 30m)')
    .addOption(new Option('--gcs <mode>', 'Cloud Storage: local (gs://b/p is <gcs-root>/b/p, default) or real (@google-cloud/storage with your Application Default Credentials, or STORAGE_EMULATOR_HOST)').choices(['local', 'real']))
    .option('--gcs-root <dir>', 'host directory standing in for Cloud Storage: gs://b/p is <dir>/b/p (default ./gcs)')
    .option('--spec <file>', 'job spec (JSON or YAML) with Vertex field names; flags override it')
    .addOption(new Option('--pull <policy>', 'when to pull the image').choices([...PULL_POLICIES]))
    .option('--display-name <name>', 'the job displayName')
    .option('--model-dir <dir>', 'model directory (local or gs://) staged into the container; sets AIP_MODEL_DIR')
    .option('--stop-grace <duration>', 'time between SIGTERM and SIGKILL when cancelling (default 10s)')
    .option('--max-output-file-size <size>', 'largest output file copied back (default 4GiB)')
    .option('--secret-env <NAME...>', 'secret environment variable, NAME=VALUE or NAME (value taken from your environment); its value is masked everywhere')
    .option('--no-gpu', 'run CPU-only even when the machine spec asks for accelerators')
    .option('--max-log-size <size>', 'bytes of each log stream saved to disk (default 256MiB)')
    .option('--max-restarts <n>', 'restart a replica that exits with a restarted code up to n times, as Vertex (default 3; 0 turns restarts off)')
    .option('--restart-exit-codes <codes>', "which exits are restarted: 'vertex' (6,11,134,139: SIGABRT, SIGSEGV; default), 'any' non-zero, or a list such as 1,134")
    .addOption(new Option('--network <mode>', 'container network: bridge (default, like Vertex) or none (hermetic)').choices(['bridge', 'none']))
    .option('--no-progress', 'no progress bars (they are drawn only when stderr is a terminal)')
    .option('--quiet', "do not stream the container's output")
    .option('--report <format=file...>', 'also write a report: junit=<file> (JUnit XML for CI), json=<file>, html=<file> (self-contained, with charts) or markdown=<file> (repeatable)')
    .option('--no-step-summary', 'do not append the Markdown summary to GITHUB_STEP_SUMMARY (appended by default when it is set)')
    .option('--json', 'print the final job resource as JSON on stdout (and nothing else there)')
    .action(async (flags: RunFlags) => {
      const reports = parseReportTargets(flags.report);
      const job = await withProgress(context, flags, (onTransfer) =>
        runJob(toRunJobOptions(flags), cliJobHooks(context, flags, onTransfer)),
      );
      context.stderr(formatRunSummary(job));
      for (const warning of await writeReports(reports, job, withStepSummary(flags))) context.stderr(`vbe warn: ${warning}`);
      if (flags.json) context.stdout(JSON.stringify(job, null, 2));
      context.setExitCode(job.state === 'JOB_STATE_SUCCEEDED' ? 0 : 1);
    });
}
