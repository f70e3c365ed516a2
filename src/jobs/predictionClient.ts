import http from 'node:http';

/** Talks HTTP to a model server's published port on the engine's host (127.0.0.1 for a local engine; never a container address). */
export class PredictionClient {
  private readonly agent: http.Agent;

  constructor(
    readonly host: string,
    readonly hostPort: number,
    maxSockets: number,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
  }

  close(): void {
    this.agent.destroy();
  }

  /** GET a route; the status code, or the reason there was none. */
  async get(route: string, timeoutMs: number): Promise<{ status: number; body: string } | { error: string }> {
    const result = await this.request('GET', route, undefined, timeoutMs, 64 * 1024);
    return 'error' in result ? { error: result.error } : { status: result.status, body: result.body.toString('utf8') };
  }

  /** POST one predict request and check the answer has one prediction per instance. */
  async predict(route: string, body: Buffer, instanceCount: number, timeoutMs: number): Promise<PredictOutcome> {
    const result = await this.request('POST', route, body, timeoutMs, 512 * 1024 * 1024);
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
    return { ok: true, predictions, responseBytes: result.body.length };
  }

  private request(
    method: 'GET' | 'POST',
    route: string,
    body: Buffer | undefined,
    timeoutMs: number,
    maxBytes: number,
  ): Promise<{ status: number; body: Buffer } | { error: string; timedOut: boolean }> {
    return new Promise((resolve) => {
      let settled = false;
      const done = (value: { status: number; body: Buffer } | { error: string; timedOut: boolean }) => {
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
  | { ok: true; predictions: unknown[]; responseBytes: number }
  | { ok: false; kind: 'http' | 'timeout' | 'connection' | 'not-json' | 'no-predictions' | 'count-mismatch'; code: number; status?: number; message: string };

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat || 'empty body';
}
