// What address autodetection reads from the host, behind one small interface: the interfaces
// with their addresses, and the source address the kernel would pick to reach a destination.
// The real one asks the kernel over rtnetlink; StaticHostNetwork answers from tables (unit
// tests, and hosts where the daemon only shows what it would do).
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { RtnlClient } from '@tabby/netlink';

export interface HostAddress {
  readonly family: 4 | 6;
  readonly address: string;
  readonly prefixLen: number;
}

export interface HostInterface {
  readonly name: string;
  readonly index: number;
  readonly addresses: readonly HostAddress[];
}

export interface HostNetwork {
  /**
   * Every interface (up or down) with every address, in interface-index order: the order
   * Go's net.Interfaces() gives Calico, which autodetection then walks backwards.
   */
  interfaces(): Promise<HostInterface[]>;
  /**
   * The source address the kernel picks for UDP to port 80 of `destination` (an address or
   * a host name): what Calico learns by dialling a UDP socket there (reachaddr.go:34).
   */
  sourceAddressFor(destination: string, family: 4 | 6): Promise<string>;
}

/** Resolves a host name to one address of the family (the first, as Go's dialler takes). */
export type Resolver = (host: string, family: 4 | 6) => Promise<string>;

export const dnsResolver: Resolver = async (host, family) => (await lookup(host, { family })).address;

/** The host's interfaces and routes, from the kernel over rtnetlink (the caller owns the client). */
export class NetlinkHostNetwork implements HostNetwork {
  constructor(
    private readonly client: RtnlClient,
    private readonly resolve: Resolver = dnsResolver,
  ) {}

  async interfaces(): Promise<HostInterface[]> {
    const links = await this.client.links();
    const addrs = await this.client.addresses();
    const byIndex = new Map<number, HostAddress[]>();
    for (const a of addrs) {
      const list = byIndex.get(a.index) ?? [];
      list.push({ family: a.family, address: a.address, prefixLen: a.prefixLen });
      byIndex.set(a.index, list);
    }
    return links
      .map((l) => ({ name: l.name, index: l.index, addresses: byIndex.get(l.index) ?? [] }))
      .sort((a, b) => a.index - b.index);
  }

  async sourceAddressFor(destination: string, family: 4 | 6): Promise<string> {
    const literal = isIP(destination);
    if (literal !== 0 && literal !== family) throw new Error(`${destination} is not an IPv${family} address`);
    const dst = literal !== 0 ? destination : await this.resolve(destination, family);
    // Go dials "udp4"/"udp6" to [dest]:80: the same flow, so policy-routing rules on the
    // protocol or port choose the same route.
    const r = await this.client.getRoute({ family, dst, ipProto: 17, dport: 80 });
    if (r.prefsrc === undefined) throw new Error(`the kernel chose no source address to reach ${dst}`);
    return r.prefsrc;
  }
}

/** A host described by tables: interfaces in index order, and destination → source address. */
export class StaticHostNetwork implements HostNetwork {
  constructor(
    private readonly table: readonly HostInterface[],
    private readonly routes: Readonly<Record<string, string>> = {},
  ) {}

  interfaces(): Promise<HostInterface[]> {
    return Promise.resolve([...this.table].sort((a, b) => a.index - b.index));
  }

  sourceAddressFor(destination: string): Promise<string> {
    const src = this.routes[destination];
    return src === undefined
      ? Promise.reject(new Error(`connect: network is unreachable (no route to ${destination})`))
      : Promise.resolve(src);
  }
}
