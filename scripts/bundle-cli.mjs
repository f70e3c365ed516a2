#!/usr/bin/env node
// Build step after `tsc` (npm run build): bundles the CLI entry, dist/cli/main.js, with the
// emulator modules it imports into one file plus one chunk per lazily loaded command
// (dist/cli/chunks/). Node 20 loads each ES module separately (resolve, read, compile, link):
// ~75 of them for `vbe run`, about 40 ms of every CLI job's start-up that the bundle saves. npm
// packages stay external, loaded from node_modules as before. The library (dist/index.js) and its
// types are tsc's output, untouched; only the CLI process runs the bundle. Source maps point back
// to src/ (esbuild follows tsc's maps).
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { build } from 'esbuild';

const ROOT = path.resolve(import.meta.dirname, '..');
const CLI_DIR = path.join(ROOT, 'dist/cli');
const ENTRY = path.join(CLI_DIR, 'main.js');
const MARK = '// vbe CLI bundle (scripts/bundle-cli.mjs)';

if ((await readFile(ENTRY, 'utf8')).startsWith(`#!/usr/bin/env node\n${MARK}`) || (await readFile(ENTRY, 'utf8')).startsWith(MARK)) {
  throw new Error(`${ENTRY} is already a bundle: run tsc first (npm run build does)`);
}

// Written beside dist/cli first: esbuild reads main.js while it writes, so it cannot write in place.
const staging = await mkdtemp(path.join(ROOT, 'dist/.cli-bundle-'));
try {
  await build({
    entryPoints: { main: ENTRY },
    outdir: staging,
    bundle: true,
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // Packages (and node: built-ins) are imported from node_modules at run time, as tsc's output does.
    packages: 'external',
    sourcemap: 'linked',
    banner: { js: MARK },
    logLevel: 'warning',
  });
  await rm(path.join(CLI_DIR, 'chunks'), { recursive: true, force: true });
  // The same layout under dist/cli: main.js's `./chunks/...` imports and its `../../package.json` still resolve.
  await cp(staging, CLI_DIR, { recursive: true });
} finally {
  await rm(staging, { recursive: true, force: true });
}
