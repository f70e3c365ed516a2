import { z } from 'zod';
import { usageError } from '../errors.js';

/**
 * Vertex AI REST field names (google/cloud/aiplatform/v1 *.proto, JSON form). Objects are strict so
 * that a typo is an error naming its path; Vertex fields the emulator does not use are accepted
 * and listed as ignored.
 */
const ignored = z.unknown().optional();

export const envVarSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a valid environment variable name'),
  value: z.string().default(''),
});

const int64 = z.union([z.number().int(), z.string().regex(/^\d+$/, 'must be a whole number')]).transform(Number);

/** model.proto `Probe`: one action, then timing (defaults applied in src/jobs/probes.ts). */
export const probeSchema = z.strictObject({
  exec: z.strictObject({ command: z.array(z.string()).min(1) }).optional(),
  httpGet: z
    .strictObject({
      path: z.string().optional(),
      port: z.number().int().min(1).max(65535).optional(),
      host: z.string().optional(),
      scheme: z.string().optional(),
      httpHeaders: z.array(z.strictObject({ name: z.string().min(1), value: z.string().default('') })).optional(),
    })
    .optional(),
  grpc: z.strictObject({ port: z.number().int().optional(), service: z.string().optional() }).optional(),
  tcpSocket: z.strictObject({ port: z.number().int().optional(), host: z.string().optional() }).optional(),
  periodSeconds: z.number().int().min(1).optional(),
  timeoutSeconds: z.number().int().min(1).optional(),
  failureThreshold: z.number().int().min(1).optional(),
  successThreshold: z.number().int().min(1).optional(),
  initialDelaySeconds: z.number().int().min(0).optional(),
});
export type ProbeSpec = z.infer<typeof probeSchema>;

export const containerSpecSchema = z.strictObject({
  imageUri: z.string().min(1).optional(),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  env: z.array(envVarSchema).optional(),
  ports: z.array(z.strictObject({ containerPort: z.number().int().min(1).max(65535) })).optional(),
  predictRoute: z.string().optional(),
  healthRoute: z.string().optional(),
  sharedMemorySizeMb: int64.pipe(z.number().int().min(1, 'must be at least 1 (megabytes)')).optional(),
  grpcPorts: ignored,
  invokeRoutePrefix: ignored,
  /** Accepted (a Duration such as "1800s"); a batch job's start-up limit is --startup-timeout. */
  deploymentTimeout: z.union([z.string().regex(/^\d+(\.\d+)?s$/, 'must be a Duration such as "1800s"'), z.number().positive()]).optional(),
  startupProbe: probeSchema.optional(),
  healthProbe: probeSchema.optional(),
  livenessProbe: ignored,
});

export const machineSpecSchema = z.strictObject({
  machineType: z.string().min(1),
  acceleratorType: z.string().optional(),
  acceleratorCount: z.number().int().min(0).optional(),
  tpuTopology: ignored,
  reservationAffinity: ignored,
});

const gcsSourceSchema = z.strictObject({ uris: z.array(z.string().min(1)).min(1) });
const gcsDestinationSchema = z.strictObject({ outputUriPrefix: z.string().min(1) });
const durationSchema = z.union([z.string().min(1), z.number().positive()]);

/**
 * Output-only fields of BatchPredictionJob and CustomJob (aiplatform v1 and v1beta1 protos): a job
 * resource exactly as the API or `gcloud ai ... describe --format=json` returns it is a valid spec.
 */
export const OUTPUT_ONLY_FIELD_NAMES = [
  'name', 'state', 'error', 'createTime', 'startTime', 'endTime', 'updateTime', 'outputInfo', 'partialFailures',
  'resourcesConsumed', 'completionStats', 'modelVersionId', 'modelMonitoringStatsAnomalies', 'modelMonitoringStatus',
  'webAccessUris', 'satisfiesPzs', 'satisfiesPzi',
] as const;

const OUTPUT_ONLY_FIELDS = Object.fromEntries(OUTPUT_ONLY_FIELD_NAMES.map((field) => [field, ignored])) as Record<(typeof OUTPUT_ONLY_FIELD_NAMES)[number], typeof ignored>;

export const runJobSpecFileSchema = z.strictObject({
  displayName: z.string().min(1).max(128).optional(),
  containerSpec: containerSpecSchema.optional(),
  unmanagedContainerModel: z
    .strictObject({ artifactUri: z.string().optional(), containerSpec: containerSpecSchema, predictSchemata: ignored })
    .optional(),
  model: ignored,
  inputConfig: z
    .strictObject({ instancesFormat: z.string().optional(), gcsSource: gcsSourceSchema.optional(), bigquerySource: ignored, vertexMultimodalDatasetSource: ignored })
    .optional(),
  outputConfig: z
    .strictObject({
      predictionsFormat: z.string().optional(),
      gcsDestination: gcsDestinationSchema.optional(),
      bigqueryDestination: ignored,
      vertexMultimodalDatasetDestination: ignored,
    })
    .optional(),
  dedicatedResources: z
    .strictObject({
      machineSpec: machineSpecSchema,
      startingReplicaCount: z.number().int().min(1).optional(),
      maxReplicaCount: z.number().int().min(1).optional(),
      spot: ignored,
    })
    .optional(),
  /** CustomJob form: people run batch inference as a CustomJob; its first worker pool is the job. */
  jobSpec: z
    .strictObject({
      workerPoolSpecs: z
        .array(
          z.strictObject({
            containerSpec: containerSpecSchema.optional(),
            machineSpec: machineSpecSchema.optional(),
            replicaCount: z.union([z.number().int(), z.string()]).optional(),
            diskSpec: z
              .strictObject({
                bootDiskSizeGb: z.number().int().min(1, 'must be a positive number of GB').optional(),
                bootDiskType: z.enum(['pd-ssd', 'pd-standard', 'hyperdisk-balanced']).optional(),
              })
              .optional(),
            nfsMounts: ignored,
            lustreMounts: ignored,
            pythonPackageSpec: ignored,
          }),
        )
        .min(1),
      scheduling: z.strictObject({ timeout: durationSchema.optional(), restartJobOnWorkerRestart: ignored, disableRetries: ignored, strategy: ignored, maxWaitDuration: ignored }).optional(),
      baseOutputDirectory: gcsDestinationSchema.optional(),
      serviceAccount: ignored,
      network: ignored,
      enableWebAccess: ignored,
      tensorboard: ignored,
      experiment: ignored,
      reservedIpRanges: ignored,
      persistentResourceId: ignored,
      pscInterfaceConfig: ignored,
      protectedArtifactLocationId: ignored,
      enableDashboardAccess: ignored,
      experimentRun: ignored,
      models: ignored,
    })
    .optional(),
  scheduling: z.strictObject({ timeout: durationSchema.optional() }).optional(),
  instanceConfig: ignored,
  modelParameters: ignored,
  manualBatchTuningParameters: ignored,
  generateExplanation: ignored,
  explanationSpec: ignored,
  serviceAccount: ignored,
  labels: ignored,
  encryptionSpec: ignored,
  disableContainerLogging: ignored,
  modelMonitoringConfig: ignored,
  ...OUTPUT_ONLY_FIELDS,
});

export type RunJobSpecFile = z.infer<typeof runJobSpecFileSchema>;
export type ContainerSpec = z.infer<typeof containerSpecSchema>;

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out || '(top level)';
}

/** Validates `data` against `schema`; on failure the error names every bad field path in `source`. */
export function parseWithSchema<T extends z.ZodType>(schema: T, data: unknown, source: string): z.infer<T> {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return `${formatPath([...issue.path, ...(issue.keys.length === 1 ? issue.keys : [])])}: unknown field${issue.keys.length > 1 ? `s ${issue.keys.join(', ')}` : ''}`;
    }
    return `${formatPath(issue.path)}: ${issue.message}`;
  });
  throw usageError(
    'SPEC_INVALID',
    `${source} is not a valid job spec:\n  - ${problems.join('\n  - ')}`,
    'Use Vertex AI field names (displayName, inputConfig.gcsSource.uris, outputConfig.gcsDestination.outputUriPrefix, dedicatedResources.machineSpec, containerSpec).',
  );
}

export { INSTANCES_FORMATS, type InstancesFormat } from './instancesFormats.js';

export const instanceConfigSchema = z.strictObject({
  instanceType: z.enum(['object', 'array']).optional(),
  keyField: z.string().min(1).optional(),
  includedFields: z.array(z.string().min(1)).optional(),
  excludedFields: z.array(z.string().min(1)).optional(),
});
export type InstanceConfig = z.infer<typeof instanceConfigSchema>;

/** A BatchPredictionJob REST body (the same file a user sends to the Vertex API). */
export const batchPredictionJobSchema = runJobSpecFileSchema.extend({
  inputConfig: z
    .strictObject({ instancesFormat: z.string().optional(), gcsSource: gcsSourceSchema.optional(), bigquerySource: ignored, vertexMultimodalDatasetSource: ignored })
    .optional(),
  instanceConfig: instanceConfigSchema.optional(),
  modelParameters: z.unknown().optional(),
  manualBatchTuningParameters: z.strictObject({ batchSize: z.number().int().min(1).max(100_000).optional() }).optional(),
});
export type BatchPredictionJobFile = z.infer<typeof batchPredictionJobSchema>;
