import tarStream from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { ResponseParser } from '../../src/http/responseParser.js';
import { arrayMember, isJsonText } from '../../src/instances/jsonSyntax.js';
import { type TarEntryHeader, TarFormatError, TarReader } from '../../src/staging/tarReader.js';

/**
 * Fixed-seed fuzzing of the project's own parsers of what untrusted containers and servers send:
 * random and mutated archives, HTTP answers and JSON. Each property runs for a fixed number of
 * cases, cut at TIME_BUDGET_MS so `npm test` stays quick on a loaded machine.
 */

const TIME_BUDGET_MS = 3000;

function randomSource(seed: number) {
  let state = seed >>> 0;
  return (n: number) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state % n;
  };
}

/** Runs `check` for up to `cases` cases or TIME_BUDGET_MS; how many ran. */
function fuzz(cases: number, check: (i: number) => void): number {
  const end = performance.now() + TIME_BUDGET_MS;
  let i = 0;
  for (; i < cases && performance.now() < end; i++) check(i);
  return i;
}

/** Flips, inserts, deletes or overwrites a few bytes. */
function mutate(bytes: Buffer, random: (n: number) => number, interesting: number[]): Buffer {
  let out = Buffer.from(bytes);
  for (let m = 1 + random(4); m > 0; m--) {
    const at = random(out.length + 1);
    const byte = random(3) === 0 ? interesting[random(interesting.length)]! : random(256);
    switch (random(4)) {
      case 0:
        out = Buffer.concat([out.subarray(0, at), Buffer.from([byte]), out.subarray(at)]);
        break;
      case 1:
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1 + random(8))]);
        break;
      case 2:
        if (at < out.length) out[at] = byte;
        break;
      default:
        if (at < out.length) out[at]! ^= 1 << random(8);
    }
  }
  return out;
}

/** `bytes` cut at random places. */
function splits(bytes: Buffer, random: (n: number) => number): Buffer[] {
  const parts: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const size = [1, 2, 7, 511, 512, 513, 4096, bytes.length][random(8)]!;
    parts.push(bytes.subarray(at, at + size));
    at += size;
  }
  return parts;
}

describe('fuzz: TarReader', () => {
  async function packed(random: (n: number) => number): Promise<Buffer> {
    const pack = tarStream.pack();
    for (let e = random(5); e >= 0; e--) {
      const long = random(4) === 0;
      const name = `output/${long ? 'x'.repeat(100 + random(200)) : `f${random(1000)}`}${random(6) === 0 ? 'é' : ''}`;
      const type = (['file', 'file', 'directory', 'symlink'] as const)[random(4)]!;
      const body = type === 'file' ? Buffer.alloc(random(1500), random(256)) : undefined;
      if (body) pack.entry({ name, type, mode: 0o644, size: body.length }, body);
      else pack.entry({ name, type, mode: 0o644, ...(type === 'symlink' ? { linkname: '/etc/x' } : {}) });
    }
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of pack as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
    return Buffer.concat(chunks);
  }

  /** What a reader makes of the parts: the entries and their data, or the error (which must be a TarFormatError). */
  function read(parts: Buffer[]): string {
    const seen: string[] = [];
    const reader = new TarReader({
      entry(header: TarEntryHeader) {
        seen.push(`${header.type} ${header.name} ${header.size}`);
        let bytes = 0;
        return (data) => {
          bytes += data.length;
          if (bytes > header.size) throw new Error('more data than the header said');
        };
      },
      entryEnd() {
        seen.push('end');
      },
    });
    try {
      for (const part of parts) reader.push(part);
      reader.end();
      return seen.join('\n');
    } catch (error) {
      if (!(error instanceof TarFormatError)) throw error;
      return `${seen.join('\n')}\n! ${error.message}`;
    }
  }

  it('random and mutated archives: only TarFormatError, and the same reading whatever the split', async () => {
    const random = randomSource(16);
    const archives = await Promise.all(Array.from({ length: 40 }, () => packed(random)));
    let failures = 0;
    const ran = fuzz(3000, (i) => {
      const original = archives[i % archives.length]!;
      const bytes = i % 10 === 0 ? Buffer.from(Array.from({ length: random(3000) }, () => random(256))) : i % 3 === 0 ? original : mutate(original, random, [0, 0x30, 0x37, 0x20, 0x78, 0x4c, 0x80, 0xff, 0x0a]);
      const whole = read([bytes]);
      expect(read(splits(bytes, random)), `case ${i}`).toBe(whole);
      if (whole.includes('\n! ')) failures += 1;
    });
    expect(ran).toBeGreaterThan(200);
    expect(failures).toBeGreaterThan(0); // both outcomes represented
    expect(failures).toBeLessThan(ran);
  });
});

describe('fuzz: ResponseParser', () => {
  const answers = [
    'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 19\r\n\r\n{"predictions":[1]}',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\n{"pre\r\nE\r\ndictions":[1]}\r\n0\r\nX-T: 1\r\n\r\n',
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.0 500 Internal Server Error\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\noops',
    'HTTP/1.1 204 No Content\r\n\r\n',
    'HTTP/1.0 200 OK\r\n\r\n{"predictions":[]}',
  ].map((text) => Buffer.from(text, 'latin1'));

  function parse(parts: Buffer[], streaming: boolean): string {
    const got: Buffer[] = [];
    const parser = new ResponseParser(64, streaming ? (views) => void got.push(...views.map((v) => Buffer.from(v))) : undefined);
    let complete = false;
    for (const part of parts) {
      complete = parser.push(part);
      if (complete || parser.error) break;
    }
    if (!complete && !parser.error) complete = parser.end();
    const body = streaming && parser.status >= 200 && parser.status < 300 ? Buffer.concat(got) : parser.body();
    return JSON.stringify({ complete, error: parser.error, status: parser.status, body: body.toString('latin1') });
  }

  it('random and mutated answers: never throws, the same verdict whatever the split, kept and streamed bodies alike', () => {
    const random = randomSource(9112);
    let errors = 0;
    const ran = fuzz(20000, (i) => {
      const original = answers[i % answers.length]!;
      const bytes = i % 5 === 0 ? original : mutate(original, random, [0x0d, 0x0a, 0x20, 0x3a, 0x09, 0x30, 0x3b, 0x00, 0x7f]);
      const whole = parse([bytes], false);
      expect(parse(splits(bytes, random), false), `case ${i}: ${JSON.stringify(bytes.toString('latin1'))}`).toBe(whole);
      const verdict = JSON.parse(whole) as { error?: string; complete: boolean; status: number; body: string };
      if (verdict.error) errors += 1;
      else if (verdict.status >= 200 && verdict.status < 300 && verdict.complete) {
        expect(JSON.parse(parse(splits(bytes, random), true)).body).toBe(verdict.body);
      }
    });
    expect(ran).toBeGreaterThan(1000);
    expect(errors).toBeGreaterThan(ran / 10);
    expect(errors).toBeLessThan(ran);
  });
});

describe('fuzz: JSON syntax and the predictions member', () => {
  it('random and mutated responses: the verdict and the element count of JSON.parse, keeping at most the spans asked for', () => {
    const random = randomSource(8259);
    const value = (depth: number): unknown => {
      switch (random(depth > 2 ? 3 : 5)) {
        case 0:
          return random(3) === 0 ? -random(1000) / 8 : random(100);
        case 1:
          return ['', 'a"b', 'p\\q', 'é', '\n'][random(5)];
        case 2:
          return [null, true, false][random(3)];
        case 3:
          return Array.from({ length: random(4) }, () => value(depth + 1));
        default:
          return Object.fromEntries(Array.from({ length: random(3) }, (_, k) => [`k${k}`, value(depth + 1)]));
      }
    };
    const pieces = ['{', '}', '[', ']', ',', ':', '"', '\\', ' ', '\n', '0', '-', 'e', '.', 'null', '"predictions"', '[1,2]'];
    let valid = 0;
    const ran = fuzz(20000, (i) => {
      const predictions = Array.from({ length: random(6) }, () => value(0));
      let text = JSON.stringify({ ...(random(2) ? { id: 'x' } : {}), predictions, ...(random(4) === 0 ? { predictions: [1] } : {}) }, null, random(3) === 0 ? 1 : undefined);
      if (i % 2) {
        for (let m = 1 + random(3); m > 0; m--) {
          const at = random(text.length + 1);
          const piece = pieces[random(pieces.length)]!;
          text = random(2) ? text.slice(0, at) + piece + text.slice(at) : text.slice(0, at) + text.slice(at + 1 + random(3));
        }
      }
      let parsed: unknown;
      let parses = true;
      try {
        parsed = JSON.parse(text);
      } catch {
        parses = false;
      }
      expect(isJsonText(text), text).toBe(parses);
      const keep = random(4);
      const member = arrayMember(text, 'predictions', keep);
      expect(member.json, text).toBe(parses);
      const array = parses && parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as { predictions?: unknown }).predictions : undefined;
      expect(member.found, text).toBe(Array.isArray(array));
      if (Array.isArray(array)) {
        valid += 1;
        expect(member.count, text).toBe(array.length);
        expect(member.spans.length, text).toBe(2 * Math.min(keep, array.length));
        for (let k = 0; k < member.spans.length; k += 2) expect(JSON.parse(text.slice(member.spans[k], member.spans[k + 1]))).toEqual(array[k / 2]);
      }
    });
    expect(ran).toBeGreaterThan(1000);
    expect(valid).toBeGreaterThan(ran / 4);
  });
});
