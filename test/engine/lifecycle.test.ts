import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUSYBOX, buildContext, docker, labelled, PYTHON_BASE, ROOT, runVbe, startVbe, tempDir, waitFor } from '../helpers/engine.js';

/** Signals and leftovers, with the real CLI process and a real engine. */
describe('vbe lifecycle: cancellation, kills, prune, engine faults', () => {
  let work: string;
  let input: string;
  beforeAll(async () => {
    work = await tempDir();
    input = path.join(work, 'in.jsonl');
    await writeFile(input, '{}\n');
  });

  const sleeper = (output: string) => ['run', '--image', BUSYBOX, '--input', input, '--output', output, '--json', '--stop-grace', '1s', '--command', 'sleep', '--command', '600'];

  async function waitRunning(pid: number): Promise<void> {
    await waitFor('the job container to run', async () => {
      const { containers } = await labelled(`dev.vbe.pid=${pid}`);
      if (containers.length === 0) return undefined;
      const state = await docker('inspect', '-f', '{{.State.Running}}', containers[0]!);
      return state === 'true' ? true : undefined;
    });
  }

  it('Ctrl-C cancels the job: state CANCELLED, exit 1, no container or volume left', async () => {
    const { child, done } = startVbe(sleeper(path.join(work, 'sigint')));
    await waitRunning(child.pid!);
    child.kill('SIGINT');
    const result = await done;
    expect(result.code).toBe(1);
    const job = JSON.parse(result.stdout);
    expect(job.state).toBe('JOB_STATE_CANCELLED');
    expect(job.error).toEqual({ code: 1, message: 'The job was cancelled.' });
    expect(result.stderr).toContain('cancelling');
    expect(await labelled(`dev.vbe.pid=${child.pid}`)).toEqual({ containers: [], volumes: [] });
  });

  it('SIGTERM cancels the same way', async () => {
    const { child, done } = startVbe(sleeper(path.join(work, 'sigterm')));
    await waitRunning(child.pid!);
    child.kill('SIGTERM');
    const result = await done;
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout).state).toBe('JOB_STATE_CANCELLED');
    expect(await labelled(`dev.vbe.pid=${child.pid}`)).toEqual({ containers: [], volumes: [] });
  });

  it('after SIGKILL of vbe, `vbe prune` removes what it left, and nothing else', async () => {
    const { child, done } = startVbe(sleeper(path.join(work, 'sigkill')));
    await waitRunning(child.pid!);
    child.kill('SIGKILL');
    await done;
    const left = await labelled(`dev.vbe.pid=${child.pid}`);
    expect(left.containers.length).toBe(1);
    expect(left.volumes.length).toBe(1);
    const alive = startVbe(sleeper(path.join(work, 'alive')));
    await waitRunning(alive.child.pid!);
    const prune = await runVbe(['prune', '--json']);
    expect(prune.code, prune.stderr).toBe(0);
    const removed = JSON.parse(prune.stdout).removed;
    expect(removed.containers.length).toBeGreaterThanOrEqual(1);
    expect(await labelled(`dev.vbe.pid=${child.pid}`)).toEqual({ containers: [], volumes: [] });
    // The run that is still going keeps its container and volume.
    const kept = await labelled(`dev.vbe.pid=${alive.child.pid}`);
    expect(kept.containers.length).toBe(1);
    expect(kept.volumes.length).toBe(1);
    alive.child.kill('SIGINT');
    expect((await alive.done).code).toBe(1);
    expect(await labelled(`dev.vbe.pid=${alive.child.pid}`)).toEqual({ containers: [], volumes: [] });
  });

  it('an unreachable engine exits 3 with a message that says how to fix it', async () => {
    const result = await runVbe(['run', '--image', BUSYBOX, '--input', input, '--output', path.join(work, 'noengine')], { DOCKER_HOST: `unix://${path.join(work, 'no-such.sock')}` });
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('ENGINE_UNREACHABLE');
    expect(result.stderr).toContain('no-such.sock');
    expect(result.stderr).toMatch(/fix: Start Docker/);
  });

  it.each([
    [['--input', 'missing.jsonl'], /--input\[0\]: "missing.jsonl" does not exist/],
    [['--env', 'AIP_MODE=x'], /--env AIP_MODE: "AIP_MODE" starts with AIP_/],
    [['--machine-type', 'n9-giant-1'], /unknown machine type "n9-giant-1"[\s\S]*n1-standard-4/],
    [['--timeout', 'soon'], /--timeout: "soon" is not a duration/],
    [['--input', 'gs:///x.jsonl'], /has no bucket/],
    [['--pull', 'sometimes'], /argument 'sometimes' is invalid/],
  ])('usage error %j exits 2 and names the field', async (extra, message) => {
    const args = ['run', '--image', BUSYBOX, '--output', path.join(work, 'usage'), ...(extra.includes('--input') ? [] : ['--input', input]), ...extra];
    const result = await runVbe(args, { DOCKER_HOST: `unix://${path.join(work, 'no-such.sock')}` }, work);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it('Ctrl-C during batch-predict, with a request in flight, cancels at once and leaves nothing', async () => {
    const image = 'vbe-test/lifecycle-server:1';
    await buildContext(image, path.join(ROOT, 'test/fixtures/model-server'), { BASE_IMAGE: PYTHON_BASE });
    const started = Date.now();
    const { child, done, stderrSoFar } = startVbe(['batch-predict', '--image', image, '--pull', 'never', '--input', input, '--instances-format', 'jsonl', '--output', path.join(work, 'bp-sigint'), '--env', 'FAULT=slow', '--env', 'SLOW_SECONDS=120', '--json']);
    await waitFor('a predict request in flight', async () => (/predicting/.test(stderrSoFar()) ? true : undefined));
    child.kill('SIGINT');
    const result = await done;
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(result.code).toBe(1);
    const job = JSON.parse(result.stdout);
    expect(job.state).toBe('JOB_STATE_CANCELLED');
    expect(job.completionStats.incompleteCount).toBe('1');
    expect(await labelled(`dev.vbe.pid=${child.pid}`)).toEqual({ containers: [], volumes: [] });
  });
});
