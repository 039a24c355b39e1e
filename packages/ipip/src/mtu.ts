// MTUs: the host's, detected from its interfaces; the tunnels' (host MTU minus the
// encapsulation's overhead, unless configured); and the pods' (the smallest MTU among the
// tunnels the pools use, else the host's), written to a file the CNI plugin reads when its
// network config gives no MTU (mtu-file.ts).
import type { AddressInfo, LinkInfo, RouteInfo } from '@tabby/netlink/codec';
import { RT_TABLE_MAIN } from '@tabby/netlink/codec';
import type { TunnelNeeds } from './encap.js';
import { bareIp } from './ip.js';
import { checkMtu } from './mtu-file.js';

/** Bytes each encapsulation adds (Calico's felix: ipipMTUOverhead, vxlanMTUOverhead...). */
export const IPIP_OVERHEAD = 20;
export const VXLAN_OVERHEAD = 50;
export const VXLAN_V6_OVERHEAD = 70;

/** The host MTU when no interface qualifies: the smallest among common clouds (as Calico). */
export const FALLBACK_HOST_MTU = 1460;

export interface HostMtuInputs {
  readonly links: readonly Pick<LinkInfo, 'index' | 'name' | 'mtu'>[];
  /** Routes of the main table (any family); default routes (/0) name the uplinks. */
  readonly routes: readonly RouteInfo[];
  readonly addresses: readonly Pick<AddressInfo, 'index' | 'address'>[];
  /** This node's addresses (Node.spec.bgp.ipv4Address / ipv6Address, with or without a prefix). */
  readonly nodeAddresses: readonly string[];
}

export interface HostMtu {
  readonly mtu: number;
  /** The interfaces considered, sorted: those with a default route or a node address. */
  readonly interfaces: readonly string[];
}

/**
 * The smallest MTU among the interfaces that carry the node's traffic: those a default route
 * goes out of (IPv4 or IPv6, every ECMP next hop) and those holding a node address. Undefined
 * when none is found (no default route and the node address on no interface).
 */
export function detectHostMtu(inputs: HostMtuInputs): HostMtu | undefined {
  const indexes = new Set<number>();
  for (const r of inputs.routes)
    if (r.dstLen === 0 && r.table === RT_TABLE_MAIN && r.type === 'unicast')
      for (const nh of r.nexthops) if (nh.oif !== undefined) indexes.add(nh.oif);
  const node = new Set<string>();
  for (const a of inputs.nodeAddresses) node.add(bareIp(a));
  for (const a of inputs.addresses) if (node.has(a.address)) indexes.add(a.index);
  let mtu: number | undefined;
  const names: string[] = [];
  for (const l of inputs.links) {
    if (!indexes.has(l.index) || l.mtu === undefined) continue;
    names.push(l.name);
    if (mtu === undefined || l.mtu < mtu) mtu = l.mtu;
  }
  return mtu === undefined ? undefined : { mtu, interfaces: names.sort() };
}

/** Configured tunnel MTUs (FelixConfiguration's ipipMTU, vxlanMTU, vxlanMTUV6); 0 or omitted: derived. */
export interface MtuConfig {
  readonly ipipMtu?: number;
  readonly vxlanMtu?: number;
  readonly vxlanMtuV6?: number;
}

export interface TunnelMtus {
  readonly ipip: number;
  readonly vxlan: number;
  readonly vxlanV6: number;
}

/** Each tunnel's MTU: as configured, else the host MTU less the encapsulation's overhead. */
export function tunnelMtus(hostMtu: number, config: MtuConfig = {}): TunnelMtus {
  checkMtu('host MTU', hostMtu);
  const pick = (what: string, configured: number | undefined, overhead: number): number =>
    configured !== undefined && configured !== 0
      ? checkMtu(what, configured)
      : checkMtu(what, hostMtu - overhead);
  return {
    ipip: pick('IPIP MTU', config.ipipMtu, IPIP_OVERHEAD),
    vxlan: pick('VXLAN MTU', config.vxlanMtu, VXLAN_OVERHEAD),
    vxlanV6: pick('VXLAN IPv6 MTU', config.vxlanMtuV6, VXLAN_V6_OVERHEAD),
  };
}

/**
 * The MTU for pod interfaces: the smallest among the tunnels the pools use (a pod's packet
 * may leave through any of them), the host MTU when none is used (Calico's determinePodMTU).
 */
export function podMtu(hostMtu: number, needs: TunnelNeeds, mtus: TunnelMtus): number {
  let mtu: number | undefined;
  const consider = (enabled: boolean, m: number): void => {
    if (enabled && (mtu === undefined || m < mtu)) mtu = m;
  };
  consider(needs.ipip, mtus.ipip);
  consider(needs.vxlan, mtus.vxlan);
  consider(needs.vxlanV6, mtus.vxlanV6);
  return mtu ?? hostMtu;
}
