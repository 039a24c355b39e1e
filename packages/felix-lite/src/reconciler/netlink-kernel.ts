// The real Kernel: @tabby/netlink's client (batched writes, protocol-filtered dumps) and its
// monitor (links and IPv4/IPv6 routes) in one network namespace, ours or one given by path.
import type { RouteInfo } from '@tabby/netlink';
import { readSysctl, RtnlClient, RtnlMonitor, writeSysctl } from '@tabby/netlink';
import type { Kernel, KernelEvent, KernelLink, RouteFilter, RouteOp, RouteOpFailure } from './kernel.js';
import type { SysctlAccess } from './sysctls.js';

export interface NetlinkKernelOptions {
  /** A network namespace file (/var/run/netns/<name>, /proc/<pid>/ns/net); default: ours. */
  readonly netns?: string;
}

export class NetlinkKernel implements Kernel {
  private readonly client: RtnlClient;
  private monitor: RtnlMonitor | undefined;
  private readonly listeners = new Set<(e: KernelEvent) => void>();
  private readonly netns: string | undefined;

  constructor(opts: NetlinkKernelOptions = {}) {
    this.netns = opts.netns;
    this.client = RtnlClient.open(opts.netns !== undefined ? { netns: opts.netns } : {});
  }

  async links(): Promise<KernelLink[]> {
    return (await this.client.links()).map((l) => ({ index: l.index, name: l.name, up: l.up }));
  }

  routes(f: RouteFilter): Promise<RouteInfo[]> {
    return this.client.routes({ family: f.family, table: f.table, protocol: f.protocol });
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
    this.listeners.add(onEvent);
    if (this.monitor === undefined) {
      this.monitor = RtnlMonitor.open({
        ...(this.netns !== undefined ? { netns: this.netns } : {}),
        groups: ['link', 'ipv4-route', 'ipv6-route'],
        onMessage: (m) => {
          let e: KernelEvent;
          if (m.kind === 'route') e = { kind: 'route', op: m.op, route: m.route };
          else if (m.kind === 'link')
            e = { kind: 'link', op: m.op, link: { index: m.link.index, name: m.link.name, up: m.link.up } };
          else return;
          for (const l of this.listeners) l(e);
        },
        onOverrun: (error) => {
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

/** Sysctls in a network namespace (default: ours) through @tabby/netlink. */
export function netlinkSysctls(netns?: string): SysctlAccess {
  return {
    read: (path) => readSysctl(path, netns),
    write: (path, value) => writeSysctl(path, value, netns),
  };
}
