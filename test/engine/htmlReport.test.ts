/// <reference lib="dom" />
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ChartDataRecord } from '../../src/report/chartData.js';
import { formatBytes } from '../../src/verdict/diagnoseRunJob.js';
import { BUSYBOX, buildContext, PYTHON_BASE, ROOT, runVbe, tempDir } from '../helpers/engine.js';

const SERVER = 'vbe-test/i18-report-server:1';
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

interface PageFacts {
  requests: string[];
  consoleErrors: string[];
  scripts: number;
  verdict: string;
  figures: Record<string, { data: Record<string, string>; svgText: string; svgs: number; text: string }>;
  diagnoses: string[];
  checks: Array<{ id: string; status: string }>;
}

/**
 * Opens a report in Debian's chromium (headless, a fresh profile) and reads what a person
 * sees: every request the page made, console errors, the verdict, and each chart's SVG text
 * and `data-*` figures. A screenshot is written beside it.
 */
async function openInBrowser(file: string, screenshot: string): Promise<PageFacts> {
  const profile = await mkdtemp(path.join(os.tmpdir(), 'vbe-i18-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, viewport: { width: 1100, height: 900 } });
  try {
    const requests: string[] = [];
    const consoleErrors: string[] = [];
    context.on('request', (r) => requests.push(r.url()));
    const page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    await page.goto(`file://${file}`, { waitUntil: 'load' });
    await page.screenshot({ path: screenshot, fullPage: true });
    const facts = await page.evaluate(() => {
      const figures: Record<string, { data: Record<string, string>; svgText: string; svgs: number; text: string }> = {};
      for (const f of Array.from(document.querySelectorAll('figure.chart'))) {
        const el = f as HTMLElement;
        const svg = el.querySelector('svg');
        figures[el.dataset.chart!] = {
          data: { ...el.dataset } as Record<string, string>,
          svgText: svg ? Array.from(svg.querySelectorAll('text')).map((t) => t.textContent ?? '').join('\n') : '',
          svgs: el.querySelectorAll('svg').length,
          text: el.textContent ?? '',
        };
      }
      return {
        scripts: document.querySelectorAll('script').length,
        verdict: (document.querySelector('#verdict') as HTMLElement | null)?.innerText ?? '',
        figures,
        diagnoses: Array.from(document.querySelectorAll('ul.diagnoses li')).map((li) => (li as HTMLElement).dataset.code ?? ''),
        checks: Array.from(document.querySelectorAll('tr[data-check]')).map((tr) => ({ id: (tr as HTMLElement).dataset.check!, status: (tr.querySelector('td') as HTMLElement).innerText })),
      };
    });
    return { requests, consoleErrors, ...facts };
  } finally {
    await context.close();
  }
}

function expectSelfContained(facts: PageFacts, file: string): void {
  expect(facts.requests).toEqual([`file://${file}`]); // the page itself, nothing else
  expect(facts.consoleErrors).toEqual([]);
  expect(facts.scripts).toBe(0); // the verdict and the charts need no JavaScript
}

async function expectScreenshot(file: string): Promise<void> {
  expect((await stat(file)).size).toBeGreaterThan(10_000);
}

describe('HTML report, checked in a real headless browser', () => {
  let work: string;
  let input: string;
  beforeAll(async () => {
    work = await tempDir('vbe-i18-report-');
    input = path.join(work, 'in.jsonl');
    await writeFile(input, '{"id":1}\n');
    await buildContext(SERVER, path.join(ROOT, 'test/fixtures/model-server'), { BASE_IMAGE: PYTHON_BASE });
  });

  it('a SUCCEEDED run: verdict, phase timeline with every phase of job.json, memory against the applied limit, CPU against the quota', async () => {
    const html = path.join(work, 'reports/run.html');
    const out = path.join(work, 'ok');
    const result = await runVbe(['run', '--image', BUSYBOX, '--input', input, '--output', out, '--quiet', '--report', `html=${html}`, '--command', 'sh', '--command', '-c', '--command', 'i=0; while [ $i -lt 4 ]; do head -c 30000000 /dev/zero | tr "\\0" x >/dev/null; sleep 1; i=$((i+1)); done; echo ok > $AIP_BATCH_OUTPUT_DIR/o']);
    expect(result.code, result.stderr).toBe(0);
    const job = JSON.parse(await readFile(path.join(out, '.vbe/job.json'), 'utf8'));
    const charts = job.emulator.charts as ChartDataRecord;
    expect(charts.replicas[0]!.memoryBytes.points.length).toBeGreaterThan(0);
    expect((await stat(html)).size).toBeLessThan(1024 * 1024);

    const facts = await openInBrowser(html, path.join(work, 'run.png'));
    expectSelfContained(facts, html);
    expect(facts.verdict).toContain('JOB_STATE_SUCCEEDED');
    const timeline = facts.figures.timeline!;
    expect(timeline.data.phases).toBe(job.emulator.phases.map((p: { name: string }) => p.name).join(','));
    for (const phase of job.emulator.phases) expect(timeline.text).toContain(phase.name);
    expect(timeline.svgText).toContain('run'); // the longest phase is named on its bar
    expect(timeline.data.lanes).toBe('job,workerpool0-0');
    const memory = facts.figures.memory!;
    expect(Number(memory.data.limitBytes)).toBe(job.emulator.limits.memoryBytes);
    expect(memory.svgText).toContain(`limit ${formatBytes(job.emulator.limits.memoryBytes)}`);
    expect(Number(memory.data.peakBytes)).toBe(Math.max(...charts.replicas[0]!.memoryBytes.points.map(([, v]) => v)));
    expect(memory.data.oomAtMs).toBeUndefined();
    const cpu = facts.figures.cpu!;
    expect(Number(cpu.data.quotaCpus)).toBe(job.emulator.limits.cpus);
    expect(cpu.svgText).toContain(`quota ${job.emulator.limits.cpus} CPU`);
    await expectScreenshot(path.join(work, 'run.png'));
  });

  it('an OOM-killed run: the OOM kill marked on the memory chart and the timeline, the diagnosis with its fix at the top', async () => {
    const out = path.join(work, 'oom');
    const result = await runVbe(['run', '--image', BUSYBOX, '--input', input, '--output', out, '--quiet', '--machine-type', 'e2-highcpu-2', '--command', 'sh', '--command', '-c', '--command', 'sleep 2; dd if=/dev/zero of=/dev/null bs=2500M count=1']);
    expect(result.code).toBe(1);
    // rendered later, from the record alone
    const record = path.join(out, '.vbe/job.json');
    const html = path.join(work, 'reports/oom.html');
    const rendered = await runVbe(['report', record, '--html', html]);
    expect(rendered.code, rendered.stderr).toBe(0);
    const job = JSON.parse(await readFile(record, 'utf8'));
    expect(job.emulator.oomKilled).toBe(true);
    const oom = (job.emulator.charts as ChartDataRecord).marks.find((m) => m.kind === 'oom-kill')!;
    expect(oom.lane).toBe('workerpool0-0');

    const facts = await openInBrowser(html, path.join(work, 'oom.png'));
    expectSelfContained(facts, html);
    expect(facts.verdict).toContain('JOB_STATE_FAILED');
    expect(facts.verdict).toContain('ran out of memory and exited with a non-zero status of 137');
    expect(facts.diagnoses).toContain('OUT_OF_MEMORY');
    const memory = facts.figures.memory!;
    // The limit line is what the replica got (e2-highcpu-2's 2 GiB less what Vertex keeps), beside the machine's figure.
    expect(Number(memory.data.limitBytes)).toBe(job.emulator.limits.memoryBytes);
    expect(Number(memory.data.limitBytes)).toBeLessThan(2 * 1024 ** 3);
    expect(Number(memory.data.machineBytes)).toBe(2 * 1024 ** 3);
    expect(Number(memory.data.oomAtMs)).toBe(oom.atMs);
    expect(memory.svgText).toContain('OOM kill');
    expect(memory.svgText).toContain(`limit ${(job.emulator.limits.memoryBytes / 1024 ** 3).toFixed(1)} GiB`);
    expect(memory.svgText).toContain('machine type 2.0 GiB');
    expect(facts.figures.timeline!.text).toContain('OOM kill');
    await expectScreenshot(path.join(work, 'oom.png'));
  }, 420_000); // filling 1-2 GiB takes minutes on a loaded 2-core machine (about 15-25 MB/s was measured)

  it('a restarted replica: each attempt on its lane and the restart marked, as in job.json', async () => {
    const out = path.join(work, 'restart');
    const html = path.join(work, 'reports/restart.html');
    const result = await runVbe(['run', '--image', BUSYBOX, '--input', input, '--output', out, '--quiet', '--max-restarts', '1', '--restart-exit-codes', 'vertex', '--report', `html=${html}`, '--command', 'sh', '--command', '-c', '--command', 'sleep 1; exit 139']);
    expect(result.code).toBe(1);
    const job = JSON.parse(await readFile(path.join(out, '.vbe/job.json'), 'utf8'));
    expect(job.emulator.attempts).toHaveLength(2);
    const facts = await openInBrowser(html, path.join(work, 'restart.png'));
    expectSelfContained(facts, html);
    const timeline = facts.figures.timeline!;
    expect(Number(timeline.data.restarts)).toBe(1);
    expect(timeline.text).toContain('attempt 1');
    expect(timeline.text).toContain('attempt 2');
    expect(timeline.text).toContain('restart after exit 139');
    expect(timeline.svgText).toContain('restart after exit 139');
  });

  it('a batch prediction with failures on two replicas: a lane per replica, throughput, latency buckets and percentiles of job.json, error groups', async () => {
    const instances = path.join(work, 'bp.jsonl');
    await writeFile(instances, Array.from({ length: 40 }, (_, i) => JSON.stringify(i % 8 === 0 ? { id: i, fail: true } : { id: i })).join('\n') + '\n');
    const html = path.join(work, 'reports/bp.html');
    const md = path.join(work, 'reports/bp.md');
    const summary = path.join(work, 'step-summary.md');
    await writeFile(summary, '');
    const result = await runVbe(
      ['batch-predict', '--image', SERVER, '--pull', 'never', '--input', instances, '--instances-format', 'jsonl', '--batch-size', '1', '--retries', '0', '--replica-count', '2', '--machine-type', 'e2-standard-2', '--env', 'FAULT=fail-some', '--output', path.join(work, 'bp'), '--display-name', 'bp', '--quiet', '--report', `html=${html}`, '--report', `markdown=${md}`, '--json'],
      { GITHUB_STEP_SUMMARY: summary },
    );
    expect(result.code, result.stderr).toBe(0);
    const job = JSON.parse(result.stdout);
    expect(job.completionStats).toEqual({ successfulCount: '35', failedCount: '5', incompleteCount: '0' });
    const charts = job.emulator.charts as ChartDataRecord;
    expect(charts.latency!.count).toBe(40);

    const facts = await openInBrowser(html, path.join(work, 'bp.png'));
    expectSelfContained(facts, html);
    expect(facts.verdict).toContain('JOB_STATE_SUCCEEDED');
    const timeline = facts.figures.timeline!;
    expect(timeline.data.lanes!.split(',')).toEqual(expect.arrayContaining(['job', 'replica-0', 'replica-1']));
    expect(timeline.text).toContain('start / health');
    expect(timeline.text).toContain('predict');
    expect(charts.replicas.map((r) => r.replica).sort()).toEqual(['replica-0', 'replica-1']);
    const latency = facts.figures.latency!;
    expect(Number(latency.data.buckets)).toBe(charts.latency!.buckets.length);
    // one x-axis label per bucket drawn in the SVG
    expect(latency.svgText.split('\n').filter((t) => t.startsWith('≤')).length).toBe(charts.latency!.buckets.length);
    expect(Number(latency.data.p99Ms)).toBe(charts.latency!.p99Ms);
    expect(latency.svgText).toMatch(/p50 /);
    expect(latency.svgText).toMatch(/p99 /);
    expect(Number(facts.figures.throughput!.data.bucketMs)).toBe(charts.instances!.succeeded.bucketMs);
    expect(Number(facts.figures.failures!.data.failed)).toBe(5);
    const groups = facts.figures['error-groups']!;
    expect(Number(groups.data.groups)).toBe(Object.keys(job.emulator.failuresByKind).length);
    expect(groups.svgText).toContain('5');
    expect(facts.figures.memory!.data.limitBytes).toBe(String(job.emulator.limits.memoryBytes));
    await expectScreenshot(path.join(work, 'bp.png'));

    // the Markdown summary: in the file, and appended to GITHUB_STEP_SUMMARY
    const markdown = await readFile(md, 'utf8');
    expect(markdown).toContain('| instances | 35 succeeded, 5 failed, 0 incomplete |');
    expect(await readFile(summary, 'utf8')).toBe(`${markdown}\n`);
  });

  it('--no-step-summary leaves GITHUB_STEP_SUMMARY alone', async () => {
    const summary = path.join(work, 'untouched.md');
    await writeFile(summary, '# before\n');
    const result = await runVbe(['doctor', '--image', BUSYBOX, '--static-only', '--pull', 'never', '--no-step-summary'], { GITHUB_STEP_SUMMARY: summary });
    expect([0, 1]).toContain(result.code);
    expect(await readFile(summary, 'utf8')).toBe('# before\n');
  });

  it('a doctor run: the checklist with every check of the result, the largest layers as a chart, the live run memory', async () => {
    const sample = path.join(work, 'sample.jsonl');
    await writeFile(sample, '{"id":1}\n{"id":2}\n');
    const html = path.join(work, 'reports/doctor.html');
    const json = path.join(work, 'reports/doctor.json');
    const result = await runVbe(['doctor', '--image', SERVER, '--pull', 'never', '--contract', 'server', '--sample', sample, '--report', `html=${html}`, '--report', `json=${json}`]);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(await readFile(json, 'utf8'));
    const facts = await openInBrowser(html, path.join(work, 'doctor.png'));
    expectSelfContained(facts, html);
    expect(facts.verdict).toContain('NO CHECK FAILED');
    expect(facts.checks.map((c) => c.id)).toEqual(report.checks.map((c: { id: string }) => c.id));
    expect(facts.checks.map((c) => c.status)).toEqual(report.checks.map((c: { status: string }) => c.status));
    const layers = facts.figures.layers!;
    const nonEmpty = report.layers.filter((l: { sizeBytes: number }) => l.sizeBytes > 0);
    expect(Number(layers.data.layers)).toBe(nonEmpty.length);
    expect(Number(layers.data.largestBytes)).toBe(nonEmpty[0].sizeBytes);
    expect(layers.svgText).toContain(formatBytes(nonEmpty[0].sizeBytes));
    // the live run: its timeline, and memory against its limit when the engine sampled any (a server up for less than about a second has none)
    expect(facts.figures.timeline!.data.lanes).toBe('job,replica-0');
    const sampled = report.live.charts.replicas.some((r: { memoryBytes: { points: unknown[] } }) => r.memoryBytes.points.length > 0);
    if (sampled) expect(Number(facts.figures.memory!.data.limitBytes)).toBe(report.live.memoryLimitBytes);
    else expect(facts.figures.memory).toBeUndefined();
    await expectScreenshot(path.join(work, 'doctor.png'));

    // the same report, rendered later from the doctor's JSON result
    const again = path.join(work, 'reports/doctor-again.html');
    expect((await runVbe(['report', json, '--html', again])).code).toBe(0);
    expect(await readFile(again, 'utf8')).toBe(await readFile(html, 'utf8'));
  });

  it('vbe report: a file that is not a vbe record is a usage error naming it', async () => {
    const bogus = path.join(work, 'bogus.json');
    await writeFile(bogus, '{"hello": 1}');
    const result = await runVbe(['report', bogus, '--html', path.join(work, 'x.html')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${bogus}: not a vbe job record`);
    const missing = await runVbe(['report', path.join(work, 'missing.json'), '--html', path.join(work, 'x.html')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('RECORD_UNREADABLE');
  });
});
