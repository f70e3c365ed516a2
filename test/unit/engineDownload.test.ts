import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineApi, EngineApiError } from '../../src/runtime/engineApi.js';

const body = randomBytes(5 * 1024 * 1024 + 17);
let server: http.Server;
let unixServer: http.Server;
let dir: string;
let port: number;

function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url!, 'http://x');
  if (url.pathname === '/chunked') {
    // Written in pieces of the engine's size (32 KiB), so the body arrives chunked.
    let at = 0;
    const next = () => {
      while (at < body.length) {
        const piece = body.subarray(at, at + 32 * 1024);
        at += piece.length;
        if (!res.write(piece)) return res.once('drain', next);
      }
      res.end();
    };
    next();
  } else if (url.pathname === '/length') {
    res.writeHead(200, { 'Content-Length': body.length });
    res.end(body);
  } else if (url.pathname === '/missing') {
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ message: `Could not find the file ${url.searchParams.get('path')} in container x` }));
  } else if (url.pathname === '/cut') {
    res.writeHead(200, { 'Content-Length': body.length });
    res.write(body.subarray(0, 100_000), () => res.socket?.destroy());
  }
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vbe-download-'));
  server = http.createServer(handler);
  unixServer = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => unixServer.listen(path.join(dir, 'engine.sock'), resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server.close();
  unixServer.close();
  await rm(dir, { recursive: true, force: true });
});

const engines = () => [
  ['TCP', new EngineApi({ host: '127.0.0.1', port, protocol: 'http' })],
  ['unix socket', new EngineApi({ socketPath: path.join(dir, 'engine.sock') })],
] as const;

/** Hashes what the sink is given, copying nothing; every third call pauses reading for a moment. */
function hashingSink() {
  const hash = createHash('sha256');
  let bytes = 0;
  let calls = 0;
  let waiting = false;
  let overlapped = false;
  const sink = (parts: Buffer[]) => {
    if (waiting) overlapped = true;
    for (const part of parts) {
      hash.update(part);
      bytes += part.length;
    }
    if (++calls % 3 !== 0) return undefined;
    waiting = true;
    return new Promise<void>((resolve) =>
      setTimeout(() => {
        waiting = false;
        resolve();
      }, 2),
    );
  };
  return { sink, result: () => ({ bytes, digest: hash.digest('hex'), overlapped }) };
}

const expected = createHash('sha256').update(body).digest('hex');

describe('EngineApi.download', () => {
  it.each(['/chunked', '/length'])('hands the whole body of %s to the sink, in order, never while it is waiting', async (route) => {
    for (const [, api] of engines()) {
      const { sink, result } = hashingSink();
      await api.download('GET', route, { query: { path: '/vbe/output' } }, sink);
      expect(result()).toEqual({ bytes: body.length, digest: expected, overlapped: false });
    }
  });

  it("an error status is an EngineApiError with the engine's message; the sink gets nothing", async () => {
    for (const [, api] of engines()) {
      const parts: Buffer[][] = [];
      const error = await api.download('GET', '/missing', { query: { path: '/vbe/out put' } }, (p) => void parts.push(p)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EngineApiError);
      expect(error).toMatchObject({ statusCode: 404, message: expect.stringContaining('Could not find the file /vbe/out put') });
      expect(parts).toEqual([]);
    }
  });

  it('a connection cut before the end of the body is an error, not a short success', async () => {
    for (const [, api] of engines()) {
      await expect(api.download('GET', '/cut', {}, () => undefined)).rejects.toMatchObject({ code: 'ECONNRESET' });
    }
  });

  it('a sink that throws (or rejects) stops the download with its error', async () => {
    for (const [, api] of engines()) {
      const disk = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      await expect(
        api.download('GET', '/chunked', {}, () => {
          throw disk;
        }),
      ).rejects.toBe(disk);
      await expect(api.download('GET', '/chunked', {}, () => Promise.reject(disk))).rejects.toBe(disk);
    }
  });

  it('an abort stops the download with its reason, also while the sink is waiting', async () => {
    for (const [, api] of engines()) {
      const controller = new AbortController();
      let calls = 0;
      const stopped = api.download('GET', '/chunked', { signal: controller.signal }, () => {
        if (++calls === 2) {
          controller.abort(new Error('cancelled by the user'));
          return new Promise<void>(() => undefined); // never settles: the abort alone must end the download
        }
        return undefined;
      });
      await expect(stopped).rejects.toThrow('cancelled by the user');
    }
  });

  it('an engine that is not there: the connection error, with its code', async () => {
    const api = new EngineApi({ socketPath: path.join(dir, 'nobody.sock') });
    await expect(api.download('GET', '/chunked', {}, () => undefined)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
