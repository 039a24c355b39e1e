// The node daemon's core: the datastore (ResourceCache) -> computeBgpConfig -> the bgp-ts
// speaker, and the speaker's best paths -> the dataplane. What the speaker runs is exactly
// speakerConfigFor(computeBgpConfig(...)) (`applied` exposes it, and a test compares the
// sessions the speaker opens with it). Configuration changes reach the speaker through
// reconfigure(): new peers start, removed ones stop, policy-only changes keep their
// sessions; only a new router ID, AS, cluster ID or listen address restarts the speaker.
import type { Datastore, Utilization } from '@tabby/datastore';
import type { BestPathEvent, PeerStatus, Speaker, SpeakerConfig, SpeakerEvents } from 'bgp-ts/speaker';
import type { PathAttributes } from 'bgp-ts/wire';
import { describeNotification } from 'bgp-ts/wire';
import { SpeakerMetrics } from 'bgp-ts/daemon';
import type { Registry } from 'prom-client';
import { computeBgpConfig } from '../bgpconfig/compute.js';
import type { BgpEnvironment, BgpSnapshot, KubernetesObjects } from '../bgpconfig/inputs.js';
import type { BgpConfig, PeerConfig, PeerType } from '../bgpconfig/model.js';
import { speakerConfigFor } from '../bgp/speaker-config.js';
import { borrowedAddresses } from './local-routes.js';
import { NodeMetrics } from './metrics.js';
import type { CacheHealth } from './resource-cache.js';
import { ResourceCache } from './resource-cache.js';

/** What the dataplane is given: learned best paths, with the configuration they came with. */
export interface DataplaneView {
  /** prefix -> next hops (several for ECMP), routes learned from peers only. */
  readonly paths: ReadonlyMap<string, readonly string[]>;
  readonly config: BgpConfig;
  readonly snapshot: BgpSnapshot;
}

export interface Dataplane {
  /** Resolves when the kernel has what the view asks for (for the programming-latency metric). */
  update(view: DataplaneView): void | Promise<void>;
  /** Paths to other nodes an earlier run left programmed (kept while BGP comes back). */
  adopt?(): Promise<ReadonlyMap<string, readonly string[]>>;
}

/**
 * The Kubernetes objects the configuration reads beyond the datastore (Secrets, Services,
 * EndpointSlices, Node labels): kubernetes/objects-watcher.ts. The daemon starts and stops it,
 * tells it each snapshot it computes from, and computes nothing until it is synced.
 */
export interface KubernetesObjectsSource {
  /** Starts watching; `onChange` after each change applied. */
  start(onChange: () => void): void;
  /** Told each snapshot before a pass, to follow what it names (password Secrets, service ranges). */
  follow(snapshot: BgpSnapshot, env: BgpEnvironment): void;
  readonly synced: boolean;
  current(): KubernetesObjects;
  readonly health: CacheHealth;
  stop(): void;
}

export interface NodeDaemonOptions {
  readonly datastore: Datastore;
  readonly nodeName: string;
  readonly env?: BgpEnvironment;
  /** Builds a speaker (the real one: `new Speaker(config, deps, events)`). */
  readonly createSpeaker: (config: SpeakerConfig, events: SpeakerEvents) => Speaker;
  readonly dataplane?: Dataplane;
  /** Listen host when bindMode is not NodeIP. */
  readonly listenHost?: string;
  /**
   * After a restart, how long at most to keep the paths the kernel already has while the
   * peers send their routes again (ended earlier by every peer's End-of-RIB). Default 120 s,
   * BIRD's and Calico's graceful restart time.
   */
  readonly retainMs?: number;
  /** Milliseconds to gather datastore changes before recomputing (default 50). */
  readonly debounceMs?: number;
  /** One structured line per decision (fields for the log's JSON). */
  readonly log?: (
    level: 'info' | 'warn' | 'error',
    msg: string,
    fields?: Readonly<Record<string, unknown>>,
  ) => void;
  /** IPAM usage for /metrics (the daemon's Ipam); absent: not exported. */
  readonly ipamUtilization?: () => Promise<Utilization>;
  /** Prometheus registry for the speaker's and the daemon's metrics; absent: none. */
  readonly registry?: Registry;
  /** Kubernetes objects from the API server; absent: `cache.kubernetes` as set (default none). */
  readonly kubernetes?: KubernetesObjectsSource;
  /**
   * Called once the dataplane has programmed a configuration's routes and the node is ready
   * (Calico then marks the Kubernetes Node's network available: kubernetes/node-condition.ts);
   * again after later such moments, so it must be idempotent.
   */
  readonly onRoutesProgrammed?: () => void;
}

/** A peer as `tabby status` shows it: the configuration's view joined with the session's. */
export interface PeerView {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly type: PeerType;
  readonly source: string;
  readonly asNumber: number;
  readonly state: string;
  /** Milliseconds since the epoch of the last state change. */
  readonly since: number;
  readonly info: string;
  readonly prefixesIn: number;
  readonly prefixesOut: number;
}

export interface DaemonStatus {
  readonly node: string;
  readonly routerId: string;
  readonly asNumber: number;
  readonly peers: readonly PeerView[];
  readonly datastore: CacheHealth;
  /** The Kubernetes objects' watches, when the daemon has them. */
  readonly kubernetes?: CacheHealth;
  readonly warnings: readonly string[];
  /** Why the speaker is not running, when it is not. */
  readonly speakerError?: string;
}

const identity = (c: SpeakerConfig): string =>
  JSON.stringify([c.routerId, c.localAsn, c.clusterId ?? null, c.listen ?? null]);

function nextHopOf(a: PathAttributes): string | undefined {
  return a.mpReachNlri?.kind === 'prefixes' ? a.mpReachNlri.nextHop : a.nextHop;
}

export class NodeDaemon {
  readonly cache: ResourceCache;
  private speaker: Speaker | undefined;
  private speakerConfig: SpeakerConfig | undefined;
  private config: BgpConfig | undefined;
  private speakerError: string | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private applying: Promise<void> = Promise.resolve();
  private readonly paths = new Map<string, string[]>();
  private dataplaneTimer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  /** Every applied configuration's peers, for tests and status: what the speaker was told. */
  private appliedCount = 0;
  /** The speaker's clock is performance.now(); status speaks wall-clock time. */
  private readonly epochOffset = Date.now() - performance.now();

  private readonly speakerMetrics: SpeakerMetrics | undefined;
  readonly metrics: NodeMetrics | undefined;
  /** Peer AS by name, for metric labels. */
  private readonly asnOf = new Map<string, number>();
  /** Set once every peer was Established at the same time (Calico's start-up readiness). */
  private startedUp = false;
  /** When the oldest best-path change not yet handed to the dataplane happened. */
  private pendingSince: number | undefined;
  /** The dataplane has finished an update (for onRoutesProgrammed). */
  private programmed = false;

  constructor(private readonly opts: NodeDaemonOptions) {
    this.cache = new ResourceCache(opts.datastore, () => this.schedule());
    if (opts.registry !== undefined) {
      this.speakerMetrics = new SpeakerMetrics(
        opts.registry,
        () =>
          (this.speaker?.status() ?? []).map((s) => ({
            peer: s.name,
            peerAsn: s.asn,
            state: s.state,
            uptime: s.state === 'established' ? Math.max(0, (performance.now() - s.since) / 1000) : 0,
            received: s.received,
            accepted: s.accepted,
            advertised: s.advertised,
            lastErrorCode: s.lastErrorCode,
          })),
        'tabby_bgp',
      );
      this.metrics = new NodeMetrics(
        opts.registry,
        () => ({ health: this.cache.health, learned: this.paths.size, ready: this.ready().ready }),
        opts.ipamUtilization !== undefined
          ? { nodeName: opts.nodeName, utilization: opts.ipamUtilization }
          : undefined,
      );
    }
  }

  /** Paths adopted from the kernel at start, kept until the peers have sent theirs again. */
  private retained = new Map<string, readonly string[]>();
  private retainTimer: ReturnType<typeof setTimeout> | undefined;
  /** Peer/family pairs that sent End-of-RIB since start. */
  private readonly eor = new Set<string>();

  start(): void {
    void this.init();
  }

  private async init(): Promise<void> {
    const dp = this.opts.dataplane;
    if (dp?.adopt !== undefined) {
      try {
        this.retained = new Map(await dp.adopt());
      } catch (e) {
        this.log('warn', `could not read the kernel's routes to adopt them: ${(e as Error).message}`);
      }
      if (this.retained.size > 0) {
        this.log('info', `keeping ${this.retained.size} routes from the kernel while BGP comes back`);
        this.retainTimer = setTimeout(() => this.endRetention('timer'), this.opts.retainMs ?? 120_000);
      }
    }
    if (!this.stopped) {
      this.cache.start();
      this.opts.kubernetes?.start(() => this.schedule());
    }
  }

  /** Stops keeping adopted paths: every peer sent End-of-RIB, or the time is up. */
  private endRetention(why: 'endOfRib' | 'timer'): void {
    if (this.retainTimer !== undefined) clearTimeout(this.retainTimer);
    this.retainTimer = undefined;
    if (this.retained.size === 0) return;
    this.log(
      'info',
      `adopted routes now follow BGP alone (${why === 'timer' ? 'retention time over' : 'every peer sent End-of-RIB'})`,
    );
    this.retained.clear();
    this.pushDataplane(this.cache.snapshot());
  }

  private checkRetention(): void {
    if (this.retained.size === 0 || this.speakerConfig === undefined) return;
    const done = this.speakerConfig.peers.every((p) =>
      (p.families ?? []).every((f) => this.eor.has(`${p.name}/${f}`)),
    );
    if (done) this.endRetention('endOfRib');
  }

  /** The configuration last applied and the speaker settings made from it. */
  get applied(): { readonly config?: BgpConfig; readonly speaker?: SpeakerConfig; readonly count: number } {
    return {
      ...(this.config !== undefined ? { config: this.config } : {}),
      ...(this.speakerConfig !== undefined ? { speaker: this.speakerConfig } : {}),
      count: this.appliedCount,
    };
  }

  private log(
    level: 'info' | 'warn' | 'error',
    msg: string,
    fields?: Readonly<Record<string, unknown>>,
  ): void {
    this.opts.log?.(level, msg, fields);
  }

  private schedule(): void {
    if (this.stopped || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // One pass at a time; changes during a pass schedule the next.
      this.applying = this.applying
        .then(() => this.recompute())
        .catch((e: unknown) => {
          this.log('error', `applying the configuration failed: ${(e as Error).stack ?? String(e)}`);
        });
    }, this.opts.debounceMs ?? 50);
  }

  /** Waits until pending changes are applied (tests, status after a write). */
  async settled(): Promise<void> {
    while (this.timer !== undefined) await new Promise((r) => setTimeout(r, 5));
    await this.applying;
  }

  private async recompute(): Promise<void> {
    if (this.stopped || !this.cache.health.synced) return;
    const k = this.opts.kubernetes;
    if (k !== undefined) {
      // Its changes schedule the next pass; until it is synced there is nothing to compute from.
      k.follow(this.cache.snapshot(), this.opts.env ?? {});
      if (!k.synced) return;
      this.cache.kubernetes = k.current();
    }
    const snapshot = this.cache.snapshot();
    const cfg = computeBgpConfig(snapshot, this.opts.nodeName, this.opts.env ?? {});
    const borrowed = borrowedAddresses(cfg, snapshot.workloadEndpoints);
    const sc = speakerConfigFor(cfg, {
      ...(this.opts.listenHost !== undefined ? { listenHost: this.opts.listenHost } : {}),
      extraOriginations: borrowed.map((prefix) => ({ prefix })),
    });
    for (const w of cfg.warnings) if (!(this.config?.warnings ?? []).includes(w)) this.log('warn', w);
    // Blocks claimed and released by this node: what it originates changes.
    const blocksOf = (c: BgpConfig | undefined) =>
      new Set([...(c?.ipv4.exports.blocks ?? []), ...(c?.ipv6.exports.blocks ?? [])].map((b) => b.cidr));
    const before = blocksOf(this.config);
    const after = blocksOf(cfg);
    for (const b of after)
      if (!before.has(b)) this.log('info', 'block claimed: exported as an aggregate', { block: b });
    for (const b of before) if (!after.has(b)) this.log('info', 'block released: withdrawn', { block: b });
    this.config = cfg;
    if (cfg.routerId === '') {
      this.speakerError = 'no router ID: the node has no IPv4 address and CALICO_ROUTER_ID is not set';
      await this.stopSpeaker();
      this.speakerConfig = undefined;
      this.appliedCount++;
      this.pushDataplane(snapshot);
      return;
    }
    if (
      this.speaker === undefined ||
      this.speakerConfig === undefined ||
      identity(sc) !== identity(this.speakerConfig)
    ) {
      await this.stopSpeaker();
      // RFC 4724: after a restart that kept forwarding (routes adopted from the kernel), say so
      // in our OPENs (R bit) and send nothing until the peers' End-of-RIB (selection deferral).
      const restarting = this.retained.size > 0 && this.appliedCount === 0;
      const speaker = this.opts.createSpeaker(restarting ? { ...sc, restarting } : sc, this.events());
      try {
        await speaker.start();
        this.speaker = speaker;
        this.speakerError = undefined;
        this.log('info', 'BGP speaker started', { routerId: sc.routerId, as: sc.localAsn, restarting });
        for (const p of sc.peers)
          this.log('info', 'BGP peer added', { peer: p.name, address: p.address, as: p.asn });
      } catch (e) {
        this.speakerError = `the BGP speaker did not start: ${(e as Error).message}`;
        this.log('error', this.speakerError);
        await speaker.stop().catch(() => undefined);
      }
    } else {
      const r = this.speaker.reconfigure({ peers: sc.peers, originate: sc.originate ?? [] });
      for (const [what, names] of [
        ['BGP peer added', r.added],
        ['BGP peer removed', r.removed],
        ['BGP peer restarted: its session settings changed', r.changed],
        ['BGP peer filters or exports changed: session kept', r.softened],
      ] as const)
        for (const peer of names) this.log('info', what, { peer });
    }
    this.speakerConfig = sc;
    this.appliedCount++;
    this.metrics?.configApplied.inc();
    const removed = [...this.asnOf.keys()].filter((n) => !sc.peers.some((p) => p.name === n));
    for (const n of removed) {
      this.speakerMetrics?.forget(n, this.asnOf.get(n)!);
      this.asnOf.delete(n);
    }
    for (const p of sc.peers) this.asnOf.set(p.name, p.asn);
    this.pushDataplane(snapshot);
    this.checkRetention();
  }

  private events(): SpeakerEvents {
    return {
      bestPath: (e: BestPathEvent) => this.bestPath(e),
      endOfRib: (name, family) => {
        this.eor.add(`${name}/${family}`);
        this.checkRetention();
      },
      internalError: (name, error) =>
        this.log('error', `BGP peer ${name}: internal error: ${(error as Error).stack ?? String(error)}`),
      peerState: (name, from, to, reason) => {
        if (to === 'established') {
          this.speakerMetrics?.transitions.inc({ peer: name, peer_asn: this.asnOf.get(name) ?? 0 });
          queueMicrotask(() => this.routesProgrammed());
        }
        // As `bgp-ts run` logs it: the reason's kind, the NOTIFICATION named and numbered
        // (its data in hex), the detail.
        const fields: Record<string, unknown> = { peer: name, from, to, reason: reason.kind };
        if ('notification' in reason) {
          fields['notification'] = describeNotification(reason.notification);
          if (reason.notification.data.length > 0)
            fields['data'] = Buffer.from(reason.notification.data).toString('hex');
        }
        if ('detail' in reason) fields['detail'] = reason.detail;
        this.log('info', 'BGP session state', fields);
      },
      message: (name, direction, type, bytes) =>
        this.speakerMetrics?.countMessage(name, this.asnOf.get(name) ?? 0, direction, type, bytes),
      updateProcessed: (_name, seconds) => this.speakerMetrics?.updateSeconds.observe(seconds),
    };
  }

  private bestPath(e: BestPathEvent): void {
    const prefix = e.prefix;
    if (e.type === 'withdraw' || e.best.peer === 0)
      this.paths.delete(prefix); // 0: our own originations
    else {
      const hops = [
        ...new Set(
          e.multipath.map((r) => nextHopOf(r.attributes)).filter((h): h is string => h !== undefined),
        ),
      ];
      this.paths.set(prefix, hops.length > 0 ? hops : [nextHopOf(e.best.attributes) ?? '']);
    }
    this.pendingSince ??= performance.now();
    if (this.dataplaneTimer === undefined && this.opts.dataplane !== undefined)
      this.dataplaneTimer = setTimeout(() => {
        this.dataplaneTimer = undefined;
        this.pushDataplane(this.cache.snapshot());
      }, 10);
  }

  private pushDataplane(snapshot: BgpSnapshot): void {
    if (this.opts.dataplane === undefined || this.config === undefined) return;
    const since = this.pendingSince;
    this.pendingSince = undefined;
    // Learned paths win; adopted ones fill in until the peers have sent theirs (restart).
    const paths = new Map<string, readonly string[]>(this.retained);
    for (const [p, hops] of this.paths) paths.set(p, hops);
    const done = this.opts.dataplane.update({ paths, config: this.config, snapshot });
    void Promise.resolve(done).then(
      () => {
        if (since !== undefined) this.metrics?.programmingSeconds.observe((performance.now() - since) / 1000);
        this.programmed = true;
        this.routesProgrammed();
      },
      () => undefined, // the dataplane reports its own failures
    );
  }

  /** onRoutesProgrammed, when the dataplane has programmed routes and the node is ready. */
  private routesProgrammed(): void {
    if (this.stopped || !this.programmed || this.opts.onRoutesProgrammed === undefined) return;
    if (this.ready().ready) this.opts.onRoutesProgrammed();
  }

  /**
   * Calico's readiness (calico-node -bird-ready): during start-up every peer Established;
   * afterwards at least one (none configured counts as ready); the datastore synced; the
   * speaker running.
   */
  ready(): { readonly ready: boolean; readonly reason: string } {
    const h = this.cache.health;
    if (!h.synced) return { ready: false, reason: 'the datastore is not synced yet' };
    if (this.opts.kubernetes !== undefined && !this.opts.kubernetes.synced)
      return { ready: false, reason: 'the Kubernetes objects (Secrets, Services, Nodes) are not synced yet' };
    if (this.speakerError !== undefined) return { ready: false, reason: this.speakerError };
    if (this.speaker === undefined) return { ready: false, reason: 'the BGP speaker is not running yet' };
    const peers = this.speaker.status();
    const up = peers.filter((p) => p.state === 'established').length;
    if (up === peers.length) this.startedUp = true;
    if (!this.startedUp)
      return { ready: false, reason: `start-up: ${up} of ${peers.length} BGP peers Established` };
    if (peers.length > 0 && up === 0) return { ready: false, reason: 'no BGP peer is Established' };
    return { ready: true, reason: `${up} of ${peers.length} BGP peers Established` };
  }

  /** Learned best paths: prefix -> next hops. */
  get learned(): ReadonlyMap<string, readonly string[]> {
    return this.paths;
  }

  status(): DaemonStatus {
    const cfg = this.config;
    const byName = new Map<string, PeerConfig>();
    for (const p of [...(cfg?.ipv4.peers ?? []), ...(cfg?.ipv6.peers ?? [])]) byName.set(p.name, p);
    const sessions: PeerStatus[] = this.speaker?.status() ?? [];
    return {
      node: this.opts.nodeName,
      routerId: cfg?.routerId ?? '',
      asNumber: cfg?.asNumber ?? 0,
      peers: sessions.map((s) => {
        const p = byName.get(s.name);
        return {
          name: s.name,
          address: s.address,
          port: p?.port ?? 179,
          type: p?.type ?? 'global',
          source: p?.source ?? '',
          asNumber: s.asn,
          state: s.state,
          since: Math.round(this.epochOffset + s.since),
          info: s.lastError ?? '',
          prefixesIn: s.received,
          prefixesOut: s.advertised,
        };
      }),
      datastore: this.cache.health,
      ...(this.opts.kubernetes !== undefined ? { kubernetes: this.opts.kubernetes.health } : {}),
      warnings: cfg?.warnings ?? [],
      ...(this.speakerError !== undefined ? { speakerError: this.speakerError } : {}),
    };
  }

  /** keepRoutes: close sessions without a NOTIFICATION (graceful-restart peers keep our routes). */
  private async stopSpeaker(keepRoutes = false): Promise<void> {
    const s = this.speaker;
    this.speaker = undefined;
    if (s !== undefined) await s.stop(undefined, { keepRoutes });
  }

  /**
   * Stops. Kernel routes are the dataplane's and stay; the speaker closes its sessions
   * without a NOTIFICATION, so graceful-restart peers keep our routes while we restart.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.retainTimer !== undefined) clearTimeout(this.retainTimer);
    if (this.dataplaneTimer !== undefined) clearTimeout(this.dataplaneTimer);
    this.cache.stop();
    this.opts.kubernetes?.stop();
    await this.applying;
    await this.stopSpeaker(true);
  }
}
