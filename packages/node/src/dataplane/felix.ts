// The node daemon's dataplane: felix-lite and ipip on the kernel (the host, or a network
// namespace for tests and the lab). Each view from the daemon becomes felix-lite's desired
// state (routes, neighbour entries, NAT-outgoing), the tunnel plan (tunl0, vxlan.calico,
// vxlan-v6.calico from the pools and this Node's tunnel addresses), the workload veths'
// sysctls and the pod MTU file; the reconcilers keep the kernel equal to them and repair drift.
import type { IpVersion } from '@tabby/felix-lite';
import {
  computeDesired,
  describeRoute,
  EndpointSysctls,
  ExecNft,
  NatReconciler,
  NeighbourReconciler,
  NetlinkKernel,
  NetlinkNeighbourKernel,
  netlinkSysctls,
  RouteReconciler,
  routeKeyId,
} from '@tabby/felix-lite';
import type { HostInterfaceInput, Route } from '@tabby/felix-lite';
import {
  desiredTunnels,
  detectHostMtu,
  FALLBACK_HOST_MTU,
  NetlinkTunnelKernel,
  podMtu,
  TunnelManager,
  tunnelMtus,
  tunnelsNeeded,
  writeMtuFile,
} from '@tabby/ipip';
import { RtnlClient, TABBY_ROUTE_PROTOCOL } from '@tabby/netlink';
import type { Registry } from 'prom-client';
import type { Dataplane, DataplaneView } from '../daemon/node-daemon.js';
import type { ProgrammedRoute } from '../daemon/server.js';
import { dataplaneInputs } from './inputs.js';

export interface FelixDataplaneOptions {
  /** A network namespace (its path or name under /run/netns); absent: the host's. */
  readonly netns?: string;
  /** Where the pod MTU goes for the CNI plugin (absent: ipip's default, /var/lib/tabby/mtu; null: not written). */
  readonly mtuFile?: string | null;
  /** NAT-outgoing through nftables (default true; needs the nft binary). */
  readonly nat?: boolean;
  readonly registry?: Registry;
  readonly log?: (
    level: 'info' | 'warn' | 'error',
    msg: string,
    fields?: Readonly<Record<string, unknown>>,
  ) => void;
}

export class FelixDataplane implements Dataplane {
  private readonly client: RtnlClient;
  private readonly routeKernel: NetlinkKernel;
  private readonly neighbourKernel: NetlinkNeighbourKernel;
  private readonly tunnelKernel: NetlinkTunnelKernel;
  private readonly routes: RouteReconciler;
  private readonly neighbours: NeighbourReconciler;
  private readonly tunnels: TunnelManager;
  private readonly sysctls: EndpointSysctls;
  private readonly nat: NatReconciler | undefined;
  private last: { readonly routes: readonly Route[]; readonly problems: readonly ProgrammedRoute[] } = {
    routes: [],
    problems: [],
  };
  /** Routes the last reconcile pass left waiting (their device missing or down), by key. */
  private waiting = new Map<string, string>();
  private started = false;
  /** The last failure to write the MTU file (logged once). */
  private mtuFileError: string | undefined;

  constructor(private readonly opts: FelixDataplaneOptions = {}) {
    const ns = opts.netns !== undefined ? { netns: opts.netns } : {};
    const metrics = opts.registry !== undefined ? { registry: opts.registry } : {};
    this.client = RtnlClient.open(ns);
    this.routeKernel = new NetlinkKernel(ns);
    this.neighbourKernel = new NetlinkNeighbourKernel(ns);
    this.tunnelKernel = new NetlinkTunnelKernel(ns);
    this.routes = new RouteReconciler({ kernel: this.routeKernel, ...metrics });
    this.neighbours = new NeighbourReconciler({ kernel: this.neighbourKernel, ...metrics });
    this.tunnels = new TunnelManager({ kernel: this.tunnelKernel });
    this.sysctls = new EndpointSysctls({ kernel: this.routeKernel, sysctl: netlinkSysctls(opts.netns) });
    this.routes.onPass((r) => {
      if (r instanceof Error) return;
      this.waiting = new Map(r.waiting.map((w) => [w.key as string, `waiting for ${w.dev} (${w.reason})`]));
    });
    if (opts.nat !== false) this.nat = new NatReconciler({ nft: new ExecNft(ns), ...metrics });
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.tunnels.start();
    this.routes.start();
    this.neighbours.start();
    this.sysctls.start();
    this.nat?.start();
  }

  async update(view: DataplaneView): Promise<void> {
    const [links, addresses, kernelRoutes] = await Promise.all([
      this.client.links(),
      this.client.addresses(),
      this.client.routes(),
    ]);
    const names = new Map(links.map((l) => [l.index, l.name]));
    const byIf = new Map<string, string[]>();
    for (const a of addresses) {
      const n = names.get(a.index);
      if (n === undefined || n === 'lo') continue;
      byIf.set(n, [...(byIf.get(n) ?? []), `${a.address}/${a.prefixLen}`]);
    }
    const hostInterfaces: HostInterfaceInput[] = [...byIf].map(([name, addrs]) => ({
      name,
      addresses: addrs,
    }));
    const inputs = dataplaneInputs(view, hostInterfaces);
    const desired = computeDesired(inputs);

    // Tunnels, from the pools and this Node's tunnel addresses; the pod MTU for the CNI plugin.
    const self = view.snapshot.nodes.find((n) => n.metadata.name === view.config.node);
    const nodeAddresses = [self?.spec.bgp?.ipv4Address, self?.spec.bgp?.ipv6Address].filter(
      (a): a is string => a !== undefined,
    );
    const hostMtu =
      detectHostMtu({ links, routes: kernelRoutes, addresses, nodeAddresses })?.mtu ?? FALLBACK_HOST_MTU;
    const encaps = inputs.pools.map((p) => ({
      cidr: p.cidr,
      ipipMode: p.ipipMode ?? 'Never',
      vxlanMode: p.vxlanMode ?? 'Never',
    }));
    this.tunnels.setPlan(
      desiredTunnels({
        nodeName: view.config.node,
        ...(self?.spec.bgp?.ipv4Address !== undefined ? { nodeAddress: self.spec.bgp.ipv4Address } : {}),
        ...(self?.spec.bgp?.ipv6Address !== undefined ? { nodeAddressV6: self.spec.bgp.ipv6Address } : {}),
        pools: encaps,
        ...(self?.spec.bgp?.ipv4IPIPTunnelAddr !== undefined
          ? { ipipTunnelAddress: self.spec.bgp.ipv4IPIPTunnelAddr }
          : {}),
        ...(self?.spec.ipv4VXLANTunnelAddr !== undefined
          ? { vxlanTunnelAddress: self.spec.ipv4VXLANTunnelAddr }
          : {}),
        ...(self?.spec.vxlanTunnelMACAddr !== undefined ? { vxlanMac: self.spec.vxlanTunnelMACAddr } : {}),
        ...(self?.spec.ipv6VXLANTunnelAddr !== undefined
          ? { vxlanTunnelAddressV6: self.spec.ipv6VXLANTunnelAddr }
          : {}),
        ...(self?.spec.vxlanTunnelMACAddrV6 !== undefined
          ? { vxlanMacV6: self.spec.vxlanTunnelMACAddrV6 }
          : {}),
        hostMtu,
      }),
    );
    if (this.opts.mtuFile !== null) {
      // A file that cannot be written (a read-only root) costs the CNI plugin its MTU, not the
      // routes: said once per distinct error, and the rest of the pass goes on.
      try {
        writeMtuFile(podMtu(hostMtu, tunnelsNeeded(encaps), tunnelMtus(hostMtu)), this.opts.mtuFile);
        this.mtuFileError = undefined;
      } catch (e) {
        const why = (e as Error).message;
        if (why !== this.mtuFileError)
          this.opts.log?.('error', `cannot write the pod MTU file: ${why}`, {
            file: this.opts.mtuFile ?? 'default',
          });
        this.mtuFileError = why;
      }
    }

    this.routes.setDesired(desired.routes);
    this.neighbours.setDesired(desired.neighbours);
    this.nat?.setDesired(desired.nat);
    const families = new Map<string, IpVersion[]>();
    for (const e of inputs.endpoints)
      families.set(e.interfaceName, [
        ...new Set(e.addresses.map((a): IpVersion => (a.includes(':') ? 6 : 4))),
      ]);
    void this.sysctls
      .setEndpoints(families)
      .catch((e: unknown) => this.opts.log?.('warn', `endpoint sysctls: ${(e as Error).message}`));
    // One line per decision: routes newly programmed or removed (a summary past 50 at once),
    // and every route refused, with why.
    const was = new Set(this.last.routes.map((r) => describeRoute(r)));
    const now = new Set(desired.routes.map((r) => describeRoute(r)));
    const added = [...now].filter((r) => !was.has(r));
    const removed = [...was].filter((r) => !now.has(r));
    if (added.length + removed.length > 50)
      this.opts.log?.('info', 'routes programmed', { added: added.length, removed: removed.length });
    else {
      for (const route of added) this.opts.log?.('info', 'route programmed', { route });
      for (const route of removed) this.opts.log?.('info', 'route removed', { route });
    }
    const refusedBefore = new Set(this.last.problems.map((p) => `${p.prefix} ${p.detail}`));
    for (const p of desired.problems)
      if (!refusedBefore.has(`${p.subject} ${p.message}`))
        this.opts.log?.('warn', 'route refused', { subject: p.subject, kind: p.kind, why: p.message });
    this.last = {
      routes: desired.routes,
      problems: desired.problems.map((p) => ({
        prefix: p.subject,
        state: 'refused' as const,
        detail: p.message,
      })),
    };
    this.start();
    // Resolves once the kernel has it (the programming-latency metric).
    await this.routes.apply();
  }

  /**
   * The routes an earlier run left in the kernel that lead to other nodes (ours, protocol 84,
   * through a gateway): the daemon keeps them while BGP comes back after a restart, so the
   * first pass does not remove what peers are about to send again.
   */
  async adopt(): Promise<ReadonlyMap<string, readonly string[]>> {
    const out = new Map<string, string[]>();
    for (const r of await this.client.routes({ protocol: TABBY_ROUTE_PROTOCOL, table: 254 })) {
      if (r.type !== 'unicast') continue;
      const hops = r.nexthops.map((h) => h.gateway).filter((g): g is string => g !== undefined);
      if (hops.length > 0) out.set(`${r.dst}/${r.dstLen}`, hops);
    }
    return out;
  }

  /** For `tabby routes`: what was asked of the kernel, and what could not be. */
  programmed(): ProgrammedRoute[] {
    return [
      ...this.last.routes.map((r): ProgrammedRoute => {
        const wait = this.waiting.get(routeKeyId(r));
        return {
          prefix: `${r.dst}/${r.dstLen}`,
          state: wait === undefined ? 'programmed' : 'pending',
          detail: wait === undefined ? describeRoute(r) : `${describeRoute(r)}: ${wait}`,
        };
      }),
      ...this.last.problems,
    ];
  }

  /** Stops reconciling; the kernel keeps what it has (a restart adopts it). */
  async stop(): Promise<void> {
    this.sysctls.stop();
    await Promise.all([this.tunnels.stop(), this.routes.stop(), this.neighbours.stop(), this.nat?.stop()]);
    this.tunnelKernel.close();
    this.routeKernel.close();
    this.neighbourKernel.close();
    this.client.close();
  }
}
