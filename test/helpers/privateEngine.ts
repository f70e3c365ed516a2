import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { openSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * A second, private Docker engine on its own socket, data root, cgroup parent and network
 * namespace, with no bridge network: a test can stop it under a running job without touching the
 * engine the other tests use.
 */
export interface PrivateEngine {
  host: string;
  docker: (...args: string[]) => string;
  /** Stops the daemon the way a user's restart does (SIGTERM), and waits for it to exit. */
  stop: () => Promise<void>;
  /** Whatever happened, leaves nothing running and nothing on disk. */
  destroy: () => Promise<void>;
}

export async function startPrivateEngine(images: string[]): Promise<PrivateEngine> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'vbe-engine-'));
  const socket = path.join(root, 'docker.sock');
  const host = `unix://${socket}`;
  const log = openSync(path.join(root, 'dockerd.log'), 'a');
  // In a network namespace of its own: `--bridge none` makes dockerd delete the docker0 bridge,
  // which must not happen to the engine the other tests use.
  const daemon = spawn(
    'unshare',
    [
      '--net',
      'dockerd',
      '--host', host,
      '--data-root', path.join(root, 'data'),
      '--exec-root', path.join(root, 'exec'),
      '--pidfile', path.join(root, 'docker.pid'),
      '--bridge', 'none',
      '--iptables=false',
      '--ip-masq=false',
      '--cgroup-parent', `/vbe-test-engine-${path.basename(root)}`,
      '--shutdown-timeout', '2',
    ],
    { detached: true, stdio: ['ignore', log, log] },
  );
  const docker = (...args: string[]) => execFileSync('docker', ['-H', host, ...args], { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] }).trim();
  const exited = new Promise<void>((resolve) => daemon.on('exit', () => resolve()));
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      docker('info', '--format', '{{.ServerVersion}}');
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`the private engine did not start; see ${path.join(root, 'dockerd.log')}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  for (const image of images) execFileSync('sh', ['-c', `docker save ${image} | docker -H ${host} load -q`], { stdio: 'pipe' });
  const stop = async () => {
    if (daemon.exitCode !== null || daemon.signalCode !== null) return;
    daemon.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
  };
  return {
    host,
    docker,
    stop,
    destroy: async () => {
      await stop();
      try {
        process.kill(-daemon.pid!, 'SIGKILL');
      } catch {
        // the group is gone already
      }
      try {
        execFileSync('sh', ['-c', `grep " ${root}" /proc/mounts | cut -d" " -f2 | sort -r | xargs -r -n1 umount -l`], { stdio: 'ignore' });
      } catch {
        // nothing mounted
      }
      await rm(root, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}
