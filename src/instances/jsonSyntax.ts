/**
 * JSON syntax checked without building values: the data plane checks every input line and every
 * predict response, and only needs to know they are JSON (and where the predictions are), not
 * their values. The grammar is RFC 8259's, which is exactly what JSON.parse accepts; unit tests
 * compare the two on random and mutated texts.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

const OBJECT = 1;
const ARRAY = 0;
/** Open containers while scanning (grown as needed: JSON.parse has no depth limit either). */
let containers = new Uint8Array(64);

/** Whether text[start, end) is one JSON value, JSON whitespace around it allowed: what JSON.parse accepts. */
export function isJsonText(text: string, start = 0, end = text.length): boolean {
  return scan(text, start, end, undefined);
}

/**
 * Where the elements of the top-level object's array member `name` are, as [start, end) offsets
 * in pairs, if `text` is JSON, an object, and its member `name` (the last one, as JSON.parse keeps)
 * is an array; undefined otherwise.
 */
export function arrayMemberSpans(text: string, name: string): number[] | undefined {
  const member = arrayMember(text, name);
  return member.found ? member.spans : undefined;
}

/** What `arrayMember` found. */
export interface ArrayMember {
  /** `text` is JSON. */
  json: boolean;
  /** It is an object whose last member `name` is an array. */
  found: boolean;
  /** How many elements that array has. */
  count: number;
  /** Where the first `keepAtMost` elements are, as [start, end) offsets in pairs. */
  spans: number[];
  /** The first top-level member names (for a message when `name` is not there). */
  keys: string[];
}

/** Top-level member names kept in ArrayMember.keys. */
const KEYS_KEPT = 20;

/**
 * Like arrayMemberSpans, with memory bounded whatever the text: the spans of the first
 * `keepAtMost` elements are kept, the others only counted.
 */
export function arrayMember(text: string, name: string, keepAtMost = Number.POSITIVE_INFINITY): ArrayMember {
  const member: MemberSearch = { name, spans: [], found: false, count: 0, keepAtMost, keys: [] };
  const json = scan(text, 0, text.length, member);
  return { json, found: json && member.found, count: member.count, spans: member.spans, keys: member.keys };
}

interface MemberSearch {
  name: string;
  spans: number[];
  /** The last top-level member of that name holds an array. */
  found: boolean;
  count: number;
  keepAtMost: number;
  keys: string[];
}

function scan(t: string, start: number, end: number, member: MemberSearch | undefined): boolean {
  let depth = 0;
  /** The depth of the elements being collected (inside the member's array), or -1. */
  let collecting = -1;
  let elementStart = 0;
  /** The top-level member just named is the one searched for. */
  let named = false;
  let i = skipWhitespace(t, start, end);
  for (;;) {
    // A value starts at i.
    if (i >= end) return false;
    if (depth === collecting) elementStart = i;
    const c = t.charCodeAt(i);
    if (c === OPEN_BRACE) {
      i = skipWhitespace(t, i + 1, end);
      if (i < end && t.charCodeAt(i) === CLOSE_BRACE) i += 1;
      else {
        depth = open(depth, OBJECT);
        const keyAt = i;
        i = key(t, i, end);
        if (i < 0) return false;
        if (member && depth === 1) named = isMember(t, keyAt, member);
        continue;
      }
    } else if (c === OPEN_BRACKET) {
      const collect = member !== undefined && depth === 1 && named && containers[0] === OBJECT;
      if (collect) member.found = true;
      i = skipWhitespace(t, i + 1, end);
      if (i < end && t.charCodeAt(i) === CLOSE_BRACKET) i += 1;
      else {
        depth = open(depth, ARRAY);
        if (collect) collecting = depth;
        continue;
      }
    } else if (c === QUOTE) {
      i = skipString(t, i, end);
      if (i < 0) return false;
    } else if (c === MINUS || (c >= ZERO && c <= NINE)) {
      i = skipNumber(t, i);
      if (i < 0 || i > end) return false;
    } else if (c === 0x74 /* t */) {
      if (!t.startsWith('true', i) || i + 4 > end) return false;
      i += 4;
    } else if (c === 0x66 /* f */) {
      if (!t.startsWith('false', i) || i + 5 > end) return false;
      i += 5;
    } else if (c === 0x6e /* n */) {
      if (!t.startsWith('null', i) || i + 4 > end) return false;
      i += 4;
    } else return false;
    // A value ended at i: what follows it in its container.
    for (;;) {
      if (depth === collecting) {
        if (member!.count < member!.keepAtMost) member!.spans.push(elementStart, i);
        member!.count += 1;
      }
      i = skipWhitespace(t, i, end);
      if (depth === 0) return i === end;
      if (i >= end) return false;
      const d = t.charCodeAt(i);
      const container = containers[depth - 1];
      if (d === COMMA) {
        i = skipWhitespace(t, i + 1, end);
        if (container === OBJECT) {
          const keyAt = i;
          i = key(t, i, end);
          if (i < 0) return false;
          if (member && depth === 1) named = isMember(t, keyAt, member);
        }
        break;
      }
      if (d !== (container === OBJECT ? CLOSE_BRACE : CLOSE_BRACKET)) return false;
      if (depth === collecting) collecting = -1;
      depth -= 1;
      i += 1;
    }
  }
}

function open(depth: number, kind: number): number {
  if (depth === containers.length) {
    const grown = new Uint8Array(depth * 2);
    grown.set(containers);
    containers = grown;
  }
  containers[depth] = kind;
  return depth + 1;
}

/** A member name and its colon at i; where its value starts, or -1. */
function key(t: string, i: number, end: number): number {
  if (i >= end || t.charCodeAt(i) !== QUOTE) return -1;
  i = skipString(t, i, end);
  if (i < 0) return -1;
  i = skipWhitespace(t, i, end);
  if (i >= end || t.charCodeAt(i) !== COLON) return -1;
  return skipWhitespace(t, i + 1, end);
}

/** Whether the (valid) member name at `at` is the one searched for; a new such member replaces the last one. */
function isMember(t: string, at: number, member: MemberSearch): boolean {
  const raw = t.slice(at, skipString(t, at, t.length));
  const escaped = raw.includes('\\');
  const is = escaped ? JSON.parse(raw) === member.name : raw.length === member.name.length + 2 && raw.startsWith(member.name, 1);
  if (member.keys.length < KEYS_KEPT) member.keys.push((escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1)).slice(0, 100));
  if (is) {
    member.spans.length = 0;
    member.count = 0;
    member.found = false;
  }
  return is;
}

function skipWhitespace(t: string, i: number, end: number): number {
  while (i < end) {
    const c = t.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i += 1;
  }
  return i;
}

/** Past the string whose opening quote is at i, or -1. */
function skipString(t: string, i: number, end: number): number {
  for (let j = i + 1; j < end; ) {
    const c = t.charCodeAt(j);
    if (c === QUOTE) return j + 1;
    if (c === BACKSLASH) {
      const e = t.charCodeAt(j + 1);
      if (e === 0x75 /* u */) {
        if (j + 6 > end) return -1;
        for (let k = j + 2; k < j + 6; k++) {
          const h = t.charCodeAt(k);
          if (!((h >= ZERO && h <= NINE) || (h >= 0x41 && h <= 0x46) || (h >= 0x61 && h <= 0x66))) return -1;
        }
        j += 6;
      } else if (e === QUOTE || e === BACKSLASH || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) j += 2;
      else return -1;
    } else if (c < 0x20) return -1;
    else j += 1;
  }
  return -1;
}

/** Past the number starting at i, or -1 (the caller checks it ends by `end`). */
function skipNumber(t: string, i: number): number {
  let c = t.charCodeAt(i);
  if (c === MINUS) c = t.charCodeAt(++i);
  if (c === ZERO) c = t.charCodeAt(++i);
  else if (c > ZERO && c <= NINE) {
    do c = t.charCodeAt(++i);
    while (c >= ZERO && c <= NINE);
  } else return -1;
  if (c === DOT) {
    c = t.charCodeAt(++i);
    if (!(c >= ZERO && c <= NINE)) return -1;
    do c = t.charCodeAt(++i);
    while (c >= ZERO && c <= NINE);
  }
  if (c === 0x65 || c === 0x45 /* e E */) {
    c = t.charCodeAt(++i);
    if (c === PLUS || c === MINUS) c = t.charCodeAt(++i);
    if (!(c >= ZERO && c <= NINE)) return -1;
    do c = t.charCodeAt(++i);
    while (c >= ZERO && c <= NINE);
  }
  return i;
}
