import { usageError } from '../errors.js';
import { OUTPUT_ONLY_FIELD_NAMES } from '../spec/vertexSchemas.js';
import type { JobOutcome } from './compareOutcomes.js';

/** A job resource as the Vertex API (or `gcloud ai ... describe --format=json`) returns it. */
export type VertexResource = Record<string, unknown>;
export type JobKind = 'batchPredictionJob' | 'customJob';

/** `projects/P/locations/L/batchPredictionJobs/ID` or `.../customJobs/ID`. */
export const JOB_NAME = /^projects\/([^/]+)\/locations\/([^/]+)\/(batchPredictionJobs|customJobs)\/([^/]+)$/;
export const MODEL_NAME = /^projects\/([^/]+)\/locations\/([^/]+)\/models\/([^/@]+)(@[^/]+)?$/;

export function jobKind(resource: VertexResource, source: string): JobKind {
  const name = typeof resource.name === 'string' ? resource.name : '';
  if (resource.jobSpec !== undefined || /\/customJobs\//.test(name)) return 'customJob';
  if (resource.inputConfig !== undefined || resource.model !== undefined || resource.unmanagedContainerModel !== undefined || /\/batchPredictionJobs\//.test(name)) return 'batchPredictionJob';
  throw usageError('NOT_A_JOB_RESOURCE', `${source}: neither a BatchPredictionJob (inputConfig, model) nor a CustomJob (jobSpec).`, 'Give the JSON of `gcloud ai batch-prediction-jobs describe ID --format=json` or `gcloud ai custom-jobs describe ID --format=json`.');
}

/** The job's id: the last part of its resource name. */
export function jobIdOf(resource: VertexResource): string | undefined {
  const name = typeof resource.name === 'string' ? resource.name : '';
  const id = name.split('/').pop();
  return id && /^[A-Za-z0-9_.-]+$/.test(id) ? id : undefined;
}

/** What the resource says the cloud job ended with (error groups are read from its files separately). */
export function cloudOutcome(resource: VertexResource): JobOutcome {
  const outcome: JobOutcome = { state: typeof resource.state === 'string' ? resource.state : 'JOB_STATE_UNSPECIFIED', errorGroups: [] };
  const error = resource.error as { code?: unknown; message?: unknown } | undefined;
  if (error && (error.code !== undefined || error.message !== undefined)) outcome.error = { code: Number(error.code ?? 0), message: String(error.message ?? '') };
  const stats = resource.completionStats as Record<string, unknown> | undefined;
  if (stats) {
    outcome.completionStats = {
      successfulCount: String(stats.successfulCount ?? '0'),
      failedCount: String(stats.failedCount ?? '0'),
      incompleteCount: String(stats.incompleteCount ?? '0'),
    };
  }
  return outcome;
}

export function gcsOutputDirectory(resource: VertexResource): string | undefined {
  const info = resource.outputInfo as { gcsOutputDirectory?: unknown } | undefined;
  return typeof info?.gcsOutputDirectory === 'string' && info.gcsOutputDirectory ? info.gcsOutputDirectory : undefined;
}

/** The resource as a spec the local commands take: output-only fields removed, the model's container inlined. */
export function toLocalSpec(resource: VertexResource, model: { containerSpec: unknown; artifactUri?: string } | undefined): VertexResource {
  const spec: VertexResource = { ...resource };
  for (const field of OUTPUT_ONLY_FIELD_NAMES) delete spec[field];
  if (model) {
    delete spec.model;
    spec.unmanagedContainerModel = { containerSpec: model.containerSpec, ...(model.artifactUri ? { artifactUri: model.artifactUri } : {}) };
  }
  return spec;
}

/** A Model resource (`gcloud ai models describe --format=json`): what a BatchPredictionJob needs of it. */
export interface ModelContainer {
  name?: string;
  displayName?: string;
  containerSpec: Record<string, unknown>;
  artifactUri?: string;
}

export function modelContainer(model: VertexResource, source: string): ModelContainer {
  const containerSpec = model.containerSpec;
  if (!containerSpec || typeof containerSpec !== 'object') {
    throw usageError('MODEL_WITHOUT_CONTAINER', `${source}: the Model has no containerSpec (it is not a custom-container model).`, 'Give --image (and the routes with a spec) for a model without a custom container.');
  }
  const out: ModelContainer = { containerSpec: containerSpec as Record<string, unknown> };
  if (typeof model.name === 'string') out.name = model.name;
  if (typeof model.displayName === 'string') out.displayName = model.displayName;
  if (typeof model.artifactUri === 'string' && model.artifactUri) out.artifactUri = model.artifactUri;
  return out;
}
