import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(__dirname, '../../src');
const IMPORT = /(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+['"](\.{1,2}\/[^'"]+)['"]/g;

/** Every .ts file under src and the files it imports by relative path. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.ts')) {
        const targets = [...readFileSync(full, 'utf8').matchAll(IMPORT)].map((m) => path.resolve(dir, m[1]!.replace(/\.js$/, '.ts')));
        graph.set(full, targets);
      }
    }
  };
  walk(SRC);
  return graph;
}

/** The import loops (strongly connected components of more than one file, or a file importing itself). */
function importLoops(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const loops: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(path.relative(SRC, w));
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) loops.push(component);
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return loops;
}

describe('the shape of src/ (issue 12)', () => {
  const graph = importGraph();

  it('reads the import graph (a parser that found nothing would pass the next test vacuously)', () => {
    expect(graph.size).toBeGreaterThan(100);
    expect(graph.get(path.join(SRC, 'jobs/runJob.ts'))).toContain(path.join(SRC, 'jobs/jobPipeline.ts'));
  });

  it('has no import loops', () => {
    expect(importLoops(graph)).toEqual([]);
  });

  it('finds a loop when there is one (the checker itself)', () => {
    const a = path.join(SRC, 'a.ts');
    const b = path.join(SRC, 'b.ts');
    expect(importLoops(new Map([[a, [b]], [b, [a]]])).map((c) => c.sort())).toEqual([['a.ts', 'b.ts']]);
  });
});
