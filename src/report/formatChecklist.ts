import type { DoctorReport } from '../doctor/runDoctor.js';

const marks = { pass: '✓', warn: '!', fail: '✗', skip: '-' } as const;

/** The doctor's checklist for a terminal (stderr). */
export function formatChecklist(report: DoctorReport): string {
  const lines = [`vbe doctor ${report.image}${report.platform ? ` (${report.platform})` : ''}`];
  const width = Math.max(...report.checks.map((c) => c.id.length));
  for (const c of report.checks) {
    lines.push(`  ${marks[c.status]} ${c.id.padEnd(width)}  ${c.summary}`);
    if (c.status !== 'pass') for (const e of c.evidence ?? []) lines.push(`      ${e}`);
    if (c.fix && c.status !== 'pass') lines.push(`      fix: ${c.fix}`);
  }
  const count = (s: string) => report.checks.filter((c) => c.status === s).length;
  lines.push(`${report.ok ? 'OK' : 'PROBLEMS FOUND'}: ${count('pass')} passed, ${count('warn')} warning(s), ${count('fail')} failed, ${count('skip')} skipped`);
  return lines.join('\n');
}
