import { type EngineApi, segment } from './engineApi.js';
import { call, engineError, statusCode } from './engineErrors.js';
import { LABELS } from './labels.js';

/** Volumes and networks on the engine, and the listing of everything carrying vbe's labels. */

export interface LabelledResources {
  containers: Array<{ id: string; name: string; state: string; labels: Record<string, string> }>;
  volumes: Array<{ name: string; labels: Record<string, string> }>;
  networks: Array<{ id: string; name: string; labels: Record<string, string> }>;
}

export async function createVolume(api: EngineApi, name: string, labels: Record<string, string>): Promise<string> {
  await call(`creating volume ${name}`, () => api.call('POST', '/volumes/create', { body: { Name: name, Labels: labels } }));
  return name;
}

export async function removeVolume(api: EngineApi, name: string): Promise<void> {
  try {
    await api.call('DELETE', `/volumes/${segment(name)}`, { query: { force: true } });
  } catch (error) {
    if (statusCode(error) === 404) return;
    throw engineError(error, `removing volume ${name}`);
  }
}

export async function removeNetwork(api: EngineApi, id: string): Promise<void> {
  try {
    await api.call('DELETE', `/networks/${segment(id)}`);
  } catch (error) {
    if (statusCode(error) === 404) return;
    throw engineError(error, `removing network ${id.slice(0, 12)}`);
  }
}

/** Every container, volume and network carrying our labels (optionally of one job). */
export async function listLabelled(api: EngineApi, jobId?: string): Promise<LabelledResources> {
  const label = [jobId ? `${LABELS.jobId}=${jobId}` : `${LABELS.managed}=true`];
  const filters = JSON.stringify({ label });
  type Labels = Record<string, string> | null | undefined;
  const [containers, volumes, networks] = await call('listing labelled resources', () =>
    Promise.all([
      api.json<Array<{ Id: string; Names?: string[]; State: string; Labels?: Labels }>>('GET', '/containers/json', { query: { all: true, filters } }),
      api.json<{ Volumes?: Array<{ Name: string; Labels?: Labels }> | null }>('GET', '/volumes', { query: { filters } }),
      api.json<Array<{ Id: string; Name: string; Labels?: Labels }>>('GET', '/networks', { query: { filters } }),
    ]),
  );
  return {
    containers: containers.map((c) => ({ id: c.Id, name: (c.Names?.[0] ?? '').replace(/^\//, ''), state: c.State, labels: c.Labels ?? {} })),
    volumes: (volumes.Volumes ?? []).map((v) => ({ name: v.Name, labels: v.Labels ?? {} })),
    networks: networks.map((n) => ({ id: n.Id, name: n.Name, labels: n.Labels ?? {} })),
  };
}
