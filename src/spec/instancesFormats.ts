/** BatchPredictionJob inputConfig.instancesFormat values (batch_prediction_job.proto). */
export const INSTANCES_FORMATS = ['jsonl', 'csv', 'file-list', 'tf-record', 'tf-record-gzip', 'bigquery'] as const;
export type InstancesFormat = (typeof INSTANCES_FORMATS)[number];
