// The desired routes in integer form, for the resync's comparison: found by the kernel's key
// (family, table, destination, prefix length, metric) through an open-addressing hash over
// typed arrays, and compared with a dumped route (a @tabby/netlink RouteView) without a
// string key or a route object. A no-change resync of 10,000 routes built both for every
// dumped route (about two thirds of its time, mostly garbage collection); now only routes
// that differ are turned into objects.
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
  readonly size: number;
  /** Per entry: its key and route (the objects the tracker holds). */
  readonly keys: RouteKeyId[] = [];
  readonly routes: Route[] = [];
  /** Per entry: the resync epoch in which a dumped route matched it. */
  readonly seen: Uint32Array;
  /** Device names the next hops use; resolveDevices gives their interface indexes. */
  readonly devNames: string[] = [];
  private devIndex = new Int32Array(0);

  private readonly family: Uint8Array;
  private readonly dstLen: Uint8Array;
  private readonly table: Uint32Array;
  private readonly metric: Uint32Array;
  private readonly dst: Uint32Array;
  /** Entry e's next hops are [hopStart[e], hopStart[e + 1]). */
  private readonly hopStart: Int32Array;
  private hopDev: Int32Array;
  private hopGatewayLen: Uint8Array;
  private hopGateway: Uint32Array;
  private hopOnlink: Uint8Array;
  private hopWeight: Uint16Array;
  private readonly slots: Int32Array;
  private readonly mask: number;
  private epoch = 0;
  /** Scratch: which of the desired next hops a dumped route's hops have matched. */
  private used = new Uint8Array(8);

  /**
   * Indexes `count` routes (keys unique: what RouteReconciler.setDesired has checked). A
   * route whose addresses are not canonical text is kept out of the hash (find never returns
   * it), so the reconciler compares it the slow way, by its string key, as before.
   */
  constructor(entries: Iterable<readonly [RouteKeyId, Route]>, count: number) {
    const n = count;
    this.size = n;
    this.seen = new Uint32Array(n);
    this.family = new Uint8Array(n);
    this.dstLen = new Uint8Array(n);
    this.table = new Uint32Array(n);
    this.metric = new Uint32Array(n);
    this.dst = new Uint32Array(4 * n);
    this.hopStart = new Int32Array(n + 1);
    this.hopDev = new Int32Array(n);
    this.hopGatewayLen = new Uint8Array(n);
    this.hopGateway = new Uint32Array(4 * n);
    this.hopOnlink = new Uint8Array(n);
    this.hopWeight = new Uint16Array(n);
    let cap = 16;
    while (cap < 2 * n) cap *= 2;
    this.slots = new Int32Array(cap).fill(EMPTY);
    this.mask = cap - 1;
    const devIds = new Map<string, number>();

    let e = 0;
    let h = 0;
    for (const entry of entries) {
      if (e === n) throw new RangeError(`more than the ${n} routes announced`);
      const r = entry[1];
      this.keys.push(entry[0]);
      this.routes.push(r);
      this.hopStart[e] = h;
      this.family[e] = r.family;
      this.dstLen[e] = r.dstLen;
      this.table[e] = r.table;
      this.metric[e] = r.metric;
      let indexable = canonicalWords(r.dst, this.dst, 4 * e) === (r.family === 4 ? 4 : 16);
      if (indexable && r.type === 'unicast') {
        const nhs = r.nexthops;
        if (h + nhs.length > this.hopDev.length) this.growHops(2 * (h + nhs.length));
        for (let i = 0; i < nhs.length; i++) {
          const nh = nhs[i]!;
          let id = devIds.get(nh.dev);
          if (id === undefined) {
            id = this.devNames.length;
            devIds.set(nh.dev, id);
            this.devNames.push(nh.dev);
          }
          this.hopDev[h] = id;
          const gw = nh.gateway;
          if (gw === undefined) this.hopGatewayLen[h] = 0;
          else {
            const len = canonicalWords(gw, this.hopGateway, 4 * h);
            if (len === 0) indexable = false;
            this.hopGatewayLen[h] = len;
          }
          this.hopOnlink[h] = nh.onlink === true ? 1 : 0;
          this.hopWeight[h] = nh.weight ?? 1;
          h++;
        }
      }
      if (indexable) {
        const d = 4 * e;
        const dst = this.dst;
        let s =
          hashKey(r.family, r.table, r.dstLen, r.metric, dst[d]!, dst[d + 1]!, dst[d + 2]!, dst[d + 3]!) &
          this.mask;
        while (this.slots[s] !== EMPTY) s = (s + 1) & this.mask;
        this.slots[s] = e;
      }
      e++;
    }
    if (e !== n) throw new RangeError(`${e} routes, not the ${n} announced`);
    this.hopStart[n] = h;
    this.devIndex = new Int32Array(this.devNames.length);
  }

  private growHops(size: number): void {
    const dev = new Int32Array(size);
    dev.set(this.hopDev);
    this.hopDev = dev;
    const glen = new Uint8Array(size);
    glen.set(this.hopGatewayLen);
    this.hopGatewayLen = glen;
    const gw = new Uint32Array(4 * size);
    gw.set(this.hopGateway);
    this.hopGateway = gw;
    const onlink = new Uint8Array(size);
    onlink.set(this.hopOnlink);
    this.hopOnlink = onlink;
    const weight = new Uint16Array(size);
    weight.set(this.hopWeight);
    this.hopWeight = weight;
  }

  /** Starts a resync: a new epoch for `seen`; returns it. */
  nextEpoch(): number {
    this.epoch = (this.epoch + 1) >>> 0;
    if (this.epoch === 0) {
      this.seen.fill(0);
      this.epoch = 1;
    }
    return this.epoch;
  }

  /** Each device name's interface index now (undefined: no such device; matches nothing). */
  resolveDevices(indexOf: (name: string) => number | undefined): void {
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
    const r = this.routes[e]!;
    if (r.type !== v.type || r.scope !== v.scope) return false;
    if (r.type !== 'unicast') return true;
    const start = this.hopStart[e]!;
    const n = this.hopStart[e + 1]! - start;
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
    const dev = this.devIndex[this.hopDev[h]!]!;
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
}
