// Kernel routes as felix-lite thinks of them: keyed as the kernel keys them, with next hops
// naming their device (a cali* veth may not exist yet when the route is wanted; the
// reconciler turns names into interface indexes only when it writes).
import type { RouteType } from '@tabby/netlink/codec';
import { RT_SCOPE_LINK, RT_SCOPE_UNIVERSE, RT_TABLE_MAIN } from '@tabby/netlink/codec';
import type { IpVersion } from './ip.js';

export { RT_SCOPE_LINK, RT_SCOPE_UNIVERSE, RT_TABLE_MAIN };
export type { RouteType };

/**
 * What makes two routes the same route to the kernel: family, table, destination prefix and
 * metric (RTA_PRIORITY; the kernel's IPv6 default is 1024, IPv4's 0). IPv4 also keys on
 * ToS, which Tabby never sets (always 0), so it is not a field.
 */
export interface RouteKey {
  readonly family: IpVersion;
  readonly table: number;
  /** Network address, canonical text, host bits zero. */
  readonly dst: string;
  readonly dstLen: number;
  readonly metric: number;
}

/** A RouteKey as one string, for maps: "4|254|10.65.1.0/26|0". */
export type RouteKeyId = string & { readonly __brand: 'RouteKeyId' };

export function routeKeyId(k: RouteKey): RouteKeyId {
  return `${k.family}|${k.table}|${k.dst}/${k.dstLen}|${k.metric}` as RouteKeyId;
}

/** The kernel's default metric for a route added without RTA_PRIORITY. */
export function defaultMetric(family: IpVersion): number {
  return family === 6 ? 1024 : 0;
}

export interface RouteNextHop {
  /** Output device by name (resolved to an index when written). */
  readonly dev: string;
  readonly gateway?: string;
  /** RTNH_F_ONLINK: the gateway is on the link though no address says so (tunnels). */
  readonly onlink?: boolean;
  /** ECMP weight 1..256; omitted means 1. */
  readonly weight?: number;
}

/** A whole route: its key and what the kernel stores under it. */
export interface Route extends RouteKey {
  readonly type: RouteType;
  /** rtm_scope: RT_SCOPE_LINK for a device route, RT_SCOPE_UNIVERSE otherwise (always for IPv6). */
  readonly scope: number;
  /** Empty for a blackhole; several for ECMP, sorted (see sortNextHops). */
  readonly nexthops: readonly RouteNextHop[];
}

function compareNextHops(a: RouteNextHop, b: RouteNextHop): number {
  const ga = a.gateway ?? '';
  const gb = b.gateway ?? '';
  if (ga !== gb) return ga < gb ? -1 : 1;
  if (a.dev !== b.dev) return a.dev < b.dev ? -1 : 1;
  return 0;
}

/** Next hops in one order (gateway, then device), so equal sets compare equal. */
export function sortNextHops(nhs: readonly RouteNextHop[]): RouteNextHop[] {
  return [...nhs].sort(compareNextHops);
}

function sameNextHop(a: RouteNextHop, b: RouteNextHop): boolean {
  return (
    a.dev === b.dev &&
    a.gateway === b.gateway &&
    (a.onlink === true) === (b.onlink === true) &&
    (a.weight ?? 1) === (b.weight ?? 1)
  );
}

/**
 * Equal as the kernel would program them: key, type, scope and next hops (as sets). A
 * blackhole's next hops are ignored (the kernel reports IPv6 blackholes as `dev lo`).
 */
export function routesEqual(a: Route, b: Route): boolean {
  if (
    a.family !== b.family ||
    a.table !== b.table ||
    a.dst !== b.dst ||
    a.dstLen !== b.dstLen ||
    a.metric !== b.metric ||
    a.type !== b.type ||
    a.scope !== b.scope
  )
    return false;
  if (a.type !== 'unicast') return true;
  if (a.nexthops.length !== b.nexthops.length) return false;
  const an = a.nexthops.length > 1 ? sortNextHops(a.nexthops) : a.nexthops;
  const bn = b.nexthops.length > 1 ? sortNextHops(b.nexthops) : b.nexthops;
  for (let i = 0; i < an.length; i++) if (!sameNextHop(an[i]!, bn[i]!)) return false;
  return true;
}

/** `ip route`-style text: "10.65.1.0/26 via 192.168.0.2 dev eth0 onlink", "blackhole 10.65.1.0/26". */
export function describeRoute(r: Route): string {
  const parts: string[] = [];
  if (r.type !== 'unicast') parts.push(r.type);
  parts.push(`${r.dst}/${r.dstLen}`);
  const hop = (nh: RouteNextHop): string =>
    `${nh.gateway !== undefined ? `via ${nh.gateway} ` : ''}dev ${nh.dev}${nh.onlink === true ? ' onlink' : ''}${
      nh.weight !== undefined && nh.weight !== 1 ? ` weight ${nh.weight}` : ''
    }`;
  if (r.type === 'unicast') {
    if (r.nexthops.length === 1) parts.push(hop(r.nexthops[0]!));
    else for (const nh of r.nexthops) parts.push(`nexthop ${hop(nh)}`);
  }
  if (r.table !== RT_TABLE_MAIN) parts.push(`table ${r.table}`);
  if (r.scope === RT_SCOPE_LINK) parts.push('scope link');
  if (r.metric !== 0) parts.push(`metric ${r.metric}`);
  return parts.join(' ');
}
