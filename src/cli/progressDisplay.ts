import type { MultiBar, Params, SingleBar } from 'cli-progress';
import type { TransferListener, TransferProgress } from '../jobs/transferProgress.js';
import { formatBytes } from '../verdict/diagnoseRunJob.js';
import type { CliContext } from './cliContext.js';

/**
 * Progress bars on a terminal (image pull by layer, staged/collected bytes, instances with rate and
 * ETA), drawn by cli-progress on stderr. Lines printed meanwhile go through `log` so they land above
 * the bars instead of through them. Off (a plain line writer) when stderr is not a terminal.
 */
export interface ProgressDisplay {
  readonly enabled: boolean;
  onTransfer: TransferListener;
  /** Writes one line for a person (progress messages, container output) without breaking the bars. */
  log(line: string): void;
  /** Removes every bar; call before the final summary. */
  stop(): void;
}

export interface ProgressDisplayOptions {
  stream: NodeJS.WriteStream;
  enabled: boolean;
  /** For tests: the clock (ms). */
  now?: () => number;
}

type BarKind = 'pull' | 'stage' | 'collect' | 'instances';
const LABELS: Record<BarKind, string> = { pull: 'pull', stage: 'staging', collect: 'collecting', instances: 'predicting' };
const BAR_WIDTH = 24;

interface BarState {
  bar: SingleBar;
  kind: BarKind;
  startedMs: number;
  text: string;
}

/** What a phase moved, for the one line left when its bars are cleared. */
interface PhaseTally {
  startedMs: number;
  last?: TransferProgress;
  layers: Map<string, number>;
  imageUri?: string;
}

/** Loads cli-progress only when a terminal will show it (the CLI's start-up stays small otherwise). */
export async function createProgressDisplay(options: ProgressDisplayOptions): Promise<ProgressDisplay> {
  const { stream } = options;
  if (!options.enabled) {
    return { enabled: false, onTransfer: () => undefined, log: (line) => void stream.write(`${line}\n`), stop: () => undefined };
  }
  const cliProgress = (await import('cli-progress')).default;
  const now = options.now ?? (() => performance.now());
  let multi: MultiBar | undefined;
  const bars = new Map<string, BarState>();
  const tallies = new Map<BarKind, PhaseTally>();
  const tally = (kind: BarKind): PhaseTally => {
    let t = tallies.get(kind);
    if (!t) tallies.set(kind, (t = { startedMs: now(), layers: new Map() }));
    return t;
  };

  const ensureMulti = (): MultiBar => {
    multi ??= new cliProgress.MultiBar({
      stream,
      fps: 8,
      hideCursor: true,
      clearOnComplete: true,
      autopadding: true,
      linewrap: false,
      format: (_options: unknown, params: Params, payload: { text?: string }) => `${drawBar(params)} ${payload.text ?? ''}`,
    });
    return multi;
  };
  const barFor = (key: string, kind: BarKind): BarState => {
    let state = bars.get(key);
    if (!state) {
      const bar = ensureMulti().create(1, 0, { text: '' });
      state = { bar, kind, startedMs: now(), text: '' };
      bars.set(key, state);
    }
    return state;
  };
  const finish = (key: string) => {
    const state = bars.get(key);
    if (!state) return;
    multi?.remove(state.bar);
    bars.delete(key);
    if (bars.size === 0 && multi) {
      multi.stop();
      multi = undefined;
    }
  };
  const writeLine = (line: string) => {
    if (multi) multi.log(`${line}\n`);
    else stream.write(`${line}\n`);
  };
  const finishKind = (kind: BarKind) => {
    for (const [key, state] of [...bars]) if (state.kind === kind) finish(key);
    const t = tallies.get(kind);
    tallies.delete(kind);
    const line = t ? phaseSummary(kind, t, (now() - t.startedMs) / 1000) : undefined;
    if (line) writeLine(`› ${line}`);
  };

  const onTransfer = (event: TransferProgress) => {
    if (event.kind === 'done') return finishKind(event.of);
    const t = tally(event.kind);
    t.last = event;
    if (event.kind === 'pull') {
      t.imageUri = event.imageUri;
      t.layers.set(event.layerId, Math.max(t.layers.get(event.layerId) ?? 0, event.totalBytes ?? 0));
      const state = barFor(`pull:${event.layerId}`, 'pull');
      const complete = /complete|already exists/i.test(event.status);
      const total = event.totalBytes ?? 0;
      const value = complete ? Math.max(total, 1) : (event.currentBytes ?? 0);
      const bytes = event.totalBytes ? ` ${formatBytes(event.currentBytes ?? 0)} / ${formatBytes(event.totalBytes)}` : '';
      state.text = `${LABELS.pull} ${event.layerId.slice(0, 12)} ${event.status}${complete ? '' : bytes}`;
      state.bar.setTotal(complete ? Math.max(total, 1) : total || 1);
      state.bar.update(value, { text: state.text });
      return;
    }
    const state = barFor(event.kind, event.kind);
    const elapsedS = Math.max((now() - state.startedMs) / 1000, 0.001);
    if (event.kind === 'instances') {
      const done = event.done;
      const rate = done / elapsedS;
      const [value, total] = event.total ? [done, event.total] : [event.readBytes ?? 0, event.totalBytes ?? 0];
      const failed = event.failed ? ` (${event.failed.toLocaleString('en-US')} failed)` : '';
      const count = event.total ? `${done.toLocaleString('en-US')} / ${event.total.toLocaleString('en-US')}` : done.toLocaleString('en-US');
      state.text = `${LABELS.instances} ${count} instances${failed} | ${Math.round(rate).toLocaleString('en-US')}/s${eta(value, total, elapsedS)}`;
      state.bar.setTotal(total || 1);
      state.bar.update(total ? value : 0, { text: state.text });
      return;
    }
    const rate = event.doneBytes / elapsedS;
    const totalBytes = event.totalBytes ?? 0;
    const files = event.totalFiles !== undefined ? ` | ${event.doneFiles.toLocaleString('en-US')} / ${event.totalFiles.toLocaleString('en-US')} files` : ` | ${event.doneFiles.toLocaleString('en-US')} files`;
    const bytes = totalBytes ? `${formatBytes(event.doneBytes)} / ${formatBytes(totalBytes)}` : formatBytes(event.doneBytes);
    state.text = `${LABELS[event.kind]} ${bytes} | ${formatBytes(rate)}/s${eta(event.doneBytes, totalBytes, elapsedS)}${files}`;
    state.bar.setTotal(totalBytes || 1);
    state.bar.update(totalBytes ? event.doneBytes : 0, { text: state.text });
  };

  return {
    enabled: true,
    onTransfer,
    log: writeLine,
    stop() {
      for (const key of [...bars.keys()]) finish(key);
    },
  };
}

/** One line per finished phase: what moved, how long it took, how fast. */
function phaseSummary(kind: BarKind, t: PhaseTally, seconds: number): string | undefined {
  const took = `${seconds.toFixed(1)}s`;
  const event = t.last;
  if (kind === 'pull') {
    if (!t.layers.size) return undefined;
    const bytes = [...t.layers.values()].reduce((a, b) => a + b, 0);
    return `pulled ${t.imageUri}: ${t.layers.size} layer(s), ${formatBytes(bytes)} downloaded in ${took}`;
  }
  if (event?.kind === 'instances') {
    const failed = event.failed ? ` (${event.failed.toLocaleString('en-US')} failed)` : '';
    return `predicted ${event.done.toLocaleString('en-US')} instances${failed} in ${took}, ${Math.round(event.done / Math.max(seconds, 0.001)).toLocaleString('en-US')}/s`;
  }
  if (event?.kind === 'stage' || event?.kind === 'collect') {
    const verb = event.kind === 'stage' ? 'staged' : 'collected';
    return `${verb} ${event.doneFiles.toLocaleString('en-US')} file(s), ${formatBytes(event.doneBytes)} in ${took} (${formatBytes(event.doneBytes / Math.max(seconds, 0.001))}/s)`;
  }
  return undefined;
}

function drawBar(params: Params): string {
  const filled = Math.round(Math.min(Math.max(params.progress, 0), 1) * BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
}

function eta(done: number, total: number, elapsedS: number): string {
  if (!total || done <= 0 || done >= total) return '';
  const seconds = Math.round(((total - done) / done) * elapsedS);
  return ` | ETA ${formatDuration(seconds)}`;
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

/**
 * Runs a command's work with bars on a terminal: while it runs, every line the CLI writes for a person
 * (context.stderr, which the human log stream also uses) goes above the bars.
 */
export async function withProgress<T>(
  context: CliContext,
  flags: { quiet?: boolean; progress?: boolean },
  work: (onTransfer: TransferListener) => Promise<T>,
): Promise<T> {
  const stream = process.stderr;
  const display = await createProgressDisplay({ stream, enabled: progressWanted(stream, flags, context.logFormat) });
  if (!display.enabled) return work(display.onTransfer);
  const plain = context.stderr;
  context.stderr = display.log;
  try {
    return await work(display.onTransfer);
  } finally {
    display.stop();
    context.stderr = plain;
  }
}

/** Whether to draw bars: a terminal on stderr, human logs, not --quiet or --no-progress, TERM not dumb. */
export function progressWanted(
  stream: { isTTY?: boolean },
  flags: { quiet?: boolean; progress?: boolean },
  logFormat: 'human' | 'json',
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  if (!stream.isTTY || flags.quiet || flags.progress === false || logFormat !== 'human') return false;
  return env.TERM !== 'dumb' && !env.VBE_NO_PROGRESS;
}
