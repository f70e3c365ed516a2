/** Vertex AI job states (google/cloud/aiplatform/v1/job_state.proto) the emulator produces. */
export type JobState =
  | 'JOB_STATE_QUEUED'
  | 'JOB_STATE_PENDING'
  | 'JOB_STATE_RUNNING'
  | 'JOB_STATE_SUCCEEDED'
  | 'JOB_STATE_FAILED'
  | 'JOB_STATE_CANCELLING'
  | 'JOB_STATE_CANCELLED'
  | 'JOB_STATE_PARTIALLY_SUCCEEDED';

/** google.rpc.Status as Vertex sets it on a FAILED or CANCELLED job. */
export interface JobError {
  code: number;
  message: string;
}

/** google.rpc.Code values used in job errors. */
export const RpcCode = {
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  FAILED_PRECONDITION: 9,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

export type Severity = 'error' | 'warning' | 'info';

/** A finding a human can act on, beside Vertex's own message. `code` is stable for scripts. */
export interface Diagnosis {
  code: string;
  severity: Severity;
  message: string;
  fix?: string;
  evidence?: string[];
}

export function isTerminalFailure(state: JobState): boolean {
  return state === 'JOB_STATE_FAILED' || state === 'JOB_STATE_CANCELLED';
}
