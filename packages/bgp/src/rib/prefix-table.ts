// A hash table from a prefix to a dense integer (the Loc-RIB's entry index), over one
// typed array: no object or string per prefix. Open addressing with linear probing;
// deletions leave tombstones that inserts reuse and a rehash clears. Keys are read straight
// from a PrefixList column.
//
// A slot is one row, [address words, tag], where the tag packs the prefix length + 1 (low
// byte) and the value (high 24 bits): 8 bytes a row for IPv4, so a million-prefix table is
// 16 MiB and a probe touches one cache line. IPv6 rows are padded to 8 words.

import type { PrefixAfi, PrefixList } from '../wire/index.js';
import { formatIpv4, formatIpv6Words } from '../wire/index.js';

const EMPTY = 0;
/** Low byte of a deleted slot's tag; a full one holds length + 1 (1..129). */
const TOMB = 0xff;
/** Values are 24-bit: the Loc-RIB holds at most this many prefixes per family. */
export const PREFIX_TABLE_MAX_VALUE = 0xffffff;

export class PrefixTable {
  /** Address words per key. */
  private readonly w: number;
  /** Words per row. */
  private readonly r: number;
  private cap: number;
  private rows: Uint32Array;
  private count = 0;
  private used = 0; // full + deleted slots
  /**
   * The slot the last get, set or setIfAbsent found or filled: deleteSlot takes it to drop
   * a key later without hashing it again (until a rehash moves it: then deleteSlot says no).
   */
  lastSlot = -1;

  constructor(
    readonly afi: PrefixAfi,
    initialCapacity = 1024,
  ) {
    this.w = afi === 1 ? 1 : 4;
    this.r = afi === 1 ? 2 : 8;
    let cap = 16;
    while (cap < initialCapacity * 2) cap *= 2;
    this.cap = cap;
    this.rows = new Uint32Array(cap * this.r);
  }

  get size(): number {
    return this.count;
  }

  private hash(list: PrefixList, i: number): number {
    const w = this.w;
    let h = Math.imul((list.lens[i] as number) ^ 0x9e3779b9, 0x85ebca6b);
    for (let k = 0; k < w; k++) {
      h ^= list.addrs[i * w + k] as number;
      h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
      h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
    }
    return (h ^ (h >>> 16)) & (this.cap - 1);
  }

  /** Whether the row at offset o, with this tag, holds prefix i of list. */
  private equals(o: number, tag: number, list: PrefixList, i: number): boolean {
    if ((tag & 0xff) !== (list.lens[i] as number) + 1) return false;
    const w = this.w;
    for (let k = 0; k < w; k++) if (this.rows[o + k] !== list.addrs[i * w + k]) return false;
    return true;
  }

  /** The value stored for prefix i of `list`, or -1. */
  get(list: PrefixList, i: number): number {
    const mask = this.cap - 1;
    const { r, w, rows } = this;
    for (let s = this.hash(list, i), n = 0; n < this.cap; s = (s + 1) & mask, n++) {
      const o = s * r;
      const tag = rows[o + w] as number;
      if (tag === EMPTY) return -1;
      if ((tag & 0xff) !== TOMB && this.equals(o, tag, list, i)) {
        this.lastSlot = s;
        return tag >>> 8;
      }
    }
    return -1;
  }

  /** Removes the key in `slot` if it is still there with this value; false if it moved. */
  deleteSlot(slot: number, value: number): boolean {
    if (slot < 0 || slot >= this.cap) return false;
    const at = slot * this.r + this.w;
    const tag = this.rows[at] as number;
    if (tag === EMPTY || (tag & 0xff) === TOMB || tag >>> 8 !== value) return false;
    this.rows[at] = TOMB;
    this.count--;
    return true;
  }

  /** Stores value for the key; returns the previous value or -1. */
  set(list: PrefixList, i: number, value: number): number {
    return this.put(list, i, value, true);
  }

  /**
   * Stores value for the key unless it is there already; returns the value it has (then
   * nothing changed) or -1 (then `value` was stored). One probe where get + set take two.
   */
  setIfAbsent(list: PrefixList, i: number, value: number): number {
    return this.put(list, i, value, false);
  }

  private put(list: PrefixList, i: number, value: number, replace: boolean): number {
    if (!(value >= 0 && value <= PREFIX_TABLE_MAX_VALUE)) {
      throw new RangeError(`prefix table: value ${value} out of 0..${PREFIX_TABLE_MAX_VALUE}`);
    }
    if ((this.used + 1) * 4 > this.cap * 3)
      this.rehash(this.count * 2 >= this.cap / 2 ? this.cap * 2 : this.cap);
    const mask = this.cap - 1;
    const { r, w, rows } = this;
    const tagged = ((value << 8) | ((list.lens[i] as number) + 1)) >>> 0;
    let tomb = -1;
    for (let s = this.hash(list, i); ; s = (s + 1) & mask) {
      const o = s * r;
      const tag = rows[o + w] as number;
      if (tag === EMPTY) {
        const at = tomb >= 0 ? tomb : s;
        if (tomb < 0) this.used++;
        for (let k = 0; k < w; k++) rows[at * r + k] = list.addrs[i * w + k] as number;
        rows[at * r + w] = tagged;
        this.count++;
        this.lastSlot = at;
        return -1;
      }
      if ((tag & 0xff) === TOMB) {
        if (tomb < 0) tomb = s;
      } else if (this.equals(o, tag, list, i)) {
        if (replace) rows[o + w] = tagged;
        this.lastSlot = s;
        return tag >>> 8;
      }
    }
  }

  /** Removes the key; returns its value or -1. */
  delete(list: PrefixList, i: number): number {
    const v = this.get(list, i);
    if (v < 0) return -1;
    this.rows[this.lastSlot * this.r + this.w] = TOMB;
    this.count--;
    return v;
  }

  private rehash(cap: number): void {
    const { rows, r, w } = this;
    const oldCap = this.cap;
    this.cap = cap;
    this.rows = new Uint32Array(cap * r);
    // Reinsert through a one-prefix view of each old key. Keys are distinct and the new
    // table has no deleted slots: the first empty slot of the probe takes the row as it is.
    const addrs = new Uint32Array(w);
    const lens = new Uint8Array(1);
    const view = { afi: this.afi, addrs, lens, pathIds: null } as unknown as PrefixList;
    const mask = cap - 1;
    const next = this.rows;
    for (let s = 0; s < oldCap; s++) {
      const o = s * r;
      const tag = rows[o + w] as number;
      if (tag === EMPTY || (tag & 0xff) === TOMB) continue;
      for (let k = 0; k < w; k++) addrs[k] = rows[o + k] as number;
      lens[0] = (tag & 0xff) - 1;
      let t = this.hash(view, 0);
      while (next[t * r + w] !== EMPTY) t = (t + 1) & mask;
      for (let k = 0; k <= w; k++) next[t * r + k] = rows[o + k] as number;
    }
    this.used = this.count;
  }

  /** Calls fn for every entry: its value, and its prefix as text (for dumps and tests). */
  forEach(fn: (value: number, prefix: string) => void): void {
    const { r, w, rows } = this;
    for (let s = 0; s < this.cap; s++) {
      const o = s * r;
      const tag = rows[o + w] as number;
      if (tag === EMPTY || (tag & 0xff) === TOMB) continue;
      const len = (tag & 0xff) - 1;
      const text =
        w === 1
          ? `${formatIpv4(rows[o] as number)}/${len}`
          : `${formatIpv6Words(rows[o] as number, rows[o + 1] as number, rows[o + 2] as number, rows[o + 3] as number)}/${len}`;
      fn(tag >>> 8, text);
    }
  }
}
