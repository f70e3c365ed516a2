/** One group of failed instances: a message and how many instances it covers. */
export interface ErrorGroup {
  message: string;
  count: number;
}

/**
 * Parses Vertex's `prediction.errors_stats-*` text: one Python tuple repr per distinct message,
 * `('Post request fails. ... retry=3, elapsed=600.04s.', 16)`. Lines of another shape (a JSON
 * line with `error.message`, as the proto's errors_0001 files have) are counted by that message.
 */
export function parseErrorStats(text: string): ErrorGroup[] {
  const groups = new Map<string, number>();
  const add = (message: string, count: number) => groups.set(message, (groups.get(message) ?? 0) + count);
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const tuple = /^\((['"])([\s\S]*)\1,\s*(\d+)\)$/.exec(line);
    if (tuple) {
      add(unescapePython(tuple[2]!), Number(tuple[3]));
      continue;
    }
    try {
      const parsed = JSON.parse(line) as { error?: { message?: unknown } };
      if (parsed && typeof parsed.error?.message === 'string') {
        add(parsed.error.message, 1);
        continue;
      }
    } catch {
      // not JSON: counted as written
    }
    add(line, 1);
  }
  return [...groups].map(([message, count]) => ({ message, count })).sort((a, b) => b.count - a.count || a.message.localeCompare(b.message));
}

function unescapePython(text: string): string {
  return text.replace(/\\(['"\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
}
