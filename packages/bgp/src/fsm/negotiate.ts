// What two OPENs agree on (RFC 4271 §4.2, RFC 5492 and each capability's RFC), and the
// checks that turn a well-formed OPEN into an OPEN Message Error (RFC 4271 §6.2).

import type {
  AfiSafiKey,
  Asn,
  Capability,
  CodecContext,
  GracefulRestartFamily,
  NotificationMessage,
  OpenMessage,
} from '../wire/index.js';
import {
  BgpNotification,
  ErrorCode,
  IPV4_UNICAST,
  OpenSubcode,
  afiSafiKey,
  afiSafiName,
  encodeMessage,
  makeContext,
  openAsn,
  parseIpv4,
} from '../wire/index.js';

export interface PeerGracefulRestart {
  /** RFC 4724 §3: the peer restarted and is waiting for our End-of-RIB (R bit). */
  readonly restarting: boolean;
  /** RFC 8538 §2: graceful restart also applies to NOTIFICATIONs (N bit), both sides set it. */
  readonly notification: boolean;
  readonly restartTime: number;
  /** Families the peer keeps forwarding state for across a restart. */
  readonly families: readonly GracefulRestartFamily[];
}

/** The session as both OPENs define it. */
export interface NegotiatedSession {
  readonly peerAsn: Asn;
  readonly peerBgpIdentifier: string;
  readonly internal: boolean;
  /** RFC 4271 §4.2: the smaller of the two hold times; 0 means no keepalives at all. */
  readonly holdTime: number;
  /** Seconds between our KEEPALIVEs; 0 when holdTime is 0. */
  readonly keepaliveTime: number;
  /** RFC 6793: both sides advertised 4-octet AS. */
  readonly as4: boolean;
  /** RFC 4760: families both sides advertised (IPv4 unicast when the peer advertised none). */
  readonly families: ReadonlySet<AfiSafiKey>;
  /** RFC 7911: families where the peer sends path identifiers (we advertised receive). */
  readonly addPathReceive: ReadonlySet<AfiSafiKey>;
  /** RFC 7911: families where we may send path identifiers (the peer advertised receive). */
  readonly addPathSend: ReadonlySet<AfiSafiKey>;
  readonly routeRefresh: boolean;
  readonly enhancedRouteRefresh: boolean;
  /** RFC 8654: both sides advertised Extended Message. */
  readonly extendedMessage: boolean;
  /** RFC 8950: families (NLRI AFI/SAFI) for which the peer accepts an IPv6 next hop. */
  readonly extendedNextHop: ReadonlySet<AfiSafiKey>;
  /** The peer's graceful restart capability, if it sent one. */
  readonly peerGracefulRestart: PeerGracefulRestart | undefined;
  /** Codec context for what we receive, and for what we send. */
  readonly receiveContext: CodecContext;
  readonly sendContext: CodecContext;
  readonly peerOpen: OpenMessage;
}

export interface NegotiationPolicy {
  readonly localAsn: Asn;
  readonly localBgpIdentifier: string;
  /** The peer's configured AS; undefined accepts any (a dynamic/listen-range neighbour). */
  readonly peerAsn: Asn | undefined;
  /** Our hold time, seconds: 0 or at least 3. */
  readonly holdTime: number;
  /** Our keepalive interval, seconds; default holdTime / 3. */
  readonly keepaliveTime?: number;
}

const EMPTY = new Uint8Array(0);

function capabilityBytes(caps: readonly Capability[]): Uint8Array {
  // The Data of Unsupported Capability (RFC 5492 §3) is the list of capabilities we
  // require; reuse the OPEN encoder and cut out the capability bytes.
  const open = encodeMessage({
    type: 'open',
    version: 4,
    myAutonomousSystem: 0,
    holdTime: 0,
    bgpIdentifier: '0.0.0.1',
    capabilities: caps,
  });
  return open.length > 31 ? open.slice(31) : EMPTY;
}

/**
 * Agrees a session from our OPEN and the peer's. Returns the NOTIFICATION to send when the
 * peer's OPEN is unacceptable.
 */
export function negotiate(
  local: OpenMessage,
  remote: OpenMessage,
  policy: NegotiationPolicy,
): NegotiatedSession | BgpNotification {
  const peerAsn = openAsn(remote);
  // RFC 4271 §6.2: "If the Autonomous System field of the OPEN message is unacceptable,
  // then the Error Subcode MUST be set to Bad Peer AS." RFC 6793 §4.1: the 4-octet AS
  // capability's value is the one that counts.
  if (policy.peerAsn !== undefined && peerAsn !== policy.peerAsn) {
    return new BgpNotification(
      ErrorCode.OpenMessage,
      OpenSubcode.BadPeerAs,
      Uint8Array.of(remote.myAutonomousSystem >> 8, remote.myAutonomousSystem & 255),
      `peer AS ${peerAsn}, configured ${policy.peerAsn}`,
    );
  }
  const internal = peerAsn === policy.localAsn;
  // RFC 6286 §2.2: the BGP Identifier of an internal peer MUST differ from ours.
  if (internal && parseIpv4(remote.bgpIdentifier) === parseIpv4(policy.localBgpIdentifier)) {
    return new BgpNotification(
      ErrorCode.OpenMessage,
      OpenSubcode.BadBgpIdentifier,
      EMPTY,
      `internal peer uses our BGP identifier ${remote.bgpIdentifier}`,
    );
  }
  // RFC 4271 §4.2: "the smaller of its configured Hold Time and the Hold Time received".
  const holdTime = Math.min(policy.holdTime, remote.holdTime);
  const keepaliveTime =
    holdTime === 0
      ? 0
      : Math.max(1, Math.min(policy.keepaliveTime ?? Math.floor(holdTime / 3), Math.floor(holdTime / 3)));

  const mine = indexCaps(local.capabilities);
  const theirs = indexCaps(remote.capabilities);
  // RFC 4760 §8 / RFC 2858: a speaker that advertises no multiprotocol capability
  // supports IPv4 unicast only.
  const myFamilies = mine.families.size > 0 ? mine.families : new Set([IPV4_UNICAST]);
  const theirFamilies = theirs.families.size > 0 ? theirs.families : new Set([IPV4_UNICAST]);
  const families = new Set([...myFamilies].filter((f) => theirFamilies.has(f)));
  if (families.size === 0) {
    // RFC 5492 §5: no family in common: Unsupported Capability, carrying what we need.
    const wanted = local.capabilities.filter((c) => c.kind === 'multiprotocol');
    return new BgpNotification(
      ErrorCode.OpenMessage,
      OpenSubcode.UnsupportedCapability,
      capabilityBytes(wanted),
      `no address family in common (we offer ${[...myFamilies].map((k) => afiSafiName(k >> 8, k & 255)).join(', ')})`,
    );
  }
  const addPathReceive = new Set<AfiSafiKey>();
  const addPathSend = new Set<AfiSafiKey>();
  for (const f of families) {
    const m = mine.addPath.get(f);
    const t = theirs.addPath.get(f);
    // RFC 7911 §4: we receive path ids when we said receive and the peer said send.
    if ((m === 'receive' || m === 'both') && (t === 'send' || t === 'both')) addPathReceive.add(f);
    if ((m === 'send' || m === 'both') && (t === 'receive' || t === 'both')) addPathSend.add(f);
  }
  const as4 = mine.as4 && theirs.as4;
  const extendedMessage = mine.extendedMessage && theirs.extendedMessage;
  const extendedNextHop = new Set([...theirs.extendedNextHop].filter((f) => mine.extendedNextHop.has(f)));
  return {
    peerAsn,
    peerBgpIdentifier: remote.bgpIdentifier,
    internal,
    holdTime,
    keepaliveTime,
    as4,
    families,
    addPathReceive,
    addPathSend,
    routeRefresh: mine.routeRefresh && theirs.routeRefresh,
    enhancedRouteRefresh: mine.enhancedRouteRefresh && theirs.enhancedRouteRefresh,
    extendedMessage,
    extendedNextHop,
    peerGracefulRestart: theirs.gracefulRestart,
    receiveContext: makeContext({ as4, addPath: addPathReceive, extendedMessage }),
    sendContext: makeContext({ as4, addPath: addPathSend, extendedMessage }),
    peerOpen: remote,
  };
}

interface CapIndex {
  families: Set<AfiSafiKey>;
  addPath: Map<AfiSafiKey, 'receive' | 'send' | 'both'>;
  as4: boolean;
  routeRefresh: boolean;
  enhancedRouteRefresh: boolean;
  extendedMessage: boolean;
  extendedNextHop: Set<AfiSafiKey>;
  gracefulRestart: PeerGracefulRestart | undefined;
}

function indexCaps(caps: readonly Capability[]): CapIndex {
  const x: CapIndex = {
    families: new Set(),
    addPath: new Map(),
    as4: false,
    routeRefresh: false,
    enhancedRouteRefresh: false,
    extendedMessage: false,
    extendedNextHop: new Set(),
    gracefulRestart: undefined,
  };
  for (const c of caps) {
    switch (c.kind) {
      case 'multiprotocol':
        x.families.add(afiSafiKey(c.afi, c.safi));
        break;
      case 'fourOctetAs':
        x.as4 = true;
        break;
      case 'routeRefresh':
        x.routeRefresh = true;
        break;
      case 'enhancedRouteRefresh':
        x.enhancedRouteRefresh = true;
        break;
      case 'extendedMessage':
        x.extendedMessage = true;
        break;
      case 'addPath':
        for (const f of c.families) x.addPath.set(afiSafiKey(f.afi, f.safi), f.mode);
        break;
      case 'extendedNextHop':
        // RFC 8950 §3: only an IPv6 next hop for IPv4 NLRI is defined.
        for (const f of c.families) if (f.nextHopAfi === 2) x.extendedNextHop.add(afiSafiKey(f.afi, f.safi));
        break;
      case 'gracefulRestart':
        x.gracefulRestart = {
          restarting: c.restarting,
          notification: c.notification,
          restartTime: c.restartTime,
          families: c.families,
        };
        break;
      case 'unknown':
        // RFC 5492 §3: the old Cisco route refresh code (128) means route refresh too.
        if (c.code === 128) x.routeRefresh = true;
        break;
      case 'fqdn':
        break;
    }
  }
  return x;
}

/** The NOTIFICATION value of a BgpNotification, for sending. */
export function toNotification(e: BgpNotification): NotificationMessage {
  return { type: 'notification', code: e.code, subcode: e.subcode, data: e.data };
}
