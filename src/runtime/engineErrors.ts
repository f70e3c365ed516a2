import { emulatorError, VbeError } from '../errors.js';

/** How a failed engine call becomes an emulator error: engineError, and the call helpers. */

export const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND']);

function describeEndpoint(): string {
  return process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
}

/** Turns a failed engine call into an emulator error (exit 3) that says what to do. */
export function engineError(error: unknown, doing: string): VbeError {
  if (error instanceof VbeError) return error;
  const err = error as NodeJS.ErrnoException & { statusCode?: number; json?: { message?: string } };
  if (err?.code && CONNECTION_CODES.has(err.code)) {
    return emulatorError(
      'ENGINE_UNREACHABLE',
      `Cannot reach the Docker engine at ${describeEndpoint()} while ${doing} (${err.code}).`,
      'Start Docker (e.g. `sudo systemctl start docker`, or open Docker Desktop), or point DOCKER_HOST at a running engine, then run again.',
      error,
    );
  }
  const message = err?.json?.message ?? err?.message ?? String(error);
  return emulatorError('ENGINE_ERROR', `The Docker engine failed while ${doing}: ${message}`, 'Check `docker info` and the engine logs, then run again.', error);
}

export async function call<T>(doing: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw engineError(error, doing);
  }
}

export function statusCode(error: unknown): number | undefined {
  return (error as { statusCode?: number })?.statusCode;
}
