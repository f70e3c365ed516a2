import { Command } from 'commander';
import { pruneResources } from '../jobs/prune.js';
import { ContainerEngine } from '../runtime/containerEngine.js';
import type { CliContext } from './cliContext.js';

export function pruneCommand(context: CliContext): Command {
  return new Command('prune')
    .description('Remove containers, volumes and networks left behind by vbe runs that were killed.')
    .option('--all', 'also remove resources of vbe processes that are still running')
    .option('--json', 'print what was removed as JSON on stdout')
    .action(async (flags: { all?: boolean; json?: boolean }) => {
      const engine = await ContainerEngine.connect();
      const result = await pruneResources({ engine, all: flags.all ?? false });
      const r = result.removed;
      context.stderr(`removed ${r.containers.length} container(s), ${r.volumes.length} volume(s), ${r.networks.length} network(s)`);
      const s = result.skipped;
      const skipped = s.containers.length + s.volumes.length + s.networks.length;
      if (skipped > 0) context.stderr(`kept ${skipped} resource(s) of vbe processes still running (use --all to remove them too)`);
      if (flags.json) context.stdout(JSON.stringify(result, null, 2));
    });
}
