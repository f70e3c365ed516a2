import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { usageError } from '../errors.js';

/** The active gcloud configuration's properties (`[core] project`, `[ai] region`), if any. */
function gcloudProperties(): Record<string, Record<string, string>> {
  const dir = process.env.CLOUDSDK_CONFIG || path.join(os.homedir(), '.config', 'gcloud');
  let active = process.env.CLOUDSDK_ACTIVE_CONFIG_NAME;
  try {
    active ??= readFileSync(path.join(dir, 'active_config'), 'utf8').trim();
  } catch {
    active = 'default';
  }
  const sections: Record<string, Record<string, string>> = {};
  try {
    let section = '';
    for (const line of readFileSync(path.join(dir, 'configurations', `config_${active || 'default'}`), 'utf8').split('\n')) {
      const header = /^\s*\[([^\]]+)\]\s*$/.exec(line);
      if (header) section = header[1]!.trim();
      const pair = /^\s*([A-Za-z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
      if (pair && section) (sections[section] ??= {})[pair[1]!] = pair[2]!;
    }
  } catch {
    // no gcloud configuration
  }
  return sections;
}

/** --project, else GOOGLE_CLOUD_PROJECT / CLOUDSDK_CORE_PROJECT / GCLOUD_PROJECT, else gcloud's `core/project`. */
export function resolveProject(flag: string | undefined): string {
  const project = flag || process.env.GOOGLE_CLOUD_PROJECT || process.env.CLOUDSDK_CORE_PROJECT || process.env.GCLOUD_PROJECT || gcloudProperties().core?.project;
  if (!project) throw usageError('MISSING_PROJECT', 'project: no Google Cloud project given.', 'Pass --project P, set GOOGLE_CLOUD_PROJECT, or run `gcloud config set project P`.');
  return project;
}

/** --region, else CLOUDSDK_AI_REGION / GOOGLE_CLOUD_REGION, else gcloud's `ai/region`. */
export function resolveRegion(flag: string | undefined): string {
  const region = flag || process.env.CLOUDSDK_AI_REGION || process.env.GOOGLE_CLOUD_REGION || gcloudProperties().ai?.region;
  if (!region) throw usageError('MISSING_REGION', 'region: no Vertex AI region given.', 'Pass --region us-central1, set CLOUDSDK_AI_REGION, or run `gcloud config set ai/region us-central1`.');
  if (!/^[a-z]+(-[a-z0-9]+)+$/.test(region)) throw usageError('INVALID_REGION', `--region: "${region}" is not a region name.`, 'Give a region such as us-central1 or europe-west4.');
  return region;
}
