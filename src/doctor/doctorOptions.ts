import type { ChartDataRecord } from '../report/chartData.js';
import type { PhaseTiming } from '../report/jobResource.js';
import type { PullPolicy } from '../spec/runJobSpec.js';
import type { Contract, DoctorCheck } from './doctorCheck.js';

export interface DoctorOptions {
  image: string;
  contract?: Contract | 'auto';
  port?: number;
  healthRoute?: string;
  predictRoute?: string;
  /** A sample input: instances (jsonl) for a server, an input file for the file contract. */
  sample?: string;
  machineType?: string;
  args?: string[];
  env?: string[];
  pull?: PullPolicy;
  startupTimeout?: string;
  timeout?: string;
  /** Only the checks that do not run the container. */
  staticOnly?: boolean;
  /** The model artifact (a directory or gs:// URI): AIP_STORAGE_URI for a server, AIP_MODEL_DIR for a file job. */
  artifactUri?: string;
  /** Where gs:// paths live locally (default ./gcs). */
  gcsRoot?: string;
  cwd?: string;
}

export interface DoctorReport {
  image: string;
  platform?: string;
  /** `sure: false`: nothing settled the guess, so with --contract auto both contracts were checked. */
  contract?: { guess: Contract; reasons: string[]; used: Contract; sure: boolean };
  checks: DoctorCheck[];
  /** True when no check failed. */
  ok: boolean;
  /** The image's largest layers (at most 10), largest first: the report draws them. */
  layers?: Array<{ sizeBytes: number; createdBy: string }>;
  /** The live run's limits and engine stats over time, for the report's charts. */
  live?: { memoryLimitBytes: number; cpus: number; charts?: ChartDataRecord };
  /** The doctor's own phases (validate, connect, image, scan, static, live), timed. */
  phases?: PhaseTiming[];
}
