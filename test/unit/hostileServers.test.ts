import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ResponseParser } from '../../src/http/responseParser.js';
import { arrayMember } from '../../src/instances/jsonSyntax.js';
import { PredictionClient } from '../../src/jobs/predictionClient.js';
import { ServerConnection } from '../../src/jobs/serverConnection.js';
import { EngineApi, EngineApiError } from '../../src/runtime/engineApi.js';

/** Model servers (and an engine) that answer badly on purpose: every answer ends in a verdict, quickly, in bounded memory. */

const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A raw TCP server on 127.0.0.1 that runs `answer` on each request's first bytes. */
async function rawServer(answer: (socket: net.Socket) => void): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.once('data', () => answer(socket));
  });
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  const close = server.close.bind(server);
  server.close = ((cb?: (err?: Error) => void) => {
    for (const s of sockets) s.destroy();
    return close(cb);
  }) as typeof server.close;
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

const head = (port: number, length: number) => `POST /predict HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: ${length}\r\n\r\n`;

function exchange(port: number, timeoutMs: number) {
  return new ServerConnection('127.0.0.1', port).exchange(head(port, 2), Buffer.from('{}'), timeoutMs, 1024 * 1024);
}

/** Feeds a response to a parser in pieces of `step` bytes. */
function parse(response: string, step = 1): ResponseParser {
  const parser = new ResponseParser(1024);
  const bytes = Buffer.from(response, 'latin1');
  for (let i = 0; i < bytes.length && !parser.error; i += step) if (parser.push(bytes.subarray(i, i + step))) break;
  return parser;
}

describe('a huge "predictions" array: counted in bounded memory, never materialised', () => {
  it('the elements past the instances sent are counted, not kept', () => {
    const text = `{"predictions":[${'[1,{"a":2}],'.repeat(999_999)}0], "x": 1}`;
    const member = arrayMember(text, 'predictions', 3);
    expect(member).toMatchObject({ json: true, found: true, count: 1_000_000, keys: ['predictions', 'x'] });
    expect(member.spans).toHaveLength(6);
  });

  it('8 million predictions for 2 instances: PREDICT count mismatch, quickly and without growing the heap by the array', async () => {
    const body = Buffer.from(`{"predictions":[${'0,'.repeat(8_000_000 - 1)}0]}`);
    const port = await rawServer((socket) => socket.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body])));
    const client = new PredictionClient('127.0.0.1', port, 1);
    const heapBefore = process.memoryUsage().heapUsed;
    const started = performance.now();
    try {
      const outcome = await client.predict('/predict', Buffer.from('{"instances":[1,2]}'), 2, 20_000);
      expect(outcome).toMatchObject({ ok: false, kind: 'count-mismatch', message: 'The model server returned 8000000 predictions for 2 instances.' });
    } finally {
      client.close();
    }
    // The old path (every span kept, then JSON.parse) held ~0.5 GiB of heap for this answer.
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(100 * 1024 * 1024);
    expect(performance.now() - started).toBeLessThan(15_000);
  });

  it('a pretty-printed answer is re-serialized one prediction at a time; other shapes are named', async () => {
    const answers = [
      '{\n  "predictions": [\n    {"a": [1,\n 2]},\n    3\n  ]\n}',
      '{"deployedModelId": "1", "outputs": [1, 2]}',
      '[1, 2]',
      '{"predictions": [1, 2',
    ];
    const port = await rawServer((socket) => {
      const body = answers.shift()!;
      socket.end(`HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    });
    const client = new PredictionClient('127.0.0.1', port, 1);
    try {
      const predict = () => client.predict('/predict', Buffer.from('{"instances":[1,2]}'), 2, 5000);
      expect(await predict()).toMatchObject({ ok: true, predictions: ['{"a":[1,2]}', '3'] });
      expect(await predict()).toMatchObject({ ok: false, kind: 'no-predictions', message: expect.stringContaining('(it has: deployedModelId, outputs)') });
      expect(await predict()).toMatchObject({ ok: false, kind: 'no-predictions', message: expect.stringContaining('(it has: not an object)') });
      expect(await predict()).toMatchObject({ ok: false, kind: 'not-json' });
    } finally {
      client.close();
    }
  });
});

describe('HTTP answers refused at once, as node:http refuses them (RFC 9112)', () => {
  it.each([
    ['a bare-LF head', 'HTTP/1.1 200 OK\nContent-Length: 2\n\n{}', 'a bare LF'],
    ['a bare LF after a CRLF line', 'HTTP/1.1 200 OK\r\nContent-Length: 2\n\r\n{}', 'a bare LF'],
    ['a bare CR in a header', 'HTTP/1.1 200 OK\r\nX-A: 1\r2\r\nContent-Length: 2\r\n\r\n{}', 'a bare CR'],
    ['a space before the colon', 'HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n{}', 'invalid header line "Content-Length : 2"'],
    ['an obs-folded header', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 2\r\n\r\n{}', 'invalid header line " 2"'],
    ['an empty header name', 'HTTP/1.1 200 OK\r\n: 2\r\n\r\n{}', 'invalid header line'],
    ['a control character in a value', 'HTTP/1.1 200 OK\r\nX-A: a\u0001b\r\n\r\n{}', 'invalid header line'],
    ['Content-Length with Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n', 'both Content-Length and Transfer-Encoding'],
    ['a status line with garbage', 'HTTP/1.1 200 OK\u0000\r\nContent-Length: 2\r\n\r\n{}', 'invalid status line'],
    ['a bare LF in a chunk size line', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\n{}\r\n0\r\n\r\n', 'a bare LF'],
    ['a chunk size with junk', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 x\r\n{}\r\n0\r\n\r\n', 'invalid chunk size line'],
    ['a malformed trailer', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX : 1\r\n\r\n', 'invalid trailer line'],
  ])('%s', (_, response, message) => {
    for (const step of [1, 3, 1000]) expect(parse(response, step).error, `pushed ${step} bytes at a time`).toContain(message);
  });

  it.each([
    ['endless trailer lines', `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n${'X-T: 1\r\n'.repeat(10_000)}`, 'trailer section longer than 65536 bytes'],
    ['one endless trailer line', `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: ${'1'.repeat(70_000)}`, 'trailer section longer than 65536 bytes'],
    ['endless headers', `HTTP/1.1 200 OK\r\n${'X-H: 1\r\n'.repeat(10_000)}`, 'response head longer than 65536 bytes'],
    ['endless 100 Continue heads', 'HTTP/1.1 100 Continue\r\n\r\n'.repeat(4000), 'informational (1xx) heads longer than 65536 bytes'],
    ['endless empty lines', '\r\n'.repeat(40_000), 'longer than 65536 bytes'],
    ['a long chunk size line', `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${'e'.repeat(9000)}`, 'chunk size line longer than 8192 bytes'],
  ])('%s: a bound in bytes, and linear time even one byte at a time', (_, response, message) => {
    const started = performance.now();
    expect(parse(response, 1).error).toContain(message);
    expect(parse(response, 4096).error).toContain(message);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('answers that stay legal: reason-less status line, a chunk extension, trailers, tabs around values', () => {
    const ok = (response: string) => {
      for (const step of [1, 7, 1000]) {
        const p = parse(response, step);
        expect(p.error).toBeUndefined();
        expect(p.body().toString()).toBe('{}');
      }
    };
    ok('HTTP/1.1 200\r\nContent-Length:\t2 \r\n\r\n{}');
    ok('\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;a=b\r\n{}\r\n0\r\nX-T: 1\r\n\r\n');
    ok('HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}');
  });

  it('over a socket, an endless flood of 100 Continue fails in well under the timeout', async () => {
    const port = await rawServer((socket) => {
      const flood = () => {
        if (socket.destroyed) return;
        if (socket.write('HTTP/1.1 100 Continue\r\n\r\n'.repeat(500))) setImmediate(flood);
        else socket.once('drain', flood);
      };
      flood();
    });
    const started = Date.now();
    expect(await exchange(port, 10_000)).toEqual({ error: 'invalid HTTP response: informational (1xx) heads longer than 65536 bytes', timedOut: false });
    expect(Date.now() - started).toBeLessThan(3000);
  });
});

describe('102 Processing resets the request deadline (as it resets the Google Front End timer)', () => {
  /** Answers after `delayMs`, sending a 102 every `everyMs` meanwhile (none when 0). */
  function slowServer(delayMs: number, everyMs: number): Promise<number> {
    return rawServer((socket) => {
      const ticker = everyMs > 0 ? setInterval(() => socket.write('HTTP/1.1 102 Processing\r\n\r\n'), everyMs) : undefined;
      setTimeout(() => {
        clearInterval(ticker);
        if (!socket.destroyed) socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}');
      }, delayMs);
      socket.on('close', () => clearInterval(ticker));
    });
  }

  it('an answer after 1.5 s with a 102 every 200 ms beats a 600 ms timeout; without the 102s it times out', async () => {
    expect(await exchange(await slowServer(1500, 200), 600)).toEqual({ status: 200, body: Buffer.from('{}') });
    expect(await exchange(await slowServer(1500, 0), 600)).toEqual({ error: 'no answer within 600 ms', timedOut: true });
  });

  it('a flood of 102s is still bounded (the budget of 1xx bytes is renewed at most once a second)', async () => {
    const port = await rawServer((socket) => {
      const flood = () => {
        if (socket.destroyed) return;
        if (socket.write('HTTP/1.1 102 Processing\r\n\r\n'.repeat(500))) setImmediate(flood);
        else socket.once('drain', flood);
      };
      flood();
    });
    expect(await exchange(port, 10_000)).toMatchObject({ error: expect.stringContaining('informational (1xx) heads longer than'), timedOut: false });
  });
});

describe('an engine error body split over several socket reads', () => {
  it('is read whole, not garbled by the reused read buffer', async () => {
    const message = `no such container: ${'abcdefghij'.repeat(300)}`;
    const body = JSON.stringify({ message });
    const port = await rawServer((socket) => {
      const parts = [`HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`, body.slice(0, 1000), body.slice(1000, 2000), body.slice(2000)];
      const next = () => {
        const part = parts.shift();
        if (part === undefined) return;
        socket.write(part);
        setTimeout(next, 30);
      };
      next();
    });
    const api = new EngineApi({ host: '127.0.0.1', port, protocol: 'http' });
    const error = await api.download('GET', '/containers/x/archive', {}, () => undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EngineApiError);
    expect((error as EngineApiError).message).toBe(`(HTTP code 404) ${message}`);
  });
});

describe('the engine filesystem diff, read as it arrives', () => {
  it('elements come out one at a time whatever the split; null is an empty diff; garbage is an error', async () => {
    const { JsonArrayReader } = await import('../../src/runtime/jsonArrayReader.js');
    const read = (text: string, step: number) => {
      const got: unknown[] = [];
      const reader = new JsonArrayReader((v) => got.push(v));
      const bytes = Buffer.from(text);
      for (let i = 0; i < bytes.length; i += step) reader.push(bytes.subarray(i, i + step));
      reader.end();
      return got;
    };
    const changes = [{ Path: '/tmp/a"}]{[', Kind: 1 }, { Path: '/tmp/é\\x', Kind: 0 }, { Path: '/etc', Kind: 2 }];
    for (const step of [1, 2, 5, 1000]) {
      expect(read(JSON.stringify(changes, null, step === 5 ? 1 : undefined), step)).toEqual(changes);
      expect(read('null', step)).toEqual([]);
      expect(read(' [ ] ', step)).toEqual([]);
    }
    expect(() => read('{"message":"x"}', 3)).toThrow(/other than a JSON array/);
    expect(() => read('[{"Path":"/a"}', 3)).toThrow(/ends part-way/);
    expect(() => read('[1]', 3)).toThrow(/not an object/);
  });
});
