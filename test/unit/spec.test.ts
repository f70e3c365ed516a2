import { describe, expect, it } from 'vitest';
import { VbeError } from '../../src/errors.js';
import { buildEnvironment, expandVertexReferences } from '../../src/spec/expandVertexReferences.js';
import { getMachineType, machineTypes } from '../../src/spec/machineTypes.js';
import { formatDuration, parseDurationMs } from '../../src/spec/parseDuration.js';
import { parseSizeBytes } from '../../src/spec/parseSize.js';
import { mergeRunJobSpec, type RunJobOptions } from '../../src/spec/runJobSpec.js';
import { parseWithSchema, runJobSpecFileSchema } from '../../src/spec/vertexSchemas.js';
import { parseGcsUri } from '../../src/spec/gcsUri.js';

const dirs = { cwd: '/work', specDir: '/specs' };
const base: RunJobOptions = { image: 'img', inputs: ['a.jsonl'], output: 'out' };

function usage(fn: () => unknown): VbeError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(VbeError);
    expect((error as VbeError).exitCode).toBe(2);
    return error as VbeError;
  }
  throw new Error('expected a usage error');
}

describe('Vertex $(VAR) expansion', () => {
  const vars = new Map([['A', 'x'], ['B', 'y']]);
  it.each([
    ['$(A)', 'x'],
    ['pre-$(A)-$(B)-post', 'pre-x-y-post'],
    ['$(MISSING)', '$(MISSING)'],
    ['$$(A)', '$(A)'],
    ['$$', '$'],
    ['cost: $5', 'cost: $5'],
    ['$(A', '$(A'],
    ['$', '$'],
  ])('%s -> %s', (input, output) => {
    expect(expandVertexReferences(input, vars)).toBe(output);
  });

  it('user env sees Vertex variables and earlier entries, not later ones', () => {
    const { env } = buildEnvironment(
      [{ name: 'AIP_BATCH_OUTPUT_DIR', value: '/out' }],
      [
        { name: 'FIRST', value: '$(AIP_BATCH_OUTPUT_DIR)/f' },
        { name: 'SECOND', value: '$(FIRST)+$(THIRD)' },
        { name: 'THIRD', value: '3' },
      ],
    );
    expect(Object.fromEntries(env.map((e) => [e.name, e.value]))).toEqual({ AIP_BATCH_OUTPUT_DIR: '/out', FIRST: '/out/f', SECOND: '/out/f+$(THIRD)', THIRD: '3' });
  });
});

describe('durations and sizes', () => {
  it.each([
    ['30m', 1_800_000],
    ['600s', 600_000],
    ['1h30m', 5_400_000],
    ['250ms', 250],
    ['1.5h', 5_400_000],
    ['1800', 1_800_000],
  ])('%s', (text, ms) => expect(parseDurationMs(text, '--timeout')).toBe(ms));
  it.each(['', 'soon', '10x', '-5s', '0s', '5m soon'])('rejects %j naming the flag', (text) => {
    expect(usage(() => parseDurationMs(text, '--timeout')).message).toContain('--timeout');
  });
  it('formats', () => {
    expect(formatDuration(2000)).toBe('2.0s');
    expect(formatDuration(90_000)).toBe('1m30s');
  });
  it('sizes', () => {
    expect(parseSizeBytes('4GiB', 'x')).toBe(4 * 1024 ** 3);
    expect(parseSizeBytes('500MB', 'x')).toBe(500e6);
    expect(() => parseSizeBytes('lots', 'x')).toThrow(/not a size/);
  });
});

describe('machine types', () => {
  it('match the Vertex table', () => {
    expect(getMachineType('n1-standard-4')).toMatchObject({ vcpus: 4, memoryGiB: 15 });
    expect(getMachineType('n1-highmem-8')).toMatchObject({ vcpus: 8, memoryGiB: 52 });
    expect(getMachineType('n1-highcpu-16')).toMatchObject({ vcpus: 16, memoryGiB: 14.4 });
    expect(getMachineType('e2-highcpu-2')).toMatchObject({ vcpus: 2, memoryGiB: 2 });
    expect(getMachineType('g2-standard-24').accelerator).toEqual({ type: 'NVIDIA_L4', count: 2 });
    expect(machineTypes.size).toBe(39);
  });
  it('an unknown one lists the valid names', () => {
    const error = usage(() => getMachineType('n1-standard-3', 'dedicatedResources.machineSpec.machineType'));
    expect(error.message).toContain('dedicatedResources.machineSpec.machineType');
    expect(error.suggestion).toContain('n1-standard-4');
  });
});

describe('gs:// URIs', () => {
  it('parses bucket and path', () => expect(parseGcsUri('gs://b-1/x/y.jsonl', 'f')).toEqual({ bucket: 'b-1', objectPath: 'x/y.jsonl' }));
  it.each(['gs://', 'gs:///x', 'gs://UPPER/x', 'gs://b/../x'])('rejects %s', (uri) => {
    expect(usage(() => parseGcsUri(uri, '--input[0]')).message).toContain('--input[0]');
  });
});

describe('job spec files', () => {
  const parse = (data: unknown) => parseWithSchema(runJobSpecFileSchema, data, 'job.yaml');

  it('accepts a BatchPredictionJob-shaped body with unmanagedContainerModel and ignores fields it does not use', () => {
    const file = parse({
      displayName: 'j',
      unmanagedContainerModel: { artifactUri: 'gs://b/model', containerSpec: { imageUri: 'img', args: ['--x'] } },
      inputConfig: { instancesFormat: 'jsonl', gcsSource: { uris: ['gs://b/in.jsonl'] } },
      outputConfig: { predictionsFormat: 'jsonl', gcsDestination: { outputUriPrefix: 'gs://b/out' } },
      dedicatedResources: { machineSpec: { machineType: 'n1-standard-2' }, startingReplicaCount: 1 },
      labels: { team: 'ml' },
    });
    const spec = mergeRunJobSpec({}, file, dirs);
    expect(spec).toMatchObject({ displayName: 'j', imageUri: 'img', args: ['--x'], machine: { name: 'n1-standard-2' } });
    expect(spec.inputs).toEqual([{ text: 'gs://b/in.jsonl', baseDir: '/specs', field: 'inputConfig.gcsSource.uris[0]' }]);
    expect(spec.modelDir?.text).toBe('gs://b/model');
  });

  it('accepts a CustomJob body: the first worker pool, its machine and scheduling.timeout', () => {
    const file = parse({
      jobSpec: {
        workerPoolSpecs: [{ machineSpec: { machineType: 'e2-standard-4' }, replicaCount: '1', containerSpec: { imageUri: 'img', command: ['python', 'm.py'] } }],
        scheduling: { timeout: '900s' },
        baseOutputDirectory: { outputUriPrefix: 'gs://b/base' },
      },
    });
    const spec = mergeRunJobSpec({ inputs: ['x'] }, file, dirs);
    expect(spec).toMatchObject({ imageUri: 'img', command: ['python', 'm.py'], timeoutMs: 900_000, machine: { name: 'e2-standard-4' }, output: { text: 'gs://b/base' } });
  });

  it('names every bad field path, including typos', () => {
    const error = usage(() =>
      parse({ displayname: 'x', containerSpec: { imageUri: 'i', env: [{ name: '1BAD', value: 'v' }, { name: 'OK', valeu: 'v' }] }, dedicatedResources: { machineSpec: {} } }),
    );
    expect(error.message).toContain('displayname: unknown field');
    expect(error.message).toContain('containerSpec.env[0].name: must be a valid environment variable name');
    expect(error.message).toContain('containerSpec.env[1].valeu: unknown field');
    expect(error.message).toContain('dedicatedResources.machineSpec.machineType');
  });

  it('flags override the file; env flags replace same-named entries', () => {
    const file = parse({ containerSpec: { imageUri: 'from-file', env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }] }, dedicatedResources: { machineSpec: { machineType: 'n1-standard-2' } } });
    const spec = mergeRunJobSpec({ ...base, image: 'from-flag', env: ['B=3', 'C=4'], machineType: 'n1-highmem-2' }, file, dirs);
    expect(spec.imageUri).toBe('from-flag');
    expect(spec.env).toEqual([{ name: 'A', value: '1' }, { name: 'B', value: '3' }, { name: 'C', value: '4' }]);
    expect(spec.machine.name).toBe('n1-highmem-2');
    expect(spec.inputs[0]!.baseDir).toBe('/work');
  });

  it.each([
    [{ ...base, image: undefined }, 'MISSING_IMAGE', /--image/],
    [{ ...base, inputs: [], contract: 'batch-files' as const }, 'MISSING_INPUT', /--input/],
    [{ ...base, output: undefined }, 'MISSING_OUTPUT', /--output/],
    [{ ...base, contract: 'training' as never }, 'INVALID_CONTRACT', /custom-job, batch-files/],
    [{ ...base, gcsBuckets: ['gs://b'] }, 'INVALID_GCS_URI', /without gs:\/\//],
    [{ ...base, env: ['AIP_STORAGE_URI=x'] }, 'RESERVED_ENV', /AIP_/],
    [{ ...base, env: ['NOEQUALS'] }, 'INVALID_ENV', /NAME=VALUE/],
    [{ ...base, env: ['9X=1'] }, 'INVALID_ENV', /letters, digits/],
    [{ ...base, machineType: 'huge' }, 'UNKNOWN_MACHINE_TYPE', /n1-standard-4/],
    [{ ...base, timeout: 'forever' }, 'INVALID_DURATION', /90s/],
    [{ ...base, pull: 'sometimes' as never }, 'INVALID_PULL_POLICY', /missing, always, never/],
  ])('rejects bad options (%#: %s)', (options, code, suggestion) => {
    const error = usage(() => mergeRunJobSpec(options, {}, dirs));
    expect(error.code).toBe(code);
    expect(`${error.message} ${error.suggestion}`).toMatch(suggestion);
  });

  it('the flavour: the flag, then a jobSpec, then inputs; a CustomJob needs no inputs and no output', () => {
    const customJob = parse({ jobSpec: { workerPoolSpecs: [{ containerSpec: { imageUri: 'img' } }] } });
    expect(mergeRunJobSpec({ inputs: ['x'], output: 'o' }, customJob, dirs).flavour).toEqual({ name: 'custom-job', reason: 'the spec is a CustomJob (jobSpec.workerPoolSpecs)' });
    expect(mergeRunJobSpec(base, {}, dirs).flavour.name).toBe('batch-files');
    expect(mergeRunJobSpec({ ...base, contract: 'custom-job' }, {}, dirs).flavour).toEqual({ name: 'custom-job', reason: '--contract custom-job' });
    const bare = mergeRunJobSpec({ image: 'img' }, {}, dirs);
    expect(bare.flavour.name).toBe('custom-job');
    expect(bare.inputs).toEqual([]);
    expect(bare.outputDefaulted).toBe(true);
    expect(bare.baseOutputDirectory).toBeUndefined();
    expect(mergeRunJobSpec({}, parse({ jobSpec: { workerPoolSpecs: [{ containerSpec: { imageUri: 'i' } }], baseOutputDirectory: { outputUriPrefix: 'gs://b/base' } } }), dirs).baseOutputDirectory).toBe('gs://b/base');
  });

  it('restarts by default for 6/11/134/139 up to 3 times; 0 turns them off, any widens them', () => {
    expect(mergeRunJobSpec(base, {}, dirs)).toMatchObject({ maxRestarts: 3, restartExitCodes: [6, 11, 134, 139] });
    expect(mergeRunJobSpec({ ...base, maxRestarts: 0 }, {}, dirs).maxRestarts).toBe(0);
    expect(mergeRunJobSpec({ ...base, restartExitCodes: 'any' }, {}, dirs).restartExitCodes).toBeUndefined();
  });

  it('worker pools after the first are named in a warning; empty ones ({}) are unused on Vertex too', () => {
    const file = parse({ jobSpec: { workerPoolSpecs: [{ containerSpec: { imageUri: 'i' } }, {}, { containerSpec: { imageUri: 'ps' }, replicaCount: 2 }] } });
    const spec = mergeRunJobSpec({}, file, dirs);
    expect(spec.skippedPools).toBe(1);
    expect(spec.warnings.join()).toContain('not run: workerpool2 (2 replica(s))');
  });

  it('rejects AIP_ names set in the spec, naming the field', () => {
    const file = parse({ containerSpec: { imageUri: 'i', env: [{ name: 'AIP_HTTP_PORT', value: '1' }] } });
    expect(usage(() => mergeRunJobSpec(base, file, dirs)).message).toContain('containerSpec.env[0].name');
  });

  it('accelerators from the machine spec or a GPU machine type are requested; --no-gpu drops them with a warning', () => {
    const file = parse({ dedicatedResources: { machineSpec: { machineType: 'n1-standard-4', acceleratorType: 'NVIDIA_TESLA_T4', acceleratorCount: 2 } } });
    expect(mergeRunJobSpec(base, file, dirs).accelerator).toEqual({ type: 'NVIDIA_TESLA_T4', count: 2 });
    expect(mergeRunJobSpec({ ...base, machineType: 'g2-standard-24' }, {}, dirs).accelerator).toEqual({ type: 'NVIDIA_L4', count: 2 });
    const cpu = mergeRunJobSpec({ ...base, noGpu: true }, file, dirs);
    expect(cpu.accelerator).toBeUndefined();
    expect(cpu.warnings.join()).toContain('running CPU-only (--no-gpu)');
  });
});
