import http from 'node:http';
import { arrayMember, arrayMemberSpans } from '../instances/jsonSyntax.js';
import { type HttpAnswer, ServerConnection } from './serverConnection.js';

/** Largest predict response read. */
const MAX_RESPONSE_BYTES = 512 * 1024 * 1024;
/** A route that can go in a request line as it is (node:http refuses the others, and so does predict). */
const PLAIN_ROUTE = /^\/[\x21-\x7e]*$/;

/**
 * Talks HTTP to a model server's published port on the engine's host (127.0.0.1 for a local
 * engine; never a container address): health probes through node:http, predict requests on
 * keep-alive connections of our own (see ServerConnection).
 */
export class PredictionClient {
  private readonly agent: http.Agent;
  private readonly idle: ServerConnection[] = [];
  private readonly connections = new Set<ServerConnection>();
  private readonly hostHeader: string;

  constructor(
    readonly host: string,
    readonly hostPort: number,
    maxSockets: number,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
    this.hostHeader = `${host.includes(':') ? `[${host}]` : host}:${hostPort}`;
  }

  close(): void {
    this.agent.destroy();
    for (const c of this.connections) c.destroy();
    this.connections.clear();
    this.idle.length = 0;
  }

  /** GET a route; the status code, or the reason there was none. */
  async get(route: string, timeoutMs: number): Promise<{ status: number; body: string } | { error: string }> {
    const result = await this.request('GET', route, undefined, timeoutMs, 64 * 1024);
    return 'error' in result ? { error: result.error } : { status: result.status, body: result.body.toString('utf8') };
  }

  /** POST one predict request and check the answer has one prediction per instance. */
  async predict(route: string, body: Buffer, instanceCount: number, timeoutMs: number): Promise<PredictOutcome> {
    const result = PLAIN_ROUTE.test(route) ? await this.post(route, body, timeoutMs) : await this.request('POST', route, body, timeoutMs, MAX_RESPONSE_BYTES);
    if ('error' in result) {
      return result.timedOut
        ? { ok: false, kind: 'timeout', code: 4, message: `no answer within ${Math.round(timeoutMs / 1000)}s` }
        : { ok: false, kind: 'connection', code: 14, message: result.error };
    }
    const text = result.body.toString('utf8');
    if (result.status < 200 || result.status > 299) {
      return { ok: false, kind: 'http', code: result.status >= 500 ? 13 : 3, status: result.status, message: `Non-OK result ${result.status} (${snippet(text)}) from server` };
    }
    // Checked and cut out as written, without building values: memory bounded by the instances
    // sent, whatever the response holds (the elements past instanceCount are only counted).
    const member = arrayMember(text, 'predictions', instanceCount);
    if (!member.json) return { ok: false, kind: 'not-json', code: 13, message: `The model server's response is not JSON: ${snippet(text)}` };
    if (!member.found) {
      const keys = text.trimStart().startsWith('{') ? member.keys.join(', ') : 'not an object';
      return { ok: false, kind: 'no-predictions', code: 13, message: `The model server's response has no "predictions" array (it has: ${keys || 'nothing'}).` };
    }
    if (member.count !== instanceCount) {
      return { ok: false, kind: 'count-mismatch', code: 13, message: `The model server returned ${member.count} predictions for ${instanceCount} instances.` };
    }
    const predictions: string[] = [];
    for (let i = 0; i < member.spans.length; i += 2) predictions.push(oneLine(text.slice(member.spans[i], member.spans[i + 1])));
    return { ok: true, predictions, responseBytes: result.body.length };
  }

  /** POST on an idle keep-alive connection, or a new one. */
  private async post(route: string, body: Buffer, timeoutMs: number): Promise<HttpAnswer> {
    let connection = this.idle.pop();
    while (connection && !connection.reusable) {
      this.connections.delete(connection);
      connection = this.idle.pop();
    }
    if (!connection) {
      connection = new ServerConnection(this.host, this.hostPort);
      this.connections.add(connection);
    }
    const head = `POST ${route} HTTP/1.1\r\nHost: ${this.hostHeader}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: keep-alive\r\n\r\n`;
    const answer = await connection.exchange(head, body, timeoutMs, MAX_RESPONSE_BYTES);
    if (connection.reusable) this.idle.push(connection);
    else this.connections.delete(connection);
    return answer;
  }

  private request(
    method: 'GET' | 'POST',
    route: string,
    body: Buffer | undefined,
    timeoutMs: number,
    maxBytes: number,
  ): Promise<HttpAnswer> {
    return new Promise((resolve) => {
      let settled = false;
      const done = (value: HttpAnswer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      };
      const req = http.request(
        {
          host: this.host,
          port: this.hostPort,
          path: route,
          method,
          agent: this.agent,
          headers: body ? { 'content-type': 'application/json', 'content-length': body.length } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > maxBytes) {
              req.destroy();
              done({ error: `response larger than ${maxBytes} bytes`, timedOut: false });
              return;
            }
            chunks.push(chunk);
          });
          res.on('end', () => done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
          res.on('error', (error) => done({ error: error.message, timedOut: false }));
        },
      );
      const timer = setTimeout(() => {
        req.destroy();
        done({ error: `no answer within ${timeoutMs} ms`, timedOut: true });
      }, timeoutMs);
      req.on('error', (error: NodeJS.ErrnoException) => done({ error: error.code ? `${error.code}: ${error.message}` : error.message, timedOut: false }));
      req.end(body);
    });
  }
}

export type PredictOutcome =
  /** `predictions`: the JSON text of each prediction, one line long. */
  | { ok: true; predictions: string[]; responseBytes: number }
  | { ok: false; kind: 'http' | 'timeout' | 'connection' | 'not-json' | 'no-predictions' | 'count-mismatch'; code: number; status?: number; message: string };

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat || 'empty body';
}

/**
 * The JSON text of each prediction, cut out of the response as the server wrote it rather than
 * serialized again from `parsed` (the response's `predictions`, already parsed, so `text` is valid
 * JSON). A prediction spread over several lines (a pretty-printed response) is serialized from
 * `parsed`, as it must fit on one output line.
 */
export function predictionTexts(text: string, parsed: readonly unknown[], spans = arrayMemberSpans(text, 'predictions')): string[] {
  if (spans?.length !== 2 * parsed.length) return parsed.map(toJson);
  return parsed.map((value, i) => {
    const prediction = text.slice(spans[2 * i], spans[2 * i + 1]);
    return isOneLine(prediction) ? prediction : toJson(value);
  });
}

/** A prediction's JSON text as written, or serialized again on one line when it spans several (a pretty-printed response). */
function oneLine(json: string): string {
  return isOneLine(json) ? json : toJson(JSON.parse(json));
}

function isOneLine(json: string): boolean {
  return !json.includes('\n') && !json.includes('\r');
}

function toJson(value: unknown): string {
  return JSON.stringify(value) ?? 'null';
}
