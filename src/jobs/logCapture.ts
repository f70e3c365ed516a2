import { createWriteStream, type WriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { type LogSignal, scanLogLine } from '../verdict/scanLogLine.js';

export type LogChannel = 'stdout' | 'stderr';

export interface LogCaptureOptions {
  /** Bytes saved per stream before the saved log is cut (the live view goes on). */
  maxSavedBytes: number;
  onLine?: (channel: LogChannel, line: string) => void;
  /** Values that must never appear in logs, live or saved (secret env values). */
  secrets?: readonly string[];
}

const MAX_LINE_CHARS = 64 * 1024;
const MAX_SIGNALS = 50;
const TAIL_LINES = 40;

/** Replaces every occurrence of each secret value with `***`. */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length > 0) out = out.split(secret).join('***');
  return out;
}

/**
 * Streams a container's stdout and stderr to their own files and to a line callback, never
 * holding more than one line (itself capped) in memory, masking secret values, and scanning each
 * line for known failures. The saved log is cut at `maxSavedBytes` with a note.
 */
export class LogCapture {
  readonly signals: LogSignal[] = [];
  readonly tail: Array<{ channel: LogChannel; line: string }> = [];
  readonly truncated: Record<LogChannel, boolean> = { stdout: false, stderr: false };
  private readonly saved: Record<LogChannel, number> = { stdout: 0, stderr: 0 };

  constructor(
    readonly files: Record<LogChannel, string>,
    private readonly options: LogCaptureOptions,
  ) {}

  /** Resolves when the stream has ended and its file is flushed. Appends: restarts share files. */
  async capture(channel: LogChannel, stream: Readable, banner?: string): Promise<void> {
    const file = createWriteStream(this.files[channel], { flags: 'a' });
    const decoder = new StringDecoder('utf8');
    const secrets = this.options.secrets ?? [];
    let pending = '';
    // Text to save is gathered per chunk and written once: a container printing millions of
    // short lines costs one write per chunk, not one per line.
    let batch = '';
    const flush = () => {
      if (!batch) return;
      const text = batch;
      batch = '';
      if (this.saved[channel] >= this.options.maxSavedBytes) return;
      const bytes = Buffer.byteLength(text);
      const room = this.options.maxSavedBytes - this.saved[channel];
      const part = bytes > room ? Buffer.from(text).subarray(0, room) : text;
      this.saved[channel] += Math.min(bytes, room);
      if (!file.write(part)) {
        stream.pause();
        file.once('drain', () => stream.resume());
      }
      if (this.saved[channel] >= this.options.maxSavedBytes) {
        this.truncated[channel] = true;
        file.write(`\n[vbe: log cut at ${this.options.maxSavedBytes} bytes (--max-log-size); the rest was shown live but not saved]\n`);
      }
    };
    const save = (text: string) => {
      if (this.saved[channel] < this.options.maxSavedBytes) batch += text;
    };
    const emit = (raw: string, ended: boolean) => {
      const line = secrets.length ? maskSecrets(raw, secrets) : raw;
      save(ended ? `${line}\n` : line);
      const shown = line.endsWith('\r') ? line.slice(0, -1) : line;
      if (this.signals.length < MAX_SIGNALS) {
        const signal = scanLogLine(shown);
        if (signal) this.signals.push(signal);
      }
      this.tail.push({ channel, line: shown });
      if (this.tail.length > TAIL_LINES * 2) this.tail.splice(0, this.tail.length - TAIL_LINES);
      this.options.onLine?.(channel, shown);
    };
    if (banner) {
      save(`${banner}\n`);
      flush();
    }
    stream.on('data', (chunk: Buffer) => {
      pending += decoder.write(chunk);
      let start = 0;
      for (let newline = pending.indexOf('\n'); newline !== -1; newline = pending.indexOf('\n', start)) {
        emit(pending.slice(start, newline), true);
        start = newline + 1;
      }
      if (start > 0) pending = pending.slice(start);
      // One endless line is shown and saved in pieces, never held whole. The cut keeps a few
      // characters back so a secret that straddles it is still masked.
      const keep = Math.max(0, ...secrets.map((s) => s.length - 1));
      while (pending.length > MAX_LINE_CHARS + keep) {
        const cut = Math.max(1, safeCut(pending, secrets, MAX_LINE_CHARS));
        emit(pending.slice(0, cut), false);
        pending = pending.slice(cut);
      }
      flush();
    });
    await new Promise<void>((resolve) => {
      stream.once('end', resolve);
      stream.once('close', resolve);
      stream.once('error', resolve);
    });
    pending += decoder.end();
    if (pending) emit(pending, false);
    flush();
    if (this.tail.length > TAIL_LINES) this.tail.splice(0, this.tail.length - TAIL_LINES);
    await closeFile(file);
  }
}

/** Moves a cut point back so that no secret occurrence straddles it. */
export function safeCut(text: string, secrets: readonly string[], at: number): number {
  let cut = at;
  for (let moved = true; moved; ) {
    moved = false;
    for (const secret of secrets) {
      if (!secret) continue;
      const from = Math.max(0, cut - secret.length + 1);
      const found = text.indexOf(secret, from);
      if (found !== -1 && found < cut && found + secret.length > cut) {
        cut = found;
        moved = true;
      }
    }
  }
  return cut;
}

function closeFile(file: WriteStream): Promise<void> {
  return new Promise((resolve) => file.end(() => resolve()));
}
