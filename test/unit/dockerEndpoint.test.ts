import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { endpointCandidates, isLocalEndpoint, optionsForHost, publishedPortHost } from '../../src/runtime/dockerEndpoint.js';

describe('finding the engine', () => {
  it('DOCKER_HOST wins, with TLS files from DOCKER_CERT_PATH', async () => {
    const certs = await mkdtemp(path.join(os.tmpdir(), 'vbe-certs-'));
    await writeFile(path.join(certs, 'ca.pem'), 'CA');
    const [only, ...rest] = endpointCandidates({ DOCKER_HOST: 'tcp://build-box:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs });
    expect(rest).toEqual([]);
    expect(only).toMatchObject({ source: 'DOCKER_HOST', options: { host: 'build-box', port: '2376', protocol: 'https', ca: Buffer.from('CA') } });
  });
  it('then the current context, then the sockets that exist', async () => {
    const home = await mkdtemp(path.join(os.tmpdir(), 'vbe-home-'));
    await mkdir(path.join(home, '.orbstack/run'), { recursive: true });
    await writeFile(path.join(home, '.orbstack/run/docker.sock'), '');
    const config = path.join(home, '.docker');
    const id = createHash('sha256').update('ci').digest('hex');
    await mkdir(path.join(config, 'contexts/meta', id), { recursive: true });
    await writeFile(path.join(config, 'config.json'), JSON.stringify({ currentContext: 'ci' }));
    await writeFile(path.join(config, 'contexts/meta', id, 'meta.json'), JSON.stringify({ Endpoints: { docker: { Host: 'ssh://me@ci-host' } } }));
    const list = endpointCandidates({ HOME: home, DOCKER_CONFIG: config });
    expect(list.map((c) => c.source)).toEqual(['docker context "ci"', 'default socket', 'OrbStack']);
    expect(list[0]!.options).toMatchObject({ protocol: 'ssh', host: 'ci-host', username: 'me', port: 22 });
  });
  it('parses hosts and knows which are local', () => {
    expect(optionsForHost('unix:///var/run/docker.sock')).toEqual({ socketPath: '/var/run/docker.sock' });
    expect(optionsForHost('tcp://127.0.0.1:2375')).toEqual({ host: '127.0.0.1', port: '2375', protocol: 'http' });
    expect(isLocalEndpoint('tcp://127.0.0.1:2375')).toBe(true);
    expect(isLocalEndpoint('tcp://build-box:2376')).toBe(false);
    expect(publishedPortHost('tcp://build-box:2376')).toBe('build-box');
    expect(publishedPortHost('unix:///x.sock')).toBe('127.0.0.1');
  });
});
