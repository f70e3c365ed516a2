import type { BatchPredictSpec } from '../spec/batchPredictSpec.js';
import type { EnvVar } from '../spec/expandVertexReferences.js';
import type { ServerRoutes } from './phases/validateBatchPredict.js';

/** The project number Vertex's variables name (a placeholder: a local job belongs to no project). */
const PROJECT_NUMBER = '123456789012';

/** The variables Vertex sets for a model server (custom container requirements), before the user's env entries. */
export function serverEnvironment(spec: BatchPredictSpec, routes: ServerRoutes, storageUri: string): EnvVar[] {
  const accel = spec.base.machine.accelerator;
  return [
    ...(accel ? [{ name: 'AIP_ACCELERATOR_TYPE', value: accel.type }] : []),
    { name: 'AIP_DEPLOYED_MODEL_ID', value: routes.deployedModelId },
    { name: 'AIP_ENDPOINT_ID', value: routes.endpointId },
    { name: 'AIP_FRAMEWORK', value: 'CUSTOM_CONTAINER' },
    { name: 'AIP_HEALTH_ROUTE', value: routes.health },
    { name: 'AIP_HTTP_PORT', value: String(spec.port) },
    { name: 'AIP_MACHINE_TYPE', value: spec.base.machine.name },
    { name: 'AIP_MODE', value: 'PREDICTION' },
    { name: 'AIP_MODE_VERSION', value: '1.0.0' },
    { name: 'AIP_MODEL_NAME', value: routes.endpointId },
    { name: 'AIP_PREDICT_ROUTE', value: routes.predict },
    { name: 'AIP_PROJECT_NUMBER', value: PROJECT_NUMBER },
    { name: 'AIP_STORAGE_URI', value: storageUri },
    { name: 'AIP_VERSION_NAME', value: routes.deployedModelId },
  ];
}
