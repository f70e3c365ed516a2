import path from 'node:path';
import type { ImageDetails } from '../runtime/containerEngine.js';
import type { Contract } from './doctorCheck.js';

/** Which contract an image looks built for, why, and whether the evidence settles it. */
export interface ContractGuess {
  contract: Contract;
  reasons: string[];
  /** False when nothing settles it (e.g. the entrypoint is a program vbe cannot read): check both. */
  sure: boolean;
}

/** Programs and libraries that serve HTTP, as they appear in commands, scripts and code. */
const SERVER_MARKERS: Array<[RegExp, string]> = [
  [/\b(gunicorn|uvicorn|hypercorn|waitress|daphne|granian)\b/i, '$1'],
  [/\b(flask|fastapi|starlette|aiohttp\.web|tornado\.web|bottle|cherrypy|sanic)\b/i, '$1'],
  [/\bapp\.run\s*\(|\bserve_forever\s*\(|\bhttp\.server\b|\bHTTPServer\b/, 'an HTTP server in its code'],
  [/\b(plumber|pr_run|plumb\s*\()/i, 'plumber (R)'],
  [/\b(torchserve|tensorflow_model_server|tritonserver|mlserver|bentoml|seldon-core-microservice|kserve|nginx|httpd|node\s+\S*server)\b/i, '$1'],
  [/\bAIP_(HTTP_PORT|PREDICT_ROUTE|HEALTH_ROUTE)\b/, 'AIP_$1 (set by Vertex only for prediction servers)'],
];
/** The file contract's variables. */
const FILES_MARKERS = /\b(AIP_BATCH_INPUT_URIS|AIP_BATCH_OUTPUT_DIR)\b/;
/** Environment variables web-server images set. */
const SERVER_ENV = /^(GUNICORN_CMD_ARGS|APP_MODULE|WEB_CONCURRENCY|UVICORN_\w+|FLASK_APP|TS_CONFIG_FILE|MODEL_BASE_PATH|PLUMBER_\w+)=/;
const INTERPRETERS = /^(python[\d.]*|sh|bash|dash|ash|env|Rscript|R|node|exec|tini|dumb-init)$/;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Files whose text tells what the entrypoint does: the program (looked up on PATH when bare), the
 * scripts its arguments name, and paths inside a `sh -c` string; resolved against WORKDIR.
 */
export function entrypointFiles(image: ImageDetails): string[] {
  const parts = [...(image.entrypoint ?? []), ...(image.cmd ?? [])].slice(0, 16);
  const workdir = image.workingDir || '/';
  const searchPath = (image.env.find((e) => e.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH).split(':').filter(Boolean);
  const out = new Set<string>();
  const tokens = parts.flatMap((p, i) => (i > 0 && /\s/.test(p) ? p.split(/[\s;&|()"'`]+/).filter(Boolean) : [p]));
  tokens.forEach((token, i) => {
    if (token.startsWith('-')) return;
    if (token.startsWith('/')) out.add(path.posix.normalize(token));
    else if (token.includes('/') || /\.(py|sh|bash|R|r|js)$/.test(token)) out.add(path.posix.resolve(workdir, token));
    else if (i === 0 || (i === 1 && INTERPRETERS.test(path.posix.basename(tokens[0]!)))) for (const dir of searchPath) out.add(path.posix.join(dir, token));
  });
  return [...out];
}

/**
 * Guesses the contract from EXPOSE, the command, the text of the entrypoint's scripts (when the
 * image's filesystem was read: `scripts`) and the environment. Without `scripts`, the command alone decides.
 */
export function guessContract(image: ImageDetails, scripts?: ReadonlyMap<string, string>): ContractGuess {
  const reasons: string[] = [];
  if (image.exposedPorts.length) reasons.push(`EXPOSE ${image.exposedPorts.join(' ')}`);
  const command = [...(image.entrypoint ?? []), ...(image.cmd ?? [])].join(' ');
  const found = (text: string) => {
    for (const [pattern, label] of SERVER_MARKERS) {
      const m = pattern.exec(text);
      if (m) return label.replace('$1', m[1] ?? '');
    }
    return undefined;
  };
  const inCommand = found(command) ?? /\b(serve|server)\b/i.exec(command)?.[1];
  if (inCommand) reasons.push(`its command mentions "${inCommand}"`);
  const readable = [...(scripts?.entries() ?? [])].filter(([file]) => !INTERPRETERS.test(path.posix.basename(file)));
  for (const [file, text] of readable) {
    const marker = found(text);
    if (marker) {
      reasons.push(`${file} runs ${marker}`);
      break;
    }
  }
  const env = image.env.find((e) => SERVER_ENV.test(e));
  if (env) reasons.push(`its environment sets ${env.split('=')[0]}`);
  const filesMarker = [command, ...readable.map(([, t]) => t)].map((t) => FILES_MARKERS.exec(t)?.[1]).find(Boolean);

  if (reasons.length && filesMarker) {
    return { contract: 'server', sure: false, reasons: [...reasons, `but it also reads ${filesMarker} (the file contract)`] };
  }
  if (reasons.length) return { contract: 'server', sure: true, reasons };
  if (filesMarker) return { contract: 'files', sure: true, reasons: [`it reads ${filesMarker}`] };
  // Nothing either way: settled only when the command (a shell string) or a script of it could be read.
  const shellString = (image.entrypoint ?? image.cmd ?? []).some((p, i) => i > 0 && /\s/.test(p));
  if (!scripts || shellString || readable.length > 0) {
    return { contract: 'files', sure: true, reasons: [scripts ? `no exposed port and no server program in its command or ${readable.length ? readable.map(([f]) => f).join(', ') : 'its shell command'}` : 'no exposed port and no server program in its command'] };
  }
  return { contract: 'files', sure: false, reasons: ['no exposed port, no server program in its command, and its entrypoint could not be read (a binary, or not found)'] };
}
