// What the desired-state function reads: plain, typed values the node daemon assembles from
// the datastore (pools, blocks, endpoints, node addresses) and from the speaker's best paths.
// Addresses and prefixes are text ("10.65.1.0/26", "fd00::7"), as in Calico's resources.

import type { EncapMode } from '@tabby/ipip';

/** Calico's ipipMode / vxlanMode (the decision itself is @tabby/ipip's encapsulationFor). */
export type { EncapMode };

/** The fields of an IPPool that decide routing (Calico's names). */
export interface PoolInput {
  readonly cidr: string;
  /** IPv4 only (Calico refuses it on IPv6 pools). Default Never. */
  readonly ipipMode?: EncapMode;
  /** Default Never. */
  readonly vxlanMode?: EncapMode;
  readonly natOutgoing?: boolean;
  /** A disabled pool gives no new addresses; routes to its existing blocks stay. */
  readonly disabled?: boolean;
}

/** A host interface with its addresses in CIDR form ("192.168.0.11/24"): the local subnets. */
export interface HostInterfaceInput {
  readonly name: string;
  readonly addresses: readonly string[];
}

/** A local workload endpoint: its host-side veth and its addresses (bare or /32, /128). */
export interface EndpointInput {
  /** Host-side interface, e.g. cali1a2b3c4d5e6 (may not exist yet). */
  readonly interfaceName: string;
  readonly addresses: readonly string[];
  /**
   * The pod side's MAC (WorkloadEndpoint.spec.mac), when known: each address then gets a
   * permanent neighbour entry on the host veth (ARP for IPv4 as Felix's static ARP entries,
   * NDP for IPv6), so the node reaches the pod without asking.
   */
  readonly mac?: string;
  /** For problem reports: namespace/pod or the endpoint's name. */
  readonly name?: string;
}

/** One prefix's best path(s) from the routing table: next hops are remote node addresses. */
export interface BestPath {
  readonly prefix: string;
  /** Several for ECMP (a multipath best-path set). */
  readonly nextHops: readonly string[];
}

/** A remote node's VXLAN tunnel endpoint (from its Node resource / VTEP allocation). */
export interface RemoteVtep {
  /** The node's underlay address: the BGP next hop, and the FDB entry's dst. */
  readonly nodeAddress: string;
  /** The VTEP's tunnel address (IPv4 for vxlan.calico, IPv6 for vxlan-v6.calico). */
  readonly tunnelAddress: string;
  readonly mac: string;
}

export interface DesiredOptions {
  /** Routing table (default main, 254). */
  readonly table?: number;
  /** Default tunl0. */
  readonly ipipDevice?: string;
  /** Default vxlan.calico. */
  readonly vxlanDevice?: string;
  /** Default vxlan-v6.calico. */
  readonly vxlanDeviceV6?: string;
}

export interface DataplaneInputs {
  readonly paths: readonly BestPath[];
  readonly endpoints: readonly EndpointInput[];
  /** Blocks affine to this node ("10.65.1.0/26"). */
  readonly affineBlocks: readonly string[];
  readonly pools: readonly PoolInput[];
  readonly hostInterfaces: readonly HostInterfaceInput[];
  readonly vteps?: readonly RemoteVtep[];
  readonly options?: DesiredOptions;
}
