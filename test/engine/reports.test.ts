import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUSYBOX, buildContext, PYTHON_BASE, ROOT, runVbe, tempDir } from '../helpers/engine.js';

const SERVER = 'vbe-test/reports-server:1';

describe('CI reports', () => {
  let work: string;
  let input: string;
  beforeAll(async () => {
    work = await tempDir();
    input = path.join(work, 'in.jsonl');
    await writeFile(input, '{"id":1}\n{"id":2,"fail":true}\n');
    await buildContext(SERVER, path.join(ROOT, 'test/fixtures/model-server'), { BASE_IMAGE: PYTHON_BASE });
  });

  it('vbe run --report junit=... json=...: one test case per job, the Vertex message and diagnoses as the failure', async () => {
    const junit = path.join(work, 'reports/run.xml');
    const json = path.join(work, 'reports/run.json');
    const result = await runVbe(['run', '--image', BUSYBOX, '--input', input, '--output', path.join(work, 'o'), '--display-name', 'nightly <scoring>', '--report', `junit=${junit}`, '--report', `json=${json}`, '--command', 'sh', '--command', '-c', '--command', 'cat /data/input.json']);
    expect(result.code).toBe(1);
    const xml = await readFile(junit, 'utf8');
    expect(xml).toMatch(/<testsuites name="vbe" tests="1" failures="1"/);
    expect(xml).toContain('<testcase classname="vbe.run" name="nightly &lt;scoring&gt;"');
    expect(xml).toMatch(/<failure message="JOB_STATE_FAILED: The replica workerpool0-0 exited with a non-zero status of 1\./);
    expect(xml).toContain('error INPUT_NOT_STAGED');
    expect(JSON.parse(await readFile(json, 'utf8')).state).toBe('JOB_STATE_FAILED');
  });

  it('vbe batch-predict --report junit=...: the job passes, each failed record group is its own failing case', async () => {
    const junit = path.join(work, 'reports/bp.xml');
    const result = await runVbe(['batch-predict', '--image', SERVER, '--pull', 'never', '--input', input, '--instances-format', 'jsonl', '--batch-size', '1', '--retries', '0', '--env', 'FAULT=fail-some', '--output', path.join(work, 'bp'), '--display-name', 'bp', '--report', `junit=${junit}`]);
    expect(result.code, result.stderr).toBe(0);
    const xml = await readFile(junit, 'utf8');
    expect(xml).toMatch(/tests="2" failures="1"/);
    expect(xml).toMatch(/<testcase classname="vbe.batch-predict" name="bp" time="[\d.]+">\n\s+<system-out>/);
    expect(xml).toMatch(/<testcase classname="vbe.batch-predict.bp" name="PREDICT_HTTP_ERROR \(1 instance\(s\)\)"/);
  });

  it('vbe doctor --report junit=...: one case per check', async () => {
    const junit = path.join(work, 'reports/doctor.xml');
    const result = await runVbe(['doctor', '--image', BUSYBOX, '--static-only', '--pull', 'never', '--report', `junit=${junit}`]);
    const xml = await readFile(junit, 'utf8');
    const cases = xml.match(/<testcase /g) ?? [];
    expect(cases.length).toBeGreaterThanOrEqual(7);
    expect(xml).toContain('name="shared-libraries: Shared libraries"');
    expect(result.code).toBe(/<failure/.test(xml) ? 1 : 0);
  });

  it('a malformed --report is a usage error', async () => {
    const result = await runVbe(['run', '--image', BUSYBOX, '--input', input, '--output', path.join(work, 'x'), '--report', 'pdf=out.pdf']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--report: "pdf=out.pdf" is not junit=<file>, json=<file>, html=<file> or markdown=<file>');
  });

  it('logs: pino JSON lines when piped or with --log-format json, readable lines with --log-format human', async () => {
    const args = ['run', '--verbose', '--image', BUSYBOX, '--input', input, '--output', path.join(work, 'logs'), '--quiet', '--command', 'sh', '--command', '-c', '--command', 'echo ok > $AIP_BATCH_OUTPUT_DIR/ok'];
    const piped = await runVbe(args);
    const json = piped.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    expect(json.some((e) => e.level === 20 && e.msg === 'phase done' && e.phase === 'run')).toBe(true);
    const human = await runVbe([...args, '--log-format', 'human']);
    expect(human.stderr).toContain('vbe debug: phase done (phase run)');
    expect(human.stderr).not.toContain('{"level"');
    const bad = await runVbe([...args, '--log-format', 'xml']);
    expect(bad.code).toBe(2);
  });
});
