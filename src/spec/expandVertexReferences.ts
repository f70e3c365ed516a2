/**
 * Vertex (Kubernetes) variable references in `command`, `args` and `env` values
 * (aiplatform v1 env_var.proto): `$(VAR)` expands to a defined variable, an undefined
 * reference stays as written, `$$` is an escaped `$` (so `$$(VAR)` yields the literal `$(VAR)`).
 */
export function expandVertexReferences(text: string, variables: ReadonlyMap<string, string>): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch !== '$' || i + 1 >= text.length) {
      out += ch;
      i += 1;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (next === '(') {
      const close = text.indexOf(')', i + 2);
      if (close !== -1) {
        const name = text.slice(i + 2, close);
        const value = variables.get(name);
        out += value ?? `$(${name})`;
        i = close + 1;
        continue;
      }
    }
    out += ch;
    i += 1;
  }
  return out;
}

export interface EnvVar {
  name: string;
  value: string;
}

/**
 * Builds the container environment the way Vertex does: its own variables first, then the
 * user's entries in order, each expanded against the Vertex variables and the entries before it
 * (never the image's own ENV). Returns the final list and the map used for command/args.
 */
export function buildEnvironment(vertexEnv: readonly EnvVar[], userEnv: readonly EnvVar[]) {
  const variables = new Map<string, string>(vertexEnv.map((e) => [e.name, e.value]));
  const env: EnvVar[] = [...vertexEnv];
  for (const entry of userEnv) {
    const value = expandVertexReferences(entry.value, variables);
    variables.set(entry.name, value);
    const existing = env.findIndex((e) => e.name === entry.name);
    if (existing >= 0) env.splice(existing, 1);
    env.push({ name: entry.name, value });
  }
  return { env, variables };
}
