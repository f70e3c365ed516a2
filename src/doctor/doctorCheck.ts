export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

/** One line of the checklist. `id` is stable for scripts (`--json`). */
export interface DoctorCheck {
  id: string;
  title: string;
  status: CheckStatus;
  summary: string;
  evidence?: string[];
  fix?: string;
}

export type Contract = 'files' | 'server';
