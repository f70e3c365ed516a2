/**
 * One error type for everything the emulator itself reports (never the user's container: a
 * container that fails is a job *result*). `kind` decides the CLI exit status:
 * usage/spec problems exit 2, the emulator being unable to work (engine unreachable) exits 3.
 */
export type VbeErrorKind = 'usage' | 'emulator';

export class VbeError extends Error {
  readonly code: string;
  readonly kind: VbeErrorKind;
  readonly suggestion: string | undefined;

  constructor(code: string, message: string, options: { kind: VbeErrorKind; suggestion?: string; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VbeError';
    this.code = code;
    this.kind = options.kind;
    this.suggestion = options.suggestion;
  }

  get exitCode(): 2 | 3 {
    return this.kind === 'usage' ? 2 : 3;
  }
}

/** A problem with what the user asked for: a flag, a spec field, an input path. Exit 2. */
export function usageError(code: string, message: string, suggestion?: string): VbeError {
  return new VbeError(code, message, { kind: 'usage', suggestion });
}

/** The emulator could not do its own work (engine unreachable, disk full). Exit 3. */
export function emulatorError(code: string, message: string, suggestion?: string, cause?: unknown): VbeError {
  return new VbeError(code, message, { kind: 'emulator', suggestion, cause });
}

export function isVbeError(value: unknown): value is VbeError {
  return value instanceof VbeError;
}
