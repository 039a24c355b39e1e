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

import type { AttrStore } from '../rib/index.js';
import type { CodecContext, PathAttributes, PrefixAfi } from '../wire/index.js';
import { PrefixList, hasAddPath, packAnnouncements, packWithdrawals } from '../wire/index.js';

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

/**
 * The Loc-RIB of the table's family, whose entries index it: a prefix's entry is kept
 * (hold) while this table has something of it, and gives the prefix to encode.
 */
export interface EntryOwner {
  hold(e: number): void;
  unhold(e: number): void;
  prefixInto(e: number, addrs: Uint32Array, lens: Uint8Array, k: number): void;
}

export class AdjRibOut {
  private readonly w: number;
  private readonly addPath: boolean;
  // Per Loc-RIB entry: what the receivers have (set, source; set -1: nothing), and what
  // waits to be sent (set -1: a withdrawal) when `queued`. No hashing: the entry index is
  // the key. An entry with either is "live" and held in the Loc-RIB.
  private cap = 0;
  private sAttr = new Int32Array(0);
  private sSrc = new Int32Array(0);
  private pAttr = new Int32Array(0);
  private pSrc = new Int32Array(0);
  private queued = new Uint8Array(0);
  private order = new Int32Array(256); // queued entries in arrival order
  private head = 0;
  private tail = 0;
  private sentCount = 0;
  /** Sent routes per source peer index, for a member's advertised count. */
  private bySource = new Int32Array(64);

  constructor(
    readonly afi: PrefixAfi,
    private readonly rib: EntryOwner,
    private readonly store: AttrStore,
    readonly context: CodecContext,
  ) {
    this.w = afi === 1 ? 1 : 4;
    this.addPath = hasAddPath(context, afi, 1);
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
    return this.tail - this.head; // each queued entry is in the ring once
  }

  /**
   * Queues the prefix of Loc-RIB entry e to be sent with `attrId` (an interned, exported
   * set; the caller's reference is taken over) or withdrawn (attrId -1). `source` is the
   * peer index the route was learned from (-1 or the local index when no peer's).
   */
  enqueue(e: number, attrId: number, source: number = NO_SOURCE): void {
    if (e >= this.cap) {
      if (attrId === WITHDRAW) return; // never had anything of it
      this.grow(e + 1);
    }
    if (this.queued[e] === 1) {
      // Coalesce: the later change replaces the unsent one.
      const old = this.pAttr[e] as number;
      if (old >= 0) this.store.release(old);
      this.pAttr[e] = attrId;
      this.pSrc[e] = attrId === WITHDRAW ? NO_SOURCE : source;
      return;
    }
    const had = this.sAttr[e] as number;
    // Nothing to do when it only repeats what the receivers have.
    if (attrId === WITHDRAW ? had < 0 : had === attrId && this.sSrc[e] === source) {
      if (attrId >= 0) this.store.release(attrId);
      return;
    }
    if (had < 0) this.rib.hold(e); // live from now
    this.pAttr[e] = attrId;
    this.pSrc[e] = attrId === WITHDRAW ? NO_SOURCE : source;
    this.queued[e] = 1;
    this.push(e);
  }

  private grow(min: number): void {
    let n = Math.max(1024, this.cap);
    while (n < min) n *= 2;
    const i32 = (a: Int32Array, fill: number) => {
      const b = new Int32Array(n);
      b.set(a);
      if (fill !== 0) b.fill(fill, a.length);
      return b;
    };
    this.sAttr = i32(this.sAttr, -1);
    this.sSrc = i32(this.sSrc, NO_SOURCE);
    this.pAttr = i32(this.pAttr, 0);
    this.pSrc = i32(this.pSrc, 0);
    const q = new Uint8Array(n);
    q.set(this.queued);
    this.queued = q;
    this.cap = n;
  }

  private push(e: number): void {
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
    this.order[this.tail++] = e;
  }

  /**
   * Builds UPDATEs for up to `max` queued prefixes, grouped by attribute set and source,
   * and hands them to `sink`; returns how many prefixes were taken.
   */
  build(max: number, sink: OutSink): number {
    const batch: number[] = [];
    while (this.head < this.tail && batch.length < max) batch.push(this.order[this.head++] as number);
    if (batch.length === 0) return 0;
    // Buckets by set; withdrawals are one bucket (set -1).
    const buckets = new Map<number, number[]>();
    for (const e of batch) {
      this.queued[e] = 0;
      const a = this.pAttr[e] as number;
      const b = buckets.get(a);
      if (b === undefined) buckets.set(a, [e]);
      else b.push(e);
    }
    for (const [attrId, es] of buckets) {
      if (attrId === WITHDRAW) this.sendWithdrawals(es, sink);
      else
        for (const [src, part] of partition(es, this.pSrc)) this.sendAnnouncements(attrId, src, part, sink);
    }
    return batch.length;
  }

  private sendWithdrawals(es: readonly number[], sink: OutSink): void {
    // By the source of what is withdrawn: that member never had it. Prefixes the receivers
    // never had (announced and withdrawn before a send) need no message.
    const sent = es.filter((e) => (this.sAttr[e] as number) >= 0);
    for (const [from, part] of partition(sent, this.sSrc)) {
      for (const m of packWithdrawals(this.listOf(part), this.context)) sink.all(m, from);
    }
    // Done with: the receivers have nothing of these and nothing waits; the Loc-RIB may
    // let the entries go.
    for (const e of sent) this.unsend(e);
    for (const e of es) this.rib.unhold(e);
  }

  private sendAnnouncements(attrId: number, src: number, es: readonly number[], sink: OutSink): void {
    // Prefixes whose receivers already have exactly this are not sent again; the source
    // peer gets a withdrawal for those it had from another source.
    const fresh: number[] = [];
    const back: number[] = [];
    for (const e of es) {
      const had = this.sAttr[e] as number;
      if (had === attrId && this.sSrc[e] === src) continue;
      fresh.push(e);
      if (src >= 0 && had >= 0 && this.sSrc[e] !== src) back.push(e);
    }
    if (fresh.length > 0) {
      const a = this.store.get(attrId);
      for (const m of packAnnouncements(announcementOf(a, this.listOf(fresh)), this.context))
        sink.all(m, src);
    }
    if (back.length > 0) for (const m of packWithdrawals(this.listOf(back), this.context)) sink.one(src, m);
    for (const e of es) {
      // Each queued prefix holds one reference to its set; it moves to what was sent.
      if (this.sAttr[e] === attrId && this.sSrc[e] === src) {
        this.store.release(attrId);
        continue;
      }
      if ((this.sAttr[e] as number) >= 0) this.unsend(e);
      this.sAttr[e] = attrId;
      this.sSrc[e] = src;
      this.sentCount++;
      this.countSource(src, 1);
    }
  }

  /** Keeps the count of sent routes per source peer (advertisedTo). */
  private countSource(src: number, d: number): void {
    if (src < 0) return;
    if (src >= this.bySource.length) {
      const b = new Int32Array(Math.max(src + 1, this.bySource.length * 2));
      b.set(this.bySource);
      this.bySource = b;
    }
    this.bySource[src] = (this.bySource[src] as number) + d;
  }

  /** The receivers no longer have what entry e held. */
  private unsend(e: number): void {
    this.store.release(this.sAttr[e] as number);
    this.countSource(this.sSrc[e] as number, -1);
    this.sAttr[e] = -1;
    this.sSrc[e] = NO_SOURCE;
    this.sentCount--;
  }

  private listOf(es: readonly number[]): PrefixList {
    const addrs = new Uint32Array(es.length * this.w);
    const lens = new Uint8Array(es.length);
    for (let k = 0; k < es.length; k++) this.rib.prefixInto(es[k] as number, addrs, lens, k);
    // RFC 7911 §3: on a session where we send ADD-PATH, every prefix carries a Path
    // Identifier. We send one path per prefix (the best), always as identifier 1, so an
    // announcement replaces the previous one and a withdrawal names it.
    const pathIds = this.addPath ? new Uint32Array(es.length).fill(1) : null;
    return new PrefixList(this.afi, addrs, lens, pathIds);
  }

  /**
   * Starts this empty table from what receiver `member` has of `other` (a group's table: all
   * but the member's own routes; `member` -1: everything). A peer moving to another table
   * (its export policy changed) is then sent only the differences, never a withdraw-and-
   * announce of routes it keeps.
   */
  seedFrom(other: AdjRibOut, member: number): void {
    for (let e = 0; e < other.cap; e++) {
      const a = other.sAttr[e] as number;
      const src = other.sSrc[e] as number;
      if (a < 0 || (member >= 0 && src === member)) continue;
      if (e >= this.cap) this.grow(e + 1);
      this.store.retain(a);
      this.rib.hold(e);
      this.sAttr[e] = a;
      this.sSrc[e] = src;
      this.sentCount++;
      this.countSource(src, 1);
    }
  }

  /** Forgets everything (session down): the references and entries it held are released. */
  clear(): void {
    for (let e = 0; e < this.cap; e++) {
      const sent = (this.sAttr[e] as number) >= 0;
      const queued = this.queued[e] === 1;
      if (sent) this.store.release(this.sAttr[e] as number);
      if (queued && (this.pAttr[e] as number) >= 0) this.store.release(this.pAttr[e] as number);
      this.sAttr[e] = -1;
      this.queued[e] = 0;
      if (sent || queued) this.rib.unhold(e);
    }
    this.head = this.tail = 0;
    this.sentCount = 0;
    this.bySource.fill(0);
  }
}

/** Entries by the source peer each has in `src`: one part, without a map, when all share it. */
function partition(es: number[], src: Int32Array): Iterable<[number, number[]]> {
  if (es.length === 0) return [];
  const first = src[es[0] as number] as number;
  if (es.every((e) => src[e] === first)) return [[first, es]];
  const parts = new Map<number, number[]>();
  for (const e of es) {
    const s = src[e] as number;
    const p = parts.get(s);
    if (p === undefined) parts.set(s, [e]);
    else p.push(e);
  }
  return parts;
}

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
