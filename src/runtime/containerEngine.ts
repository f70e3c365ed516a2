import os from 'node:os';
import { PassThrough, type Readable } from 'node:stream';
import { emulatorError, VbeError } from '../errors.js';
import { demultiplex, EngineApi, readJsonLines, segment } from './engineApi.js';
import { endpointCandidates, isLocalEndpoint, publishedPortHost } from './dockerEndpoint.js';
import type { RegistryAuth } from './registryAuth.js';
import type { BodySink } from '../http/responseParser.js';
import { JsonArrayReader } from './jsonArrayReader.js';

/**
 * The one narrow port in front of the Docker engine: nothing else talks to it (engineApi.ts is
 * its HTTP client).
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
  /** The CPUs it may run on (cpuset syntax, "0-3"): `nproc` inside shows their count. */
  cpusetCpus?: string;
  /** Size of /dev/shm (Docker's default, 64 MiB, when unset). */
  shmSizeBytes?: number;
  /**
   * A size limit for the container's writable layer, where the engine can enforce one (overlay2 on
   * xfs with project quotas, btrfs, zfs, ...); elsewhere the container is created without it and
   * `CreatedContainer.storageLimited` is false.
   */
  storageSizeBytes?: number;
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

interface EngineInfo {
  Architecture?: string;
  NCPU?: number;
  MemTotal?: number;
  ServerVersion?: string;
  Runtimes?: Record<string, unknown>;
  Driver?: string;
  DriverStatus?: Array<[string, string]> | null;
}

/** Storage drivers that can limit a container's writable layer (`--storage-opt size=`). */
function canLimitStorage(info: EngineInfo): boolean {
  const driver = info.Driver ?? '';
  if (['devicemapper', 'btrfs', 'zfs', 'windowsfilter'].includes(driver)) return true;
  const backing = (info.DriverStatus ?? []).find(([key]) => key === 'Backing Filesystem')?.[1];
  return driver === 'overlay2' && backing === 'xfs'; // and mounted with pquota: tried, refused otherwise
}

interface ImageInspect {
  Id: string;
  Architecture: string;
  Os: string;
  Size: number;
  RepoDigests?: string[];
  Config?: {
    User?: string;
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    Env?: string[] | null;
    ExposedPorts?: Record<string, unknown> | null;
  } | null;
}

interface ContainerInspect {
  State: { Running: boolean; ExitCode: number; OOMKilled?: boolean; Error?: string };
  NetworkSettings?: { Ports?: Record<string, Array<{ HostIp?: string; HostPort?: string }> | null> | null };
}

/** An image reference as the pull endpoint takes it: repository, and tag or digest. */
function splitReference(ref: string): { fromImage: string; tag: string } {
  const at = ref.indexOf('@');
  const separator = at >= 0 ? at : ref.lastIndexOf(':');
  if (separator >= 0) {
    const tag = ref.slice(separator + 1);
    if (!tag.includes('/')) return { fromImage: ref.slice(0, separator), tag };
  }
  return { fromImage: ref, tag: 'latest' };
}

export class ContainerEngine {
  /** Engine info, asked for with the first ping (every job reads it first). */
  private info: Promise<EngineInfo> | undefined;
  /** The engine refused a writable-layer size (overlay2 without xfs project quotas, ...). */
  private storageOptRefused = false;

  private constructor(
    private readonly api: EngineApi,
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
      const api = new EngineApi(candidate.options);
      // Asked for with the ping, as every job reads it next; a failure is reported by hostInfo.
      const info = api.json<EngineInfo>('GET', '/info', { timeoutMs });
      info.catch(() => undefined);
      try {
        await api.call('GET', '/_ping', { timeoutMs });
        const engine = new ContainerEngine(api, candidate.host);
        engine.info = info;
        return engine;
      } catch (error) {
        lastError = error;
        tried.push(`${candidate.host} (${candidate.source}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
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
    try {
      await this.api.call('GET', '/_ping', { timeoutMs });
      return true;
    } catch {
      return false;
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
    const prefetched = this.info;
    this.info = undefined;
    const info = await call('reading engine info', () => prefetched ?? this.api.json<EngineInfo>('GET', '/info'));
    if (!canLimitStorage(info)) this.storageOptRefused = true; // not even asked: saves a refused create per job
    const arch = String(info.Architecture ?? os.arch());
    return {
      nvidiaRuntime: Boolean(info.Runtimes?.nvidia),
      cpus: Number(info.NCPU ?? os.cpus().length),
      memoryBytes: Number(info.MemTotal ?? os.totalmem()),
      architecture: arch === 'x86_64' ? 'amd64' : arch === 'aarch64' ? 'arm64' : arch,
      serverVersion: String(info.ServerVersion ?? 'unknown'),
    };
  }

  async inspectImage(ref: string): Promise<ImageDetails | undefined> {
    try {
      const info = await this.api.json<ImageInspect>('GET', `/images/${segment(ref)}/json`);
      const config = info.Config ?? {};
      const details: ImageDetails = {
        id: info.Id,
        architecture: info.Architecture,
        os: info.Os,
        user: config.User ?? '',
        entrypoint: config.Entrypoint ?? null,
        cmd: config.Cmd ?? null,
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
    const history = await call(`reading the history of ${ref}`, () => this.api.json<Array<{ CreatedBy?: string; Size?: number }>>('GET', `/images/${segment(ref)}/history`));
    return history.map((h) => ({ createdBy: h.CreatedBy ?? '', sizeBytes: h.Size ?? 0 }));
  }

  /** Pulls an image; registry refusals become PullFailure, engine trouble VbeError. */
  async pullImage(ref: string, auth?: RegistryAuth, onProgress?: (event: { status?: string; id?: string }) => void): Promise<void> {
    let stream: Readable;
    try {
      // URL-safe base64 with its padding, as the docker CLI sends it.
      const headers: Record<string, string> = auth ? { 'X-Registry-Auth': Buffer.from(JSON.stringify(auth)).toString('base64').replace(/\+/g, '-').replace(/\//g, '_') } : {};
      stream = await this.api.stream('POST', '/images/create', { query: splitReference(ref), headers });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code && CONNECTION_CODES.has(code)) throw engineError(error, `pulling ${ref}`);
      throw classifyPullFailure((error as { json?: { message?: string } }).json?.message ?? (error as Error).message);
    }
    await new Promise<void>((resolve, reject) => {
      let failure: PullFailure | undefined;
      readJsonLines(stream, (value) => {
        const event = value as { status?: string; id?: string; error?: string };
        // The engine reports a failure during the pull as an event, then ends the stream.
        if (event.error) failure ??= classifyPullFailure(event.error);
        else onProgress?.(event);
      });
      stream.on('end', () => (failure ? reject(failure) : resolve()));
      stream.on('error', (error) => reject(classifyPullFailure(error.message)));
    });
  }

  async createVolume(name: string, labels: Record<string, string>): Promise<string> {
    await call(`creating volume ${name}`, () => this.api.call('POST', '/volumes/create', { body: { Name: name, Labels: labels } }));
    return name;
  }

  async removeVolume(name: string): Promise<void> {
    try {
      await this.api.call('DELETE', `/volumes/${segment(name)}`, { query: { force: true } });
    } catch (error) {
      if (statusCode(error) === 404) return;
      throw engineError(error, `removing volume ${name}`);
    }
  }

  async removeContainer(id: string): Promise<void> {
    try {
      await this.api.call('DELETE', `/containers/${segment(id)}`, { query: { force: true, v: true } });
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
      await this.api.call('DELETE', `/networks/${segment(id)}`);
    } catch (error) {
      if (statusCode(error) === 404) return;
      throw engineError(error, `removing network ${id.slice(0, 12)}`);
    }
  }

  async createContainer(spec: ContainerCreateSpec): Promise<CreatedContainer> {
    const hostConfig: Record<string, unknown> = {
      NanoCpus: spec.nanoCpus,
      Memory: spec.memoryBytes,
      MemorySwap: spec.memoryBytes, // equal to Memory: no swap, as on a Vertex replica
      Mounts: spec.mounts.map((m) => ({ Type: 'volume', Source: m.volume, Target: m.target })),
      NetworkMode: spec.network ?? 'bridge',
      Privileged: false,
      AutoRemove: false,
    };
    // Only the name goes in the URL: the options (a large Env) go in the body alone.
    const body: Record<string, unknown> = {
      Image: spec.image,
      Env: spec.env.map((e) => `${e.name}=${e.value}`),
      Labels: spec.labels,
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      Tty: false,
      OpenStdin: false,
      HostConfig: hostConfig,
    };
    if (spec.publishPort) {
      const key = `${spec.publishPort}/tcp`;
      body.ExposedPorts = { [key]: {} };
      // A remote engine's loopback is not ours: there the port must be reachable on its host.
      hostConfig.PortBindings = { [key]: [{ HostIp: this.isLocal ? '127.0.0.1' : '0.0.0.0', HostPort: '' }] };
    }
    if (spec.gpus) hostConfig.DeviceRequests = [{ Driver: 'nvidia', Count: spec.gpus, Capabilities: [['gpu']] }];
    if (spec.entrypoint) body.Entrypoint = spec.entrypoint;
    if (spec.cmd) body.Cmd = spec.cmd;
    if (spec.cpusetCpus) hostConfig.CpusetCpus = spec.cpusetCpus;
    if (spec.shmSizeBytes) hostConfig.ShmSize = spec.shmSizeBytes;
    const create = () => this.api.json<{ Id: string }>('POST', '/containers/create', { query: { name: spec.name }, body });
    if (spec.storageSizeBytes && !this.storageOptRefused) {
      hostConfig.StorageOpt = { size: String(spec.storageSizeBytes) };
      try {
        const limited = new CreatedContainer(this.api, (await create()).Id);
        limited.storageLimited = true;
        return limited;
      } catch (error) {
        // "--storage-opt is supported only for overlay over xfs with 'pquota' mount option", ...
        const message = (error as { json?: { message?: string } }).json?.message ?? (error as Error).message;
        if (!/storage.?opt|quota|not supported/i.test(message ?? '')) throw engineError(error, `creating container ${spec.name}`);
        this.storageOptRefused = true; // asked once per engine connection
        delete hostConfig.StorageOpt;
      }
    }
    const created = await call(`creating container ${spec.name}`, create);
    return new CreatedContainer(this.api, created.Id);
  }

  /** Every container, volume and network carrying our labels (optionally of one job). */
  async listLabelled(jobId?: string): Promise<LabelledResources> {
    const label = [jobId ? `${LABELS.jobId}=${jobId}` : `${LABELS.managed}=true`];
    const filters = JSON.stringify({ label });
    type Labels = Record<string, string> | null | undefined;
    const [containers, volumes, networks] = await call('listing labelled resources', () =>
      Promise.all([
        this.api.json<Array<{ Id: string; Names?: string[]; State: string; Labels?: Labels }>>('GET', '/containers/json', { query: { all: true, filters } }),
        this.api.json<{ Volumes?: Array<{ Name: string; Labels?: Labels }> | null }>('GET', '/volumes', { query: { filters } }),
        this.api.json<Array<{ Id: string; Name: string; Labels?: Labels }>>('GET', '/networks', { query: { filters } }),
      ]),
    );
    return {
      containers: containers.map((c) => ({ id: c.Id, name: (c.Names?.[0] ?? '').replace(/^\//, ''), state: c.State, labels: c.Labels ?? {} })),
      volumes: (volumes.Volumes ?? []).map((v) => ({ name: v.Name, labels: v.Labels ?? {} })),
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

/** Reads a container's exit state. */
async function inspectExited(api: EngineApi, id: string): Promise<ExitedContainer> {
  const info = await call('inspecting the container', () => api.json<ContainerInspect>('GET', `/containers/${id}/json`));
  return new ExitedContainer(api, id, info.State.ExitCode, Boolean(info.State.OOMKilled), info.State.Error ?? '');
}

/** Bytes the container wrote to its own filesystem (its writable layer, volumes excluded: `SizeRw`). */
async function writableLayerBytes(api: EngineApi, id: string): Promise<number> {
  const info = await call('measuring what the container wrote', () => api.json<{ SizeRw?: number }>('GET', `/containers/${id}/json`, { query: { size: true } }));
  return Math.max(0, Number(info.SizeRw ?? 0));
}

/** A container that exists but has not run: files can be put in, then it can be started. */
export class CreatedContainer {
  /** Whether the engine enforces `storageSizeBytes` on its writable layer. */
  storageLimited = false;

  constructor(
    private readonly api: EngineApi,
    readonly id: string,
  ) {}

  /** Extracts a tar stream at `destination` in the container (and its mounted volumes). */
  async putArchive(tar: Readable, destination: string): Promise<void> {
    await call(`copying files into the container`, () => this.api.call('PUT', `/containers/${this.id}/archive`, { query: { path: destination }, upload: tar }));
  }

  /** The container's whole filesystem (the image's, flattened) as a tar stream; nothing runs. */
  async exportFilesystem(): Promise<Readable> {
    return call('exporting the image filesystem', () => this.api.stream('GET', `/containers/${this.id}/export`));
  }

  /**
   * Starts the container. When the engine cannot start the process (executable not found, exec
   * format error) the container never ran: the result carries the engine's message and the
   * container, exited, so the job can still be judged and cleaned up.
   */
  async start(): Promise<{ started: StartedContainer } | { startError: string; exited: ExitedContainer }> {
    // Attach before starting: nothing printed is missed, and an attached stream is much faster
    // than following the engine's log file. The wait for its exit is registered before the start
    // too (the engine answers its headers at once), so the exit is known without another call.
    const waitRequest = this.api.stream('POST', `/containers/${this.id}/wait`, { query: { condition: 'next-exit' } });
    waitRequest.catch(() => undefined);
    const [attached, waiting] = await call('attaching to the container', () =>
      Promise.all([
        this.api.stream('POST', `/containers/${this.id}/attach`, { query: { stream: true, stdout: true, stderr: true, logs: false } }),
        // An engine that refuses this wait, or holds its headers until the exit: wait after the start instead.
        Promise.race([waitRequest.catch(() => undefined), new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), WAIT_HEADERS_MS).unref())]),
      ]),
    );
    if (!waiting) void waitRequest.then((response) => response.destroy(), () => undefined);
    const exit = waiting ? readExit(waiting) : undefined;
    try {
      await this.api.call('POST', `/containers/${this.id}/start`);
      return { started: new StartedContainer(this.api, this.id, attached, exit) };
    } catch (error) {
      attached.destroy();
      waiting?.destroy();
      const code = (error as NodeJS.ErrnoException).code;
      if (code && CONNECTION_CODES.has(code)) throw engineError(error, 'starting the container');
      const message = (error as { json?: { message?: string } }).json?.message ?? (error as Error).message;
      const exited = await inspectExited(this.api, this.id);
      return { startError: message, exited };
    }
  }
}

/** How long the wait registered before a start may take to be acknowledged (Docker: at once). */
const WAIT_HEADERS_MS = 2000;

/** The body of a wait request: it ends, with the exit status, once the container has exited. */
function readExit(waiting: Readable): Promise<void> {
  const done = new Promise<void>((resolve, reject) => {
    let text = '';
    waiting.setEncoding('utf8');
    waiting.on('data', (chunk: string) => (text += chunk));
    waiting.on('end', () => {
      try {
        JSON.parse(text);
        resolve();
      } catch {
        reject(Object.assign(new Error(`the engine ended the wait without a status: ${text.slice(0, 200)}`), { code: 'ECONNRESET' }));
      }
    });
    waiting.on('error', reject);
  });
  done.catch(() => undefined); // read by wait(); a container that is never waited for is fine
  return done;
}

export interface ContainerLogStreams {
  stdout: Readable;
  stderr: Readable;
}

/** A running container: its logs can be followed, it can be waited for, stopped or killed. */
export class StartedContainer {
  constructor(
    private readonly api: EngineApi,
    readonly id: string,
    private readonly attached: Readable,
    private readonly exit: Promise<void> | undefined,
  ) {}

  /** stdout and stderr as two separate streams, from the container's start (attached before it). */
  async followLogs(): Promise<ContainerLogStreams> {
    const raw = this.attached;
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    demultiplex(raw, stdout, stderr);
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
   * reports one). Returns at once: the stream is read as it comes. `onSample` gets each sample:
   * memory in use as `docker stats` shows it (usage less inactive page cache) and CPU in cores.
   */
  async watchMemory(onSample?: (sample: ContainerStatsSample) => void): Promise<{ peakBytes: () => number; stop: () => void }> {
    let peak = 0;
    let stopped = false;
    let stream: Readable | undefined;
    this.api.stream('GET', `/containers/${this.id}/stats`, { query: { stream: true } }).then(
      (response) => {
        stream = response;
        stream.on('error', () => undefined);
        if (stopped) return void stream.destroy();
        readJsonLines(stream, (value) => {
          const stats = value as EngineStats;
          peak = Math.max(peak, stats.memory_stats?.max_usage ?? 0, stats.memory_stats?.usage ?? 0);
          if (onSample && stats.memory_stats?.usage !== undefined) onSample(statsSample(stats));
        });
      },
      () => undefined, // no figures: peak stays 0
    );
    return {
      peakBytes: () => peak,
      stop: () => {
        stopped = true;
        stream?.destroy();
      },
    };
  }

  /** The host port on 127.0.0.1 where a published container port answers. */
  async publishedPort(containerPort: number): Promise<number | undefined> {
    const info = await call('inspecting the container', () => this.api.json<ContainerInspect>('GET', `/containers/${this.id}/json`));
    const binding = info.NetworkSettings?.Ports?.[`${containerPort}/tcp`]?.[0];
    return binding?.HostPort ? Number(binding.HostPort) : undefined;
  }

  /** Whether it still runs; when it does not, its exit state. */
  async status(): Promise<{ running: true } | { running: false; exited: ExitedContainer }> {
    const info = await call('inspecting the container', () => this.api.json<ContainerInspect>('GET', `/containers/${this.id}/json`));
    if (info.State.Running) return { running: true };
    return { running: false, exited: await inspectExited(this.api, this.id) };
  }

  /**
   * Runs a command inside the container and returns its exit code and combined output (capped),
   * or undefined when the command cannot be started (e.g. the image has no such program).
   */
  async exec(cmd: string[], timeoutMs = 10_000): Promise<{ exitCode: number; output: string } | undefined> {
    try {
      const exec = await this.api.json<{ Id: string }>('POST', `/containers/${this.id}/exec`, { body: { Cmd: cmd, AttachStdout: true, AttachStderr: true } });
      const stream = await this.api.stream('POST', `/exec/${exec.Id}/start`, { body: { Detach: false, Tty: false } });
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      let output = '';
      const keep = (chunk: Buffer) => {
        if (output.length < 1_000_000) output += chunk.toString('utf8');
      };
      stdout.on('data', keep);
      stderr.on('data', keep);
      demultiplex(stream, stdout, stderr);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          stream.destroy();
          resolve();
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        stream.on('end', done);
        stream.on('close', done);
        stream.on('error', done);
      });
      const info = await this.api.json<{ ExitCode?: number | null }>('GET', `/exec/${exec.Id}/json`);
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

  /** Bytes written to its own filesystem so far (volumes excluded). */
  async writableLayerBytes(): Promise<number> {
    return writableLayerBytes(this.api, this.id);
  }

  /** Resolves when the container has exited. */
  async wait(): Promise<ExitedContainer> {
    await call('waiting for the container', async () => {
      await (this.exit ?? this.api.call('POST', `/containers/${this.id}/wait`));
    });
    return inspectExited(this.api, this.id);
  }

  /** SIGTERM, then SIGKILL after the grace period (docker stop). */
  async stop(graceMs: number): Promise<void> {
    try {
      await this.api.call('POST', `/containers/${this.id}/stop`, { query: { t: Math.max(0, Math.ceil(graceMs / 1000)) } });
    } catch (error) {
      const code = statusCode(error);
      if (code === 304 || code === 404) return; // already stopped or gone
      throw engineError(error, 'stopping the container');
    }
  }

  async kill(): Promise<void> {
    try {
      await this.api.call('POST', `/containers/${this.id}/kill`, { query: { signal: 'SIGKILL' } });
    } catch (error) {
      const code = statusCode(error);
      if (code === 404 || code === 409) return; // gone or not running
      throw engineError(error, 'killing the container');
    }
  }
}

/** A container that has stopped: its exit state, filesystem changes and files can be read. */
export class ExitedContainer {
  constructor(
    private readonly api: EngineApi,
    readonly id: string,
    readonly exitCode: number,
    readonly oomKilled: boolean,
    readonly engineError: string,
  ) {}

  /** Bytes it wrote to its own filesystem (volumes excluded). */
  async writableLayerBytes(): Promise<number> {
    return writableLayerBytes(this.api, this.id);
  }

  /**
   * The container's own filesystem changes (mounted volumes excluded), as `docker diff`: the first
   * `limit` that `keep` accepts. The answer is read as it arrives, never whole (a container that
   * creates a million files in /tmp makes it tens of MB).
   */
  async changes(keep: (change: FileChange) => boolean = () => true, limit = Number.POSITIVE_INFINITY): Promise<FileChange[]> {
    const kinds = ['modified', 'added', 'deleted'] as const;
    const kept: FileChange[] = [];
    const reader = new JsonArrayReader((value) => {
      const c = value as { Path?: unknown; Kind?: unknown };
      if (kept.length >= limit || typeof c?.Path !== 'string') return;
      const change: FileChange = { path: c.Path, kind: kinds[c.Kind as number] ?? 'modified' };
      if (keep(change)) kept.push(change);
    });
    await call('reading filesystem changes', async () => {
      await this.api.download('GET', `/containers/${this.id}/changes`, {}, (parts) => {
        for (const part of parts) reader.push(part);
      });
      reader.end();
    });
    return kept;
  }

  /**
   * The tar archive of `path` in the container (and its volumes), handed to `sink` as it arrives
   * (views valid only during the call; a returned promise pauses reading until it settles).
   * Errors the sink throws come back as they are, as does `signal`'s abort; the engine's are explained.
   * Resolves false when `path` is not in the container (it removed it): what it did, not an engine failure.
   */
  async readArchive(path: string, sink: BodySink, signal?: AbortSignal): Promise<boolean> {
    let sinkError: { error: unknown } | undefined;
    const guarded: BodySink = (parts) => {
      try {
        const wait = sink(parts);
        return wait?.catch((error: unknown) => {
          sinkError = { error };
          throw error;
        });
      } catch (error) {
        sinkError = { error };
        throw error;
      }
    };
    try {
      await this.api.download('GET', `/containers/${this.id}/archive`, { query: { path }, ...(signal ? { signal } : {}) }, guarded);
      return true;
    } catch (error) {
      if (sinkError) throw sinkError.error;
      if (signal?.aborted) throw error;
      if (statusCode(error) === 404 && !/no such container/i.test((error as Error).message)) return false;
      throw engineError(error, `copying ${path} out of the container`);
    }
  }
}

/** One reading of the engine's stats stream, in the emulator's units. */
export interface ContainerStatsSample {
  /** When it was read (epoch ms, this host's clock). */
  atMs: number;
  memoryBytes: number;
  /** CPU used since the previous reading, in cores (1.5 = one and a half CPUs busy); absent on the first. */
  cpuCores?: number;
}

interface EngineStats {
  memory_stats?: { usage?: number; max_usage?: number; stats?: { inactive_file?: number; total_inactive_file?: number } };
  cpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number; online_cpus?: number };
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number };
}

/** As `docker stats` computes them: memory less inactive file cache; CPU share of the host's time times its CPUs. */
function statsSample(stats: EngineStats): ContainerStatsSample {
  const m = stats.memory_stats!;
  const inactive = m.stats?.inactive_file ?? m.stats?.total_inactive_file ?? 0;
  const sample: ContainerStatsSample = { atMs: Date.now(), memoryBytes: Math.max(0, (m.usage ?? 0) - inactive) };
  const cpu = stats.cpu_stats;
  const pre = stats.precpu_stats;
  const cpuDelta = (cpu?.cpu_usage?.total_usage ?? 0) - (pre?.cpu_usage?.total_usage ?? 0);
  const systemDelta = (cpu?.system_cpu_usage ?? 0) - (pre?.system_cpu_usage ?? 0);
  if (pre?.system_cpu_usage && systemDelta > 0 && cpuDelta >= 0) sample.cpuCores = (cpuDelta / systemDelta) * (cpu?.online_cpus ?? 1);
  return sample;
}
