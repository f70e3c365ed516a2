import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { predictionTexts } from '../../src/jobs/predictionClient.js';
import { JsonlWriter } from '../../src/staging/predictionOutputs.js';

/** What the client does with a response: parse it, then take each prediction's text. */
function texts(response: string): string[] {
  return predictionTexts(response, (JSON.parse(response) as { predictions: unknown[] }).predictions);
}

describe('prediction texts, cut out of the response as the server wrote them', () => {
  it('any JSON value, with strings holding quotes, brackets and commas, and other members around', () => {
    const response = '{"deployedModelId": "1", "predictions": [1, "a,]\\"b\\\\", {"x":[1,{"y":"}"}]} , null,-1.5e3,true,[] ], "model": {"predictions": [9]}}';
    expect(texts(response)).toEqual(['1', '"a,]\\"b\\\\"', '{"x":[1,{"y":"}"}]}', 'null', '-1.5e3', 'true', '[]']);
  });
  it('numbers and escapes stay as the server spelled them', () => {
    expect(texts('{"predictions":[1.0,"\\u00e9",12345678901234567890]}')).toEqual(['1.0', '"\\u00e9"', '12345678901234567890']);
  });
  it('the last "predictions" member counts, as for JSON.parse; an escaped key is still that key', () => {
    expect(texts('{"predictions":[1],"predictions":[2,3]}')).toEqual(['2', '3']);
    expect(texts('{"pred\\u0069ctions":[4]}')).toEqual(['4']);
    expect(texts('{"predictions":[]}')).toEqual([]);
  });
  it('a prediction spread over lines (a pretty-printed response) is serialized again, on one line', () => {
    const predictions = [{ a: [1, 2], b: 'x' }, 2, 'three', [], { c: { d: null } }];
    const got = texts(JSON.stringify({ predictions }, null, 2));
    expect(got).toEqual(predictions.map((p) => JSON.stringify(p)));
    expect(texts('{\n"predictions" :\n[\n1 ,\n"x"\n]\n}\n')).toEqual(['1', '"x"']);
  });
  it('random values and spacing: every text is one line and parses back to the prediction', () => {
    let seed = 11;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const value = (depth: number): unknown => {
      switch (random(depth > 2 ? 4 : 6)) {
        case 0:
          return random(1000) / 8 - 50;
        case 1:
          return ['', 'a"b', 'c\\d', '[{,}]', 'é😀', '\n'][random(6)];
        case 2:
          return [null, true, false][random(3)];
        case 3:
          return -random(10);
        case 4:
          return Array.from({ length: random(4) }, () => value(depth + 1));
        default:
          return Object.fromEntries(Array.from({ length: random(4) }, (_, i) => [`k${i}"`, value(depth + 1)]));
      }
    };
    for (let round = 0; round < 300; round++) {
      const predictions = Array.from({ length: random(8) }, () => value(0));
      const response = JSON.stringify({ id: value(2), predictions, after: value(1) }, null, [undefined, 0, 1, '\t'][random(4)]);
      const got = texts(response);
      expect(got.map((t) => JSON.parse(t))).toEqual(predictions);
      expect(got.every((t) => !/[\r\n]/.test(t))).toBe(true);
    }
  });
});

describe('JsonlWriter', () => {
  it('gathers lines into large writes and writes what is left on close', async () => {
    const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'vbe-jsonl-')), 'out.jsonl');
    const writer = new JsonlWriter(file);
    const big = `${JSON.stringify({ pad: 'x'.repeat(40 * 1024) })}\n`;
    await writer.writeLines('{"a":1}\n{"a":2}\n', 2);
    await writer.writeLines(big, 1);
    await writer.writeLines(big, 1);
    await writer.writeMany([{ b: 1 }]);
    await writer.write({ c: [1] });
    await writer.close();
    expect(writer.lines).toBe(6);
    expect(await readFile(file, 'utf8')).toBe(`{"a":1}\n{"a":2}\n${big}${big}{"b":1}\n{"c":[1]}\n`);
  });
});
