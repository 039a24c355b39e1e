// Scheduling for a reconciler whose passes read the kernel and write the difference: one
// pass at a time, bursts of kicks coalesced (debounce), a full resync on a timer, exponential
// backoff with jitter after a failed pass, and a retry after a pass that asks for one. Time
// comes from an injected Clock so tests advance it by hand.
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';

export interface LoopTiming {
  /** Coalesces kicks into one pass (default 10 ms). */
  readonly debounceMs?: number;
  /** A full resync this often, events or not (default 30 s). */
  readonly resyncIntervalMs?: number;
  /** Backoff after a failed pass: initial and cap (default 100 ms, 10 s). */
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
}

export interface LoopHooks<R> {
  /** One pass; `resync` is true when a full resync was asked for since the last pass. */
  readonly pass: (resync: boolean) => Promise<R>;
  /** After a good pass: milliseconds until it should run again (failed items), or undefined. */
  readonly retryIn?: (r: R, attempt: number) => number | undefined;
  readonly clock?: Clock;
  /** [0, 1) for backoff jitter (default Math.random). */
  readonly random?: () => number;
}

export class ReconcileLoop<R> {
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly debounceMs: number;
  private readonly resyncIntervalMs: number;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;

  private stopped = true;
  private resyncWanted = true;
  private running: Promise<R> | undefined;
  private again = false;
  private kickTimer: { at: number; cancel: () => void } | undefined;
  private resyncCancel: (() => void) | undefined;
  private failedPasses = 0;
  private retries = 0;
  private readonly listeners = new Set<(r: R | Error) => void>();

  constructor(
    private readonly hooks: LoopHooks<R>,
    timing: LoopTiming = {},
  ) {
    this.clock = hooks.clock ?? systemClock;
    this.random = hooks.random ?? Math.random;
    this.debounceMs = timing.debounceMs ?? 10;
    this.resyncIntervalMs = timing.resyncIntervalMs ?? 30_000;
    this.backoffInitialMs = timing.backoffInitialMs ?? 100;
    this.backoffMaxMs = timing.backoffMaxMs ?? 10_000;
  }

  get isRunning(): boolean {
    return !this.stopped;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.armResync();
    this.kick(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.kickTimer?.cancel();
    this.kickTimer = undefined;
    this.resyncCancel?.();
    this.resyncCancel = undefined;
    if (this.running !== undefined) await this.running.catch(() => undefined);
  }

  /** Schedules a pass after delayMs (default: the debounce); an earlier one already armed wins. */
  kick(delayMs: number = this.debounceMs): void {
    if (this.stopped) return;
    if (this.running !== undefined && delayMs <= this.debounceMs) {
      this.again = true;
      return;
    }
    const at = this.clock.now() + delayMs;
    if (this.kickTimer !== undefined) {
      if (this.kickTimer.at <= at) return;
      this.kickTimer.cancel();
    }
    const cancel = this.clock.setTimer(delayMs, () => {
      this.kickTimer = undefined;
      if (this.running !== undefined) {
        this.again = true;
        return;
      }
      this.run().catch(() => undefined /* reported to listeners and rescheduled in run() */);
    });
    this.kickTimer = { at, cancel };
  }

  /** A full resync at the next pass, scheduled now. */
  requestResync(): void {
    this.resyncWanted = true;
    this.kick(0);
  }

  /** Called after every pass with its result, or with the error of a failed one. */
  onPass(fn: (r: R | Error) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Runs one pass now (after the one in flight, if any); rejects when the pass fails. */
  async run(): Promise<R> {
    while (this.running !== undefined) await this.running.catch(() => undefined);
    const resync = this.resyncWanted;
    this.resyncWanted = false;
    const p = this.hooks.pass(resync);
    this.running = p;
    try {
      const r = await p;
      this.failedPasses = 0;
      const retry = this.hooks.retryIn?.(r, this.retries + 1);
      if (retry !== undefined) {
        this.retries++;
        this.kick(retry);
      } else this.retries = 0;
      for (const l of this.listeners) l(r);
      return r;
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      if (resync) this.resyncWanted = true;
      this.failedPasses++;
      this.kick(this.backoff(this.failedPasses));
      for (const l of this.listeners) l(err);
      throw err;
    } finally {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.kick(this.debounceMs);
      }
    }
  }

  /** Exponential backoff with ±20% jitter for the attempt-th consecutive failure. */
  backoff(attempt: number): number {
    const base = Math.min(this.backoffMaxMs, this.backoffInitialMs * 2 ** Math.min(30, attempt - 1));
    return Math.round(base * (0.8 + 0.4 * this.random()));
  }

  private armResync(): void {
    this.resyncCancel = this.clock.setTimer(this.resyncIntervalMs, () => {
      this.resyncWanted = true;
      this.kick(0);
      this.armResync();
    });
  }
}
