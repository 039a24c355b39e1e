// The per-pool encapsulation decision (Calico's ipipMode / vxlanMode), as pure functions:
// how traffic to one remote next hop in a pool travels, and which tunnel devices the node's
// pools need at all. felix-lite's desired routes and the TunnelManager both ask here, so the
// routes and the devices they go through cannot disagree.

/** Calico's ipipMode / vxlanMode. */
export type EncapMode = 'Never' | 'Always' | 'CrossSubnet';

export const ENCAP_MODES: readonly EncapMode[] = ['Never', 'Always', 'CrossSubnet'];

/** How a packet to a remote next hop travels. */
export type Encapsulation = 'none' | 'ipip' | 'vxlan';

/** The fields of an IPPool the decision reads (Calico's names). */
export interface PoolEncap {
  readonly cidr: string;
  /** IPv4 only (IPIP carries IPv4). Default Never. */
  readonly ipipMode?: EncapMode;
  /** Default Never. */
  readonly vxlanMode?: EncapMode;
  /** A disabled pool gives no new addresses; its existing blocks keep their routes and tunnels. */
  readonly disabled?: boolean;
}

/** 4 or 6, from the text of a CIDR or address (a colon means IPv6). */
export function familyOfCidr(cidr: string): 4 | 6 {
  return cidr.includes(':') ? 6 : 4;
}

/**
 * The encapsulation for a route in `pool` (IP family `family`) to a next hop that is (or is
 * not) on one of this node's subnets. VXLAN wins when both modes ask (Calico refuses such a
 * pool; we do not stop routing over it). IPIP never applies to IPv6. No pool: none.
 *
 *   mode          next hop on a local subnet   next hop elsewhere
 *   Never         none                         none
 *   Always        tunnel                       tunnel
 *   CrossSubnet   none                         tunnel
 */
export function encapsulationFor(
  pool: Pick<PoolEncap, 'ipipMode' | 'vxlanMode'> | undefined,
  family: 4 | 6,
  nextHopOnLocalSubnet: boolean,
): Encapsulation {
  if (pool === undefined) return 'none';
  const wants = (m: EncapMode | undefined): boolean =>
    m === 'Always' || (m === 'CrossSubnet' && !nextHopOnLocalSubnet);
  if (wants(pool.vxlanMode)) return 'vxlan';
  if (family === 4 && wants(pool.ipipMode)) return 'ipip';
  return 'none';
}

/** Which tunnel devices the pools need on a node. */
export interface TunnelNeeds {
  /** tunl0: some IPv4 pool has ipipMode Always or CrossSubnet (and no VXLAN mode). */
  readonly ipip: boolean;
  /** vxlan.calico: some IPv4 pool has vxlanMode Always or CrossSubnet. */
  readonly vxlan: boolean;
  /** vxlan-v6.calico: some IPv6 pool has vxlanMode Always or CrossSubnet. */
  readonly vxlanV6: boolean;
}

/**
 * The devices the pools need. Disabled pools count: their blocks still hold pods whose routes
 * go through the tunnel. A pool asking for both IPIP and VXLAN needs only VXLAN (as
 * encapsulationFor decides).
 */
export function tunnelsNeeded(pools: readonly PoolEncap[]): TunnelNeeds {
  let ipip = false;
  let vxlan = false;
  let vxlanV6 = false;
  for (const p of pools) {
    const family = familyOfCidr(p.cidr);
    const vx = (p.vxlanMode ?? 'Never') !== 'Never';
    if (vx) {
      if (family === 4) vxlan = true;
      else vxlanV6 = true;
    } else if (family === 4 && (p.ipipMode ?? 'Never') !== 'Never') ipip = true;
  }
  return { ipip, vxlan, vxlanV6 };
}
