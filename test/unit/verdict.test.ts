import { describe, expect, it } from 'vitest';
import { diagnoseRunJob, lostOutputs } from '../../src/verdict/diagnoseRunJob.js';
import { judgeRunJob, type RunObservation } from '../../src/verdict/judgeRunJob.js';
import { scanLogLine } from '../../src/verdict/scanLogLine.js';
import { machineLimits } from '../../src/jobs/machineLimits.js';
import { getMachineType } from '../../src/spec/machineTypes.js';

const ok: RunObservation = {
  imageUri: 'img:1',
  image: { entrypoint: null, cmd: ['python', 'model.py'], user: '', exposedPorts: [], architecture: 'amd64', os: 'linux' },
  exitCode: 0,
  oomKilled: false,
  timedOut: false,
  cancelled: false,
  timeoutMs: 1_800_000,
  stagedInputPaths: ['/vbe/inputs/a.json'],
  outputContainerDir: '/vbe/output',
  outputFileCount: 1,
  refusedOutputs: [],
  addedPaths: [],
  logSignals: [],
  machineType: 'n1-standard-4',
  memoryBytes: 15 * 1024 ** 3,
  logFile: '/out/.vbe/stderr.log',
};
const codes = (o: Partial<RunObservation>) => diagnoseRunJob({ ...ok, ...o }).map((d) => d.code);
const signal = (line: string) => scanLogLine(line)!;

describe('judgeRunJob: Vertex states and messages', () => {
  it('exit 0 with outputs SUCCEEDS, without an error', () => {
    expect(judgeRunJob(ok)).toEqual({ state: 'JOB_STATE_SUCCEEDED' });
  });
  it('a non-zero exit FAILS with the replica message', () => {
    expect(judgeRunJob({ ...ok, exitCode: 2 })).toEqual({
      state: 'JOB_STATE_FAILED',
      error: { code: 3, message: 'The replica workerpool0-0 exited with a non-zero status of 2. Termination reason: Error. To find out more about why your job exited please check the logs: /out/.vbe/stderr.log' },
    });
  });
  it('OOM wins over the exit code', () => {
    expect(judgeRunJob({ ...ok, exitCode: 137, oomKilled: true }).error!.message).toMatch(/^The replica workerpool0-0 ran out of memory and exited with a non-zero status of 137\./);
  });
  it('timeout is DEADLINE_EXCEEDED', () => {
    expect(judgeRunJob({ ...ok, exitCode: 137, timedOut: true, timeoutMs: 90_000 }).error).toEqual({ code: 4, message: 'The job exceeded its timeout of 1m30s and was stopped.' });
  });
  it('exit 0 without outputs FAILS', () => {
    expect(judgeRunJob({ ...ok, outputFileCount: 0 })).toMatchObject({ state: 'JOB_STATE_FAILED', error: { code: 5 } });
  });
  it('a CustomJob: exit 0 SUCCEEDS without outputs (NO_OUTPUT a warning); --expect-output makes it FAIL; /gcs writes count', () => {
    const customJob = { ...ok, flavour: 'custom-job' as const, outputFileCount: 0, stagedInputPaths: [] };
    expect(judgeRunJob(customJob)).toEqual({ state: 'JOB_STATE_SUCCEEDED' });
    expect(diagnoseRunJob(customJob).map((d) => [d.code, d.severity])).toEqual([['NO_OUTPUT', 'warning']]);
    const strict = { ...customJob, expectOutput: true };
    expect(judgeRunJob(strict)).toMatchObject({ state: 'JOB_STATE_FAILED', error: { code: 5, message: expect.stringContaining('--expect-output') } });
    expect(diagnoseRunJob(strict).map((d) => [d.code, d.severity])).toEqual([['NO_OUTPUT', 'error']]);
    expect(judgeRunJob({ ...strict, gcsWrittenCount: 1 })).toEqual({ state: 'JOB_STATE_SUCCEEDED' });
    expect(diagnoseRunJob({ ...strict, gcsWrittenCount: 1 })).toEqual([]);
    // The batch file contract's promise is AIP_BATCH_OUTPUT_DIR: writes elsewhere under /gcs do not count.
    expect(judgeRunJob({ ...ok, outputFileCount: 0, gcsWrittenCount: 3 }).state).toBe('JOB_STATE_FAILED');
  });
  it('cancellation wins over everything', () => {
    expect(judgeRunJob({ ...ok, cancelled: true, exitCode: 137 })).toEqual({ state: 'JOB_STATE_CANCELLED', error: { code: 1, message: 'The job was cancelled.' } });
  });
  it('pull failures: denied is PERMISSION_DENIED, missing is NOT_FOUND', () => {
    expect(judgeRunJob({ ...ok, pullFailure: { kind: 'denied', detail: 'unauthorized' } }).error!.code).toBe(7);
    expect(judgeRunJob({ ...ok, pullFailure: { kind: 'not_found', detail: 'manifest unknown' } }).error!.code).toBe(5);
  });
  it('a non-amd64 image FAILS with exec format error', () => {
    expect(judgeRunJob({ ...ok, image: { ...ok.image!, architecture: 'arm64' } }).error!.message).toContain('exec format error');
  });
  it('a start failure counts as exit 127', () => {
    expect(judgeRunJob({ ...ok, exitCode: undefined, startError: 'exec: "--scale": executable file not found in $PATH' }).error!.message).toContain('status of 127');
  });
});

describe('scanLogLine', () => {
  it.each([
    ["FileNotFoundError: [Errno 2] No such file or directory: '/data/input.json'", 'missing-file'],
    ["cat: can't open '/data/x': No such file or directory", 'missing-file'],
    ['open /data/x.json: no such file or directory', 'missing-file'],
    ['OSError: libgomp.so.1: cannot open shared object file: No such file or directory', 'missing-shared-library'],
    ["PermissionError: [Errno 13] Permission denied: '/app/out.json'", 'permission-denied'],
    ['exec /usr/bin/python: exec format error', 'exec-format-error'],
    [' * Running on http://0.0.0.0:8080', 'server-listening'],
    ['all good', undefined],
  ])('%s', (line, kind) => {
    expect(scanLogLine(line)?.kind).toBe(kind);
  });
  it('extracts the library before the file-not-found pattern', () => {
    expect(scanLogLine('OSError: libgomp.so.1: cannot open shared object file: No such file or directory')).toMatchObject({ library: 'libgomp.so.1' });
  });
});

describe('diagnoseRunJob', () => {
  it('a clean success has no findings', () => expect(codes({})).toEqual([]));

  it('INPUT_NOT_STAGED for a missing file that is not a staged input, but not for a staged one', () => {
    expect(codes({ exitCode: 1, logSignals: [signal("FileNotFoundError: [Errno 2] No such file or directory: '/data/input.json'")] })).toEqual(['INPUT_NOT_STAGED']);
    expect(codes({ exitCode: 1, logSignals: [signal("No such file or directory: '/vbe/inputs/a.json'")] })).toEqual(['NONZERO_EXIT']);
  });

  it('INPUT_NOT_STAGED never for a file opened for writing, one under the output dir, or one that exists somewhere', () => {
    const traceback = [signal('    with open(os.path.join(out, "model.RData"), "w") as f:'), signal("FileNotFoundError: [Errno 2] No such file or directory: '/gcs/b/models/model.RData'")];
    expect(codes({ exitCode: 1, logSignals: traceback })).toEqual(['NONZERO_EXIT']);
    expect(codes({ exitCode: 1, logSignals: [signal("FileNotFoundError: [Errno 2] No such file or directory: '/vbe/output/sub/x.json'")] })).toEqual(['NONZERO_EXIT']);
    const read = [signal("FileNotFoundError: [Errno 2] No such file or directory: '/gcs/b/data/x.csv'")];
    expect(codes({ exitCode: 1, logSignals: read, existingPaths: ['/gcs/b/data/x.csv'] })).toEqual(['NONZERO_EXIT']);
    const [missing] = diagnoseRunJob({ ...ok, exitCode: 1, logSignals: read, stagedBuckets: ['b'] });
    expect(missing).toMatchObject({ code: 'INPUT_NOT_STAGED', message: expect.stringContaining('gs://b/data/x.csv was not in the staged bucket') });
    const [unstaged] = diagnoseRunJob({ ...ok, exitCode: 1, logSignals: read, stagedBuckets: [] });
    expect(unstaged!.fix).toContain('--gcs-bucket b');
  });

  it('the NONZERO_EXIT fix points at the record, not at a log tail "above" or "below"', () => {
    const [d] = diagnoseRunJob({ ...ok, exitCode: 2 });
    expect(d!.message).not.toMatch(/above|below/);
    expect(d!.message).toContain('stderr.log');
  });

  it('MISSING_SHARED_LIBRARY names the Debian package', () => {
    const [d] = diagnoseRunJob({ ...ok, exitCode: 1, logSignals: [signal('OSError: libgomp.so.1: cannot open shared object file: No such file or directory')] });
    expect(d).toMatchObject({ code: 'MISSING_SHARED_LIBRARY', severity: 'error' });
    expect(d!.fix).toContain('apt-get install -y --no-install-recommends libgomp1');
  });

  it('ARGS_REPLACED_CMD: an error when the args were run as a program, a warning otherwise', () => {
    const broke = diagnoseRunJob({ ...ok, exitCode: 127, args: ['--scale', '3'], startError: 'exec: "--scale": executable file not found in $PATH' });
    expect(broke[0]).toMatchObject({ code: 'ARGS_REPLACED_CMD', severity: 'error' });
    expect(broke[0]!.message).toContain('`--scale 3`');
    expect(diagnoseRunJob({ ...ok, args: ['x'] })[0]).toMatchObject({ code: 'ARGS_REPLACED_CMD', severity: 'warning' });
    expect(codes({ args: ['x'], image: { ...ok.image!, entrypoint: ['/app/entrypoint.sh'] } })).toEqual([]);
    expect(codes({ args: ['x'], command: ['python'] })).toEqual([]);
  });

  it('COMMAND_NOT_FOUND when the command itself is missing', () => {
    expect(codes({ exitCode: 127, command: ['nope'], startError: 'exec: "nope": executable file not found in $PATH' })).toEqual(['COMMAND_NOT_FOUND']);
  });

  it('OUTPUT_OUTSIDE_OUTPUT_DIR ignores scratch paths and parent directories', () => {
    expect(lostOutputs(['/data', '/data/output.json', '/tmp/x', '/root/.cache/pip/y', '/app/__pycache__/m.pyc', '/app/results.csv'])).toEqual(['/app/results.csv', '/data/output.json']);
    const ds = diagnoseRunJob({ ...ok, outputFileCount: 0, addedPaths: ['/data', '/data/output.json'] });
    expect(ds.map((d) => [d.code, d.severity])).toEqual([['OUTPUT_OUTSIDE_OUTPUT_DIR', 'error']]);
    expect(diagnoseRunJob({ ...ok, addedPaths: ['/data/x'] })[0]!.severity).toBe('warning');
  });

  it('NO_OUTPUT when exit 0 wrote nothing anywhere', () => expect(codes({ outputFileCount: 0 })).toEqual(['NO_OUTPUT']));

  it('OUT_OF_MEMORY names the machine type and limit', () => {
    const [d] = diagnoseRunJob({ ...ok, exitCode: 137, oomKilled: true, machineType: 'e2-highcpu-2', memoryBytes: 2 * 1024 ** 3 });
    expect(d!.message).toContain('2.0 GiB of memory that e2-highcpu-2');
  });

  it('TIMEOUT plus LOOKS_LIKE_SERVER for a server given to the file contract', () => {
    expect(codes({ timedOut: true, exitCode: 137, logSignals: [signal(' * Running on http://0.0.0.0:8080')] })).toEqual(['TIMEOUT', 'LOOKS_LIKE_SERVER']);
    expect(codes({ timedOut: true, exitCode: 137 })).toEqual(['TIMEOUT']);
  });

  it('permission denied: in the output dir vs elsewhere', () => {
    expect(codes({ exitCode: 1, logSignals: [signal("PermissionError: [Errno 13] Permission denied: '/vbe/output/x'")] })).toEqual(['OUTPUT_PERMISSION_DENIED']);
    expect(codes({ exitCode: 1, logSignals: [signal("PermissionError: [Errno 13] Permission denied: '/app/x'")] })).toEqual(['PERMISSION_DENIED']);
  });

  it('pull and platform problems are the only finding', () => {
    expect(codes({ pullFailure: { kind: 'denied', detail: 'x' } })).toEqual(['IMAGE_PULL_DENIED']);
    expect(codes({ image: { ...ok.image!, architecture: 'arm64' } })).toEqual(['EXEC_FORMAT_ERROR']);
  });

  it('refused outputs are reported with their reasons', () => {
    const [d] = diagnoseRunJob({ ...ok, refusedOutputs: [{ path: 'leak', reason: 'symbolic link to "/etc/passwd"' }] });
    expect(d).toMatchObject({ code: 'OUTPUT_REFUSED', evidence: ['leak: symbolic link to "/etc/passwd"'] });
  });
});

describe('machineLimits', () => {
  it('applies the machine type and caps it at the host', () => {
    const big = machineLimits(getMachineType('n1-standard-8'), { cpus: 2, memoryBytes: 8 * 1024 ** 3 });
    expect(big).toMatchObject({ cpus: 2, nanoCpus: 2e9, memoryBytes: 8 * 1024 ** 3, cappedToHost: true, requested: { cpus: 8, memoryBytes: 30 * 1024 ** 3 } });
    // CPUs capped, the CPU count programs read differs from Vertex's, memory capped.
    expect(big.warnings).toHaveLength(3);
    const fits = machineLimits(getMachineType('n1-standard-2'), { cpus: 16, memoryBytes: 64 * 1024 ** 3 });
    // 7.5 GiB less the 40% Vertex's agents may take on small machines (--memory-reserve vertex).
    expect(fits).toMatchObject({ cpus: 2, cpusetCpus: '0-1', memoryBytes: 4.5 * 1024 ** 3, machineMemoryBytes: 7.5 * 1024 ** 3, cappedToHost: false });
    expect(fits.warnings).toEqual([expect.stringMatching(/os\.cpu_count\(\) \/ multiprocessing\.cpu_count\(\) see this host's 16/)]);
    const whole = machineLimits(getMachineType('n1-standard-2'), { cpus: 2, memoryBytes: 64 * 1024 ** 3 }, { kind: 'none' });
    expect(whole).toMatchObject({ memoryBytes: 7.5 * 1024 ** 3, memoryReserveBytes: 0, warnings: [] });
  });
});
