import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { usageError } from '../errors.js';
import { DEFAULT_MACHINE_TYPE, getMachineType, type MachineType } from '../spec/machineTypes.js';
import { checkEnvName } from '../spec/runJobSpec.js';
import type { Contract } from './doctorCheck.js';
import type { DoctorOptions } from './doctorOptions.js';

/** What `vbe doctor` checks, from its options: bad input is a usage error here, before the engine. */
export interface DoctorPlan {
  imageUri: string;
  /** The contract asked for; undefined with --contract auto (guessed from the image). */
  contract?: Contract;
  machine: MachineType;
  port: number;
  cwd: string;
  /** The sample input's absolute path and text, when one was given. */
  sample?: { file: string; text: string };
}

/** The validate phase of `vbe doctor`. */
export async function validateDoctor(options: DoctorOptions): Promise<DoctorPlan> {
  const cwd = options.cwd ?? process.cwd();
  if (!options.image) throw usageError('MISSING_IMAGE', 'image: no container image given.', 'Pass --image <ref>.');
  if (options.contract && !['files', 'server', 'auto'].includes(options.contract)) {
    throw usageError('INVALID_CONTRACT', `--contract: "${options.contract}" is not files, server or auto.`, 'Use --contract files, server or auto.');
  }
  // The same rule in static and live modes: Vertex rejects a job that sets AIP_* itself.
  (options.env ?? []).forEach((pair, i) => {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw usageError('INVALID_ENV', `--env[${i}]: "${pair}" is not NAME=VALUE.`, 'Write each variable as --env NAME=VALUE.');
    checkEnvName(pair.slice(0, eq), `--env ${pair.slice(0, eq)}`);
  });
  const machine = getMachineType(options.machineType ?? DEFAULT_MACHINE_TYPE, '--machine-type');
  const file = options.sample ? path.resolve(cwd, options.sample) : undefined;
  const text = file
    ? await readFile(file, 'utf8').catch(() => {
        throw usageError('SAMPLE_UNREADABLE', `--sample: cannot read "${file}".`, 'Pass an existing file of sample input.');
      })
    : undefined;
  return {
    imageUri: options.image,
    ...(options.contract && options.contract !== 'auto' ? { contract: options.contract } : {}),
    machine,
    port: options.port ?? 8080,
    cwd,
    ...(file !== undefined && text !== undefined ? { sample: { file, text } } : {}),
  };
}
