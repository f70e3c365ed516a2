import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runJob } from '../../src/index.js';
import { retagWithArchitecture } from '../helpers/retagPlatform.js';
import { BUSYBOX, docker, runVbe, tempDir } from '../helpers/engine.js';

/** Registries started by docker/start-registries.sh: open on 5000, htpasswd on 5001. */
const OPEN = '127.0.0.1:5000';
const PRIVATE = '127.0.0.1:5001';
const USER = 'vbe-user';
const PASSWORD = 'vbe-pass';

describe('image pulls from real registries', () => {
  let work: string;
  let input: string;
  let loggedIn: string;
  const tag = `t${Date.now()}`;
  const openRef = `${OPEN}/vbe-test/busybox:${tag}`;
  const privateRef = `${PRIVATE}/vbe-test/private:${tag}`;
  const armRef = `vbe-test/arm64:${tag}`;
  const script = ['sh', '-c', 'echo ok > "$AIP_BATCH_OUTPUT_DIR/ok"'];

  beforeAll(async () => {
    work = await tempDir();
    input = path.join(work, 'in.jsonl');
    await writeFile(input, '{}\n');
    loggedIn = path.join(work, 'docker-config');
    await mkdir(loggedIn);
    await docker('tag', BUSYBOX, openRef);
    await docker('push', openRef);
    await docker('tag', BUSYBOX, privateRef);
    await docker('--config', loggedIn, 'login', PRIVATE, '-u', USER, '-p', PASSWORD);
    await docker('--config', loggedIn, 'push', privateRef);
    await docker('rmi', openRef, privateRef);
  });

  afterAll(async () => {
    await docker('rmi', '-f', openRef, privateRef, armRef).catch(() => undefined);
  });

  it('pulls a missing image from a registry, then reuses it without pulling', async () => {
    const first = await runJob({ image: openRef, inputs: [input], output: path.join(work, 'o1'), command: script });
    expect(first.state).toBe('JOB_STATE_SUCCEEDED');
    expect(first.emulator.image.pulled).toBe(true);
    expect(first.emulator.image.digest).toMatch(new RegExp(`^${OPEN}/vbe-test/busybox@sha256:[0-9a-f]{64}$`));
    const second = await runJob({ image: openRef, inputs: [input], output: path.join(work, 'o2'), command: script });
    expect(second.emulator.image.pulled).toBe(false);
    const always = await runJob({ image: openRef, inputs: [input], output: path.join(work, 'o3'), command: script, pull: 'always' });
    expect(always.emulator.image.pulled).toBe(true);
  });

  it('pulls from a private registry with the credentials in the Docker config', async () => {
    const result = await runVbe(['run', '--image', privateRef, '--input', input, '--output', path.join(work, 'o4'), '--pull', 'always', '--json', '--command', 'sh', '--command', '-c', '--command', 'echo ok > $AIP_BATCH_OUTPUT_DIR/ok'], { DOCKER_CONFIG: loggedIn });
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).emulator.image.pulled).toBe(true);
  });

  it('asks a credential helper named in credHelpers, as the docker CLI does', async () => {
    const config = path.join(work, 'helper-config');
    const bin = path.join(work, 'bin');
    await mkdir(config);
    await mkdir(bin);
    await writeFile(path.join(config, 'config.json'), JSON.stringify({ credHelpers: { [PRIVATE]: 'vbetest' } }));
    const helper = path.join(bin, 'docker-credential-vbetest');
    await writeFile(helper, `#!/bin/sh\nread server\n[ "$server" = "${PRIVATE}" ] && echo '{"ServerURL":"${PRIVATE}","Username":"${USER}","Secret":"${PASSWORD}"}'\n`);
    await chmod(helper, 0o755);
    const result = await runVbe(['run', '--image', privateRef, '--input', input, '--output', path.join(work, 'o5'), '--pull', 'always', '--json', '--command', 'sh', '--command', '-c', '--command', 'echo ok > $AIP_BATCH_OUTPUT_DIR/ok'], {
      DOCKER_CONFIG: config,
      PATH: `${bin}:${process.env.PATH}`,
    });
    expect(result.code, result.stderr).toBe(0);
  });

  it('a pull the registry denies is a FAILED job with the reason and the fix, not a crash', async () => {
    const anonymous = path.join(work, 'anonymous');
    await mkdir(anonymous);
    const result = await runVbe(['run', '--image', privateRef, '--input', input, '--output', path.join(work, 'o6'), '--pull', 'always', '--json'], { DOCKER_CONFIG: anonymous });
    expect(result.code).toBe(1);
    const job = JSON.parse(result.stdout);
    expect(job.state).toBe('JOB_STATE_FAILED');
    expect(job.error.code).toBe(7);
    expect(job.error.message).toContain(`Unable to pull the image ${privateRef}: permission denied`);
    expect(job.emulator.diagnoses[0].code).toBe('IMAGE_PULL_DENIED');
    expect(job.emulator.diagnoses[0].fix).toMatch(/docker login/);
    expect(result.stderr).toContain('IMAGE_PULL_DENIED');
  });

  it('an image that does not exist is a FAILED job naming it', async () => {
    const job = await runJob({ image: `${OPEN}/vbe-test/nope:${tag}`, inputs: [input], output: path.join(work, 'o7') });
    expect(job.state).toBe('JOB_STATE_FAILED');
    expect(job.error!.code).toBe(5);
    expect(job.emulator.diagnoses[0]!.code).toBe('IMAGE_NOT_FOUND');
    const never = await runJob({ image: `vbe-test/absent:${tag}`, inputs: [input], output: path.join(work, 'o8'), pull: 'never' });
    expect(never.emulator.diagnoses[0]!.code).toBe('IMAGE_NOT_FOUND');
    expect(never.error!.message).toContain('--pull is "never"');
  });

  it('refuses an image that is not linux/amd64 before running it, with the exec format error and the buildx fix', async () => {
    await retagWithArchitecture(BUSYBOX, armRef, 'arm64');
    const job = await runJob({ image: armRef, inputs: [input], output: path.join(work, 'o9'), command: script });
    expect(job.state).toBe('JOB_STATE_FAILED');
    expect(job.error!.message).toContain('exec format error');
    expect(job.emulator.image.platform).toBe('linux/arm64');
    expect(job.emulator.exitCode).toBeNull(); // never ran
    expect(job.emulator.diagnoses[0]!.code).toBe('EXEC_FORMAT_ERROR');
    expect(job.emulator.diagnoses[0]!.fix).toContain('docker buildx build --platform linux/amd64');
  });
});
