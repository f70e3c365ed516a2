// Small helpers for bench/run.mjs: processes, docker, /proc sampling, statistics.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '..');
export const CLI = path.join(ROOT, 'dist/cli/main.js');
const CLOCK_TICK_MS = 10; // USER_HZ is 100 on Linux

/** Runs a program; resolves with its exit code, output and wall time. Throws on a non-zero exit unless allowFail. */
export function sh(cmd, args, { allowFail = false, env, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(cmd, args, { cwd, env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => {
      const result = { code, stdout, stderr, wallMs: performance.now() - started };
      if (code !== 0 && !allowFail) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.trim().slice(-2000)}`));
      else resolve(result);
    });
  });
}

export const dockerEnv = { ...process.env, DOCKER_BUILDKIT: '0' };

export async function docker(...args) {
  return (await sh('docker', args, { env: dockerEnv })).stdout.trim();
}

/** Timed docker call (wall time of the docker CLI process, as a user pays it). */
export async function dockerTimed(...args) {
  const r = await sh('docker', args, { env: dockerEnv });
  return r.wallMs;
}

function readProc(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the ") " that ends the command name; utime and stime are fields 14 and 15
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuTicks = Number(fields[11]) + Number(fields[12]);
    return { hwmBytes: hwm ? Number(hwm[1]) * 1024 : 0, rssBytes: rss ? Number(rss[1]) * 1024 : 0, cpuMs: cpuTicks * CLOCK_TICK_MS };
  } catch {
    return undefined; // gone (or a zombie without status lines)
  }
}

/**
 * Spawns `node dist/cli/main.js ...args` and samples /proc/<pid>/status (VmHWM, the kernel's own
 * peak RSS; VmRSS as a fallback) and /proc/<pid>/stat (user+system CPU) every `pollMs` until it
 * exits. Returns the wall time from spawn to exit, measured here.
 */
export function runCli(args, { cwd = ROOT, pollMs = 20, env } = {}) {
  return new Promise((resolve, reject) => {
    const spawnEpochMs = Date.now();
    const started = performance.now();
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let peakRssBytes = 0;
    let cpuMs = 0;
    const sample = () => {
      const s = readProc(child.pid);
      if (!s) return;
      peakRssBytes = Math.max(peakRssBytes, s.hwmBytes, s.rssBytes);
      cpuMs = Math.max(cpuMs, s.cpuMs);
    };
    const timer = setInterval(sample, pollMs);
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', (e) => {
      clearInterval(timer);
      reject(e);
    });
    // 'exit' fires before 'close'; the last sample was at most pollMs before the exit.
    child.on('close', (code) => {
      clearInterval(timer);
      resolve({ code, stdout, stderr, pid: child.pid, spawnEpochMs, wallMs: performance.now() - started, peakRssBytes, cpuMs });
    });
  });
}

export function median(xs) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

export function summary(xs) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return { n: v.length, median: median(v), min: v[0] ?? NaN, max: v[v.length - 1] ?? NaN, samples: xs.map((x) => round(x, 3)) };
}

export function round(x, digits = 1) {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function fmtMs(ms) {
  if (!Number.isFinite(ms)) return '-';
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

export function fmtBytes(b) {
  if (!Number.isFinite(b)) return '-';
  if (b >= 1024 ** 3) return `${(b / 1024 ** 3).toFixed(2)} GiB`;
  if (b >= 1024 ** 2) return `${(b / 1024 ** 2).toFixed(1)} MiB`;
  return `${(b / 1024).toFixed(0)} KiB`;
}

export function fmtRate(perSec) {
  if (!Number.isFinite(perSec)) return '-';
  return perSec >= 10_000 ? `${Math.round(perSec / 1000)}k/s` : `${Math.round(perSec)}/s`;
}

/** Pads a table: rows of cells, the first row a header. */
export function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i] ?? '').length)));
  const line = (r) => r.map((c, i) => String(c ?? '').padEnd(widths[i])).join('  ').trimEnd();
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/**
 * Watches for other work on this machine while the bench runs (another vitest or vbe process,
 * e.g. someone running `npm test`): with 2 cores, that skews timings. Samples /proc every second.
 */
const FOREIGN = /vitest|dist\/cli\/main\.js|scripts\/demo/;

/** Other vitest / vbe processes running now (not started by this process). */
export function foreignProcesses(pattern = FOREIGN) {
  const found = new Map();
  let pids = [];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return found;
  }
  for (const pid of pids) {
    if (Number(pid) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (!pattern.test(cmd)) continue;
      const ppid = Number(/PPid:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
      if (ppid === process.pid) continue; // ours
      found.set(pid, cmd.slice(0, 160));
    } catch {
      // gone
    }
  }
  return found;
}

export function watchContention(pattern = FOREIGN) {
  const seen = new Map();
  let samples = 0;
  let contended = 0;
  const loads = [];
  const tick = () => {
    samples += 1;
    const found = foreignProcesses(pattern);
    for (const [pid, cmd] of found) seen.set(pid, cmd);
    if (found.size) contended += 1;
    try {
      loads.push(Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]));
    } catch {
      // no loadavg
    }
  };
  const timer = setInterval(tick, 1000);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      return { samples, contendedSamples: contended, contendedFraction: samples ? contended / samples : 0, foreignProcesses: [...seen.values()].slice(0, 20), maxLoad1: loads.length ? Math.max(...loads) : null };
    },
  };
}
