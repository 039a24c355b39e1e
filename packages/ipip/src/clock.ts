// The seams every reconciler takes (ipip's TunnelManager, felix-lite's route, neighbour and
// NAT reconcilers): time, injected so timers, backoff and grace periods are tested by
// advancing a manual clock instead of waiting (Calico's timeshim, in spirit); and logging,
// pino-compatible and silent by default.

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Calls fn after ms; returns a function that cancels it. */
  setTimer(ms: number, fn: () => void): () => void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};

/** The logging seam: pino-compatible (fields first, then the message), silent by default. */
export interface Logger {
  debug(fields: object, msg: string): void;
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

const nothing = (): void => undefined;
export const silentLogger: Logger = { debug: nothing, info: nothing, warn: nothing, error: nothing };

/** A clock that moves only when told to. */
export class ManualClock implements Clock {
  private t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fn: () => void): () => void {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return () => this.timers.delete(id);
  }

  /** Fires the timers due within the next ms in time order; returns how many fired. */
  advance(ms: number): number {
    const end = this.t + ms;
    let fired = 0;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers)
        if (e[1].at <= end && (next === undefined || e[1].at < next[1].at)) next = e;
      if (next === undefined) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
      fired++;
    }
    this.t = end;
    return fired;
  }

  /** Milliseconds until the next timer, or undefined when none is armed. */
  nextIn(): number | undefined {
    let at: number | undefined;
    for (const e of this.timers.values()) if (at === undefined || e.at < at) at = e.at;
    return at === undefined ? undefined : at - this.t;
  }
}
