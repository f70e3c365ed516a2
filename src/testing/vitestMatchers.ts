import type { BatchPredictionJobResource, RunJobResource } from '../report/jobResource.js';
import { formatFailedInstance } from '../report/formatBatchSummary.js';

type AnyJob = RunJobResource | BatchPredictionJobResource;

interface MatcherResult {
  pass: boolean;
  message: () => string;
}

function describeJob(job: AnyJob): string {
  const diagnoses = job.emulator.diagnoses.map((d) => `  ${d.severity} ${d.code}: ${d.message}`).join('\n');
  return `${job.state}${job.error ? ` (error ${job.error.code}: ${job.error.message})` : ''}${diagnoses ? `\n${diagnoses}` : ''}${failedExamples(job)}`;
}

/** A batch job's first failed instances, from vbe's record (.vbe/failed-instances.jsonl). */
function failedExamples(job: AnyJob): string {
  const f = job.emulator.contract === 'prediction-server' ? job.emulator.failedInstances : undefined;
  if (!f?.count) return '';
  return `\n  failed instances (${f.count}, all in ${f.file}):${f.examples.map((x) => `\n    ${formatFailedInstance(x)}`).join('')}`;
}

/**
 * Matchers for jobs in Vitest: `expect(job).toSucceed()`, `toFailWith(codeOrDiagnosis)`,
 * `toHavePredictions(n)`. Register them with `expect.extend(vbeMatchers)`, or import
 * 'vertex-batch-emulator/vitest' from a setup file, which does it.
 */
export const vbeMatchers = {
  toSucceed(job: AnyJob): MatcherResult {
    const pass = job.state === 'JOB_STATE_SUCCEEDED';
    return { pass, message: () => (pass ? `expected the job not to succeed` : `expected the job to succeed, but it is ${describeJob(job)}`) };
  },
  /** A number matches the job error's code; a string matches a diagnosis code (e.g. 'INPUT_NOT_STAGED'). */
  toFailWith(job: AnyJob, expected: number | string): MatcherResult {
    const failed = job.state === 'JOB_STATE_FAILED';
    const pass = failed && (typeof expected === 'number' ? job.error?.code === expected : job.emulator.diagnoses.some((d) => d.code === expected));
    return { pass, message: () => `expected the job ${pass ? 'not ' : ''}to fail with ${expected}; it is ${describeJob(job)}` };
  },
  /** Successful predictions of a BatchPredictionJob. */
  toHavePredictions(job: BatchPredictionJobResource, count: number): MatcherResult {
    const actual = Number(job.completionStats?.successfulCount ?? NaN);
    const pass = actual === count;
    return { pass, message: () => `expected ${count} successful predictions${pass ? ' not to be' : ''}, got ${actual} (failed ${job.completionStats?.failedCount}, incomplete ${job.completionStats?.incompleteCount})${failedExamples(job)}` };
  },
  /** Failed instances of a BatchPredictionJob (vbe's record); a string also needs an error message containing it. */
  toHaveFailedInstances(job: BatchPredictionJobResource, count: number, messagePart?: string): MatcherResult {
    const f = job.emulator.failedInstances;
    const actual = f?.count ?? 0;
    const messageOk = messagePart === undefined || (f?.examples ?? []).some((x) => x.error.message.includes(messagePart));
    const pass = actual === count && messageOk;
    return {
      pass,
      message: () => `expected ${count} failed instance(s)${messagePart !== undefined ? ` with an error containing "${messagePart}"` : ''}${pass ? ' not' : ''}, got ${actual}${failedExamples(job)}`,
    };
  },
};

export interface VbeMatchers<R = unknown> {
  toSucceed(): R;
  toFailWith(expected: number | string): R;
  toHavePredictions(count: number): R;
  toHaveFailedInstances(count: number, messagePart?: string): R;
}
