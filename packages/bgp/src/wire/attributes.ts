// Path attributes (RFC 4271 §4.3, §5) and their error handling (RFC 7606).
//
// Decoding never throws for an attribute RFC 7606 lets us survive: it records the
// error with its action (attribute-discard or treat-as-withdraw) and goes on, so
// one bad optional attribute never resets a session (CERT VU#347067). It throws a
// BgpNotification only where the RFCs require a session reset.

import type { CodecContext } from './context.js';
import { hasAddPath } from './context.js';
import type { BgpNotification, ErrorAction } from './errors.js';
import { UpdateSubcode, updateError } from './errors.js';
import type { PrefixAfi, PrefixList } from './prefix.js';
import { decodePrefixes } from './prefix.js';
import type { Asn } from './types.js';
import { AS_TRANS, formatIpv4, formatIpv6Bytes, isPrefixFamily, readU16, readU32 } from './types.js';

/** IANA "BGP Path Attributes". */
export const AttrType = {
  Origin: 1,
  AsPath: 2,
  NextHop: 3,
  MultiExitDisc: 4,
  LocalPref: 5,
  AtomicAggregate: 6,
  Aggregator: 7,
  Communities: 8,
  OriginatorId: 9,
  ClusterList: 10,
  MpReachNlri: 14,
  MpUnreachNlri: 15,
  ExtendedCommunities: 16,
  As4Path: 17,
  As4Aggregator: 18,
  LargeCommunities: 32,
} as const;

/** Attribute flag bits (RFC 4271 §4.3). */
export const AttrFlag = { Optional: 0x80, Transitive: 0x40, Partial: 0x20, ExtendedLength: 0x10 } as const;

const WK = AttrFlag.Transitive; // well-known: optional 0, transitive 1
const OPT = AttrFlag.Optional; // optional non-transitive
const OPT_T = AttrFlag.Optional | AttrFlag.Transitive; // optional transitive

/** The Optional and Transitive bits each known attribute must carry. */
const EXPECTED_FLAGS_LIST: readonly [number, number][] = [
  [AttrType.Origin, WK],
  [AttrType.AsPath, WK],
  [AttrType.NextHop, WK],
  [AttrType.MultiExitDisc, OPT],
  [AttrType.LocalPref, WK],
  [AttrType.AtomicAggregate, WK],
  [AttrType.Aggregator, OPT_T],
  [AttrType.Communities, OPT_T],
  [AttrType.OriginatorId, OPT],
  [AttrType.ClusterList, OPT],
  [AttrType.MpReachNlri, OPT],
  [AttrType.MpUnreachNlri, OPT],
  [AttrType.ExtendedCommunities, OPT_T],
  [AttrType.As4Path, OPT_T],
  [AttrType.As4Aggregator, OPT_T],
  [AttrType.LargeCommunities, OPT_T],
];
/** Indexed by type code: the expected flags, or -1 for a type we do not know. */
const EXPECTED_FLAGS = new Int16Array(256).fill(-1);
for (const [t, f] of EXPECTED_FLAGS_LIST) EXPECTED_FLAGS[t] = f;

// Which types one decode has met: a stamp per type code instead of a fresh bitmap per
// message (decoding is synchronous, so one table serves every call).
const seenStamp = new Uint32Array(256);
let stamp = 0;

function lengthError(type: number, len: number, action: ErrorAction, expect: string, raw: Uint8Array) {
  return updateError(
    UpdateSubcode.AttributeLengthError,
    `attribute ${type} has length ${len}, expected ${expect}`,
    action,
    raw,
    type,
  );
}

export type Origin = 'igp' | 'egp' | 'incomplete';
const ORIGINS: readonly Origin[] = ['igp', 'egp', 'incomplete'];

export type AsPathSegmentType = 'set' | 'sequence' | 'confedSequence' | 'confedSet';
/** Wire values 1..4 (RFC 4271 §4.3, RFC 5065 §3). */
export const SEGMENT_TYPES: readonly AsPathSegmentType[] = ['set', 'sequence', 'confedSequence', 'confedSet'];

export interface AsPathSegment {
  readonly type: AsPathSegmentType;
  readonly asns: readonly Asn[];
}

export interface Aggregator {
  readonly asn: Asn;
  readonly address: string;
}

/** RFC 8092 §3. */
export interface LargeCommunity {
  readonly globalAdministrator: number;
  readonly localData1: number;
  readonly localData2: number;
}

export type MpReachNlri =
  | {
      readonly kind: 'prefixes';
      readonly afi: PrefixAfi;
      readonly safi: number;
      /** IPv4 or IPv6 (also for IPv4 NLRI with an RFC 8950 IPv6 next hop). */
      readonly nextHop: string;
      /** RFC 2545 §3: the second, link-local IPv6 next hop (32-byte next hop field). */
      readonly linkLocalNextHop?: string;
      readonly nlri: PrefixList;
    }
  | {
      /** A family this codec does not decode in detail: kept as bytes. */
      readonly kind: 'opaque';
      readonly afi: number;
      readonly safi: number;
      readonly nextHop: Uint8Array;
      readonly nlri: Uint8Array;
    };

export type MpUnreachNlri =
  | {
      readonly kind: 'prefixes';
      readonly afi: PrefixAfi;
      readonly safi: number;
      readonly withdrawnRoutes: PrefixList;
    }
  | {
      readonly kind: 'opaque';
      readonly afi: number;
      readonly safi: number;
      readonly withdrawnRoutes: Uint8Array;
    };

export interface UnknownAttribute {
  readonly flags: number;
  readonly typeCode: number;
  readonly value: Uint8Array;
}

/**
 * The path attributes of one UPDATE, named as in the RFCs. AS4_PATH and AS4_AGGREGATOR
 * do not appear: on a 2-octet session the codec merges them into asPath/aggregator
 * when decoding and produces them when encoding (RFC 6793 §4.2).
 */
export interface PathAttributes {
  readonly origin?: Origin;
  readonly asPath?: readonly AsPathSegment[];
  readonly nextHop?: string;
  readonly multiExitDisc?: number;
  readonly localPref?: number;
  readonly atomicAggregate?: true;
  readonly aggregator?: Aggregator;
  /** RFC 1997: each a uint32, high 16 bits the AS. */
  readonly communities?: readonly number[];
  readonly originatorId?: string;
  readonly clusterList?: readonly string[];
  readonly mpReachNlri?: MpReachNlri;
  readonly mpUnreachNlri?: MpUnreachNlri;
  /** RFC 4360: each 8 bytes as a 64-bit integer. */
  readonly extendedCommunities?: readonly bigint[];
  readonly largeCommunities?: readonly LargeCommunity[];
  /** Attributes this codec does not know, kept with their flags. */
  readonly unknown?: readonly UnknownAttribute[];
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export interface DecodedAttributes {
  readonly attributes: PathAttributes;
  /** Errors survived under RFC 7606, in the order met. */
  readonly errors: readonly BgpNotification[];
}

/** Decodes the AS_PATH / AS4_PATH value in b[off..end); undefined if malformed (RFC 7606 §7.2). */
export function decodeAsPath(
  b: Uint8Array,
  off: number,
  end: number,
  asnSize: 2 | 4,
): AsPathSegment[] | undefined {
  const out: AsPathSegment[] = [];
  let i = off;
  while (i < end) {
    if (i + 2 > end) return undefined;
    const type = SEGMENT_TYPES[(b[i] as number) - 1];
    const count = b[i + 1] as number;
    i += 2;
    // RFC 7606 §7.2: an unrecognized segment type, a zero segment length, or a
    // segment overrunning the attribute make the AS_PATH malformed.
    if (type === undefined || count === 0 || i + count * asnSize > end) return undefined;
    const asns: Asn[] = new Array<Asn>(count);
    for (let k = 0; k < count; k++) {
      asns[k] = (asnSize === 4 ? readU32(b, i) : readU16(b, i)) as Asn;
      i += asnSize;
    }
    out.push({ type, asns });
  }
  return out;
}

/** The checks of decodeAsPath without building anything; true when well-formed. */
export function validAsPath(
  b: Uint8Array,
  off: number,
  end: number,
  asnSize: 2 | 4,
  noConfed = false,
): boolean {
  let i = off;
  while (i < end) {
    if (i + 2 > end) return false;
    const t = b[i] as number;
    const count = b[i + 1] as number;
    if (t < 1 || t > 4 || count === 0 || (noConfed && t > 2)) return false;
    i += 2 + count * asnSize;
  }
  return i === end;
}

/** RFC 6793 §4.2.3 path length: a sequence counts its ASNs, a set counts 1, confederation segments 0. */
function pathCount(path: readonly AsPathSegment[]): number {
  let n = 0;
  for (const s of path) n += s.type === 'sequence' ? s.asns.length : s.type === 'set' ? 1 : 0;
  return n;
}

/**
 * RFC 6793 §4.2.3: rebuild the 4-octet path from AS_PATH and AS4_PATH received on a
 * 2-octet session. "If the number of AS numbers in the AS_PATH attribute is less than
 * the number of AS numbers in the AS4_PATH attribute, then the AS4_PATH attribute SHALL
 * be ignored"; otherwise the leading ASNs of AS_PATH that AS4_PATH lacks are prepended.
 */
export function mergeAs4Path(
  asPath: readonly AsPathSegment[],
  as4Path: readonly AsPathSegment[],
): AsPathSegment[] {
  const n = pathCount(asPath);
  const m = pathCount(as4Path);
  if (n < m) return [...asPath];
  let take = n - m;
  const out: AsPathSegment[] = [];
  for (const seg of asPath) {
    if (seg.type === 'confedSequence' || seg.type === 'confedSet') {
      out.push(seg);
      continue;
    }
    if (take === 0) break;
    if (seg.type === 'set') {
      out.push(seg);
      take -= 1;
    } else if (seg.asns.length <= take) {
      out.push(seg);
      take -= seg.asns.length;
    } else {
      out.push({ type: 'sequence', asns: seg.asns.slice(0, take) });
      take = 0;
    }
  }
  // Join the taken ASNs and AS4_PATH into one sequence where they meet, as the speaker
  // that prepended them saw one path; AS4_PATH's own segments are kept as they are.
  const first = as4Path[0];
  const last = out[out.length - 1];
  const tookSome = n > m;
  if (
    tookSome &&
    last?.type === 'sequence' &&
    first?.type === 'sequence' &&
    last.asns.length + first.asns.length <= 255
  ) {
    out[out.length - 1] = { type: 'sequence', asns: [...last.asns, ...first.asns] };
    out.push(...as4Path.slice(1));
  } else {
    out.push(...as4Path);
  }
  return out;
}

const overrunNotice = (what: string) =>
  updateError(UpdateSubcode.MalformedAttributeList, `path attributes: ${what}`, 'treat-as-withdraw');

/**
 * Decodes the path attributes in b[off..end). `hasNlri` says whether the NLRI field
 * carries prefixes (for the well-known attribute check of RFC 7606 §3 d).
 */
export function decodeAttributes(
  b: Uint8Array,
  off: number,
  end: number,
  ctx: CodecContext,
  hasNlri: boolean,
  /**
   * false: run every check and decode MP_REACH_NLRI / MP_UNREACH_NLRI (their prefixes are
   * needed), but build no other attribute; a RIB that interns attribute sets by their bytes
   * builds objects only for sets it has not seen.
   */
  build = true,
): DecodedAttributes {
  const a: Mutable<PathAttributes> = {};
  const errors: BgpNotification[] = []; // V8 allocates no backing store until the first push
  if (++stamp === 0xffffffff) {
    seenStamp.fill(0);
    stamp = 1;
  }
  const st = stamp;
  let as4Path: AsPathSegment[] | undefined;
  let as4Aggregator: Aggregator | undefined;
  let unknown: UnknownAttribute[] | undefined;
  let i = off;
  while (i < end) {
    // RFC 7606 §4: fewer than 3 (or 4 with Extended Length) octets left, or an
    // attribute overrunning the Total Attribute Length: treat-as-withdraw, and the
    // Total Attribute Length still locates the NLRI.
    if (end - i < 3) {
      errors.push(overrunNotice(`${end - i} trailing bytes are too few for an attribute header`));
      break;
    }
    const flags = b[i] as number;
    const type = b[i + 1] as number;
    let len: number;
    let hdr: number;
    if ((flags & AttrFlag.ExtendedLength) !== 0) {
      if (end - i < 4) {
        errors.push(overrunNotice(`attribute ${type}: extended length header is cut short`));
        break;
      }
      len = readU16(b, i + 2);
      hdr = 4;
    } else {
      len = b[i + 2] as number;
      hdr = 3;
    }
    const vs = i + hdr;
    const ve = vs + len;
    if (ve > end) {
      errors.push(overrunNotice(`attribute ${type} of length ${len} overruns the attribute field`));
      break;
    }
    // RFC 4271 §6.3: the Data field holds "the attribute (type, length, and value)";
    // copied only when an error needs it.
    const as = i;
    i = ve;

    if (seenStamp[type] === st) {
      // RFC 7606 §3 g: "If the MP_REACH_NLRI attribute or the MP_UNREACH_NLRI attribute
      // appears more than once in the UPDATE message, then a NOTIFICATION message MUST be
      // sent with the Error Subcode 'Malformed Attribute List'. If any other attribute
      // ... appears more than once ... all the occurrences ... other than the first one
      // SHALL be discarded".
      if (type === AttrType.MpReachNlri || type === AttrType.MpUnreachNlri) {
        throw updateError(
          UpdateSubcode.MalformedAttributeList,
          `attribute ${type} appears twice`,
          'session-reset',
          new Uint8Array(0),
          type,
        );
      }
      errors.push(
        updateError(
          UpdateSubcode.MalformedAttributeList,
          `attribute ${type} repeated; later copy discarded`,
          'attribute-discard',
          b.slice(as, ve),
          type,
        ),
      );
      continue;
    }
    seenStamp[type] = st;

    const expected = EXPECTED_FLAGS[type] as number;
    if (expected < 0) {
      // RFC 4271 §6.3: an unrecognized well-known attribute resets the session; RFC 7606
      // does not revise this case.
      if ((flags & AttrFlag.Optional) === 0) {
        throw updateError(
          UpdateSubcode.UnrecognizedWellKnownAttribute,
          `unrecognized well-known attribute ${type}`,
          'session-reset',
          b.slice(as, ve),
          type,
        );
      }
      // The Extended Length bit is framing, not meaning: the encoder sets it as needed.
      if (build)
        (unknown ??= []).push({
          flags: flags & ~AttrFlag.ExtendedLength,
          typeCode: type,
          value: b.slice(vs, ve),
        });
      continue;
    }
    if ((flags & (AttrFlag.Optional | AttrFlag.Transitive)) !== expected) {
      // RFC 7606 §3 c: conflicting Optional/Transitive bits make the attribute malformed:
      // treat-as-withdraw, unless its own rules say otherwise (MP_* reset the session,
      // RFC 7606 §7.11; AS4_* are discarded, RFC 6793 §6).
      const action: ErrorAction =
        type === AttrType.MpReachNlri || type === AttrType.MpUnreachNlri
          ? 'session-reset'
          : type === AttrType.As4Path || type === AttrType.As4Aggregator
            ? 'attribute-discard'
            : 'treat-as-withdraw';
      const e = updateError(
        UpdateSubcode.AttributeFlagsError,
        `attribute ${type} has flags 0x${flags.toString(16)}`,
        action,
        b.slice(as, ve),
        type,
      );
      if (action === 'session-reset') throw e;
      errors.push(e);
      continue;
    }

    switch (type) {
      case AttrType.Origin: {
        // RFC 7606 §7.1: wrong length or an undefined value: treat-as-withdraw.
        if (len !== 1) {
          errors.push(lengthError(type, len, 'treat-as-withdraw', '1', b.slice(as, ve)));
          break;
        }
        const o = ORIGINS[b[vs] as number];
        if (o === undefined) {
          errors.push(
            updateError(
              UpdateSubcode.InvalidOriginAttribute,
              `ORIGIN value ${b[vs]}`,
              'treat-as-withdraw',
              b.slice(as, ve),
              type,
            ),
          );
          break;
        }
        if (build) a.origin = o;
        break;
      }
      case AttrType.AsPath: {
        const size = ctx.as4 ? 4 : 2;
        const path = build ? decodeAsPath(b, vs, ve, size) : validAsPath(b, vs, ve, size) ? [] : undefined;
        // RFC 7606 §7.2: a malformed AS_PATH: treat-as-withdraw.
        if (path === undefined) {
          errors.push(
            updateError(
              UpdateSubcode.MalformedAsPath,
              'AS_PATH is malformed',
              'treat-as-withdraw',
              undefined,
              type,
            ),
          );
          break;
        }
        if (build) a.asPath = path;
        break;
      }
      case AttrType.NextHop: {
        // RFC 7606 §7.3: length other than 4: treat-as-withdraw.
        if (len !== 4) {
          errors.push(lengthError(type, len, 'treat-as-withdraw', '4', b.slice(as, ve)));
          break;
        }
        const nh = readU32(b, vs);
        // RFC 4271 §6.3: a NEXT_HOP that is not a valid IP host address is semantically
        // incorrect and the route "SHOULD be ignored"; RFC 7606 §7.3 makes that
        // treat-as-withdraw. 0.0.0.0/8, multicast and class E (with broadcast) can never be
        // a host; checks that need the session (our own address, a shared subnet) are the
        // session's.
        if (nh >>> 24 === 0 || nh >>> 28 >= 0xe) {
          errors.push(
            updateError(
              UpdateSubcode.InvalidNextHopAttribute,
              `NEXT_HOP ${formatIpv4(nh)} is not a host address`,
              'treat-as-withdraw',
              b.slice(as, ve),
              type,
            ),
          );
          break;
        }
        if (build) a.nextHop = formatIpv4(nh);
        break;
      }
      case AttrType.MultiExitDisc:
        // RFC 7606 §7.4.
        if (len !== 4) errors.push(lengthError(type, len, 'treat-as-withdraw', '4', b.slice(as, ve)));
        else if (build) a.multiExitDisc = readU32(b, vs);
        break;
      case AttrType.LocalPref:
        // RFC 7606 §7.5 (ignoring it from an external peer is the session's job).
        if (len !== 4) errors.push(lengthError(type, len, 'treat-as-withdraw', '4', b.slice(as, ve)));
        else if (build) a.localPref = readU32(b, vs);
        break;
      case AttrType.AtomicAggregate:
        // RFC 7606 §7.6: length other than 0: attribute discard.
        if (len !== 0) errors.push(lengthError(type, len, 'attribute-discard', '0', b.slice(as, ve)));
        else if (build) a.atomicAggregate = true;
        break;
      case AttrType.Aggregator: {
        // RFC 7606 §7.7: length other than 6 (2-octet session) or 8: attribute discard.
        const want = ctx.as4 ? 8 : 6;
        if (len !== want)
          errors.push(lengthError(type, len, 'attribute-discard', String(want), b.slice(as, ve)));
        else if (build)
          a.aggregator = {
            asn: (ctx.as4 ? readU32(b, vs) : readU16(b, vs)) as Asn,
            address: formatIpv4(readU32(b, ve - 4)),
          };
        break;
      }
      case AttrType.Communities: {
        // RFC 7606 §7.8: length not a non-zero multiple of 4: treat-as-withdraw.
        if (len === 0 || len % 4 !== 0) {
          errors.push(
            lengthError(type, len, 'treat-as-withdraw', 'a non-zero multiple of 4', b.slice(as, ve)),
          );
          break;
        }
        if (!build) break;
        const c: number[] = new Array<number>(len / 4);
        for (let k = 0; k < c.length; k++) c[k] = readU32(b, vs + 4 * k);
        a.communities = c;
        break;
      }
      case AttrType.OriginatorId:
        // RFC 7606 §7.9.
        if (len !== 4) errors.push(lengthError(type, len, 'treat-as-withdraw', '4', b.slice(as, ve)));
        else if (build) a.originatorId = formatIpv4(readU32(b, vs));
        break;
      case AttrType.ClusterList: {
        // RFC 7606 §7.10: length not a non-zero multiple of 4: treat-as-withdraw.
        if (len === 0 || len % 4 !== 0) {
          errors.push(
            lengthError(type, len, 'treat-as-withdraw', 'a non-zero multiple of 4', b.slice(as, ve)),
          );
          break;
        }
        if (!build) break;
        const ids: string[] = [];
        for (let k = vs; k < ve; k += 4) ids.push(formatIpv4(readU32(b, k)));
        a.clusterList = ids;
        break;
      }
      case AttrType.MpReachNlri:
        a.mpReachNlri = decodeMpReach(b, as, vs, ve, ctx);
        break;
      case AttrType.MpUnreachNlri:
        a.mpUnreachNlri = decodeMpUnreach(b, as, vs, ve, ctx);
        break;
      case AttrType.ExtendedCommunities: {
        // RFC 7606 §7.14: length not a non-zero multiple of 8: treat-as-withdraw.
        if (len === 0 || len % 8 !== 0) {
          errors.push(
            lengthError(type, len, 'treat-as-withdraw', 'a non-zero multiple of 8', b.slice(as, ve)),
          );
          break;
        }
        if (!build) break;
        const c: bigint[] = [];
        for (let k = vs; k < ve; k += 8) c.push((BigInt(readU32(b, k)) << 32n) | BigInt(readU32(b, k + 4)));
        a.extendedCommunities = c;
        break;
      }
      case AttrType.As4Path: {
        // RFC 6793 §4.1: a NEW speaker receiving AS4_PATH from a NEW speaker discards it.
        if (ctx.as4) break;
        const path = build ? decodeAsPath(b, vs, ve, 4) : validAsPath(b, vs, ve, 4, true) ? [] : undefined;
        // RFC 6793 §6: a malformed AS4_PATH (including confederation segments, §5) is discarded.
        if (path === undefined || path.some((s) => s.type === 'confedSequence' || s.type === 'confedSet')) {
          errors.push(
            updateError(
              UpdateSubcode.OptionalAttributeError,
              'AS4_PATH is malformed',
              'attribute-discard',
              b.slice(as, ve),
              type,
            ),
          );
          break;
        }
        as4Path = path;
        break;
      }
      case AttrType.As4Aggregator:
        if (ctx.as4) break; // RFC 6793 §4.1, as for AS4_PATH
        if (len !== 8) errors.push(lengthError(type, len, 'attribute-discard', '8', b.slice(as, ve)));
        else as4Aggregator = { asn: readU32(b, vs) as Asn, address: formatIpv4(readU32(b, vs + 4)) };
        break;
      case AttrType.LargeCommunities: {
        // RFC 8092 §6: length not a non-zero multiple of 12: treat-as-withdraw.
        if (len === 0 || len % 12 !== 0) {
          errors.push(
            lengthError(type, len, 'treat-as-withdraw', 'a non-zero multiple of 12', b.slice(as, ve)),
          );
          break;
        }
        if (!build) break;
        const c: LargeCommunity[] = [];
        for (let k = vs; k < ve; k += 12) {
          c.push({
            globalAdministrator: readU32(b, k),
            localData1: readU32(b, k + 4),
            localData2: readU32(b, k + 8),
          });
        }
        a.largeCommunities = c;
        break;
      }
    }
  }

  // RFC 6793 §4.2.3: reconstruct 4-octet AGGREGATOR and AS_PATH on a 2-octet session.
  if (build && !ctx.as4) {
    let ignoreAs4Path = false;
    if (a.aggregator !== undefined && as4Aggregator !== undefined) {
      // "If the AGGREGATOR attribute contains an AS number other than AS_TRANS, then ...
      // the AS4_AGGREGATOR attribute and the AS4_PATH attribute SHALL be ignored."
      if (a.aggregator.asn !== AS_TRANS) ignoreAs4Path = true;
      else a.aggregator = as4Aggregator;
    }
    if (!ignoreAs4Path && as4Path !== undefined && a.asPath !== undefined) {
      a.asPath = mergeAs4Path(a.asPath, as4Path);
    }
  }
  if (unknown !== undefined) a.unknown = unknown;

  // RFC 7606 §3 d: a missing well-known mandatory attribute means treat-as-withdraw;
  // NEXT_HOP is needed only when the NLRI field carries prefixes (RFC 4760 §3).
  const reach = hasNlri || (a.mpReachNlri !== undefined && mpReachCount(a.mpReachNlri) > 0);
  if (reach) {
    const required = hasNlri
      ? [AttrType.Origin, AttrType.AsPath, AttrType.NextHop]
      : [AttrType.Origin, AttrType.AsPath];
    for (const t of required) {
      if (seenStamp[t] !== st) {
        // RFC 4271 §6.3: "The Data field MUST contain the Attribute Type Code of the missing,
        // well-known attribute."
        errors.push(
          updateError(
            UpdateSubcode.MissingWellKnownAttribute,
            `missing well-known attribute ${t}`,
            'treat-as-withdraw',
            Uint8Array.of(t),
            t,
          ),
        );
      }
    }
  }
  return { attributes: a, errors };
}

function mpReachCount(m: MpReachNlri): number {
  return m.kind === 'prefixes' ? m.nlri.length : m.nlri.length;
}

// RFC 4760 §7 and RFC 7606 §7.11: an MP_REACH_NLRI / MP_UNREACH_NLRI we cannot parse
// means session reset (we do not implement AFI/SAFI disable), sent as
// "UPDATE Message Error" / "Optional Attribute Error".
const mpError = (what: string, raw: Uint8Array, type: number) =>
  updateError(UpdateSubcode.OptionalAttributeError, what, 'session-reset', raw, type);

function decodeMpReach(b: Uint8Array, as: number, vs: number, ve: number, ctx: CodecContext): MpReachNlri {
  const T = AttrType.MpReachNlri;
  if (ve - vs < 5) throw mpError(`MP_REACH_NLRI of length ${ve - vs} is too short`, b.slice(as, ve), T);
  const afi = readU16(b, vs);
  const safi = b[vs + 2] as number;
  const nhLen = b[vs + 3] as number;
  const nhs = vs + 4;
  // Next hop, then the one Reserved octet (RFC 4760 §3), then NLRI.
  if (nhs + nhLen + 1 > ve)
    throw mpError(`MP_REACH_NLRI next hop length ${nhLen} overruns the attribute`, b.slice(as, ve), T);
  const ns = nhs + nhLen + 1;
  if (!isPrefixFamily(afi, safi)) {
    return { kind: 'opaque', afi, safi, nextHop: b.slice(nhs, nhs + nhLen), nlri: b.slice(ns, ve) };
  }
  let nextHop: string;
  let linkLocalNextHop: string | undefined;
  if (afi === 1 && nhLen === 4) {
    nextHop = formatIpv4(readU32(b, nhs));
  } else if (nhLen === 16 || nhLen === 32) {
    // RFC 2545 §3 (IPv6) and RFC 8950 §3 (IPv4 NLRI over an IPv6 next hop).
    nextHop = formatIpv6Bytes(b, nhs);
    if (nhLen === 32) linkLocalNextHop = formatIpv6Bytes(b, nhs + 16);
  } else {
    // RFC 7606 §7.11: "If the Length of Next Hop Network Address field of the MP_REACH
    // attribute is inconsistent with that which was expected, the attribute is considered
    // malformed."
    throw mpError(`MP_REACH_NLRI next hop length ${nhLen} is wrong for AFI ${afi}`, b.slice(as, ve), T);
  }
  const nlri = decodePrefixes(b, ns, ve, afi, hasAddPath(ctx, afi, safi), (why) =>
    mpError(`MP_REACH_NLRI NLRI: ${why}`, b.slice(as, ve), T),
  );
  return linkLocalNextHop === undefined
    ? { kind: 'prefixes', afi, safi, nextHop, nlri }
    : { kind: 'prefixes', afi, safi, nextHop, linkLocalNextHop, nlri };
}

function decodeMpUnreach(
  b: Uint8Array,
  as: number,
  vs: number,
  ve: number,
  ctx: CodecContext,
): MpUnreachNlri {
  const T = AttrType.MpUnreachNlri;
  if (ve - vs < 3) throw mpError(`MP_UNREACH_NLRI of length ${ve - vs} is too short`, b.slice(as, ve), T);
  const afi = readU16(b, vs);
  const safi = b[vs + 2] as number;
  if (!isPrefixFamily(afi, safi)) return { kind: 'opaque', afi, safi, withdrawnRoutes: b.slice(vs + 3, ve) };
  const withdrawnRoutes = decodePrefixes(b, vs + 3, ve, afi, hasAddPath(ctx, afi, safi), (why) =>
    mpError(`MP_UNREACH_NLRI withdrawn routes: ${why}`, b.slice(as, ve), T),
  );
  return { kind: 'prefixes', afi, safi, withdrawnRoutes };
}

/** Empty attribute set, for withdrawals. */
export const NO_ATTRIBUTES: PathAttributes = Object.freeze({});
