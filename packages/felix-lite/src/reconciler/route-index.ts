// The desired routes in integer form, for the resync's comparison: found by the kernel's key
// (family, table, destination, prefix length, metric) through an open-addressing hash over
// typed arrays, and compared with a dumped route (a @tabby/netlink RouteView) without a
// string key or a route object. A no-change resync of 10,000 routes built both for every
// dumped route (about two thirds of its time, mostly garbage collection); now only routes
// that differ are turned into objects.
//
// The index follows the desired set as it changes (upsert, remove: what setDesired changed,
// reported by the DeltaTracker), so a resync never rebuilds it and a desired change costs
// only its own routes. Entries live in typed arrays by id (freed ids reused); the hash is
// linear probing with backward-shift deletion; next hops are appended and compacted when
// half of them are garbage.
//
// `matches` is routesEqual(desired, the reconciler's reading of the dumped route): same key,
// type and scope; for unicast the same next hops as a set (device, gateway, onlink, weight),
// a device compared by the interface index its name has now (resolveDevices); a blackhole's
// next hops ignored (the kernel reports IPv6 blackholes as `dev lo`).
import type { RouteView } from '@tabby/netlink/codec';
import { formatIpv6, ipv4Value, writeIpv6 } from '@tabby/netlink/codec';
import type { Route, RouteKeyId } from '../routes/route.js';

const EMPTY = -1;

function mix(h: number, v: number): number {
  return Math.imul(h ^ v, 0x9e3779b1) ^ (h >>> 16);
}

/** MurmurHash3's finalizer: every input bit reaches the low bits the table masks. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function hashKey(
  family: number,
  table: number,
  dstLen: number,
  metric: number,
  d0: number,
  d1: number,
  d2: number,
  d3: number,
): number {
  let h = mix(family * 256 + dstLen, table);
  h = mix(h, metric);
  h = mix(h, d0);
  if (family === 6) h = mix(mix(mix(h, d1), d2), d3);
  return fmix(h);
}

const v6scratch = Buffer.alloc(16);

/**
 * An address's big-endian 32-bit words into out[at..at+3], when its text is the kernel's
 * canonical form (as dumps decode it, so words and key text name the same address): IPv4
 * dotted quads without leading zeros (all ipv4Value accepts), IPv6 per RFC 5952. Returns
 * the address length, 4 or 16, or 0 for text that is not a canonical address.
 */
function canonicalWords(text: string, out: Uint32Array, at: number): 0 | 4 | 16 {
  if (!text.includes(':')) {
    const v = ipv4Value(text);
    if (v < 0) return 0;
    out[at] = v;
    out[at + 1] = out[at + 2] = out[at + 3] = 0;
    return 4;
  }
  try {
    writeIpv6(v6scratch, 0, text);
  } catch {
    return 0;
  }
  if (formatIpv6(v6scratch, 0) !== text) return 0;
  out[at] = v6scratch.readUInt32BE(0);
  out[at + 1] = v6scratch.readUInt32BE(4);
  out[at + 2] = v6scratch.readUInt32BE(8);
  out[at + 3] = v6scratch.readUInt32BE(12);
  return 16;
}

export class DesiredRouteIndex {
  /** Per entry id: its key and route (the objects the tracker holds); undefined when free. */
  private keysById: (RouteKeyId | undefined)[] = [];
  private routesById: (Route | undefined)[] = [];
  private readonly ids = new Map<RouteKeyId, number>();
  private readonly free: number[] = [];
  /** Ids in use are below this. */
  private top = 0;
  private cap = 0;

  private seen = new Uint32Array(0);
  private hash = new Uint32Array(0);
  /** 1 when the entry is in the hash (its addresses are canonical text). */
  private indexed = new Uint8Array(0);
  private family = new Uint8Array(0);
  private dstLen = new Uint8Array(0);
  private table = new Uint32Array(0);
  private metric = new Uint32Array(0);
  private dst = new Uint32Array(0);
  /** Entry e's next hops are hopStart[e] .. hopStart[e] + hopCount[e] in the hop arrays. */
  private hopStart = new Int32Array(0);
  private hopCount = new Int32Array(0);

  private hopEnd = 0;
  private hopGarbage = 0;
  private hopDev = new Int32Array(64);
  private hopGatewayLen = new Uint8Array(64);
  private hopGateway = new Uint32Array(256);
  private hopOnlink = new Uint8Array(64);
  private hopWeight = new Uint16Array(64);

  private slots = new Int32Array(16).fill(EMPTY);
  private mask = 15;

  /** Device names the next hops use (never shrinks: a handful of names per node). */
  private readonly devIds = new Map<string, number>();
  private readonly devNames: string[] = [];
  private devIndex = new Int32Array(0);

  private epoch = 0;
  /** Scratch: which of the desired next hops a dumped route's hops have matched. */
  private used = new Uint8Array(8);

  get size(): number {
    return this.ids.size;
  }

  /**
   * Indexes the route wanted under key k (replacing what k had). A route whose addresses are
   * not canonical text stays out of the hash (find never returns it): the reconciler then
   * compares it the slow way, by its string key, as before.
   */
  upsert(k: RouteKeyId, r: Route): void {
    let e = this.ids.get(k);
    if (e !== undefined) {
      if (this.routesById[e] === r) return;
      this.unlink(e);
    } else {
      e = this.free.pop() ?? this.top++;
      if (e >= this.cap) this.growEntries(Math.max(64, 2 * this.cap));
      this.ids.set(k, e);
      this.keysById[e] = k;
      if (2 * this.ids.size > this.slots.length) this.rehash(2 * this.slots.length);
    }
    this.routesById[e] = r;
    this.seen[e] = 0;
    this.family[e] = r.family;
    this.dstLen[e] = r.dstLen;
    this.table[e] = r.table;
    this.metric[e] = r.metric;
    let ok = canonicalWords(r.dst, this.dst, 4 * e) === (r.family === 4 ? 4 : 16);
    const nhs = r.type === 'unicast' ? r.nexthops : [];
    if (this.hopEnd + nhs.length > this.hopDev.length) this.growHops(2 * (this.hopEnd + nhs.length));
    const start = this.hopEnd;
    for (let i = 0; i < nhs.length; i++) {
      const nh = nhs[i]!;
      const h = start + i;
      this.hopDev[h] = this.devId(nh.dev);
      const gw = nh.gateway;
      if (gw === undefined) this.hopGatewayLen[h] = 0;
      else {
        const len = canonicalWords(gw, this.hopGateway, 4 * h);
        if (len === 0) ok = false;
        this.hopGatewayLen[h] = len;
      }
      this.hopOnlink[h] = nh.onlink === true ? 1 : 0;
      this.hopWeight[h] = nh.weight ?? 1;
    }
    this.hopStart[e] = start;
    this.hopCount[e] = nhs.length;
    this.hopEnd += nhs.length;
    if (ok) this.link(e);
  }

  /** Forgets key k. */
  remove(k: RouteKeyId): void {
    const e = this.ids.get(k);
    if (e === undefined) return;
    this.unlink(e);
    this.ids.delete(k);
    this.keysById[e] = undefined;
    this.routesById[e] = undefined;
    this.free.push(e);
  }

  /** The key and route of entry e (an id from find). */
  key(e: number): RouteKeyId | undefined {
    return this.keysById[e];
  }

  route(e: number): Route | undefined {
    return this.routesById[e];
  }

  /** Starts a resync: a new epoch for marking entries seen; returns it. */
  nextEpoch(): number {
    this.epoch = (this.epoch + 1) >>> 0;
    if (this.epoch === 0) {
      this.seen.fill(0);
      this.epoch = 1;
    }
    return this.epoch;
  }

  /** Marks entry e seen in this epoch; true the first time. */
  markSeen(e: number, epoch: number): boolean {
    if (this.seen[e] === epoch) return false;
    this.seen[e] = epoch;
    return true;
  }

  /** Calls fn with the key and route of every entry seen in this epoch. */
  forEachSeen(epoch: number, fn: (k: RouteKeyId, r: Route) => void): void {
    for (let e = 0; e < this.top; e++)
      if (this.seen[e] === epoch) {
        const k = this.keysById[e];
        const r = this.routesById[e];
        if (k !== undefined && r !== undefined) fn(k, r);
      }
  }

  /** Each device name's interface index now (undefined: no such device; matches nothing). */
  resolveDevices(indexOf: (name: string) => number | undefined): void {
    if (this.devIndex.length !== this.devNames.length) this.devIndex = new Int32Array(this.devNames.length);
    for (let i = 0; i < this.devNames.length; i++) this.devIndex[i] = indexOf(this.devNames[i]!) ?? -1;
  }

  /** The entry with the view's key, or -1. */
  find(v: RouteView): number {
    const metric = v.priority < 0 ? 0 : v.priority;
    const d = v.dst;
    let s = hashKey(v.family, v.table, v.dstLen, metric, d[0]!, d[1]!, d[2]!, d[3]!) & this.mask;
    for (;;) {
      const e = this.slots[s]!;
      if (e === EMPTY) return -1;
      if (
        this.family[e] === v.family &&
        this.dstLen[e] === v.dstLen &&
        this.table[e] === v.table &&
        this.metric[e] === metric &&
        this.dst[4 * e] === d[0] &&
        (v.family === 4 ||
          (this.dst[4 * e + 1] === d[1] && this.dst[4 * e + 2] === d[2] && this.dst[4 * e + 3] === d[3]))
      )
        return e;
      s = (s + 1) & this.mask;
    }
  }

  /** Whether the dumped route equals entry e's route (resolveDevices first). */
  matches(e: number, v: RouteView): boolean {
    const r = this.routesById[e];
    if (r === undefined || r.type !== v.type || r.scope !== v.scope) return false;
    if (r.type !== 'unicast') return true;
    const start = this.hopStart[e]!;
    const n = this.hopCount[e]!;
    if (n !== v.hopCount) return false;
    if (n === 1) return this.hopEquals(start, v, 0);
    if (this.used.length < n) this.used = new Uint8Array(2 * n);
    this.used.fill(0, 0, n);
    // as sets: each dumped hop pairs with one unused desired hop
    for (let j = 0; j < n; j++) {
      let found = false;
      for (let i = 0; i < n; i++)
        if (this.used[i] === 0 && this.hopEquals(start + i, v, j)) {
          this.used[i] = 1;
          found = true;
          break;
        }
      if (!found) return false;
    }
    return true;
  }

  private hopEquals(h: number, v: RouteView, j: number): boolean {
    const dev = this.devIndex[this.hopDev[h]!] ?? -1;
    if (dev < 0 || v.hopOif[j] !== dev) return false;
    if ((this.hopOnlink[h] === 1) !== v.onlink(j)) return false;
    if (this.hopWeight[h] !== v.hopWeight[j]) return false;
    const glen = this.hopGatewayLen[h]!;
    if (glen !== v.hopGatewayLen[j]) return false;
    if (glen === 0) return true;
    const g = 4 * h;
    const w = v.hopGateway;
    const k = 4 * j;
    return (
      this.hopGateway[g] === w[k] &&
      (glen === 4 ||
        (this.hopGateway[g + 1] === w[k + 1] &&
          this.hopGateway[g + 2] === w[k + 2] &&
          this.hopGateway[g + 3] === w[k + 3]))
    );
  }

  private devId(name: string): number {
    let id = this.devIds.get(name);
    if (id === undefined) {
      id = this.devNames.length;
      this.devIds.set(name, id);
      this.devNames.push(name);
    }
    return id;
  }

  /** Puts entry e in the hash. */
  private link(e: number): void {
    const d = 4 * e;
    const dst = this.dst;
    const h = hashKey(
      this.family[e]!,
      this.table[e]!,
      this.dstLen[e]!,
      this.metric[e]!,
      dst[d]!,
      dst[d + 1]!,
      dst[d + 2]!,
      dst[d + 3]!,
    );
    this.hash[e] = h;
    let s = h & this.mask;
    while (this.slots[s] !== EMPTY) s = (s + 1) & this.mask;
    this.slots[s] = e;
    this.indexed[e] = 1;
  }

  /** Takes entry e out of the hash (backward-shift deletion) and gives up its next hops. */
  private unlink(e: number): void {
    this.hopGarbage += this.hopCount[e]!;
    this.hopCount[e] = 0;
    if (this.hopGarbage > 1024 && 2 * this.hopGarbage > this.hopEnd) this.compactHops();
    if (this.indexed[e] === 0) return;
    this.indexed[e] = 0;
    const mask = this.mask;
    let s = this.hash[e]! & mask;
    while (this.slots[s] !== e) s = (s + 1) & mask;
    this.slots[s] = EMPTY;
    // close the gap: a later entry of the run moves back unless it would pass its home slot
    for (let i = (s + 1) & mask; ; i = (i + 1) & mask) {
      const x = this.slots[i]!;
      if (x === EMPTY) return;
      const home = this.hash[x]! & mask;
      if (((i - home) & mask) >= ((i - s) & mask)) {
        this.slots[s] = x;
        this.slots[i] = EMPTY;
        s = i;
      }
    }
  }

  private rehash(size: number): void {
    this.slots = new Int32Array(size).fill(EMPTY);
    this.mask = size - 1;
    for (let e = 0; e < this.top; e++) {
      if (this.indexed[e] === 0) continue;
      let s = this.hash[e]! & this.mask;
      while (this.slots[s] !== EMPTY) s = (s + 1) & this.mask;
      this.slots[s] = e;
    }
  }

  private growEntries(cap: number): void {
    const grow = <T extends Uint8Array | Uint32Array | Int32Array>(
      a: T,
      make: (n: number) => T,
      per = 1,
    ): T => {
      const b = make(cap * per);
      b.set(a);
      return b;
    };
    this.seen = grow(this.seen, (n) => new Uint32Array(n));
    this.hash = grow(this.hash, (n) => new Uint32Array(n));
    this.indexed = grow(this.indexed, (n) => new Uint8Array(n));
    this.family = grow(this.family, (n) => new Uint8Array(n));
    this.dstLen = grow(this.dstLen, (n) => new Uint8Array(n));
    this.table = grow(this.table, (n) => new Uint32Array(n));
    this.metric = grow(this.metric, (n) => new Uint32Array(n));
    this.dst = grow(this.dst, (n) => new Uint32Array(n), 4);
    this.hopStart = grow(this.hopStart, (n) => new Int32Array(n));
    this.hopCount = grow(this.hopCount, (n) => new Int32Array(n));
    this.cap = cap;
  }

  private growHops(size: number): void {
    const dev = new Int32Array(size);
    dev.set(this.hopDev.subarray(0, this.hopEnd));
    this.hopDev = dev;
    const glen = new Uint8Array(size);
    glen.set(this.hopGatewayLen.subarray(0, this.hopEnd));
    this.hopGatewayLen = glen;
    const gw = new Uint32Array(4 * size);
    gw.set(this.hopGateway.subarray(0, 4 * this.hopEnd));
    this.hopGateway = gw;
    const onlink = new Uint8Array(size);
    onlink.set(this.hopOnlink.subarray(0, this.hopEnd));
    this.hopOnlink = onlink;
    const weight = new Uint16Array(size);
    weight.set(this.hopWeight.subarray(0, this.hopEnd));
    this.hopWeight = weight;
  }

  /** Copies the live next hops into fresh arrays, dropping the garbage. */
  private compactHops(): void {
    const live = this.hopEnd - this.hopGarbage;
    const size = Math.max(64, 2 * live);
    const dev = new Int32Array(size);
    const glen = new Uint8Array(size);
    const gw = new Uint32Array(4 * size);
    const onlink = new Uint8Array(size);
    const weight = new Uint16Array(size);
    let to = 0;
    for (let e = 0; e < this.top; e++) {
      const n = this.hopCount[e]!;
      if (n === 0) continue;
      const from = this.hopStart[e]!;
      dev.set(this.hopDev.subarray(from, from + n), to);
      glen.set(this.hopGatewayLen.subarray(from, from + n), to);
      gw.set(this.hopGateway.subarray(4 * from, 4 * (from + n)), 4 * to);
      onlink.set(this.hopOnlink.subarray(from, from + n), to);
      weight.set(this.hopWeight.subarray(from, from + n), to);
      this.hopStart[e] = to;
      to += n;
    }
    this.hopDev = dev;
    this.hopGatewayLen = glen;
    this.hopGateway = gw;
    this.hopOnlink = onlink;
    this.hopWeight = weight;
    this.hopEnd = to;
    this.hopGarbage = 0;
  }
}
