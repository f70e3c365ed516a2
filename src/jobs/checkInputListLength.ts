import { usageError } from '../errors.js';
import type { ResolvedInputs } from '../staging/resolveLocations.js';

/** Linux refuses one environment string longer than 32 pages (MAX_ARG_STRLEN): execve fails with E2BIG. */
const MAX_ENV_STRING_BYTES = 131_072;

export function checkInputListLength(inputs: ResolvedInputs): void {
  const bytes = Buffer.byteLength(`AIP_BATCH_INPUT_URIS=${inputs.files.map((f) => f.containerPath).join(',')}`) + 1;
  if (bytes > MAX_ENV_STRING_BYTES) {
    throw usageError(
      'INPUT_LIST_TOO_LONG',
      `input: ${inputs.files.length} files make AIP_BATCH_INPUT_URIS ${bytes} bytes; Linux refuses an environment variable over ${MAX_ENV_STRING_BYTES} bytes, so the container could not start.`,
      'Pass fewer, larger input files (e.g. concatenate them, or shard the job), or give the model its data another way (a model directory with --model-dir).',
    );
  }
}
