// Makes the node's permanent neighbour entries equal to the desired ones (computeDesired's
// `neighbours`) and keeps them so: the VXLAN devices' ARP/NDP and FDB entries (Calico's
// felix/vxlanfdb) and the local pods' ARP/NDP entries on their host veths (Felix's static ARP
// entries, and their IPv6 counterpart). The same shape as the route reconciler: a DeltaTracker
// of desired entries against the kernel's, a dump on resync, writes in one batch, the netlink
// monitor keeping the view current between dumps, so an entry deleted or changed by hand is
// rewritten within one debounce.
//
// Ownership: only the devices named in `devices` (vxlan.calico, vxlan-v6.calico) and the
// workload veths (names starting with a `workloadInterfacePrefixes` entry, cali…): Tabby
// creates them, so every permanent entry with a MAC on them is ours and one nobody wants is
// deleted (as Calico on its VXLAN devices). Entries the kernel makes itself (incomplete,
// reachable, stale: not permanent) are ignored. Nothing on any other device is written.
//
// Hazards:
// - No writes before the first setDesired() (an empty set would flush a working node).
// - The kernel flushes a device's entries when it goes down or away, without a delete event
//   per entry: a device that appears, comes up, goes down or changes index means a resync.
// - A device that does not exist yet (the TunnelManager has not made it, the CNI plugin has
//   not wired the pod) or is down: its entries wait, with no error, until a link event names it.
// - A node has one veth per pod: a resync dumps each family's entries once (ARP, NDP) and
//   keeps those of our devices, rather than a dump per device; FDB entries (VXLAN devices
//   only) are dumped per device, since bridges elsewhere on the host can hold many.
import type { NeighbourInfo, NeighbourSpec } from '@tabby/netlink/codec';
import { NTF_SELF, NUD_PERMANENT } from '@tabby/netlink/codec';
import type { LoopTiming } from '@tabby/ipip';
import { ReconcileLoop } from '@tabby/ipip';
import type { Neighbour } from '../routes/neighbour.js';
import { describeNeighbour, neighbourKeyId } from '../routes/neighbour.js';
import type { Clock } from '@tabby/ipip';
import type { Registry } from 'prom-client';
import { DataplaneMetrics } from '../metrics/metrics.js';
import { DeltaTracker } from './delta-tracker.js';
import type { KernelLink } from './kernel.js';
import type { Logger } from '@tabby/ipip';
import { silentLogger } from '@tabby/ipip';
import type { NeighbourKernel, NeighbourKernelEvent, NeighbourOp } from './neighbour-kernel.js';

export interface NeighbourReconcilerInit extends LoopTiming {
  /** The VXLAN devices whose entries are ours (default vxlan.calico and vxlan-v6.calico). */
  readonly devices?: readonly string[];
  /** Workload veths, whose ARP/NDP entries are ours too, by name prefix (default ['cali']). */
  readonly workloadInterfacePrefixes?: readonly string[];
}

export interface NeighbourReconcilerComponents {
  readonly kernel: NeighbourKernel;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly random?: () => number;
  /** Where to register the tabby_dataplane_* metrics (none without one). */
  readonly registry?: Registry;
}

export interface NeighbourPassResult {
  readonly resynced: boolean;
  readonly set: number;
  readonly deleted: number;
  /** Devices wanted entries are waiting for (missing or down). */
  readonly waiting: readonly { readonly dev: string; readonly reason: 'missing' | 'down' }[];
  /** Writes the kernel refused: retried with backoff. */
  readonly failed: readonly { readonly entry: string; readonly error: Error }[];
  readonly inSync: boolean;
}

function sameNeighbour(a: Neighbour, b: Neighbour): boolean {
  if (a.kind === 'arp' && b.kind === 'arp') return a.dev === b.dev && a.ip === b.ip && a.mac === b.mac;
  if (a.kind === 'fdb' && b.kind === 'fdb') return a.dev === b.dev && a.mac === b.mac && a.dst === b.dst;
  return false;
}

export class NeighbourReconciler {
  private readonly kernel: NeighbourKernel;
  private readonly log: Logger;
  private readonly devices: ReadonlySet<string>;
  private readonly workloadPrefixes: readonly string[];
  private readonly loop: ReconcileLoop<NeighbourPassResult>;
  private readonly metrics: DataplaneMetrics | undefined;
  private stopCounting: (() => void) | undefined;
  /** Entries the kernel lost or changed behind our back once in sync (see RouteReconciler). */
  private readonly drifted = new Set<string>();
  private primed = false;
  /** Desired entries the last pass left waiting for their device. */
  private waitingEntries = 0;
  private readonly tracker = new DeltaTracker<string, Neighbour>(sameNeighbour, {
    onDrift: (k) => {
      if (this.primed) this.drifted.add(k);
    },
  });
  /** Our devices as last seen, by name and by index. */
  private readonly byName = new Map<string, KernelLink>();
  private readonly byIndex = new Map<number, KernelLink>();
  private desiredReady = false;
  private resyncNeeded = true;
  private unwatch: (() => void) | undefined;
  private buffered: NeighbourKernelEvent[] | undefined;

  lastResult: NeighbourPassResult | undefined;
  lastError: Error | undefined;

  constructor(components: NeighbourReconcilerComponents, init: NeighbourReconcilerInit = {}) {
    this.kernel = components.kernel;
    this.log = components.logger ?? silentLogger;
    this.devices = new Set(init.devices ?? ['vxlan.calico', 'vxlan-v6.calico']);
    this.workloadPrefixes = init.workloadInterfacePrefixes ?? ['cali'];
    this.metrics = components.registry === undefined ? undefined : DataplaneMetrics.on(components.registry);
    this.loop = new ReconcileLoop<NeighbourPassResult>(
      {
        pass: (resync) => this.pass(resync),
        retryIn: (r, attempt) => (r.failed.length > 0 ? this.loop.backoff(attempt) : undefined),
        ...(components.clock !== undefined ? { clock: components.clock } : {}),
        ...(components.random !== undefined ? { random: components.random } : {}),
      },
      init,
    );
    this.loop.onPass((r) => {
      if (r instanceof Error) {
        this.lastError = r;
        this.log.warn({ err: r }, 'neighbour pass failed');
      } else {
        this.lastResult = r;
        this.lastError = undefined;
      }
    });
  }

  /** Replaces the desired entries (all of them). Entries on devices not ours are refused. */
  setDesired(neighbours: Iterable<Neighbour>): void {
    const entries: [string, Neighbour][] = [];
    const seen = new Set<string>();
    for (const n of neighbours) {
      if (!this.owns(n.dev))
        throw new TypeError(`${describeNeighbour(n)}: ${n.dev} is not a device this reconciler owns`);
      if (n.kind === 'fdb' && !this.devices.has(n.dev))
        throw new TypeError(`${describeNeighbour(n)}: FDB entries belong on a VXLAN device`);
      const k = neighbourKeyId(n);
      if (seen.has(k)) throw new TypeError(`two desired entries share the key ${k}`);
      seen.add(k);
      entries.push([k, { ...n, mac: n.mac.toLowerCase() }]);
    }
    this.tracker.desired.replaceAll(entries);
    this.desiredReady = true;
    this.loop.kick();
  }

  start(): void {
    if (this.unwatch === undefined) this.unwatch = this.kernel.watch((e) => this.onEvent(e));
    this.stopCounting ??= this.metrics?.countNeighbours(() => ({
      desired: this.tracker.desired.size(),
      programmed: this.tracker.desired.size() - this.tracker.pendingUpdateCount,
      waiting: this.waitingEntries,
    }));
    this.loop.start();
  }

  async stop(): Promise<void> {
    this.unwatch?.();
    this.unwatch = undefined;
    this.stopCounting?.();
    this.stopCounting = undefined;
    await this.loop.stop();
  }

  /** One pass now; rejects when it fails as a whole. */
  apply(): Promise<NeighbourPassResult> {
    return this.loop.run();
  }

  requestResync(): void {
    this.resyncNeeded = true;
    this.loop.requestResync();
  }

  onPass(fn: (r: NeighbourPassResult | Error) => void): () => void {
    return this.loop.onPass(fn);
  }

  // --- events

  private onEvent(e: NeighbourKernelEvent): void {
    if (this.buffered !== undefined) this.buffered.push(e);
    else this.handle(e);
  }

  private handle(e: NeighbourKernelEvent): void {
    switch (e.kind) {
      case 'overrun':
        this.resyncNeeded = true;
        this.loop.kick(0);
        return;
      case 'link': {
        if (!this.owns(e.link.name) && !this.byIndex.has(e.link.index)) return;
        const before = this.byName.get(e.link.name);
        const changed =
          e.op === 'del' || before === undefined || before.index !== e.link.index || before.up !== e.link.up;
        if (changed) {
          this.resyncNeeded = true;
          this.loop.kick();
        }
        return;
      }
      case 'neighbour': {
        const link = this.byIndex.get(e.neighbour.index);
        if (link === undefined) return;
        const n = this.fromKernel(e.neighbour, link.name);
        if (n === undefined) {
          // replaced by an entry the kernel made (not permanent): no longer ours as it is
          const k = this.keyOf(e.neighbour, link.name);
          if (k !== undefined) this.tracker.dataplane.delete(k);
        } else if (e.op === 'new') this.tracker.dataplane.set(neighbourKeyId(n), n);
        else this.tracker.dataplane.delete(neighbourKeyId(n));
        if (!this.tracker.inSync()) this.loop.kick();
        return;
      }
    }
  }

  /** A VXLAN device of ours or a workload veth. */
  private owns(dev: string): boolean {
    return this.devices.has(dev) || this.workloadPrefixes.some((p) => dev.startsWith(p));
  }

  // --- conversions

  private keyOf(info: NeighbourInfo, dev: string): string | undefined {
    if (info.family === 'bridge')
      return info.lladdr === undefined ? undefined : `fdb|${dev}|${info.lladdr.toLowerCase()}`;
    return info.dst === undefined ? undefined : `arp|${dev}|${info.dst}`;
  }

  /** Ours when permanent with a MAC (and for FDB a destination); undefined otherwise. */
  private fromKernel(info: NeighbourInfo, dev: string): Neighbour | undefined {
    if ((info.state & NUD_PERMANENT) === 0 || info.lladdr === undefined) return undefined;
    const mac = info.lladdr.toLowerCase();
    if (info.family === 'bridge')
      return info.dst === undefined ? undefined : { kind: 'fdb', dev, mac, dst: info.dst };
    return info.dst === undefined ? undefined : { kind: 'arp', family: info.family, dev, ip: info.dst, mac };
  }

  private spec(n: Neighbour, index: number): NeighbourSpec {
    return n.kind === 'arp'
      ? { family: n.family, index, dst: n.ip, lladdr: n.mac, state: NUD_PERMANENT }
      : { family: 'bridge', index, dst: n.dst, lladdr: n.mac, state: NUD_PERMANENT, flags: NTF_SELF };
  }

  // --- one pass

  private async pass(resyncAsked: boolean): Promise<NeighbourPassResult> {
    this.buffered = [];
    const resync = resyncAsked || this.resyncNeeded;
    const t0 = performance.now();
    try {
      const r = await this.passInner(resyncAsked);
      this.metrics?.passDone('neighbours', (performance.now() - t0) / 1000, r.resynced, r.inSync);
      if (this.desiredReady) this.primed = true;
      for (const k of this.drifted) if (!this.tracker.isPending(k)) this.drifted.delete(k);
      return r;
    } catch (e) {
      this.metrics?.passFailed('neighbours', (performance.now() - t0) / 1000, resync, e);
      throw e;
    } finally {
      const events = this.buffered;
      this.buffered = undefined;
      for (const e of events) this.handle(e);
    }
  }

  private async passInner(resyncAsked: boolean): Promise<NeighbourPassResult> {
    let resynced = false;
    if (resyncAsked || this.resyncNeeded) {
      this.resyncNeeded = false;
      try {
        await this.resync();
      } catch (e) {
        this.resyncNeeded = true;
        throw e;
      }
      resynced = true;
    }
    const none = { resynced, set: 0, deleted: 0, waiting: [], failed: [] };
    if (!this.desiredReady) return { ...none, inSync: false };

    const ops: NeighbourOp[] = [];
    const keys: string[] = [];
    const values: Neighbour[] = [];
    const waitingDevs = new Map<string, 'missing' | 'down'>();
    for (const k of [...this.tracker.pendingDeletions()]) {
      const n = this.tracker.dataplane.get(k)!;
      const link = this.byName.get(n.dev);
      if (link === undefined || !link.up) {
        this.tracker.dataplane.delete(k); // gone with its device
        continue;
      }
      ops.push({ op: 'delete', spec: this.spec(n, link.index) });
      keys.push(k);
      values.push(n);
    }
    let waitingEntries = 0;
    for (const [k, n] of [...this.tracker.pendingUpdates()]) {
      const link = this.byName.get(n.dev);
      if (link === undefined || !link.up) {
        waitingDevs.set(n.dev, link === undefined ? 'missing' : 'down');
        waitingEntries++;
        continue;
      }
      ops.push({ op: 'set', spec: this.spec(n, link.index) });
      keys.push(k);
      values.push(n);
    }
    let failures;
    try {
      failures = ops.length === 0 ? [] : await this.kernel.applyNeighbours(ops);
    } catch (e) {
      this.resyncNeeded = true;
      throw e;
    }
    const failedAt = new Map(failures.map((f) => [f.index, f.error]));
    let set = 0;
    let deleted = 0;
    let repaired = 0;
    const failed: { entry: string; error: Error }[] = [];
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const err = failedAt.get(i);
      if (err !== undefined) this.metrics?.writeRefused('neighbours', err);
      if (err === undefined || (op.op === 'delete' && err.code === 'ENOENT')) {
        if (err === undefined && this.drifted.delete(keys[i]!)) repaired++;
        if (op.op === 'delete') {
          this.tracker.dataplane.delete(keys[i]!);
          if (err === undefined) deleted++;
        } else {
          this.tracker.dataplane.set(keys[i]!, values[i]!);
          set++;
        }
        continue;
      }
      if (err.code === 'ENODEV' || err.code === 'ENETDOWN') this.resyncNeeded = true;
      failed.push({ entry: describeNeighbour(values[i]!), error: err });
      this.log.warn({ entry: describeNeighbour(values[i]!), err }, 'neighbour write refused');
    }
    if (set + deleted > 0) this.log.debug({ set, deleted, resynced }, 'neighbour entries written');
    this.waitingEntries = waitingEntries;
    this.metrics?.wrote('neighbours', 'set', set);
    this.metrics?.wrote('neighbours', 'delete', deleted);
    this.metrics?.repaired('neighbours', repaired);
    if (this.resyncNeeded) this.loop.kick();
    return {
      resynced,
      set,
      deleted,
      waiting: [...waitingDevs].map(([dev, reason]) => ({ dev, reason })),
      failed,
      inSync:
        failed.length === 0 &&
        this.tracker.pendingDeletionCount === 0 &&
        this.tracker.pendingUpdateCount === waitingEntries,
    };
  }

  private async resync(): Promise<void> {
    this.byName.clear();
    this.byIndex.clear();
    for (const l of await this.kernel.links())
      if (this.owns(l.name)) {
        this.byName.set(l.name, l);
        this.byIndex.set(l.index, l);
      }
    const dumped: [string, Neighbour][] = [];
    const keep = (info: NeighbourInfo): void => {
      const link = this.byIndex.get(info.index);
      if (link === undefined || !link.up) return;
      const n = this.fromKernel(info, link.name);
      if (n !== undefined) dumped.push([neighbourKeyId(n), n]);
    };
    if (this.byIndex.size > 0)
      for (const family of [4, 6] as const)
        for (const info of await this.kernel.neighbours(family)) keep(info);
    for (const link of this.byName.values())
      if (link.up && this.devices.has(link.name))
        for (const info of await this.kernel.neighbours('bridge', link.index)) keep(info);
    this.tracker.dataplane.replaceAll(dumped);
  }
}
