import { ContainerEngine, type HostInfo } from '../../runtime/containerEngine.js';
import type { RunJobHooks } from '../jobHooks.js';

/** The engine a job runs on and what its host offers. */
export interface EngineSession {
  engine: ContainerEngine;
  host: HostInfo;
}

/**
 * Connects to the engine (or takes `hooks.engine`) and reads its host. It begins at once, so that
 * it overlaps validation; its failure is only seen when awaited, after validation, so bad input is
 * still reported first.
 */
export function connectEngine(hooks: RunJobHooks): Promise<EngineSession> {
  const session = (async () => {
    const engine = hooks.engine ?? (await ContainerEngine.connect());
    return { engine, host: await engine.hostInfo() };
  })();
  session.catch(() => undefined); // awaited by the connect phase; not unhandled when validation fails first
  return session;
}
