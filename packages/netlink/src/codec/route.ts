// RTM_NEWROUTE / RTM_DELROUTE / RTM_GETROUTE: struct rtmsg and its attributes, IPv4 and IPv6.
// RTM_GETROUTE is both a dump (every route of a table) and a lookup (the route the kernel
// would use for one flow: `ip route get`).
// A route's next hops are always a list: one entry is encoded as RTA_GATEWAY/RTA_OIF (and
// RTNH_F_ONLINK in rtm_flags), several as RTA_MULTIPATH, and decoding gives the same shape
// back either way, so desired and dumped routes compare directly.
import {
  AF_INET,
  AF_INET6,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  RTA_DPORT,
  RTA_DST,
  RTA_GATEWAY,
  RTA_IP_PROTO,
  RTA_MARK,
  RTA_MAX_DECODED,
  RTA_METRICS,
  RTA_MULTIPATH,
  RTA_OIF,
  RTA_PREFSRC,
  RTA_PRIORITY,
  RTA_SPORT,
  RTA_SRC,
  RTA_TABLE,
  RTA_UID,
  RTAX_MAX,
  RTM_F_LOOKUP_TABLE,
  RTM_GETROUTE,
  RTM_NEWROUTE,
  RTMSG_LEN,
  RTNH_F_ONLINK,
  RTNH_LEN,
  ROUTE_TYPES,
  RT_SCOPE_LINK,
  RT_SCOPE_NOWHERE,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
  RT_TABLE_UNSPEC,
  RTPROT_BOOT,
  type RouteType,
} from './constants.js';
import { NetlinkProtocolError } from './errors.js';
import type { IpVersion } from './ip.js';
import { formatIp } from './ip.js';
import type { NlHeader } from './reader.js';
import { AttrTable } from './reader.js';
import type { NlWriter } from './writer.js';

export interface NextHop {
  readonly gateway?: string;
  /** Output interface index. */
  readonly oif?: number;
  /** The gateway is on the link even if no address says so (RTNH_F_ONLINK). */
  readonly onlink?: boolean;
  /** ECMP weight, 1..256 (default 1). */
  readonly weight?: number;
}

/** Route metrics (RTA_METRICS), by RTAX_* name. */
export interface RouteMetrics {
  readonly mtu?: number;
  readonly window?: number;
  readonly advmss?: number;
  readonly hoplimit?: number;
  readonly initcwnd?: number;
  readonly initrwnd?: number;
}

const METRIC_TYPES: Readonly<Record<keyof RouteMetrics, number>> = {
  mtu: 2,
  window: 3,
  advmss: 8,
  hoplimit: 10,
  initcwnd: 11,
  initrwnd: 14,
};
const METRIC_NAMES = Object.entries(METRIC_TYPES) as readonly (readonly [keyof RouteMetrics, number])[];

/** A route to write or delete. Omitted fields take `ip route`'s defaults. */
export interface RouteSpec {
  readonly family: IpVersion;
  /** Destination network address, e.g. '10.65.1.0' (host bits must be zero). */
  readonly dst: string;
  readonly dstLen: number;
  /** Routing table (default main, 254). */
  readonly table?: number;
  /** Route protocol (who owns it); default RTPROT_BOOT on add, any on delete. */
  readonly protocol?: number;
  /** Default: link for an IPv4 unicast route with no gateway, else universe; any on delete. */
  readonly scope?: number;
  /** Default unicast on add, any on delete. */
  readonly type?: RouteType;
  readonly nexthops?: readonly NextHop[];
  /** Metric (RTA_PRIORITY). */
  readonly priority?: number;
  readonly prefsrc?: string;
  readonly metrics?: RouteMetrics;
}

/** A route as the kernel reports it. */
export interface RouteInfo {
  readonly family: IpVersion;
  readonly dst: string;
  readonly dstLen: number;
  readonly table: number;
  readonly protocol: number;
  readonly scope: number;
  readonly type: RouteType;
  /** rtm_flags (RTM_F_*, and RTNH_F_* of a single next hop). */
  readonly flags: number;
  readonly nexthops: readonly NextHop[];
  readonly priority?: number;
  readonly prefsrc?: string;
  readonly metrics?: RouteMetrics;
}

const afOf = (v: IpVersion): number => (v === 4 ? AF_INET : AF_INET6);
const typeNumber = (t: RouteType): number => ROUTE_TYPES.indexOf(t);

/**
 * Encodes one route request (RTM_NEWROUTE with the given flags, or RTM_DELROUTE) into w.
 * Returns the message's offset in w.
 */
export function encodeRoute(w: NlWriter, msgType: number, flags: number, seq: number, r: RouteSpec): number {
  const del = msgType !== RTM_NEWROUTE;
  const version = r.family;
  const alen = version === 4 ? 4 : 16;
  if (!Number.isInteger(r.dstLen) || r.dstLen < 0 || r.dstLen > alen * 8)
    throw new TypeError(`invalid prefix length ${r.dstLen} for IPv${version}`);
  const nhs = r.nexthops ?? [];
  const type = r.type ?? (del ? 'unspec' : 'unicast');
  let scope = r.scope;
  if (scope === undefined) {
    if (del) scope = RT_SCOPE_NOWHERE;
    else if (version === 6) scope = RT_SCOPE_UNIVERSE;
    else if (type === 'local' || type === 'nat') scope = 254;
    else if (type === 'broadcast' || type === 'multicast' || type === 'anycast') scope = RT_SCOPE_LINK;
    else if (type === 'unicast' || type === 'unspec') {
      let gateway = false;
      for (let i = 0; i < nhs.length; i++) if (nhs[i]!.gateway !== undefined) gateway = true;
      scope = gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
    } else scope = RT_SCOPE_UNIVERSE;
  }
  const table = r.table ?? RT_TABLE_MAIN;
  const start = w.begin(msgType, flags, seq);
  const h = w.fixed(RTMSG_LEN);
  const b = w.buf;
  b[h] = afOf(version);
  b[h + 1] = r.dstLen;
  b[h + 4] = table < 256 ? table : RT_TABLE_UNSPEC;
  b[h + 5] = r.protocol ?? (del ? 0 : RTPROT_BOOT);
  b[h + 6] = scope;
  b[h + 7] = typeNumber(type);
  // rtm_flags (h + 8) is patched below for a single on-link next hop. A default route
  // carries no RTA_DST, as `ip route add default` sends it.
  if (r.dstLen > 0) w.ip(RTA_DST, version, r.dst);
  // attribute order as iproute2's, so captured requests compare byte for byte
  const single = nhs.length === 1 ? nhs[0]! : undefined;
  if (single?.gateway !== undefined) w.ip(RTA_GATEWAY, version, single.gateway);
  if (table >= 256) w.u32(RTA_TABLE, table);
  if (r.priority !== undefined) w.u32(RTA_PRIORITY, r.priority);
  if (r.prefsrc !== undefined) w.ip(RTA_PREFSRC, version, r.prefsrc);
  if (single !== undefined) {
    if (single.oif !== undefined) w.u32(RTA_OIF, single.oif);
    if (single.onlink === true) w.buf.writeUInt32LE(RTNH_F_ONLINK, h + 8);
    if (single.weight !== undefined && single.weight !== 1)
      throw new TypeError('a weight needs several next hops (RTA_MULTIPATH)');
  } else if (nhs.length > 1) {
    const mp = w.nest(RTA_MULTIPATH);
    for (const nh of nhs) {
      w.ensure(RTNH_LEN + 24);
      const at = w.length;
      const weight = nh.weight ?? 1;
      if (!Number.isInteger(weight) || weight < 1 || weight > 256)
        throw new TypeError(`invalid next-hop weight ${weight}`);
      w.buf[at + 2] = nh.onlink === true ? RTNH_F_ONLINK : 0;
      w.buf[at + 3] = weight - 1;
      w.buf.writeInt32LE(nh.oif ?? 0, at + 4);
      w.length = at + RTNH_LEN;
      if (nh.gateway !== undefined) w.ip(RTA_GATEWAY, version, nh.gateway);
      w.buf.writeUInt16LE(w.length - at, at);
    }
    w.endNest(mp);
  }
  if (r.metrics !== undefined) {
    const mx = w.nest(RTA_METRICS);
    for (const [name, t] of METRIC_NAMES) {
      const v = r.metrics[name];
      if (v !== undefined) w.u32(t, v);
    }
    w.endNest(mx);
  }
  w.end(start);
  return start;
}

/** Filters a route dump in the kernel (needs NETLINK_GET_STRICT_CHK, which our sockets set). */
export interface RouteDumpFilter {
  readonly family?: IpVersion;
  readonly table?: number;
  readonly protocol?: number;
  readonly type?: RouteType;
  readonly oif?: number;
}

export function encodeRouteDump(w: NlWriter, seq: number, f: RouteDumpFilter): number {
  const start = w.begin(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq);
  const h = w.fixed(RTMSG_LEN);
  const b = w.buf; // header fields first: attributes may grow (move) the buffer
  b[h] = f.family === undefined ? 0 : afOf(f.family);
  if (f.table !== undefined && f.table < 256) b[h + 4] = f.table;
  if (f.protocol !== undefined) b[h + 5] = f.protocol;
  if (f.type !== undefined) b[h + 7] = typeNumber(f.type);
  if (f.table !== undefined && f.table >= 256) w.u32(RTA_TABLE, f.table);
  if (f.oif !== undefined) w.u32(RTA_OIF, f.oif);
  w.end(start);
  return start;
}

/**
 * One flow to look up (RTM_GETROUTE without NLM_F_DUMP): the kernel answers with the route it
 * would use, as for a socket of that flow (its source address in `prefsrc`, the output
 * interface in the next hop). Ports and protocol matter only to policy-routing rules that
 * match on them.
 */
export interface RouteQuery {
  readonly family: IpVersion;
  readonly dst: string;
  /** Source address, as a bound socket would have. */
  readonly src?: string;
  /** Output interface index, as a socket bound to a device. */
  readonly oif?: number;
  /** IP protocol number (17: UDP); kernel 4.17 and later. */
  readonly ipProto?: number;
  readonly sport?: number;
  readonly dport?: number;
  /** Firewall mark (SO_MARK). */
  readonly mark?: number;
  /** The socket owner's uid; default: the caller's. */
  readonly uid?: number;
}

/**
 * Encodes a route lookup as iproute2's `ip route get` does (full-length prefixes,
 * RTM_F_LOOKUP_TABLE for IPv4; test/vectors has captures that compare byte for byte), so
 * kernels that check requests strictly (NETLINK_GET_STRICT_CHK) accept it. `flags` is NLM_F_REQUEST, plus
 * NLM_F_ACK to have the answer followed by an acknowledgement.
 */
export function encodeRouteGet(w: NlWriter, flags: number, seq: number, q: RouteQuery): number {
  const bits = q.family === 4 ? 32 : 128;
  const start = w.begin(RTM_GETROUTE, flags, seq);
  const h = w.fixed(RTMSG_LEN);
  const b = w.buf;
  b[h] = afOf(q.family);
  b[h + 1] = bits;
  b[h + 2] = q.src === undefined ? 0 : bits;
  // iproute2 asks for the table of the answer on IPv4 only (IPv6 always reports it)
  if (q.family === 4) b.writeUInt32LE(RTM_F_LOOKUP_TABLE, h + 8);
  w.ip(RTA_DST, q.family, q.dst);
  if (q.src !== undefined) w.ip(RTA_SRC, q.family, q.src);
  if (q.oif !== undefined) w.u32(RTA_OIF, q.oif);
  if (q.mark !== undefined) w.u32(RTA_MARK, q.mark);
  if (q.uid !== undefined) w.u32(RTA_UID, q.uid);
  if (q.ipProto !== undefined) w.u8(RTA_IP_PROTO, q.ipProto);
  if (q.sport !== undefined) w.be16(RTA_SPORT, q.sport);
  if (q.dport !== undefined) w.be16(RTA_DPORT, q.dport);
  w.end(start);
  return start;
}

const rta = new AttrTable(RTA_MAX_DECODED);
const nhAttrs = new AttrTable(RTA_MAX_DECODED);
const mxAttrs = new AttrTable(RTAX_MAX);

function decodeMetrics(buf: Buffer, off: number, len: number): RouteMetrics {
  mxAttrs.parse(buf, off, off + len);
  const out: { -readonly [K in keyof RouteMetrics]: RouteMetrics[K] } = {};
  for (const [name, t] of METRIC_NAMES) {
    const v = mxAttrs.u32(buf, t);
    if (v !== undefined) out[name] = v;
  }
  return out;
}

/** Decodes an RTM_NEWROUTE/RTM_DELROUTE payload; undefined for families other than IPv4/IPv6. */
export function decodeRoute(buf: Buffer, h: NlHeader): RouteInfo | undefined {
  if (h.end - h.start < RTMSG_LEN) throw new NetlinkProtocolError('route message shorter than rtmsg');
  const p = h.start;
  const af = buf[p]!;
  if (af !== AF_INET && af !== AF_INET6) return undefined;
  const version: IpVersion = af === AF_INET ? 4 : 6;
  const alen = version === 4 ? 4 : 16;
  const dstLen = buf[p + 1]!;
  const flags = buf.readUInt32LE(p + 8);
  rta.parse(buf, p + RTMSG_LEN, h.end);
  const table = rta.u32(buf, RTA_TABLE) ?? buf[p + 4]!;
  let dst: string;
  const dOff = rta.off[RTA_DST]!;
  if (dOff >= 0) {
    const d = formatIp(buf, dOff, rta.len[RTA_DST]!);
    if (d === undefined || rta.len[RTA_DST] !== alen)
      throw new NetlinkProtocolError('RTA_DST of the wrong length');
    dst = d;
  } else dst = version === 4 ? '0.0.0.0' : '::';
  const nexthops: NextHop[] = [];
  const mpOff = rta.off[RTA_MULTIPATH]!;
  if (mpOff >= 0) {
    const end = mpOff + rta.len[RTA_MULTIPATH]!;
    let q = mpOff;
    while (q + RTNH_LEN <= end) {
      const len = buf.readUInt16LE(q);
      if (len < RTNH_LEN || q + len > end) throw new NetlinkProtocolError(`rtnexthop of ${len} bytes`);
      const nhFlags = buf[q + 2]!;
      const weight = buf[q + 3]! + 1;
      const oif = buf.readInt32LE(q + 4);
      nhAttrs.parse(buf, q + RTNH_LEN, q + len);
      const g = nhAttrs.off[RTA_GATEWAY]!;
      const gateway = g >= 0 ? formatIp(buf, g, nhAttrs.len[RTA_GATEWAY]!) : undefined;
      nexthops.push(makeNextHop(gateway, oif, (nhFlags & RTNH_F_ONLINK) !== 0, weight));
      q += (len + 3) & ~3;
    }
  } else {
    const g = rta.off[RTA_GATEWAY]!;
    const gateway = g >= 0 ? formatIp(buf, g, rta.len[RTA_GATEWAY]!) : undefined;
    const oif = rta.u32(buf, RTA_OIF);
    if (gateway !== undefined || oif !== undefined)
      nexthops.push(makeNextHop(gateway, oif, (flags & RTNH_F_ONLINK) !== 0, 1));
  }
  const priority = rta.u32(buf, RTA_PRIORITY);
  const ps = rta.off[RTA_PREFSRC]!;
  const prefsrc = ps >= 0 ? formatIp(buf, ps, rta.len[RTA_PREFSRC]!) : undefined;
  const mx = rta.off[RTA_METRICS]!;
  const metrics = mx >= 0 ? decodeMetrics(buf, mx, rta.len[RTA_METRICS]!) : undefined;
  const route: {
    -readonly [K in keyof RouteInfo]: RouteInfo[K];
  } = {
    family: version,
    dst,
    dstLen,
    table,
    protocol: buf[p + 5]!,
    scope: buf[p + 6]!,
    type: ROUTE_TYPES[buf[p + 7]!] ?? 'unspec',
    flags,
    nexthops,
  };
  if (priority !== undefined) route.priority = priority;
  if (prefsrc !== undefined) route.prefsrc = prefsrc;
  if (metrics !== undefined) route.metrics = metrics;
  return route;
}

function makeNextHop(
  gateway: string | undefined,
  oif: number | undefined,
  onlink: boolean,
  weight: number,
): NextHop {
  const nh: { -readonly [K in keyof NextHop]: NextHop[K] } = {};
  if (gateway !== undefined) nh.gateway = gateway;
  if (oif !== undefined && oif !== 0) nh.oif = oif;
  if (onlink) nh.onlink = true;
  if (weight !== 1) nh.weight = weight;
  return nh;
}

/** 'unicast 10.65.1.0/26' and the like, for error messages. */
export function describeRoute(r: {
  readonly dst: string;
  readonly dstLen: number;
  readonly type?: RouteType;
}): string {
  return `${r.type !== undefined && r.type !== 'unicast' ? `${r.type} ` : ''}${r.dst}/${r.dstLen}`;
}
