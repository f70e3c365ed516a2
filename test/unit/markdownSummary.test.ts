import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DoctorReport } from '../../src/doctor/runDoctor.js';
import type { BatchPredictionJobResource, RunJobResource } from '../../src/report/jobResource.js';
import { markdownSummary, markdownText } from '../../src/report/markdownSummary.js';
import { parseReportTargets, stepSummaryFile, writeReports } from '../../src/report/writeReports.js';

const limits = { machineType: 'e2-highcpu-2', cpus: 2, memoryBytes: 2 * 1024 ** 3, requested: { cpus: 2, memoryBytes: 2 * 1024 ** 3 }, cappedToHost: false };

function runJob(over: Partial<RunJobResource> = {}, emulator: Partial<RunJobResource['emulator']> = {}): RunJobResource {
  return {
    name: 'projects/local/locations/local/customJobs/1',
    displayName: 'nightly',
    state: 'JOB_STATE_SUCCEEDED',
    createTime: '2026-01-01T00:00:00.000Z',
    endTime: '2026-01-01T00:00:03.000Z',
    updateTime: '2026-01-01T00:00:03.000Z',
    outputInfo: { outputDirectory: '/out' },
    ...over,
    emulator: {
      contract: 'files',
      flavour: 'batch-files',
      flavourReason: '--input given: the batch file contract',
      jobId: '1',
      image: { uri: 'my-model:latest', pulled: false },
      limits,
      attempts: [{ attempt: 1, exitCode: 0, oomKilled: false, durationMs: 2000 }],
      environment: {},
      userEnvNames: [],
      exitCode: 0,
      oomKilled: false,
      timedOut: false,
      peakMemoryBytes: 512 * 1024 ** 2,
      durationMs: 3000,
      phases: [{ name: 'stage', durationMs: 400 }, { name: 'run', durationMs: 2000 }],
      inputs: { fileCount: 2, totalBytes: 2048, files: [] },
      outputs: { hostDirectory: '/out', containerDirectory: '/vbe/output', complete: true, fileCount: 3, totalBytes: 3 * 1024 ** 2, files: [], refused: [] },
      diagnoses: [],
      warnings: [],
      logs: { stdout: '/out/.vbe/stdout.log', stderr: '/out/.vbe/stderr.log', truncated: false },
      logTail: [],
      recordFile: '/out/.vbe/job.json',
      ...emulator,
    },
  };
}

describe('Markdown job summary', () => {
  it('a SUCCEEDED run: state, a link-free table of counts and durations, no diagnoses section', () => {
    const md = markdownSummary(runJob());
    expect(md).toBe(
      [
        '### ✅ vbe run nightly: JOB_STATE_SUCCEEDED',
        '',
        '| | |',
        '|---|---|',
        '| image | my-model:latest |',
        '| duration | 3.0s |',
        '| machine | e2-highcpu-2: 2 CPU, 2.0 GiB |',
        '| peak memory | 512 MiB of 2.0 GiB |',
        '| exit code | 0 |',
        '| inputs | 2 file(s), 2.0 KiB |',
        '| outputs | 3 file(s), 3.0 MiB |',
        '| phases | stage 400ms, run 2.0s |',
        '',
      ].join('\n'),
    );
  });

  it('an OOM-killed run: the Vertex message, the exit, the diagnoses with their fixes', () => {
    const md = markdownSummary(
      runJob(
        { state: 'JOB_STATE_FAILED', error: { code: 3, message: 'The replica workerpool0-0 ran out of memory and exited with a non-zero status of 137.' } },
        {
          exitCode: 137,
          oomKilled: true,
          attempts: [{ attempt: 1, exitCode: 137, oomKilled: true, durationMs: 1 }, { attempt: 2, exitCode: 137, oomKilled: true, durationMs: 1 }],
          diagnoses: [{ code: 'OUT_OF_MEMORY', severity: 'error', message: 'It used more than the 2.0 GiB | limit\nof e2-highcpu-2.', fix: 'Use a machine type with more memory.' }],
        },
      ),
    );
    expect(md.split('\n')[0]).toBe('### ❌ vbe run nightly: JOB_STATE_FAILED');
    expect(md).toContain('> error 3: The replica workerpool0-0 ran out of memory and exited with a non-zero status of 137.');
    expect(md).toContain('| exit code | 137 (OOM kill) |');
    expect(md).toContain('| attempts | 2 |');
    expect(md).toContain('**Diagnoses**');
    // a pipe and a newline in a message never break the Markdown
    expect(md).toContain('- ❌ `OUT_OF_MEMORY`: It used more than the 2.0 GiB \\| limit of e2-highcpu-2.\n  - fix: Use a machine type with more memory.');
  });

  it('a batch prediction: instances, latency percentiles and each failure group with its count', () => {
    const base = runJob().emulator;
    const job = {
      name: 'projects/local/locations/local/batchPredictionJobs/2',
      displayName: 'bp',
      state: 'JOB_STATE_SUCCEEDED',
      completionStats: { successfulCount: '98', failedCount: '2', incompleteCount: '0' },
      dedicatedResources: { machineSpec: { machineType: 'n1-standard-4' }, startingReplicaCount: 2, maxReplicaCount: 2 },
      emulator: {
        ...base,
        contract: 'prediction-server',
        failuresByKind: { http: { count: 2, example: 'Post request fails. Cannot get predictions. Error: Exceeded retries: HTTP 500, retry=0.' } },
        charts: { originTime: '', sampleIntervalMs: 1000, timeline: [], marks: [], replicas: [], latency: { count: 50, p50Ms: 12, p95Ms: 40, p99Ms: 1500, maxMs: 1600, buckets: [] } },
      },
    } as unknown as BatchPredictionJobResource;
    const md = markdownSummary(job);
    expect(md.split('\n')[0]).toBe('### ✅ vbe batch-predict bp: JOB_STATE_SUCCEEDED');
    expect(md).toContain('| machine | e2-highcpu-2: 2 CPU, 2.0 GiB × 2 replica(s) |');
    expect(md).toContain('| instances | 98 succeeded, 2 failed, 0 incomplete |');
    expect(md).toContain('| request latency | p50 12ms, p95 40ms, p99 1.5s (50 requests) |');
    expect(md).toContain('| failed: http | 2: Post request fails. Cannot get predictions. Error: Exceeded retries: HTTP 500, retry=0. |');
  });

  it('doctor: one row per check, the fix of a failing one', () => {
    const report: DoctorReport = {
      image: 'my-server:dev',
      ok: false,
      checks: [
        { id: 'platform', title: 'Platform', status: 'pass', summary: 'linux/amd64' },
        { id: 'shared-libraries', title: 'Shared libraries', status: 'fail', summary: 'libgomp.so.1 needed but not in the image', fix: 'apt-get install libgomp1' },
        { id: 'predict-sample', title: 'Predict', status: 'skip', summary: 'no --sample given' },
      ],
    };
    expect(markdownSummary(report)).toBe(
      [
        '### ❌ vbe doctor my-server:dev: checks failed',
        '',
        '1 pass, 0 warn, 1 fail, 1 skip',
        '',
        '| | check | result |',
        '|---|---|---|',
        '| ✅ | platform | linux/amd64 |',
        '| ❌ | shared-libraries | libgomp.so.1 needed but not in the image (fix: apt-get install libgomp1) |',
        '| ➖ | predict-sample | no --sample given |',
        '',
      ].join('\n'),
    );
  });

  it('text from the job is neutralised: no links, no HTML, no table breaks, bounded length', () => {
    expect(markdownText('see https://evil.example/x <img src=x> [a](b) `c` *d*')).toBe('see https:\u200b//evil.example/x \\<img src=x\\> \\[a\\](b) \\`c\\` \\*d\\*');
    expect(markdownText('x'.repeat(500)).length).toBe(300);
  });
});

describe('where the summary goes', () => {
  it('--report markdown=<file> and html=<file> are report targets', () => {
    expect(parseReportTargets(['markdown=r/s.md', 'html=r/s.html'], '/w')).toEqual([
      { format: 'markdown', file: '/w/r/s.md' },
      { format: 'html', file: '/w/r/s.html' },
    ]);
    expect(() => parseReportTargets(['pdf=x.pdf'])).toThrow(/--report: "pdf=x.pdf" is not junit=<file>, json=<file>, html=<file> or markdown=<file>/);
  });

  it('GITHUB_STEP_SUMMARY by default when set; never with --no-step-summary', () => {
    expect(stepSummaryFile({ GITHUB_STEP_SUMMARY: '/s.md' }, undefined)).toBe('/s.md');
    expect(stepSummaryFile({ GITHUB_STEP_SUMMARY: '/s.md' }, true)).toBe('/s.md');
    expect(stepSummaryFile({ GITHUB_STEP_SUMMARY: '/s.md' }, false)).toBeUndefined();
    expect(stepSummaryFile({}, true)).toBeUndefined();
    expect(stepSummaryFile({ GITHUB_STEP_SUMMARY: '' }, true)).toBeUndefined();
  });

  it('the step summary is appended (earlier steps stay), the markdown file written whole; an unwritable summary is a warning', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vbe-md-'));
    const summary = path.join(dir, 'step.md');
    await writeFile(summary, '# earlier step\n');
    const job = runJob();
    const warnings = await writeReports([{ format: 'markdown', file: path.join(dir, 'r/job.md') }], job, { stepSummaryFile: summary });
    expect(warnings).toEqual([]);
    expect(await readFile(summary, 'utf8')).toBe(`# earlier step\n${markdownSummary(job)}\n`);
    expect(await readFile(path.join(dir, 'r/job.md'), 'utf8')).toBe(markdownSummary(job));
    const bad = await writeReports([], job, { stepSummaryFile: path.join(dir, 'missing-dir/step.md') });
    expect(bad).toEqual([expect.stringMatching(/^Could not append the job summary to GITHUB_STEP_SUMMARY \(.*missing-dir\/step.md\): ENOENT/)]);
  });
});
