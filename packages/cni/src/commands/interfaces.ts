// What the command handlers need from the outside world, as two interfaces: the kernel
// (Dataplane: veth, addresses, routes, sysctls) and address management (IpamClient). The
// real ones live elsewhere (packages/netlink, ../ipam/datastore-client.ts); the fakes in
// ../fakes/ implement them in memory with fault injection for the tests.
import type { TabbyIpamConf } from '../spec/config.js';
import type { Route } from '../spec/result.js';

/** The pod's IPv4 gateway: host veths answer ARP for it (proxy ARP) with no address. */
export const GATEWAY4 = '169.254.1.1';

export interface PodAddress {
  /** A host address with its full prefix: 10.65.1.7/32 or fd00::7/128. */
  readonly cidr: string;
  readonly family: 4 | 6;
}

export interface VethRequest {
  readonly containerId: string;
  readonly netns: string;
  /** CNI_IFNAME: the name inside the container. */
  readonly ifname: string;
  readonly hostVeth: string;
  readonly mtu: number;
  /** The pod gets an IPv6 address: IPv6 on both ends, and the host end's link-local address. */
  readonly ipv6: boolean;
}

export interface VethCreated {
  readonly hostMac: string;
  readonly containerMac: string;
  /** The host veth's IPv6 link-local address: the pod's IPv6 default gateway ('' without `ipv6`). */
  readonly hostLinkLocal6: string;
}

export interface PodConfig {
  readonly netns: string;
  readonly ifname: string;
  readonly hostVeth: string;
  readonly addresses: readonly PodAddress[];
  /**
   * The pod's routes: the default routes via 169.254.1.1 and via the host veth's link-local
   * address (the result lists exactly these). For IPv4 the dataplane adds
   * `169.254.1.1 dev <ifname> scope link` first so the gateway is reachable.
   */
  readonly routes: readonly Route[];
}

export interface HostConfig {
  readonly hostVeth: string;
  readonly addresses: readonly PodAddress[];
}

export interface InspectRequest extends PodConfig {
  readonly containerId: string;
  readonly mtu: number;
}

export interface Inspection {
  readonly netnsExists: boolean;
  readonly hostVethExists: boolean;
  /** Each one names what differs: `route 0.0.0.0/0 via 169.254.1.1 missing in the pod`. */
  readonly problems: readonly string[];
}

/** CNI_NETNS does not exist (ADD, CHECK). */
export class NetnsNotFoundError extends Error {
  override readonly name = 'NetnsNotFoundError';
  constructor(readonly netns: string) {
    super(`network namespace ${netns} does not exist`);
  }
}

/** An interface of the requested name exists already (pod side: CNI_IFNAME; host side: the veth). */
export class InterfaceExistsError extends Error {
  override readonly name = 'InterfaceExistsError';
  constructor(
    readonly ifname: string,
    readonly where: 'pod' | 'host',
  ) {
    super(`interface ${ifname} already exists ${where === 'pod' ? 'in the container' : 'on the host'}`);
  }
}

/**
 * The kernel side of one pod attachment. Every method is one step of ADD that rollback can
 * undo by `removeVeth`: deleting the veth takes its addresses and routes (both ends) with it.
 */
export interface Dataplane {
  /**
   * Creates the veth pair, the host end named `hostVeth` (up, in the host namespace), the
   * other end moved into `netns` as `ifname`. Throws NetnsNotFoundError, or
   * InterfaceExistsError when either name is taken.
   */
  createVeth(req: VethRequest): Promise<VethCreated>;
  /**
   * In the pod: the addresses (full-length prefixes), `169.254.1.1 dev <ifname> scope link`
   * when there is an IPv4 address, then `routes`.
   */
  configurePod(req: PodConfig): Promise<void>;
  /**
   * On the host: the sysctls felix-lite expects on the veth (proxy_arp, forwarding,
   * IPv6 proxy_ndp) and one host route per address (`10.65.1.7 dev caliXXX scope link`).
   */
  configureHost(req: HostConfig): Promise<void>;
  /**
   * Removes the pair (deleting either end deletes both) and the host routes. Idempotent:
   * 'absent' when neither end exists, when `netns` is empty or gone.
   */
  removeVeth(req: {
    readonly hostVeth: string;
    readonly netns: string;
    readonly ifname: string;
  }): Promise<'removed' | 'absent'>;
  /** Compares the kernel with what ADD made (CHECK). */
  inspect(req: InspectRequest): Promise<Inspection>;
}

/** Allocation attributes Calico stores with an address (namespace, pod, timestamp, ...). */
export type IpamAttrs = Readonly<Record<string, string>>;

export interface IpamRequest {
  /** `<network>.<containerID>`. */
  readonly handle: string;
  readonly network: string;
  readonly containerId: string;
  readonly ifname: string;
  readonly node: string;
  readonly attrs: IpamAttrs;
  /** Kubernetes namespace of the pod, for IPPool namespaceSelector. */
  readonly namespace?: string;
  /** Addresses asked for by name (CNI_ARGS `IP`): these, not one per family from the pools. */
  readonly ips?: readonly string[];
  /**
   * The pod namespace's labels, for IPPool namespaceSelector: called only when a pool that
   * could serve the request has one, with those pools' names (`prod (10.1.0.0/16)`).
   */
  readonly namespaceLabels?: (pools: readonly string[]) => Promise<NamespaceLabels>;
}

export type NamespaceLabels = Readonly<Record<string, string>>;

/**
 * Reads a Kubernetes Namespace's labels from the API server a kubeconfig names. Errors are
 * CniErrors: 11 while the API server is unreachable, 102 otherwise (no such namespace, RBAC).
 */
export type NamespaceReader = (kubeconfig: string, namespace: string) => Promise<NamespaceLabels>;

export interface IpamAllocation {
  /** Addresses in CIDR notation with their full prefix: 10.65.1.7/32. */
  readonly addresses: readonly string[];
}

export type IpamStatus =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: 50 | 51 | 11; readonly msg: string; readonly details: string };

/** One IP pool's room, from the IPAM's utilization (STATUS). */
export interface PoolRoom {
  readonly name: string;
  readonly cidr: string;
  readonly disabled: boolean;
  readonly capacity: number;
  readonly inUse: number;
  readonly free: number;
}

/**
 * One IPAM assignment for a handle, decided from the request and the config, as both ways
 * of doing the datastore work take it: in this process (../ipam/operations.ts), or the node
 * daemon's CNI service over its socket (../node-api/). `auto`: Calico's AutoAssign, one
 * address per family asked for; `explicit`: Calico's AssignIP, the given addresses. Either
 * way all or nothing.
 */
export type Assignment =
  | (AssignmentOf & {
      readonly kind: 'auto';
      readonly num4: number;
      readonly num6: number;
      /** Pool CIDRs to use instead of the pools' selectors (ipv4_pools, ipv6_pools); empty: selectors. */
      readonly pools: readonly string[];
    })
  | (AssignmentOf & { readonly kind: 'explicit'; readonly ips: readonly string[] });

export interface AssignmentOf {
  /** `<network>.<containerID>`. */
  readonly handle: string;
  readonly node: string;
  readonly attrs: IpamAttrs;
}

/** The node daemon's readiness (NodeDaemon.ready(): Calico's, BGP peers and the datastore). */
export interface NodeReadiness {
  readonly ready: boolean;
  readonly reason: string;
}

/** Tabby's own IPAM as the plugin sees it. Errors: typed (see ../ipam/datastore-client.ts). */
export interface IpamClient {
  /** All addresses for the handle, or nothing (all-or-nothing, like the datastore's Ipam). */
  allocate(req: IpamRequest): Promise<IpamAllocation>;
  /** Releases everything the handle holds. Idempotent: an unknown handle is no error. */
  release(handle: string): Promise<void>;
  /** The addresses (full-prefix CIDRs) the handle holds now; empty when unknown. */
  addresses(handle: string): Promise<readonly string[]>;
  /** Every handle of `network` (`<network>.` prefix). */
  listHandles(network: string): Promise<readonly string[]>;
  /** Whether an ADD could get an address now (datastore reachable, pools not exhausted). */
  status(): Promise<IpamStatus>;
  close(): Promise<void>;
}

/**
 * Runs another plugin (a delegated IPAM such as host-local) from CNI_PATH with the same
 * environment but CNI_COMMAND, and `stdin`. Resolves with its stdout on exit 0; rejects with
 * the plugin's CniError (its own code) when it printed one, or a CniError 107 otherwise.
 */
export type PluginExec = (type: string, command: string, stdin: string) => Promise<string>;

/** Which WorkloadEndpoint: Calico's name (see ../spec/names.ts) in the pod's namespace. */
export interface EndpointKey {
  readonly namespace: string;
  readonly name: string;
}

/** A WorkloadEndpoint as the plugin writes it (libcalico-go v3 WorkloadEndpointSpec fields). */
export interface WorkloadEndpointDoc extends EndpointKey {
  readonly labels: Readonly<Record<string, string>>;
  readonly spec: {
    readonly orchestrator: 'k8s' | 'cni';
    readonly node: string;
    readonly containerID: string;
    /** Kubernetes pods: the pod's name; otherwise `workload` holds the container ID. */
    readonly pod?: string;
    readonly workload?: string;
    /** CNI_IFNAME. */
    readonly endpoint: string;
    /** The host veth. */
    readonly interfaceName: string;
    /** The pod's addresses, /32 and /128. */
    readonly ipNetworks: readonly string[];
    /** The pod interface's MAC. */
    readonly mac: string;
  };
}

/** An endpoint found on this node (GC). */
export interface StoredEndpoint extends EndpointKey {
  readonly containerID: string;
  readonly endpoint: string;
}

/** The WorkloadEndpoints of the datastore. Errors: typed (see ../ipam/datastore-client.ts). */
export interface EndpointStore {
  /** Writes the endpoint: creates it, or replaces one of the same name (ADD retried). */
  put(wep: WorkloadEndpointDoc): Promise<void>;
  /** The stored endpoint of that key, or undefined (CHECK). */
  get(key: EndpointKey): Promise<WorkloadEndpointDoc | undefined>;
  /** Deletes it; an absent one is no error. */
  delete(key: EndpointKey): Promise<'deleted' | 'absent'>;
  /** The endpoints of `node` that network `network` wrote (its label). */
  list(node: string, network: string): Promise<readonly StoredEndpoint[]>;
}

/**
 * One invocation's datastore: a single backend connection that both Tabby's IPAM and the
 * WorkloadEndpoints use, opened at most once per invocation and closed at its end.
 */
export interface DatastoreSession {
  /** Tabby's IPAM over this session's backend; closing it leaves the session open. */
  ipam(conf: TabbyIpamConf): IpamClient;
  readonly endpoints: EndpointStore;
  close(): Promise<void>;
}

/**
 * The same work done by the node daemon (tabby-node) over its local socket, one connection
 * per invocation (../node-api/client.ts): opened only when the daemon answers.
 */
export interface NodeSession extends DatastoreSession {
  /** The daemon's socket, for messages. */
  readonly socket: string;
  /** Whether the node daemon is ready (STATUS). */
  ready(): Promise<NodeReadiness>;
}
