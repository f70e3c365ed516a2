import os from 'node:os';

export const LABELS = {
  managed: 'dev.vbe.managed',
  jobId: 'dev.vbe.job-id',
  pid: 'dev.vbe.pid',
  host: 'dev.vbe.host',
} as const;

/** Labels every resource of one job carries: prune and leak checks select on them. */
export function resourceLabels(jobId: string): Record<string, string> {
  return { [LABELS.managed]: 'true', [LABELS.jobId]: jobId, [LABELS.pid]: String(process.pid), [LABELS.host]: os.hostname() };
}
