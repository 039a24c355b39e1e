// Encoding path attributes in one canonical form: MP_REACH_NLRI / MP_UNREACH_NLRI
// first (RFC 7606 §5.1), then ascending type code, the Extended Length bit only where
// a value exceeds 255 bytes. Equal attribute sets therefore encode to equal bytes.

import { Writer } from './buffer.js';
import type { CodecContext } from './context.js';
import { hasAddPath } from './context.js';
import type {
  Aggregator,
  AsPathSegment,
  MpReachNlri,
  MpUnreachNlri,
  PathAttributes,
  UnknownAttribute,
} from './attributes.js';
import { AttrFlag, AttrType, SEGMENT_TYPES } from './attributes.js';
import { encodePrefixes } from './prefix.js';
import { AS_TRANS, ipv4OrThrow, ipv6OrThrow } from './types.js';

const WK = AttrFlag.Transitive;
const OPT = AttrFlag.Optional;
const OPT_T = AttrFlag.Optional | AttrFlag.Transitive;

/** Writes one attribute header for a value of `len` bytes. */
export function writeAttrHeader(w: Writer, flags: number, type: number, len: number): void {
  if (len > 0xffff) throw new RangeError(`attribute ${type} value of ${len} bytes exceeds 65535`);
  if (len > 255)
    w.u8((flags | AttrFlag.ExtendedLength) & 0xf0)
      .u8(type)
      .u16(len);
  else
    w.u8(flags & ~AttrFlag.ExtendedLength & 0xf0)
      .u8(type)
      .u8(len);
}

/** Writes one attribute whose value length is known up front, without a scratch buffer. */
function attr(w: Writer, flags: number, type: number, len: number, value: (v: Writer) => void): void {
  writeAttrHeader(w, flags, type, len);
  const start = w.pos;
  value(w);
  if (w.pos - start !== len)
    throw new Error(`attribute ${type}: wrote ${w.pos - start} bytes, announced ${len}`);
}

function asPathLength(path: readonly AsPathSegment[], asnSize: 2 | 4): number {
  let n = 0;
  for (const seg of path) n += 2 * Math.ceil(seg.asns.length / 255) + asnSize * seg.asns.length;
  return n;
}

function u32Attr(w: Writer, flags: number, type: number, value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff)
    throw new RangeError(`${what} out of range: ${value}`);
  w.u8(flags).u8(type).u8(4).u32(value);
}

function writeAsPath(v: Writer, path: readonly AsPathSegment[], asnSize: 2 | 4, substitute: boolean): void {
  for (const seg of path) {
    if (seg.asns.length === 0) throw new RangeError('AS_PATH segment with no ASNs');
    const typeValue = SEGMENT_TYPES.indexOf(seg.type) + 1;
    // Segments hold at most 255 ASNs (one-octet count); longer ones are split.
    for (let s = 0; s < seg.asns.length; s += 255) {
      const part = seg.asns.slice(s, s + 255);
      v.u8(typeValue).u8(part.length);
      for (const a of part) {
        if (asnSize === 4) v.u32(a);
        else v.u16(substitute && a > 0xffff ? AS_TRANS : a);
      }
    }
  }
}

function needsAs4(path: readonly AsPathSegment[] | undefined): boolean {
  return path?.some((s) => s.asns.some((a) => a > 0xffff)) ?? false;
}

function writeAggregator(w: Writer, type: number, agg: Aggregator, asnSize: 2 | 4): void {
  w.u8(OPT_T)
    .u8(type)
    .u8(asnSize + 4);
  if (asnSize === 4) w.u32(agg.asn);
  else w.u16(agg.asn > 0xffff ? AS_TRANS : agg.asn);
  w.u32(ipv4OrThrow(agg.address, 'aggregator.address'));
}

export function writeMpReach(w: Writer, m: MpReachNlri, ctx: CodecContext, from = 0, to = -1): void {
  const v = new Writer(64);
  v.u16(m.afi).u8(m.safi);
  if (m.kind === 'opaque') {
    v.u8(m.nextHop.length).bytes(m.nextHop).u8(0).bytes(m.nlri);
  } else {
    writeNextHop(v, m.afi, m.nextHop, m.linkLocalNextHop);
    v.u8(0); // Reserved (RFC 4760 §3)
    const end = to < 0 ? m.nlri.length : to;
    const addPath = hasAddPath(ctx, m.afi, m.safi);
    const room = v.reserve(m.nlri.slice(from, end).encodedLength(addPath));
    encodePrefixes(m.nlri, from, end, addPath, room.buf, room.off);
  }
  const bytes = v.finish();
  writeAttrHeader(w, OPT, AttrType.MpReachNlri, bytes.length);
  w.bytes(bytes);
}

/** Length octet and next hop address(es) of MP_REACH_NLRI. */
export function writeNextHop(v: Writer, afi: number, nextHop: string, linkLocal: string | undefined): void {
  if (afi === 1 && !nextHop.includes(':')) {
    if (linkLocal !== undefined) throw new TypeError('an IPv4 next hop has no link-local companion');
    v.u8(4).u32(ipv4OrThrow(nextHop, 'mpReachNlri.nextHop'));
    return;
  }
  const g = ipv6OrThrow(nextHop, 'mpReachNlri.nextHop');
  if (linkLocal === undefined) {
    v.u8(16).bytes(g);
  } else {
    v.u8(32).bytes(g).bytes(ipv6OrThrow(linkLocal, 'mpReachNlri.linkLocalNextHop'));
  }
}

export function writeMpUnreach(w: Writer, m: MpUnreachNlri, ctx: CodecContext): void {
  const v = new Writer(64);
  v.u16(m.afi).u8(m.safi);
  if (m.kind === 'opaque') {
    v.bytes(m.withdrawnRoutes);
  } else {
    const addPath = hasAddPath(ctx, m.afi, m.safi);
    const room = v.reserve(m.withdrawnRoutes.encodedLength(addPath));
    encodePrefixes(m.withdrawnRoutes, 0, m.withdrawnRoutes.length, addPath, room.buf, room.off);
  }
  const bytes = v.finish();
  writeAttrHeader(w, OPT, AttrType.MpUnreachNlri, bytes.length);
  w.bytes(bytes);
}

/**
 * Encodes every attribute except MP_REACH_NLRI / MP_UNREACH_NLRI (which the UPDATE
 * builder writes first, since it may split their NLRI over several messages).
 */
export function encodeAttributes(
  a: PathAttributes,
  ctx: CodecContext,
  w: Writer = new Writer(128),
): Uint8Array {
  const unknown = a.unknown === undefined ? NONE : [...a.unknown].sort((x, y) => x.typeCode - y.typeCode);
  let u = 0;
  const unknownBelow = (code: number) => {
    for (; u < unknown.length && (unknown[u]?.typeCode ?? 256) < code; u++) {
      const x = unknown[u]!;
      if (EXPECTED_CODES.has(x.typeCode))
        throw new TypeError(`unknown attribute ${x.typeCode} is a known type`);
      writeAttrHeader(w, x.flags, x.typeCode, x.value.length);
      w.bytes(x.value);
    }
  };
  const asnSize = ctx.as4 ? 4 : 2;
  // RFC 6793 §4.2.2: on a 2-octet session, 4-octet ASNs become AS_TRANS and the real
  // path goes in AS4_PATH (without confederation segments, §5).
  const sendAs4Path = !ctx.as4 && needsAs4(a.asPath);
  const sendAs4Aggregator = !ctx.as4 && a.aggregator !== undefined && a.aggregator.asn > 0xffff;

  unknownBelow(AttrType.Origin);
  if (a.origin !== undefined) {
    const o = ['igp', 'egp', 'incomplete'].indexOf(a.origin);
    if (o < 0) throw new TypeError(`origin: ${String(a.origin)}`);
    w.u8(WK).u8(AttrType.Origin).u8(1).u8(o);
  }
  unknownBelow(AttrType.AsPath);
  if (a.asPath !== undefined) {
    const path = a.asPath;
    attr(w, WK, AttrType.AsPath, asPathLength(path, asnSize), (v) => writeAsPath(v, path, asnSize, true));
  }
  unknownBelow(AttrType.NextHop);
  if (a.nextHop !== undefined) w.u8(WK).u8(AttrType.NextHop).u8(4).u32(ipv4OrThrow(a.nextHop, 'nextHop'));
  unknownBelow(AttrType.MultiExitDisc);
  if (a.multiExitDisc !== undefined)
    u32Attr(w, OPT, AttrType.MultiExitDisc, a.multiExitDisc, 'multiExitDisc');
  unknownBelow(AttrType.LocalPref);
  if (a.localPref !== undefined) u32Attr(w, WK, AttrType.LocalPref, a.localPref, 'localPref');
  unknownBelow(AttrType.AtomicAggregate);
  if (a.atomicAggregate === true) w.u8(WK).u8(AttrType.AtomicAggregate).u8(0);
  unknownBelow(AttrType.Aggregator);
  if (a.aggregator !== undefined) writeAggregator(w, AttrType.Aggregator, a.aggregator, asnSize);
  unknownBelow(AttrType.Communities);
  if (a.communities !== undefined && a.communities.length > 0) {
    const cs = a.communities;
    attr(w, OPT_T, AttrType.Communities, 4 * cs.length, (v) => {
      for (const c of cs) {
        if (!Number.isInteger(c) || c < 0 || c > 0xffffffff)
          throw new RangeError(`community out of range: ${c}`);
        v.u32(c);
      }
    });
  }
  unknownBelow(AttrType.OriginatorId);
  if (a.originatorId !== undefined) {
    w.u8(OPT).u8(AttrType.OriginatorId).u8(4).u32(ipv4OrThrow(a.originatorId, 'originatorId'));
  }
  unknownBelow(AttrType.ClusterList);
  if (a.clusterList !== undefined && a.clusterList.length > 0) {
    const ids = a.clusterList;
    attr(w, OPT, AttrType.ClusterList, 4 * ids.length, (v) => {
      for (const id of ids) v.u32(ipv4OrThrow(id, 'clusterList'));
    });
  }
  unknownBelow(AttrType.ExtendedCommunities);
  if (a.extendedCommunities !== undefined && a.extendedCommunities.length > 0) {
    const xs = a.extendedCommunities;
    attr(w, OPT_T, AttrType.ExtendedCommunities, 8 * xs.length, (v) => {
      for (const c of xs) {
        if (c < 0n || c > 0xffffffffffffffffn) throw new RangeError(`extended community out of range: ${c}`);
        v.u32(Number(c >> 32n)).u32(Number(c & 0xffffffffn));
      }
    });
  }
  unknownBelow(AttrType.As4Path);
  if (sendAs4Path) {
    const noConfed = a.asPath!.filter((s) => s.type === 'sequence' || s.type === 'set');
    attr(w, OPT_T, AttrType.As4Path, asPathLength(noConfed, 4), (v) => writeAsPath(v, noConfed, 4, false));
  }
  unknownBelow(AttrType.As4Aggregator);
  if (sendAs4Aggregator) writeAggregator(w, AttrType.As4Aggregator, a.aggregator, 4);
  unknownBelow(AttrType.LargeCommunities);
  if (a.largeCommunities !== undefined && a.largeCommunities.length > 0) {
    const ls = a.largeCommunities;
    attr(w, OPT_T, AttrType.LargeCommunities, 12 * ls.length, (v) => {
      for (const c of ls) v.u32(c.globalAdministrator).u32(c.localData1).u32(c.localData2);
    });
  }
  unknownBelow(256);
  return w.finish();
}

const EXPECTED_CODES = new Set<number>(Object.values(AttrType));
const NONE: readonly UnknownAttribute[] = [];
