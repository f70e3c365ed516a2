import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildContext, BUSYBOX, PYTHON_BASE, ROOT, runVbe, tempDir } from '../helpers/engine.js';

/**
 * A remote engine, reached over TCP on 127.0.0.1: a plain TCP relay to the engine's socket stands
 * in for a `dockerd -H tcp://...`, so everything (staging, logs, collection, published ports) goes
 * through the TCP endpoint exactly as it would to another host.
 */
describe('Docker hosts users have', () => {
  let relay: net.Server;
  let port: number;
  let work: string;
  let input: string;
  const SERVER = 'vbe-test/hosts-server:1';
  const unsetHost = { DOCKER_HOST: undefined, DOCKER_CONTEXT: undefined };

  beforeAll(async () => {
    work = await tempDir();
    input = path.join(work, 'in.jsonl');
    await writeFile(input, '{"x": 1}\n{"x": 2}\n');
    await buildContext(SERVER, path.join(ROOT, 'test/fixtures/model-server'), { BASE_IMAGE: PYTHON_BASE });
    relay = net.createServer((client) => {
      const engine = net.connect('/var/run/docker.sock');
      client.pipe(engine).pipe(client);
      client.on('error', () => engine.destroy());
      engine.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    port = (relay.address() as net.AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => relay.close(() => resolve())));

  it('DOCKER_HOST=tcp://127.0.0.1:PORT: a run works end to end over TCP', async () => {
    const out = path.join(work, 'tcp-run');
    const result = await runVbe(['run', '--image', BUSYBOX, '--input', input, '--output', out, '--json', '--command', 'sh', '--command', '-c', '--command', 'cp $AIP_BATCH_INPUT_URIS $AIP_BATCH_OUTPUT_DIR/copy.jsonl'], { DOCKER_HOST: `tcp://127.0.0.1:${port}` });
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).emulator.outputs.files).toEqual([{ path: 'copy.jsonl', sizeBytes: 18 }]);
  });

  it('batch-predict over TCP: requests go to the published port on the engine host', async () => {
    const result = await runVbe(['batch-predict', '--image', SERVER, '--pull', 'never', '--input', input, '--instances-format', 'jsonl', '--output', path.join(work, 'tcp-bp'), '--json'], { DOCKER_HOST: `tcp://127.0.0.1:${port}` });
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).completionStats.successfulCount).toBe('2');
  });

  it('the current docker context from the Docker config is used when DOCKER_HOST is not set', async () => {
    const config = path.join(work, 'docker-config');
    const id = createHash('sha256').update('remote-box').digest('hex');
    await mkdir(path.join(config, 'contexts/meta', id), { recursive: true });
    await writeFile(path.join(config, 'config.json'), JSON.stringify({ currentContext: 'remote-box' }));
    await writeFile(path.join(config, 'contexts/meta', id, 'meta.json'), JSON.stringify({ Name: 'remote-box', Endpoints: { docker: { Host: `tcp://127.0.0.1:${port}`, SkipTLSVerify: false } } }));
    const result = await runVbe(['run', '--image', BUSYBOX, '--input', input, '--output', path.join(work, 'ctx'), '--command', 'sh', '--command', '-c', '--command', 'echo ok > $AIP_BATCH_OUTPUT_DIR/ok'], { ...unsetHost, DOCKER_CONFIG: config });
    expect(result.code, result.stderr).toBe(0);
  });

  it('when no engine answers, the error lists every place that was tried', async () => {
    const failing = await runVbe(['run', '--image', BUSYBOX, '--input', input, '--output', path.join(work, 'none2')], { DOCKER_HOST: 'tcp://127.0.0.1:1' });
    expect(failing.code).toBe(3);
    expect(failing.stderr).toMatch(/Tried: tcp:\/\/127\.0\.0\.1:1 \(DOCKER_HOST: ECONNREFUSED\)/);
  });

  it('a job asking for GPUs on an engine without them: exit 2 saying so; --no-gpu runs it CPU-only', async () => {
    const asked = await runVbe(['run', '--image', BUSYBOX, '--input', input, '--output', path.join(work, 'gpu'), '--machine-type', 'g2-standard-4']);
    expect(asked.code).toBe(2);
    expect(asked.stderr).toContain('error NO_GPU: The job asks for 1 x NVIDIA_L4, but this Docker engine has no NVIDIA GPU runtime.');
    expect(asked.stderr).toContain('--no-gpu');
    const cpu = await runVbe(['run', '--image', BUSYBOX, '--input', input, '--output', path.join(work, 'cpu'), '--machine-type', 'g2-standard-4', '--no-gpu', '--command', 'sh', '--command', '-c', '--command', 'echo ok > $AIP_BATCH_OUTPUT_DIR/ok']);
    expect(cpu.code, cpu.stderr).toBe(0);
    expect(cpu.stderr).toContain('running CPU-only (--no-gpu)');
  });
});
