// Makes the kernel's routes equal to the desired ones and keeps them so.
import type { NetlinkError, RouteInfo, RouteSpec } from '@tabby/netlink/codec';
import { TABBY_ROUTE_PROTOCOL } from '@tabby/netlink';
import { isErrno, RouteView, RT_TABLE_MAIN } from '@tabby/netlink/codec';
import type { IpVersion } from '../routes/ip.js';
import type { Route, RouteKeyId, RouteNextHop } from '../routes/route.js';
import { describeRoute, routeKeyId, routesEqual } from '../routes/route.js';
import type { Clock, Logger } from '@tabby/ipip';
import { ReconcileLoop, silentLogger, systemClock } from '@tabby/ipip';
import { DeltaTracker } from './delta-tracker.js';
import type { Kernel, KernelEvent, KernelLink, RouteOp } from './kernel.js';
import { DesiredRouteIndex } from './route-index.js';
import type { Registry } from 'prom-client';
import { DataplaneMetrics } from '../metrics/metrics.js';

export interface RouteReconcilerInit {
  /** rtm_protocol marking the routes we own (default TABBY_ROUTE_PROTOCOL, 84). */
  readonly protocol?: number;
  /** The one routing table reconciled (default main, 254). */
  readonly table?: number;
  readonly families?: readonly IpVersion[];
  /** Full resync (dump and compare) every so often, events or not (default 30 s). */
  readonly resyncIntervalMs?: number;
  /** Coalesces bursts of changes and events into one pass (default 10 ms). */
  readonly debounceMs?: number;
  /** Backoff after a failed pass or a refused route: initial and cap (default 100 ms, 10 s). */
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  /**
   * A route of ours through a workload device that nobody wants is deleted only once that
   * device has been known to us this long (default 10 s): the CNI plugin writes a new pod's
   * route before the datastore tells us about the pod.
   */
  readonly cleanupGraceMs?: number;
  /** Which devices are workload veths, by name prefix (default ['cali']). */
  readonly workloadInterfacePrefixes?: readonly string[];
}

export interface RouteReconcilerComponents {
  readonly kernel: Kernel;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** [0, 1) for backoff jitter (default Math.random). */
  readonly random?: () => number;
  /** Where to register the tabby_dataplane_* metrics (none without one). */
  readonly registry?: Registry;
}

export interface WaitingRoute {
  readonly key: RouteKeyId;
  readonly dev: string;
  readonly reason: 'missing' | 'down';
}

export interface FailedRoute {
  readonly key: RouteKeyId;
  readonly route: string;
  readonly error: Error;
}

/** What one pass did and what it left. */
export interface PassResult {
  /** The kernel's routes were dumped in this pass. */
  readonly resynced: boolean;
  readonly added: number;
  readonly replaced: number;
  readonly deleted: number;
  /** Routes whose device does not exist (or is down) yet: written when it appears. */
  readonly waiting: readonly WaitingRoute[];
  /** Keys held by a route of another protocol (as of now): left alone, retried with backoff. */
  readonly conflicts: readonly RouteKeyId[];
  /** Writes the kernel refused otherwise: retried with backoff. */
  readonly failed: readonly FailedRoute[];
  /** Routes of ours not wanted, kept for the cleanup grace period. */
  readonly deferredDeletions: number;
  /** Nothing left to do but wait for devices. */
  readonly inSync: boolean;
}

interface Block {
  readonly until: number;
  readonly attempts: number;
}

/**
 * The route reconciler: a DeltaTracker of desired routes against the kernel's routes of our
 * protocol, applied in batches (Calico's felix/routetable, in spirit).
 *
 * Each pass: refresh links and dump our routes if a resync is due (first pass, timer, event
 * overrun, a link removed or renamed, a refused write that says our view is stale), then
 * delete what is ours and unwanted, add what is missing, replace what differs, in one batch.
 * Between passes the netlink monitor keeps the dataplane view current, so a route deleted or
 * changed by hand is pending again within one debounce and is rewritten.
 *
 * Ownership: only routes carrying our protocol number in our table are ever deleted or
 * replaced (deletes name the protocol, so the kernel itself refuses to match another's). A
 * missing route is added with NLM_F_EXCL: if an operator's route holds the key the add fails
 * with EEXIST, the key is reported as a conflict and retried with backoff, never replaced.
 *
 * Hazards, some learnt the hard way by Calico:
 * - No writes before the first setDesired(): an empty desired set would delete every route
 *   of ours on start. Until then passes only dump (restart adoption needs that view).
 * - Restart adoption: the first pass dumps, finds the routes a previous instance wrote, and
 *   compares; equal routes are not touched (no delete and re-add, no traffic blip).
 * - CNI race: the CNI plugin writes a pod's route (our protocol) before the pod reaches the
 *   datastore; unwanted routes through workload devices (cali*) first seen less than
 *   cleanupGraceMs ago wait (as Calico's routeCleanupGracePeriod). After a restart every
 *   device is new, so stale pod routes go 10 s after start; blackholes and routes via the
 *   underlay or a tunnel go at once.
 * - The kernel removes IPv4 routes through a deleted or downed link without RTM_DELROUTE:
 *   link removal, renaming and going down trigger a resync.
 * - A device named by a route may not exist yet (a pod being wired): the route waits, with no
 *   error and no retry timer, until a link event names that device.
 * - Event ordering: notifications arrive on another socket than the write's ACK. Events seen
 *   while a kernel call is in flight are replayed after its results are recorded, so a hand
 *   change racing our write wins the view (and is then repaired) rather than being lost.
 * - Replace is not protocol-scoped in the kernel: between our dump and a replace, an operator
 *   could take the key and we would overwrite it. The window is one pass; the periodic resync
 *   bounds how stale the view can be.
 */
export class RouteReconciler {
  private readonly kernel: Kernel;
  private readonly clock: Clock;
  private readonly log: Logger;
  readonly protocol: number;
  readonly table: number;
  private readonly families: readonly IpVersion[];
  private readonly debounceMs: number;
  private readonly cleanupGraceMs: number;
  /** Scheduling (one pass at a time, debounce, periodic resync, backoff): ipip's shared loop. */
  private readonly loop: ReconcileLoop<PassResult>;
  private readonly workloadPrefixes: readonly string[];

  private readonly metrics: DataplaneMetrics | undefined;
  private stopCounting: (() => void) | undefined;
  /**
   * Keys the kernel moved out of sync behind our back (after a first pass with the desired
   * routes known: before that, differences are a restart's leftovers, not drift).
   */
  private readonly drifted = new Set<RouteKeyId>();
  private primed = false;
  /** The desired routes in integer form for the resync's comparison (see route-index.ts). */
  private readonly index = new DesiredRouteIndex();
  private readonly tracker = new DeltaTracker<RouteKeyId, Route>(routesEqual, {
    onDrift: (k) => {
      if (this.primed) this.drifted.add(k);
    },
    // the index follows the desired routes change by change (a resync never rebuilds it)
    onDesired: (k, r) => (r === undefined ? this.index.remove(k) : this.index.upsert(k, r)),
  });
  /** Reused for kernels without scanRoutes (routes() read into it one by one). */
  private readonly view = new RouteView();
  private readonly linksByName = new Map<string, KernelLink>();
  private readonly linksByIndex = new Map<number, KernelLink>();
  private readonly firstSeen = new Map<string, number>();
  private readonly blocked = new Map<RouteKeyId, Block>();
  /** Keys whose add met EEXIST while no route of ours held them: another protocol's route. */
  private readonly conflicts = new Set<RouteKeyId>();
  private waitingDevs = new Set<string>();

  private desiredReady = false;
  private resyncNeeded = true;
  private linksStale = true;
  private unwatch: (() => void) | undefined;
  /** Events seen while a kernel call is in flight, replayed after it. */
  private buffered: KernelEvent[] | undefined;

  lastResult: PassResult | undefined;
  lastError: Error | undefined;

  constructor(components: RouteReconcilerComponents, init: RouteReconcilerInit = {}) {
    this.kernel = components.kernel;
    this.clock = components.clock ?? systemClock;
    this.log = components.logger ?? silentLogger;
    this.protocol = init.protocol ?? TABBY_ROUTE_PROTOCOL;
    this.table = init.table ?? RT_TABLE_MAIN;
    this.families = init.families ?? [4, 6];
    this.debounceMs = init.debounceMs ?? 10;
    this.cleanupGraceMs = init.cleanupGraceMs ?? 10_000;
    this.workloadPrefixes = init.workloadInterfacePrefixes ?? ['cali'];
    this.metrics = components.registry === undefined ? undefined : DataplaneMetrics.on(components.registry);
    if (!Number.isInteger(this.protocol) || this.protocol < 1 || this.protocol > 255)
      throw new RangeError(`invalid route protocol ${this.protocol}`);
    this.loop = new ReconcileLoop<PassResult>(
      {
        pass: (resync) => {
          if (resync) this.resyncNeeded = this.linksStale = true;
          return this.pass();
        },
        retryIn: (r) => this.nextWake(r),
        clock: this.clock,
        ...(components.random === undefined ? {} : { random: components.random }),
      },
      {
        debounceMs: this.debounceMs,
        resyncIntervalMs: init.resyncIntervalMs ?? 30_000,
        backoffInitialMs: init.backoffInitialMs ?? 100,
        backoffMaxMs: init.backoffMaxMs ?? 10_000,
      },
    );
    this.loop.onPass((r) => {
      if (r instanceof Error) {
        this.lastError = r;
        this.log.warn({ err: r }, 'route pass failed; retrying with backoff');
      } else {
        this.lastResult = r;
        this.lastError = undefined;
      }
    });
  }

  /** Replaces the desired routes (all of them: what is not given is not wanted). */
  setDesired(routes: Iterable<Route>): void {
    const entries: [RouteKeyId, Route][] = [];
    const seen = new Set<RouteKeyId>();
    for (const r of routes) {
      if (r.table !== this.table)
        throw new TypeError(
          `route ${describeRoute(r)} is in table ${r.table}, this reconciler owns ${this.table}`,
        );
      if (!this.families.includes(r.family))
        throw new TypeError(`route ${describeRoute(r)}: IPv${r.family} is not reconciled here`);
      const k = routeKeyId(r);
      if (seen.has(k)) throw new TypeError(`two desired routes share the key ${k}`);
      seen.add(k);
      entries.push([k, r]);
    }
    this.tracker.desired.replaceAll(entries);
    this.desiredReady = true;
    this.kick(this.debounceMs);
  }

  /** Starts watching the kernel, the periodic resync, and the first pass. */
  start(): void {
    if (this.loop.isRunning) return;
    this.unwatch = this.kernel.watch((e) => this.onEvent(e));
    this.stopCounting = this.metrics?.countRoutes(() => {
      const c = this.counts;
      return {
        desired: c.desired,
        programmed: c.desired - c.pendingUpdates,
        waiting: this.lastResult?.waiting.length ?? 0,
      };
    });
    this.loop.start();
  }

  /** Stops timers and the watch; waits for a pass in flight. Routes stay as they are. */
  async stop(): Promise<void> {
    this.unwatch?.();
    this.unwatch = undefined;
    this.stopCounting?.();
    this.stopCounting = undefined;
    await this.loop.stop();
  }

  /** Asks for a full resync (dump and compare) at the next pass, and schedules it. */
  requestResync(): void {
    this.resyncNeeded = true;
    this.linksStale = true;
    this.kick(0);
  }

  /** Runs one pass now (after the one in flight, if any); rejects when the pass fails. */
  apply(): Promise<PassResult> {
    return this.loop.run();
  }

  /** Called after every pass with its result, or with the error of a failed one. */
  onPass(fn: (r: PassResult | Error) => void): () => void {
    return this.loop.onPass(fn);
  }

  /** The desired routes, and which of them the kernel has as wanted. */
  get counts(): { desired: number; programmed: number; pendingUpdates: number; pendingDeletions: number } {
    return {
      desired: this.tracker.desired.size(),
      programmed: this.tracker.dataplane.size(),
      pendingUpdates: this.tracker.pendingUpdateCount,
      pendingDeletions: this.tracker.pendingDeletionCount,
    };
  }

  // --- scheduling

  private kick(delayMs: number): void {
    this.loop.kick(delayMs);
  }

  private block(k: RouteKeyId): void {
    const attempts = (this.blocked.get(k)?.attempts ?? 0) + 1;
    this.blocked.set(k, { attempts, until: this.clock.now() + this.loop.backoff(attempts) });
  }

  /** When the next pass is due for blocked keys, deferred deletions or changes made during this one. */
  private nextWake(r: PassResult): number | undefined {
    const now = this.clock.now();
    let wake = Infinity;
    for (const b of this.blocked.values()) wake = Math.min(wake, b.until);
    if (r.deferredDeletions > 0)
      for (const k of this.tracker.pendingDeletions()) {
        const route = this.tracker.dataplane.get(k);
        if (route !== undefined) wake = Math.min(wake, this.graceEnds(route));
      }
    let delay = wake === Infinity ? Infinity : Math.max(0, wake - now);
    if (this.resyncNeeded) delay = Math.min(delay, this.debounceMs);
    if (!this.tracker.inSync() && r.waiting.length === 0 && wake === Infinity && this.desiredReady)
      delay = Math.min(delay, this.debounceMs); // something changed during the pass
    return delay === Infinity ? undefined : delay;
  }

  // --- events

  private onEvent(e: KernelEvent): void {
    if (this.buffered !== undefined) {
      this.buffered.push(e);
      return;
    }
    this.handle(e);
  }

  private handle(e: KernelEvent): void {
    switch (e.kind) {
      case 'overrun':
        this.log.warn({ err: e.error }, 'kernel events lost: resync');
        this.requestResync();
        return;
      case 'link':
        this.handleLink(e.op, e.link);
        return;
      case 'route':
        this.handleRoute(e.op, e.route);
        return;
    }
  }

  private handleLink(op: 'new' | 'del', link: KernelLink): void {
    const before = this.linksByIndex.get(link.index);
    if (op === 'del') {
      this.forgetLink(link.index);
      // the kernel dropped the routes through it without telling us
      this.resyncNeeded = true;
      this.kick(this.debounceMs);
      return;
    }
    const renamed = before !== undefined && before.name !== link.name;
    const wentDown = before !== undefined && before.up && !link.up;
    if (before !== undefined) this.forgetLink(link.index);
    this.rememberLink(link);
    if (renamed || wentDown) {
      this.resyncNeeded = true;
      this.kick(this.debounceMs);
    } else if (this.waitingDevs.has(link.name) && link.up) this.kick(this.debounceMs);
  }

  private handleRoute(op: 'new' | 'del', info: RouteInfo): void {
    if (info.table !== this.table || !this.families.includes(info.family)) return;
    const route = this.fromKernel(info);
    const k = routeKeyId(route);
    if (info.protocol === this.protocol) {
      if (op === 'new') this.tracker.dataplane.set(k, route);
      else this.tracker.dataplane.delete(k);
    } else if (op === 'new') {
      // another protocol's route now holds the key (a replace by hand): no longer ours
      this.tracker.dataplane.delete(k);
    } else {
      // the route that held a key we want is gone: try now, not at the end of the backoff
      this.blocked.delete(k);
      this.conflicts.delete(k);
    }
    if (!this.tracker.inSync()) this.kick(this.debounceMs);
  }

  private rememberLink(l: KernelLink): void {
    this.linksByIndex.set(l.index, l);
    this.linksByName.set(l.name, l);
    if (!this.firstSeen.has(l.name)) this.firstSeen.set(l.name, this.clock.now());
  }

  private forgetLink(index: number): void {
    const l = this.linksByIndex.get(index);
    if (l === undefined) return;
    this.linksByIndex.delete(index);
    if (this.linksByName.get(l.name)?.index === index) {
      this.linksByName.delete(l.name);
      this.firstSeen.delete(l.name);
    }
  }

  // --- conversions

  private fromKernel(info: RouteInfo): Route {
    const nexthops: RouteNextHop[] = [];
    if (info.type === 'unicast')
      for (const nh of info.nexthops) {
        const hop: { -readonly [K in keyof RouteNextHop]: RouteNextHop[K] } = {
          dev: nh.oif === undefined ? '' : (this.linksByIndex.get(nh.oif)?.name ?? `#${nh.oif}`),
        };
        if (nh.gateway !== undefined) hop.gateway = nh.gateway;
        if (nh.onlink === true) hop.onlink = true;
        if (nh.weight !== undefined && nh.weight !== 1) hop.weight = nh.weight;
        nexthops.push(hop);
      }
    return {
      family: info.family,
      table: info.table,
      dst: info.dst,
      dstLen: info.dstLen,
      metric: info.priority ?? 0,
      type: info.type,
      scope: info.scope,
      nexthops,
    };
  }

  private deleteSpec(r: Route): RouteSpec {
    return {
      family: r.family,
      dst: r.dst,
      dstLen: r.dstLen,
      table: r.table,
      protocol: this.protocol,
      type: r.type,
      priority: r.metric,
    };
  }

  private graceEnds(r: Route): number {
    let end = -Infinity;
    for (const nh of r.nexthops) {
      if (!this.workloadPrefixes.some((p) => nh.dev.startsWith(p))) continue;
      const seen = this.firstSeen.get(nh.dev);
      if (seen !== undefined) end = Math.max(end, seen + this.cleanupGraceMs);
    }
    return end;
  }

  // --- one pass

  private async refreshLinks(): Promise<void> {
    const links = await this.kernel.links();
    const present = new Set<number>();
    for (const l of links) {
      present.add(l.index);
      const before = this.linksByIndex.get(l.index);
      if (before !== undefined) this.forgetLink(l.index);
      this.rememberLink(l);
    }
    for (const index of [...this.linksByIndex.keys()]) if (!present.has(index)) this.forgetLink(index);
    this.linksStale = false;
  }

  private async pass(): Promise<PassResult> {
    this.buffered = [];
    const resync = this.resyncNeeded;
    const t0 = performance.now();
    try {
      const r = await this.passInner();
      this.metrics?.passDone('routes', (performance.now() - t0) / 1000, r.resynced, r.inSync);
      if (this.desiredReady) this.primed = true;
      // drift put right some other way (no longer wanted, changed back by hand) is not ours to count
      for (const k of this.drifted) if (!this.tracker.isPending(k)) this.drifted.delete(k);
      return r;
    } catch (e) {
      this.metrics?.passFailed('routes', (performance.now() - t0) / 1000, resync, e);
      throw e;
    } finally {
      const events = this.buffered;
      this.buffered = undefined;
      for (const e of events) this.handle(e);
    }
  }

  /**
   * Dumps our routes and makes the tracker's dataplane side equal to them. Dumped routes
   * equal to the desired route with their key are recognised in integer form (no string
   * key, no route object); only the others are read into objects. The tracker ends as
   * dataplane.replaceAll(every dumped route) would leave it.
   */
  private async resync(): Promise<void> {
    const index = this.index;
    index.resolveDevices((name) => this.linksByName.get(name)?.index);
    const epoch = index.nextEpoch();
    const differing: [RouteKeyId, Route][] = [];
    const visit = (v: RouteView): void => {
      const e = index.find(v);
      if (e >= 0 && index.matches(e, v)) {
        index.markSeen(e, epoch);
        return;
      }
      const r = this.fromKernel(v.toInfo());
      differing.push([routeKeyId(r), r]);
    };
    for (const family of this.families) {
      const filter = { family, table: this.table, protocol: this.protocol };
      if (this.kernel.scanRoutes !== undefined) await this.kernel.scanRoutes(filter, visit);
      else for (const info of await this.kernel.routes(filter)) visit(this.view.assign(info));
    }
    // the tracker's dataplane side as the dump showed it: matched entries, differing routes, nothing else
    const dp = this.tracker.dataplane;
    const present: RouteKeyId[] = [];
    index.forEachSeen(epoch, (k, r) => {
      present.push(k);
      // already this very object: in sync, nothing to refresh
      if (dp.get(k) !== r) dp.set(k, r);
    });
    for (const [k, r] of differing) dp.set(k, r);
    // what the dump did not show is gone (counting suffices when every dumped route matched)
    if (differing.length === 0 && dp.size() === present.length) return;
    const keep = new Set<RouteKeyId>(present);
    for (const [k] of differing) keep.add(k);
    for (const k of [...dp.keys()]) if (!keep.has(k)) dp.delete(k);
  }

  private async passInner(): Promise<PassResult> {
    let resynced = false;
    if (this.linksStale || this.resyncNeeded) await this.refreshLinks();
    if (this.resyncNeeded) {
      this.resyncNeeded = false;
      try {
        await this.resync();
      } catch (e) {
        this.resyncNeeded = true;
        throw e;
      }
      resynced = true;
    }
    const empty = {
      resynced,
      added: 0,
      replaced: 0,
      deleted: 0,
      waiting: [],
      conflicts: [],
      failed: [],
      deferredDeletions: 0,
    };
    // no writes before we are told what is wanted (an empty set would delete everything)
    if (!this.desiredReady) return { ...empty, inSync: false };

    const now = this.clock.now();
    const ops: RouteOp[] = [];
    const keys: RouteKeyId[] = [];
    const routes: Route[] = [];
    let deferredDeletions = 0;
    for (const k of [...this.tracker.pendingDeletions()]) {
      const r = this.tracker.dataplane.get(k)!;
      if (this.graceEnds(r) > now) {
        deferredDeletions++;
        continue;
      }
      ops.push({ op: 'delete', route: this.deleteSpec(r) });
      keys.push(k);
      routes.push(r);
    }
    const waiting: WaitingRoute[] = [];
    for (const k of this.blocked.keys())
      if (this.tracker.desired.get(k) === undefined) this.blocked.delete(k);
    for (const [k, r] of [...this.tracker.pendingUpdates()]) {
      const b = this.blocked.get(k);
      if (b !== undefined && b.until > now) continue;
      const nexthops: { oif: number; gateway?: string; onlink?: boolean; weight?: number }[] = [];
      let wait: WaitingRoute | undefined;
      if (r.type === 'unicast')
        for (const nh of r.nexthops) {
          const link = this.linksByName.get(nh.dev);
          if (link === undefined || !link.up) {
            wait = { key: k, dev: nh.dev, reason: link === undefined ? 'missing' : 'down' };
            break;
          }
          const hop: { oif: number; gateway?: string; onlink?: boolean; weight?: number } = {
            oif: link.index,
          };
          if (nh.gateway !== undefined) hop.gateway = nh.gateway;
          if (nh.onlink === true) hop.onlink = true;
          if (nh.weight !== undefined) hop.weight = nh.weight;
          nexthops.push(hop);
        }
      if (wait !== undefined) {
        waiting.push(wait);
        continue;
      }
      ops.push({
        op: this.tracker.dataplane.has(k) ? 'replace' : 'add',
        route: {
          family: r.family,
          dst: r.dst,
          dstLen: r.dstLen,
          table: r.table,
          protocol: this.protocol,
          scope: r.scope,
          type: r.type,
          priority: r.metric,
          nexthops,
        },
      });
      keys.push(k);
      routes.push(r);
    }
    this.waitingDevs = new Set(waiting.map((w) => w.dev));

    let failures;
    try {
      failures = ops.length === 0 ? [] : await this.kernel.applyRoutes(ops);
    } catch (e) {
      // some writes may have happened: only a dump can say which
      this.resyncNeeded = true;
      throw e;
    }
    const failedAt = new Map<number, NetlinkError>();
    for (const f of failures) failedAt.set(f.index, f.error);
    let added = 0;
    let replaced = 0;
    let deleted = 0;
    let repaired = 0;
    const failed: FailedRoute[] = [];
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const k = keys[i]!;
      const r = routes[i]!;
      const err = failedAt.get(i);
      if (err === undefined) {
        if (this.drifted.delete(k)) repaired++;
        this.blocked.delete(k);
        this.conflicts.delete(k);
        if (op.op === 'delete') {
          this.tracker.dataplane.delete(k);
          deleted++;
        } else {
          this.tracker.dataplane.set(k, r);
          if (op.op === 'add') added++;
          else replaced++;
        }
        continue;
      }
      this.metrics?.writeRefused('routes', err);
      if (op.op === 'delete' && isErrno(err, 'ESRCH')) {
        // gone already, or replaced by another protocol's route: the next dump says which
        this.tracker.dataplane.delete(k);
        this.resyncNeeded = true;
        continue;
      }
      this.block(k);
      if (op.op === 'add' && isErrno(err, 'EEXIST')) {
        // someone holds the key: ours after all (the next dump adopts it) or another's (left alone)
        this.conflicts.add(k);
        this.resyncNeeded = true;
        this.log.warn({ route: describeRoute(r), err }, 'route key held by another route; not replacing it');
      } else if (isErrno(err, 'ENODEV') || isErrno(err, 'ENETDOWN')) {
        this.linksStale = true;
        waiting.push({
          key: k,
          dev: r.nexthops[0]?.dev ?? '',
          reason: isErrno(err, 'ENODEV') ? 'missing' : 'down',
        });
      } else {
        failed.push({ key: k, route: describeRoute(r), error: err });
        this.log.warn({ route: describeRoute(r), err }, 'route write refused');
      }
    }
    if (added + replaced + deleted > 0)
      this.log.debug({ added, replaced, deleted, resynced }, 'routes written');
    // counted once per pass: a labelled inc() per route would cost more than the write
    this.metrics?.wrote('routes', 'add', added);
    this.metrics?.wrote('routes', 'replace', replaced);
    this.metrics?.wrote('routes', 'delete', deleted);
    this.metrics?.repaired('routes', repaired);
    return {
      resynced,
      added,
      replaced,
      deleted,
      waiting,
      conflicts: [...this.conflicts],
      failed,
      deferredDeletions,
      inSync:
        this.tracker.pendingDeletionCount === deferredDeletions &&
        this.tracker.pendingUpdateCount === waiting.length,
    };
  }
}
