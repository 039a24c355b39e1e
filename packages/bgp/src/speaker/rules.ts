// What may be imported from a peer and what is sent to one: the iBGP/eBGP rules of RFC 4271
// (§5, §9.1.3), route reflection (RFC 4456) and route-server mode (RFC 7947), as pure
// functions of the route and the two peers. The speaker applies policy around these.

import type { Asn, PathAttributes } from '../wire/index.js';
import { forReadvertisement } from '../wire/index.js';

export type NextHopMode = 'auto' | 'self' | 'keep';

/** A peer as the routing rules see it. */
export interface PeerRole {
  /** Our AS towards this peer (a per-peer local AS is allowed). */
  readonly localAsn: Asn;
  readonly peerAsn: Asn;
  /** Our address on the session. */
  readonly localAddress: string;
  /** The next hops we advertise as "self", per family (default: the session address of that family). */
  readonly nextHopIpv4?: string;
  readonly nextHopIpv6?: string;
  /** RFC 4456: this peer is one of our route-reflector clients. */
  readonly reflectorClient: boolean;
  /** RFC 7947: we are a route server for this peer (no own AS, next hop untouched). */
  readonly routeServerClient: boolean;
  readonly nextHop: NextHopMode;
  /** Accept routes whose AS_PATH holds our AS up to this many times (allowas-in). */
  readonly allowAsIn: number;
  /**
   * RFC 4271 §6.3 (a MAY): reject eBGP routes whose first AS is not the peer's. Off by
   * default, as in BIRD: a route server peer does not prepend itself (RFC 7947 §2.2).
   */
  readonly enforceFirstAs?: boolean;
}

export interface LocalIdentity {
  readonly routerId: string;
  /** RFC 4456 §7: the cluster ID; the router ID when not configured. */
  readonly clusterId: string;
}

export type ImportVerdict =
  | { readonly accept: true; readonly attributes: PathAttributes }
  | { readonly accept: false; readonly reason: string };

function isInternal(p: PeerRole): boolean {
  return p.peerAsn === p.localAsn;
}

function countAs(a: PathAttributes, asn: number): number {
  let n = 0;
  for (const s of a.asPath ?? []) for (const x of s.asns) if (x === asn) n++;
  return n;
}

/**
 * The checks and clean-up on a route received from `from`, before import policy.
 */
export function importRoute(a: PathAttributes, from: PeerRole, me: LocalIdentity): ImportVerdict {
  // RFC 4271 §9.1.2: a route whose AS_PATH contains our AS is a loop (allowas-in relaxes it).
  if (countAs(a, from.localAsn) > from.allowAsIn)
    return { accept: false, reason: `AS_PATH contains our AS ${from.localAsn}` };
  if (isInternal(from)) {
    // RFC 4456 §8: "a router that recognizes the ORIGINATOR_ID attribute SHOULD ignore a
    // route received with its BGP Identifier as the ORIGINATOR_ID", and a route whose
    // CLUSTER_LIST contains our cluster ID is a reflection loop (checked on import, not
    // only on export: GoBGP #3586 kept stale reflected copies for want of it).
    if (a.originatorId === me.routerId) return { accept: false, reason: 'ORIGINATOR_ID is our router ID' };
    if (a.clusterList?.includes(me.clusterId) === true)
      return { accept: false, reason: 'CLUSTER_LIST holds our cluster ID' };
    return { accept: true, attributes: a };
  }
  // eBGP. RFC 4271 §6.3: the leftmost AS may be required to be the peer's (enforce-first-as).
  if (from.enforceFirstAs === true) {
    const first = a.asPath?.find((s) => s.type === 'sequence' || s.type === 'set');
    if (first?.type === 'sequence' && first.asns[0] !== from.peerAsn) {
      return { accept: false, reason: `first AS ${first.asns[0]} is not the peer's ${from.peerAsn}` };
    }
  }
  // RFC 4271 §5.1.5: LOCAL_PREF from an external peer is ignored; RFC 4456 §8: ORIGINATOR_ID
  // and CLUSTER_LIST are not for external peers either.
  if (a.localPref === undefined && a.originatorId === undefined && a.clusterList === undefined) {
    return { accept: true, attributes: a };
  }
  const { localPref: _l, originatorId: _o, clusterList: _c, ...rest } = a;
  return { accept: true, attributes: rest };
}

/** Where a route in the Loc-RIB came from. */
export type RouteOrigin =
  | { readonly kind: 'local' }
  | { readonly kind: 'peer'; readonly role: PeerRole; readonly routerId: string; readonly id: number };

/**
 * The attributes to send `to` for a best route, or undefined when the rules say it is not
 * advertised there. `a` is the route's Loc-RIB attributes; policy runs after this.
 */
export function exportRoute(
  a: PathAttributes,
  origin: RouteOrigin,
  to: PeerRole & { readonly id: number },
  me: LocalIdentity,
): PathAttributes | undefined {
  const out = exportAttributes(a, origin, to, me);
  return out === undefined ? undefined : deliverable(out);
}

function exportAttributes(
  a: PathAttributes,
  origin: RouteOrigin,
  to: PeerRole & { readonly id: number },
  me: LocalIdentity,
): PathAttributes | undefined {
  // Never back to the peer it came from (split horizon).
  if (origin.kind === 'peer' && origin.id === to.id) return undefined;
  const fromInternal = origin.kind === 'peer' && isInternal(origin.role);
  const toInternal = isInternal(to);
  let reflect = false;
  if (fromInternal && toInternal) {
    // RFC 4271 §9.1.3: routes learned from an internal peer are not sent to internal peers,
    // except by a route reflector (RFC 4456 §6): from a client to every peer; from a
    // non-client to clients only.
    const fromClient = origin.kind === 'peer' && origin.role.reflectorClient;
    if (!fromClient && !to.reflectorClient) return undefined;
    reflect = true;
  }
  let out: { -readonly [K in keyof PathAttributes]: PathAttributes[K] } = { ...forReadvertisement(a) };
  if (toInternal) {
    // RFC 4271 §5.1.5: LOCAL_PREF goes to internal peers.
    out.localPref ??= 100;
    if (reflect && origin.kind === 'peer') {
      // RFC 4456 §8: the reflector sets ORIGINATOR_ID to the originator's router ID if
      // absent, and prepends its CLUSTER_ID to the CLUSTER_LIST.
      out.originatorId ??= origin.routerId;
      out.clusterList = [me.clusterId, ...(a.clusterList ?? [])];
    }
    // Reflected routes keep their next hop (RFC 4456 §10); "self" applies to what we learned
    // over eBGP or originate ourselves.
    if ((to.nextHop === 'self' && !reflect) || (origin.kind === 'local' && to.nextHop !== 'keep')) {
      out = withNextHop(out, to);
    }
    return out;
  }
  // To an external peer.
  delete out.localPref;
  delete out.originatorId;
  delete out.clusterList;
  // RFC 4271 §5.1.4: a MED received from a neighbouring AS is not passed to another one.
  if (origin.kind === 'peer' && !isInternal(origin.role)) delete out.multiExitDisc;
  if (to.routeServerClient) {
    // RFC 7947 §2.2: a route server does not prepend its AS and leaves NEXT_HOP alone.
    return to.nextHop === 'self' ? withNextHop(out, to) : out;
  }
  out.asPath = prepend(a, to.localAsn);
  return to.nextHop === 'keep' ? out : withNextHop(out, to);
}

/**
 * The route as it can go on the wire to a peer without extended next hop (RFC 8950, which we
 * never offer): IPv4 NLRI with an IPv4 NEXT_HOP, IPv6 NLRI with an IPv6 next hop. An IPv4
 * route learned with an IPv6 next hop (GoBGP sends them so) takes our IPv4 one; a route
 * left without a usable next hop is not advertised: it would be malformed (RFC 7606 §7.3,
 * §7.11), and encoding it would fail.
 */
function deliverable(a: PathAttributes): PathAttributes | undefined {
  const m = a.mpReachNlri;
  if (m?.kind === 'prefixes' && m.afi === 2) {
    return m.nextHop.includes(':') && m.nextHop !== '::' ? a : undefined;
  }
  if (m?.kind === 'prefixes') {
    // IPv4 NLRI in MP_REACH_NLRI: sent as NEXT_HOP, if its next hop is an IPv4 one (a
    // kept IPv6 one, reflected say, cannot go; next hop self gave it ours).
    if (m.nextHop.includes(':') || m.nextHop === '0.0.0.0') return undefined;
    const { mpReachNlri: _m, ...rest } = a;
    return { ...rest, nextHop: m.nextHop };
  }
  return a.nextHop !== undefined && a.nextHop !== '0.0.0.0' ? a : undefined;
}

function prepend(a: PathAttributes, asn: Asn): NonNullable<PathAttributes['asPath']> {
  const path = (a.asPath ?? []).filter((s) => s.type === 'sequence' || s.type === 'set'); // RFC 5065 §5.3: confed segments stay inside
  const first = path[0];
  if (first?.type === 'sequence' && first.asns.length < 255)
    return [{ type: 'sequence', asns: [asn, ...first.asns] }, ...path.slice(1)];
  return [{ type: 'sequence', asns: [asn] }, ...path];
}

/**
 * Our next hop on a route: for IPv6 NLRI the MP_REACH_NLRI next hop; for IPv4 NLRI our IPv4
 * address as NEXT_HOP, also for a route learned in MP_REACH_NLRI with an IPv6 next hop
 * (RFC 8950: we never offer extended next hop, so we never send one). Without an address
 * of the needed family the route keeps its next hop (and may then not be deliverable).
 */
export function withNextHop(
  a: PathAttributes,
  to: Pick<PeerRole, 'nextHopIpv4' | 'nextHopIpv6'>,
): PathAttributes {
  const m = a.mpReachNlri;
  if (m?.kind === 'prefixes' && m.afi === 2) {
    const nh = to.nextHopIpv6;
    if (nh === undefined) return a;
    const { linkLocalNextHop: _ll, ...mp } = m;
    return { ...a, mpReachNlri: { ...mp, nextHop: nh } };
  }
  const nh = to.nextHopIpv4;
  if (nh === undefined) return a;
  if (m === undefined) return { ...a, nextHop: nh };
  const { mpReachNlri: _m, ...rest } = a;
  return { ...rest, nextHop: nh };
}
