// The kernel as the NeighbourReconciler sees it: links, the neighbour and FDB entries of one
// device, batched neighbour writes with failures by index, and link/neighbour events.
// NetlinkNeighbourKernel is the real one (its own socket and monitor: the neighbour group
// carries every ARP change on the host, which the route reconciler has no use for);
// FakeNeighbourKernel is the in-memory one, with fault injection.
import type { NeighbourFamily, NeighbourInfo, NeighbourSpec } from '@tabby/netlink/codec';
import { NetlinkError, NTF_SELF, NUD_PERMANENT } from '@tabby/netlink/codec';
import { RtnlClient } from '@tabby/netlink';
import { MonitorFanout } from './monitor-fanout.js';
import type { KernelLink } from './kernel.js';

export interface NeighbourOp {
  /** set: add or replace (as `ip neigh replace`, `bridge fdb replace`); delete. */
  readonly op: 'set' | 'delete';
  readonly spec: NeighbourSpec;
}

export interface NeighbourOpFailure {
  readonly index: number;
  readonly error: NetlinkError;
}

export type NeighbourKernelEvent =
  | { readonly kind: 'link'; readonly op: 'new' | 'del'; readonly link: KernelLink }
  | { readonly kind: 'neighbour'; readonly op: 'new' | 'del'; readonly neighbour: NeighbourInfo }
  | { readonly kind: 'overrun'; readonly error: Error };

export interface NeighbourKernel {
  links(): Promise<KernelLink[]>;
  /** The entries of one family ('bridge': FDB), on one device or (index omitted) on all. */
  neighbours(family: NeighbourFamily, index?: number): Promise<NeighbourInfo[]>;
  /** Applies the writes in order, each independently; rejects only when the outcome is unknown. */
  applyNeighbours(ops: readonly NeighbourOp[]): Promise<NeighbourOpFailure[]>;
  watch(onEvent: (e: NeighbourKernelEvent) => void): () => void;
}

export class NetlinkNeighbourKernel implements NeighbourKernel {
  private readonly client: RtnlClient;
  private readonly events: MonitorFanout<NeighbourKernelEvent>;

  constructor(opts: { readonly netns?: string } = {}) {
    this.client = RtnlClient.open(opts.netns !== undefined ? { netns: opts.netns } : {});
    this.events = new MonitorFanout<NeighbourKernelEvent>(
      opts.netns,
      ['link', 'neighbour'],
      (m) =>
        m.kind === 'neighbour'
          ? { kind: 'neighbour', op: m.op, neighbour: m.neighbour }
          : m.kind === 'link'
            ? { kind: 'link', op: m.op, link: { index: m.link.index, name: m.link.name, up: m.link.up } }
            : undefined,
      (error) => ({ kind: 'overrun', error }),
    );
  }

  async links(): Promise<KernelLink[]> {
    return (await this.client.links()).map((l) => ({ index: l.index, name: l.name, up: l.up }));
  }

  neighbours(family: NeighbourFamily, index?: number): Promise<NeighbourInfo[]> {
    return this.client.neighbours(index === undefined ? { family } : { family, index });
  }

  async applyNeighbours(ops: readonly NeighbourOp[]): Promise<NeighbourOpFailure[]> {
    if (ops.length === 0) return [];
    const b = this.client.batch();
    for (const o of ops) {
      if (o.op === 'set') b.setNeighbour(o.spec);
      else b.deleteNeighbour(o.spec);
    }
    return b.commit();
  }

  watch(onEvent: (e: NeighbourKernelEvent) => void): () => void {
    return this.events.watch(onEvent);
  }

  close(): void {
    this.events.close();
    this.client.close();
  }
}

const ERRNO = { ENOENT: 2, EINTR: 4, EBUSY: 16, ENODEV: 19, ENETDOWN: 100 };
export type FakeNeighbourErrno = keyof typeof ERRNO;

const keyOf = (n: { family: NeighbourFamily; index: number; dst?: string; lladdr?: string }): string =>
  n.family === 'bridge' ? `bridge|${n.index}|${n.lladdr ?? ''}` : `${n.family}|${n.index}|${n.dst ?? ''}`;

/**
 * In memory: links (up or down), neighbour and FDB entries keyed as the kernel keys them
 * (ARP by device and IP, FDB by device and MAC), entries flushed when their device goes down
 * or away (as the kernel does on NETDEV_DOWN), events delivered asynchronously, and faults.
 */
export class FakeNeighbourKernel implements NeighbourKernel {
  private readonly linkMap = new Map<number, KernelLink>();
  private readonly entries = new Map<string, NeighbourInfo>();
  private readonly listeners = new Set<(e: NeighbourKernelEvent) => void>();
  private nextIndex = 2;

  /** The next `times` writes (matching, if given) fail with `errno`. */
  readonly writeFaults: { errno: FakeNeighbourErrno; times: number; match?: (o: NeighbourOp) => boolean }[] =
    [];
  /** The next n dumps fail with EINTR. */
  failDumps = 0;
  readonly writes: NeighbourOp[] = [];
  dumps = 0;

  constructor() {
    this.linkMap.set(1, { index: 1, name: 'lo', up: true });
  }

  links(): Promise<KernelLink[]> {
    return Promise.resolve([...this.linkMap.values()]);
  }

  neighbours(family: NeighbourFamily, index?: number): Promise<NeighbourInfo[]> {
    this.dumps++;
    if (this.failDumps > 0) {
      this.failDumps--;
      return Promise.reject(new NetlinkError(ERRNO.EINTR, 'RTM_GETNEIGH dump', 'dump interrupted'));
    }
    return Promise.resolve(
      [...this.entries.values()].filter(
        (n) => n.family === family && (index === undefined || n.index === index),
      ),
    );
  }

  async applyNeighbours(ops: readonly NeighbourOp[]): Promise<NeighbourOpFailure[]> {
    await Promise.resolve();
    const failures: NeighbourOpFailure[] = [];
    ops.forEach((o, index) => {
      this.writes.push(o);
      const f = this.writeFaults.find((x) => x.times > 0 && (x.match === undefined || x.match(o)));
      if (f !== undefined) {
        f.times--;
        failures.push({ index, error: new NetlinkError(ERRNO[f.errno], `neighbour ${o.op}`, 'injected') });
        return;
      }
      const err = o.op === 'set' ? this.set(o.spec) : this.del(o.spec);
      if (err !== undefined) failures.push({ index, error: err });
    });
    return failures;
  }

  watch(onEvent: (e: NeighbourKernelEvent) => void): () => void {
    this.listeners.add(onEvent);
    return () => this.listeners.delete(onEvent);
  }

  // --- the test's hands

  addLink(name: string, up = true): KernelLink {
    const link = { index: this.nextIndex++, name, up };
    this.linkMap.set(link.index, link);
    this.emit({ kind: 'link', op: 'new', link });
    return link;
  }

  removeLink(name: string): void {
    const l = this.byName(name);
    if (l === undefined) throw new Error(`no link ${name}`);
    this.linkMap.delete(l.index);
    this.flush(l.index);
    this.emit({ kind: 'link', op: 'del', link: l });
  }

  setLinkUp(name: string, up: boolean): void {
    const l = this.byName(name);
    if (l === undefined) throw new Error(`no link ${name}`);
    const next = { ...l, up };
    this.linkMap.set(l.index, next);
    if (!up) this.flush(l.index);
    this.emit({ kind: 'link', op: 'new', link: next });
  }

  /** `ip neigh replace` / `bridge fdb replace` by hand (any state). */
  setByHand(spec: NeighbourSpec): void {
    const err = this.set(spec);
    if (err !== undefined) throw err;
  }

  deleteByHand(spec: NeighbourSpec): void {
    const err = this.del(spec);
    if (err !== undefined) throw err;
  }

  /** Entries on a device as text: "arp 10.65.2.192 66:..", "fdb 66:.. dst 192.168.0.12", sorted. */
  entriesOf(name: string): string[] {
    const l = this.byName(name);
    return [...this.entries.values()]
      .filter((n) => n.index === l?.index)
      .map((n) =>
        n.family === 'bridge'
          ? `fdb ${n.lladdr ?? ''} dst ${n.dst ?? ''}`
          : `arp ${n.dst ?? ''} ${n.lladdr ?? ''}${n.state === NUD_PERMANENT ? '' : ` state ${n.state}`}`,
      )
      .sort();
  }

  byName(name: string): KernelLink | undefined {
    for (const l of this.linkMap.values()) if (l.name === name) return l;
    return undefined;
  }

  // --- internals

  private set(s: NeighbourSpec): NetlinkError | undefined {
    const link = this.linkMap.get(s.index);
    if (link === undefined) return new NetlinkError(ERRNO.ENODEV, 'RTM_NEWNEIGH', 'No such device');
    const n: { -readonly [K in keyof NeighbourInfo]: NeighbourInfo[K] } = {
      family: s.family,
      index: s.index,
      state: s.state ?? NUD_PERMANENT,
      flags: s.flags ?? (s.family === 'bridge' ? NTF_SELF : 0),
    };
    if (s.dst !== undefined) n.dst = s.dst;
    if (s.lladdr !== undefined) n.lladdr = s.lladdr;
    this.entries.set(keyOf(n), n);
    this.emit({ kind: 'neighbour', op: 'new', neighbour: n });
    return undefined;
  }

  private del(s: NeighbourSpec): NetlinkError | undefined {
    const k = keyOf(s);
    const had = this.entries.get(k);
    if (had === undefined) return new NetlinkError(ERRNO.ENOENT, 'RTM_DELNEIGH', 'No such file or directory');
    this.entries.delete(k);
    this.emit({ kind: 'neighbour', op: 'del', neighbour: had });
    return undefined;
  }

  private flush(index: number): void {
    for (const [k, n] of this.entries) if (n.index === index) this.entries.delete(k);
  }

  private emit(e: NeighbourKernelEvent): void {
    setImmediate(() => {
      for (const l of this.listeners) l(e);
    });
  }
}
