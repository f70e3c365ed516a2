import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Command } from 'commander';
import { usageError } from '../errors.js';
import type { ReportSubject } from '../report/markdownSummary.js';
import { type ReportTarget, withStepSummary, writeReports } from '../report/writeReports.js';
import type { CliContext } from './cliContext.js';

/** Reads a job record (`job.json`, `--report json=`) or a doctor result; anything else is a usage error naming the file. */
export async function readReportSubject(file: string): Promise<ReportSubject> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw usageError('RECORD_UNREADABLE', `${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}).`, 'Give the job.json in <output>/.vbe/ (or a --report json= file).');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw usageError('RECORD_INVALID', `${file}: not JSON (${(error as Error).message}).`, 'Give the job.json vbe wrote in <output>/.vbe/, unchanged.');
  }
  const v = value as { emulator?: { contract?: unknown; phases?: unknown; diagnoses?: unknown }; checks?: unknown; state?: unknown; image?: unknown };
  const isJob = typeof v?.state === 'string' && (v.emulator?.contract === 'files' || v.emulator?.contract === 'prediction-server') && Array.isArray(v.emulator.phases) && Array.isArray(v.emulator.diagnoses);
  const isDoctor = Array.isArray(v?.checks) && typeof v?.image === 'string';
  if (!isJob && !isDoctor) {
    throw usageError(
      'RECORD_INVALID',
      `${file}: not a vbe job record (needs state, emulator.contract, emulator.phases, emulator.diagnoses) nor a vbe doctor result (image, checks).`,
      'Give the job.json in <output>/.vbe/ of a run or batch-predict, or the --report json= file of vbe doctor.',
    );
  }
  return value as ReportSubject;
}

export function reportCommand(context: CliContext): Command {
  return new Command('report')
    .description('Render the HTML report or the Markdown summary of a job record (job.json) or a doctor result, after the fact.')
    .argument('<record>', 'the job.json in <output>/.vbe/ (or a --report json= file)')
    .option('--html <file>', 'write the self-contained HTML report (charts as static SVG) here')
    .option('--markdown <file>', 'write the Markdown summary here')
    .option('--no-step-summary', 'do not append the Markdown summary to GITHUB_STEP_SUMMARY (appended by default when it is set)')
    .action(async (record: string, flags: { html?: string; markdown?: string; stepSummary?: boolean }) => {
      const targets: ReportTarget[] = [];
      if (flags.html) targets.push({ format: 'html', file: path.resolve(flags.html) });
      if (flags.markdown) targets.push({ format: 'markdown', file: path.resolve(flags.markdown) });
      const summary = withStepSummary(flags);
      if (!targets.length && !summary.stepSummaryFile) throw usageError('NO_REPORT', 'report: nothing to write.', 'Pass --html <file> and/or --markdown <file>.');
      const subject = await readReportSubject(path.resolve(record));
      for (const warning of await writeReports(targets, subject, summary)) context.stderr(`vbe warn: ${warning}`);
      for (const t of targets) context.stderr(`› wrote ${t.format === 'html' ? 'the HTML report' : 'the Markdown summary'} to ${t.file}`);
    });
}
