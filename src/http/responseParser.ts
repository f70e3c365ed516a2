/** Longest response head (status line and headers) accepted. */
const MAX_HEAD_BYTES = 64 * 1024;
/** Longest chunk-size or trailer line accepted in a chunked body. */
const MAX_LINE_BYTES = 8 * 1024;
const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');

type ParseState = 'head' | 'length' | 'close' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' | 'done';

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
 * skipped). The body is kept (up to `maxBytes`), or, with a `sink`, a 2xx body is handed to it as
 * it arrives, whatever its size; other answers are still kept, for their error message.
 */
export class ResponseParser {
  status = 0;
  keepAlive = true;
  error: string | undefined;
  private state: ParseState = 'head';
  private pending: Buffer | undefined;
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private remaining = 0;
  private streaming = false;
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

  private parse(data: Buffer): boolean {
    if (this.error) return false;
    const buf = this.pending ? Buffer.concat([this.pending, data]) : data;
    this.pending = undefined;
    let at = 0;
    while (this.state !== 'done') {
      if (at >= buf.length) return false;
      switch (this.state) {
        case 'head': {
          while (buf[at] === 13 || buf[at] === 10) at += 1; // empty lines before a status line are ignored
          const end = buf.indexOf(HEAD_END, at);
          if (end === -1) return this.keep(buf, at, MAX_HEAD_BYTES, 'response headers');
          if (!this.head(buf.toString('latin1', at, end))) return false;
          at = end + 4;
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
          if (buf.length - at < 2) return this.keep(buf, at, 2, 'chunk');
          if (buf[at] !== 13 || buf[at + 1] !== 10) return this.fail('a chunk does not end with CRLF');
          at += 2;
          this.state = 'chunk-size';
          break;
        case 'chunk-size': {
          const end = buf.indexOf(CRLF, at);
          if (end === -1) return this.keep(buf, at, MAX_LINE_BYTES, 'chunk size line');
          const hex = /^([0-9A-Fa-f]{1,12})(?![0-9A-Fa-f])/.exec(buf.toString('latin1', at, Math.min(end, at + 16)));
          if (!hex) return this.fail('invalid chunk size');
          at = end + 2;
          this.remaining = Number.parseInt(hex[1]!, 16);
          if (!this.streaming && this.size + this.remaining > this.maxBytes) return this.fail(`response larger than ${this.maxBytes} bytes`);
          this.state = this.remaining === 0 ? 'trailers' : 'chunk-data';
          break;
        }
        case 'trailers': {
          const end = buf.indexOf(CRLF, at);
          if (end === -1) return this.keep(buf, at, MAX_LINE_BYTES, 'trailer line');
          if (end === at) this.state = 'done';
          at = end + 2;
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

  /** Parses the status line and headers; decides how the body is framed. */
  private head(text: string): boolean {
    let lineEnd = text.indexOf('\r\n');
    if (lineEnd === -1) lineEnd = text.length;
    const statusLine = text.slice(0, lineEnd);
    const status = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: |$)/.exec(statusLine);
    if (!status) return this.fail(`invalid status line "${statusLine.slice(0, 80)}"`);
    const code = Number(status[2]);
    let keepAlive = status[1] === '1';
    let length: number | undefined;
    let chunked = false;
    let encoded = false;
    for (let start = lineEnd + 2; start < text.length; ) {
      let end = text.indexOf('\r\n', start);
      if (end === -1) end = text.length;
      const colon = text.indexOf(':', start);
      // Only three headers matter; the name's length picks the candidates before any lowercasing.
      const nameLength = colon - start;
      if (colon > start && colon < end && (nameLength === 14 || nameLength === 17 || nameLength === 10)) {
        const name = text.slice(start, colon).toLowerCase();
        const value = text.slice(colon + 1, end).trim();
        if (name === 'content-length') {
          if (!/^\d{1,15}$/.test(value) || (length !== undefined && length !== Number(value))) return this.fail(`invalid Content-Length "${value}"`);
          length = Number(value);
        } else if (name === 'transfer-encoding') {
          encoded = true;
          chunked = value.toLowerCase().split(',').at(-1)!.trim() === 'chunked';
        } else if (name === 'connection') {
          const tokens = value.toLowerCase().split(',').map((t) => t.trim());
          if (tokens.includes('close')) keepAlive = false;
          else if (tokens.includes('keep-alive')) keepAlive = true;
        }
      }
      start = end + 2;
    }
    if (code < 200) {
      if (code === 101) return this.fail('the server switched protocols');
      return true; // informational (100 Continue, 103 Early Hints): the real answer follows
    }
    this.status = code;
    this.keepAlive = keepAlive;
    this.streaming = this.sink !== undefined && code >= 200 && code < 300;
    if (code === 204 || code === 304) this.state = 'done';
    else if (chunked) this.state = 'chunk-size';
    else if (encoded || length === undefined) {
      this.state = 'close'; // the body runs until the server closes the connection
      this.keepAlive = false;
    } else if (!this.streaming && length > this.maxBytes) return this.fail(`response larger than ${this.maxBytes} bytes`);
    else {
      this.remaining = length;
      this.state = length === 0 ? 'done' : 'length';
    }
    return true;
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
    this.chunks.push(part);
    return true;
  }

  /** Keeps bytes not yet parsed for the next push, up to `limit` of them. */
  private keep(buf: Buffer, at: number, limit: number, what: string): boolean {
    if (buf.length - at > limit) return this.fail(`${what} longer than ${limit} bytes`);
    this.pending = Buffer.from(buf.subarray(at));
    return false;
  }

  private fail(message: string): boolean {
    this.error = `invalid HTTP response: ${message}`;
    return false;
  }
}
