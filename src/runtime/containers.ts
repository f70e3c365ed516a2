import { PassThrough, type Readable } from 'node:stream';
import { demultiplex, type EngineApi, readJsonLines, segment } from './engineApi.js';
import { call, CONNECTION_CODES, engineError, statusCode } from './engineErrors.js';
import type { BodySink } from '../http/responseParser.js';
import { JsonArrayReader } from './jsonArrayReader.js';
import { type ContainerStatsSample, type EngineStats, statsSample } from './containerStats.js';

export type { ContainerStatsSample };

/**
 * Containers follow a typestate lifecycle: CreatedContainer -> StartedContainer -> ExitedContainer,
 * each with only the operations that make sense in that state.
 */

export interface FileChange {
  path: string;
  kind: 'modified' | 'added' | 'deleted';
}

interface ContainerInspect {
  State: { Running: boolean; ExitCode: number; OOMKilled?: boolean; Error?: string };
  NetworkSettings?: { Ports?: Record<string, Array<{ HostIp?: string; HostPort?: string }> | null> | null };
}

export async function removeContainer(api: EngineApi, id: string): Promise<void> {
  try {
    await api.call('DELETE', `/containers/${segment(id)}`, { query: { force: true, v: true } });
  } catch (error) {
    const code = statusCode(error);
    if (code === 404) return;
    if (code === 409) {
      // Removal already in progress: wait for it to finish.
      await new Promise((r) => setTimeout(r, 500));
      return removeContainer(api, id);
    }
    throw engineError(error, `removing container ${id.slice(0, 12)}`);
  }
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

