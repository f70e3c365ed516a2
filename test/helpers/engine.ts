import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const CLI = path.join(ROOT, 'dist/cli/main.js');
export const BUSYBOX = 'vbe-local/busybox:latest';
export const PYTHON_BASE = 'vbe-local/python-base:bookworm';
/** python-base + Debian's FastAPI, uvicorn, gunicorn and Flask (docker/build-test-images.sh). */
export const PYTHON_WEB = 'vbe-local/python-web:bookworm';

export async function tempDir(prefix = 'vbe-test-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

export async function docker(...args: string[]): Promise<string> {
  const { stdout } = await exec('docker', args, { maxBuffer: 64 * 1024 * 1024, env: { ...process.env, DOCKER_BUILDKIT: '0' } });
  return stdout.trim();
}

/** Builds an image from a Dockerfile text and extra files (legacy builder, offline). */
export async function buildImage(tag: string, dockerfile: string, files: Record<string, string> = {}): Promise<string> {
  const context = await tempDir('vbe-build-');
  await writeFile(path.join(context, 'Dockerfile'), dockerfile);
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(context, name)), { recursive: true });
    await writeFile(path.join(context, name), content, { mode: 0o755 });
  }
  await docker('build', '-q', '-t', tag, context);
  return tag;
}

export async function buildContext(tag: string, contextDir: string, buildArgs: Record<string, string> = {}): Promise<string> {
  const args = Object.entries(buildArgs).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
  await docker('build', '-q', ...args, '-t', tag, contextDir);
  return tag;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function startVbe(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): { child: ChildProcess; done: Promise<CliResult>; stderrSoFar: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<CliResult>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { child, done, stderrSoFar: () => stderr };
}

export function runVbe(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): Promise<CliResult> {
  return startVbe(args, env, cwd).done;
}

/** Resources carrying our labels that match `label=value`. */
export async function labelled(label: string): Promise<{ containers: string[]; volumes: string[] }> {
  const containers = (await docker('ps', '-aq', '--filter', `label=${label}`)).split('\n').filter(Boolean);
  const volumes = (await docker('volume', 'ls', '-q', '--filter', `label=${label}`)).split('\n').filter(Boolean);
  return { containers, volumes };
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
