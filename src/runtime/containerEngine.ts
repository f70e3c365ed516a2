import os from 'node:os';
import { emulatorError, VbeError } from '../errors.js';
import { EngineApi } from './engineApi.js';
import { endpointCandidates, isLocalEndpoint, publishedPortHost } from './dockerEndpoint.js';
import type { RegistryAuth } from './registryAuth.js';
import { call, engineError } from './engineErrors.js';
import { CreatedContainer, removeContainer } from './containers.js';
import { type ImageDetails, imageHistory, inspectImage, pullImage } from './images.js';
import { createVolume, type LabelledResources, listLabelled, removeNetwork, removeVolume } from './volumes.js';

export { LABELS, resourceLabels } from './labels.js';
export { engineError } from './engineErrors.js';
export { type ImageDetails, PullFailure, type PullFailureKind } from './images.js';
export type { LabelledResources } from './volumes.js';
export {
  type ContainerLogStreams,
  type ContainerStatsSample,
  CreatedContainer,
  ExitedContainer,
  type FileChange,
  StartedContainer,
} from './containers.js';

/**
 * The one narrow port in front of the Docker engine: nothing else talks to it (engineApi.ts is
 * its HTTP client). This file holds the port itself (connect, host info, container creation);
 * the container lifecycle is in containers.ts, images in images.ts, volumes and networks in
 * volumes.ts, error translation in engineErrors.ts, and the labels in labels.ts.
 */

export interface HostInfo {
  /** Whether the engine has the NVIDIA runtime (nvidia-container-toolkit). */
  nvidiaRuntime: boolean;
  cpus: number;
  memoryBytes: number;
  /** Engine architecture as Go names it: amd64, arm64. */
  architecture: string;
  serverVersion: string;
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

/**
 * How long the engine's info (CPUs, memory, runtimes) is reused: a warm process running job after
 * job (a test suite) asks for it once in this window instead of once per job (`GET /info`: ~23 ms
 * on a slow engine). What it holds does not change while the engine runs.
 */
export const HOST_INFO_TTL_MS = 30_000;

export class ContainerEngine {
  /** Engine info and when it was asked for: first with the ping (every job reads it next), then again after HOST_INFO_TTL_MS. */
  private info: { answer: Promise<EngineInfo>; askedAtMs: number } | undefined;
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
      const askedAtMs = performance.now();
      const info = api.json<EngineInfo>('GET', '/info', { timeoutMs });
      info.catch(() => undefined);
      try {
        await api.call('GET', '/_ping', { timeoutMs });
        const engine = new ContainerEngine(api, candidate.host);
        engine.info = { answer: info, askedAtMs };
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

  /** The engine's host: asked for at most once per HOST_INFO_TTL_MS (a failed answer is not kept). */
  async hostInfo(): Promise<HostInfo> {
    if (!this.info || performance.now() - this.info.askedAtMs >= HOST_INFO_TTL_MS) {
      this.info = { answer: this.api.json<EngineInfo>('GET', '/info'), askedAtMs: performance.now() };
    }
    const asked = this.info;
    const info = await call('reading engine info', () => asked.answer).catch((error: unknown) => {
      if (this.info === asked) this.info = undefined;
      throw error;
    });
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

  inspectImage(ref: string): Promise<ImageDetails | undefined> {
    return inspectImage(this.api, ref);
  }

  /** The image's layers, newest first, with the instruction that made each and its size. */
  imageHistory(ref: string): Promise<Array<{ createdBy: string; sizeBytes: number }>> {
    return imageHistory(this.api, ref);
  }

  /** Pulls an image; registry refusals become PullFailure, engine trouble VbeError. */
  pullImage(ref: string, auth?: RegistryAuth, onProgress?: (event: { status?: string; id?: string }) => void): Promise<void> {
    return pullImage(this.api, ref, auth, onProgress);
  }

  createVolume(name: string, labels: Record<string, string>): Promise<string> {
    return createVolume(this.api, name, labels);
  }

  removeVolume(name: string): Promise<void> {
    return removeVolume(this.api, name);
  }

  removeContainer(id: string): Promise<void> {
    return removeContainer(this.api, id);
  }

  removeNetwork(id: string): Promise<void> {
    return removeNetwork(this.api, id);
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
  listLabelled(jobId?: string): Promise<LabelledResources> {
    return listLabelled(this.api, jobId);
  }
}
