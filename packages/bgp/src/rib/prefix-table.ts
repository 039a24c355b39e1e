// A hash table from (prefix, path id) to a dense integer, over typed arrays: no object or
// string per prefix. Open addressing with linear probing; deletions leave tombstones that
// inserts reuse and a rehash clears. Keys are read straight from a PrefixList column.

import type { PrefixAfi, PrefixList } from '../wire/index.js';
import { formatIpv4, formatIpv6Words } from '../wire/index.js';

const EMPTY = 0;
const FULL = 1;
const TOMB = 2;

export class PrefixTable {
  /** Words per key: address words, then length, then path id. */
  private readonly kw: number;
  private cap: number;
  private keys: Uint32Array;
  private vals: Int32Array;
  private state: Uint8Array;
  private count = 0;
  private used = 0; // FULL + TOMB

  constructor(
    readonly afi: PrefixAfi,
    initialCapacity = 1024,
  ) {
    this.kw = (afi === 1 ? 1 : 4) + 2;
    let cap = 16;
    while (cap < initialCapacity * 2) cap *= 2;
    this.cap = cap;
    this.keys = new Uint32Array(cap * this.kw);
    this.vals = new Int32Array(cap);
    this.state = new Uint8Array(cap);
  }

  get size(): number {
    return this.count;
  }

  private hash(list: PrefixList, i: number, pathId: number): number {
    const w = this.kw - 2;
    let h = Math.imul((list.lens[i] as number) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(pathId, 0xc2b2ae35);
    for (let k = 0; k < w; k++) {
      h ^= list.addrs[i * w + k] as number;
      h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
      h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
    }
    return (h ^ (h >>> 16)) & (this.cap - 1);
  }

  private equals(slot: number, list: PrefixList, i: number, pathId: number): boolean {
    const w = this.kw - 2;
    const o = slot * this.kw;
    const keys = this.keys;
    if (keys[o + w] !== list.lens[i] || keys[o + w + 1] !== pathId >>> 0) return false;
    for (let k = 0; k < w; k++) if (keys[o + k] !== list.addrs[i * w + k]) return false;
    return true;
  }

  /** The value stored for prefix i of `list` (with this path id), or -1. */
  get(list: PrefixList, i: number, pathId = 0): number {
    const slot = this.findSlot(list, i, pathId);
    return slot < 0 ? -1 : (this.vals[slot] as number);
  }

  private findSlot(list: PrefixList, i: number, pathId: number): number {
    const mask = this.cap - 1;
    for (let s = this.hash(list, i, pathId), n = 0; n < this.cap; s = (s + 1) & mask, n++) {
      const st = this.state[s];
      if (st === EMPTY) return -1;
      if (st === FULL && this.equals(s, list, i, pathId)) return s;
    }
    return -1;
  }

  /** Stores value for the key; returns the previous value or -1. */
  set(list: PrefixList, i: number, pathId: number, value: number): number {
    if ((this.used + 1) * 4 > this.cap * 3)
      this.rehash(this.count * 2 >= this.cap / 2 ? this.cap * 2 : this.cap);
    const mask = this.cap - 1;
    let tomb = -1;
    for (let s = this.hash(list, i, pathId); ; s = (s + 1) & mask) {
      const st = this.state[s];
      if (st === EMPTY) {
        const at = tomb >= 0 ? tomb : s;
        if (tomb < 0) this.used++;
        this.write(at, list, i, pathId, value);
        this.count++;
        return -1;
      }
      if (st === TOMB) {
        if (tomb < 0) tomb = s;
      } else if (this.equals(s, list, i, pathId)) {
        const prev = this.vals[s] as number;
        this.vals[s] = value;
        return prev;
      }
    }
  }

  /** Removes the key; returns its value or -1. */
  delete(list: PrefixList, i: number, pathId = 0): number {
    const s = this.findSlot(list, i, pathId);
    if (s < 0) return -1;
    this.state[s] = TOMB;
    this.count--;
    return this.vals[s] as number;
  }

  private write(slot: number, list: PrefixList, i: number, pathId: number, value: number): void {
    const w = this.kw - 2;
    const o = slot * this.kw;
    for (let k = 0; k < w; k++) this.keys[o + k] = list.addrs[i * w + k] as number;
    this.keys[o + w] = list.lens[i] as number;
    this.keys[o + w + 1] = pathId;
    this.vals[slot] = value;
    this.state[slot] = FULL;
  }

  private rehash(cap: number): void {
    const { keys, vals, state, kw } = this;
    const oldCap = this.cap;
    this.cap = cap;
    this.keys = new Uint32Array(cap * kw);
    this.vals = new Int32Array(cap);
    this.state = new Uint8Array(cap);
    this.count = 0;
    this.used = 0;
    const w = kw - 2;
    // Reinsert through a one-prefix view of each old key.
    const addrs = new Uint32Array(w);
    const lens = new Uint8Array(1);
    const view = { afi: this.afi, addrs, lens, pathIds: null } as unknown as PrefixList;
    for (let s = 0; s < oldCap; s++) {
      if (state[s] !== FULL) continue;
      const o = s * kw;
      for (let k = 0; k < w; k++) addrs[k] = keys[o + k] as number;
      lens[0] = keys[o + w] as number;
      this.set(view, 0, keys[o + w + 1] as number, vals[s] as number);
    }
  }

  /**
   * Calls fn for every entry with a one-prefix view of its key (reused: copy what you keep)
   * and its path id and value. Entries must not be added or removed during the walk.
   */
  forEachKey(fn: (list: PrefixList, pathId: number, value: number) => void): void {
    const w = this.kw - 2;
    const addrs = new Uint32Array(w);
    const lens = new Uint8Array(1);
    const view = { afi: this.afi, addrs, lens, pathIds: null, length: 1 } as unknown as PrefixList;
    for (let s = 0; s < this.cap; s++) {
      if (this.state[s] !== FULL) continue;
      const o = s * this.kw;
      for (let k = 0; k < w; k++) addrs[k] = this.keys[o + k] as number;
      lens[0] = this.keys[o + w] as number;
      fn(view, this.keys[o + w + 1] as number, this.vals[s] as number);
    }
  }

  /** Calls fn for every entry: its value, and its prefix as text (for dumps and tests). */
  forEach(fn: (value: number, prefix: string, pathId: number) => void): void {
    const w = this.kw - 2;
    for (let s = 0; s < this.cap; s++) {
      if (this.state[s] !== FULL) continue;
      const o = s * this.kw;
      const k = this.keys;
      const len = k[o + w] as number;
      const text =
        w === 1
          ? `${formatIpv4(k[o] as number)}/${len}`
          : `${formatIpv6Words(k[o] as number, k[o + 1] as number, k[o + 2] as number, k[o + 3] as number)}/${len}`;
      fn(this.vals[s] as number, text, k[o + w + 1] as number);
    }
  }
}
