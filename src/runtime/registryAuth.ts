import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** Credentials in the shape the engine's pull API takes (X-Registry-Auth). */
export interface RegistryAuth {
  username: string;
  password: string;
  serveraddress: string;
}

const DOCKER_HUB = 'docker.io';

/** The registry host of an image reference ("docker.io" for Docker Hub short names). */
export function registryHost(imageRef: string): string {
  const first = imageRef.split('/')[0]!;
  if (!imageRef.includes('/')) return DOCKER_HUB;
  if (first.includes('.') || first.includes(':') || first === 'localhost') return first;
  return DOCKER_HUB;
}

interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

export function dockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG ?? path.join(os.homedir(), '.docker');
}

/**
 * Finds credentials for the image's registry in the user's Docker config, the way the docker CLI
 * does: a per-registry `credHelpers` entry, else `credsStore`, else `auths`. Returns undefined
 * when there are none (anonymous pull).
 */
export async function findRegistryAuth(imageRef: string, env: NodeJS.ProcessEnv = process.env): Promise<RegistryAuth | undefined> {
  const host = registryHost(imageRef);
  let config: DockerConfigFile;
  try {
    config = JSON.parse(await readFile(path.join(dockerConfigDir(env), 'config.json'), 'utf8')) as DockerConfigFile;
  } catch {
    return undefined;
  }
  const keys = host === DOCKER_HUB ? ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io'] : [host, `https://${host}`, `http://${host}`];
  const helper = config.credHelpers?.[host] ?? config.credsStore;
  if (helper) {
    for (const key of keys) {
      const fromHelper = await askCredentialHelper(helper, key, env);
      if (fromHelper) return fromHelper;
    }
  }
  for (const key of keys) {
    const entry = config.auths?.[key];
    if (!entry) continue;
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), serveraddress: key };
    }
    if (entry.username && entry.password) return { username: entry.username, password: entry.password, serveraddress: key };
  }
  return undefined;
}

/** Runs `docker-credential-<helper> get` as the docker CLI does; undefined when it has nothing. */
function askCredentialHelper(helper: string, serverUrl: string, env: NodeJS.ProcessEnv): Promise<RegistryAuth | undefined> {
  return new Promise((resolve) => {
    let out = '';
    let child;
    try {
      child = spawn(`docker-credential-${helper}`, ['get'], { env, stdio: ['pipe', 'pipe', 'ignore'] });
    } catch {
      resolve(undefined);
      return;
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('error', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) return resolve(undefined);
      try {
        const parsed = JSON.parse(out) as { Username?: string; Secret?: string };
        if (parsed.Username && parsed.Secret) resolve({ username: parsed.Username, password: parsed.Secret, serveraddress: serverUrl });
        else resolve(undefined);
      } catch {
        resolve(undefined);
      }
    });
    child.stdin.end(serverUrl);
  });
}
