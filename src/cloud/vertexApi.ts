import { createRequire } from 'node:module';
import { emulatorError, usageError, VbeError } from '../errors.js';

/**
 * The few Vertex AI API calls vbe makes (get and create BatchPredictionJob / CustomJob, get Model),
 * through Google's Node client @google-cloud/aiplatform (6.x: 7.x needs Node 22) in its REST
 * transport, with Application Default Credentials. Loaded only by `vbe replay <name>` and
 * `vbe submit`: the client and its protos are large. Resources go in and come out as the REST
 * JSON the API documents (int64 as strings, timestamps as RFC 3339, enums as names).
 */
export interface VertexApi {
  endpoint: string;
  getBatchPredictionJob(name: string): Promise<Record<string, unknown>>;
  getCustomJob(name: string): Promise<Record<string, unknown>>;
  getModel(name: string): Promise<Record<string, unknown>>;
  createBatchPredictionJob(parent: string, job: Record<string, unknown>): Promise<Record<string, unknown>>;
  createCustomJob(parent: string, job: Record<string, unknown>): Promise<Record<string, unknown>>;
}

/** Where the API is: `--api-endpoint`, else VBE_VERTEX_API_ENDPOINT, else `<region>-aiplatform.googleapis.com`. */
export function vertexEndpoint(region: string, override?: string): string {
  return override || process.env.VBE_VERTEX_API_ENDPOINT || `https://${region}-aiplatform.googleapis.com`;
}

/** gRPC status codes the REST transport maps HTTP answers to. */
const PERMISSION_DENIED = 7;
const NOT_FOUND = 5;
const UNAUTHENTICATED = 16;
const INVALID_ARGUMENT = 3;
const FAILED_PRECONDITION = 9;
const ALREADY_EXISTS = 6;

const LOGIN_FIX = 'Run `gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file), then try again.';

/** An API failure as a VbeError: the caller's problem (credentials, rights, a wrong name) exits 2; the service's exits 3. */
export function vertexApiError(error: unknown, what: string, endpoint: string): VbeError {
  if (error instanceof VbeError) return error;
  const message = (error as Error)?.message ?? String(error);
  const code = (error as { code?: unknown })?.code;
  if (/default credentials|could not load the default|does not exist.*credentials|GOOGLE_APPLICATION_CREDENTIALS|The file at .* does not exist|invalid_grant|reauth/i.test(message)) {
    return usageError('VERTEX_CREDENTIALS_MISSING', `${what}: no usable Google Cloud credentials (${firstLine(message)}).`, LOGIN_FIX);
  }
  if (code === PERMISSION_DENIED || code === UNAUTHENTICATED) {
    return usageError('VERTEX_ACCESS_DENIED', `${what}: the Vertex AI API at ${endpoint} refused access (${firstLine(message)}).`, `Check that your account has the Vertex AI User role (roles/aiplatform.user) in that project and that the Vertex AI API is enabled there. ${LOGIN_FIX}`);
  }
  if (code === NOT_FOUND) {
    return usageError('VERTEX_NOT_FOUND', `${what}: not found at ${endpoint} (${firstLine(message)}).`, 'Check the project, the region (--region) and the id: `gcloud ai batch-prediction-jobs list --region REGION` / `gcloud ai custom-jobs list --region REGION`.');
  }
  if (code === INVALID_ARGUMENT || code === FAILED_PRECONDITION || code === ALREADY_EXISTS) {
    return usageError('VERTEX_REQUEST_REFUSED', `${what}: the Vertex AI API refused the request (${firstLine(message)}).`, 'Fix the field it names and submit again; `--dry-run` prints the request body.');
  }
  return emulatorError('VERTEX_UNAVAILABLE', `${what}: the Vertex AI API at ${endpoint} did not answer usefully (${firstLine(message)}).`, 'Try again later; check https://status.cloud.google.com and your network or proxy.', error);
}

function firstLine(text: string): string {
  return text.split('\n')[0]!.slice(0, 300);
}

interface Converters {
  toJson(message: unknown): Record<string, unknown>;
  fromJson(typeName: string, json: Record<string, unknown>): unknown;
}

/** Opens the clients for `region` (their location is in the resource names given to each call). */
export async function openVertexApi(region: string, endpointOverride?: string): Promise<VertexApi> {
  const endpoint = vertexEndpoint(region, endpointOverride);
  let url: URL;
  try {
    url = new URL(endpoint.includes('://') ? endpoint : `https://${endpoint}`);
  } catch {
    throw usageError('INVALID_API_ENDPOINT', `--api-endpoint: "${endpoint}" is not a URL.`, 'Give https://REGION-aiplatform.googleapis.com or http://127.0.0.1:PORT for a stand-in.');
  }
  const require = createRequire(import.meta.url);
  const aiplatform = require('@google-cloud/aiplatform') as typeof import('@google-cloud/aiplatform');
  const options = {
    fallback: true as const,
    apiEndpoint: url.hostname,
    port: Number(url.port || (url.protocol === 'http:' ? 80 : 443)),
    protocol: url.protocol.replace(':', ''),
  };
  const jobs = new aiplatform.v1.JobServiceClient(options);
  const models = new aiplatform.v1.ModelServiceClient(options);
  const convert = converters(require);
  const call = async <T>(what: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      throw vertexApiError(error, what, endpoint);
    }
  };
  const V1 = 'google.cloud.aiplatform.v1';
  return {
    endpoint,
    getBatchPredictionJob: (name) => call(`getting ${name}`, async () => convert.toJson((await jobs.getBatchPredictionJob({ name }))[0])),
    getCustomJob: (name) => call(`getting ${name}`, async () => convert.toJson((await jobs.getCustomJob({ name }))[0])),
    getModel: (name) => call(`getting the model ${name}`, async () => convert.toJson((await models.getModel({ name }))[0])),
    createBatchPredictionJob: (parent, job) =>
      call(`creating a BatchPredictionJob in ${parent}`, async () => {
        const batchPredictionJob = convert.fromJson(`${V1}.BatchPredictionJob`, job) as never;
        return convert.toJson((await jobs.createBatchPredictionJob({ parent, batchPredictionJob }))[0]);
      }),
    createCustomJob: (parent, job) =>
      call(`creating a CustomJob in ${parent}`, async () => {
        const customJob = convert.fromJson(`${V1}.CustomJob`, job) as never;
        return convert.toJson((await jobs.createCustomJob({ parent, customJob }))[0]);
      }),
  };
}

/** REST JSON <-> the client's protobuf messages (google.protobuf.Value, Duration, Timestamp, int64). */
function converters(require: NodeJS.Require): Converters {
  const serializer = require('proto3-json-serializer') as typeof import('proto3-json-serializer');
  const protobuf = require('protobufjs') as typeof import('protobufjs');
  const root = protobuf.Root.fromJSON(require('@google-cloud/aiplatform/build/protos/protos.json') as protobuf.INamespace);
  return {
    toJson: (message) => serializer.toProto3JSON(message as never) as Record<string, unknown>,
    fromJson: (typeName, json) => serializer.fromProto3JSON(root.lookupType(typeName), json as never),
  };
}

/** `projects/P/locations/L` of a resource name. */
export function parentOf(name: string): { project: string; location: string } | undefined {
  const match = /^projects\/([^/]+)\/locations\/([^/]+)\//.exec(name);
  return match ? { project: match[1]!, location: match[2]! } : undefined;
}
