import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PredictionClient } from '../../src/jobs/predictionClient.js';
import { ResponseParser } from '../../src/http/responseParser.js';
import { ServerConnection } from '../../src/jobs/serverConnection.js';

/** Feeds a response to a parser one byte at a time (every split a socket could make). */
function byteByByte(response: string, maxBytes = 1024): ResponseParser {
  const parser = new ResponseParser(maxBytes);
  const bytes = Buffer.from(response, 'latin1');
  for (let i = 0; i < bytes.length; i++) {
    const complete = parser.push(bytes.subarray(i, i + 1));
    if (parser.error) break;
    if (complete) {
      if (i < bytes.length - 1) parser.push(bytes.subarray(i + 1)); // what follows a response
      break;
    }
  }
  return parser;
}

function parsed(parser: ResponseParser) {
  return { status: parser.status, body: parser.body().toString('latin1'), keepAlive: parser.keepAlive, error: parser.error };
}

describe('HTTP response parsing', () => {
  it('Content-Length bodies, whatever the split', () => {
    const p = byteByByte('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 13\r\n\r\n{"a":[1,2,3]}');
    expect(parsed(p)).toEqual({ status: 200, body: '{"a":[1,2,3]}', keepAlive: true, error: undefined });
    const whole = new ResponseParser(1024);
    expect(whole.push(Buffer.from('HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops'))).toBe(true);
    expect(parsed(whole)).toMatchObject({ status: 500, body: 'oops' });
  });
  it('chunked bodies, with chunk extensions and trailers', () => {
    const p = byteByByte('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1A\r\n, abcdefghijklmnopqrstuvwx\r\n0\r\nX-Trailer: 1\r\n\r\n');
    expect(parsed(p)).toEqual({ status: 200, body: 'hello, abcdefghijklmnopqrstuvwx', keepAlive: true, error: undefined });
  });
  it('informational answers are skipped; 204 has no body', () => {
    expect(parsed(byteByByte('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}'))).toMatchObject({ status: 200, body: '{}' });
    expect(parsed(byteByByte('HTTP/1.1 204 No Content\r\n\r\n'))).toMatchObject({ status: 204, body: '' });
  });
  it('keep-alive as the version and Connection say; bytes after the response end it too', () => {
    expect(byteByByte('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n').keepAlive).toBe(false);
    expect(byteByByte('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').keepAlive).toBe(false);
    expect(byteByByte('HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n').keepAlive).toBe(true);
    expect(byteByByte('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1').keepAlive).toBe(false);
  });
  it('a body without a length runs until the server closes', () => {
    const p = byteByByte('HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{"predictions":[1]}');
    expect(p.end()).toBe(true);
    expect(parsed(p)).toMatchObject({ status: 200, body: '{"predictions":[1]}', keepAlive: false });
    expect(byteByByte('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab').end()).toBe(false); // cut short
  });
  it.each([
    ['SSH-2.0-OpenSSH\r\n\r\n', 'invalid status line'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n', 'invalid Content-Length'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n', 'invalid Content-Length'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n', 'larger than 1024 bytes'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n', 'larger than 1024 bytes'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 'invalid chunk size'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n', 'does not end with CRLF'],
    ['HTTP/1.1 101 Switching Protocols\r\n\r\n', 'switched protocols'],
  ])('refuses %j', (response, message) => {
    expect(byteByByte(response).error).toContain(message);
  });
});

describe('ServerConnection and the predict client', () => {
  const servers: Array<http.Server | net.Server> = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });
  async function listen<T extends http.Server | net.Server>(server: T): Promise<number> {
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return (server.address() as AddressInfo).port;
  }
  const head = (port: number, length: number) => `POST /predict HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: ${length}\r\n\r\n`;

  it('keeps one connection for many predict requests; Content-Length and chunked answers', async () => {
    let connections = 0;
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const { instances } = JSON.parse(Buffer.concat(chunks).toString()) as { instances: unknown[] };
        const text = JSON.stringify({ predictions: instances });
        if (req.headers['x-chunked'] === undefined && instances.length % 2) res.end(text);
        else {
          res.write(text.slice(0, 5)); // no Content-Length: node sends it chunked
          setImmediate(() => res.end(text.slice(5)));
        }
      });
    });
    server.on('connection', () => (connections += 1));
    const port = await listen(server);
    const client = new PredictionClient('127.0.0.1', port, 3);
    try {
      for (let n = 1; n <= 6; n++) {
        const instances = Array.from({ length: n }, (_, i) => ({ i }));
        const outcome = await client.predict('/predict', Buffer.from(JSON.stringify({ instances })), n, 5000);
        expect(outcome).toMatchObject({ ok: true, predictions: instances.map((x) => JSON.stringify(x)) });
      }
      expect(connections).toBe(1);
      const [a, b] = await Promise.all([1, 2].map(() => client.predict('/predict', Buffer.from('{"instances":[1]}'), 1, 5000)));
      expect([a!.ok, b!.ok]).toEqual([true, true]);
      expect(connections).toBe(2); // two at once: two connections
    } finally {
      client.close();
    }
  });

  it('a connection the server closed while idle is not reused', async () => {
    let connections = 0;
    const server = net.createServer((socket) => {
      connections += 1;
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 19\r\n\r\n{"predictions":[0]}');
        setTimeout(() => socket.end(), 20); // an idle keep-alive timeout
      });
    });
    const port = await listen(server);
    const client = new PredictionClient('127.0.0.1', port, 3);
    try {
      expect((await client.predict('/predict', Buffer.from('{"instances":[0]}'), 1, 5000)).ok).toBe(true);
      await new Promise((r) => setTimeout(r, 200));
      expect((await client.predict('/predict', Buffer.from('{"instances":[0]}'), 1, 5000)).ok).toBe(true);
      expect(connections).toBe(2);
    } finally {
      client.close();
    }
  });

  it('HTTP/1.0 answers that end with the connection; hang-ups; timeouts; refused connections', async () => {
    const port = await listen(
      net.createServer((socket) => {
        socket.once('data', (data: Buffer) => {
          const body = data.toString('latin1').split('\r\n\r\n')[1]!;
          if (body === 'hang-up') socket.destroy();
          else if (body === 'slow') return;
          else socket.end(`HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n${body}`);
        });
      }),
    );
    const exchange = (body: string, timeoutMs = 5000) => new ServerConnection('127.0.0.1', port).exchange(head(port, body.length), Buffer.from(body), timeoutMs, 1024);
    expect(await exchange('{"predictions":[]}')).toEqual({ status: 200, body: Buffer.from('{"predictions":[]}') });
    expect(await exchange('hang-up')).toEqual({ error: 'ECONNRESET: socket hang up', timedOut: false });
    expect(await exchange('slow', 200)).toEqual({ error: 'no answer within 200 ms', timedOut: true });
    const closed = await listen(net.createServer());
    await new Promise((r) => servers.pop()!.close(r));
    const refused = await new ServerConnection('127.0.0.1', closed).exchange(head(closed, 2), Buffer.from('{}'), 5000, 1024);
    expect(refused).toMatchObject({ error: expect.stringMatching(/^ECONNREFUSED: /), timedOut: false });
  });
});
