import { usageError } from '../errors.js';

const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses "30m", "600s", "1h30m", "1.5h", "250ms" (and Vertex's protobuf Duration form "1800s").
 * A bare number means seconds, as in Vertex's `scheduling.timeout`.
 */
export function parseDurationMs(text: string | number, field: string): number {
  if (typeof text === 'number') {
    if (!Number.isFinite(text) || text <= 0) throw badDuration(String(text), field);
    return text * 1000;
  }
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return parseDurationMs(Number(trimmed), field);
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (let match = part.exec(trimmed); match; match = part.exec(trimmed)) {
    total += Number(match[1]) * unitMs[match[2]!]!;
    consumed = part.lastIndex;
  }
  if (consumed === 0 || consumed !== trimmed.length || total <= 0) throw badDuration(text, field);
  return Math.round(total);
}

function badDuration(text: string, field: string) {
  return usageError(
    'INVALID_DURATION',
    `${field}: "${text}" is not a duration.`,
    'Write it like 90s, 30m, 1h30m or 250ms (a bare number means seconds).',
  );
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  const rest = Math.round(s - m * 60);
  if (m < 60) return rest ? `${m}m${rest}s` : `${m}m`;
  const h = Math.floor(m / 60);
  return `${h}h${m % 60 ? `${m % 60}m` : ''}`;
}
