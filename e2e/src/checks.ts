// A scenario's record: named checks, each passed or failed with what was seen, and figures
// measured on the way; the pass/fail table at the end is made of these.

export interface Check {
  readonly what: string;
  readonly ok: boolean;
  readonly detail: string;
}

export class Recorder {
  readonly checks: Check[] = [];
  readonly figures: string[] = [];

  constructor(readonly scenario: string) {}

  check(what: string, ok: boolean, detail = ''): boolean {
    this.checks.push({ what, ok, detail });
    return ok;
  }

  /** A check that is an equality, with both sides in the detail. */
  equal<T>(what: string, actual: T, expected: T): boolean {
    const a = JSON.stringify(actual);
    const e = JSON.stringify(expected);
    return this.check(what, a === e, a === e ? '' : `got ${a}, want ${e}`);
  }

  figure(s: string): void {
    this.figures.push(s);
  }

  get passed(): boolean {
    return this.checks.length > 0 && this.checks.every((c) => c.ok);
  }
}
