import { buildEnvironment, type EnvVar, expandVertexReferences } from '../../spec/expandVertexReferences.js';

/** What a replica runs: its environment, and the command and args with `$(VAR)` expanded. */
export interface ContainerCommand {
  environment: EnvVar[];
  command?: string[];
  args?: string[];
}

/** Vertex's variables first, then the user's entries, expanded by Vertex's rules (pure). */
export function containerCommand(vertexEnv: readonly EnvVar[], userEnv: readonly EnvVar[], command: readonly string[] | undefined, args: readonly string[] | undefined): ContainerCommand {
  const built = buildEnvironment(vertexEnv, userEnv);
  return {
    environment: built.env,
    ...(command ? { command: command.map((part) => expandVertexReferences(part, built.variables)) } : {}),
    ...(args ? { args: args.map((part) => expandVertexReferences(part, built.variables)) } : {}),
  };
}
