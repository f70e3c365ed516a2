import { Command, Option } from 'commander';
import { runDoctor } from '../doctor/runDoctor.js';
import { usageError } from '../errors.js';
import { formatChecklist } from '../report/formatChecklist.js';
import { PULL_POLICIES, type PullPolicy } from '../spec/runJobSpec.js';
import { parseReportTargets, withStepSummary, writeReports } from '../report/writeReports.js';
import type { CliContext } from './cliContext.js';
import { withProgress } from './progressDisplay.js';
import { collectParts } from './runCommand.js';

interface DoctorFlags {
  progress?: boolean;
  image?: string;
  contract?: 'files' | 'server' | 'auto';
  port?: string;
  healthRoute?: string;
  predictRoute?: string;
  sample?: string;
  machineType?: string;
  args?: string[];
  env?: string[];
  pull?: PullPolicy;
  startupTimeout?: string;
  timeout?: string;
  staticOnly?: boolean;
  artifactUri?: string;
  gcsRoot?: string;
  json?: boolean;
  report?: string[];
  stepSummary?: boolean;
}

export function doctorCommand(context: CliContext): Command {
  return new Command('doctor')
    .description('Check an image against Vertex before any job runs: a checklist, each item pass / warn / fail with evidence and a fix.')
    .option('--image <ref>', 'the image to check')
    .addOption(new Option('--contract <contract>', 'which contract to check it against (auto: guess from the image)').choices(['files', 'server', 'auto']).default('auto'))
    .option('--port <port>', 'AIP_HTTP_PORT for a server (default 8080)')
    .option('--health-route <route>', 'health route for a server (default the Vertex endpoint route)')
    .option('--predict-route <route>', 'predict route for a server')
    .option('--sample <file>', 'sample input: instances (jsonl) for a server, an input file for the file contract')
    .option('--machine-type <type>', 'machine type whose limits apply (default n1-standard-4)')
    .option('--args <part>', "the job's args (repeat, or a JSON array): checks what they replace", collectParts('--args'))
    .option('--env <NAME=VALUE...>', 'environment for the live run')
    .addOption(new Option('--pull <policy>', 'when to pull the image').choices([...PULL_POLICIES]))
    .option('--startup-timeout <duration>', 'how long a server may take to become healthy (default 2m)')
    .option('--timeout <duration>', 'how long the live run may take (default 2m)')
    .option('--static-only', 'only the checks that do not run the container')
    .option('--artifact-uri <dir|gs://...>', 'the model artifact: AIP_STORAGE_URI for a server, AIP_MODEL_DIR for a file job')
    .option('--gcs-root <dir>', 'where gs:// paths live locally (default ./gcs)')
    .option('--report <format=file...>', 'also write a report: junit=<file> (JUnit XML for CI), json=<file>, html=<file> (self-contained, with charts) or markdown=<file> (repeatable)')
    .option('--no-step-summary', 'do not append the Markdown summary to GITHUB_STEP_SUMMARY (appended by default when it is set)')
    .option('--no-progress', 'no progress bars (they are drawn only when stderr is a terminal)')
    .option('--json', 'print the checklist as JSON on stdout')
    .action(async (flags: DoctorFlags) => {
      if (flags.port !== undefined && !/^\d+$/.test(flags.port)) throw usageError('INVALID_NUMBER', `--port: "${flags.port}" is not a port number.`, 'Give --port a number from 1 to 65535.');
      const reports = parseReportTargets(flags.report);
      const image = flags.image;
      if (!image) throw usageError('MISSING_IMAGE', 'image: no container image given.', 'Pass --image <ref>.');
      const report = await withProgress(context, flags, (onTransfer) => runDoctor(
        {
          image,
          ...(flags.contract ? { contract: flags.contract } : {}),
          ...(flags.port ? { port: Number(flags.port) } : {}),
          ...(flags.healthRoute ? { healthRoute: flags.healthRoute } : {}),
          ...(flags.predictRoute ? { predictRoute: flags.predictRoute } : {}),
          ...(flags.sample ? { sample: flags.sample } : {}),
          ...(flags.machineType ? { machineType: flags.machineType } : {}),
          ...(flags.args ? { args: flags.args } : {}),
          ...(flags.env?.length ? { env: flags.env } : {}),
          ...(flags.pull ? { pull: flags.pull } : {}),
          ...(flags.startupTimeout ? { startupTimeout: flags.startupTimeout } : {}),
          ...(flags.timeout ? { timeout: flags.timeout } : {}),
          ...(flags.staticOnly ? { staticOnly: true } : {}),
          ...(flags.artifactUri ? { artifactUri: flags.artifactUri } : {}),
          ...(flags.gcsRoot ? { gcsRoot: flags.gcsRoot } : {}),
        },
        { logger: context.logger, signal: context.signal, onProgress: (m) => context.stderr(`› ${m}`), onTransfer },
      ));
      context.stderr(formatChecklist(report));
      for (const warning of await writeReports(reports, report, withStepSummary(flags))) context.stderr(`vbe warn: ${warning}`);
      if (flags.json) context.stdout(JSON.stringify(report, null, 2));
      context.setExitCode(report.ok ? 0 : 1);
    });
}
