#!/usr/bin/env node
// `npm run bench`: what the emulator costs against the Docker engine itself.
// Each case runs the vbe CLI (node dist/cli/main.js, as a user would) and a reference (the docker
// CLI, or a minimal HTTP client) alternately, A,B,A,B..., after one warm-up round, in one run.
// BENCH_QUICK=1: fewer repetitions and smaller sizes. BENCH_CASES=overhead,library,staging,collect,dataplane,memory
// runs a subset. See bench/README.md.
import { copyFile, cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { timeArchiveCopies } from './engineCopies.mjs';
import { CLI, ROOT, docker, dockerTimed, fmtBytes, fmtMs, fmtRate, foreignProcesses, median, round, runCli, sh, summary, table, watchContention } from './lib.mjs';

const QUICK = process.env.BENCH_QUICK === '1';
const MODE = QUICK ? 'quick' : 'full';
const RUN_ID = `${Date.now().toString(36)}${process.pid}`;
const BENCH_LABEL = `dev.vbe-bench.run=${RUN_ID}`;
const IMG_JOB = 'vbe-bench/job:latest';
const IMG_ECHO = 'vbe-bench/echo-server:latest';
const MACHINE = 'n1-standard-2'; // 2 vCPUs, 7.5 GiB
const MEM_BYTES = String(Math.round(7.5 * 1024 ** 3));
const LIMITS = ['--cpus', '2', '--memory', MEM_BYTES, '--memory-swap', MEM_BYTES];
const RSS_TARGET_BYTES = 150e6;
const KiB = 1024;
const MiB = 1024 * 1024;

const SIZES = QUICK
  ? {
      large: { files: 100, fileBytes: 640 * KiB },
      small: { files: 5_000, fileBytes: KiB },
      stageMem1x: { files: 10, fileBytes: 640 * KiB },
      instances: 100_000,
      instancesMem1x: 10_000,
    }
  : {
      large: { files: 1_000, fileBytes: MiB },
      small: { files: 100_000, fileBytes: KiB },
      stageMem1x: { files: 100, fileBytes: MiB },
      instances: 1_000_000,
      instancesMem1x: 100_000,
    };
/** The warm-up round of the 100,000-small-files cases uses this set (the quick mode's). */
const SMALL_WARMUP = { files: 5_000, fileBytes: KiB };
const REPS = QUICK
  ? { overhead: 4, library: 4, stageLarge: 2, stageSmall: 2, collectLarge: 2, collectSmall: 2, dataplane: 2, memory1x: 1 }
  : { overhead: 10, library: 10, stageLarge: 4, stageSmall: 2, collectLarge: 4, collectSmall: 2, dataplane: 3, memory1x: 2 }; // about 10 min on 2 cores
const ALL_CASES = ['overhead', 'library', 'staging', 'collect', 'dataplane', 'memory'];
const CASES = new Set((process.env.BENCH_CASES ?? ALL_CASES.join(',')).split(',').map((s) => s.trim()).filter(Boolean));
const BATCH_SIZE = 64;
const IN_FLIGHT = 2; // vbe's default --max-in-flight

let interrupted = false;
const spawnedPids = new Set();
let workDir;
let sampleCounter = 0;
const sampleFailures = [];

const log = (msg) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const checkInterrupted = () => {
  if (interrupted) throw new Error('interrupted');
};

// ---------------------------------------------------------------- setup

async function environment() {
  const [server, client, cpus, mem] = (await docker('info', '--format', '{{.ServerVersion}}|{{.ClientInfo.Version}}|{{.NCPU}}|{{.MemTotal}}')).split('|');
  const commit = (await sh('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, allowFail: true })).stdout.trim();
  const dirty = (await sh('git', ['status', '--porcelain', 'src'], { cwd: ROOT, allowFail: true })).stdout.trim() !== '';
  const others = (await docker('ps', '-q')).split('\n').filter(Boolean).length;
  return { node: process.version, dockerServer: server, dockerClient: client, engineCpus: Number(cpus), engineMemoryBytes: Number(mem), hostCpus: os.cpus().length, commit, srcDirty: dirty, otherRunningContainersAtStart: others };
}

async function buildImages() {
  for (const base of ['vbe-local/busybox:latest', 'vbe-local/python-base:bookworm']) {
    if ((await sh('docker', ['image', 'inspect', base], { allowFail: true })).code !== 0) {
      throw new Error(`base image ${base} is missing: run docker/build-test-images.sh first (see docker/README.md)`);
    }
  }
  const ctx = await mkdtemp(path.join(workDir, 'build-'));
  await mkdir(path.join(ctx, 'job'));
  for (const f of ['Dockerfile', 'job.sh']) await copyFile(path.join(ROOT, 'bench/images/job', f), path.join(ctx, 'job', f));
  await sh('chmod', ['+x', path.join(ctx, 'job/job.sh')]);
  await docker('build', '-q', '--label', BENCH_LABEL, '-t', IMG_JOB, path.join(ctx, 'job'));
  await mkdir(path.join(ctx, 'echo'));
  for (const f of ['Dockerfile', 'echo-server.mjs']) await copyFile(path.join(ROOT, 'bench/images/echo-server', f), path.join(ctx, 'echo', f));
  await copyFile(process.execPath, path.join(ctx, 'echo', 'node')); // the host's Node 20 (glibc; bookworm has it)
  await docker('build', '-q', '--label', BENCH_LABEL, '-t', IMG_ECHO, path.join(ctx, 'echo'));
  await rm(ctx, { recursive: true, force: true });
  const check = await docker('run', '--rm', '--entrypoint', '/usr/local/bin/node', IMG_ECHO, '-p', 'process.version');
  log(`images built: ${IMG_JOB}, ${IMG_ECHO} (node ${check} inside)`);
}

async function writeTree(dir, { files, fileBytes }) {
  await mkdir(dir, { recursive: true });
  const content = Buffer.alloc(fileBytes, 'v');
  const perDir = 1000;
  const subdirs = files > perDir;
  for (let i = 0; i < files; i += 64) {
    const jobs = [];
    for (let j = i; j < Math.min(files, i + 64); j++) {
      const sub = subdirs ? path.join(dir, `d${String(Math.floor(j / perDir)).padStart(3, '0')}`) : dir;
      if (subdirs && j % perDir === 0) await mkdir(sub, { recursive: true });
      jobs.push(writeFile(path.join(sub, `f${String(j).padStart(6, '0')}`), content));
    }
    await Promise.all(jobs);
  }
}

async function writeInstances(file, n) {
  const out = createWriteStream(file);
  let buf = '';
  for (let i = 0; i < n; i++) {
    buf += `${JSON.stringify({ id: i, x: (i % 1000) / 1000 })}\n`;
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await new Promise((r) => out.once('drain', r));
      buf = '';
    }
  }
  out.end(buf);
  await new Promise((r, j) => out.on('finish', r).on('error', j));
}

// ---------------------------------------------------------------- helpers

const nextDir = async (what) => {
  const dir = path.join(workDir, 'out', `${what}-${++sampleCounter}`);
  await rm(dir, { recursive: true, force: true });
  return dir;
};

async function readJson(file) {
  return JSON.parse(await readFile(file, 'utf8'));
}

function phase(record, name) {
  const p = record.emulator.phases.find((x) => x.name === name);
  return p ? p.durationMs : NaN;
}

/** Runs the vbe CLI, checks it SUCCEEDED, and returns the measured process plus its job record. */
async function vbe(args, recordFile) {
  checkInterrupted();
  const r = await runCli(args);
  spawnedPids.add(r.pid);
  const fail = async () => {
    // Keep the evidence: the job record directory survives the bench's cleanup.
    const kept = path.join(os.tmpdir(), 'vbe-bench-failures', `${RUN_ID}-${++sampleCounter}`);
    await mkdir(kept, { recursive: true });
    await writeFile(path.join(kept, 'vbe.stderr.txt'), `${args.join(' ')}\nexit ${r.code}\n${r.stderr}`);
    const record = await recordFile().catch(() => undefined);
    if (record) await cp(path.dirname(record), path.join(kept, 'record'), { recursive: true }).catch(() => undefined);
    throw new Error(`vbe ${args[0]} exited ${r.code} (evidence kept in ${kept}):\n${r.stderr.slice(-1500)}`);
  };
  if (r.code !== 0) await fail();
  const record = await readJson(await recordFile());
  return { ...r, record };
}

async function countFiles(dir) {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n += 1;
  return n;
}

function fileContractEnv(extra) {
  const env = {
    AIP_BATCH_INPUT_URIS: '/vbe/inputs/tiny.txt',
    AIP_BATCH_OUTPUT_DIR: '/vbe/output',
    AIP_MACHINE_TYPE: MACHINE,
    CLOUD_ML_JOB_ID: '1234567890123456789',
    CLUSTER_SPEC: JSON.stringify({ cluster: { workerpool0: ['workerpool0-0:2222'] }, environment: 'cloud', task: { type: 'workerpool0', index: 0 } }),
    ...extra,
  };
  return Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
}

/**
 * Alternates the sides (A,B,A,B...) after one warm-up round; returns each side's samples. Each side
 * is called with {round, warmup}; round 0 is the warm-up, whose samples are not kept.
 */
async function alternate(name, reps, sides) {
  const samples = Object.fromEntries(Object.keys(sides).map((k) => [k, []]));
  for (let r = 0; r <= reps; r++) {
    for (const [side, fn] of Object.entries(sides)) {
      checkInterrupted();
      let s;
      try {
        s = await fn({ round: r, warmup: r === 0 });
      } catch (error) {
        // One retry: on a shared machine the engine can have a bad moment (someone else's tests).
        // The failure is kept in results.json and shown under the table; a second one stops the bench.
        if (interrupted) throw error;
        sampleFailures.push({ case: name, side, round: r, error: String(error.message).slice(0, 1500) });
        log(`${name} ${side} round ${r} FAILED, retrying once: ${String(error.message).split('\n')[0]}`);
        s = await fn({ round: r, warmup: r === 0 });
      }
      const shown = Object.entries(s)
        .filter(([, v]) => typeof v === 'number')
        .map(([k, v]) => `${k}=${round(v)}`)
        .join(' ');
      log(`${name} ${r === 0 ? 'warm-up' : `#${r}`} ${side}: ${shown}`);
      if (r > 0) samples[side].push(s);
    }
  }
  return samples;
}

const pick = (arr, key) => arr.map((s) => s[key]);

function compareRow({ id, title, unit, better, a, b, key, target, extra = {} }) {
  const va = pick(a, key);
  const vb = pick(b, key);
  const pairRatios = va.map((x, i) => x / vb[i]);
  const ratio = median(pairRatios);
  const holds = target ? (target.op === '<=' ? ratio <= target.value : ratio >= target.value) : null;
  return { id, title, unit, better, vbe: summary(va), reference: summary(vb), ratio: round(ratio, 3), ratioOfMedians: round(median(va) / median(vb), 3), pairRatios: pairRatios.map((r) => round(r, 3)), target: target ?? null, holds, extra };
}

// ---------------------------------------------------------------- case 1: job overhead

async function caseOverhead(inputs) {
  const vbeSide = async () => {
    const out = await nextDir('overhead-vbe');
    const r = await vbe(
      ['run', '--image', IMG_JOB, '--input', inputs.tiny, '--output', out, '--machine-type', MACHINE, '--env', 'BENCH_MODE=one', '--quiet', '--pull', 'never'],
      async () => path.join(out, '.vbe/job.json'),
    );
    if ((await readFile(path.join(out, 'result.txt'), 'utf8')).trim() !== 'ok') throw new Error('vbe run wrote no result.txt');
    await rm(out, { recursive: true, force: true });
    const phases = Object.fromEntries(r.record.emulator.phases.map((p) => [p.name, p.durationMs]));
    return { wallMs: r.wallMs, rss: r.peakRssBytes, cpuMs: r.cpuMs, recordMs: r.record.emulator.durationMs, ...Object.fromEntries(Object.entries(phases).map(([k, v]) => [`phase_${k}`, v])) };
  };
  const refSide = async () => {
    const out = await nextDir('overhead-ref');
    await mkdir(out, { recursive: true });
    const wallMs = await dockerTimed('run', '--rm', '--label', BENCH_LABEL, ...LIMITS, ...fileContractEnv({ BENCH_MODE: 'one' }), '-v', `${inputs.tiny}:/vbe/inputs/tiny.txt:ro`, '-v', `${out}:/vbe/output`, IMG_JOB);
    if ((await readFile(path.join(out, 'result.txt'), 'utf8')).trim() !== 'ok') throw new Error('docker run wrote no result.txt');
    await rm(out, { recursive: true, force: true });
    return { wallMs };
  };
  const s = await alternate('overhead', REPS.overhead, { vbe: vbeSide, ref: refSide });
  const vbePhases = phaseMedians(s.vbe);
  const row = compareRow({
    id: 'overhead',
    title: '1 job overhead, wall (vbe run vs docker run --rm)',
    unit: 'ms',
    better: 'lower',
    a: s.vbe,
    b: s.ref,
    key: 'wallMs',
    target: { op: '<=', value: 1.5 },
    extra: { vbePhasesMedianMs: vbePhases, vbeRecordDurationMs: median(pick(s.vbe, 'recordMs')), vbeCpuMs: median(pick(s.vbe, 'cpuMs')) },
  });
  return { rows: [row], rss: [{ what: 'job overhead (tiny job)', samples: pick(s.vbe, 'rss'), target: false, key: 'overhead' }] };
}

// ---------------------------------------------------------------- case 1b: job overhead, library in a warm process

/**
 * What a test suite pays per small job: `runJob` called in this (warm) process, alternating with
 * `docker run --rm` of the same image and limits. The library's containers carry this process's pid.
 */
async function caseLibrary(inputs) {
  const { runJob, ContainerEngine } = await import(path.join(ROOT, 'dist/index.js'));
  spawnedPids.add(process.pid);
  const engine = await ContainerEngine.connect();
  const vbeSide = async () => {
    checkInterrupted();
    const out = await nextDir('library-vbe');
    const t0 = performance.now();
    const job = await runJob({ image: IMG_JOB, inputs: [inputs.tiny], output: out, machineType: MACHINE, env: ['BENCH_MODE=one'], pull: 'never' }, { engine });
    const wallMs = performance.now() - t0;
    if (job.state !== 'JOB_STATE_SUCCEEDED') throw new Error(`runJob ended ${job.state}: ${job.error?.message ?? ''}`);
    if ((await readFile(path.join(out, 'result.txt'), 'utf8')).trim() !== 'ok') throw new Error('runJob wrote no result.txt');
    await rm(out, { recursive: true, force: true });
    return { wallMs, ...Object.fromEntries(job.emulator.phases.map((p) => [`phase_${p.name}`, p.durationMs])) };
  };
  const refSide = async () => {
    const out = await nextDir('library-ref');
    await mkdir(out, { recursive: true });
    const wallMs = await dockerTimed('run', '--rm', '--label', BENCH_LABEL, ...LIMITS, ...fileContractEnv({ BENCH_MODE: 'one' }), '-v', `${inputs.tiny}:/vbe/inputs/tiny.txt:ro`, '-v', `${out}:/vbe/output`, IMG_JOB);
    await rm(out, { recursive: true, force: true });
    return { wallMs };
  };
  // In the same rounds: the engine's own cost of the two tar copies a job makes (in and out).
  const copiesSide = () => timeArchiveCopies(IMG_JOB, { [BENCH_LABEL.split('=')[0]]: RUN_ID });
  const s = await alternate('library', REPS.library, { vbe: vbeSide, ref: refSide, copies: copiesSide });
  // vbe's wall less the two copies, against docker run --rm, pair by pair (round by round).
  const beyondCopies = s.vbe.map((v, i) => (v.wallMs - s.copies[i].copiesMs) / s.ref[i].wallMs);
  const row = compareRow({
    id: 'library',
    title: '1b job overhead, library in a warm process (runJob vs docker run --rm)',
    unit: 'ms',
    better: 'lower',
    a: s.vbe,
    b: s.ref,
    key: 'wallMs',
    target: { op: '<=', value: 1.2 },
    extra: {
      vbePhasesMedianMs: phaseMedians(s.vbe),
      engineCopiesMedianMs: { put: median(pick(s.copies, 'putMs')), get: median(pick(s.copies, 'getMs')), head: median(pick(s.copies, 'headMs')), both: median(pick(s.copies, 'copiesMs')) },
      engineCopiesSamples: s.copies.map((c) => ({ putMs: round(c.putMs), getMs: round(c.getMs), headMs: round(c.headMs) })),
      beyondCopiesMedianMs: median(s.vbe.map((v, i) => v.wallMs - s.copies[i].copiesMs)),
      ratioBeyondCopies: round(median(beyondCopies), 3),
      pairRatiosBeyondCopies: beyondCopies.map((r) => round(r, 3)),
    },
  });
  return { rows: [row], rss: [] };
}

/** Median milliseconds of each `phase_<name>` key over the samples, in the order the job ran them. */
function phaseMedians(samples) {
  const names = [...new Set(samples.flatMap((x) => Object.keys(x).filter((k) => k.startsWith('phase_'))))];
  return Object.fromEntries(names.map((k) => [k.slice(6), round(median(pick(samples, k)), 1)]));
}

// ---------------------------------------------------------------- case 2: staging

async function caseStaging(inputs) {
  const rows = [];
  const rss = [];
  for (const shape of ['large', 'small']) {
    const size = SIZES[shape];
    // The warm-up round of the 100,000-file case stages the quick-size tree (it only has to warm the engine and caches).
    const treeFor = (warmup) => (warmup && shape === 'small' && inputs.smallWarmup ? inputs.smallWarmup : inputs[shape]);
    const filesFor = (warmup) => (warmup && shape === 'small' && inputs.smallWarmup ? SMALL_WARMUP.files : size.files);
    // Thousands of files cannot be job inputs (AIP_BATCH_INPUT_URIS would pass Linux's 128 KiB per
    // environment string: vbe refuses with INPUT_LIST_TOO_LONG), so the small-files tree is staged
    // as the model directory (--model-dir, at /vbe/model): the same staging code, one AIP_MODEL_DIR.
    const asModel = shape === 'small';
    const target = asModel ? '/vbe/model' : '/vbe/inputs';
    const vbeSide = async ({ warmup }) => {
      const tree = treeFor(warmup);
      const out = await nextDir(`stage-${shape}-vbe`);
      const what = asModel ? ['--input', inputs.tiny, '--model-dir', tree] : ['--input', tree];
      const r = await vbe(
        ['run', '--image', IMG_JOB, ...what, '--output', out, '--machine-type', MACHINE, '--env', 'BENCH_MODE=one', '--quiet', '--pull', 'never'],
        async () => path.join(out, '.vbe/job.json'),
      );
      const staged = asModel ? await countFiles(tree) : r.record.emulator.inputs.fileCount;
      if (staged !== filesFor(warmup)) throw new Error(`vbe staged ${staged} files, expected ${filesFor(warmup)}`);
      await rm(out, { recursive: true, force: true });
      return { stageMs: phase(r.record, 'stage'), validateMs: phase(r.record, 'validate'), wallMs: r.wallMs, rss: r.peakRssBytes, cpuMs: r.cpuMs };
    };
    const refSide = async ({ warmup }) => {
      const tree = treeFor(warmup);
      const n = ++sampleCounter;
      const vol = `vbe-bench-${RUN_ID}-stage-${n}`;
      const t0 = performance.now();
      await docker('volume', 'create', '--label', BENCH_LABEL, vol);
      const ctr = await docker('create', '--label', BENCH_LABEL, ...LIMITS, ...fileContractEnv({ BENCH_MODE: 'one' }), '-v', `${vol}:/vbe`, IMG_JOB);
      const createMs = performance.now() - t0;
      try {
        const cpMs = await dockerTimed('cp', tree, `${ctr}:${target}`);
        return { cpMs, createMs };
      } finally {
        await docker('rm', '-f', '-v', ctr);
        await docker('volume', 'rm', vol);
      }
    };
    const reps = shape === 'large' ? REPS.stageLarge : REPS.stageSmall;
    const s = await alternate(`staging-${shape}`, reps, { vbe: vbeSide, ref: refSide });
    rows.push(
      compareRow({
        id: `staging-${shape}`,
        title: `2 staging ${describeTree(size)}${asModel ? ' as --model-dir' : ''} (stage phase vs docker cp)`,
        unit: 'ms',
        better: 'lower',
        a: s.vbe.map((x) => ({ ...x, v: x.stageMs })),
        b: s.ref.map((x) => ({ ...x, v: x.cpMs })),
        key: 'v',
        target: { op: '<=', value: 1.0 },
        extra: {
          vbeValidateMsMedian: median(pick(s.vbe, 'validateMs')),
          vbeWallMsMedian: median(pick(s.vbe, 'wallMs')),
          vbeCpuMsMedian: median(pick(s.vbe, 'cpuMs')),
          referenceCreateMsMedian: median(pick(s.ref, 'createMs')),
          note: "vbe's stage phase also creates the volume and the container; the reference's docker volume create + docker create are excluded (referenceCreateMsMedian)",
        },
      }),
    );
    rss.push({ what: `staging ${describeTree(size)}${shape === 'large' ? ' (10x)' : ''}`, samples: pick(s.vbe, 'rss'), target: true, key: `stage-${shape}` });
  }
  return { rows, rss };
}

function describeTree({ files, fileBytes }) {
  return fileBytes >= 64 * KiB ? `${fmtBytes(files * fileBytes)} in ${files} files` : `${files} files of ${fmtBytes(fileBytes)}`;
}

// ---------------------------------------------------------------- case 3: collection

async function caseCollect(inputs) {
  const rows = [];
  const rss = [];
  for (const shape of ['large', 'small']) {
    // The warm-up round of the 100,000-file case collects the quick-size set.
    const sizeFor = (warmup) => (warmup && shape === 'small' && !QUICK ? SMALL_WARMUP : SIZES[shape]);
    const size = SIZES[shape];
    const envFor = (warmup) => ({ BENCH_MODE: 'gen', BENCH_FILES: String(sizeFor(warmup).files), BENCH_FILE_BYTES: String(sizeFor(warmup).fileBytes) });
    const vbeSide = async ({ warmup }) => {
      const size = sizeFor(warmup);
      const genEnv = envFor(warmup);
      const out = await nextDir(`collect-${shape}-vbe`);
      const r = await vbe(
        ['run', '--image', IMG_JOB, '--input', inputs.tiny, '--output', out, '--machine-type', MACHINE, ...Object.entries(genEnv).flatMap(([k, v]) => ['--env', `${k}=${v}`]), '--quiet', '--pull', 'never'],
        async () => path.join(out, '.vbe/job.json'),
      );
      if (r.record.emulator.outputs.fileCount !== size.files) throw new Error(`vbe collected ${r.record.emulator.outputs.fileCount} files, expected ${size.files}`);
      await rm(out, { recursive: true, force: true });
      return { collectMs: phase(r.record, 'collect'), runMs: phase(r.record, 'run'), wallMs: r.wallMs, rss: r.peakRssBytes, cpuMs: r.cpuMs };
    };
    const refSide = async ({ warmup }) => {
      const size = sizeFor(warmup);
      const genEnv = envFor(warmup);
      const n = ++sampleCounter;
      const vol = `vbe-bench-${RUN_ID}-collect-${n}`;
      const name = `vbe-bench-${RUN_ID}-collect-${n}`;
      const dest = await nextDir(`collect-${shape}-ref`);
      await docker('volume', 'create', '--label', BENCH_LABEL, vol);
      try {
        await docker('run', '--name', name, '--label', BENCH_LABEL, ...LIMITS, ...fileContractEnv(genEnv), '-v', `${vol}:/vbe`, IMG_JOB);
        const cpMs = await dockerTimed('cp', `${name}:/vbe/output`, dest);
        const got = await countFiles(dest);
        if (got !== size.files) throw new Error(`docker cp copied ${got} files, expected ${size.files}`);
        return { cpMs };
      } finally {
        await docker('rm', '-f', '-v', name).catch(() => undefined);
        await docker('volume', 'rm', vol);
        await rm(dest, { recursive: true, force: true });
      }
    };
    const reps = shape === 'large' ? REPS.collectLarge : REPS.collectSmall;
    const s = await alternate(`collect-${shape}`, reps, { vbe: vbeSide, ref: refSide });
    rows.push(
      compareRow({
        id: `collect-${shape}`,
        title: `3 collect ${describeTree(size)} (collect phase vs docker cp)`,
        unit: 'ms',
        better: 'lower',
        a: s.vbe.map((x) => ({ ...x, v: x.collectMs })),
        b: s.ref.map((x) => ({ ...x, v: x.cpMs })),
        key: 'v',
        target: { op: '<=', value: 1.0 },
        extra: { vbeWallMsMedian: median(pick(s.vbe, 'wallMs')), vbeCpuMsMedian: median(pick(s.vbe, 'cpuMs')), vbeRunPhaseMsMedian: median(pick(s.vbe, 'runMs')) },
      }),
    );
    rss.push({ what: `collect ${describeTree(size)}`, samples: pick(s.vbe, 'rss'), target: false, key: `collect-${shape}` });
  }
  return { rows, rss };
}

// ---------------------------------------------------------------- case 4, 5, 7: data plane, replicas, start-up

async function serverEvents(text) {
  const events = {};
  for (const line of text.split('\n')) {
    try {
      const e = JSON.parse(line);
      if (e.event && !(e.event in events)) events[e.event] = e.t;
    } catch {
      // not ours
    }
  }
  return events;
}

function startup(spawnEpochMs, ev) {
  const serverOwnMs = ev.listening - ev['process-start'];
  const toFirstPredictMs = ev['first-predict'] - spawnEpochMs;
  return {
    startupMs: toFirstPredictMs - serverOwnMs,
    toFirstPredictMs,
    serverOwnMs,
    toServerProcessMs: ev['process-start'] - spawnEpochMs,
    listenToFirstHealthMs: ev['first-health'] - ev.listening,
    firstHealthToFirstPredictMs: ev['first-predict'] - ev['first-health'],
  };
}

async function vbeBatch(file, n, replicas) {
  const out = await nextDir(`dataplane-vbe-r${replicas}`);
  const r = await vbe(
    ['batch-predict', '--image', IMG_ECHO, '--input', file, '--instances-format', 'jsonl', '--output', out, '--batch-size', String(BATCH_SIZE), '--replica-count', String(replicas), '--machine-type', MACHINE, '--quiet', '--pull', 'never'],
    async () => {
      const dir = (await readdir(out)).find((d) => d.startsWith('prediction-'));
      return path.join(out, dir, '.vbe/job.json');
    },
  );
  const rec = r.record;
  if (Number(rec.completionStats.successfulCount) !== n) throw new Error(`vbe batch-predict: ${JSON.stringify(rec.completionStats)}, expected ${n} successful`);
  const predictMs = phase(rec, 'predict');
  const ev = await serverEvents(await readFile(rec.emulator.logs[0].stdout, 'utf8'));
  await rm(out, { recursive: true, force: true });
  return { predictMs, thr: n / (predictMs / 1000), wallMs: r.wallMs, rss: r.peakRssBytes, cpuMs: r.cpuMs, readyAfterMs: rec.emulator.startup?.afterMs, ...startup(r.spawnEpochMs, ev) };
}

function httpGetStatus(port, route) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: route, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(0));
    req.setTimeout(2000, () => req.destroy());
  });
}

async function clientRun(port, file, inFlight) {
  const r = await sh(process.execPath, [path.join(ROOT, 'bench/client.mjs'), '--port', String(port), '--route', '/predict', '--file', file, '--batch-size', String(BATCH_SIZE), '--in-flight', String(inFlight)]);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

/** The reference: the same server image, same env and limits, started by docker run; the minimal client. */
async function refBatch(file, n, { headroom = false } = {}) {
  const name = `vbe-bench-${RUN_ID}-echo-${++sampleCounter}`;
  const t0 = Date.now();
  const env = ['AIP_HTTP_PORT=8080', 'AIP_HEALTH_ROUTE=/health', 'AIP_PREDICT_ROUTE=/predict', 'AIP_MODE=PREDICTION', `AIP_MACHINE_TYPE=${MACHINE}`].flatMap((e) => ['-e', e]);
  await docker('run', '-d', '--name', name, '--label', BENCH_LABEL, ...LIMITS, ...env, '-p', '127.0.0.1::8080', IMG_ECHO);
  try {
    const port = Number((await docker('port', name, '8080/tcp')).split('\n')[0].split(':').pop());
    for (let i = 0; ; i++) {
      if ((await httpGetStatus(port, '/health')) === 200) break;
      if (i > 1500) throw new Error('echo server never answered /health');
      await new Promise((r) => setTimeout(r, 20));
    }
    const c = await clientRun(port, file, IN_FLIGHT);
    if (c.instances !== n || c.errors) throw new Error(`client: ${JSON.stringify(c)}, expected ${n} instances`);
    const ev = await serverEvents(await docker('logs', name));
    const result = { clientMs: c.ms, thr: n / (c.ms / 1000), ...startup(t0, ev) };
    if (headroom) {
      const h = await clientRun(port, file, 8);
      result.headroomThr = h.instances / (h.ms / 1000);
    }
    return result;
  } finally {
    await docker('rm', '-f', name).catch(() => undefined);
  }
}

async function caseDataplane(inputs) {
  const n = SIZES.instances;
  // The warm-up round uses the 1x input (a tenth); the server headroom is measured in round 1.
  const file = (warmup) => (warmup ? inputs.instancesMem1x : inputs.instances);
  const count = (warmup) => (warmup ? SIZES.instancesMem1x : n);
  const s = await alternate('dataplane', REPS.dataplane, {
    vbe: ({ warmup }) => vbeBatch(file(warmup), count(warmup), 1),
    client: ({ warmup, round }) => refBatch(file(warmup), count(warmup), { headroom: round === 1 }),
    vbe2: ({ warmup }) => vbeBatch(file(warmup), count(warmup), 2),
  });
  const rows = [
    compareRow({
      id: 'dataplane',
      title: `4 data plane ${n} instances, batch ${BATCH_SIZE}, in-flight ${IN_FLIGHT} (inst/s: vbe predict phase vs direct client)`,
      unit: 'instances/s',
      better: 'higher',
      a: s.vbe,
      b: s.client,
      key: 'thr',
      target: { op: '>=', value: 0.8 },
      extra: {
        vbePredictMsMedian: median(pick(s.vbe, 'predictMs')),
        clientMsMedian: median(pick(s.client, 'clientMs')),
        vbeCpuMsMedian: median(pick(s.vbe, 'cpuMs')),
        vbeWallMsMedian: median(pick(s.vbe, 'wallMs')),
        serverHeadroomThrMedian: median(pick(s.client, 'headroomThr')),
        note: 'serverHeadroomThr: the same direct client at 8 in flight, on the same server, right after its in-flight-2 run (round 1)',
      },
    }),
    compareRow({
      id: 'replicas',
      title: `5 replicas: --replica-count 2 vs 1 (inst/s, speed-up)`,
      unit: 'instances/s',
      better: 'higher',
      a: s.vbe2,
      b: s.vbe,
      key: 'thr',
      target: null,
      extra: { vbe2CpuMsMedian: median(pick(s.vbe2, 'cpuMs')) },
    }),
    compareRow({
      id: 'startup',
      title: '7 start-up to first request, minus the server\'s own start-up (vbe vs docker run + 20 ms health polling)',
      unit: 'ms',
      better: 'lower',
      a: s.vbe,
      b: s.client,
      key: 'startupMs',
      target: null,
      extra: {
        breakdownMedianMs: Object.fromEntries(
          ['toFirstPredictMs', 'serverOwnMs', 'toServerProcessMs', 'listenToFirstHealthMs', 'firstHealthToFirstPredictMs'].map((k) => [k, { vbe: median(pick(s.vbe, k)), reference: median(pick(s.client, k)) }]),
        ),
        vbeStartupAfterMsMedian: median(pick(s.vbe, 'readyAfterMs')),
      },
    }),
  ];
  return {
    rows,
    rss: [
      { what: `data plane ${n} instances (10x)`, samples: pick(s.vbe, 'rss'), target: true, key: 'plane-10x' },
      { what: `data plane ${n} instances, 2 replicas`, samples: pick(s.vbe2, 'rss'), target: true, key: 'plane-r2' },
    ],
  };
}

// ---------------------------------------------------------------- case 6: memory at 1x (10x comes from cases 2 and 4)

async function caseMemory1x(inputs) {
  const rss = [];
  const stageSamples = [];
  const planeSamples = [];
  for (let i = 0; i < REPS.memory1x; i++) {
    const out = await nextDir('mem-stage');
    const r = await vbe(
      ['run', '--image', IMG_JOB, '--input', inputs.stageMem1x, '--output', out, '--machine-type', MACHINE, '--env', 'BENCH_MODE=one', '--quiet', '--pull', 'never'],
      async () => path.join(out, '.vbe/job.json'),
    );
    await rm(out, { recursive: true, force: true });
    stageSamples.push(r.peakRssBytes);
    log(`memory staging 1x #${i + 1}: rss=${r.peakRssBytes}`);
    const p = await vbeBatch(inputs.instancesMem1x, SIZES.instancesMem1x, 1);
    planeSamples.push(p.rss);
    log(`memory data plane 1x #${i + 1}: rss=${p.rss}`);
  }
  rss.push({ what: `staging ${describeTree(SIZES.stageMem1x)} (1x)`, samples: stageSamples, target: true, key: 'stage-1x' });
  rss.push({ what: `data plane ${SIZES.instancesMem1x} instances (1x)`, samples: planeSamples, target: true, key: 'plane-1x' });
  return { rows: [], rss };
}

// ---------------------------------------------------------------- report

function formatValue(unit, v) {
  if (unit === 'ms') return fmtMs(v);
  if (unit === 'instances/s') return fmtRate(v);
  return String(round(v, 2));
}

function report(results) {
  const lines = [];
  const env = results.environment;
  lines.push(`vbe bench (${results.mode}) ${results.startedAt}: node ${env.node}, docker ${env.dockerServer} (cli ${env.dockerClient}), ${env.engineCpus} CPUs, ${fmtBytes(env.engineMemoryBytes)}, commit ${env.commit}${env.srcDirty ? ' (src/ modified)' : ''}`);
  lines.push(`medians after 1 warm-up round; sides alternated; ratio = median of per-pair vbe/reference ratios (for inst/s, higher is better)`);
  lines.push('');
  const rows = [['case', 'n', 'vbe', 'reference', 'ratio', 'target', 'holds']];
  for (const r of results.cases) {
    rows.push([
      r.title,
      r.vbe.n,
      formatValue(r.unit, r.vbe.median),
      formatValue(r.unit, r.reference.median),
      !Number.isFinite(r.ratio) ? '-' : r.id === 'replicas' ? `${r.ratio.toFixed(2)}x` : r.ratio.toFixed(2),
      r.target ? `${r.target.op === '<=' ? '<=' : '>='} ${r.target.value.toFixed(2)}` : 'report',
      r.holds === null ? '-' : r.holds ? 'yes' : 'NO',
    ]);
  }
  lines.push(table(rows));
  if (results.memory.length) {
    lines.push('');
    const mrows = [['6 peak RSS of the vbe process (VmHWM)', 'n', 'median', 'max', 'target', 'holds']];
    for (const m of results.memory) {
      mrows.push([m.what, m.n, `${(m.medianBytes / 1e6).toFixed(0)} MB`, `${(m.maxBytes / 1e6).toFixed(0)} MB`, m.target ? '< 150 MB' : 'report', m.target ? (m.holds ? 'yes' : 'NO') : '-']);
    }
    lines.push(table(mrows));
  }
  const phased = results.cases.filter((r) => r.extra?.vbePhasesMedianMs);
  if (phased.length) {
    // Where each millisecond of a tiny job goes, per phase (median over the rounds).
    const names = [...new Set(phased.flatMap((r) => Object.keys(r.extra.vbePhasesMedianMs)))];
    const prows = [['phase (median ms)', ...phased.map((r) => r.id)]];
    for (const n of names) prows.push([n, ...phased.map((r) => (r.extra.vbePhasesMedianMs[n] === undefined ? '-' : String(round(r.extra.vbePhasesMedianMs[n], 1))))]);
    prows.push(['sum of phases', ...phased.map((r) => String(round(Object.values(r.extra.vbePhasesMedianMs).reduce((a, b) => a + b, 0), 1)))]);
    prows.push(['wall (median)', ...phased.map((r) => String(round(r.vbe.median, 1)))]);
    prows.push(['docker run --rm (median)', ...phased.map((r) => String(round(r.reference.median, 1)))]);
    lines.push('');
    lines.push(table(prows));
  }
  const notes = [];
  for (const r of results.cases) {
    const x = r.extra;
    if (r.id === 'library' && x.engineCopiesMedianMs) {
      const c = x.engineCopiesMedianMs;
      notes.push(
        `library: the engine's own cost of the two tar copies a job makes (same rounds, a created container): PUT /containers/{id}/archive of an empty tar ${fmtMs(c.put)} + GET .../archive of an empty dir ${fmtMs(c.get)} = ${fmtMs(c.both)} (HEAD .../archive, no copy: ${fmtMs(c.head)})`,
      );
      notes.push(`library, what vbe costs beyond the engine's two tar copies: ${fmtMs(x.beyondCopiesMedianMs)} vs docker run --rm ${fmtMs(r.reference.median)}, ratio ${x.ratioBeyondCopies.toFixed(2)} (target of 1b: <= ${r.target.value.toFixed(2)} with the copies)`);
    }
    if (r.id === 'overhead') notes.push(`overhead: vbe CPU ${fmtMs(x.vbeCpuMs)}; the CLI's wall minus the sum of its phases is Node start-up, module loading and the summary`);
    if (r.id.startsWith('staging')) {
      notes.push(`${r.id}: reference volume+container create ${fmtMs(x.referenceCreateMsMedian)} not counted; vbe validate phase ${fmtMs(x.vbeValidateMsMedian)} not counted; vbe wall ${fmtMs(x.vbeWallMsMedian)}`);
    }
    if (r.id.startsWith('collect')) notes.push(`${r.id}: vbe wall ${fmtMs(x.vbeWallMsMedian)}, vbe CPU ${fmtMs(x.vbeCpuMsMedian)}`);
    if (r.id === 'dataplane') notes.push(`dataplane: server headroom (direct client, 8 in flight) ${fmtRate(x.serverHeadroomThrMedian)}; vbe CPU ${fmtMs(x.vbeCpuMsMedian)} over ${fmtMs(x.vbeWallMsMedian)} wall`);
    if (r.id === 'startup') {
      const b = x.breakdownMedianMs;
      notes.push(
        `startup (median ms, vbe / reference): spawn->server process ${round(b.toServerProcessMs.vbe, 0)} / ${round(b.toServerProcessMs.reference, 0)}, server's own start ${round(b.serverOwnMs.vbe, 0)} / ${round(b.serverOwnMs.reference, 0)}, listening->first health ${round(b.listenToFirstHealthMs.vbe, 0)} / ${round(b.listenToFirstHealthMs.reference, 0)}, first health->first predict ${round(b.firstHealthToFirstPredictMs.vbe, 0)} / ${round(b.firstHealthToFirstPredictMs.reference, 0)}`,
      );
    }
  }
  if (results.leaks.length) notes.push(`LEAKS: ${results.leaks.join(', ')}`);
  for (const f of results.sampleFailures ?? []) notes.push(`RETRIED: ${f.case} ${f.side} round ${f.round} failed once: ${f.error.split('\n')[0]}`);
  const contended = Object.entries(results.contention).filter(([, c]) => c.contendedSamples > 0);
  if (contended.length) {
    notes.push(`WARNING: other vitest/vbe processes ran during ${contended.map(([id, c]) => `${id} (${Math.round(c.contendedFraction * 100)}%)`).join(', ')}: those timings are skewed (2 cores)`);
  }
  if (env.otherRunningContainersAtStart) notes.push(`warning: ${env.otherRunningContainersAtStart} other container(s) were running when the bench started`);
  lines.push('');
  lines.push(...notes.map((n) => `  ${n}`));
  lines.push(`  total ${round(results.durationS, 0)} s${results.waitedForQuietS ? ` (after waiting ${results.waitedForQuietS} s for a quiet machine)` : ''}; results in bench/results.json`);
  return lines.join('\n');
}

// ---------------------------------------------------------------- cleanup

/** Removes what this run created: reference containers and volumes, vbe leftovers of our own vbe processes, the images. */
async function cleanup({ images = true } = {}) {
  const leaks = [];
  const ours = (label) => spawnedPids.has(Number(label));
  const vbeContainers = (await docker('ps', '-a', '--filter', 'label=dev.vbe.managed=true', '--format', '{{.ID}} {{.Label "dev.vbe.pid"}}')).split('\n').filter(Boolean).map((l) => l.split(' ')).filter(([, pid]) => ours(pid));
  const vbeVolumes = (await docker('volume', 'ls', '--filter', 'label=dev.vbe.managed=true', '--format', '{{.Name}} {{.Label "dev.vbe.pid"}}')).split('\n').filter(Boolean).map((l) => l.split(' ')).filter(([, pid]) => ours(pid));
  for (const [id] of vbeContainers) {
    leaks.push(`vbe container ${id}`);
    await docker('rm', '-f', '-v', id).catch(() => undefined);
  }
  for (const [name] of vbeVolumes) {
    leaks.push(`vbe volume ${name}`);
    await docker('volume', 'rm', '-f', name).catch(() => undefined);
  }
  for (const id of (await docker('ps', '-aq', '--filter', `label=${BENCH_LABEL}`)).split('\n').filter(Boolean)) await docker('rm', '-f', '-v', id).catch(() => undefined);
  for (const v of (await docker('volume', 'ls', '-q', '--filter', `label=${BENCH_LABEL}`)).split('\n').filter(Boolean)) await docker('volume', 'rm', '-f', v).catch(() => undefined);
  if (images) for (const img of [IMG_ECHO, IMG_JOB]) await docker('rmi', '-f', img).catch(() => undefined);
  if (workDir) await rm(workDir, { recursive: true, force: true });
  return leaks;
}

// ---------------------------------------------------------------- main

/** BENCH_WAIT_QUIET=<seconds>: first wait (up to that long) until no other vitest/vbe process has run for 30 s. */
async function waitForQuiet(maxSeconds) {
  if (!maxSeconds) return;
  const deadline = Date.now() + maxSeconds * 1000;
  let quietSince = Date.now();
  for (;;) {
    if (foreignProcesses().size) quietSince = Date.now();
    if (Date.now() - quietSince >= 30_000) return;
    if (Date.now() > deadline) {
      log(`the machine did not become quiet within ${maxSeconds} s: running anyway`);
      return;
    }
    checkInterrupted();
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function main() {
  process.on('SIGINT', () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log('interrupted: finishing the current step, then cleaning up (Ctrl-C again to exit at once)');
  });
  const startedAt = new Date();
  await readFile(CLI).catch(() => {
    throw new Error(`${CLI} is missing: run npm run build (npm run bench does)`);
  });
  const waited0 = performance.now();
  await waitForQuiet(Number(process.env.BENCH_WAIT_QUIET ?? 0));
  const waitedForQuietS = (performance.now() - waited0) / 1000;
  const t0 = performance.now();
  const env = await environment();
  log(`mode ${MODE}, cases ${[...CASES].join(',')}, run ${RUN_ID}`);
  workDir = await mkdtemp(path.join(os.tmpdir(), 'vbe-bench-'));
  const results = { mode: MODE, startedAt: startedAt.toISOString(), finishedAt: null, durationS: null, environment: env, config: { sizes: SIZES, reps: REPS, batchSize: BATCH_SIZE, inFlight: IN_FLIGHT, machineType: MACHINE }, cases: [], memory: [], contention: {}, leaks: [] };
  let leaks = [];
  const rss = [];
  try {
    await buildImages();
    const inputs = { tiny: path.join(workDir, 'in/tiny.txt'), large: path.join(workDir, 'in/stage-large'), small: path.join(workDir, 'in/stage-small'), smallWarmup: QUICK ? undefined : path.join(workDir, 'in/stage-small-warmup'), stageMem1x: path.join(workDir, 'in/stage-mem1x'), instances: path.join(workDir, 'in/instances.jsonl'), instancesMem1x: path.join(workDir, 'in/instances-1x.jsonl') };
    await mkdir(path.join(workDir, 'in'), { recursive: true });
    await writeFile(inputs.tiny, 'hello\n');
    const g0 = performance.now();
    if (CASES.has('staging')) {
      await writeTree(inputs.large, SIZES.large);
      await writeTree(inputs.small, SIZES.small);
      if (inputs.smallWarmup) await writeTree(inputs.smallWarmup, SMALL_WARMUP);
    }
    if (CASES.has('memory')) await writeTree(inputs.stageMem1x, SIZES.stageMem1x);
    if (CASES.has('dataplane')) await writeInstances(inputs.instances, SIZES.instances);
    if (CASES.has('memory') || CASES.has('dataplane')) await writeInstances(inputs.instancesMem1x, SIZES.instancesMem1x);
    log(`inputs generated in ${fmtMs(performance.now() - g0)} under ${workDir}`);

    const plan = [
      ['overhead', caseOverhead],
      ['library', caseLibrary],
      ['staging', caseStaging],
      ['collect', caseCollect],
      ['dataplane', caseDataplane],
      ['memory', caseMemory1x],
    ];
    for (const [id, fn] of plan) {
      if (!CASES.has(id)) continue;
      const c0 = performance.now();
      const watch = watchContention();
      const out = await fn(inputs);
      const contention = watch.stop();
      results.contention[id] = contention;
      results.cases.push(...out.rows);
      rss.push(...out.rss);
      log(`${id} done in ${fmtMs(performance.now() - c0)}${contention.contendedSamples ? `; other vitest/vbe processes ran during ${Math.round(contention.contendedFraction * 100)}% of it` : ''}`);
    }
  } finally {
    leaks = await cleanup().catch((e) => [`cleanup failed: ${e.message}`]);
  }
  const order = ['stage-1x', 'stage-large', 'stage-small', 'plane-1x', 'plane-10x', 'plane-r2', 'overhead', 'collect-large', 'collect-small'];
  rss.sort((a, b) => order.indexOf(a.key) - order.indexOf(b.key));
  results.memory = rss.map((m) => {
    const s = summary(m.samples);
    const target = m.target;
    return { what: m.what, n: s.n, medianBytes: s.median, maxBytes: s.max, samples: m.samples, target: target ? { op: '<', bytes: RSS_TARGET_BYTES } : null, holds: target ? s.max < RSS_TARGET_BYTES : null };
  });
  results.leaks = leaks;
  results.sampleFailures = sampleFailures;
  results.finishedAt = new Date().toISOString();
  results.durationS = (performance.now() - t0) / 1000;
  results.waitedForQuietS = round(waitedForQuietS, 0);
  await writeFile(path.join(ROOT, 'bench/results.json'), `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`${report(results)}\n`);
}

main().catch(async (error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error}\n`);
  process.exitCode = 1;
});
