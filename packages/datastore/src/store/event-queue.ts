// An unbounded push → async-iterator bridge for Watch implementations: producers push
// events as they happen, the consumer pulls with `for await`. close() ends a pending
// next() at once and drops what was not read.
import type { Watch, WatchEvent } from './backend.js';

export class EventQueue<R> implements Watch<R> {
  private readonly buffered: WatchEvent<R>[] = [];
  private waiting: ((r: IteratorResult<WatchEvent<R>>) => void) | undefined;
  private closed = false;

  constructor(private readonly onClose: () => void = () => {}) {}

  get isClosed(): boolean {
    return this.closed;
  }

  push(ev: WatchEvent<R>): void {
    if (this.closed) return;
    const w = this.waiting;
    if (w !== undefined) {
      this.waiting = undefined;
      w({ value: ev, done: false });
    } else this.buffered.push(ev);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.buffered.length = 0;
    const w = this.waiting;
    this.waiting = undefined;
    w?.({ value: undefined, done: true });
    this.onClose();
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchEvent<R>> {
    return {
      next: () => {
        const ev = this.buffered.shift();
        if (ev !== undefined) return Promise.resolve({ value: ev, done: false });
        if (this.closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (this.waiting = resolve));
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
