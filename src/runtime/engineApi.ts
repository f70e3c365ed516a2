import http from 'node:http';
import type https from 'node:https';
import net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { type BodySink, ResponseParser } from '../http/responseParser.js';
import type { EngineOptions } from './engineOptions.js';

export type { EngineOptions };

/**
 * A small client for the Docker Engine API: the calls ContainerEngine makes and nothing else,
 * over a unix socket, TCP, TLS (with client certificates) or ssh (`docker system dial-stdio` on
 * the remote host). Paths are unversioned: the engine answers in its own API version.
 *
 * Request bodies are JSON (or a tar stream); options never go into the URL except those the
 * endpoint takes as query parameters, so a large Env cannot make the URL too long (HTTP 431).
 */


/** An HTTP error from the engine: `statusCode` and the engine's `{message}` when it gave one. */
export class EngineApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly json: { message?: string } | undefined,
    body: string,
  ) {
    super(`(HTTP code ${statusCode}) ${json?.message ?? (body.trim() || http.STATUS_CODES[statusCode] || 'error')}`);
    this.name = 'EngineApiError';
  }
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  /** JSON body. */
  body?: unknown;
  /** Raw body (a tar stream), sent chunked. */
  upload?: Readable;
  headers?: Record<string, string>;
  /** Abandons the request (ETIMEDOUT) when no response has come by then. */
  timeoutMs?: number;
}

/** A download's read buffer: allocated once per download, every read of the socket lands in it. */
const DOWNLOAD_READ_BYTES = 1024 * 1024;
/** Most of an error answer's body kept for its message. */
const MAX_ERROR_BODY_BYTES = 1024 * 1024;

// One connection pool per process: requests to the same engine reuse their connections.
const httpAgent = new http.Agent({ keepAlive: true });
// TLS is loaded only for a TLS engine.
let tlsClient: Promise<{ https: typeof https; agent: https.Agent }> | undefined;
const loadTls = () => (tlsClient ??= import('node:https').then(({ default: https }) => ({ https, agent: new https.Agent({ keepAlive: true }) })));

export class EngineApi {
  /** For ssh:// hosts: the agent whose connections are ssh channels (sshTransport.ts). */
  private sshAgent: Promise<http.Agent> | undefined;

  constructor(readonly options: EngineOptions) {}

  /** Sends a request; resolves with the response once its headers are in (any status). */
  async send(method: string, path: string, request: RequestOptions = {}): Promise<http.IncomingMessage> {
    const sshAgent = this.options.protocol === 'ssh' ? await (this.sshAgent ??= import('./sshTransport.js').then((m) => m.sshAgent(this.options))) : undefined;
    const tls = this.options.protocol === 'https' && !this.options.socketPath ? await loadTls() : undefined;
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { ...request.headers };
      let payload: Buffer | undefined;
      if (request.body !== undefined) {
        payload = Buffer.from(JSON.stringify(request.body));
        headers['Content-Type'] = 'application/json';
      } else if (request.upload) {
        headers['Content-Type'] = 'application/x-tar';
      } else if (method !== 'GET' && method !== 'HEAD' && method !== 'DELETE') {
        payload = Buffer.alloc(0);
      }
      if (payload) headers['Content-Length'] = String(payload.length);
      const options: https.RequestOptions = { method, path: path + queryString(request.query), headers };
      const { socketPath, host, port } = this.options;
      let transport: Pick<typeof http, 'request'> = http;
      if (sshAgent) {
        options.agent = sshAgent;
        options.host = host ?? 'localhost';
      } else if (socketPath) {
        options.socketPath = socketPath;
        options.agent = httpAgent;
      } else {
        options.host = host ?? 'localhost';
        if (port !== undefined) options.port = Number(port);
        if (tls) {
          transport = tls.https;
          options.agent = tls.agent;
          if (this.options.ca) options.ca = this.options.ca;
          if (this.options.cert) options.cert = this.options.cert;
          if (this.options.key) options.key = this.options.key;
        } else options.agent = httpAgent;
      }
      // Node's agent works out a TLS server name for every request unless given one: net.isIP on
      // the host, a large regular expression that V8 runs slowly until it has warmed up (~30 ms over
      // a process's first three requests: every CLI job pays it). Plain HTTP has no use for the name.
      if (transport === http) options.servername = '';
      let timer: NodeJS.Timeout | undefined;
      const req = transport.request(options, (res) => {
        clearTimeout(timer);
        resolve(res);
      });
      req.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      if (request.timeoutMs !== undefined) {
        timer = setTimeout(() => req.destroy(Object.assign(new Error(`no answer within ${request.timeoutMs} ms`), { code: 'ETIMEDOUT' })), request.timeoutMs);
      }
      if (request.upload) {
        request.upload.on('error', (error) => req.destroy(error));
        request.upload.pipe(req);
      } else req.end(payload);
    });
  }

  /** A request whose answer is read whole; a status of 300 or more is an EngineApiError. */
  async call(method: string, path: string, request: RequestOptions = {}): Promise<Buffer> {
    const res = await this.send(method, path, request);
    const body = await readAll(res);
    if ((res.statusCode ?? 0) >= 300) throw apiError(res.statusCode ?? 0, body);
    return body;
  }

  /** A request answered with JSON (undefined for an empty answer). */
  async json<T>(method: string, path: string, request: RequestOptions = {}): Promise<T> {
    const body = await this.call(method, path, request);
    return (body.length > 0 ? JSON.parse(body.toString('utf8')) : undefined) as T;
  }

  /**
   * A request whose answer's body is handed to `sink` as it arrives (the parts of each read of the
   * socket together); resolves once it has all been handed on. Parts are views valid only during the call; when the sink returns a promise,
   * reading pauses until it settles. A status of 300 or more is an EngineApiError, and a sink that
   * throws (or rejects) stops the download with its error; `signal` stops it with its reason.
   *
   * Over a unix socket or plain TCP the socket is read straight into one reused 1 MiB buffer and
   * the HTTP framing is parsed here: node:http hands a 1 GiB archive on in 32,000 chunk events and
   * fresh buffers, about 0.9 s of CPU against 0.15 s this way, on the cores the engine needs to
   * write the archive. Over TLS and ssh, node:http's response is read.
   */
  async download(method: string, path: string, request: Pick<RequestOptions, 'query'> & { signal?: AbortSignal }, sink: BodySink): Promise<void> {
    const { socketPath, host, port, protocol } = this.options;
    const { signal } = request;
    signal?.throwIfAborted();
    if (!socketPath && (protocol === 'https' || protocol === 'ssh')) {
      const res = await this.stream(method, path, request);
      const stop = () => res.destroy(signal!.reason as Error);
      signal?.addEventListener('abort', stop, { once: true });
      try {
        for await (const chunk of res as AsyncIterable<Buffer>) {
          const wait = sink([chunk]);
          if (wait) await wait;
        }
      } finally {
        signal?.removeEventListener('abort', stop);
      }
      signal?.throwIfAborted();
      return;
    }
    const hostHeader = socketPath ? 'localhost' : `${host ?? 'localhost'}${port !== undefined ? `:${port}` : ''}`;
    const head = `${method} ${path}${queryString(request.query)} HTTP/1.1\r\nHost: ${hostHeader}\r\nConnection: close\r\n\r\n`;
    return new Promise<void>((resolve, reject) => {
      const parser = new ResponseParser(MAX_ERROR_BODY_BYTES, sink);
      let settled = false;
      let waiting = false;
      const onAbort = () => finish(signal!.reason);
      const finish = (error?: unknown) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        socket.destroy();
        if (error) reject(error);
        else if (parser.status >= 300) reject(apiError(parser.status, parser.body()));
        else resolve();
      };
      /** After the sink's promise: finishes a complete answer, or reads on. */
      const afterWait = (wait: Promise<void>, complete: boolean) => {
        waiting = true;
        wait.then(
          () => {
            waiting = false;
            if (complete) finish();
            else if (socket.destroyed) finish(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
            else socket.resume();
          },
          (error: unknown) => finish(error),
        );
      };
      const onRead = (bytes: number, buffer: Buffer): boolean => {
        if (settled) return false;
        let complete: boolean;
        try {
          complete = parser.push(buffer.subarray(0, bytes));
        } catch (error) {
          finish(error);
          return false;
        }
        if (parser.error) {
          finish(new Error(parser.error));
          return false;
        }
        const wait = parser.waitFor;
        parser.waitFor = undefined;
        if (wait) {
          afterWait(wait, complete);
          return false; // paused until the sink is ready
        }
        if (complete) finish();
        return !complete;
      };
      const target = socketPath ? { path: socketPath } : { host: host ?? 'localhost', port: Number(port ?? 2375) };
      const socket = net.connect({ ...target, onread: { buffer: Buffer.allocUnsafe(DOWNLOAD_READ_BYTES), callback: onRead } });
      signal?.addEventListener('abort', onAbort, { once: true });
      socket.on('error', (error) => finish(error));
      // A paused socket reads no further, so the end never comes while the sink is waiting.
      socket.on('end', () => {
        if (parser.end()) finish();
        else if (parser.status === 0) finish(Object.assign(new Error('the engine closed the connection without an answer'), { code: 'ECONNRESET' }));
        else if (!waiting) finish(Object.assign(new Error('the engine closed the connection before the end of its answer'), { code: 'ECONNRESET' }));
      });
      socket.on('close', () => {
        if (!waiting) finish(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
      });
      socket.write(head, 'latin1');
    });
  }

  /** A request answered with a stream (logs, stats, archives, progress): the response itself. */
  async stream(method: string, path: string, request: RequestOptions = {}): Promise<http.IncomingMessage> {
    const res = await this.send(method, path, request);
    if ((res.statusCode ?? 0) >= 300) throw apiError(res.statusCode ?? 0, await readAll(res));
    return res;
  }
}

function queryString(query: Query | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
  const text = params.toString();
  return text ? `?${text}` : '';
}

function readAll(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

function apiError(statusCode: number, body: Buffer): EngineApiError {
  const text = body.toString('utf8');
  let json: { message?: string } | undefined;
  try {
    json = JSON.parse(text) as { message?: string };
  } catch {
    json = undefined;
  }
  return new EngineApiError(statusCode, json, text);
}

/** A path segment for an image reference, container id or volume name. */
export function segment(name: string): string {
  return encodeURI(name).replace(/[?#]/g, encodeURIComponent);
}

/**
 * Splits a multiplexed attach/exec stream (8-byte frame headers: stream type, size) into stdout
 * and stderr. A stream that does not start with a valid header (a TTY) is passed to stdout whole.
 */
export function demultiplex(source: Readable, stdout: Writable, stderr: Writable): void {
  let pending: Buffer = Buffer.alloc(0);
  let raw = false;
  source.on('data', (chunk: Buffer) => {
    if (raw) {
      stdout.write(chunk);
      return;
    }
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let offset = 0;
    while (pending.length - offset >= 8) {
      const type = pending[offset]!;
      if (type > 2) {
        raw = true;
        stdout.write(pending.subarray(offset));
        pending = Buffer.alloc(0);
        return;
      }
      const size = pending.readUInt32BE(offset + 4);
      if (pending.length - offset - 8 < size) break;
      const payload = pending.subarray(offset + 8, offset + 8 + size);
      if (type === 2) stderr.write(payload);
      else stdout.write(payload);
      offset += 8 + size;
    }
    pending = offset === pending.length ? Buffer.alloc(0) : Buffer.from(pending.subarray(offset));
  });
}

/** Splits newline-delimited JSON (pull progress, stats) and calls `onObject` for each object. */
export function readJsonLines(source: Readable, onObject: (value: unknown) => void): void {
  let pending = '';
  source.setEncoding('utf8');
  source.on('data', (chunk: string) => {
    pending += chunk;
    let newline = pending.indexOf('\n');
    while (newline !== -1) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      newline = pending.indexOf('\n');
      if (!line) continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        continue; // not JSON: ignore the line
      }
      onObject(value);
    }
  });
}
