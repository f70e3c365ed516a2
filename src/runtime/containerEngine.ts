import os from 'node:os';
import { PassThrough, type Readable } from 'node:stream';
import Docker from 'dockerode';
import { emulatorError, VbeError } from '../errors.js';
import { endpointCandidates, isLocalEndpoint, publishedPortHost } from './dockerEndpoint.js';
import type { RegistryAuth } from './registryAuth.js';

/**
 * The one narrow port in front of the Docker engine; nothing else imports dockerode.
 * Containers follow a typestate lifecycle: CreatedContainer -> StartedContainer -> ExitedContainer,
 * each with only the operations that make sense in that state.
 */

export const LABELS = {
  managed: 'dev.vbe.managed',
  jobId: 'dev.vbe.job-id',
  pid: 'dev.vbe.pid',
  host: 'dev.vbe.host',
} as const;

/** Labels every resource of one job carries: prune and leak checks select on them. */
export function resourceLabels(jobId: string): Record<string, string> {
  return { [LABELS.managed]: 'true', [LABELS.jobId]: jobId, [LABELS.pid]: String(process.pid), [LABELS.host]: os.hostname() };
}

export interface HostInfo {
  /** Whether the engine has the NVIDIA runtime (nvidia-container-toolkit). */
  nvidiaRuntime: boolean;
  cpus: number;
  memoryBytes: number;
  /** Engine architecture as Go names it: amd64, arm64. */
  architecture: string;
  serverVersion: string;
}

export interface ImageDetails {
  id: string;
  repoDigest?: string;
  architecture: string;
  os: string;
  user: string;
  entrypoint: string[] | null;
  cmd: string[] | null;
  workingDir: string;
  env: string[];
  exposedPorts: string[];
  sizeBytes: number;
}

export type PullFailureKind = 'not_found' | 'denied' | 'unreachable' | 'other';

/** A pull the registry refused or could not serve: a job result, not an emulator failure. */
export class PullFailure extends Error {
  constructor(
    readonly kind: PullFailureKind,
    readonly detail: string,
  ) {
    super(detail);
    this.name = 'PullFailure';
  }
}

export interface MountSpec {
  volume: string;
  target: string;
}

export interface ContainerCreateSpec {
  name: string;
  image: string;
  entrypoint?: string[];
  cmd?: string[];
  env: ReadonlyArray<{ name: string; value: string }>;
  nanoCpus: number;
  memoryBytes: number;
  mounts: MountSpec[];
  labels: Record<string, string>;
  /** 'bridge' (default, as a Vertex replica has a network) or 'none' (hermetic runs). Never the host's. */
  network?: 'bridge' | 'none';
  /** NVIDIA GPUs to request (docker run --gpus N). */
  gpus?: number;
  /** A container TCP port published on a free host port: on 127.0.0.1 only for a local engine. */
  publishPort?: number;
}

export interface FileChange {
  path: string;
  kind: 'modified' | 'added' | 'deleted';
}

export interface LabelledResources {
  containers: Array<{ id: string; name: string; state: string; labels: Record<string, string> }>;
  volumes: Array<{ name: string; labels: Record<string, string> }>;
  networks: Array<{ id: string; name: string; labels: Record<string, string> }>;
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND']);

function describeEndpoint(): string {
  return process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
}

/** Turns a failed engine call into an emulator error (exit 3) that says what to do. */
export function engineError(error: unknown, doing: string): VbeError {
  if (error instanceof VbeError) return error;
  const err = error as NodeJS.ErrnoException & { statusCode?: number; json?: { message?: string } };
  if (err?.code && CONNECTION_CODES.has(err.code)) {
    return emulatorError(
      'ENGINE_UNREACHABLE',
      `Cannot reach the Docker engine at ${describeEndpoint()} while ${doing} (${err.code}).`,
      'Start Docker (e.g. `sudo systemctl start docker`, or open Docker Desktop), or point DOCKER_HOST at a running engine, then run again.',
      error,
    );
  }
  const message = err?.json?.message ?? err?.message ?? String(error);
  return emulatorError('ENGINE_ERROR', `The Docker engine failed while ${doing}: ${message}`, 'Check `docker info` and the engine logs, then run again.', error);
}

async function call<T>(doing: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw engineError(error, doing);
  }
}

function statusCode(error: unknown): number | undefined {
  return (error as { statusCode?: number })?.statusCode;
}

export class ContainerEngine {
  private constructor(
    private readonly docker: Docker,
    readonly endpoint: string,
  ) {}

  /**
   * Finds the engine the way users expect (DOCKER_HOST, the current docker context, the usual
   * desktop and rootless sockets) and pings it; when none answers, ENGINE_UNREACHABLE (exit 3)
   * lists what was tried.
   */
  static async connect(options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<ContainerEngine> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const tried: string[] = [];
    const candidates = endpointCandidates(options.env);
    let lastError: unknown;
    for (const candidate of candidates) {
      const docker = new Docker(candidate.options);
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          docker.ping(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(Object.assign(new Error('ping timed out'), { code: 'ETIMEDOUT' })), timeoutMs);
          }),
        ]);
        return new ContainerEngine(docker, candidate.host);
      } catch (error) {
        lastError = error;
        tried.push(`${candidate.host} (${candidate.source}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
      } finally {
        clearTimeout(timer);
      }
    }
    throw emulatorError(
      'ENGINE_UNREACHABLE',
      `Cannot reach a Docker engine. Tried: ${tried.join('; ')}.`,
      'Start Docker (e.g. `sudo systemctl start docker`, or open Docker Desktop, Colima, Rancher Desktop, OrbStack or Podman), or point DOCKER_HOST at a running engine, then run again.',
      lastError,
    );
  }

  /** Where this engine's published ports answer (127.0.0.1 for a local engine). */
  get publishedHost(): string {
    return publishedPortHost(this.endpoint);
  }

  /** Whether the engine runs on this machine (its published ports are on our loopback). */
  get isLocal(): boolean {
    return isLocalEndpoint(this.endpoint);
  }

  /** Whether the engine still answers a ping within `timeoutMs`. */
  async isAlive(timeoutMs = 3000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([this.docker.ping(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), timeoutMs)))]);
      return true;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * What to throw for a failure during a job: an engine error while the engine no longer answers
   * becomes ENGINE_LOST (the engine stopped during the job: a Docker restart, a crash).
   */
  async explainFailure(error: unknown): Promise<unknown> {
    // An engine that is shutting down still answers pings for a moment while its operations fail.
    const gone = async () => !(await this.isAlive()) || (await new Promise((r) => setTimeout(r, 1500)), !(await this.isAlive()));
    if (error instanceof VbeError && error.kind === 'emulator' && error.code !== 'ENGINE_LOST' && (await gone())) {
      return emulatorError(
        'ENGINE_LOST',
        `The Docker engine at ${this.endpoint} stopped answering during the job (${error.message}).`,
        'Start Docker again, then run `vbe prune` to remove what this run could not, and run the job again.',
        error,
      );
    }
    return error;
  }

  async hostInfo(): Promise<HostInfo> {
    const info = await call('reading engine info', () => this.docker.info() as Promise<Record<string, unknown>>);
    const arch = String(info.Architecture ?? os.arch());
    return {
      nvidiaRuntime: Boolean((info.Runtimes as Record<string, unknown> | undefined)?.nvidia),
      cpus: Number(info.NCPU ?? os.cpus().length),
      memoryBytes: Number(info.MemTotal ?? os.totalmem()),
      architecture: arch === 'x86_64' ? 'amd64' : arch === 'aarch64' ? 'arm64' : arch,
      serverVersion: String(info.ServerVersion ?? 'unknown'),
    };
  }

  async inspectImage(ref: string): Promise<ImageDetails | undefined> {
    try {
      const info = await this.docker.getImage(ref).inspect();
      const config = info.Config ?? ({} as Docker.ImageInspectInfo['Config']);
      const details: ImageDetails = {
        id: info.Id,
        architecture: info.Architecture,
        os: info.Os,
        user: config.User ?? '',
        entrypoint: (config.Entrypoint as string[] | null | undefined) ?? null,
        cmd: (config.Cmd as string[] | null | undefined) ?? null,
        workingDir: config.WorkingDir ?? '',
        env: config.Env ?? [],
        exposedPorts: Object.keys(config.ExposedPorts ?? {}),
        sizeBytes: info.Size,
      };
      const digest = info.RepoDigests?.[0];
      if (digest) details.repoDigest = digest;
      return details;
    } catch (error) {
      if (statusCode(error) === 404) return undefined;
      throw engineError(error, `inspecting image ${ref}`);
    }
  }

  /** The image's layers, newest first, with the instruction that made each and its size. */
  async imageHistory(ref: string): Promise<Array<{ createdBy: string; sizeBytes: number }>> {
    const history = (await call(`reading the history of ${ref}`, () => this.docker.getImage(ref).history())) as Array<{ CreatedBy?: string; Size?: number }>;
    return history.map((h) => ({ createdBy: h.CreatedBy ?? '', sizeBytes: h.Size ?? 0 }));
  }

  /** Pulls an image; registry refusals become PullFailure, engine trouble VbeError. */
  async pullImage(ref: string, auth?: RegistryAuth, onProgress?: (event: { status?: string; id?: string }) => void): Promise<void> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = (await this.docker.pull(ref, auth ? { authconfig: auth } : {})) as NodeJS.ReadableStream;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code && CONNECTION_CODES.has(code)) throw engineError(error, `pulling ${ref}`);
      throw classifyPullFailure((error as { json?: { message?: string } }).json?.message ?? (error as Error).message);
    }
    await new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(
        stream,
        (error: Error | null) => (error ? reject(classifyPullFailure(error.message)) : resolve()),
        (event: { status?: string; id?: string; error?: string }) => onProgress?.(event),
      );
    });
  }

  async createVolume(name: string, labels: Record<string, string>): Promise<string> {
    await call(`creating volume ${name}`, () => this.docker.createVolume({ Name: name, Labels: labels }));
    return name;
  }

  async removeVolume(name: string): Promise<void> {
    try {
      await this.docker.getVolume(name).remove({ force: true });
    } catch (error) {
      if (statusCode(error) === 404) return;
      throw engineError(error, `removing volume ${name}`);
    }
  }

  async removeContainer(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).remove({ force: true, v: true });
    } catch (error) {
      const code = statusCode(error);
      if (code === 404) return;
      if (code === 409) {
        // Removal already in progress: wait for it to finish.
        await new Promise((r) => setTimeout(r, 500));
        return this.removeContainer(id);
      }
      throw engineError(error, `removing container ${id.slice(0, 12)}`);
    }
  }

  async removeNetwork(id: string): Promise<void> {
    try {
      await this.docker.getNetwork(id).remove();
    } catch (error) {
      if (statusCode(error) === 404) return;
      throw engineError(error, `removing network ${id.slice(0, 12)}`);
    }
  }

  async createContainer(spec: ContainerCreateSpec): Promise<CreatedContainer> {
    const options: Docker.ContainerCreateOptions = {
      name: spec.name,
      Image: spec.image,
      Env: spec.env.map((e) => `${e.name}=${e.value}`),
      Labels: spec.labels,
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      Tty: false,
      OpenStdin: false,
      HostConfig: {
        NanoCpus: spec.nanoCpus,
        Memory: spec.memoryBytes,
        MemorySwap: spec.memoryBytes, // equal to Memory: no swap, as on a Vertex replica
        Mounts: spec.mounts.map((m) => ({ Type: 'volume' as const, Source: m.volume, Target: m.target })),
        NetworkMode: spec.network ?? 'bridge',
        Privileged: false,
        AutoRemove: false,
      },
    };
    if (spec.publishPort) {
      const key = `${spec.publishPort}/tcp`;
      options.ExposedPorts = { [key]: {} };
      // A remote engine's loopback is not ours: there the port must be reachable on its host.
      options.HostConfig!.PortBindings = { [key]: [{ HostIp: this.isLocal ? '127.0.0.1' : '0.0.0.0', HostPort: '' }] };
    }
    if (spec.gpus) options.HostConfig!.DeviceRequests = [{ Driver: 'nvidia', Count: spec.gpus, Capabilities: [['gpu']] }];
    if (spec.entrypoint) options.Entrypoint = spec.entrypoint;
    if (spec.cmd) options.Cmd = spec.cmd;
    const container = await call(`creating container ${spec.name}`, () => this.docker.createContainer(options));
    return new CreatedContainer(this.docker, container);
  }

  /** Every container, volume and network carrying our labels (optionally of one job). */
  async listLabelled(jobId?: string): Promise<LabelledResources> {
    const label = [jobId ? `${LABELS.jobId}=${jobId}` : `${LABELS.managed}=true`];
    const filters = JSON.stringify({ label });
    const [containers, volumes, networks] = await call('listing labelled resources', () =>
      Promise.all([
        this.docker.listContainers({ all: true, filters }),
        this.docker.listVolumes({ filters }),
        this.docker.listNetworks({ filters }),
      ]),
    );
    return {
      containers: containers.map((c) => ({ id: c.Id, name: (c.Names[0] ?? '').replace(/^\//, ''), state: c.State, labels: c.Labels ?? {} })),
      volumes: (volumes.Volumes ?? []).map((v) => ({ name: v.Name, labels: (v.Labels as Record<string, string> | null) ?? {} })),
      networks: networks.map((n) => ({ id: n.Id, name: n.Name, labels: n.Labels ?? {} })),
    };
  }
}

function classifyPullFailure(message: string): PullFailure {
  const text = message.toLowerCase();
  if (/unauthorized|authentication required|no basic auth credentials|denied|forbidden|permission/.test(text)) {
    // Docker Hub answers "pull access denied ... does not exist or may require 'docker login'" for both.
    if (/does not exist/.test(text)) return new PullFailure('not_found', message);
    return new PullFailure('denied', message);
  }
  if (/not found|manifest unknown|does not exist|name unknown/.test(text)) return new PullFailure('not_found', message);
  if (/connection refused|no such host|i\/o timeout|dial tcp|tls handshake|network is unreachable|server misbehaving/.test(text)) {
    return new PullFailure('unreachable', message);
  }
  return new PullFailure('other', message);
}

/** A container that exists but has not run: files can be put in, then it can be started. */
export class CreatedContainer {
  constructor(
    private readonly docker: Docker,
    private readonly container: Docker.Container,
  ) {}

  get id(): string {
    return this.container.id;
  }

  /** Extracts a tar stream at `destination` in the container (and its mounted volumes). */
  async putArchive(tar: Readable, destination: string): Promise<void> {
    await call(`copying files into the container`, async () => {
      await this.container.putArchive(tar as unknown as NodeJS.ReadableStream, { path: destination });
    });
  }

  /** The container's whole filesystem (the image's, flattened) as a tar stream; nothing runs. */
  async exportFilesystem(): Promise<Readable> {
    return (await call('exporting the image filesystem', () => this.container.export())) as unknown as Readable;
  }

  /**
   * Starts the container. When the engine cannot start the process (executable not found, exec
   * format error) the container never ran: the result carries the engine's message and the
   * container, exited, so the job can still be judged and cleaned up.
   */
  async start(): Promise<{ started: StartedContainer } | { startError: string; exited: ExitedContainer }> {
    // Attach before starting: nothing printed is missed, and an attached stream is much faster
    // than following the engine's log file.
    const raw = (await call('attaching to the container', () =>
      this.container.attach({ stream: true, stdout: true, stderr: true, logs: false }),
    )) as unknown as NodeJS.ReadableStream & { destroy?: () => void };
    try {
      await this.container.start();
      return { started: new StartedContainer(this.docker, this.container, raw) };
    } catch (error) {
      raw.destroy?.();
      const code = (error as NodeJS.ErrnoException).code;
      if (code && CONNECTION_CODES.has(code)) throw engineError(error, 'starting the container');
      const message = (error as { json?: { message?: string } }).json?.message ?? (error as Error).message;
      const exited = await ExitedContainer.inspect(this.container);
      return { startError: message, exited };
    }
  }
}

export interface ContainerLogStreams {
  stdout: Readable;
  stderr: Readable;
}

/** A running container: its logs can be followed, it can be waited for, stopped or killed. */
export class StartedContainer {
  constructor(
    private readonly docker: Docker,
    private readonly container: Docker.Container,
    private readonly attached: NodeJS.ReadableStream,
  ) {}

  get id(): string {
    return this.container.id;
  }

  /** stdout and stderr as two separate streams, from the container's start (attached before it). */
  async followLogs(): Promise<ContainerLogStreams> {
    const raw = this.attached;
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    this.docker.modem.demuxStream(raw, stdout, stderr);
    const end = () => {
      stdout.end();
      stderr.end();
    };
    raw.on('end', end);
    raw.on('close', end);
    raw.on('error', end);
    return { stdout, stderr };
  }

  /**
   * Samples memory use from the engine's stats stream (about once a second) until stopped or the
   * container ends; `peakBytes` is the highest figure seen (the cgroup's own peak where the engine
   * reports one).
   */
  async watchMemory(): Promise<{ peakBytes: () => number; stop: () => void }> {
    let peak = 0;
    let stream: NodeJS.ReadableStream | undefined;
    try {
      stream = (await this.container.stats({ stream: true })) as unknown as NodeJS.ReadableStream;
    } catch {
      return { peakBytes: () => 0, stop: () => undefined };
    }
    let pending = '';
    stream.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      let newline = pending.indexOf('\n');
      while (newline !== -1) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        newline = pending.indexOf('\n');
        try {
          const stats = JSON.parse(line) as { memory_stats?: { usage?: number; max_usage?: number } };
          peak = Math.max(peak, stats.memory_stats?.max_usage ?? 0, stats.memory_stats?.usage ?? 0);
        } catch {
          // a partial line; the next sample will do
        }
      }
    });
    stream.on('error', () => undefined);
    return { peakBytes: () => peak, stop: () => (stream as unknown as { destroy?: () => void }).destroy?.() };
  }

  /** The host port on 127.0.0.1 where a published container port answers. */
  async publishedPort(containerPort: number): Promise<number | undefined> {
    const info = await call('inspecting the container', () => this.container.inspect());
    const binding = info.NetworkSettings?.Ports?.[`${containerPort}/tcp`]?.[0];
    return binding?.HostPort ? Number(binding.HostPort) : undefined;
  }

  /** Whether it still runs; when it does not, its exit state. */
  async status(): Promise<{ running: true } | { running: false; exited: ExitedContainer }> {
    const info = await call('inspecting the container', () => this.container.inspect());
    if (info.State.Running) return { running: true };
    return { running: false, exited: await ExitedContainer.inspect(this.container) };
  }

  /**
   * Runs a command inside the container and returns its exit code and combined output (capped),
   * or undefined when the command cannot be started (e.g. the image has no such program).
   */
  async exec(cmd: string[], timeoutMs = 10_000): Promise<{ exitCode: number; output: string } | undefined> {
    try {
      const exec = await this.container.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
      const stream = await exec.start({ hijack: true, stdin: false });
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      let output = '';
      const keep = (chunk: Buffer) => {
        if (output.length < 1_000_000) output += chunk.toString('utf8');
      };
      stdout.on('data', keep);
      stderr.on('data', keep);
      this.docker.modem.demuxStream(stream, stdout, stderr);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          stream.destroy();
          resolve();
        }, timeoutMs);
        stream.on('end', () => {
          clearTimeout(timer);
          resolve();
        });
        stream.on('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      const info = await exec.inspect();
      if (info.ExitCode === null || info.ExitCode === undefined) return undefined;
      // 126/127: the engine could not run the program at all.
      if ((info.ExitCode === 126 || info.ExitCode === 127) && /executable file not found|no such file/i.test(output)) return undefined;
      return { exitCode: info.ExitCode, output };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code && CONNECTION_CODES.has(code)) throw engineError(error, 'running a check inside the container');
      return undefined;
    }
  }

  /** Resolves when the container has exited. */
  async wait(): Promise<ExitedContainer> {
    await call('waiting for the container', () => this.container.wait());
    return ExitedContainer.inspect(this.container);
  }

  /** SIGTERM, then SIGKILL after the grace period (docker stop). */
  async stop(graceMs: number): Promise<void> {
    try {
      await this.container.stop({ t: Math.max(0, Math.ceil(graceMs / 1000)) });
    } catch (error) {
      const code = statusCode(error);
      if (code === 304 || code === 404) return; // already stopped or gone
      throw engineError(error, 'stopping the container');
    }
  }

  async kill(): Promise<void> {
    try {
      await this.container.kill({ signal: 'SIGKILL' });
    } catch (error) {
      const code = statusCode(error);
      if (code === 404 || code === 409) return; // gone or not running
      throw engineError(error, 'killing the container');
    }
  }
}

/** A container that has stopped: its exit state, filesystem changes and files can be read. */
export class ExitedContainer {
  private constructor(
    private readonly container: Docker.Container,
    readonly exitCode: number,
    readonly oomKilled: boolean,
    readonly engineError: string,
  ) {}

  static async inspect(container: Docker.Container): Promise<ExitedContainer> {
    const info = await call('inspecting the container', () => container.inspect());
    return new ExitedContainer(container, info.State.ExitCode, Boolean(info.State.OOMKilled), info.State.Error ?? '');
  }

  get id(): string {
    return this.container.id;
  }

  /** The container's own filesystem changes (mounted volumes excluded), as `docker diff`. */
  async changes(): Promise<FileChange[]> {
    const raw = (await call('reading filesystem changes', () => this.container.changes())) as Array<{ Path: string; Kind: number }> | null;
    const kinds = ['modified', 'added', 'deleted'] as const;
    return (raw ?? []).map((c) => ({ path: c.Path, kind: kinds[c.Kind] ?? 'modified' }));
  }

  /** A tar stream of `path` in the container (and its volumes). */
  async getArchive(path: string): Promise<Readable> {
    return (await call(`copying ${path} out of the container`, () => this.container.getArchive({ path }))) as unknown as Readable;
  }
}
