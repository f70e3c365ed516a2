/** Longest element accepted by JsonArrayReader (an engine's filesystem change is about 100 bytes). */
const MAX_ELEMENT_BYTES = 1024 * 1024;

/**
 * Reads a JSON array (an engine answer such as a container's filesystem changes, which can list
 * millions of paths) element by element as its bytes arrive, so memory stays at one element
 * whatever the array's length: each element is parsed alone and handed to `onElement`. Bytes
 * pushed are views that need not outlast the call. Throws on what is not an array of objects.
 */
export class JsonArrayReader {
  private started = false;
  private ended = false;
  /** The answer is `null` (what the engine says when nothing changed): the rest of it is ignored. */
  private isNull = false;
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** Bytes of the element being read (copied: the views do not last). */
  private element: Buffer[] = [];
  private elementBytes = 0;

  constructor(private readonly onElement: (value: unknown) => void) {}

  push(data: Buffer): void {
    if (this.isNull) return;
    let start = -1; // where the current element's bytes start in `data`
    if (this.depth > 0) start = 0;
    for (let i = 0; i < data.length; i++) {
      const c = data[i]!;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c) this.escaped = true;
        else if (c === 0x22) this.inString = false;
        continue;
      }
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
      if (!this.started) {
        if (c === 0x6e && this.depth === 0) {
          // `null`: the engine's answer when nothing changed
          this.started = true;
          this.ended = true;
          this.isNull = true;
          return;
        }
        if (c !== 0x5b) throw new Error('the engine answered something other than a JSON array');
        this.started = true;
        continue;
      }
      if (this.ended) throw new Error('bytes after the end of the JSON array');
      if (this.depth === 0) {
        if (c === 0x2c) continue;
        if (c === 0x5d) {
          this.ended = true;
          continue;
        }
        if (c !== 0x7b) throw new Error('a JSON array element that is not an object');
        start = i;
        this.depth = 1;
        continue;
      }
      if (c === 0x22) this.inString = true;
      else if (c === 0x7b || c === 0x5b) this.depth += 1;
      else if (c === 0x7d || c === 0x5d) {
        this.depth -= 1;
        if (this.depth === 0) {
          this.take(data.subarray(start, i + 1));
          start = -1;
          this.finishElement();
        }
      }
    }
    if (this.depth > 0 && start !== -1) this.take(data.subarray(start));
  }

  /** The answer has all been pushed: throws when it stopped part-way. */
  end(): void {
    if (this.started && !this.ended) throw new Error('the JSON array ends part-way');
  }

  private take(bytes: Buffer): void {
    this.elementBytes += bytes.length;
    if (this.elementBytes > MAX_ELEMENT_BYTES) throw new Error(`a JSON array element longer than ${MAX_ELEMENT_BYTES} bytes`);
    this.element.push(Buffer.from(bytes));
  }

  private finishElement(): void {
    const text = Buffer.concat(this.element, this.elementBytes).toString('utf8');
    this.element = [];
    this.elementBytes = 0;
    this.onElement(JSON.parse(text));
  }
}
