#!/usr/bin/env node
// npm run demo: builds the seed article's three cases (broken and fixed) and runs each through
// `vbe run`, so you can see what Vertex would say and what vbe diagnoses.
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const cli = path.join(root, 'dist/cli/main.js');
const quietly = { stdio: 'ignore' };

function have(image) {
  return spawnSync('docker', ['image', 'inspect', image], quietly).status === 0;
}

function pickBase() {
  if (process.env.VBE_BASE_IMAGE) return process.env.VBE_BASE_IMAGE;
  if (have('python:3.11-slim')) return 'python:3.11-slim';
  // Offline machines (CI) have the debootstrap-built base from docker/build-test-images.sh.
  if (have('vbe-local/python-base:bookworm')) return 'vbe-local/python-base:bookworm';
  return 'python:3.11-slim'; // docker build pulls it
}

if (spawnSync('docker', ['info'], quietly).status !== 0) {
  console.error('No Docker engine answers. Start Docker (or run `bash docker/setup-engine.sh` on Debian), then `npm run demo` again.');
  process.exit(3);
}
const base = pickBase();
console.error(`base image: ${base}\n`);

const cases = [
  { dir: '01-input-paths', name: 'input-paths', args: [] },
  { dir: '02-entrypoint-args', name: 'entrypoint-args', args: ['--args=--scale', '--args=3'] },
  { dir: '03-missing-libgomp', name: 'missing-libgomp', args: [] },
];
const outcomes = [];
for (const c of cases) {
  for (const variant of ['broken', 'fixed']) {
    const tag = `vbe-example/${c.name}:${variant}`;
    console.error(`=== ${c.dir} (${variant}): docker build -t ${tag}`);
    execFileSync('docker', ['build', '-q', '--build-arg', `BASE_IMAGE=${base}`, '-t', tag, path.join(root, 'examples', c.dir, variant)], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, DOCKER_BUILDKIT: '0' },
    });
    const output = path.join(root, 'demo-output', c.name, variant);
    const args = ['run', '--image', tag, '--pull', 'never', '--input', path.join(root, 'examples', c.dir, 'input'), '--output', output, ...c.args];
    console.error(`$ vbe ${args.join(' ')}`);
    const run = spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit' });
    outcomes.push(`${c.dir} ${variant}: exit ${run.status}`);
    console.error('');
  }
}
console.error(`Summary (broken ones should exit 1, fixed ones 0):\n  ${outcomes.join('\n  ')}`);
console.error(`Outputs and job records are under ${path.join(root, 'demo-output')}.`);
