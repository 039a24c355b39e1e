// Adj-RIB-Out of one family, for one peer or for an update group (peers with the same
// export rules and encoding, which share it and its encoded UPDATEs): what is waiting to be
// sent and what the receivers have.
//
// Changes are coalesced per prefix (a later change replaces an unsent one, as BIRD's TX
// buckets do), and UPDATEs are built only when the sockets take more bytes, in bounded
// batches grouped by attribute set: memory is bounded by the pending set, never by a queue
// of encoded messages (GoBGP #3330).
//
// Each route carries its source: the peer it was learned from. A group's table holds every
// route, its members' own included; split horizon is applied at send time: an UPDATE whose
// routes came from member X goes to every member but X, and X, which had those prefixes
// from someone else, gets their withdrawal instead. A member's view is therefore the table
// minus its own routes, which is exactly what a peer's own Adj-RIB-Out would hold.

import type { AttrStore, PrefixTable as PrefixTableT } from '../rib/index.js';
import { PrefixTable } from '../rib/index.js';
import type { CodecContext, PathAttributes, PrefixAfi } from '../wire/index.js';
import { PrefixList, packAnnouncements, packWithdrawals } from '../wire/index.js';

const WITHDRAW = -1;
/** Source of a withdrawal, or of a route with no peer behind it. */
const NO_SOURCE = -1;

/** Where built UPDATEs go: the peer, or every member of a group. */
export interface OutSink {
  /** Sends one message to every receiver except peer `except` (-1: to all). */
  all(bytes: Uint8Array, except: number): void;
  /** Sends one message to receiver `peer` alone (nothing if it is not one). */
  one(peer: number, bytes: Uint8Array): void;
}

export class AdjRibOut {
  private readonly w: number;
  private readonly pending: PrefixTableT;
  private pAttr = new Int32Array(256);
  private pSrc = new Int32Array(256);
  private pAddr: Uint32Array;
  private pLen = new Uint8Array(256);
  private order = new Int32Array(256); // pending indices in arrival order
  private head = 0;
  private tail = 0;
  private free: number[] = [];
  private top = 0;
  /** What the receivers have: prefix -> slot of sAttr/sSrc. */
  private readonly sent: PrefixTableT;
  private sAttr = new Int32Array(256);
  private sSrc = new Int32Array(256);
  private sFree: number[] = [];
  private sTop = 0;
  /** Sent routes per source peer, for a member's advertised count. */
  private readonly bySource = new Map<number, number>();

  constructor(
    readonly afi: PrefixAfi,
    private readonly store: AttrStore,
    readonly context: CodecContext,
  ) {
    this.w = afi === 1 ? 1 : 4;
    this.pending = new PrefixTable(afi, 256);
    this.sent = new PrefixTable(afi, 256);
    this.pAddr = new Uint32Array(256 * this.w);
  }

  /** Prefixes the receivers have (a group member: see advertisedTo). */
  get advertised(): number {
    return this.sent.size;
  }

  /** Prefixes peer `index` has from this table: all but its own routes. */
  advertisedTo(index: number): number {
    return this.sent.size - (this.bySource.get(index) ?? 0);
  }

  /** Changes waiting to be sent. */
  get waiting(): number {
    return this.pending.size;
  }

  /**
   * Queues prefix i of `list` to be sent with `attrId` (an interned, exported set; the
   * caller's reference is taken over) or withdrawn (attrId -1). `source` is the peer index
   * the route was learned from (-1 or the local index when no peer's).
   */
  enqueue(list: PrefixList, i: number, attrId: number, source: number = NO_SOURCE): void {
    const src = attrId === WITHDRAW ? NO_SOURCE : source;
    const slot = this.pending.get(list, i, 0);
    if (slot >= 0) {
      const old = this.pAttr[slot] as number;
      if (old >= 0) this.store.release(old);
      this.pAttr[slot] = attrId;
      this.pSrc[slot] = src;
      return;
    }
    // Nothing to do when it only repeats what the receivers have.
    const has = this.sent.get(list, i, 0);
    if (attrId === WITHDRAW ? has < 0 : has >= 0 && this.sAttr[has] === attrId && this.sSrc[has] === src) {
      if (attrId >= 0) this.store.release(attrId);
      return;
    }
    const p = this.alloc();
    for (let k = 0; k < this.w; k++) this.pAddr[p * this.w + k] = list.addrs[i * this.w + k] as number;
    this.pLen[p] = list.lens[i] as number;
    this.pAttr[p] = attrId;
    this.pSrc[p] = src;
    this.pending.set(list, i, 0, p);
    this.push(p);
  }

  private alloc(): number {
    const p = this.free.pop();
    if (p !== undefined) return p;
    if (this.top === this.pAttr.length) {
      const n = this.pAttr.length * 2;
      const a = new Int32Array(n);
      a.set(this.pAttr);
      this.pAttr = a;
      const s = new Int32Array(n);
      s.set(this.pSrc);
      this.pSrc = s;
      const l = new Uint8Array(n);
      l.set(this.pLen);
      this.pLen = l;
      const ad = new Uint32Array(n * this.w);
      ad.set(this.pAddr);
      this.pAddr = ad;
    }
    return this.top++;
  }

  private push(p: number): void {
    if (this.tail === this.order.length) {
      // Compact, or grow, the arrival-order ring.
      const live = this.tail - this.head;
      const next = live * 2 > this.order.length ? new Int32Array(this.order.length * 2) : this.order;
      next.copyWithin(0, this.head, this.tail);
      if (next !== this.order) next.set(this.order.subarray(this.head, this.tail));
      this.order = next;
      this.head = 0;
      this.tail = live;
    }
    this.order[this.tail++] = p;
  }

  /**
   * Builds UPDATEs for up to `max` pending prefixes, grouped by attribute set and source,
   * and hands them to `sink`; returns how many prefixes were taken.
   */
  build(max: number, sink: OutSink): number {
    const batch: number[] = [];
    while (this.head < this.tail && batch.length < max) batch.push(this.order[this.head++] as number);
    if (batch.length === 0) return 0;
    // Buckets by (set, source); withdrawals are one bucket (attr -1, source -1).
    const buckets = new Map<number, number[]>();
    for (const p of batch) {
      const key = ((this.pAttr[p] as number) + 1) * SOURCE_SPAN + ((this.pSrc[p] as number) + 1);
      const b = buckets.get(key);
      if (b === undefined) buckets.set(key, [p]);
      else b.push(p);
    }
    for (const ps of buckets.values()) {
      const first = ps[0] as number;
      const attrId = this.pAttr[first] as number;
      const src = this.pSrc[first] as number;
      const list = this.listOf(ps);
      // What the receivers had for each prefix (a sent slot, or -1).
      const prev = new Int32Array(ps.length);
      for (let i = 0; i < ps.length; i++) prev[i] = this.sent.get(list, i, 0);
      if (attrId === WITHDRAW) {
        // By the source of what is withdrawn: that member never had it.
        const bySource = new Map<number, number[]>();
        for (let i = 0; i < ps.length; i++) {
          const s = prev[i] as number;
          const from = s >= 0 ? (this.sSrc[s] as number) : NO_SOURCE;
          const b = bySource.get(from);
          if (b === undefined) bySource.set(from, [i]);
          else b.push(i);
        }
        for (const [from, idx] of bySource) {
          const part = list.pick(idx);
          for (const m of packWithdrawals(part, this.context)) sink.all(m, from);
        }
        for (let i = 0; i < ps.length; i++) {
          const s = prev[i] as number;
          if (s >= 0) {
            this.sent.delete(list, i, 0);
            this.dropSent(s);
          }
        }
      } else {
        // Prefixes whose receivers already have exactly this are not sent again; the
        // source peer gets a withdrawal for those it had from another source.
        const fresh: number[] = [];
        const back: number[] = [];
        for (let i = 0; i < ps.length; i++) {
          const s = prev[i] as number;
          if (s >= 0 && this.sAttr[s] === attrId && this.sSrc[s] === src) continue;
          fresh.push(i);
          if (src >= 0 && s >= 0 && this.sSrc[s] !== src) back.push(i);
        }
        if (fresh.length > 0) {
          const a = this.store.get(attrId);
          const send = list.pick(fresh);
          for (const m of packAnnouncements(announcementOf(a, send), this.context)) sink.all(m, src);
        }
        if (back.length > 0) for (const m of packWithdrawals(list.pick(back), this.context)) sink.one(src, m);
        for (let i = 0; i < ps.length; i++) {
          // Each pending prefix holds one reference to its set; it moves to the sent slot.
          const s = prev[i] as number;
          if (s < 0) {
            const n = this.allocSent();
            this.sAttr[n] = attrId;
            this.sSrc[n] = src;
            this.count(src, 1);
            this.sent.set(list, i, 0, n);
          } else if (this.sAttr[s] === attrId && this.sSrc[s] === src) {
            this.store.release(attrId);
          } else {
            this.store.release(this.sAttr[s] as number);
            this.count(this.sSrc[s] as number, -1);
            this.sAttr[s] = attrId;
            this.sSrc[s] = src;
            this.count(src, 1);
          }
        }
      }
      for (let i = 0; i < ps.length; i++) {
        this.pending.delete(list, i, 0);
        this.free.push(ps[i] as number);
      }
    }
    return batch.length;
  }

  private count(src: number, d: number): void {
    if (src < 0) return;
    const n = (this.bySource.get(src) ?? 0) + d;
    if (n === 0) this.bySource.delete(src);
    else this.bySource.set(src, n);
  }

  private allocSent(): number {
    const s = this.sFree.pop();
    if (s !== undefined) return s;
    if (this.sTop === this.sAttr.length) {
      const a = new Int32Array(this.sAttr.length * 2);
      a.set(this.sAttr);
      this.sAttr = a;
      const b = new Int32Array(this.sSrc.length * 2);
      b.set(this.sSrc);
      this.sSrc = b;
    }
    return this.sTop++;
  }

  private dropSent(s: number): void {
    this.store.release(this.sAttr[s] as number);
    this.count(this.sSrc[s] as number, -1);
    this.sFree.push(s);
  }

  private listOf(ps: number[]): PrefixList {
    const w = this.w;
    const addrs = new Uint32Array(ps.length * w);
    const lens = new Uint8Array(ps.length);
    ps.forEach((p, i) => {
      for (let k = 0; k < w; k++) addrs[i * w + k] = this.pAddr[p * w + k] as number;
      lens[i] = this.pLen[p] as number;
    });
    return new PrefixList(this.afi, addrs, lens);
  }

  /** Forgets everything (session down): the references it held are released. */
  clear(): void {
    this.pending.forEach((p) => {
      const a = this.pAttr[p] as number;
      if (a >= 0) this.store.release(a);
    });
    this.sent.forEach((s) => this.store.release(this.sAttr[s] as number));
    this.bySource.clear();
  }
}

/** Bucket keys are (set + 1) * SOURCE_SPAN + (source + 1): peer indices stay below it. */
const SOURCE_SPAN = 2 ** 21;

/** The packer's view of an exported set: MP next hop apart, IPv4 over NEXT_HOP. */
function announcementOf(a: PathAttributes, prefixes: PrefixList) {
  const m = a.mpReachNlri;
  if (m?.kind !== 'prefixes') return { attributes: a, prefixes };
  const { mpReachNlri: _m, ...rest } = a;
  return m.linkLocalNextHop === undefined
    ? { attributes: rest, prefixes, safi: m.safi, mpNextHop: m.nextHop }
    : {
        attributes: rest,
        prefixes,
        safi: m.safi,
        mpNextHop: m.nextHop,
        mpLinkLocalNextHop: m.linkLocalNextHop,
      };
}
