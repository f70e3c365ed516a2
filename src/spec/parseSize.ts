import { usageError } from '../errors.js';

const units: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4 };

/** "4GiB", "500MB", "1024" (bytes). */
export function parseSizeBytes(text: string, field: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const factor = m ? units[m[2]!.toLowerCase()] : undefined;
  if (!m || factor === undefined || Number(m[1]) <= 0) {
    throw usageError('INVALID_SIZE', `${field}: "${text}" is not a size.`, 'Write it like 500MB, 4GiB or a number of bytes.');
  }
  return Math.round(Number(m[1]) * factor);
}
