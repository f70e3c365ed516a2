import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * Engine tests need a Docker engine and the offline base images (.ci/run and docker/*.sh set
 * them up). Fail loudly rather than skip: a skipped engine test proves nothing.
 */
export default function setup(): void {
  const root = path.resolve(import.meta.dirname, '../..');
  if (!existsSync(path.join(root, 'dist/cli/main.js'))) {
    throw new Error('dist/cli/main.js is missing: run `npm run build` (npm test does it).');
  }
  try {
    execFileSync('docker', ['info', '--format', '{{.ServerVersion}}'], { stdio: 'pipe' });
  } catch {
    throw new Error('No Docker engine answers. Run `bash docker/setup-engine.sh` (or start Docker), then `npm test` again.');
  }
  for (const image of ['vbe-local/busybox:latest', 'vbe-local/python-base:bookworm']) {
    try {
      execFileSync('docker', ['image', 'inspect', image], { stdio: 'pipe' });
    } catch {
      throw new Error(`Test image ${image} is missing. Run \`bash docker/build-test-images.sh\`.`);
    }
  }
}
