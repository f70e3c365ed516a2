import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CRC32C } from '@google-cloud/storage';

/**
 * A stand-in for the Cloud Storage JSON API on 127.0.0.1, for `--gcs real` tests: the real client
 * library (@google-cloud/storage, pointed here by STORAGE_EMULATOR_HOST) talks to it over HTTP.
 * It serves what vbe uses: list with prefix and pages, object metadata, media download with
 * x-goog-hash (the client checks it), multipart upload (returning hashes the client checks).
 * No real Cloud Storage and no GCS emulator package can run on this offline machine.
 */
export interface FakeGcs {
  /** Value for STORAGE_EMULATOR_HOST. */
  endpoint: string;
  put(bucket: string, name: string, data: string | Buffer): void;
  get(bucket: string, name: string): Buffer | undefined;
  names(bucket: string): string[];
  /** Requests seen, as "METHOD path?query". */
  requests: string[];
  /** Make every upload fail with this HTTP status (e.g. 403), or undefined. */
  failUploads?: number;
  close(): Promise<void>;
}

export async function startFakeGcs(): Promise<FakeGcs> {
  const buckets = new Map<string, Map<string, Buffer>>();
  const bucket = (name: string) => {
    let b = buckets.get(name);
    if (!b) buckets.set(name, (b = new Map()));
    return b;
  };
  const fake: FakeGcs = {
    endpoint: '',
    requests: [],
    put: (b, name, data) => void bucket(b).set(name, Buffer.from(data)),
    get: (b, name) => buckets.get(b)?.get(name),
    names: (b) => [...(buckets.get(b)?.keys() ?? [])].sort(),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => send(res, 500, { error: { code: 500, message: String(error) } }));
  });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    fake.requests.push(`${req.method} ${url.pathname}${url.search}`);
    const body = await readBody(req);
    const pathname = url.pathname.replace(/^\/storage\/v1(?=\/)/, '');
    const upload = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(pathname);
    if (upload && req.method === 'POST') {
      if (fake.failUploads) return send(res, fake.failUploads, { error: { code: fake.failUploads, message: 'vbe-test: uploads refused' } });
      if (url.searchParams.get('uploadType') !== 'multipart') return send(res, 400, { error: { code: 400, message: 'only uploadType=multipart here' } });
      const [metaPart, dataPart] = parseMultipart(body, String(req.headers['content-type']));
      const metadata = JSON.parse(metaPart!.toString('utf8')) as { name?: string };
      const name = metadata.name ?? url.searchParams.get('name')!;
      bucket(upload[1]!).set(name, dataPart!);
      return send(res, 200, resource(upload[1]!, name, dataPart!));
    }
    const object = /^\/b\/([^/]+)\/o\/(.+)$/.exec(pathname);
    if (object && req.method === 'GET') {
      const name = decodeURIComponent(object[2]!);
      const data = buckets.get(object[1]!)?.get(name);
      if (!data) return send(res, 404, { error: { code: 404, message: `No such object: ${object[1]}/${name}` } });
      if (url.searchParams.get('alt') !== 'media') return send(res, 200, resource(object[1]!, name, data));
      const { md5, crc32c } = hashes(data);
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': data.length,
        'x-goog-hash': `crc32c=${crc32c},md5=${md5}`,
        'x-goog-stored-content-encoding': 'identity',
      });
      return res.end(data);
    }
    const list = /^\/b\/([^/]+)\/o$/.exec(pathname);
    if (list && req.method === 'GET') {
      const prefix = url.searchParams.get('prefix') ?? '';
      const pageSize = Number(url.searchParams.get('maxResults') ?? 2);
      const names = [...(buckets.get(list[1]!)?.keys() ?? [])].filter((n) => n.startsWith(prefix)).sort();
      const start = Number(url.searchParams.get('pageToken') ?? 0);
      const page = names.slice(start, start + pageSize);
      const next = start + pageSize < names.length ? { nextPageToken: String(start + pageSize) } : {};
      return send(res, 200, { kind: 'storage#objects', items: page.map((n) => resource(list[1]!, n, buckets.get(list[1]!)!.get(n)!)), ...next });
    }
    return send(res, 404, { error: { code: 404, message: `vbe-test fake GCS: no route for ${req.method} ${url.pathname}` } });
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}

function hashes(data: Buffer) {
  const crc32c = new CRC32C();
  crc32c.update(data);
  return { md5: createHash('md5').update(data).digest('base64'), crc32c: crc32c.toString() };
}

function resource(bucketName: string, name: string, data: Buffer) {
  const { md5, crc32c } = hashes(data);
  return { kind: 'storage#object', bucket: bucketName, name, id: `${bucketName}/${name}`, size: String(data.length), md5Hash: md5, crc32c, generation: '1' };
}

function send(res: ServerResponse, status: number, json: unknown) {
  const text = JSON.stringify(json);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** multipart/related: the bodies of the parts, in order. */
function parseMultipart(body: Buffer, contentType: string): Buffer[] {
  const boundary = /boundary="?([^";]+)"?/.exec(contentType)?.[1];
  if (!boundary) throw new Error(`no boundary in ${contentType}`);
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Buffer[] = [];
  let at = body.indexOf(delimiter);
  while (at !== -1) {
    const start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, start);
    const part = body.subarray(start, next === -1 ? body.length : next);
    const headerEnd = part.indexOf('\r\n\r\n');
    parts.push(part.subarray(headerEnd + 4, part.length - 2)); // without the CRLF before the next delimiter
    at = next;
  }
  return parts;
}
