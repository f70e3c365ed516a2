export { runJob, RECORD_DIR_NAME, type RunJobHooks } from './jobs/runJob.js';
export { pruneResources, type PruneOptions, type PruneResult } from './jobs/prune.js';
export { ContainerEngine, LABELS } from './runtime/containerEngine.js';
export type { RunJobOptions, PullPolicy } from './spec/runJobSpec.js';
export type { RunJobResource } from './report/jobResource.js';
export type { Diagnosis, JobState, JobError } from './verdict/jobState.js';
export { VbeError } from './errors.js';
export { machineTypes, getMachineType } from './spec/machineTypes.js';
