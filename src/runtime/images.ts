import type { Readable } from 'node:stream';
import { type EngineApi, readJsonLines, segment } from './engineApi.js';
import { call, CONNECTION_CODES, engineError, statusCode } from './engineErrors.js';
import type { RegistryAuth } from './registryAuth.js';

/** Images on the engine: inspect, history and pull (ContainerEngine's image calls). */

export interface ImageDetails {
  id: string;
  repoDigest?: string;
  architecture: string;
  os: string;
  user: string;
  entrypoint: string[] | null;
  cmd: string[] | null;
  workingDir: string;
  env: string[];
  exposedPorts: string[];
  sizeBytes: number;
}

export type PullFailureKind = 'not_found' | 'denied' | 'unreachable' | 'other';

/** A pull the registry refused or could not serve: a job result, not an emulator failure. */
export class PullFailure extends Error {
  constructor(
    readonly kind: PullFailureKind,
    readonly detail: string,
  ) {
    super(detail);
    this.name = 'PullFailure';
  }
}

interface ImageInspect {
  Id: string;
  Architecture: string;
  Os: string;
  Size: number;
  RepoDigests?: string[];
  Config?: {
    User?: string;
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    Env?: string[] | null;
    ExposedPorts?: Record<string, unknown> | null;
  } | null;
}

/** An image reference as the pull endpoint takes it: repository, and tag or digest. */
function splitReference(ref: string): { fromImage: string; tag: string } {
  const at = ref.indexOf('@');
  const separator = at >= 0 ? at : ref.lastIndexOf(':');
  if (separator >= 0) {
    const tag = ref.slice(separator + 1);
    if (!tag.includes('/')) return { fromImage: ref.slice(0, separator), tag };
  }
  return { fromImage: ref, tag: 'latest' };
}

export async function inspectImage(api: EngineApi, ref: string): Promise<ImageDetails | undefined> {
  try {
    const info = await api.json<ImageInspect>('GET', `/images/${segment(ref)}/json`);
    const config = info.Config ?? {};
    const details: ImageDetails = {
      id: info.Id,
      architecture: info.Architecture,
      os: info.Os,
      user: config.User ?? '',
      entrypoint: config.Entrypoint ?? null,
      cmd: config.Cmd ?? null,
      workingDir: config.WorkingDir ?? '',
      env: config.Env ?? [],
      exposedPorts: Object.keys(config.ExposedPorts ?? {}),
      sizeBytes: info.Size,
    };
    const digest = info.RepoDigests?.[0];
    if (digest) details.repoDigest = digest;
    return details;
  } catch (error) {
    if (statusCode(error) === 404) return undefined;
    throw engineError(error, `inspecting image ${ref}`);
  }
}

/** The image's layers, newest first, with the instruction that made each and its size. */
export async function imageHistory(api: EngineApi, ref: string): Promise<Array<{ createdBy: string; sizeBytes: number }>> {
  const history = await call(`reading the history of ${ref}`, () => api.json<Array<{ CreatedBy?: string; Size?: number }>>('GET', `/images/${segment(ref)}/history`));
  return history.map((h) => ({ createdBy: h.CreatedBy ?? '', sizeBytes: h.Size ?? 0 }));
}

/** Pulls an image; registry refusals become PullFailure, engine trouble VbeError. */
export async function pullImage(api: EngineApi, ref: string, auth?: RegistryAuth, onProgress?: (event: { status?: string; id?: string }) => void): Promise<void> {
  let stream: Readable;
  try {
    // URL-safe base64 with its padding, as the docker CLI sends it.
    const headers: Record<string, string> = auth ? { 'X-Registry-Auth': Buffer.from(JSON.stringify(auth)).toString('base64').replace(/\+/g, '-').replace(/\//g, '_') } : {};
    stream = await api.stream('POST', '/images/create', { query: splitReference(ref), headers });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code && CONNECTION_CODES.has(code)) throw engineError(error, `pulling ${ref}`);
    throw classifyPullFailure((error as { json?: { message?: string } }).json?.message ?? (error as Error).message);
  }
  await new Promise<void>((resolve, reject) => {
    let failure: PullFailure | undefined;
    readJsonLines(stream, (value) => {
      const event = value as { status?: string; id?: string; error?: string };
      // The engine reports a failure during the pull as an event, then ends the stream.
      if (event.error) failure ??= classifyPullFailure(event.error);
      else onProgress?.(event);
    });
    stream.on('end', () => (failure ? reject(failure) : resolve()));
    stream.on('error', (error) => reject(classifyPullFailure(error.message)));
  });
}

function classifyPullFailure(message: string): PullFailure {
  const text = message.toLowerCase();
  if (/unauthorized|authentication required|no basic auth credentials|denied|forbidden|permission/.test(text)) {
    // Docker Hub answers "pull access denied ... does not exist or may require 'docker login'" for both.
    if (/does not exist/.test(text)) return new PullFailure('not_found', message);
    return new PullFailure('denied', message);
  }
  if (/not found|manifest unknown|does not exist|name unknown/.test(text)) return new PullFailure('not_found', message);
  if (/connection refused|no such host|i\/o timeout|dial tcp|tls handshake|network is unreachable|server misbehaving/.test(text)) {
    return new PullFailure('unreachable', message);
  }
  return new PullFailure('other', message);
}
