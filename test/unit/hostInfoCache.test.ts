import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ContainerEngine, HOST_INFO_TTL_MS } from '../../src/runtime/containerEngine.js';

// A fake engine on a unix socket: answers /_ping and /info, and counts the /info requests.
let server: http.Server;
let dir: string;
let socket: string;
let infoRequests = 0;
let failInfo = false;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vbe-hostinfo-'));
  socket = path.join(dir, 'engine.sock');
  server = http.createServer((req, res) => {
    if (req.url === '/_ping') return void res.end('OK');
    if (req.url === '/info') {
      infoRequests += 1;
      if (failInfo) {
        res.writeHead(500, { 'Content-Type': 'application/json' });
        return void res.end(JSON.stringify({ message: 'info is broken' }));
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return void res.end(JSON.stringify({ NCPU: 6, MemTotal: 8 * 2 ** 30, Architecture: 'x86_64', ServerVersion: '99.0', Runtimes: { runc: {} } }));
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
});
afterAll(async () => {
  server.close();
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  vi.useRealTimers();
  infoRequests = 0;
  failInfo = false;
});

const connect = () => ContainerEngine.connect({ env: { DOCKER_HOST: `unix://${socket}` } });

describe('ContainerEngine.hostInfo', () => {
  it('asks the engine once for jobs inside HOST_INFO_TTL_MS: the connect-time answer serves them', async () => {
    const engine = await connect();
    const first = await engine.hostInfo();
    const second = await engine.hostInfo();
    expect(first).toEqual({ nvidiaRuntime: false, cpus: 6, memoryBytes: 8 * 2 ** 30, architecture: 'amd64', serverVersion: '99.0' });
    expect(second).toEqual(first);
    expect(infoRequests).toBe(1);
  });

  it('asks again once HOST_INFO_TTL_MS has passed', async () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    const engine = await connect();
    await engine.hostInfo();
    vi.advanceTimersByTime(HOST_INFO_TTL_MS - 1);
    await engine.hostInfo();
    expect(infoRequests).toBe(1);
    vi.advanceTimersByTime(1);
    await engine.hostInfo();
    await engine.hostInfo();
    expect(infoRequests).toBe(2);
  });

  it('keeps no failed answer: the next call asks again', async () => {
    failInfo = true;
    const engine = await connect();
    await expect(engine.hostInfo()).rejects.toThrow(/info is broken/);
    failInfo = false;
    await expect(engine.hostInfo()).resolves.toMatchObject({ cpus: 6 });
    expect(infoRequests).toBe(2);
  });
});
