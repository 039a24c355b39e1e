// What the BGP configuration is computed from: a snapshot of the datastore's resources, the
// Kubernetes objects Calico's confd also reads (Secrets for passwords, Services and
// EndpointSlices for service advertisement), and the node's environment.
import type {
  BGPConfiguration,
  BGPFilter,
  BGPPeer,
  BlockAffinity,
  IPPool,
  Node,
  WorkloadEndpoint,
} from '@tabby/datastore';

export interface BgpSnapshot {
  readonly bgpConfigurations: readonly BGPConfiguration[];
  readonly bgpPeers: readonly BGPPeer[];
  readonly bgpFilters: readonly BGPFilter[];
  readonly nodes: readonly Node[];
  readonly ipPools: readonly IPPool[];
  readonly blockAffinities: readonly BlockAffinity[];
  /** Only needed for BGPPeers with localWorkloadSelector (peering with local workloads). */
  readonly workloadEndpoints: readonly WorkloadEndpoint[];
  /**
   * The local workloads that peer over BGP and their BGPPeer, when known from elsewhere (a
   * Calico node's endpoint status files); absent: derived from workloadEndpoints
   * (local-workloads.ts).
   */
  readonly localBgpPeerEndpoints?: readonly LocalBgpPeerEndpoint[];
  readonly kubernetes: KubernetesObjects;
}

export interface KubernetesObjects {
  /** Secrets in the namespace the node runs in, data already base64-decoded. */
  readonly secrets: readonly SecretData[];
  readonly services: readonly ServiceInfo[];
  readonly endpointSlices: readonly EndpointSliceInfo[];
  /** Kubernetes Node labels, where they differ from the Calico Node's (e.g. exclude-from-external-load-balancers). */
  readonly nodeLabels: ReadonlyMap<string, Readonly<Record<string, string>>>;
}

export interface SecretData {
  readonly name: string;
  readonly data: Readonly<Record<string, string>>;
}

/** The parts of a core/v1 Service that route advertisement reads. */
export interface ServiceInfo {
  readonly namespace: string;
  readonly name: string;
  readonly type: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
  readonly clusterIP?: string;
  readonly clusterIPs: readonly string[];
  readonly externalIPs: readonly string[];
  readonly loadBalancerIP?: string;
  readonly loadBalancerIngressIPs: readonly string[];
  readonly externalTrafficPolicy: 'Cluster' | 'Local';
  readonly ipFamilies: readonly ('IPv4' | 'IPv6')[];
}

/** The parts of a discovery/v1 EndpointSlice that route advertisement reads. */
export interface EndpointSliceInfo {
  readonly namespace: string;
  /** The kubernetes.io/service-name label. */
  readonly serviceName: string;
  readonly addressType: 'IPv4' | 'IPv6' | 'FQDN';
  readonly endpoints: readonly { readonly ready?: boolean; readonly nodeName?: string }[];
}

/** The environment variables Calico's confd reads that change the BGP configuration. */
export interface BgpEnvironment {
  /** An IPv4 address, or "hash" (derived from the node name); absent: the node's IPv4 address. */
  readonly CALICO_ROUTER_ID?: string;
  /** Overrides BGPConfiguration serviceClusterIPs with this one CIDR. */
  readonly CALICO_ADVERTISE_CLUSTER_IPS?: string;
}

export const EMPTY_KUBERNETES: KubernetesObjects = {
  secrets: [],
  services: [],
  endpointSlices: [],
  nodeLabels: new Map(),
};

/** A workload on this node that peers with it over BGP (Calico's endpoint status: bgpPeerName). */
export interface LocalBgpPeerEndpoint {
  /** namespace/name of the workload endpoint, for messages. */
  readonly name: string;
  readonly bgpPeerName: string;
  readonly ipv4?: string;
  readonly ipv6?: string;
}
