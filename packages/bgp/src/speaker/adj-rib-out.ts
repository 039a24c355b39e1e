// Adj-RIB-Out of one peer and one family: what is waiting to be sent and what the peer has.
//
// Changes are coalesced per prefix (a later change replaces an unsent one, as BIRD's TX
// buckets do), and UPDATEs are built only when the socket takes more bytes, in bounded
// batches grouped by attribute set: memory is bounded by the pending set, never by a queue
// of encoded messages (GoBGP #3330).

import type { AttrStore, PrefixTable as PrefixTableT } from '../rib/index.js';
import { PrefixTable } from '../rib/index.js';
import type { CodecContext, PathAttributes, PrefixAfi } from '../wire/index.js';
import { PrefixList, packAnnouncements, packWithdrawals } from '../wire/index.js';

const WITHDRAW = -1;

export class AdjRibOut {
  private readonly w: number;
  private readonly pending: PrefixTableT;
  private pAttr = new Int32Array(256);
  private pAddr: Uint32Array;
  private pLen = new Uint8Array(256);
  private order = new Int32Array(256); // pending indices in arrival order
  private head = 0;
  private tail = 0;
  private free: number[] = [];
  private top = 0;
  private readonly sent: PrefixTableT;

  constructor(
    readonly afi: PrefixAfi,
    private readonly store: AttrStore,
    private readonly ctx: CodecContext,
  ) {
    this.w = afi === 1 ? 1 : 4;
    this.pending = new PrefixTable(afi, 256);
    this.sent = new PrefixTable(afi, 256);
    this.pAddr = new Uint32Array(256 * this.w);
  }

  /** Prefixes the peer has from us. */
  get advertised(): number {
    return this.sent.size;
  }

  /** Changes waiting to be sent. */
  get waiting(): number {
    return this.pending.size;
  }

  /**
   * Queues prefix i of `list` to be sent with `attrId` (an interned, exported set; the
   * caller's reference is taken over) or withdrawn (attrId -1).
   */
  enqueue(list: PrefixList, i: number, attrId: number): void {
    const slot = this.pending.get(list, i, 0);
    if (slot >= 0) {
      const old = this.pAttr[slot] as number;
      if (old >= 0) this.store.release(old);
      this.pAttr[slot] = attrId;
      return;
    }
    // Nothing to do when it only repeats what the peer has.
    const has = this.sent.get(list, i, 0);
    if ((attrId === WITHDRAW && has < 0) || (attrId >= 0 && has === attrId)) {
      if (attrId >= 0) this.store.release(attrId);
      return;
    }
    const p = this.alloc();
    for (let k = 0; k < this.w; k++) this.pAddr[p * this.w + k] = list.addrs[i * this.w + k] as number;
    this.pLen[p] = list.lens[i] as number;
    this.pAttr[p] = attrId;
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
   * Builds UPDATEs for up to `max` pending prefixes, grouped by attribute set, and hands
   * each to `send`; returns how many prefixes went out.
   */
  build(max: number, send: (bytes: Uint8Array) => void): number {
    const batch: number[] = [];
    while (this.head < this.tail && batch.length < max) batch.push(this.order[this.head++] as number);
    if (batch.length === 0) return 0;
    const groups = new Map<number, number[]>();
    for (const p of batch) {
      const a = this.pAttr[p] as number;
      const g = groups.get(a);
      if (g === undefined) groups.set(a, [p]);
      else g.push(p);
    }
    for (const [attrId, ps] of groups) {
      const list = this.listOf(ps);
      if (attrId === WITHDRAW) {
        for (const m of packWithdrawals(list, this.ctx)) send(m);
      } else {
        const a = this.store.get(attrId);
        for (const m of packAnnouncements(announcementOf(a, list), this.ctx)) send(m);
      }
      // Record what the peer now has, and free the pending slots.
      for (let i = 0; i < ps.length; i++) {
        const p = ps[i] as number;
        const prev = attrId === WITHDRAW ? this.sent.delete(list, i, 0) : this.sent.set(list, i, 0, attrId);
        if (prev >= 0) this.store.release(prev);
        this.pending.delete(list, i, 0);
        this.free.push(p);
      }
    }
    return batch.length;
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

  /**
   * Queues everything the peer has again (a route refresh, RFC 2918): each advertised
   * prefix goes back to pending with its set, and is sent again.
   */
  resendAll(): void {
    const again: { list: PrefixList; attr: number }[] = [];
    this.sent.forEachKey((list, _pathId, attr) => {
      again.push({ list: new PrefixList(this.afi, list.addrs.slice(), list.lens.slice()), attr });
    });
    for (const { list, attr } of again) {
      this.sent.delete(list, 0, 0);
      // The reference the sent table held moves to the pending entry.
      this.enqueue(list, 0, attr);
    }
  }

  /** Forgets everything (session down): the references it held are released. */
  clear(): void {
    this.pending.forEach((p) => {
      const a = this.pAttr[p] as number;
      if (a >= 0) this.store.release(a);
    });
    this.sent.forEach((a) => this.store.release(a));
  }
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
