import http from 'node:http';
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
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return { ok: false, kind: 'not-json', code: 13, message: `The model server's response is not JSON: ${snippet(text)}` };
    }
    const predictions = (parsed as { predictions?: unknown } | null)?.predictions;
    if (!Array.isArray(predictions)) {
      const keys = parsed && typeof parsed === 'object' ? Object.keys(parsed).join(', ') : typeof parsed;
      return { ok: false, kind: 'no-predictions', code: 13, message: `The model server's response has no "predictions" array (it has: ${keys || 'nothing'}).` };
    }
    if (predictions.length !== instanceCount) {
      return { ok: false, kind: 'count-mismatch', code: 13, message: `The model server returned ${predictions.length} predictions for ${instanceCount} instances.` };
    }
    return { ok: true, predictions: predictionTexts(text, predictions), responseBytes: result.body.length };
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
export function predictionTexts(text: string, parsed: readonly unknown[]): string[] {
  const texts = predictionsMember(text);
  if (!texts || texts.length !== parsed.length) return parsed.map(toJson);
  return texts.map((t, i) => t ?? toJson(parsed[i]));
}

function toJson(value: unknown): string {
  return JSON.stringify(value) ?? 'null';
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const LF = 0x0a;
const CR = 0x0d;

// The scanners below assume valid JSON (JSON.parse accepted it); they only find where values end.

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === LF || c === CR || c === 0x09;
}

function skipWhitespace(text: string, i: number): number {
  while (isWhitespace(text.charCodeAt(i))) i += 1;
  return i;
}

/** Past the string whose opening quote is at `i`. */
function skipString(text: string, i: number): number {
  for (let from = i + 1; ; ) {
    const quote = text.indexOf('"', from);
    if (quote === -1) return text.length;
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === BACKSLASH) backslashes += 1;
    if (backslashes % 2 === 0) return quote + 1;
    from = quote + 1;
  }
}

/** Past the value that starts at `i`. */
function skipValue(text: string, i: number): number {
  const first = text.charCodeAt(i);
  if (first === QUOTE) return skipString(text, i);
  if (first === OPEN_BRACE || first === OPEN_BRACKET) {
    let depth = 0;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === QUOTE) {
        i = skipString(text, i);
        continue;
      }
      if (c === OPEN_BRACE || c === OPEN_BRACKET) depth += 1;
      else if ((c === CLOSE_BRACE || c === CLOSE_BRACKET) && --depth === 0) return i + 1;
      i += 1;
    }
    return i;
  }
  // A number, true, false or null.
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === COMMA || c === CLOSE_BRACKET || c === CLOSE_BRACE || c <= 0x20) break;
    i += 1;
  }
  return i;
}

/**
 * The element texts of the top-level object's "predictions" array (the last such member, as
 * JSON.parse keeps), undefined for an element that spans lines; undefined if there is none.
 */
function predictionsMember(text: string): Array<string | undefined> | undefined {
  let i = skipWhitespace(text, 0);
  if (text.charCodeAt(i) !== OPEN_BRACE) return undefined;
  let found: Array<string | undefined> | undefined;
  i = skipWhitespace(text, i + 1);
  while (i < text.length && text.charCodeAt(i) === QUOTE) {
    const keyEnd = skipString(text, i);
    const raw = text.slice(i, keyEnd);
    const key = raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1);
    i = skipWhitespace(text, keyEnd);
    if (text.charCodeAt(i) !== COLON) return undefined;
    i = skipWhitespace(text, i + 1);
    if (key === 'predictions' && text.charCodeAt(i) === OPEN_BRACKET) {
      const array = arrayElements(text, i);
      if (!array) return undefined;
      found = array.elements;
      i = array.end;
    } else i = skipValue(text, i);
    i = skipWhitespace(text, i);
    if (text.charCodeAt(i) !== COMMA) break;
    i = skipWhitespace(text, i + 1);
  }
  return found;
}

/** The elements of the array opening at `open`, in one pass; undefined for one that spans lines. */
function arrayElements(text: string, open: number): { elements: Array<string | undefined>; end: number } | undefined {
  const elements: Array<string | undefined> = [];
  let depth = 0;
  let start = -1;
  let multiline = false;
  for (let i = open + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      if (start < 0) start = i;
      i = skipString(text, i) - 1;
    } else if (isWhitespace(c)) {
      // Between tokens; at depth 0 only around an element (outside the text kept).
      if (depth > 0 && (c === LF || c === CR)) multiline = true;
    } else if (depth === 0 && (c === COMMA || c === CLOSE_BRACKET)) {
      if (start >= 0) {
        let end = i;
        while (isWhitespace(text.charCodeAt(end - 1))) end -= 1;
        elements.push(multiline ? undefined : text.slice(start, end));
      }
      if (c === CLOSE_BRACKET) return { elements, end: i + 1 };
      start = -1;
      multiline = false;
    } else {
      if (start < 0) start = i;
      if (c === OPEN_BRACE || c === OPEN_BRACKET) depth += 1;
      else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth -= 1;
    }
  }
  return undefined;
}
