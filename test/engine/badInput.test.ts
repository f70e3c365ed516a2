import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runVbe, tempDir } from '../helpers/engine.js';

/**
 * The bad input matrix: every malformed flag or spec exits 2 with a message naming the field or
 * file, before anything is created (the engine is pointed at a socket that does not exist, so a
 * case that reached it would exit 3 instead).
 */
let dir: string;
const nowhere = () => ({ DOCKER_HOST: `unix://${path.join(dir, 'no-engine.sock')}`, NOT_SET_ANYWHERE: undefined });

beforeAll(async () => {
  dir = await tempDir('vbe-bad-');
  await writeFile(path.join(dir, 'in.jsonl'), '{}\n');
  await mkdir(path.join(dir, 'empty-dir'));
  await mkdir(path.join(dir, 'a'));
  await mkdir(path.join(dir, 'b'));
  await writeFile(path.join(dir, 'a/x.jsonl'), '{}\n');
  await writeFile(path.join(dir, 'b/x.jsonl'), '{}\n');
  await writeFile(path.join(dir, 'a-file'), 'x');
  execFileSync('mkfifo', [path.join(dir, 'fifo')]);
  await mkdir(path.join(dir, 'many'));
  await Promise.all(Array.from({ length: 5000 }, (_, i) => writeFile(path.join(dir, 'many', `file-${String(i).padStart(5, '0')}.jsonl`), '{}\n')));
  const specs: Record<string, string> = {
    'bad.yaml': 'displayName: [unclosed\n',
    'bad.json': '{"displayName": ',
    'typo.yaml': 'displayname: x\ncontainerSpec: { imageUri: i }\n',
    'type.yaml': 'displayName: 5\ncontainerSpec: { imageUri: i }\n',
    'noname.yaml': 'containerSpec: { imageUri: i, env: [{ value: v }] }\n',
    'aip.yaml': 'containerSpec: { imageUri: i, env: [{ name: AIP_MODE, value: x }] }\n',
    'nomachine.yaml': 'containerSpec: { imageUri: i }\ndedicatedResources: { machineSpec: { acceleratorCount: 1 } }\n',
    'nopools.yaml': 'jobSpec: { workerPoolSpecs: [] }\n',
    'batch.yaml': 'containerSpec: { imageUri: i }\nmanualBatchTuningParameters: { batchSize: -1 }\n',
    'itype.yaml': 'containerSpec: { imageUri: i }\ninstanceConfig: { instanceType: tensor }\n',
  };
  for (const [name, text] of Object.entries(specs)) await writeFile(path.join(dir, name), text);
});

const run = (...extra: string[]) => ['run', '--image', 'img', '--input', 'in.jsonl', '--output', 'out', ...extra];
const runWithout = (flag: string, ...extra: string[]) => {
  const base = run();
  const i = base.indexOf(flag);
  base.splice(i, 2);
  return [...base, ...extra];
};
const bp = (...extra: string[]) => ['batch-predict', '--image', 'img', '--input', 'in.jsonl', '--instances-format', 'jsonl', '--output', 'out', ...extra];

const cases: Array<[string, string[], RegExp]> = [
  ['unknown machine type', run('--machine-type', 'n1-mega-3'), /--machine-type: unknown machine type "n1-mega-3"[\s\S]*n1-standard-4/],
  ['AIP_ env flag', run('--env', 'AIP_MODE=x'), /--env AIP_MODE: "AIP_MODE" starts with AIP_/],
  ['AIP_ env in the spec', run('--spec', 'aip.yaml'), /containerSpec\.env\[0\]\.name: "AIP_MODE" starts with AIP_/],
  ['env without =', run('--env', 'NOVALUE'), /--env\[0\]: "NOVALUE" is not NAME=VALUE/],
  ['env bad name', run('--env', '1X=2'), /"1X" is not a valid environment variable name/],
  ['missing input', run('--input', 'nope.jsonl'), /--input\[1\]: "nope.jsonl" does not exist/],
  ['glob matching nothing', run('--input', '*.parquet'), /--input\[1\]: "\*\.parquet" matches no files/],
  ['empty directory', run('--input', 'empty-dir'), /--input\[1\]: directory "empty-dir" holds no files/],
  ['a FIFO as input', run('--input', 'fifo'), /--input\[1\]: "fifo" is not a regular file/],
  ['two inputs landing on one path', run('--input', 'a/x.jsonl', '--input', 'b/x.jsonl'), /would both be staged at \/vbe\/inputs\/x\.jsonl/],
  ['more input files than one environment variable can list', run('--input', 'many'), /input: 5001 files make AIP_BATCH_INPUT_URIS \d+ bytes; Linux refuses an environment variable over 131072 bytes/],
  ['gs:// without bucket', run('--input', 'gs:///x.jsonl'), /--input\[1\]: "gs:\/\/\/x\.jsonl" has no bucket/],
  ['gs:// bad bucket', run('--input', 'gs://Bad_Bucket!/x'), /is not a valid bucket name/],
  ['gs:// climbing', run('--input', 'gs://bkt/../x'), /contains "\.\."/],
  ['gs:// input missing under gcs-root', run('--input', 'gs://bkt/x.jsonl'), /mapped from gs:\/\/bkt\/x\.jsonl with --gcs-root/],
  ['output is a file', runWithout('--output', '--output', 'a-file'), /--output: ".*a-file" exists and is not a directory/],
  ['no image', ['run', '--input', 'in.jsonl', '--output', 'out'], /image: no container image given[\s\S]*--image/],
  ['no input (batch file contract)', ['run', '--contract', 'batch-files', '--image', 'img', '--output', 'out'], /input: no input files given/],
  ['unknown run flavour', run('--contract', 'training'), /argument 'training' is invalid/],
  ['--gcs-bucket as a URI', run('--gcs-bucket', 'gs://b'), /--gcs-bucket\[0\]: "gs:\/\/b" is not a bucket name/],
  ['--gcs-bucket missing under the root', run('--gcs-bucket', 'nobkt'), /--gcs-bucket\[0\]: bucket "nobkt" is not a directory/],
  ['no output', ['run', '--image', 'img', '--input', 'in.jsonl'], /output: no output location given/],
  ['bad timeout', run('--timeout', 'soon'), /--timeout: "soon" is not a duration/],
  ['zero timeout', run('--timeout', '0s'), /--timeout: "0s" is not a duration/],
  ['timeout with trailing words', run('--timeout', '5m soon'), /--timeout: "5m soon" is not a duration/],
  ['bad pull policy', run('--pull', 'sometimes'), /argument 'sometimes' is invalid/],
  ['--args not a JSON array', run('--args', '["a",'), /--args: ".*" looks like a JSON array but does not parse/],
  ['--args JSON of numbers', run('--args', '[1, 2]'), /--args: the JSON value must be an array of strings/],
  ['--max-output-file-size', run('--max-output-file-size', 'huge'), /--max-output-file-size: "huge" is not a size/],
  ['--max-log-size too small', run('--max-log-size', '10'), /--max-log-size: 10 is not a size of at least 1 KiB/],
  ['--max-restarts too many', run('--max-restarts', '99'), /--max-restarts: 99 is not a whole number from 0 to 10/],
  ['--restart-exit-codes words', run('--restart-exit-codes', 'segv'), /--restart-exit-codes: "segv" is not a whole number/],
  ['--secret-env not set', run('--secret-env', 'NOT_SET_ANYWHERE'), /--secret-env NOT_SET_ANYWHERE: no value given and NOT_SET_ANYWHERE is not set/],
  ['--model-dir not a directory', run('--model-dir', 'a-file'), /--model-dir: ".*a-file" is not a directory/],
  ['spec file missing', run('--spec', 'missing.yaml'), /--spec: cannot read ".*missing\.yaml" \(ENOENT\)/],
  ['spec invalid YAML', run('--spec', 'bad.yaml'), /--spec: ".*bad\.yaml" is not valid YAML\/JSON/],
  ['spec invalid JSON', run('--spec', 'bad.json'), /--spec: ".*bad\.json" is not valid JSON/],
  ['spec field typo', run('--spec', 'typo.yaml'), /displayname: unknown field/],
  ['spec wrong type', run('--spec', 'type.yaml'), /displayName: .*string/i],
  ['spec env without name', run('--spec', 'noname.yaml'), /containerSpec\.env\[0\]\.name/],
  ['spec machineSpec without machineType', run('--spec', 'nomachine.yaml'), /dedicatedResources\.machineSpec\.machineType/],
  ['spec with no worker pools', run('--spec', 'nopools.yaml'), /jobSpec\.workerPoolSpecs/],
  ['bp: both included and excluded fields', bp('--included-fields', 'a', '--excluded-fields', 'b'), /includedFields and excludedFields cannot both be set/],
  ['bp: negative batch size', bp('--batch-size', '-3'), /--batch-size: "-3" is not a whole number/],
  ['bp: zero batch size', bp('--batch-size', '0'), /--batch-size: 0 is not a whole number from 1 to 100000/],
  ['bp: batch size in the spec', bp('--spec', 'batch.yaml'), /manualBatchTuningParameters\.batchSize/],
  ['bp: instance type in the spec', bp('--spec', 'itype.yaml'), /instanceConfig\.instanceType/],
  ['bp: no instances format', ['batch-predict', '--image', 'img', '--input', 'in.jsonl', '--output', 'out'], /instancesFormat: no input format given/],
  ['bp: unknown format', bp('--instances-format', 'parquet'), /argument 'parquet' is invalid/],
  ['bp: bigquery', bp('--instances-format', 'bigquery'), /bigquery input is not available locally[\s\S]*bq extract/],
  ['bp: keyField with tf-record', bp('--instances-format', 'tf-record', '--key-field', 'k'), /instanceConfig: key, included and excluded fields and instanceType apply to jsonl and csv/],
  ['bp: model parameters not JSON', bp('--model-parameters', '{oops'), /--model-parameters: not valid JSON/],
  ['bp: zero replicas', bp('--replica-count', '0'), /--replica-count: 0 is not a whole number from 1 to 16/],
  ['bp: port out of range', bp('--port', '70000'), /--port: 70000 is not a whole number from 1 to 65535/],
  ['bp: route without slash', bp('--predict-route', 'predict'), /--predict-route: "predict" must start with "\/"/],
  ['bp: failed ratio over 1', bp('--max-failed-ratio', '2'), /--max-failed-ratio: 2 is not between 0 and 1/],
  ['bp: bad startup timeout', bp('--startup-timeout', 'later'), /--startup-timeout: "later" is not a duration/],
  ['doctor: unknown contract', ['doctor', '--image', 'img', '--contract', 'grpc'], /argument 'grpc' is invalid/],
  ['doctor: sample missing', ['doctor', '--image', 'img', '--sample', 'nope.jsonl'], /--sample: cannot read/],
  ['unknown command', ['launch'], /unknown command 'launch'/],
  ['unknown flag', run('--turbo'), /unknown option '--turbo'/],
];

describe('bad input matrix: exit 2, naming the field or file', () => {
  it('has at least 40 cases', () => expect(cases.length).toBeGreaterThanOrEqual(40));
  it.each(cases)('%s', async (_name, args, message) => {
    const result = await runVbe(args, nowhere(), dir);
    expect(result.stderr).toMatch(message);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stdout).toBe('');
  });
});
