import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDoctor, type DoctorOptions, type DoctorReport } from '../../src/index.js';
import { retagWithArchitecture } from '../helpers/retagPlatform.js';
import { BUSYBOX, buildContext, buildImage, docker, PYTHON_BASE, ROOT, startVbe, tempDir } from '../helpers/engine.js';

/** Every check has an image built to fail it and one built to pass it. */
const status = (report: DoctorReport, id: string) => report.checks.find((c) => c.id === id)?.status;
const check = (report: DoctorReport, id: string) => report.checks.find((c) => c.id === id)!;

describe('vbe doctor', () => {
  const tags: string[] = [];
  const tag = (name: string) => {
    const t = `vbe-doctor/${name}:test`;
    tags.push(t);
    return t;
  };
  let work: string;
  let instances: string;
  const server = tag('server');
  const doctor = (image: string, extra: Partial<DoctorOptions> = {}) => runDoctor({ image, pull: 'never', ...extra });

  beforeAll(async () => {
    work = await tempDir();
    instances = path.join(work, 'instances.jsonl');
    await writeFile(instances, '{"a": 1}\n{"a": 2}\n{"a": 3}\n');
    for (const [dir, name] of [
      ['01-input-paths/broken', 'input-paths-broken'],
      ['01-input-paths/fixed', 'input-paths-fixed'],
      ['02-entrypoint-args/broken', 'entrypoint-args-broken'],
      ['02-entrypoint-args/fixed', 'entrypoint-args-fixed'],
      ['03-missing-libgomp/broken', 'libgomp-broken'],
      ['03-missing-libgomp/fixed', 'libgomp-fixed'],
    ] as const) {
      await buildContext(tag(name), path.join(ROOT, 'examples', dir), { BASE_IMAGE: PYTHON_BASE });
    }
    await buildContext(server, path.join(ROOT, 'test/fixtures/model-server'), { BASE_IMAGE: PYTHON_BASE });
  });
  afterAll(async () => {
    await docker('rmi', '-f', ...tags).catch(() => undefined);
  });

  describe("the seed article's cases, caught without running a job", () => {
    it('02: an entrypoint that drops the job args (warn; fail when the job passes args)', async () => {
      const broken = await doctor(tag('entrypoint-args-broken'), { staticOnly: true });
      expect(status(broken, 'entrypoint')).toBe('warn');
      expect(check(broken, 'entrypoint').summary).toContain("a job's args replace CMD");
      const withArgs = await doctor(tag('entrypoint-args-broken'), { staticOnly: true, args: ['--scale', '3'] });
      expect(status(withArgs, 'entrypoint')).toBe('fail');
      expect(withArgs.ok).toBe(false);
      expect(status(await doctor(tag('entrypoint-args-fixed'), { staticOnly: true, args: ['--scale', '3'] }), 'entrypoint')).toBe('pass');
    });

    it('03: the missing libgomp1, from the ELF dependencies of the shared objects in the image', async () => {
      const broken = await doctor(tag('libgomp-broken'), { staticOnly: true });
      expect(status(broken, 'shared-libraries')).toBe('fail');
      expect(check(broken, 'shared-libraries').evidence).toEqual(['/usr/local/lib/libompscale.so needs libgomp.so.1']);
      expect(check(broken, 'shared-libraries').fix).toContain('libgomp1');
      expect(broken.checks.some((c) => c.id === 'files-run')).toBe(false); // nothing ran
      const fixed = await doctor(tag('libgomp-fixed'), { staticOnly: true });
      expect(status(fixed, 'shared-libraries')).toBe('pass');
    });

    it('01: the fixed input path, by the contract guess plus a live run of the file contract', async () => {
      const broken = await doctor(tag('input-paths-broken'));
      expect(broken.contract).toMatchObject({ guess: 'files', used: 'files' });
      expect(status(broken, 'files-run')).toBe('fail');
      expect(check(broken, 'files-run').evidence!.join('\n')).toContain('INPUT_NOT_STAGED');
      const fixed = await doctor(tag('input-paths-fixed'), { sample: path.join(ROOT, 'examples/01-input-paths/input/items.json') });
      expect(status(fixed, 'files-run')).toBe('pass');
      expect(fixed.ok).toBe(true);
    });
  });

  it('platform: an arm64 image fails, with the buildx fix, and is not run', async () => {
    const arm = tag('arm64');
    await retagWithArchitecture(BUSYBOX, arm, 'arm64');
    const report = await doctor(arm);
    expect(status(report, 'platform')).toBe('fail');
    expect(check(report, 'platform').fix).toContain('--platform linux/amd64');
    expect(report.checks.some((c) => c.id === 'files-run')).toBe(false);
    expect(status(await doctor(BUSYBOX, { staticOnly: true }), 'platform')).toBe('pass');
  });

  it('aip-env and shell-form entrypoints', async () => {
    const bad = await buildImage(tag('aip'), `FROM ${BUSYBOX}\nENV AIP_HTTP_PORT=9000\nENTRYPOINT echo hello\n`);
    const report = await doctor(bad, { staticOnly: true });
    expect(status(report, 'aip-env')).toBe('fail');
    expect(check(report, 'aip-env').summary).toContain('AIP_HTTP_PORT');
    expect(status(report, 'entrypoint')).toBe('warn');
    expect(check(report, 'entrypoint').summary).toContain('shell form');
    const good = await doctor(tag('input-paths-fixed'), { staticOnly: true });
    expect(status(good, 'aip-env')).toBe('pass');
    expect(status(good, 'entrypoint')).toBe('pass');
  });

  it('user: a USER that does not exist fails; one that cannot write its WORKDIR warns; root passes', async () => {
    const ghost = await buildImage(tag('ghost'), `FROM ${BUSYBOX}\nUSER ghost\nENTRYPOINT ["true"]\n`);
    expect(status(await doctor(ghost, { staticOnly: true }), 'user')).toBe('fail');
    const nobody = await buildImage(tag('nobody'), `FROM ${BUSYBOX}\nWORKDIR /app\nUSER nobody\nENTRYPOINT ["true"]\n`);
    const report = await doctor(nobody, { staticOnly: true });
    expect(status(report, 'user')).toBe('warn');
    expect(check(report, 'user').summary).toContain('cannot write its WORKDIR /app');
    const owned = await buildImage(tag('owned'), `FROM ${BUSYBOX}\nWORKDIR /app\nRUN chown nobody /app\nUSER nobody\nENTRYPOINT ["true"]\n`);
    expect(status(await doctor(owned, { staticOnly: true }), 'user')).toBe('pass');
  });

  it('ports: EXPOSE of another port than AIP_HTTP_PORT warns', async () => {
    const other = await buildImage(tag('port'), `FROM ${server}\nEXPOSE 5000\n`);
    expect(status(await doctor(other, { staticOnly: true, port: 9000 }), 'ports')).toBe('warn');
    expect(status(await doctor(server, { staticOnly: true }), 'ports')).toBe('pass');
  });

  it('image-size: reports the size and the largest layers', async () => {
    const report = await doctor(tag('libgomp-fixed'), { staticOnly: true });
    expect(status(report, 'image-size')).toBe('pass');
    expect(check(report, 'image-size').evidence!.length).toBeGreaterThan(0);
  });

  describe('server contract, live', () => {
    it('a correct server passes every check, with a sample batch', async () => {
      const report = await doctor(server, { sample: instances });
      expect(report.contract).toMatchObject({ guess: 'server', used: 'server' });
      for (const id of ['server-starts', 'server-listens', 'health-route', 'startup-time', 'predict-sample']) expect(status(report, id), id).toBe('pass');
      expect(check(report, 'predict-sample').summary).toMatch(/3 instance\(s\) in one request .*: 3 predictions, response \d+ B/);
      expect(report.ok).toBe(true);
    });
    it.each([
      ['exit-on-start', 'server-starts'],
      ['exit-zero', 'server-starts'],
      ['bind-localhost', 'server-listens'],
      ['wrong-port', 'server-listens'],
      ['health-404', 'health-route'],
      ['wrong-count', 'predict-sample'],
    ])('FAULT=%s fails %s', async (fault, id) => {
      const report = await doctor(server, { sample: instances, env: [`FAULT=${fault}`], startupTimeout: '3s' });
      expect(status(report, id), JSON.stringify(report.checks, null, 1)).toBe('fail');
      expect(report.ok).toBe(false);
    });
    it('contract: checking a server as a file job warns', async () => {
      const report = await doctor(server, { contract: 'files', staticOnly: true });
      expect(status(report, 'contract')).toBe('warn');
    });
  });

  describe('memory, live, against the machine type', () => {
    const hog = (megabytes: number) =>
      buildImage(
        tag(`hog-${megabytes}`),
        `FROM ${PYTHON_BASE}\nENTRYPOINT ["python3", "-c", "import os, time\\nb = b'x' * (${megabytes} * 2**20)\\ntime.sleep(2.5)\\nopen(os.environ['AIP_BATCH_OUTPUT_DIR'] + '/ok', 'w').write('ok')"]\n`,
      );
    // e2-highcpu-2 has 2 GiB; the limit is what Vertex leaves of it, 1.2 GiB (README "Resources").
    it('a peak near the limit warns; over it fails; well under passes', async () => {
      const near = await doctor(await hog(1050), { machineType: 'e2-highcpu-2' });
      expect(status(near, 'memory'), JSON.stringify(check(near, 'memory'))).toBe('warn');
      expect(status(near, 'files-run')).toBe('pass');
      const over = await doctor(await hog(1700), { machineType: 'e2-highcpu-2' });
      expect(status(over, 'memory')).toBe('fail');
      const small = await doctor(await hog(100), { machineType: 'e2-highcpu-2' });
      expect(status(small, 'memory')).toBe('pass');
    });
  });

  it('the CLI prints the checklist, --json the data, exit 1 on a failure and 0 without, and leaves nothing behind', async () => {
    // Each run's own pid label: other test files run doctors at the same time, so a name filter would see theirs.
    const pids: number[] = [];
    const vbe = (args: string[]) => {
      const started = startVbe(args);
      pids.push(started.child.pid!);
      return started.done;
    };
    const failing = await vbe(['doctor', '--image', tag('libgomp-broken'), '--static-only', '--pull', 'never', '--json']);
    expect(failing.code).toBe(1);
    expect(failing.stderr).toContain('✗ shared-libraries');
    const data = JSON.parse(failing.stdout);
    expect(data.checks.map((c: { id: string }) => c.id)).toEqual(['platform', 'entrypoint', 'aip-env', 'user', 'image-size', 'shared-libraries', 'contract']);
    const passing = await vbe(['doctor', '--image', tag('libgomp-fixed'), '--static-only', '--pull', 'never']);
    expect(passing.code).toBe(0);
    const missing = await vbe(['doctor', '--image', 'vbe-doctor/absent:none', '--pull', 'never']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('✗ image');
    expect(missing.stderr).toContain('could not be pulled');
    for (const pid of pids) {
      expect(await docker('ps', '-aq', '--filter', `label=dev.vbe.pid=${pid}`)).toBe('');
      expect(await docker('volume', 'ls', '-q', '--filter', `label=dev.vbe.pid=${pid}`)).toBe('');
    }
  });
});
