// The real Kernel: @tabby/netlink's client (batched writes, protocol-filtered dumps) and its
// monitor (links and IPv4/IPv6 routes) in one network namespace, ours or one given by path.
import type { RouteInfo, RouteView } from '@tabby/netlink';
import { readSysctl, RtnlClient, writeSysctl } from '@tabby/netlink';
import { MonitorFanout } from './monitor-fanout.js';
import type { Kernel, KernelEvent, KernelLink, RouteFilter, RouteOp, RouteOpFailure } from './kernel.js';
import type { SysctlAccess } from './sysctls.js';

export interface NetlinkKernelOptions {
  /** A network namespace file (/var/run/netns/<name>, /proc/<pid>/ns/net); default: ours. */
  readonly netns?: string;
}

export class NetlinkKernel implements Kernel {
  private readonly client: RtnlClient;
  private readonly events: MonitorFanout<KernelEvent>;

  constructor(opts: NetlinkKernelOptions = {}) {
    this.client = RtnlClient.open(opts.netns !== undefined ? { netns: opts.netns } : {});
    this.events = new MonitorFanout<KernelEvent>(
      opts.netns,
      ['link', 'ipv4-route', 'ipv6-route'],
      (m) =>
        m.kind === 'route'
          ? { kind: 'route', op: m.op, route: m.route }
          : m.kind === 'link'
            ? { kind: 'link', op: m.op, link: { index: m.link.index, name: m.link.name, up: m.link.up } }
            : undefined,
      (error) => ({ kind: 'overrun', error }),
    );
  }

  async links(): Promise<KernelLink[]> {
    return (await this.client.links()).map((l) => ({ index: l.index, name: l.name, up: l.up }));
  }

  routes(f: RouteFilter): Promise<RouteInfo[]> {
    return this.client.routes({ family: f.family, table: f.table, protocol: f.protocol });
  }

  scanRoutes(f: RouteFilter, visit: (r: RouteView) => void): Promise<number> {
    return this.client.scanRoutes({ family: f.family, table: f.table, protocol: f.protocol }, visit);
  }

  async applyRoutes(ops: readonly RouteOp[]): Promise<RouteOpFailure[]> {
    if (ops.length === 0) return [];
    const b = this.client.batch();
    for (const o of ops) {
      if (o.op === 'add') b.addRoute(o.route);
      else if (o.op === 'replace') b.replaceRoute(o.route);
      else b.deleteRoute(o.route);
    }
    return b.commit();
  }

  watch(onEvent: (e: KernelEvent) => void): () => void {
    return this.events.watch(onEvent);
  }

  close(): void {
    this.events.close();
    this.client.close();
  }
}

/** Sysctls in a network namespace (default: ours) through @tabby/netlink. */
export function netlinkSysctls(netns?: string): SysctlAccess {
  return {
    read: (path) => readSysctl(path, netns),
    write: (path, value) => writeSysctl(path, value, netns),
  };
}
