// A route dump read without building objects: each RTM_NEWROUTE is decoded into one reused
// RouteView of numbers and typed arrays (addresses as 32-bit words), which a caller compares
// against what it wants and copies out (toInfo) only when something differs. A no-change
// resync of 10,000 routes then allocates next to nothing; decodeRoute's RouteInfo (strings,
// one object per next hop) stays the shape for everything else.
//
// Same checks as decodeRoute (every length bounded, NetlinkProtocolError otherwise), and the
// same reading of the message: a single next hop from RTA_GATEWAY/RTA_OIF with RTNH_F_ONLINK
// in rtm_flags, several from RTA_MULTIPATH, an output interface 0 meaning none.
import {
  AF_INET,
  AF_INET6,
  RTA_DST,
  RTA_GATEWAY,
  RTA_MAX_DECODED,
  RTA_METRICS,
  RTA_MULTIPATH,
  RTA_OIF,
  RTA_PREFSRC,
  RTA_PRIORITY,
  RTA_TABLE,
  RTAX_MAX,
  RTMSG_LEN,
  RTNH_F_ONLINK,
  RTNH_LEN,
  ROUTE_TYPES,
  type RouteType,
} from './constants.js';
import { NetlinkProtocolError } from './errors.js';
import type { IpVersion } from './ip.js';
import { ipv4Value, writeIp } from './ip.js';
import type { NlHeader } from './reader.js';
import { AttrTable } from './reader.js';
import type { RouteInfo } from './route.js';
import { decodeRoute } from './route.js';

/** The RTAX_* metrics decodeRoute reads (each must hold a u32). */
const METRIC_TYPES = [2, 3, 8, 10, 11, 14] as const;

/**
 * One route of a dump as numbers, reused from route to route: valid only inside the visit
 * callback that received it (toInfo() copies it out).
 */
export class RouteView {
  family: IpVersion = 4;
  dstLen = 0;
  table = 0;
  protocol = 0;
  scope = 0;
  type: RouteType = 'unspec';
  /** rtm_flags (RTM_F_*, and RTNH_F_* of a single next hop). */
  flags = 0;
  /** RTA_PRIORITY (the metric), or -1 when the route carries none. */
  priority = -1;
  /** The destination as big-endian 32-bit words: IPv4 in dst[0], IPv6 in dst[0..3]. */
  readonly dst = new Uint32Array(4);
  /** Next hops: none for a blackhole, one, or several (RTA_MULTIPATH). */
  hopCount = 0;
  /** Output interface per next hop; 0 for none. */
  hopOif = new Int32Array(8);
  /** RTNH_F_* per next hop (RTNH_F_ONLINK = 4). */
  hopFlags = new Uint8Array(8);
  /** 1..256. */
  hopWeight = new Uint16Array(8);
  /** Gateway length per next hop: 0 (none), 4 or 16 bytes. */
  hopGatewayLen = new Uint8Array(8);
  /** Gateway words, four per next hop (IPv4 in the first); only hopGatewayLen / 4 of them are meaningful. */
  hopGateway = new Uint32Array(32);
  hasPrefsrc = false;
  hasMetrics = false;

  private buf: Buffer | undefined;
  private readonly header: NlHeader = { type: 0, flags: 0, seq: 0, pid: 0, start: 0, end: 0 };
  private info: RouteInfo | undefined;

  /** True when next hop i is RTNH_F_ONLINK. */
  onlink(i: number): boolean {
    return (this.hopFlags[i]! & RTNH_F_ONLINK) !== 0;
  }

  /** The route as decodeRoute gives it (a copy: safe to keep). */
  toInfo(): RouteInfo {
    if (this.info !== undefined) return this.info;
    if (this.buf === undefined) throw new Error('RouteView.toInfo() with no route in the view');
    const r = decodeRoute(this.buf, this.header);
    if (r === undefined) throw new NetlinkProtocolError('route view holds a route of another family');
    return r;
  }

  /** Makes the view show a RouteInfo (for kernels that hand out objects, such as a fake). */
  assign(info: RouteInfo): this {
    this.buf = undefined;
    this.info = info;
    this.family = info.family;
    this.dstLen = info.dstLen;
    this.table = info.table;
    this.protocol = info.protocol;
    this.scope = info.scope;
    this.type = info.type;
    this.flags = info.flags;
    this.priority = info.priority ?? -1;
    addressWords(info.family, info.dst, this.dst, 0);
    const n = info.nexthops.length;
    this.reserve(n);
    this.hopCount = n;
    for (let i = 0; i < n; i++) {
      const nh = info.nexthops[i]!;
      this.hopOif[i] = nh.oif ?? 0;
      this.hopFlags[i] = nh.onlink === true ? RTNH_F_ONLINK : 0;
      this.hopWeight[i] = nh.weight ?? 1;
      if (nh.gateway === undefined) this.hopGatewayLen[i] = 0;
      else {
        const v = nh.gateway.includes(':') ? 6 : 4;
        this.hopGatewayLen[i] = v === 4 ? 4 : 16;
        addressWords(v, nh.gateway, this.hopGateway, 4 * i);
      }
    }
    this.hasPrefsrc = info.prefsrc !== undefined;
    this.hasMetrics = info.metrics !== undefined;
    return this;
  }

  /** Room for n next hops. */
  private reserve(n: number): void {
    if (n <= this.hopOif.length) return;
    let cap = this.hopOif.length;
    while (cap < n) cap *= 2;
    const oif = new Int32Array(cap);
    oif.set(this.hopOif);
    this.hopOif = oif;
    const flags = new Uint8Array(cap);
    flags.set(this.hopFlags);
    this.hopFlags = flags;
    const weight = new Uint16Array(cap);
    weight.set(this.hopWeight);
    this.hopWeight = weight;
    const glen = new Uint8Array(cap);
    glen.set(this.hopGatewayLen);
    this.hopGatewayLen = glen;
    const gw = new Uint32Array(4 * cap);
    gw.set(this.hopGateway);
    this.hopGateway = gw;
  }

  /** @internal decodeRouteView's entry: points the view at a message and sizes it. */
  bind(buf: Buffer, h: NlHeader, hops: number): void {
    this.info = undefined;
    this.buf = buf;
    const c = this.header;
    c.type = h.type;
    c.flags = h.flags;
    c.seq = h.seq;
    c.pid = h.pid;
    c.start = h.start;
    c.end = h.end;
    this.reserve(hops);
  }
}

const scratch = Buffer.alloc(16);

/**
 * An address's big-endian 32-bit words into out[at..] (one for IPv4, four for IPv6). Throws
 * a TypeError on text that is not an address of that family.
 */
export function addressWords(family: IpVersion, text: string, out: Uint32Array, at: number): void {
  if (family === 4) {
    const v = ipv4Value(text);
    if (v < 0) throw new TypeError(`invalid IPv4 address ${JSON.stringify(text)}`);
    out[at] = v;
    out[at + 1] = out[at + 2] = out[at + 3] = 0;
    return;
  }
  writeIp(scratch, 0, family, text);
  out[at] = scratch.readUInt32BE(0);
  out[at + 1] = scratch.readUInt32BE(4);
  out[at + 2] = scratch.readUInt32BE(8);
  out[at + 3] = scratch.readUInt32BE(12);
}

const rta = new AttrTable(RTA_MAX_DECODED);
const nhAttrs = new AttrTable(RTA_MAX_DECODED);
const mxAttrs = new AttrTable(RTAX_MAX);

function readWords(buf: Buffer, off: number, len: number, out: Uint32Array, at: number): void {
  out[at] = buf.readUInt32BE(off);
  if (len === 16) {
    out[at + 1] = buf.readUInt32BE(off + 4);
    out[at + 2] = buf.readUInt32BE(off + 8);
    out[at + 3] = buf.readUInt32BE(off + 12);
  } else out[at + 1] = out[at + 2] = out[at + 3] = 0;
}

/** Next hops in an RTA_MULTIPATH payload, bounds-checked (the view is sized before filling). */
function countHops(buf: Buffer, off: number, end: number): number {
  let n = 0;
  let q = off;
  while (q + RTNH_LEN <= end) {
    const len = buf.readUInt16LE(q);
    if (len < RTNH_LEN || q + len > end) throw new NetlinkProtocolError(`rtnexthop of ${len} bytes`);
    n++;
    q += (len + 3) & ~3;
  }
  return n;
}

/**
 * Decodes an RTM_NEWROUTE/RTM_DELROUTE payload into `view`; false (view untouched) for
 * families other than IPv4/IPv6. Throws NetlinkProtocolError where decodeRoute would.
 */
export function decodeRouteView(buf: Buffer, h: NlHeader, view: RouteView): boolean {
  if (h.end - h.start < RTMSG_LEN) throw new NetlinkProtocolError('route message shorter than rtmsg');
  const p = h.start;
  const af = buf[p]!;
  if (af !== AF_INET && af !== AF_INET6) return false;
  const version: IpVersion = af === AF_INET ? 4 : 6;
  const alen = version === 4 ? 4 : 16;
  rta.parse(buf, p + RTMSG_LEN, h.end);
  const mpOff = rta.off[RTA_MULTIPATH]!;
  const mpEnd = mpOff >= 0 ? mpOff + rta.len[RTA_MULTIPATH]! : 0;
  view.bind(buf, h, mpOff >= 0 ? countHops(buf, mpOff, mpEnd) : 1);
  view.family = version;
  view.dstLen = buf[p + 1]!;
  view.flags = buf.readUInt32LE(p + 8);
  view.table = rta.u32(buf, RTA_TABLE) ?? buf[p + 4]!;
  view.protocol = buf[p + 5]!;
  view.scope = buf[p + 6]!;
  view.type = ROUTE_TYPES[buf[p + 7]!] ?? 'unspec';
  const dOff = rta.off[RTA_DST]!;
  if (dOff >= 0) {
    if (rta.len[RTA_DST] !== alen) throw new NetlinkProtocolError('RTA_DST of the wrong length');
    readWords(buf, dOff, alen, view.dst, 0);
  } else view.dst.fill(0);
  let n = 0;
  if (mpOff >= 0) {
    let q = mpOff;
    while (q + RTNH_LEN <= mpEnd) {
      const len = buf.readUInt16LE(q);
      view.hopFlags[n] = buf[q + 2]!;
      view.hopWeight[n] = buf[q + 3]! + 1;
      view.hopOif[n] = buf.readInt32LE(q + 4);
      nhAttrs.parse(buf, q + RTNH_LEN, q + len);
      const g = nhAttrs.off[RTA_GATEWAY]!;
      const glen = g >= 0 ? nhAttrs.len[RTA_GATEWAY]! : 0;
      // decodeRoute's formatIp knows 4 and 16 bytes; another length is no gateway
      if (glen === 4 || glen === 16) readWords(buf, g, glen, view.hopGateway, 4 * n);
      view.hopGatewayLen[n] = glen === 4 || glen === 16 ? glen : 0;
      n++;
      q += (len + 3) & ~3;
    }
  } else {
    const g = rta.off[RTA_GATEWAY]!;
    const glen = g >= 0 ? rta.len[RTA_GATEWAY]! : 0;
    const hasGateway = glen === 4 || glen === 16;
    const oif = rta.u32(buf, RTA_OIF);
    if (hasGateway || oif !== undefined) {
      if (hasGateway) readWords(buf, g, glen, view.hopGateway, 0);
      view.hopGatewayLen[0] = hasGateway ? glen : 0;
      view.hopOif[0] = oif ?? 0;
      view.hopFlags[0] = view.flags & RTNH_F_ONLINK;
      view.hopWeight[0] = 1;
      n = 1;
    }
  }
  view.hopCount = n;
  view.priority = rta.u32(buf, RTA_PRIORITY) ?? -1;
  view.hasPrefsrc = rta.off[RTA_PREFSRC]! >= 0;
  const mx = rta.off[RTA_METRICS]!;
  view.hasMetrics = mx >= 0;
  if (mx >= 0) {
    // checked as decodeRoute checks them, so a malformed message fails either way
    mxAttrs.parse(buf, mx, mx + rta.len[RTA_METRICS]!);
    for (const t of METRIC_TYPES) mxAttrs.u32(buf, t);
  }
  return true;
}
