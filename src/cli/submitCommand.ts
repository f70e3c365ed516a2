import { Command } from 'commander';
import type { CliContext } from './cliContext.js';

export function submitCommand(_context: CliContext): Command {
  return new Command('submit').description('Create the job on Vertex AI');
}
