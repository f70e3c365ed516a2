import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * Engine tests need a Docker engine and the offline base images (.ci/run and docker/*.sh set
 * them up). Fail loudly rather than skip: a skipped engine test proves nothing.
 */
export default function setup(): () => void {
  const root = path.resolve(import.meta.dirname, '../..');
  if (!existsSync(path.join(root, 'dist/cli/main.js'))) {
    throw new Error('dist/cli/main.js is missing: run `npm run build` (npm test does it).');
  }
  try {
    execFileSync('docker', ['info', '--format', '{{.ServerVersion}}'], { stdio: 'pipe' });
  } catch {
    throw new Error('No Docker engine answers. Run `bash docker/setup-engine.sh` (or start Docker), then `npm test` again.');
  }
  for (const image of ['vbe-local/busybox:latest', 'vbe-local/python-base:bookworm', 'vbe-local/python-web:bookworm']) {
    try {
      execFileSync('docker', ['image', 'inspect', image], { stdio: 'pipe' });
    } catch {
      throw new Error(`Test image ${image} is missing. Run \`bash docker/build-test-images.sh\`.`);
    }
  }
  const before = new Set(labelledResources().map((r) => r.name));
  return () => teardown(before);
}

function labelledResources(): Array<{ name: string; labels: string }> {
  const list = (kind: string[], format: string) =>
    execFileSync('docker', [...kind, '--filter', 'label=dev.vbe.managed=true', '--format', format], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [name, labels] = line.split('\t');
        return { name: `${kind[0]} ${name}`, labels: labels ?? '' };
      });
  return [
    ...list(['ps', '-a'], '{{.Names}}\t{{.Labels}}'),
    ...list(['volume', 'ls'], '{{.Name}}\t{{.Labels}}'),
    ...list(['network', 'ls'], '{{.Name}}\t{{.Labels}}'),
  ];
}

/**
 * After every test has finished, no container, volume or network with vbe's labels may be left
 * by a process that is gone: every test's job cleaned up after itself, on every path. (Resources
 * that were there before the tests started are not the tests' doing and are ignored.)
 */
function teardown(before: ReadonlySet<string>): void {
  const dead = (labels: string) => {
    const pid = Number(/dev\.vbe\.pid=(\d+)/.exec(labels)?.[1]);
    if (!pid) return true;
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  };
  const leftovers = labelledResources().filter((r) => !before.has(r.name) && dead(r.labels)).map((r) => r.name);
  if (leftovers.length) {
    process.exitCode = 1;
    throw new Error(`vbe leaked ${leftovers.length} resource(s) during the tests:\n  ${leftovers.join('\n  ')}`);
  }
}
