#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { pino } from 'pino';
import { isVbeError } from '../errors.js';
import type { CliContext } from './cliContext.js';
import { batchPredictCommand } from './batchPredictCommand.js';
import { doctorCommand } from './doctorCommand.js';
import { pruneCommand } from './pruneCommand.js';
import { runCommand } from './runCommand.js';

const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** The single error boundary and the only place that exits the process. */
async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  const logger = pino({ level: verbose ? 'debug' : 'warn' }, pino.destination(2));
  const controller = new AbortController();
  let exitCode = 0;
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts += 1;
    if (interrupts === 1) {
      process.stderr.write(`\n${signal}: cancelling the job and cleaning up (press Ctrl-C again to exit at once)\n`);
      controller.abort();
    } else {
      process.stderr.write('exiting without cleanup: run `vbe prune` to remove what was left\n');
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const context: CliContext = {
    logger,
    signal: controller.signal,
    stdout: (text) => process.stdout.write(`${text}\n`),
    stderr: (text) => process.stderr.write(`${text}\n`),
    setExitCode: (code) => {
      exitCode = code;
    },
  };
  const program = new Command('vbe')
    .description('vertex-batch-emulator: run Vertex AI batch jobs locally in Docker and judge them the way Vertex would.')
    .version(version)
    .option('--verbose', 'debug logging (JSON lines on stderr)')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  program.addCommand(runCommand(context).exitOverride());
  program.addCommand(batchPredictCommand(context).exitOverride());
  program.addCommand(doctorCommand(context).exitOverride());
  program.addCommand(pruneCommand(context).exitOverride());
  try {
    await program.parseAsync(argv.filter((a) => a !== '--verbose'), { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return 0;
      return 2;
    }
    if (isVbeError(error)) {
      process.stderr.write(`vbe: error ${error.code}: ${error.message}\n`);
      if (error.suggestion) process.stderr.write(`  fix: ${error.suggestion}\n`);
      return error.exitCode;
    }
    process.stderr.write(`vbe: internal error: ${(error as Error)?.stack ?? String(error)}\n`);
    return 3;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`vbe: internal error: ${String(error)}\n`);
    process.exit(3);
  },
);
