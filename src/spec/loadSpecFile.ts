import { readFile } from 'node:fs/promises';
import { usageError } from '../errors.js';

/** Reads a job spec written as JSON or YAML (YAML is a superset, but JSON errors read better). */
export async function loadSpecFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw usageError(
      'SPEC_UNREADABLE',
      `--spec: cannot read "${file}" (${code ?? String(error)}).`,
      'Pass the path of a job spec file (JSON or YAML).',
    );
  }
  try {
    if (/\.json$/i.test(file)) return JSON.parse(text);
    const { parse: parseYaml } = await import('yaml');
    return parseYaml(text);
  } catch (error) {
    throw usageError('SPEC_PARSE_ERROR', `--spec: "${file}" is not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML/JSON'}: ${(error as Error).message}`, 'Fix the syntax error and run again.');
  }
}
