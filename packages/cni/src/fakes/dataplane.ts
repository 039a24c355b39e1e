// An in-memory Dataplane that behaves as the kernel does where the plugin can tell: network
// namespaces that can vanish (taking their end of a veth, and so the pair, with them),
// interface names that collide, addresses and routes per side. Faults: `fail(op)` makes the
// next call(s) of an operation throw before touching anything.
import type {
  Dataplane,
  HostConfig,
  InspectRequest,
  Inspection,
  PodConfig,
  VethCreated,
  VethRequest,
} from '../commands/interfaces.js';
import { GATEWAY4, InterfaceExistsError, NetnsNotFoundError } from '../commands/interfaces.js';
import type { Route } from '../spec/result.js';

export type DataplaneOp = 'createVeth' | 'configurePod' | 'configureHost' | 'removeVeth' | 'inspect';

export interface FakePodLink {
  readonly mac: string;
  mtu: number;
  readonly hostVeth: string;
  readonly addresses: Set<string>;
  /** `dst via gw`, or `dst scope link`. */
  readonly routes: Set<string>;
}

export interface FakeHostVeth {
  readonly mac: string;
  readonly netns: string;
  readonly ifname: string;
  readonly sysctls: Map<string, string>;
  /** Host routes through this veth: `10.65.1.7/32`. */
  readonly routes: Set<string>;
}

export const HOST_SYSCTLS: ReadonlyMap<string, string> = new Map([
  ['net.ipv4.conf.<veth>.proxy_arp', '1'],
  ['net.ipv4.conf.<veth>.forwarding', '1'],
  ['net.ipv4.neigh.<veth>.proxy_delay', '0'],
  ['net.ipv6.conf.<veth>.proxy_ndp', '1'],
  ['net.ipv6.conf.<veth>.forwarding', '1'],
]);

/** Calico's host veth MAC, and so its IPv6 link-local address. */
export const HOST_MAC = 'ee:ee:ee:ee:ee:ee';
export const HOST_LINK_LOCAL6 = 'fe80::ecee:eeff:feee:eeee';

export const routeText = (r: Route): string =>
  r.gw === undefined ? `${r.dst} scope link` : `${r.dst} via ${r.gw}`;

export class FakeDataplane implements Dataplane {
  /** netns path -> its links by name. */
  readonly netns = new Map<string, Map<string, FakePodLink>>();
  readonly hostVeths = new Map<string, FakeHostVeth>();
  /** Every call, in order: `createVeth caliXXX`. */
  readonly calls: string[] = [];
  private readonly faults = new Map<DataplaneOp, { err: Error; times: number }>();
  private macs = 0;

  addNetns(path: string): this {
    this.netns.set(path, new Map());
    return this;
  }

  /** The runtime deleting the namespace: its veth ends go, and so their host peers. */
  deleteNetns(path: string): void {
    const links = this.netns.get(path);
    this.netns.delete(path);
    for (const l of links?.values() ?? []) this.hostVeths.delete(l.hostVeth);
  }

  /** The next `times` calls of `op` throw `err`. */
  fail(op: DataplaneOp, err: Error = new Error(`injected ${op} failure`), times = 1): this {
    this.faults.set(op, { err, times });
    return this;
  }

  private enter(op: DataplaneOp, what: string): void {
    this.calls.push(`${op} ${what}`);
    const f = this.faults.get(op);
    if (f === undefined) return;
    if (--f.times <= 0) this.faults.delete(op);
    throw f.err;
  }

  private mac(): string {
    const n = ++this.macs;
    return `02:00:00:00:${((n >> 8) & 0xff).toString(16).padStart(2, '0')}:${(n & 0xff).toString(16).padStart(2, '0')}`;
  }

  podLink(netns: string, ifname: string): FakePodLink | undefined {
    return this.netns.get(netns)?.get(ifname);
  }

  createVeth(req: VethRequest): Promise<VethCreated> {
    this.enter('createVeth', req.hostVeth);
    const ns = this.netns.get(req.netns);
    if (ns === undefined) return Promise.reject(new NetnsNotFoundError(req.netns));
    if (ns.has(req.ifname)) return Promise.reject(new InterfaceExistsError(req.ifname, 'pod'));
    if (this.hostVeths.has(req.hostVeth))
      return Promise.reject(new InterfaceExistsError(req.hostVeth, 'host'));
    const containerMac = this.mac();
    ns.set(req.ifname, {
      mac: containerMac,
      mtu: req.mtu,
      hostVeth: req.hostVeth,
      addresses: new Set(),
      routes: new Set(),
    });
    this.hostVeths.set(req.hostVeth, {
      mac: HOST_MAC,
      netns: req.netns,
      ifname: req.ifname,
      sysctls: new Map(),
      routes: new Set(),
    });
    return Promise.resolve({ hostMac: HOST_MAC, containerMac, hostLinkLocal6: HOST_LINK_LOCAL6 });
  }

  configurePod(req: PodConfig): Promise<void> {
    this.enter('configurePod', req.hostVeth);
    const link = this.podLink(req.netns, req.ifname);
    if (link === undefined)
      return Promise.reject(
        this.netns.has(req.netns)
          ? new Error(`link ${req.ifname} not found in ${req.netns}`)
          : new NetnsNotFoundError(req.netns),
      );
    for (const a of req.addresses) link.addresses.add(a.cidr);
    if (req.addresses.some((a) => a.family === 4)) link.routes.add(`${GATEWAY4}/32 scope link`);
    for (const r of req.routes) link.routes.add(routeText(r));
    return Promise.resolve();
  }

  configureHost(req: HostConfig): Promise<void> {
    this.enter('configureHost', req.hostVeth);
    const v = this.hostVeths.get(req.hostVeth);
    if (v === undefined) return Promise.reject(new Error(`link ${req.hostVeth} not found`));
    for (const [k, val] of HOST_SYSCTLS) v.sysctls.set(k.replace('<veth>', req.hostVeth), val);
    for (const a of req.addresses) v.routes.add(a.cidr);
    return Promise.resolve();
  }

  removeVeth(req: { hostVeth: string; netns: string; ifname: string }): Promise<'removed' | 'absent'> {
    this.enter('removeVeth', req.hostVeth);
    const host = this.hostVeths.get(req.hostVeth);
    if (host === undefined) return Promise.resolve('absent');
    this.hostVeths.delete(req.hostVeth);
    this.netns.get(host.netns)?.delete(host.ifname);
    return Promise.resolve('removed');
  }

  inspect(req: InspectRequest): Promise<Inspection> {
    this.enter('inspect', req.hostVeth);
    const problems: string[] = [];
    const ns = this.netns.get(req.netns);
    const host = this.hostVeths.get(req.hostVeth);
    if (ns === undefined) problems.push(`network namespace ${req.netns} does not exist`);
    else {
      const link = ns.get(req.ifname);
      if (link === undefined) problems.push(`interface ${req.ifname} missing in ${req.netns}`);
      else {
        if (link.hostVeth !== req.hostVeth)
          problems.push(`${req.ifname} is paired with ${link.hostVeth}, not ${req.hostVeth}`);
        if (link.mtu !== req.mtu) problems.push(`${req.ifname} has MTU ${link.mtu}, not ${req.mtu}`);
        for (const a of req.addresses)
          if (!link.addresses.has(a.cidr)) problems.push(`address ${a.cidr} missing on ${req.ifname}`);
        const want = [
          ...(req.addresses.some((a) => a.family === 4) ? [`${GATEWAY4}/32 scope link`] : []),
          ...req.routes.map(routeText),
        ];
        for (const r of want) if (!link.routes.has(r)) problems.push(`route ${r} missing in the pod`);
      }
    }
    if (host === undefined) problems.push(`host veth ${req.hostVeth} missing`);
    else {
      for (const [k, val] of HOST_SYSCTLS) {
        const key = k.replace('<veth>', req.hostVeth);
        if (host.sysctls.get(key) !== val) problems.push(`sysctl ${key} is not ${val}`);
      }
      for (const a of req.addresses)
        if (!host.routes.has(a.cidr)) problems.push(`host route ${a.cidr} dev ${req.hostVeth} missing`);
    }
    return Promise.resolve({ netnsExists: ns !== undefined, hostVethExists: host !== undefined, problems });
  }
}
