// Test helpers for the loop's timers: the manual clock is @tabby/ipip's own.
export { ManualClock } from '../src/index.js';
/** Lets queued microtasks and setImmediate callbacks (the fake's events) run. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}
