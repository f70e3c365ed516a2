import type { Logger } from 'pino';
import { type ContainerCreateSpec, type ContainerEngine, type CreatedContainer, resourceLabels } from '../runtime/containerEngine.js';

/**
 * Everything one job creates on the engine, so that cleanup can remove exactly that, on every
 * path, within its own time budget (and even after the job was cancelled).
 */
export class JobResources {
  private readonly containers: string[] = [];
  private readonly volumes: string[] = [];
  readonly labels: Record<string, string>;

  constructor(
    private readonly engine: ContainerEngine,
    readonly jobId: string,
    private readonly logger: Logger,
  ) {
    this.labels = resourceLabels(jobId);
  }

  async volume(name: string): Promise<string> {
    this.volumes.push(name);
    await this.engine.createVolume(name, this.labels);
    return name;
  }

  async container(spec: Omit<ContainerCreateSpec, 'labels'>): Promise<CreatedContainer> {
    const created = await this.engine.createContainer({ ...spec, labels: this.labels });
    this.containers.push(created.id);
    return created;
  }

  /** Removes containers, then volumes (each group at once). Never throws; returns what it could not remove. */
  async cleanup(budgetMs: number): Promise<string[]> {
    const leftovers: string[] = [];
    // Containers first (a volume in use cannot go), each group removed at once.
    const work = (async () => {
      await Promise.all(
        this.containers.splice(0).map((id) =>
          this.engine.removeContainer(id).catch((error: unknown) => {
            leftovers.push(`container ${id.slice(0, 12)}`);
            this.logger.debug({ err: error }, 'could not remove container');
          }),
        ),
      );
      await Promise.all(
        this.volumes.splice(0).map((name) =>
          this.engine.removeVolume(name).catch((error: unknown) => {
            leftovers.push(`volume ${name}`);
            this.logger.debug({ err: error }, 'could not remove volume');
          }),
        ),
      );
    })();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), budgetMs);
    });
    const outcome = await Promise.race([work.then(() => 'done' as const), timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') leftovers.push('(cleanup ran out of time; run `vbe prune`)');
    return leftovers;
  }
}
