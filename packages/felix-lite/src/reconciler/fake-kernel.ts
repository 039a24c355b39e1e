// An in-memory kernel for the reconciler's tests (Calico's mocknetlink, in spirit): links,
// routes keyed as the kernel keys them, EEXIST/ENODEV/ENETDOWN/ESRCH where the kernel gives
// them, IPv4-style silent flushing of routes through a removed or downed link (no RTM_DELROUTE
// is sent for those), change events delivered asynchronously, and faults injected on demand:
// refused writes, interrupted dumps, batches whose outcome is unknown, lost events.
import type { RouteInfo, RouteSpec } from '@tabby/netlink/codec';
import {
  NetlinkError,
  RouteView,
  RT_SCOPE_LINK,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
} from '@tabby/netlink/codec';
import type { Kernel, KernelEvent, KernelLink, RouteFilter, RouteOp, RouteOpFailure } from './kernel.js';

const ERRNO = { EINTR: 4, ESRCH: 3, EEXIST: 17, ENODEV: 19, ENETDOWN: 100, ENETUNREACH: 101, EBUSY: 16 };
export type FakeErrno = keyof typeof ERRNO;

/** A write refused on purpose: the next `times` batched writes that match fail with `errno`. */
export interface WriteFault {
  readonly errno: FakeErrno;
  /** Which writes (default: any). */
  readonly match?: (op: RouteOp) => boolean;
  times: number;
}

const keyOf = (r: { family: number; table?: number; dst: string; dstLen: number }, metric: number): string =>
  `${r.family}|${r.table ?? RT_TABLE_MAIN}|${r.dst}/${r.dstLen}|${metric}`;

const metricOf = (r: { family: number; priority?: number }): number =>
  r.priority ?? (r.family === 6 ? 1024 : 0);

export class FakeKernel implements Kernel {
  private readonly linkMap = new Map<number, KernelLink>();
  private readonly routeMap = new Map<string, RouteInfo>();
  private readonly listeners = new Set<(e: KernelEvent) => void>();
  private nextIndex = 2;

  /** Faults: refused writes, in order of registration. */
  readonly writeFaults: WriteFault[] = [];
  /** The next n route dumps fail with EINTR (NLM_F_DUMP_INTR). */
  failDumps = 0;
  /** The next n batches apply only their first half, then reject (outcome unknown). */
  failBatches = 0;
  /** While true, events are not delivered; one overrun is delivered instead. */
  dropEvents = false;
  private overrunPending = false;

  /** Every write that reached the kernel (refused ones included), for assertions. */
  readonly writes: RouteOp[] = [];
  dumps = 0;

  constructor() {
    this.linkMap.set(1, { index: 1, name: 'lo', up: true });
  }

  // --- the Kernel interface

  links(): Promise<KernelLink[]> {
    return Promise.resolve([...this.linkMap.values()]);
  }

  routes(f: RouteFilter): Promise<RouteInfo[]> {
    this.dumps++;
    if (this.failDumps > 0) {
      this.failDumps--;
      return Promise.reject(new NetlinkError(ERRNO.EINTR, 'RTM_GETROUTE dump', 'dump interrupted'));
    }
    const out: RouteInfo[] = [];
    for (const r of this.routeMap.values())
      if (r.family === f.family && r.table === f.table && r.protocol === f.protocol) out.push(r);
    return Promise.resolve(out);
  }

  /** routes() through one reused view, as NetlinkKernel's dump visitor hands them out. */
  async scanRoutes(f: RouteFilter, visit: (r: RouteView) => void): Promise<number> {
    const view = new RouteView();
    const routes = await this.routes(f);
    for (const r of routes) visit(view.assign(r));
    return routes.length;
  }

  async applyRoutes(ops: readonly RouteOp[]): Promise<RouteOpFailure[]> {
    await Promise.resolve();
    const failures: RouteOpFailure[] = [];
    let limit = ops.length;
    let reject = false;
    if (this.failBatches > 0 && ops.length > 0) {
      this.failBatches--;
      limit = Math.floor(ops.length / 2);
      reject = true;
    }
    for (let i = 0; i < limit; i++) {
      const op = ops[i]!;
      this.writes.push(op);
      const err = this.fault(op) ?? this.write(op);
      if (err !== undefined) failures.push({ index: i, error: err });
    }
    if (reject) throw new NetlinkError(105 /* ENOBUFS */, 'batch', 'outcome unknown (injected)');
    return failures;
  }

  watch(onEvent: (e: KernelEvent) => void): () => void {
    this.listeners.add(onEvent);
    return () => this.listeners.delete(onEvent);
  }

  // --- the test's hands on the kernel (what `ip` would do)

  addLink(name: string, up = true): KernelLink {
    if (this.linkByName(name) !== undefined) throw new Error(`link ${name} exists`);
    const link = { index: this.nextIndex++, name, up };
    this.linkMap.set(link.index, link);
    this.emit({ kind: 'link', op: 'new', link });
    return link;
  }

  /** Removes a link and, as the kernel does, every route through it, without route events. */
  removeLink(name: string): void {
    const link = this.linkByName(name);
    if (link === undefined) throw new Error(`no link ${name}`);
    this.linkMap.delete(link.index);
    this.flushRoutesVia(link.index);
    this.emit({ kind: 'link', op: 'del', link });
  }

  setLinkUp(name: string, up: boolean): void {
    const link = this.linkByName(name);
    if (link === undefined) throw new Error(`no link ${name}`);
    const next = { ...link, up };
    this.linkMap.set(link.index, next);
    if (!up) this.flushRoutesVia(link.index);
    this.emit({ kind: 'link', op: 'new', link: next });
  }

  linkByName(name: string): KernelLink | undefined {
    for (const l of this.linkMap.values()) if (l.name === name) return l;
    return undefined;
  }

  /** `ip route add/replace` by hand (any protocol); throws the kernel's error. */
  addRouteByHand(spec: RouteSpec, replace = false): void {
    const err = this.write({ op: replace ? 'replace' : 'add', route: spec });
    if (err !== undefined) throw err;
  }

  /** `ip route del` by hand; throws ESRCH when there is no such route. */
  deleteRouteByHand(spec: RouteSpec): void {
    const err = this.write({ op: 'delete', route: spec });
    if (err !== undefined) throw err;
  }

  /** A route gone with no notification (as when events are lost): only a dump shows it. */
  deleteRouteSilently(family: 4 | 6, dst: string, dstLen: number, table = RT_TABLE_MAIN): boolean {
    return this.routeMap.delete(keyOf({ family, table, dst, dstLen }, family === 6 ? 1024 : 0));
  }

  /** Every route, sorted by key. */
  allRoutes(): RouteInfo[] {
    return [...this.routeMap.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map((e) => e[1]);
  }

  getRoute(family: 4 | 6, dst: string, dstLen: number, table = RT_TABLE_MAIN): RouteInfo | undefined {
    return this.routeMap.get(keyOf({ family, table, dst, dstLen }, family === 6 ? 1024 : 0));
  }

  /** Writes counted by kind, then forgotten. */
  takeWrites(): Record<RouteOp['op'], number> {
    const n = { add: 0, replace: 0, delete: 0 };
    for (const w of this.writes) n[w.op]++;
    this.writes.length = 0;
    return n;
  }

  // --- internals

  private flushRoutesVia(index: number): void {
    for (const [k, r] of this.routeMap)
      if (r.nexthops.some((nh) => nh.oif === index)) this.routeMap.delete(k);
  }

  private emit(e: KernelEvent): void {
    if (this.dropEvents) {
      this.overrunPending = true;
      return;
    }
    const deliver: KernelEvent[] = [];
    if (this.overrunPending) {
      this.overrunPending = false;
      deliver.push({ kind: 'overrun', error: new NetlinkError(105, 'monitor', 'events lost (injected)') });
    }
    deliver.push(e);
    // the kernel's notifications arrive on another socket, after the write returned
    setImmediate(() => {
      for (const ev of deliver) for (const l of this.listeners) l(ev);
    });
  }

  private fault(op: RouteOp): NetlinkError | undefined {
    for (let i = 0; i < this.writeFaults.length; i++) {
      const f = this.writeFaults[i]!;
      if (f.times <= 0 || (f.match !== undefined && !f.match(op))) continue;
      f.times--;
      if (f.times <= 0) this.writeFaults.splice(i, 1);
      return new NetlinkError(ERRNO[f.errno], `${op.op} ${op.route.dst}/${op.route.dstLen}`, 'injected');
    }
    return undefined;
  }

  private write(op: RouteOp): NetlinkError | undefined {
    const r = op.route;
    const what = `${op.op} ${r.dst}/${r.dstLen}`;
    const key = keyOf(r, metricOf(r));
    if (op.op === 'delete') {
      const had = this.routeMap.get(key);
      if (
        had === undefined ||
        (r.protocol !== undefined && r.protocol !== 0 && had.protocol !== r.protocol) ||
        (r.type !== undefined && r.type !== 'unspec' && had.type !== r.type)
      )
        return new NetlinkError(ERRNO.ESRCH, what, 'No such process');
      this.routeMap.delete(key);
      this.emit({ kind: 'route', op: 'del', route: had });
      return undefined;
    }
    if (op.op === 'add' && this.routeMap.has(key)) return new NetlinkError(ERRNO.EEXIST, what, 'File exists');
    const type = r.type ?? 'unicast';
    const nexthops = type === 'unicast' ? (r.nexthops ?? []) : [];
    for (const nh of nexthops) {
      if (nh.oif === undefined) return new NetlinkError(ERRNO.ENODEV, what, 'Nexthop device required');
      const link = this.linkMap.get(nh.oif);
      if (link === undefined) return new NetlinkError(ERRNO.ENODEV, what, 'Nexthop device not found');
      if (!link.up) return new NetlinkError(ERRNO.ENETDOWN, what, 'Nexthop device is not up');
    }
    if (type === 'unicast' && nexthops.length === 0)
      return new NetlinkError(ERRNO.ENODEV, what, 'Nexthop device required');
    const gateway = nexthops.some((nh) => nh.gateway !== undefined);
    const info: { -readonly [K in keyof RouteInfo]: RouteInfo[K] } = {
      family: r.family,
      dst: r.dst,
      dstLen: r.dstLen,
      table: r.table ?? RT_TABLE_MAIN,
      protocol: r.protocol ?? 3,
      scope: r.family === 6 ? RT_SCOPE_UNIVERSE : (r.scope ?? (gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK)),
      type,
      // the kernel keeps RTNH_F_ONLINK of a single next hop in rtm_flags
      flags: nexthops.length === 1 && nexthops[0]!.onlink === true ? 4 : 0,
      nexthops: nexthops.map((nh) => {
        const o: { -readonly [K in keyof typeof nh]: (typeof nh)[K] } = {};
        if (nh.gateway !== undefined) o.gateway = nh.gateway;
        if (nh.oif !== undefined) o.oif = nh.oif;
        if (nh.onlink === true) o.onlink = true;
        if (nh.weight !== undefined && nh.weight !== 1) o.weight = nh.weight;
        return o;
      }),
    };
    const metric = metricOf(r);
    if (metric !== 0) info.priority = metric;
    this.routeMap.set(key, info);
    this.emit({ kind: 'route', op: 'new', route: info });
    return undefined;
  }
}
