import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { EngineOptions } from './engineOptions.js';
import { dockerConfigDir } from './registryAuth.js';

/** One way to reach an engine, with where it came from (for "what was tried" messages). */
export interface EndpointCandidate {
  source: string;
  host: string;
  options: EngineOptions;
}

/** Engine API client options for a `unix://`, `tcp://`, `http(s)://` or `ssh://` host. */
export function optionsForHost(host: string, tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer }): EngineOptions {
  if (host.startsWith('unix://')) return { socketPath: host.slice('unix://'.length) };
  if (host.startsWith('npipe://')) return { socketPath: host.slice('npipe://'.length) };
  const url = new URL(host.replace(/^tcp:/, tls ? 'https:' : 'http:'));
  const options: EngineOptions = {
    host: url.hostname,
    port: url.port || (url.protocol === 'https:' ? 2376 : url.protocol === 'ssh:' ? 22 : 2375),
    protocol: url.protocol.replace(':', '') as 'http' | 'https' | 'ssh',
  };
  if (url.protocol === 'ssh:' && url.username) options.username = url.username;
  if (tls) Object.assign(options, tls);
  return options;
}

function readIfExists(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

/**
 * Where the engine may be, in the order the docker CLI and the usual desktop engines would use:
 * DOCKER_HOST (with DOCKER_TLS_VERIFY / DOCKER_CERT_PATH), DOCKER_CONTEXT or the config's
 * currentContext, then the default socket and the Docker Desktop, rootless, Colima, Rancher
 * Desktop, OrbStack and Podman sockets that exist.
 */
export function endpointCandidates(env: NodeJS.ProcessEnv = process.env): EndpointCandidate[] {
  if (env.DOCKER_HOST) {
    const certPath = env.DOCKER_CERT_PATH;
    const tls =
      env.DOCKER_TLS_VERIFY && env.DOCKER_TLS_VERIFY !== '0' && certPath
        ? { ca: readIfExists(path.join(certPath, 'ca.pem')), cert: readIfExists(path.join(certPath, 'cert.pem')), key: readIfExists(path.join(certPath, 'key.pem')) }
        : undefined;
    return [{ source: 'DOCKER_HOST', host: env.DOCKER_HOST, options: optionsForHost(env.DOCKER_HOST, tls && { ...(tls.ca ? { ca: tls.ca } : {}), ...(tls.cert ? { cert: tls.cert } : {}), ...(tls.key ? { key: tls.key } : {}) }) }];
  }
  const out: EndpointCandidate[] = [];
  const context = env.DOCKER_CONTEXT ?? currentContext(env);
  if (context && context !== 'default') {
    const fromContext = contextEndpoint(context, env);
    if (fromContext) out.push(fromContext);
  }
  const home = env.HOME ?? os.homedir();
  const runtime = env.XDG_RUNTIME_DIR;
  const sockets: Array<[string, string]> = [
    ['default socket', '/var/run/docker.sock'],
    ['Docker Desktop', path.join(home, '.docker/run/docker.sock')],
    ...(runtime ? ([['rootless Docker', path.join(runtime, 'docker.sock')]] as Array<[string, string]>) : []),
    ['Colima', path.join(home, '.colima/default/docker.sock')],
    ['Colima', path.join(home, '.colima/docker.sock')],
    ['Rancher Desktop', path.join(home, '.rd/docker.sock')],
    ['OrbStack', path.join(home, '.orbstack/run/docker.sock')],
    ...(runtime ? ([['Podman (rootless)', path.join(runtime, 'podman/podman.sock')]] as Array<[string, string]>) : []),
    ['Podman', '/run/podman/podman.sock'],
  ];
  for (const [source, socket] of sockets) {
    if (source === 'default socket' || existsSync(socket)) out.push({ source, host: `unix://${socket}`, options: { socketPath: socket } });
  }
  return out;
}

function currentContext(env: NodeJS.ProcessEnv): string | undefined {
  try {
    return (JSON.parse(readFileSync(path.join(dockerConfigDir(env), 'config.json'), 'utf8')) as { currentContext?: string }).currentContext;
  } catch {
    return undefined;
  }
}

/** A docker CLI context: contexts/meta/<sha256(name)>/meta.json, TLS files under contexts/tls. */
function contextEndpoint(name: string, env: NodeJS.ProcessEnv): EndpointCandidate | undefined {
  const id = createHash('sha256').update(name).digest('hex');
  const base = path.join(dockerConfigDir(env), 'contexts');
  try {
    const meta = JSON.parse(readFileSync(path.join(base, 'meta', id, 'meta.json'), 'utf8')) as { Endpoints?: { docker?: { Host?: string; SkipTLSVerify?: boolean } } };
    const host = meta.Endpoints?.docker?.Host;
    if (!host) return undefined;
    const tlsDir = path.join(base, 'tls', id, 'docker');
    const ca = readIfExists(path.join(tlsDir, 'ca.pem'));
    const cert = readIfExists(path.join(tlsDir, 'cert.pem'));
    const key = readIfExists(path.join(tlsDir, 'key.pem'));
    const tls = ca || cert || key ? { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) } : undefined;
    return { source: `docker context "${name}"`, host, options: optionsForHost(host, tls) };
  } catch {
    return undefined;
  }
}

/** Whether requests to published ports go to this machine's loopback (a local engine). */
export function isLocalEndpoint(host: string): boolean {
  if (host.startsWith('unix://') || host.startsWith('npipe://')) return true;
  try {
    const hostname = new URL(host.replace(/^tcp:/, 'http:')).hostname;
    return hostname === 'localhost' || hostname.startsWith('127.') || hostname === '[::1]' || hostname === '::1';
  } catch {
    return false;
  }
}

/** The address where a remote engine's published ports answer: the engine's own host name. */
export function publishedPortHost(host: string): string {
  if (isLocalEndpoint(host)) return '127.0.0.1';
  return new URL(host.replace(/^tcp:/, 'http:')).hostname;
}
