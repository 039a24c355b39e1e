// The speaker: peers (session/), one Loc-RIB per family (rib/), policy (policy/) and the
// routing rules (rules.ts), wired together.
//
// Flow: an UPDATE from a peer goes through importRoute and the import policy, is interned
// and put in the Loc-RIB; each best-path change is exported to every Established peer
// through exportRoute and its export policy (computed once per class of peer) into that
// peer's Adj-RIB-Out, which sends when the socket can take it. Work is done in bounded
// slices with a yield between them, so keepalives never wait behind routes.

import type { NegotiatedSession, State, TransitionReason } from '../fsm/index.js';
import type { CompiledPolicy, Policy } from '../policy/index.js';
import { ACCEPT_ALL, compilePolicy } from '../policy/index.js';
import type { BestPathEvent, RouteSource } from '../rib/index.js';
import { AttrStore, LocRib } from '../rib/index.js';
import type { Clock, MessageKind, Transport } from '../session/index.js';
import {
  Listener,
  Peer,
  dialTcp,
  normalizeAddress,
  overBudget,
  socketTransport,
  systemClock,
} from '../session/index.js';
import { GTSM_TTL, connectTcp, gtsmMinTtl, setMd5Key, setMinTtl, setTtl } from '../sockopt/index.js';
import type {
  Asn,
  BgpMessage,
  Capability,
  NotificationMessage,
  PathAttributes,
  PrefixAfi,
  RouteRefreshMessage,
  UpdateMessage,
} from '../wire/index.js';
import {
  CeaseSubcode,
  ErrorCode,
  IPV4_UNICAST,
  IPV6_UNICAST,
  PrefixList,
  RouteRefreshSubtype,
  describeNotification,
  encodeMessage,
  makeEndOfRib,
  parseIpv4,
  parseIpv6,
  parsePrefix,
  withdrawnBy,
} from '../wire/index.js';
import { AdjRibOut } from './adj-rib-out.js';
import type { ListenRange, PeerTemplate } from './listen-ranges.js';
import { ListenRanges, dynamicPeerSettings, networkAddress, parseIpPrefix } from './listen-ranges.js';
import type { LocalIdentity, NextHopMode, PeerRole, RouteOrigin } from './rules.js';
import { exportRoute, importRoute } from './rules.js';
import { ExportCache, newMemo } from './export-cache.js';
import type { ExportTarget } from './update-group.js';
import { UpdateGroup, groupKey } from './update-group.js';

export type Family = 'ipv4-unicast' | 'ipv6-unicast';

export interface PeerSettings {
  readonly name: string;
  readonly address: string;
  readonly port?: number;
  readonly asn: Asn;
  readonly localAsn?: Asn;
  /** Our address for this session (bind before connecting; next hop self). */
  readonly localAddress?: string;
  /**
   * Our next hops as "self", per family: the node address peers should forward to (default:
   * localAddress for its family). Needed for IPv6 routes over an IPv4 session, and where
   * the session address is not one to forward to (FRR refuses 127/8 next hops).
   */
  readonly nextHopIpv4?: string;
  readonly nextHopIpv6?: string;
  readonly passive?: boolean;
  readonly holdTime?: number;
  readonly keepaliveTime?: number;
  readonly connectRetryTime?: number;
  readonly families?: readonly Family[];
  readonly reflectorClient?: boolean;
  readonly routeServerClient?: boolean;
  readonly nextHop?: NextHopMode;
  readonly allowAsIn?: number;
  /** Reject eBGP routes whose first AS is not the peer's (off by default). */
  readonly enforceFirstAs?: boolean;
  /** Cease / Maximum Number of Prefixes Reached (RFC 4486) past this many accepted routes. */
  readonly maxPrefixes?: number;
  readonly importPolicy?: Policy;
  readonly exportPolicy?: Policy;
  /** RFC 7911: receive (and/or send) several paths per prefix. */
  readonly addPath?: 'receive' | 'send' | 'both';
  /** RFC 2385 TCP-MD5 key (1..80 bytes), on our dials and on the listener for this peer. */
  readonly password?: string;
  /**
   * RFC 4724 graceful restart: advertise the capability with this restart time (seconds)
   * and keep the peer's routes across its restarts (helper). Absent: no graceful restart.
   */
  readonly gracefulRestart?: { readonly restartTime: number };
  /**
   * RFC 5082 GTSM: the peer is at most this many hops away; we send with TTL 255 and drop
   * what arrives with less than 256 - hops (Calico's ttlSecurity).
   */
  readonly ttlSecurity?: number;
}

export interface Origination {
  readonly prefix: string;
  readonly attributes?: Omit<PathAttributes, 'mpReachNlri' | 'mpUnreachNlri' | 'nextHop'>;
}

export interface SpeakerConfig {
  readonly routerId: string;
  readonly localAsn: Asn;
  /** RFC 4456: defaults to the router ID. */
  readonly clusterId?: string;
  readonly listen?: { readonly host: string; readonly port: number };
  readonly peers: readonly PeerSettings[];
  /** Prefixes whose strangers are accepted as dynamic peers (listen-ranges.ts). */
  readonly listenRanges?: readonly ListenRange[];
  readonly originate?: readonly Origination[];
  /**
   * RFC 4724 §3: set the Restart State (R) bit in our OPENs: we have restarted and kept
   * forwarding (the node daemon sets this when it adopts kernel routes on start).
   */
  readonly restarting?: boolean;
  /**
   * RFC 4724 §4.1: after our restart (`restarting`), seconds to wait at most for the
   * End-of-RIB of every graceful-restart peer before routes go out (BIRD's graceful
   * restart wait, 240 s by default).
   */
  readonly selectionDeferralTime?: number;
}

export interface SpeakerDeps {
  readonly clock?: Clock;
  readonly random?: () => number;
  /** Opens a transport to a peer; default TCP. */
  readonly dial?: (p: PeerSettings) => Promise<Transport>;
}

export interface PeerStatus {
  readonly name: string;
  readonly address: string;
  readonly asn: number;
  /** NOTIFICATION code of the last error, sent or received; 0 for none. */
  readonly lastErrorCode: number;
  readonly state: State;
  /** Milliseconds (clock time) of the last state change. */
  readonly since: number;
  readonly lastError: string | undefined;
  readonly received: number;
  readonly accepted: number;
  readonly advertised: number;
  /** For a dynamic peer, the listen range it called in by. */
  readonly listenRange: string | undefined;
}

export interface UpdateGroupStatus {
  readonly family: Family;
  /** Peers that get the group's UPDATEs. */
  readonly members: readonly string[];
  /** Peers still catching up on their own table before they join. */
  readonly joining: readonly string[];
  /** Prefixes waiting to be sent. */
  readonly pending: number;
  /** Prefixes in the group's table (a member has these minus its own routes). */
  readonly prefixes: number;
}

export interface SpeakerEvents {
  bestPath?(e: BestPathEvent): void;
  peerState?(name: string, from: State, to: State, reason: TransitionReason): void;
  /** RFC 4724: a peer finished sending its initial table for a family. */
  endOfRib?(name: string, family: Family): void;
  /** Every message in and out, by kind, for counters; `m` as for the session's onMessage. */
  message?(name: string, direction: 'in' | 'out', type: MessageKind, bytes: number, m?: BgpMessage): void;
  /** Seconds one received UPDATE took: import, policy, decision, export queueing. */
  updateProcessed?(name: string, seconds: number): void;
  /**
   * RFC 4724 §4.1: after our restart, routes of a family go out to peers from now on: every
   * graceful-restart peer sent End-of-RIB, or the selection deferral timer ran out.
   */
  selectionDeferralEnded?(family: Family, reason: 'endOfRib' | 'timer'): void;
  /** A bug of ours hit this peer's session (logged at error level by bgp-ts run). */
  internalError?(name: string, error: unknown): void;
  /** A dynamic peer came in by a listen range, or went (its session over, or the range changed). */
  dynamicPeer?(name: string, range: string, change: 'added' | 'removed'): void;
  /** A connection closed before OPEN: no configured peer or range, or the range is full. */
  refused?(address: string, reason: 'unknown' | 'maxPeers'): void;
}

const LOCAL_PEER = 0;
/** Prefixes encoded per slice before yielding to the event loop. */
const SLICE = 4096;
/**
 * Prefixes per build: about one full 4096-octet UPDATE of IPv4 /24s, so messages go out
 * full (fewer messages for the peer to read) while a slice stays short.
 */
const BATCH = 1024;

interface PeerRuntime {
  readonly index: number;
  /** Replaced only by a policy change (softPolicies); any other change makes a new runtime. */
  settings: PeerSettings;
  /** The listen range of a dynamic peer; undefined for a configured one. */
  readonly range: ListenRange | undefined;
  /** Fixed but for next hops "self" taken from the socket at Established (sessionRole). */
  role: PeerRole;
  readonly peer: Peer;
  importPolicy: CompiledPolicy;
  /** Export rules and policy for this peer (its index for split horizon). */
  target: ExportTarget;
  session: NegotiatedSession | undefined;
  /** The update group of each family (member, or joining). */
  groups: Map<PrefixAfi, UpdateGroup<PeerRuntime>>;
  /**
   * Where the peer is still catching up: a private group of one (its own Adj-RIB-Out), sent
   * like any group, which hands the peer to its real group once drained.
   */
  catchUp: Map<PrefixAfi, UpdateGroup<PeerRuntime>>;
  /** Families whose End-of-RIB we still owe after the initial dump. */
  eorPending: Set<PrefixAfi>;
  /** Families whose EoRR (RFC 7313) we owe once a refresh has gone out. */
  eorrPending: Set<PrefixAfi>;
  /** RFC 4724 helper: families whose routes from this peer are kept stale, and the timer. */
  staleFamilies: Set<PrefixAfi>;
  staleTimer: (() => void) | undefined;
  since: number;
  lastError: string | undefined;
  lastErrorCode: number;
  accepted: number;
}

/**
 * Peers of one export class get the same export of every route: what exportRoute and the
 * export policy look at. Internal or external, not the peer's AS: eBGP peers of different
 * ASes (route-server clients, ToRs) share a class, so their groups can be one.
 */
function exportClassOf(role: PeerRole, policy: Policy | undefined): string {
  const { peerAsn, allowAsIn: _a, enforceFirstAs: _e, localAddress: _l, ...rest } = role;
  return JSON.stringify([{ ...rest, internal: peerAsn === role.localAsn }, policy ?? null]);
}

/** What exports are computed for: a peer (its index), or a group (-1). */
function exportTarget(
  role: PeerRole,
  id: number,
  policy: Policy | undefined,
  compiled: CompiledPolicy,
): ExportTarget {
  return {
    exportClass: exportClassOf(role, policy),
    role: { ...role, id },
    exportPolicy: compiled,
    memo: newMemo(),
  };
}

/** The families a peer carries: configured, or by its address family. */
function familiesOf(s: PeerSettings): readonly Family[] {
  return s.families ?? (s.address.includes(':') ? ['ipv6-unicast'] : ['ipv4-unicast', 'ipv6-unicast']);
}

function familyOf(afi: PrefixAfi): Family {
  return afi === 1 ? 'ipv4-unicast' : 'ipv6-unicast';
}

export class Speaker {
  private readonly clock: Clock;
  private readonly random: () => number;
  readonly attrs = new AttrStore();
  /** Exported attribute sets (after rules and export policy), shared by all peers. */
  private readonly outAttrs = new AttrStore();
  readonly ribs: Record<PrefixAfi, LocRib>;
  private readonly peers = new Map<number, PeerRuntime>();
  /** Update groups by key (groupKey). */
  private readonly groups = new Map<string, UpdateGroup<PeerRuntime>>();
  /** The same, by family, for the per-prefix export loop. */
  private readonly groupsOf: Record<PrefixAfi, UpdateGroup<PeerRuntime>[]> = { 1: [], 2: [] };
  /** The private groups of peers catching up before they join their group. */
  private readonly catchingUp = new Set<UpdateGroup<PeerRuntime>>();
  private readonly byAddress = new Map<string, PeerRuntime>();
  /**
   * RFC 4724 §4.1 selection deferral after our restart: the families whose routes do not go
   * out yet, and per family the peers whose End-of-RIB we wait for.
   */
  private readonly deferred = new Set<PrefixAfi>();
  private readonly awaitingEor: Record<PrefixAfi, Set<number>> = { 1: new Set(), 2: new Set() };
  private deferralTimer: (() => void) | undefined;
  private ranges: ListenRanges;
  private listener: Listener | undefined;
  private readonly me: LocalIdentity;
  /** Where each Loc-RIB route came from, by peer index (0: our own). */
  private readonly origins = new Map<number, RouteOrigin>();

  constructor(
    readonly config: SpeakerConfig,
    private readonly deps: SpeakerDeps = {},
    private readonly events: SpeakerEvents = {},
  ) {
    this.clock = deps.clock ?? systemClock;
    this.random = deps.random ?? Math.random;
    this.me = { routerId: config.routerId, clusterId: config.clusterId ?? config.routerId };
    // Export takes the allocation-free path; the event objects are made only for a listener.
    const opts = (afi: PrefixAfi) => ({
      onBest: (list: PrefixList, peer: number, attrId: number, e: number) =>
        this.bestChanged(afi, list, peer, attrId, e),
      ...(events.bestPath === undefined ? {} : { onChange: (e: BestPathEvent) => events.bestPath?.(e) }),
    });
    this.ribs = { 1: new LocRib(1, this.attrs, opts(1)), 2: new LocRib(2, this.attrs, opts(2)) };
    const local: RouteSource = { local: true, internal: false, routerId: 0, address: new Uint8Array(0) };
    for (const rib of Object.values(this.ribs)) rib.addPeer(LOCAL_PEER, local);
    this.origins.set(LOCAL_PEER, { kind: 'local' });
    this.ranges = new ListenRanges(config.listenRanges ?? []);
    for (const p of config.peers) this.addPeer(p, ++this.nextIndex);
  }

  // ---- lifecycle ----

  async start(): Promise<void> {
    const l = this.config.listen;
    if (l !== undefined) {
      this.listener = new Listener({
        host: l.host,
        port: l.port,
        route: (remote) => {
          // A configured peer (or a dynamic one already there) first, then a range.
          const p = this.byAddress.get(remote);
          if (p !== undefined) return (t) => p.peer.acceptIncoming(t);
          const range = this.rangeFor(remote);
          return range === undefined ? undefined : (t) => this.addDynamic(range, remote, t);
        },
        configure: (remote, socket) => {
          const s = this.byAddress.get(remote)?.settings ?? this.ranges.match(remote)?.peer;
          const hops = s?.ttlSecurity;
          if (hops !== undefined) {
            setTtl(socket, GTSM_TTL);
            setMinTtl(socket, gtsmMinTtl(hops));
          }
        },
      });
      await this.listener.listen();
      // RFC 2385: a peer's key must be on the listener before its SYN arrives.
      for (const p of this.peers.values()) this.installKey(p.settings);
      for (const r of this.ranges.ranges) this.installKey(r);
    }
    this.currentOriginate = this.config.originate ?? [];
    for (const o of this.currentOriginate) this.originate(o);
    if (this.config.restarting === true) this.deferSelection();
    this.started = true;
    for (const p of this.peers.values()) p.peer.start();
  }

  /** A peer's TCP-MD5 key on the listener; a range's is one key for its whole prefix. */
  /**
   * RFC 4724 §4.1: "the Restarting Speaker MUST defer route selection for an address family
   * until it either (a) receives the End-of-RIB marker from all its peers (excluding the ones
   * with the Restart State bit set in the received capability and excluding the ones that do
   * not advertise the graceful restart capability) or (b) the Selection_Deferral_Timer
   * expires". The Loc-RIB fills as routes come; only the sending waits, so peers get one
   * table, decided with every peer's routes, then End-of-RIB.
   */
  private deferSelection(): void {
    for (const afi of [1, 2] as const) {
      this.deferred.add(afi);
      for (const p of this.peers.values()) {
        if (p.settings.gracefulRestart !== undefined && familiesOf(p.settings).includes(familyOf(afi)))
          this.awaitingEor[afi].add(p.index);
      }
    }
    const seconds = this.config.selectionDeferralTime ?? 240;
    this.deferralTimer = this.clock.setTimer(seconds * 1000, () => {
      this.deferralTimer = undefined;
      for (const afi of [...this.deferred]) this.endDeferral(afi, 'timer');
    });
    for (const afi of [1, 2] as const) this.eorSeen(afi, -1);
  }

  /** Peer `index` no longer holds up the deferral of `afi` (End-of-RIB, or not a GR peer). */
  private eorSeen(afi: PrefixAfi, index: number): void {
    const waiting = this.awaitingEor[afi];
    waiting.delete(index);
    if (waiting.size === 0 && this.deferred.has(afi)) this.endDeferral(afi, 'endOfRib');
  }

  private endDeferral(afi: PrefixAfi, reason: 'endOfRib' | 'timer'): void {
    this.deferred.delete(afi);
    this.awaitingEor[afi].clear();
    if (this.deferred.size === 0) {
      this.deferralTimer?.();
      this.deferralTimer = undefined;
    }
    this.events.selectionDeferralEnded?.(familyOf(afi), reason);
    for (const g of [...this.groupsOf[afi], ...this.catchingUp]) if (g.afi === afi) this.flushGroup(g);
  }

  /** The families whose routes wait for selection deferral to end (RFC 4724 §4.1). */
  get deferring(): Family[] {
    return [...this.deferred].map(familyOf);
  }

  private installKey(x: PeerSettings | ListenRange, remove = false): void {
    const server = this.listener?.handle;
    if (server === undefined) return;
    const s: PeerTemplate = 'prefix' in x ? x.peer : x;
    if (s.password !== undefined) {
      const key = remove ? null : s.password;
      if ('prefix' in x) {
        const p = parseIpPrefix(x.prefix)!; // ListenRanges checked it
        setMd5Key(server, networkAddress(p), key, { prefixLength: p.length });
      } else {
        setMd5Key(server, x.address, key);
      }
    }
    // RFC 5082 §3: a GTSM peer drops anything below its minimum TTL, our SYN-ACK included,
    // so the listening socket (whose TTL accepted sockets inherit) sends with 255.
    if (!remove && s.ttlSecurity !== undefined) setTtl(server, GTSM_TTL);
  }

  /** The bound listen port (after start; useful with port 0). */
  get port(): number {
    return this.listener?.port ?? 0;
  }

  /**
   * Stops every peer with Cease / Administrative Shutdown (and the given text); where the
   * N bit was exchanged it goes inside a Hard Reset so the peer drops our routes (RFC 8538
   * §5). With `keepRoutes`, the sessions close without any NOTIFICATION, as on a crash: a
   * graceful-restart peer keeps our routes until we are back (a daemon restart).
   */
  async stop(notification?: NotificationMessage, opts: { keepRoutes?: boolean } = {}): Promise<void> {
    // Nothing of ours may outlive the stop: no stale-route or deferral timers (a stopped
    // speaker keeps no routes for anyone), so the process can exit at once.
    this.stopped = true;
    this.deferralTimer?.();
    this.deferralTimer = undefined;
    for (const p of this.peers.values()) this.stopStale(p);
    for (const p of this.peers.values()) {
      if (opts.keepRoutes === true) p.peer.abort();
      else p.peer.stop(this.teardown(p, notification ?? cease(CeaseSubcode.AdministrativeShutdown)));
    }
    await this.listener?.close();
    this.listener = undefined;
  }

  /** The configured name of a peer index (0 is our own routes). */
  peerName(index: number): string {
    return index === LOCAL_PEER ? 'local' : (this.peers.get(index)?.settings.name ?? `#${index}`);
  }

  status(): PeerStatus[] {
    return [...this.peers.values()].map((p) => ({
      name: p.settings.name,
      address: p.settings.address,
      asn: p.settings.asn,
      lastErrorCode: p.lastErrorCode,
      state: p.peer.state,
      since: p.since,
      lastError: p.lastError,
      received: this.ribs[1].received(p.index) + this.ribs[2].received(p.index),
      accepted: p.accepted,
      advertised: [...p.groups].reduce(
        (n, [afi, g]) => n + (p.catchUp.get(afi) ?? g).out.advertisedTo(p.index),
        0,
      ),
      listenRange: p.range?.name,
    }));
  }

  /** The update groups: peers sharing one Adj-RIB-Out and its UPDATEs, per family. */
  updateGroups(): UpdateGroupStatus[] {
    return [...this.groups.values()].map((g) => ({
      family: familyOf(g.afi),
      members: [...g.members.values()].map((m) => m.settings.name),
      joining: [...g.joining].map((m) => m.settings.name),
      pending: g.out.waiting,
      prefixes: g.out.advertised,
    }));
  }

  // ---- peers ----

  private nextIndex = 0;

  /**
   * Applies a new configuration's peers, listen ranges and originated routes: peers that
   * are new start, removed ones stop with Cease / Peer De-configured, changed ones restart
   * with Cease / Other Configuration Change, except when only their policies changed
   * (softPolicies); every other session is left alone. Ranges
   * likewise, through their dynamic peers (reconfigureRanges).
   */
  reconfigure(next: Pick<SpeakerConfig, 'peers' | 'originate' | 'listenRanges'>): {
    added: string[];
    removed: string[];
    changed: string[];
    /** Peers whose import or export policy changed, applied without a session reset. */
    softened: string[];
    ranges: { added: string[]; removed: string[]; changed: string[] };
  } {
    const ranges = new ListenRanges(next.listenRanges ?? []); // throws before anything changes
    const configured = [...this.peers.values()].filter((p) => p.range === undefined);
    const byName = new Map(configured.map((p) => [p.settings.name, p]));
    const wanted = new Map(next.peers.map((p) => [p.name, p]));
    const result = {
      added: [] as string[],
      removed: [] as string[],
      changed: [] as string[],
      softened: [] as string[],
    };
    for (const [name, rt] of byName) {
      const w = wanted.get(name);
      if (w === undefined) {
        this.removePeer(rt, CeaseSubcode.PeerDeconfigured);
        result.removed.push(name);
      } else if (JSON.stringify(w) !== JSON.stringify(rt.settings)) {
        // Only its policies changed: applied without a session reset, as BIRD reconfigures
        // filters softly (export: the differences are sent; import: a route refresh).
        if (this.softPolicies(rt, w)) result.softened.push(name);
        else {
          this.removePeer(rt, CeaseSubcode.OtherConfigurationChange);
          result.changed.push(name);
        }
      }
    }
    // Before the new peers: a dynamic peer on a newly configured address must be gone.
    const rangeResult = this.reconfigureRanges(ranges, next.peers);
    for (const [name, w] of wanted) {
      const had = byName.get(name);
      if (had !== undefined && !result.changed.includes(name)) continue;
      const rt = this.addPeer(w, ++this.nextIndex);
      this.installKey(w);
      if (this.started) rt.peer.start();
      if (had === undefined) result.added.push(name);
    }
    const before = new Set((this.currentOriginate ?? []).map((o) => JSON.stringify(o)));
    const after = new Set((next.originate ?? []).map((o) => JSON.stringify(o)));
    for (const o of this.currentOriginate ?? [])
      if (!after.has(JSON.stringify(o))) this.withdrawLocal(o.prefix);
    for (const o of next.originate ?? []) if (!before.has(JSON.stringify(o))) this.originate(o);
    this.currentOriginate = next.originate ?? [];
    return { ...result, ranges: rangeResult };
  }

  /**
   * Swaps in new listen ranges. A dynamic peer stays while its address is no configured
   * peer's and the new ranges keep it (ListenRanges.keeps); otherwise it stops with Cease /
   * Peer De-configured when no range takes it any more, or Other Configuration Change
   * (RFC 4486 §4).
   */
  private reconfigureRanges(
    next: ListenRanges,
    peers: readonly PeerSettings[],
  ): { added: string[]; removed: string[]; changed: string[] } {
    const configured = new Set(peers.map((p) => p.address));
    for (const rt of [...this.peers.values()]) {
      const address = rt.settings.address;
      if (rt.range === undefined || (!configured.has(address) && next.keeps(rt.range, address))) continue;
      const gone = !configured.has(address) && next.match(address) === undefined;
      this.removePeer(rt, gone ? CeaseSubcode.PeerDeconfigured : CeaseSubcode.OtherConfigurationChange);
    }
    const d = this.ranges.diff(next);
    // Old keys first: a changed range may keep its prefix with a new password.
    for (const r of [...d.removed, ...d.changed.map((c) => c.before)]) this.installKey(r, true);
    for (const r of [...d.added, ...d.changed.map((c) => c.after)]) this.installKey(r);
    this.ranges = next;
    const names = (rs: readonly ListenRange[]) => rs.map((r) => r.name);
    return {
      added: names(d.added),
      removed: names(d.removed),
      changed: names(d.changed.map((c) => c.after)),
    };
  }

  /** The range a stranger's connection falls in, unless that range is at its maxPeers. */
  private rangeFor(address: string): ListenRange | undefined {
    const range = this.ranges.match(address);
    if (range === undefined) {
      this.events.refused?.(address, 'unknown');
      return undefined;
    }
    let n = 0;
    for (const p of this.peers.values()) if (p.range?.name === range.name) n++;
    if (n >= (range.maxPeers ?? Infinity)) {
      this.events.refused?.(address, 'maxPeers');
      return undefined;
    }
    return range;
  }

  /** A connection from inside a range: a passive peer with the range's settings takes it. */
  private addDynamic(range: ListenRange, address: string, t: Transport): void {
    const local = t.localAddress === '' ? undefined : normalizeAddress(t.localAddress);
    const s = dynamicPeerSettings(range, address, local);
    const rt = this.addPeer(s, ++this.nextIndex, range);
    this.events.dynamicPeer?.(s.name, range.name, 'added');
    rt.peer.start();
    rt.peer.acceptIncoming(t);
    this.retireIfIdle(rt); // should that connection be over already
  }

  /**
   * A dynamic peer goes with its last transport, once no stale routes of its are kept
   * (RFC 4724 §4.2: until End-of-RIB or the restart time, for a peer that may come back).
   * Without a transport a passive peer is in Active (a failed incoming connection waits
   * there, RFC 4271 §8.2.2). Looked at after the current event: a new incoming connection
   * ends the old one first.
   */
  private retireIfIdle(rt: PeerRuntime): void {
    if (rt.range === undefined) return;
    queueMicrotask(() => {
      if (this.peers.get(rt.index) !== rt) return;
      if (rt.peer.state === 'active' && rt.staleFamilies.size === 0) {
        rt.peer.stop();
        this.forget(rt);
      }
    });
  }

  private started = false;
  private stopped = false;
  private currentOriginate: readonly Origination[] | undefined;

  /** RFC 8538 §5: a Cease meant to end the session travels inside a Hard Reset when N is on. */
  private teardown(rt: PeerRuntime, n: NotificationMessage): NotificationMessage {
    const s = rt.session;
    const nBoth = s?.peerGracefulRestart?.notification === true && rt.settings.gracefulRestart !== undefined;
    if (!nBoth || n.code !== ErrorCode.Cease || n.subcode === CeaseSubcode.HardReset) return n;
    const data = new Uint8Array(2 + n.data.length);
    data[0] = n.code;
    data[1] = n.subcode;
    data.set(n.data, 2);
    return { type: 'notification', code: ErrorCode.Cease, subcode: CeaseSubcode.HardReset, data };
  }

  private removePeer(rt: PeerRuntime, subcode: number): void {
    rt.peer.stop(this.teardown(rt, cease(subcode)));
    this.forget(rt);
  }

  /**
   * Drops a stopped peer for good: its routes, its listener key, and its index everywhere.
   * Indexes are never reused: export cache entries still name the old one as their source.
   */
  private forget(rt: PeerRuntime): void {
    if (rt.range === undefined) this.installKey(rt.settings, true); // a range's key stays
    this.down(rt);
    for (const afi of [1, 2] as const) this.eorSeen(afi, rt.index);
    for (const rib of Object.values(this.ribs)) rib.removePeer(rt.index);
    this.origins.delete(rt.index);
    this.peers.delete(rt.index);
    if (this.byAddress.get(rt.settings.address) === rt) this.byAddress.delete(rt.settings.address);
    if (rt.range !== undefined) this.events.dynamicPeer?.(rt.settings.name, rt.range.name, 'removed');
  }

  private addPeer(s: PeerSettings, index: number, range?: ListenRange): PeerRuntime {
    const localAsn = s.localAsn ?? this.config.localAsn;
    const families = familiesOf(s);
    const caps: Capability[] = [
      ...families.map((f): Capability => ({
        kind: 'multiprotocol',
        afi: f === 'ipv4-unicast' ? 1 : 2,
        safi: 1,
      })),
      { kind: 'routeRefresh' },
      { kind: 'enhancedRouteRefresh' },
      { kind: 'fourOctetAs', asn: localAsn },
    ];
    if (s.gracefulRestart !== undefined) {
      // RFC 4724 §3 with RFC 8538 §2 (N bit): we keep forwarding across our restarts (the
      // kernel keeps the routes), so the F bit is set for every family we carry.
      caps.push({
        kind: 'gracefulRestart',
        restarting: false, // set per OPEN: see capabilities below
        notification: true,
        restartTime: s.gracefulRestart.restartTime,
        families: families.map((f) => ({
          afi: f === 'ipv4-unicast' ? 1 : 2,
          safi: 1,
          forwardingPreserved: true,
        })),
      });
    }
    if (s.addPath !== undefined) {
      caps.push({
        kind: 'addPath',
        families: families.map((f) => ({ afi: f === 'ipv4-unicast' ? 1 : 2, safi: 1, mode: s.addPath! })),
      });
    }
    const restartingNow = () => this.config.restarting === true && this.deferred.size > 0;
    const role: PeerRole = {
      localAsn,
      peerAsn: s.asn,
      localAddress: s.localAddress ?? (s.address.includes(':') ? '::' : '0.0.0.0'),
      ...nextHops(s),
      reflectorClient: s.reflectorClient ?? false,
      routeServerClient: s.routeServerClient ?? false,
      nextHop: s.nextHop ?? 'auto',
      allowAsIn: s.allowAsIn ?? 0,
      enforceFirstAs: s.enforceFirstAs ?? false,
    };
    const dial = this.deps.dial ?? dialPeer;
    const rt: PeerRuntime = {
      index,
      settings: s,
      range,
      role,
      peer: undefined as unknown as Peer,
      importPolicy: compilePolicy(s.importPolicy ?? ACCEPT_ALL, `peers.${s.name}.importPolicy`),
      target: exportTarget(
        role,
        index,
        s.exportPolicy,
        compilePolicy(s.exportPolicy ?? ACCEPT_ALL, `peers.${s.name}.exportPolicy`),
      ),
      session: undefined,
      groups: new Map(),
      catchUp: new Map(),
      eorPending: new Set(),
      eorrPending: new Set(),
      staleFamilies: new Set(),
      staleTimer: undefined,
      since: this.clock.now(),
      lastError: undefined,
      lastErrorCode: 0,
      accepted: 0,
    };
    const peer = new Peer(
      {
        localAsn,
        localBgpIdentifier: this.config.routerId,
        peerAsn: s.asn,
        holdTime: s.holdTime ?? 90,
        ...(s.keepaliveTime === undefined ? {} : { keepaliveTime: s.keepaliveTime }),
        // Read for each new connection's OPEN. RFC 4724 §3: the R bit says we restarted; it
        // holds while our selection is deferred, so sessions that come up later do not
        // claim a restart that is over (FRR clears it likewise).
        get capabilities(): Capability[] {
          const r = restartingNow();
          return caps.map((c) => (c.kind === 'gracefulRestart' ? { ...c, restarting: r } : c));
        },
        passive: s.passive ?? false,
        connectRetryTime: s.connectRetryTime ?? 30,
        delayOpenTime: 0,
        openHoldTime: 240,
        idleHoldTime: 1,
        maxIdleHoldTime: 60,
        random: this.random,
      },
      { clock: this.clock, dial: () => dial(s) },
      {
        stateChanged: (from, to, reason) => {
          rt.since = this.clock.now();
          if (
            reason.kind === 'errorSent' ||
            reason.kind === 'notificationReceived' ||
            reason.kind === 'tcpFailed'
          ) {
            rt.lastError = describeReason(reason);
          }
          this.events.peerState?.(s.name, from, to, reason);
          this.retireIfIdle(rt);
        },
        established: (session) => this.established(rt, session),
        update: (u) => this.received(rt, u),
        routeRefresh: (m) => this.refreshMessage(rt, m),
        down: (reason) => this.down(rt, reason),
        writable: () => this.flush(rt),
        message: (dir, type, bytes, m) => this.events.message?.(s.name, dir, type, bytes, m),
      },
    );
    (rt as { peer: Peer }).peer = peer;
    this.peers.set(index, rt);
    this.byAddress.set(s.address, rt);
    this.origins.set(index, { kind: 'peer', role, routerId: '0.0.0.0', id: index });
    const address = s.address.includes(':')
      ? (parseIpv6(s.address) ?? new Uint8Array(16))
      : ipv4Bytes(s.address);
    const source = (routerId: number): RouteSource => ({
      local: false,
      internal: s.asn === localAsn,
      routerId,
      address,
    });
    for (const rib of Object.values(this.ribs)) rib.addPeer(index, source(0));
    return rt;
  }

  /**
   * Without a configured local address or next hop, our next hop "self" for the session's
   * family is the address the socket has (the kernel chose it), as BIRD and FRR do.
   */
  private sessionRole(rt: PeerRuntime): void {
    const s = rt.settings;
    const socket = rt.peer.localAddress;
    if (s.localAddress !== undefined || socket === undefined || socket === '') return;
    const local = normalizeAddress(socket);
    const v6 = local.includes(':');
    if (v6 ? s.nextHopIpv6 !== undefined || local.startsWith('fe80:') : s.nextHopIpv4 !== undefined) return;
    rt.role = { ...rt.role, ...(v6 ? { nextHopIpv6: local } : { nextHopIpv4: local }) };
    rt.target = exportTarget(rt.role, rt.index, s.exportPolicy, rt.target.exportPolicy);
  }

  private established(rt: PeerRuntime, session: NegotiatedSession): void {
    rt.session = session;
    rt.lastError = undefined;
    this.sessionRole(rt);
    if (rt.staleFamilies.size > 0) {
      // RFC 4724 §4.2: back within the Restart Time. Without the capability now, or without
      // the F bit for a family, its stale routes go at once; the rest go at End-of-RIB.
      rt.staleTimer?.();
      rt.staleTimer = undefined;
      const cap = session.peerGracefulRestart;
      for (const afi of [...rt.staleFamilies]) {
        const f = cap?.families.find((x) => x.afi === afi && x.safi === 1);
        if (f === undefined || !f.forwardingPreserved) this.sweep(rt, afi);
      }
      if (rt.staleFamilies.size > 0) {
        // Not forever if End-of-RIB never comes (RFC 4724 §4.2 leaves the bound to us).
        rt.staleTimer = this.clock.setTimer(STALE_PATH_TIME_MS, () => {
          rt.staleTimer = undefined;
          this.sweep(rt);
        });
      }
    }
    const routerId = parseIpv4(session.peerBgpIdentifier) ?? 0;
    const address = rt.settings.address.includes(':')
      ? (parseIpv6(rt.settings.address) ?? new Uint8Array(16))
      : ipv4Bytes(rt.settings.address);
    for (const rib of Object.values(this.ribs)) {
      rib.addPeer(rt.index, { local: false, internal: session.internal, routerId, address });
    }
    this.origins.set(rt.index, {
      kind: 'peer',
      role: rt.role,
      routerId: session.peerBgpIdentifier,
      id: rt.index,
    });
    // RFC 4724 §4.1: a peer without graceful restart, or restarting itself, or without the
    // family, is not waited for.
    const peerGr = session.peerGracefulRestart;
    for (const afi of [1, 2] as const) {
      const carried = session.families.has(afi === 1 ? IPV4_UNICAST : IPV6_UNICAST);
      if (peerGr === undefined || peerGr.restarting || !carried) this.eorSeen(afi, rt.index);
    }
    // The initial dump: every best route this peer may have, then End-of-RIB per family.
    // The first peer of a group gets it through the group's table; a later one catches up
    // on its own and joins when both are drained.
    for (const afi of [1, 2] as const) {
      if (!session.families.has(afi === 1 ? IPV4_UNICAST : IPV6_UNICAST)) continue;
      rt.eorPending.add(afi);
      const key = groupKey(rt.target.exportClass, afi, session.sendContext);
      let g = this.groups.get(key);
      if (g === undefined) {
        const out = new AdjRibOut(afi, this.ribs[afi], this.outAttrs, session.sendContext);
        // The group's target is no peer (-1): split horizon is applied per member at send.
        const target = exportTarget(rt.role, -1, rt.settings.exportPolicy, rt.target.exportPolicy);
        g = new UpdateGroup(key, afi, out, target);
        this.groups.set(key, g);
        this.groupsOf[afi].push(g);
        this.dump(g.target, g.out);
        g.members.set(rt.index, rt);
      } else {
        this.catchUp(rt, g);
      }
      rt.groups.set(afi, g);
    }
    this.flush(rt);
  }

  /** Queues the export of every best route of the table's family into `out`. */
  private dump(target: ExportTarget, out: AdjRibOut): void {
    if (target.exportPolicy.rejectsAll) return;
    this.ribs[out.afi].forEachBest((list, i, route, e) =>
      this.exportTo(target, out, list, i, e, route.peer, route.attrId, route.attributes),
    );
  }

  /** The peer (re)starts its table of the group's family from the Loc-RIB, privately. */
  private catchUp(rt: PeerRuntime, g: UpdateGroup<PeerRuntime>): void {
    g.members.delete(rt.index);
    g.joining.add(rt);
    const old = rt.catchUp.get(g.afi);
    if (old !== undefined) this.close(old);
    const out = new AdjRibOut(g.afi, this.ribs[g.afi], this.outAttrs, g.out.context);
    const own = new UpdateGroup(`${g.key}#${rt.index}`, g.afi, out, rt.target, g);
    own.members.set(rt.index, rt);
    rt.catchUp.set(g.afi, own);
    this.catchingUp.add(own);
    this.dump(rt.target, out);
  }

  /**
   * A peer's new import and export policies, without a session reset, when nothing else of
   * its settings changed. Export: the peer moves to the table of its new export class,
   * starting from what it has, so it is sent only what the new policy changes. Import: the
   * peer is asked for its routes again (route refresh, RFC 2918); a peer that cannot refresh
   * gets no soft change (false), and the caller restarts the session, as BIRD does.
   */
  private softPolicies(rt: PeerRuntime, next: PeerSettings): boolean {
    const { importPolicy: ni, exportPolicy: ne, ...nextRest } = next;
    const { importPolicy: oi, exportPolicy: oe, ...rest } = rt.settings;
    if (JSON.stringify(nextRest) !== JSON.stringify(rest)) return false;
    const importChanged = JSON.stringify(ni) !== JSON.stringify(oi);
    const exportChanged = JSON.stringify(ne) !== JSON.stringify(oe);
    const s = rt.session;
    if (importChanged && s !== undefined && !s.routeRefresh) return false;
    // Compile first: a bad policy throws before anything changes.
    const importPolicy = compilePolicy(ni ?? ACCEPT_ALL, `peers.${next.name}.importPolicy`);
    const exportPolicy = compilePolicy(ne ?? ACCEPT_ALL, `peers.${next.name}.exportPolicy`);
    rt.settings = next;
    rt.importPolicy = importPolicy;
    if (exportChanged) {
      rt.target = exportTarget(rt.role, rt.index, ne, exportPolicy);
      if (s !== undefined) for (const afi of [...rt.groups.keys()]) this.moveTable(rt, afi, s);
    }
    if (importChanged && s !== undefined)
      for (const afi of [1, 2] as const)
        if (s.families.has(afi === 1 ? IPV4_UNICAST : IPV6_UNICAST)) this.refresh(next.name, familyOf(afi));
    if (s !== undefined) this.flush(rt);
    return true;
  }

  /** The peer leaves its table of a family for its export class's, keeping what it has. */
  private moveTable(rt: PeerRuntime, afi: PrefixAfi, s: NegotiatedSession): void {
    const old = rt.groups.get(afi)!;
    const own = rt.catchUp.get(afi);
    // What the peer has: its private table's if it is catching up, else its view of the group's.
    const fresh = new AdjRibOut(afi, this.ribs[afi], this.outAttrs, old.out.context);
    if (own !== undefined) fresh.seedFrom(own.out, -1);
    else fresh.seedFrom(old.out, rt.index);
    if (own !== undefined) {
      this.close(own);
      rt.catchUp.delete(afi);
    }
    old.members.delete(rt.index);
    old.joining.delete(rt);
    if (old.empty) this.close(old);
    const key = groupKey(rt.target.exportClass, afi, s.sendContext);
    let g = this.groups.get(key);
    if (g === undefined) {
      // The first of its class: the fresh table becomes the group's, the peer its member.
      const target = exportTarget(rt.role, -1, rt.settings.exportPolicy, rt.target.exportPolicy);
      g = new UpdateGroup(key, afi, fresh, target);
      this.groups.set(key, g);
      this.groupsOf[afi].push(g);
      g.members.set(rt.index, rt);
      this.dump(g.target, g.out);
    } else {
      // Catch up privately from what it has, then join (tryJoin).
      const mine = new UpdateGroup(`${g.key}#${rt.index}`, afi, fresh, rt.target, g);
      mine.members.set(rt.index, rt);
      rt.catchUp.set(afi, mine);
      this.catchingUp.add(mine);
      g.joining.add(rt);
      this.dump(rt.target, fresh);
    }
    rt.groups.set(afi, g);
  }

  /** Joins the group once the private table and the group's are both drained. */
  private tryJoin(rt: PeerRuntime, g: UpdateGroup<PeerRuntime>): void {
    const own = rt.catchUp.get(g.afi);
    if (own === undefined || own.out.waiting > 0 || g.out.waiting > 0) return;
    this.close(own);
    rt.catchUp.delete(g.afi);
    g.joining.delete(rt);
    g.members.set(rt.index, rt);
  }

  /** A group is done with: its table's references go, and sends stop. */
  private close(g: UpdateGroup<PeerRuntime>): void {
    g.closed = true;
    g.out.clear();
    if (this.catchingUp.delete(g)) return;
    this.groups.delete(g.key);
    this.groupsOf[g.afi] = this.groupsOf[g.afi].filter((x) => x !== g);
  }

  private leaveGroups(rt: PeerRuntime): void {
    for (const g of rt.groups.values()) {
      g.members.delete(rt.index);
      g.joining.delete(rt);
      if (g.empty) this.close(g);
    }
    rt.groups.clear();
    for (const own of rt.catchUp.values()) this.close(own);
    rt.catchUp.clear();
  }

  private down(rt: PeerRuntime, reason?: TransitionReason): void {
    const session = rt.session;
    rt.session = undefined;
    this.leaveGroups(rt);
    rt.eorPending.clear();
    rt.eorrPending.clear();
    rt.accepted = 0;
    const gr =
      session === undefined || reason === undefined || this.stopped
        ? undefined
        : retainOnRestart(session, reason, rt.settings);
    if (gr === undefined) {
      this.stopStale(rt);
      for (const rib of Object.values(this.ribs)) rib.dropPeer(rt.index);
      return;
    }
    // RFC 4724 §4.2: keep the routes of the families the peer listed, marked stale, for its
    // Restart Time; drop the others now.
    for (const afi of [1, 2] as const) {
      if (gr.families.has(afi)) {
        this.ribs[afi].markStale(rt.index);
        rt.staleFamilies.add(afi);
      } else {
        this.ribs[afi].dropPeer(rt.index);
      }
    }
    rt.staleTimer?.();
    rt.staleTimer = this.clock.setTimer(gr.restartTime * 1000, () => {
      // "If the session does not get re-established within the Restart Time ... the
      // receiving speaker MUST delete all the stale routes from the peer".
      rt.staleTimer = undefined;
      this.sweep(rt);
    });
  }

  private sweep(rt: PeerRuntime, only?: PrefixAfi): void {
    for (const afi of [...rt.staleFamilies]) {
      if (only !== undefined && afi !== only) continue;
      this.ribs[afi].sweepStale(rt.index);
      rt.staleFamilies.delete(afi);
    }
    if (rt.staleFamilies.size === 0) this.stopStale(rt);
    this.retireIfIdle(rt);
  }

  private stopStale(rt: PeerRuntime): void {
    rt.staleTimer?.();
    rt.staleTimer = undefined;
    rt.staleFamilies.clear();
  }

  // ---- route refresh (RFC 2918, RFC 7313) ----

  /** Asks a peer to send its routes of a family again. False if it cannot refresh. */
  refresh(name: string, family: Family): boolean {
    const rt = [...this.peers.values()].find((p) => p.settings.name === name);
    const s = rt?.session;
    const afi = family === 'ipv4-unicast' ? 1 : 2;
    if (
      rt === undefined ||
      s === undefined ||
      !s.routeRefresh ||
      !s.families.has(afi === 1 ? IPV4_UNICAST : IPV6_UNICAST)
    ) {
      return false;
    }
    rt.peer.send(
      encodeMessage(
        { type: 'routeRefresh', afi, safi: 1, subtype: RouteRefreshSubtype.Normal },
        s.sendContext,
      ),
    );
    return true;
  }

  private refreshMessage(rt: PeerRuntime, m: RouteRefreshMessage): void {
    const s = rt.session;
    if (s === undefined || m.safi !== 1 || (m.afi !== 1 && m.afi !== 2)) return;
    const afi: PrefixAfi = m.afi;
    switch (m.subtype) {
      case RouteRefreshSubtype.Normal: {
        // RFC 2918 §4: re-advertise the Adj-RIB-Out of that family; RFC 7313 §4: between
        // BoRR and EoRR when enhanced route refresh was negotiated.
        const g = rt.groups.get(afi);
        if (g === undefined) return; // a family we did not agree: ignored (RFC 2918 §4)
        if (s.enhancedRouteRefresh) {
          rt.peer.send(
            encodeMessage(
              { type: 'routeRefresh', afi, safi: 1, subtype: RouteRefreshSubtype.BeginningOfRouteRefresh },
              s.sendContext,
            ),
          );
          rt.eorrPending.add(afi);
        }
        // Everything again: the peer leaves its group and catches up from the Loc-RIB.
        this.catchUp(rt, g);
        this.flush(rt);
        return;
      }
      case RouteRefreshSubtype.BeginningOfRouteRefresh:
        // RFC 7313 §4: the peer re-sends everything; what it does not re-send by EoRR goes.
        if (s.enhancedRouteRefresh) this.ribs[afi].markStale(rt.index);
        return;
      case RouteRefreshSubtype.EndOfRouteRefresh:
        if (s.enhancedRouteRefresh) this.ribs[afi].sweepStale(rt.index);
        return;
      default:
        return; // RFC 7313 §5: other subtypes are ignored
    }
  }

  // ---- import ----

  private received(rt: PeerRuntime, u: UpdateMessage): void {
    const t0 = performance.now();
    try {
      this.receivedInner(rt, u);
    } catch (e) {
      // Not the peer's fault (its errors are NOTIFICATIONs from the codec): ours, or a limit
      // such as a full Loc-RIB. The session starts again rather than the process dying.
      this.failed([rt], 'processing an UPDATE', e);
    } finally {
      this.events.updateProcessed?.(rt.settings.name, (performance.now() - t0) / 1000);
    }
  }

  private receivedInner(rt: PeerRuntime, u: UpdateMessage): void {
    const a = u.pathAttributes;
    // End-of-RIB (RFC 4724 §2).
    if (u.nlri.length === 0 && u.withdrawnRoutes.length === 0 && u.malformed === undefined) {
      const keys = Object.keys(a);
      let eor: PrefixAfi | undefined;
      if (keys.length === 0) eor = 1;
      else if (
        keys.length === 1 &&
        a.mpUnreachNlri !== undefined &&
        a.mpUnreachNlri.withdrawnRoutes.length === 0
      ) {
        const un = a.mpUnreachNlri;
        if ((un.afi === 1 || un.afi === 2) && un.safi === 1) eor = un.afi;
      }
      if (eor !== undefined) {
        // RFC 4724 §4.2: End-of-RIB ends the wait: what is still stale goes.
        if (rt.staleFamilies.has(eor)) this.sweep(rt, eor);
        this.events.endOfRib?.(rt.settings.name, familyOf(eor));
        this.eorSeen(eor, rt.index);
        return;
      }
    }
    for (const list of withdrawnBy(u)) this.ribs[list.afi].withdraw(rt.index, list);
    if (u.malformed?.action === 'treat-as-withdraw') return;
    const v = importRoute(a, rt.role, this.me);
    const announce = (list: PrefixList, attrs: PathAttributes) => {
      if (list.length === 0) return;
      if (!v.accept) {
        this.ribs[list.afi].withdraw(rt.index, list);
        return;
      }
      if (rt.importPolicy.acceptsAll) {
        this.accept(rt, list, attrs);
        return;
      }
      // Policy decides per prefix; prefixes with the same outcome share one set.
      const groups = new Map<string, { attrs: PathAttributes; idx: number[] }>();
      const rejected: number[] = [];
      const w = list.afi === 1 ? 1 : 4;
      for (let i = 0; i < list.length; i++) {
        const r = rt.importPolicy.evaluate(
          { afi: list.afi, words: list.addrs, offset: i * w, len: list.lens[i] as number },
          attrs,
        );
        if (r.verdict === 'reject') rejected.push(i);
        else {
          const key =
            r.attributes === attrs
              ? ''
              : JSON.stringify(r.attributes, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
          const g = groups.get(key) ?? { attrs: r.attributes, idx: [] };
          g.idx.push(i);
          groups.set(key, g);
        }
      }
      if (rejected.length > 0) this.ribs[list.afi].withdraw(rt.index, list.pick(rejected));
      for (const g of groups.values()) this.accept(rt, list.pick(g.idx), g.attrs);
    };
    if (v.accept || u.nlri.length > 0) announce(u.nlri, v.accept ? v.attributes : a);
    const mp = a.mpReachNlri;
    if (mp?.kind === 'prefixes') announce(mp.nlri, v.accept ? v.attributes : a);
  }

  private accept(rt: PeerRuntime, list: PrefixList, attrs: PathAttributes): void {
    const rib = this.ribs[list.afi];
    const before = rib.received(rt.index);
    const id = this.attrs.intern(attrs);
    rib.announce(rt.index, list, id);
    this.attrs.release(id);
    rt.accepted += rib.received(rt.index) - before;
    const max = rt.settings.maxPrefixes;
    if (max !== undefined && rt.accepted > max) {
      // RFC 4486 §4: Cease / Maximum Number of Prefixes Reached, data AFI, SAFI, the limit.
      const d = new Uint8Array(7);
      d[1] = list.afi;
      d[2] = 1;
      new DataView(d.buffer).setUint32(3, max);
      rt.peer.reset({
        type: 'notification',
        code: ErrorCode.Cease,
        subcode: CeaseSubcode.MaximumNumberOfPrefixesReached,
        data: d,
      });
    }
  }

  // ---- origination ----

  private originate(o: Origination): void {
    const p = parsePrefix(o.prefix);
    if (p === undefined) throw new TypeError(`originate: not a prefix: ${JSON.stringify(o.prefix)}`);
    const list = PrefixList.parse(p.afi, [o.prefix]);
    const base: PathAttributes = { origin: 'igp', asPath: [], ...o.attributes };
    const attrs: PathAttributes =
      p.afi === 2
        ? {
            ...base,
            mpReachNlri: { kind: 'prefixes', afi: 2, safi: 1, nextHop: '::', nlri: PrefixList.empty(2) },
          }
        : base;
    const id = this.attrs.intern(attrs);
    this.ribs[p.afi].announce(LOCAL_PEER, list, id);
    this.attrs.release(id);
  }

  /** Adds or replaces a route we originate (the node daemon's blocks). */
  announceLocal(o: Origination): void {
    this.originate(o);
  }

  withdrawLocal(prefix: string): void {
    const p = parsePrefix(prefix);
    if (p === undefined) throw new TypeError(`not a prefix: ${JSON.stringify(prefix)}`);
    this.ribs[p.afi].withdraw(LOCAL_PEER, PrefixList.parse(p.afi, [prefix]));
  }

  // ---- export ----

  private bestChanged(afi: PrefixAfi, list: PrefixList, peer: number, attrId: number, e: number): void {
    const attrs = peer < 0 ? undefined : this.attrs.get(attrId);
    const groups = this.groupsOf[afi];
    for (let k = 0; k < groups.length; k++) {
      const g = groups[k] as UpdateGroup<PeerRuntime>;
      if (g.target.exportPolicy.rejectsAll) continue; // a receive-only peer: never has anything
      if (attrs === undefined) g.out.enqueue(e, -1);
      else this.exportTo(g.target, g.out, list, 0, e, peer, attrId, attrs);
      this.flushGroup(g);
    }
    if (this.catchingUp.size === 0) return;
    for (const own of this.catchingUp) {
      if (own.afi !== afi) continue;
      if (attrs === undefined) own.out.enqueue(e, -1);
      else this.exportTo(own.target, own.out, list, 0, e, peer, attrId, attrs);
      this.flushGroup(own);
    }
  }

  private readonly exportCache = new ExportCache(this.outAttrs);

  private exportTo(
    to: ExportTarget,
    out: AdjRibOut,
    list: PrefixList,
    i: number,
    e: number,
    fromPeer: number,
    attrId: number,
    attrs: PathAttributes,
  ): void {
    if (fromPeer === to.role.id) {
      out.enqueue(e, -1); // split horizon (a group applies it per member when sending)
      return;
    }
    const cacheable = !to.exportPolicy.usesPrefix; // the result depends on the route only
    const gen = this.attrs.generation(attrId);
    if (cacheable) {
      const hit = this.exportCache.get(to.exportClass, to.memo, attrId, gen, fromPeer);
      if (hit !== undefined) {
        if (hit >= 0) this.outAttrs.retain(hit);
        out.enqueue(e, hit, fromPeer);
        return;
      }
    }
    const origin = this.origins.get(fromPeer)!;
    let result: PathAttributes | undefined = exportRoute(attrs, origin, to.role, this.me);
    if (result !== undefined) {
      const w = list.afi === 1 ? 1 : 4;
      const r = to.exportPolicy.evaluate(
        { afi: list.afi, words: list.addrs, offset: i * w, len: list.lens[i] as number },
        result,
        origin.kind === 'peer',
      );
      result = r.verdict === 'accept' ? r.attributes : undefined;
    }
    const outId = result === undefined ? -1 : this.outAttrs.intern(result);
    if (cacheable) this.exportCache.set(to.exportClass, to.memo, attrId, gen, fromPeer, outId);
    out.enqueue(e, outId, fromPeer);
  }

  /** The peer's socket takes more: its groups (and its own table, catching up) send. */
  private flush(rt: PeerRuntime): void {
    if (rt.session === undefined) return;
    for (const g of rt.groups.values()) if (g.members.has(rt.index)) this.flushGroup(g);
    for (const own of rt.catchUp.values()) this.flushGroup(own);
  }

  /** Sends a group's pending UPDATEs to its members while all their sockets take more. */
  private flushGroup(g: UpdateGroup<PeerRuntime>): void {
    if (g.flushing) return;
    g.flushing = true;
    const step = () => {
      g.flushing = false;
      if (g.closed) return;
      if (this.deferred.has(g.afi)) return; // endDeferral flushes
      let sent = 0;
      let more: boolean;
      const uncork = [...g.members.values()].map((m) => m.peer.cork());
      try {
        while (g.out.waiting > 0 && g.writable && sent < SLICE && !overBudget()) {
          sent += g.out.build(Math.min(BATCH, SLICE - sent), g);
        }
        more = g.out.waiting > 0;
        if (!more) {
          for (const m of g.members.values()) {
            this.sendMarkers(m, g.afi);
            more ||= this.owesMarkers(m, g.afi);
          }
        }
      } catch (e) {
        this.failed([...g.members.values()], 'sending UPDATEs', e);
        return;
      } finally {
        for (const f of uncork) f();
      }
      // Drained: a catching-up peer may join its group, or peers may join this one.
      if (!more) {
        if (g.joins !== undefined) for (const rt of [...g.members.values()]) this.tryJoin(rt, g.joins);
        else for (const rt of [...g.joining]) this.tryJoin(rt, g);
      }
      if (more && g.writable) {
        g.flushing = true;
        setImmediate(step);
      }
    };
    setImmediate(step);
  }

  /**
   * A bug of ours (or a limit reached) while building or taking in UPDATEs: the sessions
   * concerned start again with Cease / Out of Resources and say why, rather than the
   * process dying with every session in it.
   */
  private failed(rts: readonly PeerRuntime[], doing: string, e: unknown): void {
    const why = `internal error while ${doing}: ${e instanceof Error ? e.message : String(e)}`;
    for (const rt of rts) {
      rt.peer.reset(cease(CeaseSubcode.OutOfResources));
      rt.lastError = why;
      this.events.internalError?.(rt.settings.name, e);
    }
  }

  private owesMarkers(rt: PeerRuntime, afi: PrefixAfi): boolean {
    return rt.eorPending.has(afi) || rt.eorrPending.has(afi);
  }

  /** End-of-RIB after the initial table (RFC 4724 §2), EoRR after a refresh (RFC 7313 §4). */
  private sendMarkers(rt: PeerRuntime, afi: PrefixAfi): void {
    const s = rt.session;
    if (s === undefined || !rt.peer.writable) return;
    if (rt.eorPending.delete(afi)) rt.peer.send(encodeMessage(makeEndOfRib(afi, 1), s.sendContext));
    if (rt.eorrPending.delete(afi)) {
      rt.peer.send(
        encodeMessage(
          { type: 'routeRefresh', afi, safi: 1, subtype: RouteRefreshSubtype.EndOfRouteRefresh },
          s.sendContext,
        ),
      );
    }
  }
}

function cease(subcode: number): NotificationMessage {
  return { type: 'notification', code: ErrorCode.Cease, subcode, data: new Uint8Array(0) };
}

/** How long stale routes wait for End-of-RIB after the peer is back (BIRD's default). */
const STALE_PATH_TIME_MS = 360_000;

/**
 * Whether a session that went down keeps the peer's routes (RFC 4724 helper), and for
 * which families and how long. A connection failure without a NOTIFICATION does (RFC 4724
 * §4.2); a NOTIFICATION, sent or received (a hold timer expiry included), does only when
 * both sides set the N bit and it is neither a Hard Reset (RFC 8538 §3) nor an
 * administrative shutdown. We always set N.
 */
function retainOnRestart(
  session: NegotiatedSession,
  reason: TransitionReason,
  settings: PeerSettings,
): { families: Set<PrefixAfi>; restartTime: number } | undefined {
  const cap = session.peerGracefulRestart;
  if (cap === undefined || settings.gracefulRestart === undefined) return undefined;
  let retain: boolean;
  switch (reason.kind) {
    case 'tcpFailed':
    case 'sendHoldTimerExpired':
      retain = true;
      break;
    case 'errorSent':
    case 'notificationReceived': {
      const n = reason.notification;
      // RFC 8538 §3: with N exchanged, every NOTIFICATION but Hard Reset keeps the routes.
      retain = cap.notification && !(n.code === ErrorCode.Cease && n.subcode === CeaseSubcode.HardReset);
      break;
    }
    default:
      retain = false;
  }
  if (!retain) return undefined;
  const families = new Set<PrefixAfi>();
  for (const f of cap.families) {
    if (
      (f.afi === 1 || f.afi === 2) &&
      f.safi === 1 &&
      session.families.has(f.afi === 1 ? IPV4_UNICAST : IPV6_UNICAST)
    ) {
      families.add(f.afi);
    }
  }
  return { families, restartTime: cap.restartTime };
}

/** The next hops a peer gets from us as "self": configured, or the session address. */
function nextHops(s: PeerSettings): { nextHopIpv4?: string; nextHopIpv6?: string } {
  const local = s.localAddress;
  const v4 = s.nextHopIpv4 ?? (local !== undefined && !local.includes(':') ? local : undefined);
  const v6 = s.nextHopIpv6 ?? (local?.includes(':') === true ? local : undefined);
  return {
    ...(v4 === undefined ? {} : { nextHopIpv4: v4 }),
    ...(v6 === undefined ? {} : { nextHopIpv6: v6 }),
  };
}

/** Dials a peer: plain TCP, or through the addon when MD5 or GTSM is configured. */
async function dialPeer(p: PeerSettings): Promise<Transport> {
  const port = p.port ?? 179;
  if (p.password === undefined && p.ttlSecurity === undefined) {
    return dialTcp({
      host: p.address,
      port,
      ...(p.localAddress === undefined ? {} : { localAddress: p.localAddress }),
      timeoutMs: 5000,
    });
  }
  const socket = await connectTcp({
    host: p.address,
    port,
    timeoutMs: 5000,
    ...(p.localAddress === undefined ? {} : { localAddress: p.localAddress }),
    ...(p.password === undefined ? {} : { md5Key: p.password }),
    ...(p.ttlSecurity === undefined ? {} : { ttl: GTSM_TTL, minTtl: gtsmMinTtl(p.ttlSecurity) }),
  });
  return socketTransport(socket);
}

function ipv4Bytes(s: string): Uint8Array {
  const v = parseIpv4(s) ?? 0;
  return Uint8Array.of(v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
}

function describeReason(r: TransitionReason): string {
  switch (r.kind) {
    case 'errorSent':
      return `sent ${describeNotification(r.notification)}: ${r.detail}`;
    case 'notificationReceived':
      return `received ${describeNotification(r.notification)}`;
    case 'tcpFailed':
      return r.detail;
    default:
      return r.kind;
  }
}
