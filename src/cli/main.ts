#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import type { Logger } from 'pino';
import { isVbeError } from '../errors.js';
import type { CliContext } from './cliContext.js';

/**
 * The commands, loaded only when used: each pulls in its own part of the emulator, and start-up
 * time is part of every job's overhead. In the order `vbe --help` lists them.
 */
const COMMANDS: Record<string, () => Promise<(context: CliContext) => Command>> = {
  run: async () => (await import('./runCommand.js')).runCommand,
  'batch-predict': async () => (await import('./batchPredictCommand.js')).batchPredictCommand,
  replay: async () => (await import('./replayCommand.js')).replayCommand,
  submit: async () => (await import('./submitCommand.js')).submitCommand,
  doctor: async () => (await import('./doctorCommand.js')).doctorCommand,
  report: async () => (await import('./reportCommand.js')).reportCommand,
  prune: async () => (await import('./pruneCommand.js')).pruneCommand,
};

const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

// Copying outputs back writes many files at once: give libuv's file-system pool room for them
// (it starts on the first asynchronous file operation, after this line).
process.env.UV_THREADPOOL_SIZE ??= '16';

/** The single error boundary and the only place that exits the process. */
async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  const quiet = argv.includes('--quiet');
  const formatIndex = argv.indexOf('--log-format');
  const logFormat = formatIndex >= 0 ? argv[formatIndex + 1] : process.stderr.isTTY ? 'human' : 'json';
  if (logFormat !== 'human' && logFormat !== 'json') {
    process.stderr.write(`vbe: error INVALID_LOG_FORMAT: --log-format: "${logFormat}" is not human or json.\n  fix: Use --log-format human or --log-format json.\n`);
    return 2;
  }
  const level: LevelName = verbose ? 'debug' : quiet ? 'error' : 'warn';
  // pino is loaded and the logger made on the first line at an enabled level (a run without
  // --verbose, which logs nothing, does not pay the ~25 ms of loading it).
  const logger = lazyLogger(level, () => {
    const { pino } = createRequire(import.meta.url)('pino') as typeof import('pino');
    return pino({ level }, logFormat === 'json' ? pino.destination(2) : humanLogStream((text) => context.stderr(text)));
  });
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
    logFormat,
    setExitCode: (code) => {
      exitCode = code;
    },
  };
  const program = new Command('vbe')
    .description('vertex-batch-emulator: run Vertex AI batch jobs locally in Docker and judge them the way Vertex would.')
    .version(version)
    .option('--verbose', 'debug logging on stderr')
    .option('--log-format <format>', 'logs on stderr: human (default on a terminal) or json (pino lines; default otherwise)')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  const args = withoutGlobalFlags(argv);
  // The named command alone; none for --version alone; all of them for help or a name that is not one.
  const named = args.find((a) => !a.startsWith('-'));
  const versionOnly = !named && args.some((a) => a === '--version' || a === '-V') && !args.some((a) => a === '--help' || a === '-h');
  const wanted = named && Object.hasOwn(COMMANDS, named) ? [named] : versionOnly ? [] : Object.keys(COMMANDS);
  for (const make of await Promise.all(wanted.map((name) => COMMANDS[name]!()))) program.addCommand(make(context).exitOverride());
  try {
    await program.parseAsync(args, { from: 'user' });
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

/** Global flags are read before parsing and accepted anywhere on the line. */
function withoutGlobalFlags(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--verbose') continue;
    if (argv[i] === '--log-format') {
      i += 1;
      continue;
    }
    out.push(argv[i]!);
  }
  return out;
}

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

const LEVEL_VALUES = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;
type LevelName = keyof typeof LEVEL_VALUES;

/** A pino Logger that makes the real one (`make`) on the first call at an enabled level; calls below `level` cost nothing. */
function lazyLogger(level: LevelName, make: () => Logger): Logger {
  let real: Logger | undefined;
  const get = () => (real ??= make());
  const method = (name: LevelName) =>
    LEVEL_VALUES[name] < LEVEL_VALUES[level]
      ? () => undefined
      : (...args: unknown[]) => (get()[name] as (...a: unknown[]) => void)(...args);
  const lazy = {
    level,
    isLevelEnabled: (name: string) => name in LEVEL_VALUES && LEVEL_VALUES[name as LevelName] >= LEVEL_VALUES[level],
    child: (bindings: Record<string, unknown>) => lazyLogger(level, () => get().child(bindings)),
    ...Object.fromEntries(Object.keys(LEVEL_VALUES).map((name) => [name, method(name as LevelName)])),
  };
  return lazy as unknown as Logger;
}

/** pino lines rendered for a person: `vbe warn: message (error text)`. */
function humanLogStream(writeLine: (text: string) => void): { write(line: string): void } {
  return {
    write(line: string) {
      try {
        const entry = JSON.parse(line) as { level: number; msg?: string; err?: { message?: string }; phase?: string };
        const extra = [entry.phase ? `phase ${entry.phase}` : '', entry.err?.message ?? ''].filter(Boolean).join('; ');
        writeLine(`vbe ${LEVELS[entry.level] ?? entry.level}: ${entry.msg ?? ''}${extra ? ` (${extra})` : ''}`);
      } catch {
        process.stderr.write(line);
      }
    },
  };
}

main(process.argv.slice(2)).then(
  (code) => process.stdout.write('', () => process.exit(code)), // let a piped --json result drain first
  (error) => {
    process.stderr.write(`vbe: internal error: ${String(error)}\n`);
    process.exit(3);
  },
);
