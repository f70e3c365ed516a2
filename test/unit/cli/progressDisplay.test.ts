import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProgressDisplay, formatDuration, progressWanted } from '../../../src/cli/progressDisplay.js';

/** A stream that says it is a terminal and keeps what was drawn on it. */
function fakeTerminal(isTTY = true) {
  const stream = new PassThrough() as PassThrough & { isTTY: boolean; columns: number; written: string };
  stream.isTTY = isTTY;
  stream.columns = 160;
  stream.written = '';
  stream.on('data', (chunk: Buffer) => (stream.written += chunk.toString('utf8')));
  return stream;
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 200));

describe('progress display', () => {
  it('draws staged bytes with rate, ETA and files, then clears the bar when the phase is done', async () => {
    const terminal = fakeTerminal();
    let clock = 0;
    const display = await createProgressDisplay({ stream: terminal as unknown as NodeJS.WriteStream, enabled: true, now: () => clock });
    display.onTransfer({ kind: 'stage', doneBytes: 0, totalBytes: 4 * 1024 * 1024, doneFiles: 0, totalFiles: 4 });
    clock = 1000;
    display.onTransfer({ kind: 'stage', doneBytes: 1024 * 1024, totalBytes: 4 * 1024 * 1024, doneFiles: 1, totalFiles: 4 });
    await settle();
    expect(terminal.written).toContain('staging 1.0 MiB / 4.0 MiB | 1.0 MiB/s | ETA 3s | 1 / 4 files');
    expect(terminal.written).toContain('[######------------------]');
    display.log('a line printed meanwhile');
    display.onTransfer({ kind: 'done', of: 'stage' });
    display.stop();
    await settle();
    expect(terminal.written).toContain('a line printed meanwhile\n');
    expect(terminal.written).toContain('› staged 1 file(s), 1.0 MiB in 1.0s (1.0 MiB/s)\n');
  });

  it('shows instances with the failed count and rate, the bar following the input bytes when the count is unknown', async () => {
    const terminal = fakeTerminal();
    let clock = 0;
    const display = await createProgressDisplay({ stream: terminal as unknown as NodeJS.WriteStream, enabled: true, now: () => clock });
    display.onTransfer({ kind: 'instances', done: 0, failed: 0, readBytes: 0, totalBytes: 1000 });
    clock = 2000;
    display.onTransfer({ kind: 'instances', done: 20_000, failed: 3, readBytes: 500, totalBytes: 1000 });
    await settle();
    expect(terminal.written).toContain('predicting 20,000 instances (3 failed) | 10,000/s | ETA 2s');
    expect(terminal.written).toContain('[############------------]');
    display.stop();
  });

  it('draws one bar per image layer with its bytes', async () => {
    const terminal = fakeTerminal();
    const display = await createProgressDisplay({ stream: terminal as unknown as NodeJS.WriteStream, enabled: true });
    display.onTransfer({ kind: 'pull', imageUri: 'r/i:1', layerId: 'aaaaaaaaaaaa', status: 'Downloading', currentBytes: 512 * 1024, totalBytes: 1024 * 1024 });
    display.onTransfer({ kind: 'pull', imageUri: 'r/i:1', layerId: 'bbbbbbbbbbbb', status: 'Already exists' });
    await settle();
    expect(terminal.written).toContain('pull aaaaaaaaaaaa Downloading 512 KiB / 1.0 MiB');
    expect(terminal.written).toContain('pull bbbbbbbbbbbb Already exists');
    display.onTransfer({ kind: 'done', of: 'pull' });
  });

  it('writes nothing for events when off, and log lines pass straight through', async () => {
    const terminal = fakeTerminal(false);
    const display = await createProgressDisplay({ stream: terminal as unknown as NodeJS.WriteStream, enabled: false });
    display.onTransfer({ kind: 'stage', doneBytes: 1, totalBytes: 2, doneFiles: 1 });
    display.log('plain');
    await settle();
    expect(terminal.written).toBe('plain\n');
  });

  it('is wanted only on a terminal, with human logs, without --quiet/--no-progress, TERM not dumb', () => {
    expect(progressWanted({ isTTY: true }, {}, 'human', {})).toBe(true);
    expect(progressWanted({ isTTY: false }, {}, 'human', {})).toBe(false);
    expect(progressWanted({ isTTY: true }, {}, 'json', {})).toBe(false);
    expect(progressWanted({ isTTY: true }, { quiet: true }, 'human', {})).toBe(false);
    expect(progressWanted({ isTTY: true }, { progress: false }, 'human', {})).toBe(false);
    expect(progressWanted({ isTTY: true }, {}, 'human', { TERM: 'dumb' })).toBe(false);
  });

  it('formats durations for ETAs', () => {
    expect(formatDuration(5)).toBe('5s');
    expect(formatDuration(125)).toBe('2m05s');
    expect(formatDuration(3 * 3600 + 120)).toBe('3h02m');
  });
});
