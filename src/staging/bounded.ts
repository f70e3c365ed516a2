/**
 * Runs `fn` over `items` with at most `limit` calls in flight (workers pulling the next index), so
 * a tree of 100,000 files never has 100,000 file-system requests queued at once. Rejects with the
 * first failure; the other workers stop taking items.
 */
export async function forEachBounded<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        await fn(items[index]!, index);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * A counting semaphore. acquire() takes a slot, or returns a promise that resolves with one (no
 * promise at all while slots are free: callers write `const w = s.acquire(); if (w) await w;`).
 */
export class Semaphore {
  private free: number;
  private waiting: Array<() => void> = [];
  private waitingHead = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly limit: number) {
    this.free = limit;
  }

  acquire(): Promise<void> | undefined {
    if (this.free > 0) {
      this.free--;
      return undefined;
    }
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    if (this.waitingHead < this.waiting.length) {
      const next = this.waiting[this.waitingHead]!;
      this.waiting[this.waitingHead++] = undefined as unknown as () => void;
      if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waiting.length) {
        this.waiting = this.waiting.slice(this.waitingHead);
        this.waitingHead = 0;
      }
      next(); // the slot passes to the next waiter
      return;
    }
    this.free++;
    if (this.free === this.limit && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  /** Runs fn in a slot. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const waiting = this.acquire();
    if (waiting) await waiting;
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  /** Resolves when every slot is free. */
  idle(): Promise<void> | undefined {
    if (this.free === this.limit) return undefined;
    return new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }
}

/**
 * When to make file-system calls synchronously. On a local disk (page cache) a stat or a small
 * read takes microseconds, while a trip through libuv's thread pool costs tens of microseconds of
 * CPU in wake-ups and context switches: for 100,000 small files, synchronous calls use several
 * times less CPU (CPU the engine needs at the same time to unpack them). They are used only while
 * they stay fast: when most calls of a window take over SLOW_CALL_MS (a network file system, a
 * cold disk), callers switch to asynchronous calls with bounded concurrency for good. A few slow
 * calls (the process preempted on a busy machine) do not count. Synchronous work is cut into
 * slices of SLICE_MS, between which the caller yields to the event loop (yieldIfDue).
 */
export class SyncWhileFast {
  private calls = 0;
  private slowCalls = 0;
  private sliceEnd = 0;
  private synchronous = true;

  static readonly SLICE_MS = 4;
  static readonly SLOW_CALL_MS = 2;
  /** Calls per window; more than half of them slow switches to asynchronous calls. */
  static readonly WINDOW = 32;

  /** Synchronous calls are still the choice. */
  get fast(): boolean {
    return this.synchronous;
  }

  /** True while synchronous calls are the choice and the current slice has time left. */
  inSlice(): boolean {
    return this.synchronous && performance.now() < this.sliceEnd;
  }

  /**
   * When the slice is used up: a promise that yields to the event loop and starts a new slice
   * (callers write `const y = pacer.yieldIfDue(); if (y) await y;`: no promise per call otherwise).
   */
  yieldIfDue(): Promise<void> | undefined {
    if (performance.now() < this.sliceEnd) return undefined;
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        this.sliceEnd = performance.now() + SyncWhileFast.SLICE_MS;
        resolve();
      }),
    );
  }

  /** Times one synchronous call. */
  run<T>(call: () => T): T {
    const started = performance.now();
    try {
      return call();
    } finally {
      if (performance.now() - started > SyncWhileFast.SLOW_CALL_MS) this.slowCalls++;
      if (++this.calls === SyncWhileFast.WINDOW) {
        if (this.slowCalls * 2 > SyncWhileFast.WINDOW) this.synchronous = false;
        this.calls = 0;
        this.slowCalls = 0;
      }
    }
  }
}
