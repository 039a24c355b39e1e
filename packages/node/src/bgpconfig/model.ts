// The node's effective BGP configuration: what `computeBgpConfig` returns, what the node
// daemon applies, and what `tabby render` prints (-o json is this object, stable; -o bird
// writes it as the BIRD 2 files Calico's confd templates would write).
//
// The shape follows what Calico's templates read (confd/etc/calico/confd/templates/*.template
// at v3.31.7), in typed form: per family, the peers with every session knob, the BGPFilter
// functions, and the exports (affine blocks, pools, service routes, communities).

export type Family = 4 | 6;

/** How a peering came about, as `calicoctl node status` names it. */
export type PeerType = 'node-to-node mesh' | 'global' | 'node specific' | 'local workload';

/** One BGP session this node should run. */
export interface PeerConfig {
  /** Calico's BIRD protocol name: Mesh_10_0_0_1, Global_10_0_0_1_port_179, Node_..., Local_Workload_... */
  readonly name: string;
  readonly type: PeerType;
  /** The BGPPeer this came from ('' for the mesh). */
  readonly source: string;
  readonly address: string;
  /** Absent: the BGP port (179). */
  readonly port?: number;
  readonly asNumber: number;
  /** The AS this node speaks as on this session (BGPPeer localASNumber, else the node's AS). */
  readonly localAsNumber: number;
  /** Whether localAsNumber was set by the BGPPeer (BIRD `local as` inside the protocol). */
  readonly localAsOverride: boolean;
  /** asNumber equals localAsNumber: iBGP (Calico's calico_export_to_bgp_peers(true)). */
  readonly internal: boolean;
  /** Wait for the peer to connect (the mesh and node peers: the side with the higher address). */
  readonly passive: boolean;
  /** Source the session from this address (the node's address); absent: the kernel chooses. */
  readonly sourceAddress?: string;
  /** eBGP multihop / GTSM: ttlSecurity hops (RFC 5082) or plain multihop. Absent for the mesh. */
  readonly multihop?: { readonly ttlSecurity?: number };
  /** Route reflection: this node reflects to the peer as a client, with this cluster ID. */
  readonly rrClient?: { readonly clusterId: string };
  /** Set means a password is configured; the value is redacted unless asked for. */
  readonly password?: string;
  readonly nextHop: 'auto' | 'self' | 'keep';
  /** Graceful restart time in seconds (maxRestartTime / nodeMeshMaxRestartTime). */
  readonly gracefulRestartTime?: number;
  /** allowas-in count (numAllowedLocalASNumbers). */
  readonly allowLocalAs?: number;
  /** keepaliveTime in seconds (hold time is three times it); absent: the default. */
  readonly keepaliveTime?: number;
  /** RFC 7911 ADD-PATH: Calico's template turns it on (send and receive) for every session. */
  readonly addPath: 'both';
  /** A static /32 or /128 route to the peer through this gateway (reachableBy). */
  readonly reachableBy?: string;
  /** BGPFilter names whose rules for this family run on import, in order, before accept. */
  readonly importFilters: readonly string[];
  /** BGPFilter names whose rules for this family run on export, in order, before the Calico export. */
  readonly exportFilters: readonly string[];
  /** The Calico v1 key this peering is stored under (the BIRD comment "For peer ..."). */
  readonly key: string;
}

export type FilterAction = 'accept' | 'reject';
export type MatchOperator = 'Equal' | 'NotEqual' | 'In' | 'NotIn';

/** One BGPFilter rule, as Calico turns it into a BIRD statement. */
export interface FilterRuleConfig {
  readonly action: FilterAction;
  readonly cidr?: string;
  readonly operator?: MatchOperator;
  /** Prefix lengths matched, when prefixLength was given: [min, max]. */
  readonly prefixLength?: readonly [number, number];
  readonly source?: 'RemotePeers';
  readonly interface?: string;
}

export interface FilterConfig {
  /** The BGPFilter's name. */
  readonly filter: string;
  readonly direction: 'import' | 'export';
  /** The BIRD function Calico names for it (bgp_<name>_importFilterV4, hashed past 64 chars). */
  readonly functionName: string;
  readonly rules: readonly FilterRuleConfig[];
}

export interface BlockExport {
  readonly cidr: string;
  /** BlockAffinity state; undefined: implicitly confirmed (Calico's etcd data without a state). */
  readonly state?: 'pending' | 'confirmed' | 'pendingDeletion';
}

export interface PoolExport {
  readonly cidr: string;
  readonly ipipMode: 'Never' | 'Always' | 'CrossSubnet';
  readonly vxlanMode: 'Never' | 'Always' | 'CrossSubnet';
  readonly disableBGPExport: boolean;
}

export interface PrefixAdvertisement {
  readonly cidr: string;
  /** Community values, standard "a:b" or large "a:b:c", sorted. */
  readonly communities: readonly string[];
}

export interface FamilyExports {
  /** This node's affine blocks: blackholed, exported as one aggregate when confirmed, nothing beneath. */
  readonly blocks: readonly BlockExport[];
  /** Every pool of the family: routes inside are exported unless disableBGPExport. */
  readonly pools: readonly PoolExport[];
  /** Service CIDRs and addresses this node advertises (cluster, external, LoadBalancer IPs). */
  readonly serviceRoutes: readonly string[];
  /** Service ranges learned routes must not be programmed into the kernel for. */
  readonly kernelRejects: readonly string[];
  /** LoadBalancer ranges a route reflector passes on (routes within are accepted for export). */
  readonly reflectedLoadBalancerCidrs: readonly string[];
  readonly prefixAdvertisements: readonly PrefixAdvertisement[];
}

export interface FamilyConfig {
  readonly family: Family;
  /** This node's address of the family; absent: the family is disabled on this node. */
  readonly nodeAddress?: string;
  /** The subnet of that address (Node.spec.bgp.ipv4Address's prefix), for IPIP CrossSubnet. */
  readonly nodeNetwork?: string;
  /** Listen on the node address only (bindMode NodeIP). */
  readonly listenAddress?: string;
  readonly peers: readonly PeerConfig[];
  /** BGPFilter functions of the family, every filter (used or not), in name order. */
  readonly filters: readonly FilterConfig[];
  readonly exports: FamilyExports;
  /** Why a peer was left out (ourselves, a reflector, an unknown filter...). */
  readonly skipped: readonly { readonly key: string; readonly reason: string }[];
}

export interface BgpConfig {
  readonly node: string;
  readonly routerId: string;
  readonly asNumber: number;
  /** Absent: 179. */
  readonly listenPort?: number;
  /** This node is a route reflector with this cluster ID (it leaves the mesh). */
  readonly routeReflectorClusterId?: string;
  readonly meshEnabled: boolean;
  /** BGP log level: Calico's logSeverityScreen reduced to what BIRD has. */
  readonly logLevel: 'debug' | 'info' | 'none';
  /** Interfaces whose addresses are not exported (BGPConfiguration ignoredInterfaces). */
  readonly ignoredInterfaces: readonly string[];
  readonly ipv4: FamilyConfig;
  readonly ipv6: FamilyConfig;
  /** Problems found on the way: a missing Secret, a malformed field; none stops the rest. */
  readonly warnings: readonly string[];
}
