// A bounds-checked reader and a growable writer over Uint8Array.
//
// Every read checks the declared length of the structure it is inside (not only the
// buffer's end), so a malformed length can never make a decoder read a neighbour's bytes.

import type { BgpNotification } from './errors.js';

/** Builds the error to throw when a read would run past the end. */
export type OverrunError = (what: string) => BgpNotification;

export class Reader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
    private readonly overrun: OverrunError,
  ) {
    this.pos = start;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  need(n: number, what: string): void {
    if (this.pos + n > this.end) throw this.overrun(what);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++] as number;
  }

  u16(what: string): number {
    this.need(2, what);
    const b = this.buf;
    const v = ((b[this.pos] as number) << 8) | (b[this.pos + 1] as number);
    this.pos += 2;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return (
      (((b[p] as number) << 24) |
        ((b[p + 1] as number) << 16) |
        ((b[p + 2] as number) << 8) |
        (b[p + 3] as number)) >>>
      0
    );
  }

  /** A view (no copy) of the next n bytes. */
  bytes(n: number, what: string): Uint8Array {
    this.need(n, what);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** A reader confined to the next n bytes, for a length-prefixed sub-structure. */
  sub(n: number, what: string, overrun: OverrunError = this.overrun): Reader {
    this.need(n, what);
    const r = new Reader(this.buf, this.pos, this.pos + n, overrun);
    this.pos += n;
    return r;
  }
}

export class Writer {
  private buf: Uint8Array;
  pos = 0;
  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  u8(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  u16(v: number): this {
    this.ensure(2);
    this.buf[this.pos++] = v >>> 8;
    this.buf[this.pos++] = v;
    return this;
  }

  u32(v: number): this {
    this.ensure(4);
    const b = this.buf;
    b[this.pos++] = v >>> 24;
    b[this.pos++] = v >>> 16;
    b[this.pos++] = v >>> 8;
    b[this.pos++] = v;
    return this;
  }

  bytes(v: Uint8Array): this {
    this.ensure(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
    return this;
  }

  /** Room for n bytes written directly by the caller at the returned offset. */
  reserve(n: number): { buf: Uint8Array; off: number } {
    this.ensure(n);
    const off = this.pos;
    this.pos += n;
    return { buf: this.buf, off };
  }

  patchU8(at: number, v: number): void {
    this.buf[at] = v;
  }

  patchU16(at: number, v: number): void {
    this.buf[at] = v >>> 8;
    this.buf[at + 1] = v;
  }

  /** A copy of what was written, exactly sized. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}
