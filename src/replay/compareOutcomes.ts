import type { ErrorGroup } from './errorStats.js';

/** One side of a comparison: what the cloud job or the local run ended with. */
export interface JobOutcome {
  state: string;
  error?: { code: number; message: string };
  /** int64 counts as REST JSON gives them (strings). */
  completionStats?: { successfulCount: string; failedCount: string; incompleteCount: string };
  errorGroups: ErrorGroup[];
}

export interface OutcomeComparison {
  verdict: 'reproduced' | 'not reproduced';
  /** Why, and every difference between the two outcomes, one line each. */
  differences: string[];
  cloud: JobOutcome;
  local: JobOutcome;
}

const count = (stats: JobOutcome['completionStats'], field: 'successfulCount' | 'failedCount' | 'incompleteCount') => Number(stats?.[field] ?? 0);

/** Instances that did not succeed: failed, plus incomplete when it is known (-1 means unknown). */
function unsuccessful(stats: JobOutcome['completionStats']): number {
  return count(stats, 'failedCount') + Math.max(0, count(stats, 'incompleteCount'));
}

/**
 * Whether the local run shows the cloud job's failure. The cloud job failed as a whole (FAILED and
 * no instance failures counted): reproduced when the local job FAILED. Instances failed in the
 * cloud: reproduced when instances failed (or the job FAILED) locally. The cloud job succeeded
 * without failures: reproduced when the local one did too. Differences are listed either way.
 */
export function compareOutcomes(cloud: JobOutcome, local: JobOutcome): OutcomeComparison {
  const differences: string[] = [];
  const cloudInstanceFailures = unsuccessful(cloud.completionStats);
  const localInstanceFailures = unsuccessful(local.completionStats);
  const localFailed = local.state === 'JOB_STATE_FAILED';
  let reproduced: boolean;
  if (cloudInstanceFailures > 0) {
    reproduced = localInstanceFailures > 0 || localFailed;
    if (!reproduced) differences.push(`instances: ${cloudInstanceFailures} failed in the cloud, none failed here`);
  } else if (cloud.state === 'JOB_STATE_FAILED' || cloud.state === 'JOB_STATE_CANCELLED') {
    reproduced = local.state === cloud.state;
    if (!reproduced) differences.push(`the cloud job ended ${cloud.state}; here it ended ${local.state}`);
  } else {
    reproduced = local.state === cloud.state && localInstanceFailures === 0;
    if (!reproduced) differences.push(`the cloud job ended ${cloud.state} without failures; here it ended ${local.state}${localInstanceFailures ? ` with ${localInstanceFailures} failed instance(s)` : ''}`);
  }
  if (reproduced && local.state !== cloud.state) differences.push(`state: cloud ${cloud.state}, local ${local.state}`);
  if (cloud.error?.code !== local.error?.code) differences.push(`error code: cloud ${cloud.error?.code ?? '-'}, local ${local.error?.code ?? '-'}`);
  else if (cloud.error && local.error && cloud.error.message !== local.error.message) differences.push('error message: differs (both shown)');
  if (cloud.completionStats && local.completionStats) {
    for (const field of ['successfulCount', 'failedCount', 'incompleteCount'] as const) {
      if (cloud.completionStats[field] !== local.completionStats[field]) differences.push(`${field}: cloud ${cloud.completionStats[field]}, local ${local.completionStats[field]}`);
    }
  }
  return { verdict: reproduced ? 'reproduced' : 'not reproduced', differences, cloud, local };
}

function outcomeLines(label: string, o: JobOutcome): string[] {
  const lines = [`  ${label} ${o.state}`];
  if (o.error) lines.push(`           error ${o.error.code}: ${o.error.message}`);
  if (o.completionStats) {
    const c = o.completionStats;
    lines.push(`           instances: ${c.successfulCount} succeeded, ${c.failedCount} failed, ${c.incompleteCount} incomplete`);
  }
  for (const g of o.errorGroups.slice(0, 5)) lines.push(`           ${g.count} x ${g.message}`);
  if (o.errorGroups.length > 5) lines.push(`           ... ${o.errorGroups.length - 5} more error group(s)`);
  return lines;
}

/** The cloud and local outcomes one above the other, then the verdict and the differences. */
export function formatComparison(c: OutcomeComparison, title = 'replay'): string {
  const lines = ['', `${title}: ${c.verdict}`, ...outcomeLines('cloud:', c.cloud), ...outcomeLines('local:', c.local)];
  for (const d of c.differences) lines.push(`  ~ ${d}`);
  return lines.join('\n');
}
