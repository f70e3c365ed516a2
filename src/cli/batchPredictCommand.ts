import { Command, Option } from 'commander';
import { batchPredict } from '../jobs/batchPredict.js';
import { formatBatchSummary } from '../report/formatBatchSummary.js';
import { usageError } from '../errors.js';
import type { BatchPredictOptions, OutputNaming } from '../spec/batchPredictSpec.js';
import { PULL_POLICIES, type PullPolicy } from '../spec/runJobSpec.js';
import { INSTANCES_FORMATS } from '../spec/instancesFormats.js';
import { parseReportTargets, withStepSummary, writeReports } from '../report/writeReports.js';
import type { CliContext } from './cliContext.js';
import { withProgress } from './progressDisplay.js';
import { addResourceOptions, cliJobHooks, collectParts, commonJobFlags, wholeNumber } from './runCommand.js';

interface BatchFlags {
  image?: string;
  input?: string[];
  instancesFormat?: string;
  output?: string;
  batchSize?: string;
  replicaCount?: string;
  machineType?: string;
  modelParameters?: string;
  keyField?: string;
  includedFields?: string;
  excludedFields?: string;
  instanceType?: 'object' | 'array';
  artifactUri?: string;
  predictRoute?: string;
  healthRoute?: string;
  port?: string;
  startupTimeout?: string;
  requestTimeout?: string;
  outputNaming?: OutputNaming;
  maxFailedRatio?: string;
  maxInFlight?: string;
  retries?: string;
  env?: string[];
  command?: string[];
  args?: string[];
  gcsRoot?: string;
  gcs?: 'local' | 'real';
  spec?: string;
  pull?: PullPolicy;
  displayName?: string;
  quiet?: boolean;
  progress?: boolean;
  json?: boolean;
  secretEnv?: string[];
  maxLogSize?: string;
  gpu?: boolean;
  report?: string[];
  stepSummary?: boolean;
  memoryReserve?: string;
  diskSize?: string;
}

function integer(value: string | undefined, flag: string): number | undefined {
  return value === undefined ? undefined : wholeNumber(value, flag);
}

function list(value: string | undefined): string[] | undefined {
  return value === undefined ? undefined : value.split(',').map((s) => s.trim()).filter(Boolean);
}

export function toBatchPredictOptions(f: BatchFlags): BatchPredictOptions {
  const o: BatchPredictOptions = {};
  const set = <K extends keyof BatchPredictOptions>(key: K, value: BatchPredictOptions[K] | undefined) => {
    if (value !== undefined) o[key] = value;
  };
  set('image', f.image);
  if (f.input?.length) o.inputs = f.input;
  set('instancesFormat', f.instancesFormat);
  set('output', f.output);
  set('batchSize', integer(f.batchSize, '--batch-size'));
  set('replicaCount', integer(f.replicaCount, '--replica-count'));
  set('machineType', f.machineType);
  set('modelParameters', f.modelParameters);
  set('keyField', f.keyField);
  set('includedFields', list(f.includedFields));
  set('excludedFields', list(f.excludedFields));
  set('instanceType', f.instanceType);
  set('artifactUri', f.artifactUri);
  set('predictRoute', f.predictRoute);
  set('healthRoute', f.healthRoute);
  set('port', integer(f.port, '--port'));
  set('startupTimeout', f.startupTimeout);
  set('requestTimeout', f.requestTimeout);
  set('outputNaming', f.outputNaming);
  if (f.maxFailedRatio !== undefined) {
    const ratio = Number(f.maxFailedRatio);
    if (!Number.isFinite(ratio)) throw usageError('INVALID_RATIO', `--max-failed-ratio: "${f.maxFailedRatio}" is not a number.`, 'Give a fraction such as 0.05.');
    o.maxFailedRatio = ratio;
  }
  set('maxInFlight', integer(f.maxInFlight, '--max-in-flight'));
  set('retries', integer(f.retries, '--retries'));
  if (f.env?.length) o.env = f.env;
  set('command', f.command);
  set('args', f.args);
  set('gcsRoot', f.gcsRoot);
  set('gcs', f.gcs);
  set('spec', f.spec);
  set('pull', f.pull);
  set('displayName', f.displayName);
  Object.assign(o, commonJobFlags(f));
  return o;
}

export function batchPredictCommand(context: CliContext): Command {
  return addResourceOptions(new Command('batch-predict'))
    .description("Run a BatchPredictionJob under Vertex's documented prediction-server contract: the container is an HTTP server; vbe reads the input, POSTs batches and writes the output files.")
    .option('--image <ref>', 'container image (containerSpec.imageUri)')
    .option('--input <path...>', 'input files: paths, globs or gs:// URIs (repeatable)')
    .addOption(new Option('--instances-format <format>', 'input format').choices([...INSTANCES_FORMATS]))
    .option('--output <dir>', 'where prediction-<name>-<time>/ is written (a directory, or gs:// mapped under --gcs-root)')
    .option('--batch-size <n>', 'instances per request (default 64)')
    .option('--replica-count <n>', 'model server replicas sharing the input (default 1)')
    .option('--machine-type <type>', 'Vertex machine type of each replica (default n1-standard-4)')
    .option('--model-parameters <json>', "JSON sent as the request's parameters")
    .option('--key-field <field>', 'instanceConfig.keyField: output carries "key" instead of "instance"')
    .option('--included-fields <a,b>', 'instanceConfig.includedFields')
    .option('--excluded-fields <c,d>', 'instanceConfig.excludedFields')
    .addOption(new Option('--instance-type <type>', 'instanceConfig.instanceType').choices(['object', 'array']))
    .option('--artifact-uri <dir|gs://>', 'model artifact staged into the container; sets AIP_STORAGE_URI')
    .option('--predict-route <route>', 'containerSpec.predictRoute (default the Vertex endpoint route + :predict)')
    .option('--health-route <route>', 'containerSpec.healthRoute (default /v1/endpoints/<id>/deployedModels/<id>)')
    .option('--port <port>', 'containerSpec.ports[0].containerPort (default 8080)')
    .option('--startup-timeout <duration>', 'how long the server may take to become ready (default 40m, as Vertex; after 1m vbe prints what is wrong so far)')
    .option('--request-timeout <duration>', "how long one predict request may take (default 600s: the Google Front End's 10-minute deadline)")
    .addOption(new Option('--output-naming <naming>', 'results: prediction.results-00000-of-00001; predictions: predictions_0001.jsonl').choices(['results', 'predictions']))
    .option('--max-failed-ratio <fraction>', 'FAIL the job when more than this fraction of instances failed')
    .option('--max-in-flight <n>', 'requests in flight per replica (default 2)')
    .option('--retries <n>', 'retries of a failed request (default 3, as Vertex)')
    .option('--env <NAME=VALUE...>', 'environment variable for the container (repeatable; AIP_* is reserved)')
    .option('--command <part>', 'replace the image ENTRYPOINT (repeat, or a JSON array)', collectParts('--command'))
    .option('--args <part>', 'replace the image CMD (repeat, or a JSON array)', collectParts('--args'))
    .addOption(new Option('--gcs <mode>', 'Cloud Storage: local (gs://b/p is <gcs-root>/b/p, default) or real (@google-cloud/storage with your Application Default Credentials, or STORAGE_EMULATOR_HOST)').choices(['local', 'real']))
    .option('--gcs-root <dir>', 'host directory standing in for Cloud Storage (default ./gcs)')
    .option('--spec <file>', 'a BatchPredictionJob REST body (JSON or YAML); flags override it')
    .addOption(new Option('--pull <policy>', 'when to pull the image').choices([...PULL_POLICIES]))
    .option('--display-name <name>', 'the job displayName')
    .option('--secret-env <NAME...>', 'secret environment variable, NAME=VALUE or NAME (value taken from your environment); its value is masked everywhere')
    .option('--no-gpu', 'run CPU-only even when the machine spec asks for accelerators')
    .option('--max-log-size <size>', 'bytes of each log stream saved to disk (default 256MiB)')
    .option('--no-progress', 'no progress bars (they are drawn only when stderr is a terminal)')
    .option('--quiet', "do not stream the servers' output")
    .option('--report <format=file...>', 'also write a report: junit=<file> (JUnit XML for CI), json=<file>, html=<file> (self-contained, with charts) or markdown=<file> (repeatable)')
    .option('--no-step-summary', 'do not append the Markdown summary to GITHUB_STEP_SUMMARY (appended by default when it is set)')
    .option('--json', 'print the final BatchPredictionJob resource as JSON on stdout')
    .action(async (flags: BatchFlags) => {
      const reports = parseReportTargets(flags.report);
      const job = await withProgress(context, flags, (onTransfer) =>
        batchPredict(toBatchPredictOptions(flags), cliJobHooks(context, flags, onTransfer)),
      );
      context.stderr(formatBatchSummary(job));
      for (const warning of await writeReports(reports, job, withStepSummary(flags))) context.stderr(`vbe warn: ${warning}`);
      if (flags.json) context.stdout(JSON.stringify(job, null, 2));
      context.setExitCode(job.state === 'JOB_STATE_SUCCEEDED' ? 0 : 1);
    });
}
