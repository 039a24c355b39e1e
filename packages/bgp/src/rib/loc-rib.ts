// Adj-RIB-In per peer and the Loc-RIB of one address family, over typed arrays.
//
// Routes live in a pool of parallel typed arrays (peer, attribute set, path id, entry, next
// in the entry's list, neighbours in the peer's list); each prefix has an entry whose list
// holds every candidate route. A peer's Adj-RIB-In is its routes: found through the
// prefix's entry (one hash probe per prefix, as in BIRD's table), listed through the
// peer's own doubly-linked list (for End-of-RIB sweeps and session ends).
// A change re-runs the decision for that prefix only, and emits an event when the best
// route or its ECMP group changed. A prefix with one route (the common case in a cluster)
// never builds a candidate object.

import type { PathAttributes, PrefixAfi, PrefixList } from '../wire/index.js';
import { PrefixList as PrefixListCtor } from '../wire/index.js';
import type { AttrStore } from './attr-store.js';
import type { Candidate, DecisionOptions, RouteSource, StepName } from './decision.js';
import { decide } from './decision.js';
import { PrefixTable } from './prefix-table.js';

export interface RibRoute {
  readonly peer: number;
  readonly pathId: number;
  /** The interned attribute set (AttrStore id). */
  readonly attrId: number;
  readonly attributes: PathAttributes;
}

/**
 * A best-path change, for felix-lite and for export. `prefixes` holds the one prefix
 * (a list of one, owned by the event); `prefix` is its text, made when read.
 */
export type BestPathEvent =
  | {
      readonly type: 'add' | 'replace';
      readonly afi: PrefixAfi;
      readonly prefix: string;
      readonly prefixes: PrefixList;
      readonly best: RibRoute;
      /** Every route of the ECMP group (best first): their next hops share the traffic. */
      readonly multipath: readonly RibRoute[];
      readonly decidedBy: StepName;
    }
  | {
      readonly type: 'withdraw';
      readonly afi: PrefixAfi;
      readonly prefix: string;
      readonly prefixes: PrefixList;
    };

export interface LocRibOptions extends DecisionOptions {
  /** Each best-path change as an event (objects made per change). */
  readonly onChange?: (e: BestPathEvent) => void;
  /**
   * The fast path: the prefix as a reused one-prefix view (copy what you keep), the best
   * route's peer and attribute set, or -1, -1 when the prefix is gone, and the prefix's
   * entry (a dense index, for tables kept beside the Loc-RIB: see hold). No object per change.
   */
  readonly onBest?: (prefix: PrefixList, peer: number, attrId: number, entry: number) => void;
}

/**
 * A stack of free indices in a typed array: off the JS heap (a million freed routes were
 * 8+ MB of heap as a number[], and GC work).
 */
class FreeList {
  private a = new Int32Array(1024);
  length = 0;

  push(i: number): void {
    if (this.length === this.a.length) {
      const b = new Int32Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.length++] = i;
  }

  /** The index pop() would return, or -1. */
  peek(): number {
    return this.length > 0 ? (this.a[this.length - 1] as number) : -1;
  }

  /** The last index pushed, or -1 when empty. */
  pop(): number {
    return this.length > 0 ? (this.a[--this.length] as number) : -1;
  }
}

class Pool {
  cap = 0;
  peer = new Int32Array(0);
  attr = new Int32Array(0);
  pathId = new Uint32Array(0);
  entry = new Int32Array(0);
  next = new Int32Array(0);
  /** Neighbours in the peer's list. */
  pNext = new Int32Array(0);
  pPrev = new Int32Array(0);
  /** RFC 4724 / RFC 7313: kept from before a restart or refresh, not yet re-announced. */
  stale = new Uint8Array(0);
  private free = new FreeList();
  private top = 0;

  /** The index alloc() will return next. */
  peek(): number {
    const f = this.free.peek();
    return f >= 0 ? f : this.top;
  }

  alloc(): number {
    const r = this.free.pop();
    if (r >= 0) return r;
    if (this.top === this.cap) this.grow();
    return this.top++;
  }

  release(r: number): void {
    this.free.push(r);
  }

  get live(): number {
    return this.top - this.free.length;
  }

  private grow(): void {
    const cap = Math.max(1024, this.cap * 2);
    const g = <T extends Int32Array | Uint32Array>(a: T, make: (n: number) => T): T => {
      const b = make(cap);
      b.set(a);
      return b;
    };
    this.peer = g(this.peer, (n) => new Int32Array(n));
    this.attr = g(this.attr, (n) => new Int32Array(n));
    this.pathId = g(this.pathId, (n) => new Uint32Array(n));
    this.entry = g(this.entry, (n) => new Int32Array(n));
    this.next = g(this.next, (n) => new Int32Array(n));
    this.pNext = g(this.pNext, (n) => new Int32Array(n));
    this.pPrev = g(this.pPrev, (n) => new Int32Array(n));
    const st = new Uint8Array(cap);
    st.set(this.stale);
    this.stale = st;
    this.cap = cap;
  }
}

export class LocRib {
  private readonly w: number;
  private readonly table: PrefixTable;
  private readonly routes = new Pool();
  // Entries: one per prefix with at least one route.
  private eCap = 0;
  private eHead = new Int32Array(0);
  private eBest = new Int32Array(0);
  private eBestAttr = new Int32Array(0);
  private eGroup = new Int32Array(0); // a digest of the ECMP group, to see it change
  private eAddr = new Uint32Array(0);
  private eLen = new Uint8Array(0);
  /** Adj-RIB-Outs that still have something of the entry's prefix (hold/unhold). */
  private eHolds = new Int32Array(0);
  /** The entry's slot in the prefix table when last seen (PrefixTable.deleteSlot). */
  private eSlot = new Int32Array(0);
  private eFree = new FreeList();
  private eTop = 0;
  /** Per peer: the head of its route list and how many routes it has. */
  private readonly adjIn = new Map<number, { head: number; count: number }>();
  private readonly sources = new Map<number, RouteSource>();

  constructor(
    readonly afi: PrefixAfi,
    private readonly attrs: AttrStore,
    private readonly options: LocRibOptions = {},
  ) {
    this.w = afi === 1 ? 1 : 4;
    this.table = new PrefixTable(afi, 1024);
  }

  /** Prefixes with at least one route (a prefix leaves the table with its last route). */
  get size(): number {
    return this.table.size;
  }

  /**
   * An Adj-RIB-Out indexed by entry keeps entry e, and so its prefix and index, while it
   * has something of it (sent, or waiting to be sent): a prefix gone from the Loc-RIB
   * keeps its entry until its withdrawal has gone out everywhere.
   */
  hold(e: number): void {
    this.eHolds[e] = (this.eHolds[e] as number) + 1;
  }

  unhold(e: number): void {
    const n = (this.eHolds[e] as number) - 1;
    this.eHolds[e] = n;
    if (n === 0 && (this.eHead[e] as number) < 0) this.eFree.push(e);
  }

  /** Writes entry e's prefix at position k of these columns. */
  prefixInto(e: number, addrs: Uint32Array, lens: Uint8Array, k: number): void {
    const w = this.w;
    for (let j = 0; j < w; j++) addrs[k * w + j] = this.eAddr[e * w + j] as number;
    lens[k] = this.eLen[e] as number;
  }

  /** Routes held, all peers. */
  get routeCount(): number {
    return this.routes.live;
  }

  addPeer(peer: number, source: RouteSource): void {
    this.sources.set(peer, source);
    if (!this.adjIn.has(peer)) this.adjIn.set(peer, { head: -1, count: 0 });
  }

  /** Routes in this peer's Adj-RIB-In. */
  received(peer: number): number {
    return this.adjIn.get(peer)?.count ?? 0;
  }

  /** The peer's route for prefix entry e (and path id), or -1. */
  private routeOf(e: number, peer: number, pathId: number): number {
    const rt = this.routes;
    let r = this.eHead[e] as number;
    while (r >= 0 && (rt.peer[r] !== peer || rt.pathId[r] !== pathId)) r = rt.next[r] as number;
    return r;
  }

  /** The peer's routes (a copy: the caller may remove them). */
  private routesFrom(peer: number): number[] {
    const out: number[] = [];
    for (let r = this.adjIn.get(peer)?.head ?? -1; r >= 0; r = this.routes.pNext[r] as number) out.push(r);
    return out;
  }

  /** Announces prefixes from a peer with one (interned, post-policy) attribute set. */
  announce(peer: number, prefixes: PrefixList, attrId: number): void {
    const adj = this.adjIn.get(peer);
    if (adj === undefined) throw new RangeError(`peer ${peer} is not known to the RIB`);
    const rt = this.routes;
    for (let i = 0; i < prefixes.length; i++) {
      const pathId = (prefixes.pathIds?.[i] ?? 0) >>> 0;
      // One probe: the entry's index goes in unless the prefix is there.
      let e = this.table.setIfAbsent(prefixes, i, this.peekEntry());
      if (e < 0) e = this.newEntry(prefixes, i);
      this.eSlot[e] = this.table.lastSlot;
      const existing = this.routeOf(e, peer, pathId);
      if (existing >= 0) {
        rt.stale[existing] = 0;
        const old = rt.attr[existing] as number;
        if (old === attrId) continue;
        this.attrs.retain(attrId);
        rt.attr[existing] = attrId;
        this.attrs.release(old);
        this.redecide(e);
        continue;
      }
      const r = rt.alloc();
      rt.peer[r] = peer;
      rt.attr[r] = attrId;
      rt.pathId[r] = pathId;
      rt.entry[r] = e;
      rt.stale[r] = 0;
      rt.next[r] = this.eHead[e] as number;
      this.eHead[e] = r;
      rt.pPrev[r] = -1;
      rt.pNext[r] = adj.head;
      if (adj.head >= 0) rt.pPrev[adj.head] = r;
      adj.head = r;
      adj.count++;
      this.attrs.retain(attrId);
      this.redecide(e);
    }
  }

  /** Withdraws prefixes a peer announced; unknown ones are ignored (RFC 4271 §9.1.2). */
  withdraw(peer: number, prefixes: PrefixList): void {
    if (!this.adjIn.has(peer)) return;
    for (let i = 0; i < prefixes.length; i++) {
      const e = this.table.get(prefixes, i);
      if (e < 0) continue;
      this.eSlot[e] = this.table.lastSlot;
      const r = this.routeOf(e, peer, (prefixes.pathIds?.[i] ?? 0) >>> 0);
      if (r >= 0) this.removeRoute(r);
    }
  }

  /**
   * Marks every route of the peer stale (RFC 4724 §4.2 on a restart, RFC 7313 §4 at BoRR):
   * they stay in use until re-announced or swept. Returns how many were marked.
   */
  markStale(peer: number): number {
    const rs = this.routesFrom(peer);
    for (const r of rs) this.routes.stale[r] = 1;
    return rs.length;
  }

  /** Removes the peer's routes still stale (End-of-RIB, EoRR, or the restart timer). */
  sweepStale(peer: number): number {
    const gone = this.routesFrom(peer).filter((r) => this.routes.stale[r] === 1);
    for (const r of gone) this.removeRoute(r);
    return gone.length;
  }

  /** Every route of a peer goes (session down without graceful restart). */
  dropPeer(peer: number): void {
    for (const r of this.routesFrom(peer)) this.removeRoute(r);
  }

  /** The peer is gone for good (removed, or a dynamic peer's end): its routes and its slot. */
  removePeer(peer: number): void {
    this.dropPeer(peer);
    this.adjIn.delete(peer);
    this.sources.delete(peer);
  }

  /** Calls fn with each prefix's best route; `list` is a reused one-prefix view (copy what you keep). */
  forEachBest(fn: (list: PrefixList, i: number, best: RibRoute, entry: number) => void): void {
    const addrs = new Uint32Array(this.w);
    const lens = new Uint8Array(1);
    const view = new PrefixListCtor(this.afi, addrs, lens);
    for (let e = 0; e < this.eTop; e++) {
      const b = this.eBest[e] as number;
      if (b < 0) continue;
      for (let k = 0; k < this.w; k++) addrs[k] = this.eAddr[e * this.w + k] as number;
      lens[0] = this.eLen[e] as number;
      fn(view, 0, this.ribRoute(b), e);
    }
  }

  /** The best route of a prefix (text form), with the deciding step; for `bgp-ts rib`. */
  lookup(
    list: PrefixList,
    i: number,
  ): { best: RibRoute; routes: RibRoute[]; decidedBy: StepName } | undefined {
    const e = this.table.get(list, i);
    if (e < 0) return undefined;
    const routes = this.routesOf(e);
    const d = this.decideEntry(e);
    if (d === undefined) return undefined;
    return {
      best: this.ribRoute(d.best),
      routes: routes.map((r) => this.ribRoute(r)),
      decidedBy: d.decidedBy,
    };
  }

  private ribRoute(r: number): RibRoute {
    const attrId = this.routes.attr[r] as number;
    return {
      peer: this.routes.peer[r] as number,
      pathId: this.routes.pathId[r] as number,
      attrId,
      attributes: this.attrs.get(attrId),
    };
  }

  private routesOf(e: number): number[] {
    const out: number[] = [];
    for (let r = this.eHead[e] as number; r >= 0; r = this.routes.next[r] as number) out.push(r);
    return out;
  }

  private removeRoute(r: number): void {
    const rt = this.routes;
    const e = rt.entry[r] as number;
    // Unlink from the entry's list (short: one route per peer offering the prefix).
    if (this.eHead[e] === r) this.eHead[e] = rt.next[r] as number;
    else {
      let p = this.eHead[e] as number;
      while (rt.next[p] !== r) p = rt.next[p] as number;
      rt.next[p] = rt.next[r] as number;
    }
    // And from the peer's.
    const adj = this.adjIn.get(rt.peer[r] as number)!;
    const prev = rt.pPrev[r] as number;
    const next = rt.pNext[r] as number;
    if (prev >= 0) rt.pNext[prev] = next;
    else adj.head = next;
    if (next >= 0) rt.pPrev[next] = prev;
    adj.count--;
    this.attrs.release(rt.attr[r] as number);
    rt.release(r);
    this.redecide(e);
  }

  /** The index newEntry() will use next. */
  private peekEntry(): number {
    const f = this.eFree.peek();
    return f >= 0 ? f : this.eTop;
  }

  private newEntry(list: PrefixList, i: number): number {
    let e = this.eFree.pop();
    if (e < 0) {
      if (this.eTop === this.eCap) this.growEntries();
      e = this.eTop++;
    }
    for (let k = 0; k < this.w; k++) this.eAddr[e * this.w + k] = list.addrs[i * this.w + k] as number;
    this.eLen[e] = list.lens[i] as number;
    this.eHead[e] = -1;
    this.eBest[e] = -1;
    this.eBestAttr[e] = -1;
    this.eGroup[e] = 0;
    this.eHolds[e] = 0;
    return e;
  }

  private growEntries(): void {
    const cap = Math.max(1024, this.eCap * 2);
    const i32 = (a: Int32Array) => {
      const b = new Int32Array(cap);
      b.set(a);
      return b;
    };
    this.eHead = i32(this.eHead);
    this.eBest = i32(this.eBest);
    this.eBestAttr = i32(this.eBestAttr);
    this.eGroup = i32(this.eGroup);
    this.eHolds = i32(this.eHolds);
    this.eSlot = i32(this.eSlot);
    const addr = new Uint32Array(cap * this.w);
    addr.set(this.eAddr);
    this.eAddr = addr;
    const len = new Uint8Array(cap);
    len.set(this.eLen);
    this.eLen = len;
    this.eCap = cap;
  }

  private decideEntry(e: number): { best: number; group: number[]; decidedBy: StepName } | undefined {
    const head = this.eHead[e] as number;
    if (head < 0) return undefined;
    const rt = this.routes;
    if (rt.next[head] === -1) return { best: head, group: [head], decidedBy: 'onlyCandidate' };
    const cands: (Candidate & { r: number })[] = [];
    for (let r = head; r >= 0; r = rt.next[r] as number) {
      cands.push({
        r,
        source: this.sources.get(rt.peer[r] as number)!,
        attrs: this.attrs.decision(rt.attr[r] as number),
        igpCost: 0,
        pathId: rt.pathId[r] as number,
      });
    }
    const d = decide(cands, this.options);
    return { best: d.best.r, group: d.multipath.map((c) => c.r), decidedBy: d.decidedBy };
  }

  private redecide(e: number): void {
    const rt = this.routes;
    const head = this.eHead[e] as number;
    const onBest = this.options.onBest;
    const onChange = this.options.onChange;
    if (head < 0) {
      // No route left: the prefix goes.
      if ((this.eBest[e] as number) >= 0) {
        if (onBest !== undefined) onBest(this.view(e), -1, -1, e);
        if (onChange !== undefined) {
          const prefixes = this.entryPrefix(e);
          onChange({
            type: 'withdraw',
            afi: this.afi,
            prefixes,
            get prefix() {
              return prefixes.format(0);
            },
          });
        }
      }
      this.eBest[e] = -1;
      // The prefix leaves the table now (its slot is still in cache from the lookup); the
      // entry itself waits for the tables that hold it (unhold) before it is reused. If the
      // prefix comes back meanwhile it gets a new entry, whose announcement queues after
      // this one's withdrawal.
      this.unlinkKey(e);
      this.eHead[e] = -1;
      if (this.eHolds[e] === 0) this.eFree.push(e);
      return;
    }
    // One route (the usual case): no candidates to build, nothing to decide.
    const single = rt.next[head] === -1;
    const d = single ? undefined : this.decideEntry(e)!;
    const best = d === undefined ? head : d.best;
    const bestAttr = rt.attr[best] as number;
    let digest = 0;
    if (d === undefined) digest = (Math.imul(head, 0x9e3779b1) + bestAttr) | 0;
    else for (const r of d.group) digest = (Math.imul(digest ^ r, 0x9e3779b1) + (rt.attr[r] as number)) | 0;
    const was = this.eBest[e] as number;
    const bestChanged = was !== best || this.eBestAttr[e] !== bestAttr;
    if (!bestChanged && this.eGroup[e] === digest) return;
    this.eBest[e] = best;
    this.eBestAttr[e] = bestAttr;
    this.eGroup[e] = digest;
    if (bestChanged && onBest !== undefined) onBest(this.view(e), rt.peer[best] as number, bestAttr, e);
    if (onChange === undefined) return;
    const prefixes = this.entryPrefix(e);
    onChange({
      type: was < 0 ? 'add' : 'replace',
      afi: this.afi,
      prefixes,
      get prefix() {
        return prefixes.format(0);
      },
      best: this.ribRoute(best),
      multipath: d === undefined ? [this.ribRoute(best)] : d.group.map((r) => this.ribRoute(r)),
      decidedBy: d === undefined ? 'onlyCandidate' : d.decidedBy,
    });
  }

  private viewOf: PrefixList | undefined;

  /** A reused one-prefix view of the entry (valid until the next call). */
  private view(e: number): PrefixList {
    this.viewOf ??= new PrefixListCtor(this.afi, new Uint32Array(this.w), new Uint8Array(1));
    const v = this.viewOf;
    for (let k = 0; k < this.w; k++) v.addrs[k] = this.eAddr[e * this.w + k] as number;
    v.lens[0] = this.eLen[e] as number;
    return v;
  }

  /** The entry's prefix as a list of one, owned by the caller. */
  private entryPrefix(e: number): PrefixList {
    const o = e * this.w;
    return new PrefixListCtor(this.afi, this.eAddr.slice(o, o + this.w), this.eLen.slice(e, e + 1));
  }

  /** Takes the entry's prefix out of the table. */
  private unlinkKey(e: number): void {
    // Where it was last seen, unless a rehash moved it: then through its prefix.
    if (this.table.deleteSlot(this.eSlot[e] as number, e)) return;
    this.table.delete(this.view(e), 0);
  }
}
