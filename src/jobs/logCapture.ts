import { createWriteStream, type WriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { type LogSignal, scanLogLine } from '../verdict/scanLogLine.js';

export type LogChannel = 'stdout' | 'stderr';

export interface LogCaptureOptions {
  /** Bytes saved per stream before the saved log is cut (the live view goes on). */
  maxSavedBytes: number;
  onLine?: (channel: LogChannel, line: string) => void;
}

const MAX_LINE_CHARS = 64 * 1024;
const MAX_SIGNALS = 50;
const TAIL_LINES = 40;

/**
 * Streams a container's stdout and stderr to their own files and to a line callback, never
 * holding more than one line (itself capped) in memory, and scans each line for known failures.
 */
export class LogCapture {
  readonly signals: LogSignal[] = [];
  readonly tail: Array<{ channel: LogChannel; line: string }> = [];
  readonly truncated: Record<LogChannel, boolean> = { stdout: false, stderr: false };

  constructor(
    readonly files: Record<LogChannel, string>,
    private readonly options: LogCaptureOptions,
  ) {}

  /** Resolves when the stream has ended and its file is flushed. */
  async capture(channel: LogChannel, stream: Readable): Promise<void> {
    const file = createWriteStream(this.files[channel]);
    let saved = 0;
    let pending = '';
    const emit = (line: string) => {
      const signal = scanLogLine(line);
      if (signal && this.signals.length < MAX_SIGNALS) this.signals.push(signal);
      this.tail.push({ channel, line });
      if (this.tail.length > TAIL_LINES) this.tail.shift();
      this.options.onLine?.(channel, line);
    };
    const save = (chunk: Buffer) => {
      if (saved >= this.options.maxSavedBytes) return;
      const room = this.options.maxSavedBytes - saved;
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      saved += part.length;
      if (!file.write(part)) {
        stream.pause();
        file.once('drain', () => stream.resume());
      }
      if (saved >= this.options.maxSavedBytes) {
        this.truncated[channel] = true;
        file.write(`\n[vbe: log cut at ${this.options.maxSavedBytes} bytes; the rest was shown live but not saved]\n`);
      }
    };
    stream.on('data', (chunk: Buffer) => {
      save(chunk);
      pending += chunk.toString('utf8');
      let newline = pending.indexOf('\n');
      while (newline !== -1) {
        emit(pending.slice(0, newline).replace(/\r$/, ''));
        pending = pending.slice(newline + 1);
        newline = pending.indexOf('\n');
      }
      if (pending.length > MAX_LINE_CHARS) {
        emit(`${pending.slice(0, MAX_LINE_CHARS)} [vbe: line continues]`);
        pending = '';
      }
    });
    await new Promise<void>((resolve) => {
      stream.once('end', resolve);
      stream.once('close', resolve);
      stream.once('error', resolve);
    });
    if (pending) emit(pending);
    await closeFile(file);
  }
}

function closeFile(file: WriteStream): Promise<void> {
  return new Promise((resolve) => file.end(() => resolve()));
}
