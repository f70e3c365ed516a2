import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for the Vertex AI REST API (aiplatform v1) on 127.0.0.1, for `vbe replay <name>` and
 * `vbe submit` tests: the real client (@google-cloud/aiplatform in its REST transport) talks to it
 * over HTTP. It serves only what vbe uses: get/create BatchPredictionJob and CustomJob, get Model.
 * A created job moves PENDING -> RUNNING -> the state `finish` gives, one step per get.
 */
export interface FakeVertex {
  /** Value for --api-endpoint / VBE_VERTEX_API_ENDPOINT. */
  endpoint: string;
  /** Resources served by name (jobs and models). */
  resources: Map<string, Record<string, unknown>>;
  /** Requests seen: method, path, the Authorization header and the JSON body. */
  requests: Array<{ method: string; path: string; authorization: string | undefined; body: unknown }>;
  /** Answer every request with this HTTP status (403, 404, 503 ...), or undefined. */
  failWith?: number;
  /** Called when a created job reaches its last step: returns the final fields (state, outputInfo ...). */
  finish?: (job: Record<string, unknown>) => Record<string, unknown>;
  close(): Promise<void>;
}

const STATUS_NAMES: Record<number, string> = { 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 500: 'INTERNAL', 503: 'UNAVAILABLE' };

export async function startFakeVertex(): Promise<FakeVertex> {
  const steps = new Map<string, number>();
  let nextId = 1000;
  const fake: FakeVertex = {
    endpoint: '',
    resources: new Map(),
    requests: [],
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => send(res, 500, { error: { code: 500, message: String(error), status: 'INTERNAL' } }));
  });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const text = await readBody(req);
    const body = text ? JSON.parse(text) : undefined;
    fake.requests.push({ method: req.method ?? '', path: url.pathname, authorization: req.headers.authorization, body });
    if (fake.failWith) {
      return send(res, fake.failWith, { error: { code: fake.failWith, message: `vbe-test fake Vertex: answering ${fake.failWith}`, status: STATUS_NAMES[fake.failWith] ?? 'UNKNOWN' } });
    }
    if (!req.headers.authorization?.startsWith('Bearer ')) {
      return send(res, 401, { error: { code: 401, message: 'Request is missing required authentication credential.', status: 'UNAUTHENTICATED' } });
    }
    const name = url.pathname.replace(/^\/v1\//, '');
    const create = /^(projects\/[^/]+\/locations\/[^/]+)\/(batchPredictionJobs|customJobs)$/.exec(name);
    if (create && req.method === 'POST') {
      const id = String(nextId++);
      const now = new Date().toISOString();
      const job = { ...body, name: `${create[1]}/${create[2]}/${id}`, state: 'JOB_STATE_PENDING', createTime: now, updateTime: now };
      fake.resources.set(job.name, job);
      steps.set(job.name, 0);
      return send(res, 200, job);
    }
    if (req.method === 'GET' && /^projects\/[^/]+\/locations\/[^/]+\/(batchPredictionJobs|customJobs|models)\/[^/]+$/.test(name)) {
      const resource = fake.resources.get(name);
      if (!resource) return send(res, 404, { error: { code: 404, message: `The resource "${name}" was not found.`, status: 'NOT_FOUND' } });
      const step = steps.get(name);
      if (step !== undefined) {
        steps.set(name, step + 1);
        if (step === 0) resource.state = 'JOB_STATE_RUNNING';
        if (step === 1) {
          Object.assign(resource, fake.finish?.(resource) ?? { state: 'JOB_STATE_SUCCEEDED' }, { updateTime: new Date().toISOString() });
          steps.delete(name);
        }
      }
      return send(res, 200, resource);
    }
    return send(res, 404, { error: { code: 404, message: `vbe-test fake Vertex: no route for ${req.method} ${url.pathname}`, status: 'NOT_FOUND' } });
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}

function send(res: ServerResponse, status: number, json: unknown) {
  const text = JSON.stringify(json);
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
