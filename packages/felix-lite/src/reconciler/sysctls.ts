// Host-side veth sysctls for local workload endpoints, as Calico's Felix sets them
// (endpoint_mgr.go configureInterface): the pod's default route points at 169.254.1.1, an
// address nobody has, so the host veth answers ARP for it (proxy_arp, with no delay) and
// forwards; IPv6 likewise through proxy_ndp. rp_filter stays strict so a pod cannot spoof
// sources; route_localnet lets NAT send to 127.0.0.1 (node-local services); IPv6 router
// advertisements from a pod are ignored.
//
// The sysctls of a device vanish with it: a recreated veth needs them again, so the
// configurator writes them whenever a wanted device appears (a link event with a new index).
import type { IpVersion } from '../routes/ip.js';
import type { Kernel, KernelLink } from './kernel.js';
import type { Logger } from '@tabby/ipip';
import { silentLogger } from '@tabby/ipip';

/** Reads and writes sysctls by slash path under /proc/sys (net/ipv4/conf/cali…/proxy_arp). */
export interface SysctlAccess {
  read(path: string): string;
  write(path: string, value: string): void;
}

/** The sysctls one endpoint's host veth needs, per family: [path, value]. */
export function endpointSysctls(ifname: string, families: readonly IpVersion[]): [string, string][] {
  const out: [string, string][] = [];
  if (families.includes(4))
    out.push(
      [`net/ipv4/conf/${ifname}/rp_filter`, '1'],
      [`net/ipv4/conf/${ifname}/route_localnet`, '1'],
      [`net/ipv4/conf/${ifname}/proxy_arp`, '1'],
      [`net/ipv4/neigh/${ifname}/proxy_delay`, '0'],
      [`net/ipv4/conf/${ifname}/forwarding`, '1'],
    );
  if (families.includes(6))
    out.push(
      [`net/ipv6/conf/${ifname}/accept_ra`, '0'],
      [`net/ipv6/conf/${ifname}/proxy_ndp`, '1'],
      [`net/ipv6/conf/${ifname}/forwarding`, '1'],
    );
  return out;
}

export interface EndpointSysctlsComponents {
  readonly kernel: Kernel;
  readonly sysctl: SysctlAccess;
  readonly logger?: Logger;
}

/**
 * Keeps the sysctls of the wanted endpoints' host veths set: on setEndpoints() for the
 * devices that exist, and on every link event that shows a wanted device with a new index.
 * Writes only values that differ (reads first), so a restart rewrites nothing.
 */
export class EndpointSysctls {
  private readonly wanted = new Map<string, readonly IpVersion[]>();
  /** Device name -> the index whose sysctls are set. */
  private readonly done = new Map<string, number>();
  private unwatch: (() => void) | undefined;
  private readonly log: Logger;
  /** Writes performed (for tests and metrics). */
  writes = 0;

  constructor(private readonly c: EndpointSysctlsComponents) {
    this.log = c.logger ?? silentLogger;
  }

  start(): void {
    this.unwatch ??= this.c.kernel.watch((e) => {
      if (e.kind === 'link' && e.op === 'new') this.configure(e.link);
      else if (e.kind === 'link') this.done.delete(e.link.name);
      else if (e.kind === 'overrun') void this.refresh();
    });
  }

  stop(): void {
    this.unwatch?.();
    this.unwatch = undefined;
  }

  /** The local endpoints' devices and their families; configures those that exist now. */
  async setEndpoints(endpoints: ReadonlyMap<string, readonly IpVersion[]>): Promise<void> {
    for (const name of [...this.done.keys()]) {
      const now = endpoints.get(name);
      const was = this.wanted.get(name);
      // gone, or its families changed (IPv6 added): configured again when it is wanted
      if (now === undefined || was === undefined || now.join() !== was.join()) this.done.delete(name);
    }
    this.wanted.clear();
    for (const [name, families] of endpoints) this.wanted.set(name, families);
    // Called on every datastore change: only devices not yet configured cost a link dump and
    // their reads; the configured ones are kept by link events (a new index configures again).
    for (const name of this.wanted.keys())
      if (!this.done.has(name)) {
        for (const link of await this.c.kernel.links()) this.configure(link);
        return;
      }
  }

  /** Configures every wanted device present in the kernel. */
  async refresh(): Promise<void> {
    for (const link of await this.c.kernel.links()) this.configure(link, true);
  }

  private configure(link: KernelLink, force = false): void {
    const families = this.wanted.get(link.name);
    if (families === undefined) return;
    if (!force && this.done.get(link.name) === link.index) return;
    try {
      for (const [path, value] of endpointSysctls(link.name, families)) {
        if (this.c.sysctl.read(path) === value) continue;
        this.c.sysctl.write(path, value);
        this.writes++;
      }
      this.done.set(link.name, link.index);
    } catch (e) {
      // the device went away mid-way (ENOENT), or IPv6 is off on it: the next event retries
      this.done.delete(link.name);
      this.log.warn({ dev: link.name, err: e }, 'could not set endpoint sysctls');
    }
  }
}
