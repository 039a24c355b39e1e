// Capped exponential backoff with jitter, and a sleep that a close() can cut short.
import { setTimeout as delay } from 'node:timers/promises';

export class Backoff {
  private n = 0;
  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
  ) {}

  /** The next delay: 2^n × initial, capped, then "equal jitter" (a random point in its upper half). */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.n, 30));
    this.n++;
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  }

  reset(): void {
    this.n = 0;
  }
}

/** Resolves after `ms`, or at once (without throwing) when `signal` aborts. */
export async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return;
  try {
    await delay(ms, undefined, { signal });
  } catch {
    // Aborted: the caller checks its own closed state.
  }
}
