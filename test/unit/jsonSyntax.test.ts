import { describe, expect, it } from 'vitest';
import { arrayMemberSpans, isJsonText } from '../../src/instances/jsonSyntax.js';

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** A small deterministic random source (the same cases every run). */
function randomSource(seed: number) {
  return (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
}

describe('JSON syntax, checked as JSON.parse checks it', () => {
  it.each([
    '0', '-0', '1.5e+10', '-12.25E-3', '1E5', 'true', 'false', 'null', '""', '"a\\"b\\\\c\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\ude00"', '"\\ud800"',
    '[]', '{}', ' [ 1 , [ ] , { } , "x" ] ', '{"a":{"b":[{"c":null}]}}', '\t\r\n{ "k" : 1 }\n', '"é😀\u007f"', `[${'['.repeat(200)}${']'.repeat(200)}]`,
  ])('accepts %j', (text) => {
    expect(parses(text)).toBe(true);
    expect(isJsonText(text)).toBe(true);
  });
  it.each([
    '', ' ', '01', '-', '1.', '.5', '+1', '1e', '1e+', '0x10', 'NaN', 'Infinity', 'tru', 'nul', 'True', 'truex', '"abc', '"a\nb"', '"\\x"', '"\\u12"', '"\\u12g4"',
    '"\\u\u0010\u0010\u0010\u0010"', '[1,]', '[,1]', '[1 2]', '{"a":1,}', '{,}', '{"a" 1}', '{"a":}', '{a:1}', "{'a':1}", '[1]]', '[[1]', '{"a":1}}', '\uFEFF{}', '1 2', '[1]x', '\u00a0{}', '{"a":1 "b":2}',
  ])('refuses %j', (text) => {
    expect(parses(text)).toBe(false);
    expect(isJsonText(text)).toBe(false);
  });
  it('a range of a longer text: only that range counts', () => {
    const text = '{"a":1}\n[1,\n2]\n"x"';
    expect([isJsonText(text, 0, 7), isJsonText(text, 8, 11), isJsonText(text, 8, 14), isJsonText(text, 15, 18), isJsonText(text, 0, 6)]).toEqual([true, false, true, true, false]);
  });
  it('random texts and mutations of valid ones: the same verdict as JSON.parse', () => {
    const random = randomSource(5);
    const alphabet = ['{', '}', '[', ']', ',', ':', '"', '\\', 'u', '0', '1', '9', '-', '+', '.', 'e', 'E', ' ', '\n', 't', 'r', 'f', 'n', 'a', 'l', 's', 'null', 'true', '"k"', '\u0001', 'é', 'A', 'F', 'g', '/'];
    const value = (depth: number): unknown => {
      switch (random(depth > 3 ? 4 : 6)) {
        case 0:
          return (random(2000) - 1000) / [1, 8, 1000][random(3)]!;
        case 1:
          return ['', 'a"b', 'c\\d', 'é😀', '\n\t', '\u0001', '\ud800'][random(7)];
        case 2:
          return [null, true, false][random(3)];
        case 3:
          return random(10) * 10 ** random(30);
        case 4:
          return Array.from({ length: random(4) }, () => value(depth + 1));
        default:
          return Object.fromEntries(Array.from({ length: random(4) }, (_, i) => [`k${i}`, value(depth + 1)]));
      }
    };
    let checked = 0;
    for (let round = 0; round < 4000; round++) {
      let text: string;
      if (round % 2) text = Array.from({ length: 1 + random(12) }, () => alphabet[random(alphabet.length)]).join('');
      else {
        text = JSON.stringify(value(0), null, [undefined, 1, '\t'][random(3)]) ?? 'null';
        for (let m = random(3); m > 0; m--) {
          const at = random(text.length + 1);
          const op = random(3);
          const piece = alphabet[random(alphabet.length)]!;
          text = op === 0 ? text.slice(0, at) + piece + text.slice(at) : op === 1 ? text.slice(0, at) + text.slice(at + 1) : text.slice(0, at) + piece + text.slice(at + 1);
        }
      }
      expect(isJsonText(text), JSON.stringify(text)).toBe(parses(text));
      checked += parses(text) ? 1 : 0;
    }
    expect(checked).toBeGreaterThan(500); // both verdicts well represented
  });
});

describe('the spans of an array member', () => {
  const texts = (text: string, name = 'predictions') => {
    const spans = arrayMemberSpans(text, name);
    return spans && Array.from({ length: spans.length / 2 }, (_, i) => text.slice(spans[2 * i], spans[2 * i + 1]));
  };
  it('finds each element as written, around other members and nested look-alikes', () => {
    expect(texts('{"id":"1", "model":{"predictions":[9]}, "predictions": [1, "a,]\\"b", {"x":[1,{"y":"}"}]} , null,-1.5e3,true,[[]] ], "z":[]}')).toEqual([
      '1', '"a,]\\"b"', '{"x":[1,{"y":"}"}]}', 'null', '-1.5e3', 'true', '[[]]',
    ]);
    expect(texts('{"predictions":[]}')).toEqual([]);
    expect(texts(' {\n "predictions" :\n [\n 1 ,\n {"a":\n2}\n ]\n}\n')).toEqual(['1', '{"a":\n2}']);
  });
  it('the last member of that name counts, escaped names too; none, or not an array, or not JSON: undefined', () => {
    expect(texts('{"predictions":[1],"predictions":[2,3]}')).toEqual(['2', '3']);
    expect(texts('{"pred\\u0069ctions":[4]}')).toEqual(['4']);
    expect(texts('{"predictions":[1],"predictions":null}')).toBeUndefined();
    expect(texts('{"other":[1]}')).toBeUndefined();
    expect(texts('[{"predictions":[1]}]')).toBeUndefined();
    expect(texts('{"predictions":[1,]}')).toBeUndefined();
    expect(texts('{"predictions":[1]} x')).toBeUndefined();
  });
  it('random responses: the spans parse back to the array JSON.parse gives', () => {
    const random = randomSource(9);
    const value = (depth: number): unknown =>
      [() => random(100) - 50, () => ['', 'p"q', '[{,}]', 'é'][random(4)], () => null, () => Array.from({ length: random(3) }, () => value(depth + 1)), () => ({ predictions: random(2) ? [1] : 'x', v: value(depth + 1) })][random(depth > 2 ? 3 : 5)]!();
    for (let round = 0; round < 500; round++) {
      const predictions = Array.from({ length: random(6) }, () => value(0));
      const response = JSON.stringify({ before: value(1), predictions, after: value(1) }, null, [undefined, 2][random(2)]);
      expect(texts(response)!.map((t) => JSON.parse(t))).toEqual(predictions);
    }
  });
});
