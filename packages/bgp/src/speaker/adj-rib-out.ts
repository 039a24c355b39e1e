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
  /** Prefix -> slot. A slot lives while the receivers have the prefix or a change waits. */
  private readonly table: PrefixTableT;
  // Per slot: the prefix; what the receivers have (set, source; set -1: nothing); what
  // waits to be sent (set -1: a withdrawal) when `queued`.
  private addr: Uint32Array;
  private len = new Uint8Array(256);
  private sAttr = new Int32Array(256);
  private sSrc = new Int32Array(256);
  private pAttr = new Int32Array(256);
  private pSrc = new Int32Array(256);
  private queued = new Uint8Array(256);
  private free: number[] = [];
  private top = 0;
  private order = new Int32Array(256); // queued slots in arrival order
  private head = 0;
  private tail = 0;
  private queuedCount = 0;
  private sentCount = 0;
  /** Sent routes per source peer index, for a member's advertised count. */
  private bySource = new Int32Array(64);

  constructor(
    readonly afi: PrefixAfi,
    private readonly store: AttrStore,
    readonly context: CodecContext,
  ) {
    this.w = afi === 1 ? 1 : 4;
    this.table = new PrefixTable(afi, 256);
    this.addr = new Uint32Array(256 * this.w);
  }

  /** Prefixes the receivers have (a group member: see advertisedTo). */
  get advertised(): number {
    return this.sentCount;
  }

  /** Prefixes peer `index` has from this table: all but its own routes. */
  advertisedTo(index: number): number {
    return this.sentCount - (index < this.bySource.length ? (this.bySource[index] as number) : 0);
  }

  /** Changes waiting to be sent. */
  get waiting(): number {
    return this.queuedCount;
  }

  /**
   * Queues prefix i of `list` to be sent with `attrId` (an interned, exported set; the
   * caller's reference is taken over) or withdrawn (attrId -1). `source` is the peer index
   * the route was learned from (-1 or the local index when no peer's).
   */
  enqueue(list: PrefixList, i: number, attrId: number, source: number = NO_SOURCE): void {
    const src = attrId === WITHDRAW ? NO_SOURCE : source;
    let s: number;
    if (attrId === WITHDRAW) {
      s = this.table.get(list, i, 0);
      if (s < 0) return; // the receivers do not have it and nothing waits
    } else {
      const fresh = this.nextSlot();
      s = this.table.setIfAbsent(list, i, 0, fresh);
      if (s < 0) s = this.takeSlot(list, i);
    }
    if (this.queued[s] === 1) {
      // Coalesce: the later change replaces the unsent one.
      const old = this.pAttr[s] as number;
      if (old >= 0) this.store.release(old);
      this.pAttr[s] = attrId;
      this.pSrc[s] = src;
      return;
    }
    // Nothing to do when it only repeats what the receivers have.
    if (this.sAttr[s] === attrId && (attrId === WITHDRAW || this.sSrc[s] === src)) {
      if (attrId >= 0) this.store.release(attrId);
      return;
    }
    this.pAttr[s] = attrId;
    this.pSrc[s] = src;
    this.queued[s] = 1;
    this.queuedCount++;
    this.push(s);
  }

  /** The slot takeSlot will return. */
  private nextSlot(): number {
    return this.free.length > 0 ? (this.free[this.free.length - 1] as number) : this.top;
  }

  private takeSlot(list: PrefixList, i: number): number {
    let s = this.free.pop();
    if (s === undefined) {
      if (this.top === this.len.length) this.grow();
      s = this.top++;
    }
    for (let k = 0; k < this.w; k++) this.addr[s * this.w + k] = list.addrs[i * this.w + k] as number;
    this.len[s] = list.lens[i] as number;
    this.sAttr[s] = -1;
    this.sSrc[s] = NO_SOURCE;
    this.queued[s] = 0;
    return s;
  }

  private grow(): void {
    const n = this.len.length * 2;
    const i32 = (a: Int32Array) => {
      const b = new Int32Array(n);
      b.set(a);
      return b;
    };
    this.sAttr = i32(this.sAttr);
    this.sSrc = i32(this.sSrc);
    this.pAttr = i32(this.pAttr);
    this.pSrc = i32(this.pSrc);
    const q = new Uint8Array(n);
    q.set(this.queued);
    this.queued = q;
    const l = new Uint8Array(n);
    l.set(this.len);
    this.len = l;
    const ad = new Uint32Array(n * this.w);
    ad.set(this.addr);
    this.addr = ad;
  }

  private push(s: number): void {
    if (this.tail === this.order.length) {
      // Compact, or grow, the arrival-order ring.
      const live = this.tail - this.head;
      const next = live * 2 > this.order.length ? new Int32Array(this.order.length * 2) : this.order;
      if (next === this.order) next.copyWithin(0, this.head, this.tail);
      else next.set(this.order.subarray(this.head, this.tail));
      this.order = next;
      this.head = 0;
      this.tail = live;
    }
    this.order[this.tail++] = s;
  }

  /**
   * Builds UPDATEs for up to `max` queued prefixes, grouped by attribute set and source,
   * and hands them to `sink`; returns how many prefixes were taken.
   */
  build(max: number, sink: OutSink): number {
    const batch: number[] = [];
    while (this.head < this.tail && batch.length < max) batch.push(this.order[this.head++] as number);
    if (batch.length === 0) return 0;
    // Buckets by (set, source); withdrawals are one bucket (set -1, source -1).
    const buckets = new Map<number, number[]>();
    for (const s of batch) {
      const key = ((this.pAttr[s] as number) + 1) * SOURCE_SPAN + ((this.pSrc[s] as number) + 1);
      const b = buckets.get(key);
      if (b === undefined) buckets.set(key, [s]);
      else b.push(s);
    }
    for (const ss of buckets.values()) {
      const first = ss[0] as number;
      if (this.pAttr[first] === WITHDRAW) this.sendWithdrawals(ss, sink);
      else this.sendAnnouncements(ss, sink);
      for (const s of ss) this.queued[s] = 0;
      this.queuedCount -= ss.length;
    }
    return batch.length;
  }

  private sendWithdrawals(ss: readonly number[], sink: OutSink): void {
    // By the source of what is withdrawn: that member never had it. Prefixes the receivers
    // never had (announced and withdrawn before a send) need no message.
    const list = this.listOf(ss);
    const from0 = this.sSrc[ss[0] as number] as number;
    if (ss.every((s) => (this.sAttr[s] as number) >= 0 && this.sSrc[s] === from0)) {
      // The common case: one source, all sent.
      for (const m of packWithdrawals(list, this.context)) sink.all(m, from0);
    } else {
      const bySource = new Map<number, number[]>();
      for (const s of ss) {
        if ((this.sAttr[s] as number) < 0) continue;
        const from = this.sSrc[s] as number;
        const b = bySource.get(from);
        if (b === undefined) bySource.set(from, [s]);
        else b.push(s);
      }
      for (const [from, part] of bySource) {
        for (const m of packWithdrawals(this.listOf(part), this.context)) sink.all(m, from);
      }
    }
    // The slots are done with: the receivers have nothing and nothing waits.
    for (let i = 0; i < ss.length; i++) {
      const s = ss[i] as number;
      if ((this.sAttr[s] as number) >= 0) this.unsend(s);
      this.table.delete(list, i, 0);
      this.free.push(s);
    }
  }

  private sendAnnouncements(ss: readonly number[], sink: OutSink): void {
    const attrId = this.pAttr[ss[0] as number] as number;
    const src = this.pSrc[ss[0] as number] as number;
    // Prefixes whose receivers already have exactly this are not sent again; the source
    // peer gets a withdrawal for those it had from another source.
    const fresh: number[] = [];
    const back: number[] = [];
    for (const s of ss) {
      const had = this.sAttr[s] as number;
      if (had === attrId && this.sSrc[s] === src) continue;
      fresh.push(s);
      if (src >= 0 && had >= 0 && this.sSrc[s] !== src) back.push(s);
    }
    if (fresh.length > 0) {
      const a = this.store.get(attrId);
      for (const m of packAnnouncements(announcementOf(a, this.listOf(fresh)), this.context))
        sink.all(m, src);
    }
    if (back.length > 0) for (const m of packWithdrawals(this.listOf(back), this.context)) sink.one(src, m);
    for (const s of ss) {
      // Each queued prefix holds one reference to its set; it moves to what was sent.
      if (this.sAttr[s] === attrId && this.sSrc[s] === src) {
        this.store.release(attrId);
        continue;
      }
      if ((this.sAttr[s] as number) >= 0) this.unsend(s);
      this.sAttr[s] = attrId;
      this.sSrc[s] = src;
      this.sentCount++;
      if (src >= 0) {
        if (src >= this.bySource.length) {
          const b = new Int32Array(Math.max(src + 1, this.bySource.length * 2));
          b.set(this.bySource);
          this.bySource = b;
        }
        this.bySource[src] = (this.bySource[src] as number) + 1;
      }
    }
  }

  /** The receivers no longer have what slot s held. */
  private unsend(s: number): void {
    this.store.release(this.sAttr[s] as number);
    const from = this.sSrc[s] as number;
    if (from >= 0) this.bySource[from] = (this.bySource[from] as number) - 1;
    this.sAttr[s] = -1;
    this.sSrc[s] = NO_SOURCE;
    this.sentCount--;
  }

  private listOf(ss: readonly number[]): PrefixList {
    const w = this.w;
    const addrs = new Uint32Array(ss.length * w);
    const lens = new Uint8Array(ss.length);
    for (let i = 0; i < ss.length; i++) {
      const s = ss[i] as number;
      for (let k = 0; k < w; k++) addrs[i * w + k] = this.addr[s * w + k] as number;
      lens[i] = this.len[s] as number;
    }
    return new PrefixList(this.afi, addrs, lens);
  }

  /** Forgets everything (session down): the references it held are released. */
  clear(): void {
    for (let s = 0; s < this.top; s++) {
      if ((this.sAttr[s] as number) >= 0) this.store.release(this.sAttr[s] as number);
      if (this.queued[s] === 1 && (this.pAttr[s] as number) >= 0) this.store.release(this.pAttr[s] as number);
      this.sAttr[s] = -1;
      this.queued[s] = 0;
    }
    this.sentCount = 0;
    this.queuedCount = 0;
    this.bySource.fill(0);
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
