// The engine's own cost of the two tar copies every vbe job needs (bench case 1b): one archive in
// (`PUT /containers/{id}/archive`, what `docker cp` into a container does) and one out (`GET
// .../archive`), timed on a created container with a volume at /vbe, as vbe's job containers have.
// Docker 20.10 re-executes dockerd (chrootarchive) for each archive operation: on a slow VM that is
// ~135 ms even for an empty archive, while `HEAD .../archive` (a stat, no re-exec) costs a few ms.
// vbe must copy through the API (remote engines, no bind mounts), so these two are its floor.
import http from 'node:http';

/** An empty tar archive: two 512-byte zero blocks. */
const EMPTY_TAR = Buffer.alloc(1024);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** Where the engine answers: DOCKER_HOST (unix:// or tcp:// without TLS) or the default socket. */
function target() {
  const host = process.env.DOCKER_HOST;
  if (!host || host.startsWith('unix://')) return { socketPath: host ? host.slice('unix://'.length) : '/var/run/docker.sock' };
  const url = new URL(host.replace(/^tcp:/, 'http:'));
  return { host: url.hostname, port: Number(url.port || 2375) };
}

/** One Engine API request; resolves with its status and body once the answer is read whole. */
function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const headers = {};
    if (body) {
      headers['Content-Type'] = Buffer.isBuffer(body) ? 'application/x-tar' : 'application/json';
      body = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
      headers['Content-Length'] = String(body.length);
    }
    const req = http.request({ ...target(), agent, method, path, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks);
        if (res.statusCode >= 300) reject(new Error(`${method} ${path}: HTTP ${res.statusCode} ${text.toString('utf8').slice(0, 300)}`));
        else resolve({ status: res.statusCode, body: text });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function timed(fn) {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/**
 * Creates a container of `image` (not started; an anonymous volume at /vbe; `labels`), times an
 * empty tar PUT into /vbe, a GET of /vbe (an empty directory) and a HEAD of it, then removes the
 * container and its volume. Creation and removal are not counted.
 */
export async function timeArchiveCopies(image, labels) {
  const created = await request('POST', '/containers/create', {
    Image: image,
    Labels: labels,
    HostConfig: { Mounts: [{ Type: 'volume', Target: '/vbe' }], NetworkMode: 'none' },
  });
  const id = JSON.parse(created.body.toString('utf8')).Id;
  try {
    const putMs = await timed(() => request('PUT', `/containers/${id}/archive?path=%2Fvbe`, EMPTY_TAR));
    const getMs = await timed(() => request('GET', `/containers/${id}/archive?path=%2Fvbe`));
    const headMs = await timed(() => request('HEAD', `/containers/${id}/archive?path=%2Fvbe`));
    return { putMs, getMs, headMs, copiesMs: putMs + getMs };
  } finally {
    await request('DELETE', `/containers/${id}?force=true&v=true`).catch(() => undefined);
  }
}
