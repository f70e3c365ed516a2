import path from 'node:path';
import type { RunJobResource } from '../report/jobResource.js';
import type { Diagnosis } from '../verdict/jobState.js';
import type { RunObservation, RunVerdict } from '../verdict/judgeRunJob.js';
import { unmeasuredDisk } from './diskCheck.js';
import { gcsRecord } from './gcsBucketsRecord.js';
import { leftoverWarning } from './jobPipeline.js';
import { maskSecrets } from './logCapture.js';
import { limitsRecord } from './machineLimits.js';
import { containerRecord, imageRecord, vertexEnvironmentRecord } from './recordSections.js';
import type { RunJobPhases } from './runJobOutcome.js';

/** The CustomJob resource `vbe run` writes to `<output>/.vbe/job.json`, built from its phases' outputs (pure). */
export function runJobRecord(p: RunJobPhases, judged: { observation: RunObservation; verdict: RunVerdict; diagnoses: Diagnosis[] }, endTime: Date): RunJobResource {
  const { spec, inputs, output, buckets, recordDir, logFiles } = p.plan;
  const { observation, verdict, diagnoses } = judged;
  const image = p.image?.image;
  const command = p.command;
  const collection = p.collected?.collection;
  const capture = p.run?.capture;
  return {
    name: `projects/local/locations/local/customJobs/${p.jobId}`,
    displayName: spec.displayName,
    state: verdict.state,
    ...(verdict.error ? { error: verdict.error } : {}),
    createTime: p.createTime.toISOString(),
    ...(p.run ? { startTime: p.run.startTime.toISOString() } : {}),
    endTime: endTime.toISOString(),
    updateTime: endTime.toISOString(),
    outputInfo: { outputDirectory: output.hostDir, ...(output.gcsUri ? { gcsOutputDirectory: output.gcsUri } : {}) },
    emulator: {
      contract: 'files',
      flavour: spec.flavour.name,
      flavourReason: spec.flavour.reason,
      jobId: p.jobId,
      image: imageRecord(spec.imageUri, p.image?.pulled ?? false, image),
      limits: limitsRecord(p.limits),
      sharedMemoryBytes: spec.shmSizeBytes ?? null,
      disk: p.collected?.disk?.record ?? unmeasuredDisk(spec),
      ...(image ? { container: containerRecord(image, command?.command?.map((c) => maskSecrets(c, spec.secrets)), command?.args?.map((a) => maskSecrets(a, spec.secrets))) } : {}),
      attempts: p.run?.attempts ?? [],
      environment: vertexEnvironmentRecord(command?.environment ?? [], spec.env),
      userEnvNames: spec.env.map((e) => e.name),
      exitCode: observation.exitCode ?? null,
      oomKilled: observation.oomKilled,
      timedOut: observation.timedOut,
      peakMemoryBytes: observation.peakMemoryBytes ?? null,
      durationMs: endTime.getTime() - p.createTime.getTime(),
      phases: p.phases,
      inputs: {
        fileCount: inputs.files.length,
        totalBytes: inputs.totalBytes,
        files: inputs.files.slice(0, 1000).map((f) => ({ source: f.source, containerPath: f.containerPath, sizeBytes: f.sizeBytes })),
      },
      outputs: {
        hostDirectory: output.hostDir,
        containerDirectory: output.containerDir,
        complete: collection?.complete ?? false,
        fileCount: collection?.fileCount ?? 0,
        totalBytes: collection?.totalBytes ?? 0,
        files: collection?.files ?? [],
        refused: collection?.refused ?? [],
        refusedCount: collection?.refusedCount ?? 0,
      },
      ...(buckets.buckets.length > 0 ? { gcs: gcsRecord(spec.gcsRoot, buckets, p.gcsChanges) } : {}),
      diagnoses,
      warnings: [...spec.warnings, ...p.limits.warnings, ...p.plan.stagingWarnings, ...leftoverWarning(p.end.leftovers)],
      logs: { ...logFiles, truncated: capture ? capture.truncated.stdout || capture.truncated.stderr : false },
      logTail: capture?.tail.length ? capture.tail.map((t) => (t.channel === 'stderr' ? `[stderr] ${t.line}` : t.line)) : observation.startError ? [observation.startError] : [],
      recordFile: path.join(recordDir, 'job.json'),
      charts: p.charts.toRecord(p.phases),
    },
  };
}
