// The kernel as the TunnelManager sees it: links by name, addresses, link and address
// writes, and a stream of link/address events. NetlinkTunnelKernel is the real one over
// @tabby/netlink, in our network namespace or one given by path; FakeTunnelKernel (in
// fake-kernel.ts) is the in-memory one for tests.
import type {
  AddressInfo,
  AddressSpec,
  IpVersion,
  LinkChange,
  LinkInfo,
  LinkSpec,
  NetlinkError,
} from '@tabby/netlink/codec';
import { isErrno, RT_TABLE_MAIN } from '@tabby/netlink/codec';
import { RtnlClient, RtnlMonitor } from '@tabby/netlink';
import type { HostMtu } from './mtu.js';
import { detectHostMtu } from './mtu.js';

export type TunnelKernelEvent =
  | { readonly kind: 'link'; readonly op: 'new' | 'del'; readonly link: LinkInfo }
  | { readonly kind: 'address'; readonly op: 'new' | 'del'; readonly address: AddressInfo }
  /** Events were lost: the listener's view is stale. */
  | { readonly kind: 'overrun'; readonly error: Error };

export interface TunnelKernel {
  /** The link with this name, or undefined. */
  getLink(name: string): Promise<LinkInfo | undefined>;
  addresses(filter: { readonly family?: IpVersion; readonly index?: number }): Promise<AddressInfo[]>;
  createLink(spec: LinkSpec): Promise<void>;
  setLink(index: number, change: LinkChange): Promise<void>;
  deleteLink(index: number): Promise<void>;
  addAddress(a: AddressSpec): Promise<void>;
  deleteAddress(a: AddressSpec): Promise<void>;
  watch(onEvent: (e: TunnelKernelEvent) => void): () => void;
}

export interface NetlinkTunnelKernelOptions {
  /** A network namespace file (/var/run/netns/<name>, /proc/<pid>/ns/net); default: ours. */
  readonly netns?: string;
}

export class NetlinkTunnelKernel implements TunnelKernel {
  private readonly client: RtnlClient;
  private readonly netns: string | undefined;
  private monitor: RtnlMonitor | undefined;
  private readonly listeners = new Set<(e: TunnelKernelEvent) => void>();

  constructor(opts: NetlinkTunnelKernelOptions = {}) {
    this.netns = opts.netns;
    this.client = RtnlClient.open(opts.netns !== undefined ? { netns: opts.netns } : {});
  }

  async getLink(name: string): Promise<LinkInfo | undefined> {
    try {
      return await this.client.getLink(name);
    } catch (e) {
      if (isErrno(e, 'ENODEV')) return undefined;
      throw e;
    }
  }

  addresses(filter: { readonly family?: IpVersion; readonly index?: number }): Promise<AddressInfo[]> {
    return this.client.addresses(filter);
  }

  createLink(spec: LinkSpec): Promise<void> {
    return this.client.createLink(spec);
  }

  setLink(index: number, change: LinkChange): Promise<void> {
    return this.client.setLink(index, change);
  }

  deleteLink(index: number): Promise<void> {
    return this.client.deleteLink(index);
  }

  addAddress(a: AddressSpec): Promise<void> {
    return this.client.addAddress(a);
  }

  deleteAddress(a: AddressSpec): Promise<void> {
    return this.client.deleteAddress(a);
  }

  watch(onEvent: (e: TunnelKernelEvent) => void): () => void {
    this.listeners.add(onEvent);
    if (this.monitor === undefined) {
      this.monitor = RtnlMonitor.open({
        ...(this.netns !== undefined ? { netns: this.netns } : {}),
        groups: ['link', 'ipv4-address', 'ipv6-address'],
        onMessage: (m) => {
          let e: TunnelKernelEvent;
          if (m.kind === 'link') e = { kind: 'link', op: m.op, link: m.link };
          else if (m.kind === 'address') e = { kind: 'address', op: m.op, address: m.address };
          else return;
          for (const l of this.listeners) l(e);
        },
        onOverrun: (error: NetlinkError) => {
          for (const l of this.listeners) l({ kind: 'overrun', error });
        },
      });
    }
    return () => {
      this.listeners.delete(onEvent);
      if (this.listeners.size === 0) {
        this.monitor?.close();
        this.monitor = undefined;
      }
    };
  }

  close(): void {
    this.monitor?.close();
    this.monitor = undefined;
    this.listeners.clear();
    this.client.close();
  }
}

/**
 * The host MTU as detectHostMtu computes it, read from the kernel (our namespace or the one
 * at `netns`): links, the main table's routes of both families, and addresses.
 */
export async function readHostMtu(
  nodeAddresses: readonly string[],
  opts: { readonly netns?: string } = {},
): Promise<HostMtu | undefined> {
  const client = RtnlClient.open(opts.netns !== undefined ? { netns: opts.netns } : {});
  try {
    const links = await client.links();
    const routes = [
      ...(await client.routes({ family: 4, table: RT_TABLE_MAIN })),
      ...(await client.routes({ family: 6, table: RT_TABLE_MAIN })),
    ];
    const addresses = await client.addresses();
    return detectHostMtu({ links, routes, addresses, nodeAddresses });
  } finally {
    client.close();
  }
}
