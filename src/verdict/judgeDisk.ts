import { formatBytes } from './diagnoseRunJob.js';
import type { Diagnosis } from './jobState.js';

/** Share of the disk above which a warning is given. */
export const DISK_WARNING_RATIO = 0.8;

/** What a replica put on its boot disk, and the disk. */
export interface DiskObservation {
  /** The container's writable layer (engine `SizeRw`). */
  writableLayerBytes: number;
  /** What it wrote into vbe's volumes (its outputs). */
  volumeBytes: number;
  /** The image, which lives on the same disk on Vertex. */
  imageBytes: number;
  diskBytes: number;
  /** Where the size came from: the default, diskSpec.bootDiskSizeGb or --disk-size. */
  source: string;
  /** 'storage-opt': the engine enforced the size; 'measured': vbe compared afterwards. */
  enforcement: 'storage-opt' | 'measured';
}

export interface DiskVerdict {
  usedBytes: number;
  /** Over the disk: the job FAILS (Vertex's replica would get "No space left on device"). */
  full: boolean;
  diagnosis?: Diagnosis;
}

/** The boot disk check: over the disk FAILS, over 80% warns. Pure. */
export function judgeDisk(d: DiskObservation): DiskVerdict {
  const usedBytes = d.writableLayerBytes + d.volumeBytes + d.imageBytes;
  const ratio = usedBytes / d.diskBytes;
  const evidence = [
    `written to the container's filesystem: ${formatBytes(d.writableLayerBytes)}; to its output volume: ${formatBytes(d.volumeBytes)}; image: ${formatBytes(d.imageBytes)}`,
    `disk: ${formatBytes(d.diskBytes)} (${d.source}); ${d.enforcement === 'storage-opt' ? 'enforced by the engine (storage-opt size)' : 'measured after the run (this engine cannot enforce a size)'}`,
  ];
  const fix = 'Raise jobSpec.workerPoolSpecs[0].diskSpec.bootDiskSizeGb (default 100), or write less: stream outputs to AIP_BATCH_OUTPUT_DIR / Cloud Storage and delete scratch files.';
  if (ratio > 1) {
    return {
      usedBytes,
      full: true,
      diagnosis: {
        code: 'DISK_FULL',
        severity: 'error',
        message: `The replica put ${formatBytes(usedBytes)} (${usedBytes} bytes) on a boot disk of ${formatBytes(d.diskBytes)}: on Vertex it fails with "No space left on device".`,
        fix,
        evidence,
      },
    };
  }
  if (ratio > DISK_WARNING_RATIO) {
    return {
      usedBytes,
      full: false,
      diagnosis: { code: 'DISK_NEARLY_FULL', severity: 'warning', message: `The replica put ${formatBytes(usedBytes)} on a boot disk of ${formatBytes(d.diskBytes)} (${Math.round(ratio * 100)}%): larger inputs may fill it on Vertex.`, fix, evidence },
    };
  }
  return { usedBytes, full: false };
}
