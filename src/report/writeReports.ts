import { appendFile, mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { usageError } from '../errors.js';
import type { DoctorReport } from '../doctor/runDoctor.js';
import type { Diagnosis } from '../verdict/jobState.js';
import { type BatchPredictionJobResource, type RunJobResource, writeJsonAtomic } from './jobResource.js';
import { formatFailedInstance } from './formatBatchSummary.js';

export type ReportFormat = 'junit' | 'json' | 'html' | 'markdown';
export interface ReportTarget {
  format: ReportFormat;
  file: string;
}

/** Parses `--report junit=<file>` / `json=<file>` / `html=<file>` / `markdown=<file>`. */
export function parseReportTargets(values: readonly string[] | undefined, cwd = process.cwd()): ReportTarget[] {
  return (values ?? []).map((value) => {
    const m = /^(junit|json|html|markdown)=(.+)$/.exec(value);
    if (!m) {
      throw usageError(
        'INVALID_REPORT',
        `--report: "${value}" is not junit=<file>, json=<file>, html=<file> or markdown=<file>.`,
        'Write --report junit=reports/vbe.xml, --report json=reports/vbe.json, --report html=reports/vbe.html or --report markdown=reports/vbe.md.',
      );
    }
    return { format: m[1] as ReportFormat, file: path.resolve(cwd, m[2]!) };
  });
}

interface TestCase {
  classname: string;
  name: string;
  seconds: number;
  failure?: { message: string; details: string };
  output?: string;
}

const xml = (text: string) => text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');
const diagnosisText = (ds: readonly Diagnosis[]) => ds.map((d) => `${d.severity} ${d.code}: ${d.message}${d.fix ? `\n  fix: ${d.fix}` : ''}${(d.evidence ?? []).map((e) => `\n  ${e}`).join('')}`).join('\n');

function jobCases(job: RunJobResource | BatchPredictionJobResource): TestCase[] {
  const command = job.emulator.contract === 'files' ? 'run' : 'batch-predict';
  const main: TestCase = { classname: `vbe.${command}`, name: job.displayName, seconds: job.emulator.durationMs / 1000, output: `state ${job.state}\nrecord ${job.emulator.recordFile}` };
  if (job.state !== 'JOB_STATE_SUCCEEDED') {
    main.failure = { message: job.error ? `${job.state}: ${job.error.message}` : job.state, details: diagnosisText(job.emulator.diagnoses) };
  }
  const cases = [main];
  if (job.emulator.contract === 'prediction-server') {
    for (const [kind, info] of Object.entries((job as BatchPredictionJobResource).emulator.failuresByKind)) {
      const d = job.emulator.diagnoses.find((x) => x.message.endsWith(`${info.count} instance(s) affected.`));
      cases.push({
        classname: `vbe.batch-predict.${job.displayName}`,
        name: `${d?.code ?? kind} (${info.count} instance(s))`,
        seconds: 0,
        failure: { message: `${info.count} instance(s) failed: ${info.example}`, details: `${d ? diagnosisText([d]) : info.example}${failedText(job as BatchPredictionJobResource)}` },
      });
    }
  }
  return cases;
}

/** The first failed instances (from vbe's record) under a failure's details. */
function failedText(job: BatchPredictionJobResource): string {
  const f = job.emulator.failedInstances;
  if (!f?.count) return '';
  return `\nfailed instances (${f.count}, all in ${f.file}):${f.examples.map((x) => `\n  ${formatFailedInstance(x)}`).join('')}`;
}

function doctorCases(report: DoctorReport): TestCase[] {
  return report.checks.map((c) => {
    const tc: TestCase = { classname: `vbe.doctor.${report.image}`, name: `${c.id}: ${c.title}`, seconds: 0, output: `${c.status}: ${c.summary}${(c.evidence ?? []).map((e) => `\n${e}`).join('')}` };
    if (c.status === 'fail') tc.failure = { message: c.summary, details: [...(c.evidence ?? []), ...(c.fix ? [`fix: ${c.fix}`] : [])].join('\n') };
    return tc;
  });
}

export function toJUnit(suite: string, cases: readonly TestCase[]): string {
  const failures = cases.filter((c) => c.failure).length;
  const time = cases.reduce((t, c) => t + c.seconds, 0);
  const body = cases
    .map((c) => {
      const inner = [
        c.failure ? `      <failure message="${xml(c.failure.message)}" type="${xml(c.failure.message.split(':')[0]!)}">${xml(c.failure.details)}</failure>` : '',
        c.output ? `      <system-out>${xml(c.output)}</system-out>` : '',
      ].filter(Boolean);
      return `    <testcase classname="${xml(c.classname)}" name="${xml(c.name)}" time="${c.seconds.toFixed(3)}">${inner.length ? `\n${inner.join('\n')}\n    ` : ''}</testcase>`;
    })
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="vbe" tests="${cases.length}" failures="${failures}" time="${time.toFixed(3)}">\n  <testsuite name="${xml(suite)}" tests="${cases.length}" failures="${failures}" time="${time.toFixed(3)}">\n${body}\n  </testsuite>\n</testsuites>\n`;
}

async function writeTextAtomic(file: string, text: string): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, text, 'utf8');
  await rename(temp, file);
}

/**
 * Writes each requested report (atomically): a JUnit XML test suite, the JSON result, the HTML
 * report (its charting library is loaded only here) or the Markdown summary. With
 * `stepSummaryFile` (GitHub's GITHUB_STEP_SUMMARY), the Markdown summary is appended there too;
 * failing to append is a warning (returned), never a failed job.
 */
export async function writeReports(
  targets: readonly ReportTarget[],
  result: RunJobResource | BatchPredictionJobResource | DoctorReport,
  options: { stepSummaryFile?: string } = {},
): Promise<string[]> {
  const warnings: string[] = [];
  for (const target of targets) {
    await mkdir(path.dirname(target.file), { recursive: true });
    if (target.format === 'json') {
      await writeJsonAtomic(target.file, result);
      continue;
    }
    if (target.format === 'html') {
      const { renderHtmlReport } = await import('./html/renderHtmlReport.js');
      await writeTextAtomic(target.file, renderHtmlReport(result));
      continue;
    }
    if (target.format === 'markdown') {
      const { markdownSummary } = await import('./markdownSummary.js');
      await writeTextAtomic(target.file, markdownSummary(result));
      continue;
    }
    const isDoctor = 'checks' in result;
    const suite = isDoctor ? `vbe doctor ${result.image}` : `vbe ${result.emulator.contract === 'files' ? 'run' : 'batch-predict'} ${result.displayName}`;
    await writeTextAtomic(target.file, toJUnit(suite, isDoctor ? doctorCases(result) : jobCases(result)));
  }
  if (options.stepSummaryFile) {
    const { markdownSummary } = await import('./markdownSummary.js');
    try {
      await appendFile(options.stepSummaryFile, `${markdownSummary(result)}\n`, 'utf8');
    } catch (error) {
      warnings.push(`Could not append the job summary to GITHUB_STEP_SUMMARY (${options.stepSummaryFile}): ${(error as Error).message}`);
    }
  }
  return warnings;
}

/** Where the Markdown summary is appended: GITHUB_STEP_SUMMARY when set, unless `--no-step-summary`. */
export function stepSummaryFile(env: NodeJS.ProcessEnv, enabled: boolean | undefined): string | undefined {
  const file = env.GITHUB_STEP_SUMMARY;
  return enabled !== false && file ? file : undefined;
}

/** The step-summary option of a command: GITHUB_STEP_SUMMARY unless `--no-step-summary`. */
export function withStepSummary(flags: { stepSummary?: boolean }, env: NodeJS.ProcessEnv = process.env): { stepSummaryFile?: string } {
  const file = stepSummaryFile(env, flags.stepSummary);
  return file ? { stepSummaryFile: file } : {};
}
