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

const HTTP_TO_RPC: Record<number, number> = { 400: INVALID_ARGUMENT, 401: UNAUTHENTICATED, 403: PERMISSION_DENIED, 404: NOT_FOUND, 409: ALREADY_EXISTS };

const LOGIN_FIX = 'Run `gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file), then try again.';

/** An API failure as a VbeError: the caller's problem (credentials, rights, a wrong name) exits 2; the service's exits 3. */
export function vertexApiError(error: unknown, what: string, endpoint: string): VbeError {
  if (error instanceof VbeError) return error;
  const message = (error as Error)?.message ?? String(error);
  const e = error as { code?: unknown; status?: unknown; response?: { status?: unknown } };
  // The REST transport throws either a GoogleError (gRPC code) or the HTTP client's error (HTTP status).
  const httpStatus = Number(e?.status ?? e?.response?.status ?? NaN);
  const code = Number.isInteger(httpStatus) && httpStatus >= 100 ? HTTP_TO_RPC[httpStatus] : typeof e?.code === 'number' ? e.code : undefined;
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

/** The API's own message when the text is its JSON error body. */
function firstLine(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: { code?: number; message?: string; status?: string } };
    if (parsed.error?.message) return `HTTP ${parsed.error.code ?? '?'} ${parsed.error.status ?? ''}: ${parsed.error.message}`.slice(0, 300);
  } catch {
    // not JSON
  }
  return text.split('\n')[0]!.slice(0, 300);
}

interface Converters {
  toJson(typeName: string, message: unknown): Record<string, unknown>;
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
  // Credentials first, once: a missing login is one clear error before any call is made.
  try {
    await jobs.auth.getClient();
  } catch (error) {
    throw vertexApiError(error, 'loading Application Default Credentials', endpoint);
  }
  const models = new aiplatform.v1.ModelServiceClient({ ...options, auth: jobs.auth });
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
    getBatchPredictionJob: (name) => call(`getting ${name}`, async () => convert.toJson(`${V1}.BatchPredictionJob`, (await jobs.getBatchPredictionJob({ name }))[0])),
    getCustomJob: (name) => call(`getting ${name}`, async () => convert.toJson(`${V1}.CustomJob`, (await jobs.getCustomJob({ name }))[0])),
    getModel: (name) => call(`getting the model ${name}`, async () => convert.toJson(`${V1}.Model`, (await models.getModel({ name }))[0])),
    createBatchPredictionJob: (parent, job) =>
      call(`creating a BatchPredictionJob in ${parent}`, async () => {
        const batchPredictionJob = convert.fromJson(`${V1}.BatchPredictionJob`, job) as never;
        return convert.toJson(`${V1}.BatchPredictionJob`, (await jobs.createBatchPredictionJob({ parent, batchPredictionJob }))[0]);
      }),
    createCustomJob: (parent, job) =>
      call(`creating a CustomJob in ${parent}`, async () => {
        const customJob = convert.fromJson(`${V1}.CustomJob`, job) as never;
        return convert.toJson(`${V1}.CustomJob`, (await jobs.createCustomJob({ parent, customJob }))[0]);
      }),
  };
}

/**
 * REST JSON <-> the client's request and response objects. Requests: REST JSON (Value, Duration,
 * int64 strings) to the plain proto-object form the client's fromObject takes. Responses: the REST
 * transport hands back plain objects with every default filled in; they are typed again, written as
 * REST JSON, and the defaults dropped again (the API omits them), so a fetched resource reads as
 * `gcloud ... describe --format=json` shows it.
 */
function converters(require: NodeJS.Require): Converters {
  const serializer = require('proto3-json-serializer') as typeof import('proto3-json-serializer');
  const protobuf = require('protobufjs') as typeof import('protobufjs');
  const root = protobuf.Root.fromJSON(require('@google-cloud/aiplatform/build/protos/protos.json') as protobuf.INamespace);
  return {
    toJson: (typeName, message) => {
      const type = root.lookupType(typeName);
      return withoutDefaults(type, serializer.toProto3JSON(type.fromObject(message as Record<string, unknown>) as never)) as Record<string, unknown>;
    },
    fromJson: (typeName, json) => {
      const type = root.lookupType(typeName);
      return type.toObject(serializer.fromProto3JSON(type, json as never)!, { longs: String, enums: String, defaults: false, oneofs: false });
    },
  };
}

const KEPT_AS_IS = new Set(['.google.protobuf.Value', '.google.protobuf.Struct', '.google.protobuf.ListValue', '.google.protobuf.Timestamp', '.google.protobuf.Duration', '.google.protobuf.Any']);

/** Drops proto3 default values (the REST API omits them): "", 0, false, enum value 0, empty lists and maps. */
function withoutDefaults(type: import('protobufjs').Type, json: unknown): unknown {
  if (!json || typeof json !== 'object' || Array.isArray(json)) return json;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    const field = type.fields[key] ?? Object.values(type.fields).find((f) => f.name === key || (f as { jsonName?: string }).jsonName === key);
    if (value === null || value === undefined) continue;
    if (!field) {
      out[key] = value;
      continue;
    }
    const resolved = field.resolvedType;
    const isMessage = resolved !== null && 'fields' in resolved;
    const keep = (v: unknown) => (isMessage && !KEPT_AS_IS.has(resolved.fullName) ? withoutDefaults(resolved as import('protobufjs').Type, v) : v);
    if (Array.isArray(value)) {
      if (value.length) out[key] = value.map(keep);
      continue;
    }
    if (field.map) {
      if (Object.keys(value as object).length) out[key] = value;
      continue;
    }
    if (isMessage) {
      out[key] = keep(value);
      continue;
    }
    const enumZero = resolved && 'values' in resolved ? Object.keys(resolved.values).find((k) => resolved.values[k] === 0) : undefined;
    if (value === '' || value === false || value === 0 || (value === '0' && /int64|fixed64/.test(field.type)) || (enumZero !== undefined && value === enumZero)) continue;
    out[key] = value;
  }
  return out;
}

/** `projects/P/locations/L` of a resource name. */
export function parentOf(name: string): { project: string; location: string } | undefined {
  const match = /^projects\/([^/]+)\/locations\/([^/]+)\//.exec(name);
  return match ? { project: match[1]!, location: match[2]! } : undefined;
}
