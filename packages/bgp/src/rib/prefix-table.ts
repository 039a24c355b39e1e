// A hash table from (prefix, path id) to a dense integer, over typed arrays: no object or
// string per prefix. Open addressing with linear probing; deletions leave tombstones that
// inserts reuse and a rehash clears. Keys are read straight from a PrefixList column.

import type { PrefixAfi, PrefixList } from '../wire/index.js';
import { formatIpv4, formatIpv6Words } from '../wire/index.js';

// Each slot is one row of a single Uint32Array, [address words, tag, path id, value],
// padded to 4 or 8 words so that a probe touches one cache line, not three arrays.
const EMPTY = 0;
/** Tag of a deleted slot; a full one holds the prefix length + 1. */
const TOMB = 0xffffffff;

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
    this.r = afi === 1 ? 4 : 8;
    let cap = 16;
    while (cap < initialCapacity * 2) cap *= 2;
    this.cap = cap;
    this.rows = new Uint32Array(cap * this.r);
  }

  get size(): number {
    return this.count;
  }

  private hash(list: PrefixList, i: number, pathId: number): number {
    const w = this.w;
    let h = Math.imul((list.lens[i] as number) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(pathId, 0xc2b2ae35);
    for (let k = 0; k < w; k++) {
      h ^= list.addrs[i * w + k] as number;
      h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
      h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
    }
    return (h ^ (h >>> 16)) & (this.cap - 1);
  }

  /** Whether the full row at offset o holds prefix i of list with this path id. */
  private equals(o: number, list: PrefixList, i: number, pathId: number): boolean {
    const w = this.w;
    const rows = this.rows;
    if (rows[o + w] !== (list.lens[i] as number) + 1 || rows[o + w + 1] !== pathId >>> 0) return false;
    for (let k = 0; k < w; k++) if (rows[o + k] !== list.addrs[i * w + k]) return false;
    return true;
  }

  /** The value stored for prefix i of `list` (with this path id), or -1. */
  get(list: PrefixList, i: number, pathId = 0): number {
    const o = this.find(list, i, pathId);
    if (o < 0) return -1;
    this.lastSlot = o / this.r;
    return (this.rows[o + this.w + 2] as number) | 0;
  }

  /**
   * Removes the key in `slot` if it is still there with this value; false if it moved.
   * For tables whose values are unique (the Loc-RIB's entry ids): the value names the key.
   */
  deleteSlot(slot: number, value: number): boolean {
    if (slot < 0 || slot >= this.cap) return false;
    const o = slot * this.r;
    const tag = this.rows[o + this.w] as number;
    if (tag === EMPTY || tag === TOMB || ((this.rows[o + this.w + 2] as number) | 0) !== value) return false;
    this.rows[o + this.w] = TOMB;
    this.count--;
    return true;
  }

  /** The row offset of the key, or -1. */
  private find(list: PrefixList, i: number, pathId: number): number {
    const mask = this.cap - 1;
    const { r, w, rows } = this;
    for (let s = this.hash(list, i, pathId), n = 0; n < this.cap; s = (s + 1) & mask, n++) {
      const o = s * r;
      const tag = rows[o + w] as number;
      if (tag === EMPTY) return -1;
      if (tag !== TOMB && this.equals(o, list, i, pathId)) return o;
    }
    return -1;
  }

  /** Stores value for the key; returns the previous value or -1. */
  set(list: PrefixList, i: number, pathId: number, value: number): number {
    return this.put(list, i, pathId, value, true);
  }

  /**
   * Stores value for the key unless it is there already; returns the value it has (then
   * nothing changed) or -1 (then `value` was stored). One probe where get + set take two.
   */
  setIfAbsent(list: PrefixList, i: number, pathId: number, value: number): number {
    return this.put(list, i, pathId, value, false);
  }

  private put(list: PrefixList, i: number, pathId: number, value: number, replace: boolean): number {
    if ((this.used + 1) * 4 > this.cap * 3)
      this.rehash(this.count * 2 >= this.cap / 2 ? this.cap * 2 : this.cap);
    const mask = this.cap - 1;
    const { r, w, rows } = this;
    let tomb = -1;
    for (let s = this.hash(list, i, pathId); ; s = (s + 1) & mask) {
      const o = s * r;
      const tag = rows[o + w] as number;
      if (tag === EMPTY) {
        if (tomb < 0) this.used++;
        const at = tomb >= 0 ? tomb : o;
        this.write(at, list, i, pathId, value);
        this.count++;
        this.lastSlot = at / r;
        return -1;
      }
      if (tag === TOMB) {
        if (tomb < 0) tomb = o;
      } else if (this.equals(o, list, i, pathId)) {
        const prev = (rows[o + w + 2] as number) | 0;
        if (replace) rows[o + w + 2] = value;
        this.lastSlot = s;
        return prev;
      }
    }
  }

  /** Removes the key; returns its value or -1. */
  delete(list: PrefixList, i: number, pathId = 0): number {
    const o = this.find(list, i, pathId);
    if (o < 0) return -1;
    this.rows[o + this.w] = TOMB;
    this.count--;
    return (this.rows[o + this.w + 2] as number) | 0;
  }

  private write(o: number, list: PrefixList, i: number, pathId: number, value: number): void {
    const { w, rows } = this;
    for (let k = 0; k < w; k++) rows[o + k] = list.addrs[i * w + k] as number;
    rows[o + w] = (list.lens[i] as number) + 1;
    rows[o + w + 1] = pathId;
    rows[o + w + 2] = value;
  }

  private rehash(cap: number): void {
    const { rows, r, w } = this;
    const oldCap = this.cap;
    const oldCount = this.count;
    this.cap = cap;
    this.rows = new Uint32Array(cap * r);
    // Reinsert through a one-prefix view of each old key.
    const addrs = new Uint32Array(w);
    const lens = new Uint8Array(1);
    const view = { afi: this.afi, addrs, lens, pathIds: null } as unknown as PrefixList;
    // Keys are distinct and the new table has no deleted slots: the first empty slot of
    // the probe takes the row as it is.
    const mask = cap - 1;
    const next = this.rows;
    for (let s = 0; s < oldCap; s++) {
      const o = s * r;
      const tag = rows[o + w] as number;
      if (tag === EMPTY || tag === TOMB) continue;
      for (let k = 0; k < w; k++) addrs[k] = rows[o + k] as number;
      lens[0] = tag - 1;
      let t = this.hash(view, 0, rows[o + w + 1] as number);
      while (next[t * r + w] !== EMPTY) t = (t + 1) & mask;
      for (let k = 0; k < r; k++) next[t * r + k] = rows[o + k] as number;
    }
    this.count = this.used = oldCount;
  }

  /** Calls fn(row offset, length) for every full slot. */
  private walk(fn: (o: number, len: number) => void): void {
    const { r, w, rows } = this;
    for (let s = 0; s < this.cap; s++) {
      const tag = rows[s * r + w] as number;
      if (tag !== EMPTY && tag !== TOMB) fn(s * r, tag - 1);
    }
  }

  /**
   * Calls fn for every entry with a one-prefix view of its key (reused: copy what you keep)
   * and its path id and value. Entries must not be added or removed during the walk.
   */
  forEachKey(fn: (list: PrefixList, pathId: number, value: number) => void): void {
    const { w, rows } = this;
    const addrs = new Uint32Array(w);
    const lens = new Uint8Array(1);
    const view = { afi: this.afi, addrs, lens, pathIds: null, length: 1 } as unknown as PrefixList;
    this.walk((o, len) => {
      for (let k = 0; k < w; k++) addrs[k] = rows[o + k] as number;
      lens[0] = len;
      fn(view, rows[o + w + 1] as number, (rows[o + w + 2] as number) | 0);
    });
  }

  /** Calls fn for every entry: its value, and its prefix as text (for dumps and tests). */
  forEach(fn: (value: number, prefix: string, pathId: number) => void): void {
    const { w, rows } = this;
    this.walk((o, len) => {
      const text =
        w === 1
          ? `${formatIpv4(rows[o] as number)}/${len}`
          : `${formatIpv6Words(rows[o] as number, rows[o + 1] as number, rows[o + 2] as number, rows[o + 3] as number)}/${len}`;
      fn((rows[o + w + 2] as number) | 0, text, rows[o + w + 1] as number);
    });
  }
}
