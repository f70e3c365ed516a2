import { spawn } from 'node:child_process';
import tarStream from 'tar-stream';

/**
 * Makes a copy of a local image that claims another platform (e.g. linux/arm64), by rewriting
 * the config in a `docker save` archive and loading it back: what an image built on an Apple
 * silicon laptop looks like to the engine, without needing any registry.
 */
export async function retagWithArchitecture(source: string, target: string, architecture: string): Promise<void> {
  const save = spawn('docker', ['save', source], { stdio: ['ignore', 'pipe', 'inherit'] });
  const extract = tarStream.extract();
  const entries: Array<{ header: tarStream.Header; body: Buffer }> = [];
  save.stdout.pipe(extract as unknown as NodeJS.WritableStream);
  for await (const entry of extract as AsyncIterable<NodeJS.ReadableStream & AsyncIterable<Buffer> & { header: tarStream.Header }>) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk);
    entries.push({ header: entry.header, body: Buffer.concat(chunks) });
  }
  const manifestEntry = entries.find((e) => e.header.name === 'manifest.json');
  if (!manifestEntry) throw new Error('docker save archive has no manifest.json');
  const manifest = JSON.parse(manifestEntry.body.toString('utf8')) as Array<{ Config: string; RepoTags: string[] }>;
  const configName = manifest[0]!.Config;
  manifest[0]!.RepoTags = [target];
  manifestEntry.body = Buffer.from(JSON.stringify(manifest));
  const configEntry = entries.find((e) => e.header.name === configName)!;
  const config = JSON.parse(configEntry.body.toString('utf8')) as Record<string, unknown>;
  config.architecture = architecture;
  configEntry.body = Buffer.from(JSON.stringify(config));
  entries.splice(entries.indexOf(entries.find((e) => e.header.name === 'repositories')!), entries.some((e) => e.header.name === 'repositories') ? 1 : 0);

  const pack = tarStream.pack();
  const load = spawn('docker', ['load'], { stdio: ['pipe', 'ignore', 'inherit'] });
  (pack as unknown as NodeJS.ReadableStream).pipe(load.stdin);
  for (const e of entries) pack.entry({ ...e.header, size: e.body.length }, e.body);
  pack.finalize();
  const code = await new Promise<number | null>((resolve) => load.on('close', resolve));
  if (code !== 0) throw new Error(`docker load exited ${code}`);
}
