/** Longest response head (status line and headers) accepted; also the bound on a chunked body's trailer section. */
const MAX_HEAD_BYTES = 64 * 1024;
/** Most bytes of informational (1xx) heads accepted before the final answer (renewable: see `renewInterimBudget`). */
const MAX_INTERIM_BYTES = 64 * 1024;
/** Longest chunk-size line accepted in a chunked body. */
const MAX_LINE_BYTES = 8 * 1024;
/** RFC 9112 status-line: HTTP-version SP status-code SP [ reason-phrase ] (the last SP is optional, as node:http allows). */
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [\t\x20-\x7e\x80-\xff]*)?$/;
/** RFC 9110/9112 field-line: a token, a colon right after it (no space before), a value without control characters. */
const FIELD_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\t\x20-\x7e\x80-\xff]*?)[ \t]*$/;
/** chunk-size [ chunk-ext ] (RFC 9112 7.1.1). */
const CHUNK_SIZE_LINE = /^([0-9A-Fa-f]{1,12})(?:[ \t]*;[\t\x20-\x7e\x80-\xff]*)?$/;

type ParseState = 'head' | 'length' | 'close' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' | 'done';

/** What the head read so far says (reset at each head: an informational answer has its own). */
interface Head {
  code: number;
  keepAlive: boolean;
  length: number | undefined;
  chunked: boolean;
  encoded: boolean;
}

/**
 * Takes the body of a successful (2xx) response as it arrives, instead of keeping it: `parts` are
 * the body's bytes in one `push` (views of them, valid only during the call; several when chunk
 * framing sits between them). A returned promise is kept in `ResponseParser.waitFor` for the
 * caller to wait on before reading more.
 */
export type BodySink = (parts: Buffer[]) => void | Promise<void>;

/**
 * Reads one HTTP/1.x response from the bytes given to `push`, whatever their split (RFC 9112
 * framing: Content-Length, chunked, or until the server closes; informational 1xx answers
 * skipped, each reported to `onInterim`). The body is kept (up to `maxBytes`), or, with a `sink`,
 * a 2xx body is handed to it as it arrives, whatever its size; other answers are still kept, for
 * their error message (copied: the bytes pushed may be a reused read buffer).
 *
 * As strict as node:http's parser, so a hostile server fails at once rather than holding a core
 * or the request until its timeout: lines end with CRLF (a bare LF or CR is an error), field lines
 * follow RFC 9112's syntax (no space before the colon, no obs-fold, no control characters), the
 * head, the trailer section and the informational heads before the answer are bounded in bytes,
 * and Content-Length together with Transfer-Encoding is refused (RFC 9112 6.3: a smuggling sign).
 * Bytes of a line split between pushes are kept in one growing buffer and scanned once.
 */
export class ResponseParser {
  status = 0;
  keepAlive = true;
  error: string | undefined;
  /** Called with the code of each informational (1xx) head, when it is whole. */
  onInterim: ((code: number) => void) | undefined;
  private state: ParseState = 'head';
  /** Bytes of a line not yet whole, kept for the next push: the first pendingBytes of `store`. */
  private store: Buffer | undefined;
  private pendingBytes = 0;
  /** How far into the kept bytes no line end was found (they are not scanned again). */
  private scanned = 0;
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private remaining = 0;
  private streaming = false;
  private head: Head | undefined;
  /** Bytes of the current head (or trailer section). */
  private sectionBytes = 0;
  /** Bytes of informational heads left before the parser gives up. */
  private interimBudget = MAX_INTERIM_BYTES;
  /** Body parts of the current push, for the sink. */
  private parts: Buffer[] = [];
  /** What the sink returned at the last push when it was a promise (the caller waits on it before pushing more). */
  waitFor: Promise<void> | undefined;

  constructor(
    private readonly maxBytes: number,
    private readonly sink?: BodySink,
  ) {}

  /** Takes the next bytes; true once the response is complete (false while incomplete, or on `error`). */
  push(data: Buffer): boolean {
    const complete = this.parse(data);
    if (this.parts.length > 0) {
      const parts = this.parts;
      this.parts = [];
      this.waitFor = this.sink!(parts) ?? undefined;
    }
    return complete;
  }

  /** Allows another MAX_INTERIM_BYTES of informational heads (the caller decides how often: a 102 Processing a second is not a flood). */
  renewInterimBudget(): void {
    this.interimBudget = MAX_INTERIM_BYTES;
  }

  private parse(data: Buffer): boolean {
    if (this.error) return false;
    let buf = data;
    if (this.pendingBytes > 0) {
      const needed = this.pendingBytes + data.length;
      this.reserve(needed, this.pendingBytes);
      data.copy(this.store!, this.pendingBytes);
      buf = this.store!.subarray(0, needed);
      this.pendingBytes = 0;
    }
    let at = 0;
    while (this.state !== 'done') {
      if (at >= buf.length) return false;
      switch (this.state) {
        case 'head':
        case 'trailers': {
          const cr = this.lineEnd(buf, at);
          if (cr === -2) return false;
          const interim = this.state === 'head' && (!this.head || this.head.code < 200);
          const limit = interim ? Math.min(MAX_HEAD_BYTES, this.interimBudget) : MAX_HEAD_BYTES;
          const bytes = this.sectionBytes + (cr === -1 ? buf.length : cr + 2) - at;
          if (bytes > limit) {
            const what = this.state === 'trailers' ? 'trailer section' : interim && limit < MAX_HEAD_BYTES ? 'informational (1xx) heads' : 'response head';
            return this.fail(`${what} longer than ${interim && limit < MAX_HEAD_BYTES ? MAX_INTERIM_BYTES : MAX_HEAD_BYTES} bytes`);
          }
          if (cr === -1) return this.keep(buf, at);
          this.sectionBytes = bytes;
          const line = buf.toString('latin1', at, cr);
          at = cr + 2;
          if (!(this.state === 'head' ? this.headLine(line) : this.trailerLine(line))) return false;
          break;
        }
        case 'length':
        case 'chunk-data': {
          const take = Math.min(this.remaining, buf.length - at);
          if (!this.append(buf.subarray(at, at + take))) return false;
          at += take;
          this.remaining -= take;
          if (this.remaining === 0) this.state = this.state === 'length' ? 'done' : 'chunk-end';
          break;
        }
        case 'close':
          if (!this.append(buf.subarray(at))) return false;
          return false;
        case 'chunk-end':
          if (buf.length - at < 2) return this.keep(buf, at);
          if (buf[at] !== 13 || buf[at + 1] !== 10) return this.fail('a chunk does not end with CRLF');
          at += 2;
          this.state = 'chunk-size';
          break;
        case 'chunk-size': {
          const cr = this.lineEnd(buf, at);
          if (cr === -2) return false;
          if ((cr === -1 ? buf.length : cr) - at > MAX_LINE_BYTES) return this.fail(`chunk size line longer than ${MAX_LINE_BYTES} bytes`);
          if (cr === -1) return this.keep(buf, at);
          const hex = CHUNK_SIZE_LINE.exec(buf.toString('latin1', at, cr));
          if (!hex) return this.fail('invalid chunk size line');
          at = cr + 2;
          this.remaining = Number.parseInt(hex[1]!, 16);
          if (!this.streaming && this.size + this.remaining > this.maxBytes) return this.fail(`response larger than ${this.maxBytes} bytes`);
          this.sectionBytes = 0;
          this.state = this.remaining === 0 ? 'trailers' : 'chunk-data';
          break;
        }
      }
    }
    if (at < buf.length) this.keepAlive = false; // bytes after the response: do not reuse the connection
    return true;
  }

  /** The connection ended: completes a body that runs until the close. */
  end(): boolean {
    if (this.state !== 'close' || this.error) return false;
    this.state = 'done';
    return true;
  }

  /** Body bytes read so far (kept or handed to the sink). */
  get bodyBytes(): number {
    return this.size;
  }

  body(): Buffer {
    if (this.streaming) return Buffer.alloc(0);
    return this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
  }

  /**
   * Where the line starting at `at` ends (its CR, followed by LF); -1 when its end is not here yet;
   * -2 (and `error`) on a bare LF or CR. Bytes already scanned in an earlier push are not scanned again.
   */
  private lineEnd(buf: Buffer, at: number): number {
    // Bytes before `from` hold no LF, and no CR but maybe the last of them (its LF still to come).
    const from = at + this.scanned;
    this.scanned = 0;
    const lf = buf.indexOf(10, from);
    const cr = buf.indexOf(13, from);
    if (lf === -1) {
      if (cr !== -1 && cr < buf.length - 1) return this.failLine('a bare CR');
      this.scanned = Math.max(0, buf.length - at - 1);
      return -1;
    }
    if (cr !== -1 && cr < lf - 1) return this.failLine('a bare CR');
    if (cr !== lf - 1) return this.failLine('a bare LF');
    return cr;
  }

  private failLine(what: string): number {
    this.fail(`${what} in a line (lines end with CRLF)`);
    return -2;
  }

  /** One line of a head: the status line, a field line, or the empty line that ends it. */
  private headLine(line: string): boolean {
    const head = this.head;
    if (!head) {
      if (line === '') return true; // empty lines before a status line are ignored (RFC 9112 2.2)
      const status = STATUS_LINE.exec(line);
      if (!status) return this.fail(`invalid status line "${line.slice(0, 80)}"`);
      this.head = { code: Number(status[2]), keepAlive: status[1] === '1', length: undefined, chunked: false, encoded: false };
      return true;
    }
    if (line !== '') return this.field(line, head);
    this.head = undefined;
    const bytes = this.sectionBytes;
    this.sectionBytes = 0;
    return this.headEnd(head, bytes);
  }

  /** A field line of a head: checked; the three that frame the body are read. */
  private field(line: string, head: Head): boolean {
    const field = FIELD_LINE.exec(line);
    if (!field) return this.fail(`invalid header line "${line.slice(0, 80)}"`);
    const nameLength = field[1]!.length;
    // Only three headers matter; the name's length picks the candidates before any lowercasing.
    if (nameLength !== 14 && nameLength !== 17 && nameLength !== 10) return true;
    const name = field[1]!.toLowerCase();
    const value = field[2]!;
    if (name === 'content-length') {
      if (!/^\d{1,15}$/.test(value) || (head.length !== undefined && head.length !== Number(value))) return this.fail(`invalid Content-Length "${value.slice(0, 80)}"`);
      head.length = Number(value);
    } else if (name === 'transfer-encoding') {
      head.encoded = true;
      head.chunked = value.toLowerCase().split(',').at(-1)!.trim() === 'chunked';
    } else if (name === 'connection') {
      const tokens = value.toLowerCase().split(',').map((t) => t.trim());
      if (tokens.includes('close')) head.keepAlive = false;
      else if (tokens.includes('keep-alive')) head.keepAlive = true;
    }
    return true;
  }

  /** The head is whole: decides how the body is framed. */
  private headEnd(head: Head, bytes: number): boolean {
    const code = head.code;
    if (code < 200) {
      if (code === 101) return this.fail('the server switched protocols');
      // informational (100 Continue, 102 Processing, 103 Early Hints): the real answer follows
      this.interimBudget -= bytes;
      this.onInterim?.(code);
      return true;
    }
    if (head.encoded && head.length !== undefined) return this.fail('both Content-Length and Transfer-Encoding (RFC 9112 6.3)');
    this.status = code;
    this.keepAlive = head.keepAlive;
    this.streaming = this.sink !== undefined && code >= 200 && code < 300;
    if (code === 204 || code === 304) this.state = 'done';
    else if (head.chunked) this.state = 'chunk-size';
    else if (head.encoded || head.length === undefined) {
      this.state = 'close'; // the body runs until the server closes the connection
      this.keepAlive = false;
    } else if (!this.streaming && head.length > this.maxBytes) return this.fail(`response larger than ${this.maxBytes} bytes`);
    else {
      this.remaining = head.length;
      this.state = head.length === 0 ? 'done' : 'length';
    }
    return true;
  }

  /** One line of a chunked body's trailer section (ignored, but checked like a field line). */
  private trailerLine(line: string): boolean {
    if (line === '') {
      this.state = 'done';
      return true;
    }
    return FIELD_LINE.test(line) || this.fail(`invalid trailer line "${line.slice(0, 80)}"`);
  }

  private append(part: Buffer): boolean {
    if (part.length === 0) return true;
    if (this.streaming) {
      this.size += part.length;
      this.parts.push(part);
      return true;
    }
    this.size += part.length;
    if (this.size > this.maxBytes) return this.fail(`response larger than ${this.maxBytes} bytes`);
    this.chunks.push(Buffer.from(part));
    return true;
  }

  /** Keeps bytes not yet parsed (a part of a line, bounded by the caller) for the next push. */
  private keep(buf: Buffer, at: number): boolean {
    const bytes = buf.length - at;
    const store = this.store;
    const inStore = store !== undefined && buf.buffer === store.buffer && buf.byteOffset === store.byteOffset;
    // Kept in place when nothing was taken; otherwise copied to a new store, as body parts of this push may still view the old one.
    if (!inStore || at > 0) {
      if (inStore) this.store = undefined;
      this.reserve(bytes, 0);
      buf.copy(this.store!, 0, at);
    }
    this.pendingBytes = bytes;
    return false;
  }

  /** Makes `store` hold at least `bytes`, keeping its first `keepBytes`. */
  private reserve(bytes: number, keepBytes: number): void {
    if (this.store && this.store.length >= bytes) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(256, 2 * bytes));
    if (this.store && keepBytes > 0) this.store.copy(grown, 0, 0, keepBytes);
    this.store = grown;
  }

  private fail(message: string): boolean {
    this.error = `invalid HTTP response: ${message}`;
    return false;
  }
}
