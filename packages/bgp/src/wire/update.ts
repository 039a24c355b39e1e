// UPDATE (RFC 4271 §4.3): decoding with RFC 7606 error handling, encoding of one
// message, and packing of many prefixes into as few full messages as possible.

import { Writer } from './buffer.js';
import type { CodecContext } from './context.js';
import { hasAddPath, maxMessageLength } from './context.js';
import type { BgpNotification, ErrorAction } from './errors.js';
import { UpdateSubcode, strongerAction, updateError } from './errors.js';
import type { MpReachNlri, MpUnreachNlri, PathAttributes } from './attributes.js';
import { AttrFlag, decodeAttributes } from './attributes.js';
import {
  encodeAttributes,
  writeAttrHeader,
  writeMpReach,
  writeMpUnreach,
  writeNextHop,
} from './attributes-encode.js';
import { HEADER_LENGTH, MessageType } from './framer.js';
import { patchLength, putHeader, writeHeader } from './header.js';
import type { PrefixAfi } from './prefix.js';
import { PrefixList, decodePrefixes, encodePrefixes, prefixWireLength } from './prefix.js';
import { Afi, Safi, readU16 } from './types.js';

export interface UpdateMessage {
  readonly type: 'update';
  /** IPv4 unicast prefixes withdrawn in the Withdrawn Routes field. */
  readonly withdrawnRoutes: PrefixList;
  readonly pathAttributes: PathAttributes;
  /** IPv4 unicast prefixes announced in the NLRI field. */
  readonly nlri: PrefixList;
  /**
   * Present when the message had errors RFC 7606 lets the session survive. With
   * `treat-as-withdraw`, every prefix it announces must be handled as withdrawn
   * (see `withdrawnBy`); with `attribute-discard`, the named attributes were dropped.
   */
  readonly malformed?: {
    readonly action: Exclude<ErrorAction, 'session-reset'>;
    readonly errors: readonly BgpNotification[];
  };
}

const v4Unicast = (ctx: CodecContext) => hasAddPath(ctx, Afi.Ipv4, Safi.Unicast);

/** Decodes an UPDATE body (after the header). Throws BgpNotification only for a session reset. */
export function decodeUpdate(body: Uint8Array, ctx: CodecContext): UpdateMessage {
  const r = decodeUpdateParts(body, ctx, true);
  const base = {
    type: 'update',
    withdrawnRoutes: r.withdrawnRoutes,
    pathAttributes: r.attributes,
    nlri: r.nlri,
  } as const;
  return r.malformed === undefined ? base : { ...base, malformed: r.malformed };
}

/**
 * What a RIB needs from an UPDATE without building attribute objects: every check of
 * decodeUpdate is made (the same errors, the same RFC 7606 action), prefixes are decoded,
 * and the path attribute field is handed over as bytes to intern by. `decodePathAttributes`
 * builds the objects for a set not seen before.
 */
export interface UpdateScan {
  readonly withdrawnRoutes: PrefixList;
  readonly nlri: PrefixList;
  readonly mpReachNlri?: MpReachNlri;
  readonly mpUnreachNlri?: MpUnreachNlri;
  /** The Path Attributes field as received: a view into the message. */
  readonly attributeBytes: Uint8Array;
  readonly malformed?: UpdateMessage['malformed'];
}

export function scanUpdate(body: Uint8Array, ctx: CodecContext): UpdateScan {
  const r = decodeUpdateParts(body, ctx, false);
  const scan: { -readonly [K in keyof UpdateScan]: UpdateScan[K] } = {
    withdrawnRoutes: r.withdrawnRoutes,
    nlri: r.nlri,
    attributeBytes: r.attributeBytes,
  };
  if (r.attributes.mpReachNlri !== undefined) scan.mpReachNlri = r.attributes.mpReachNlri;
  if (r.attributes.mpUnreachNlri !== undefined) scan.mpUnreachNlri = r.attributes.mpUnreachNlri;
  if (r.malformed !== undefined) scan.malformed = r.malformed;
  return scan;
}

/** Builds the attribute objects of a scanned UPDATE's `attributeBytes`. */
export function decodePathAttributes(attributeBytes: Uint8Array, ctx: CodecContext): PathAttributes {
  return decodeAttributes(attributeBytes, 0, attributeBytes.length, ctx, false, true).attributes;
}

function decodeUpdateParts(body: Uint8Array, ctx: CodecContext, build: boolean) {
  const n = body.length;
  const wrLen = readU16(body, 0);
  // RFC 4271 §6.3: "If the Withdrawn Routes Length or Total Attribute Length is too large
  // (i.e., if Withdrawn Routes Length + Total Attribute Length + 23 exceeds the message
  // Length), then the Error Subcode MUST be set to Malformed Attribute List." RFC 7606 §4
  // keeps this a session reset, since the NLRI cannot be located.
  if (4 + wrLen > n) {
    throw updateError(
      UpdateSubcode.MalformedAttributeList,
      `withdrawn routes length ${wrLen} exceeds the message`,
      'session-reset',
    );
  }
  const attrLen = readU16(body, 2 + wrLen);
  const attrStart = 4 + wrLen;
  const nlriStart = attrStart + attrLen;
  if (nlriStart > n) {
    throw updateError(
      UpdateSubcode.MalformedAttributeList,
      `withdrawn routes length ${wrLen} + total attribute length ${attrLen} exceed the message`,
      'session-reset',
    );
  }
  const addPath = v4Unicast(ctx);
  // RFC 7606 §5.3: a syntactically wrong prefix field means session reset;
  // RFC 4271 §6.3 names it Invalid Network Field.
  const withdrawnRoutes = decodePrefixes(body, 2, 2 + wrLen, Afi.Ipv4, addPath, badWithdrawn);
  const nlri = decodePrefixes(body, nlriStart, n, Afi.Ipv4, addPath, badNlri);
  const { attributes, errors } = decodeAttributes(body, attrStart, nlriStart, ctx, nlri.length > 0, build);
  let malformed: UpdateMessage['malformed'];
  if (errors.length > 0) {
    let action: ErrorAction = 'attribute-discard';
    for (const e of errors) action = strongerAction(action, e.action);
    malformed = { action: action as Exclude<ErrorAction, 'session-reset'>, errors };
  }
  return {
    withdrawnRoutes,
    nlri,
    attributes,
    malformed,
    attributeBytes: body.subarray(attrStart, nlriStart),
  };
}

const badWithdrawn = (why: string) =>
  updateError(UpdateSubcode.InvalidNetworkField, `withdrawn routes: ${why}`, 'session-reset');
const badNlri = (why: string) =>
  updateError(UpdateSubcode.InvalidNetworkField, `NLRI: ${why}`, 'session-reset');

/**
 * Every prefix the UPDATE takes away: its Withdrawn Routes and MP_UNREACH_NLRI, and,
 * when RFC 7606 says treat-as-withdraw, its NLRI and MP_REACH_NLRI too (RFC 7606 §2).
 */
export function withdrawnBy(u: UpdateMessage): PrefixList[] {
  const out: PrefixList[] = [];
  if (u.withdrawnRoutes.length > 0) out.push(u.withdrawnRoutes);
  const un = u.pathAttributes.mpUnreachNlri;
  if (un?.kind === 'prefixes' && un.withdrawnRoutes.length > 0) out.push(un.withdrawnRoutes);
  if (u.malformed?.action === 'treat-as-withdraw') {
    if (u.nlri.length > 0) out.push(u.nlri);
    const re = u.pathAttributes.mpReachNlri;
    if (re?.kind === 'prefixes' && re.nlri.length > 0) out.push(re.nlri);
  }
  return out;
}

/** RFC 4724 §2: the End-of-RIB marker's family, or undefined if this is not one. */
export function endOfRib(u: UpdateMessage): { afi: number; safi: number } | undefined {
  const a = u.pathAttributes;
  if (u.withdrawnRoutes.length > 0 || u.nlri.length > 0 || u.malformed !== undefined) return undefined;
  const keys = Object.keys(a);
  if (keys.length === 0) return { afi: Afi.Ipv4, safi: Safi.Unicast };
  const un = a.mpUnreachNlri;
  if (keys.length === 1 && un !== undefined && un.withdrawnRoutes.length === 0) {
    return { afi: un.afi, safi: un.safi };
  }
  return undefined;
}

export function makeEndOfRib(afi: number, safi: number): UpdateMessage {
  const empty = PrefixList.empty(Afi.Ipv4);
  if (afi === Afi.Ipv4 && safi === Safi.Unicast) {
    return { type: 'update', withdrawnRoutes: empty, pathAttributes: {}, nlri: empty };
  }
  const un: MpUnreachNlri =
    afi === Afi.Ipv4 || afi === Afi.Ipv6
      ? { kind: 'prefixes', afi, safi, withdrawnRoutes: PrefixList.empty(afi) }
      : { kind: 'opaque', afi, safi, withdrawnRoutes: new Uint8Array(0) };
  return { type: 'update', withdrawnRoutes: empty, pathAttributes: { mpUnreachNlri: un }, nlri: empty };
}

/**
 * Attributes as they may be passed on to other peers (RFC 4271 §5 and §9.1.3): unknown
 * optional transitive attributes keep going with the Partial bit set; unknown optional
 * non-transitive ones are dropped.
 */
export function forReadvertisement(a: PathAttributes): PathAttributes {
  if (a.unknown === undefined) return a;
  const kept = a.unknown
    .filter((x) => (x.flags & AttrFlag.Transitive) !== 0)
    .map((x) => ({ ...x, flags: x.flags | AttrFlag.Partial }));
  const { unknown: _drop, ...rest } = a;
  return kept.length > 0 ? { ...rest, unknown: kept } : rest;
}

/** Encodes one UPDATE; throws RangeError if it does not fit (use the pack functions). */
export function encodeUpdate(u: UpdateMessage, ctx: CodecContext): Uint8Array {
  const w = new Writer(256);
  writeHeader(w, MessageType.Update);
  const addPath = v4Unicast(ctx);
  const wr = u.withdrawnRoutes;
  const wrLen = wr.encodedLength(addPath);
  w.u16(wrLen);
  const r1 = w.reserve(wrLen);
  encodePrefixes(wr, 0, wr.length, addPath, r1.buf, r1.off);
  const attrLenAt = w.pos;
  w.u16(0);
  const a = u.pathAttributes;
  if (a.mpReachNlri !== undefined) writeMpReach(w, a.mpReachNlri, ctx);
  if (a.mpUnreachNlri !== undefined) writeMpUnreach(w, a.mpUnreachNlri, ctx);
  w.bytes(encodeAttributes(a, ctx));
  w.patchU16(attrLenAt, w.pos - attrLenAt - 2);
  const nl = u.nlri.encodedLength(addPath);
  const r2 = w.reserve(nl);
  encodePrefixes(u.nlri, 0, u.nlri.length, addPath, r2.buf, r2.off);
  return patchLength(w, maxMessageLength(ctx));
}

/** Prefixes from `start` whose wire bytes fit in `room`; returns the end index. */
function fitPrefixes(list: PrefixList, start: number, room: number, addPath: boolean): number {
  let used = 0;
  let i = start;
  const n = list.length;
  if (!addPath && list.afi === 1) {
    const lens = list.lens;
    for (; i < n; i++) {
      const sz = 1 + (((lens[i] as number) + 7) >> 3);
      if (used + sz > room) break;
      used += sz;
    }
    return i;
  }
  for (; i < n; i++) {
    const sz = prefixWireLength(list, i, addPath);
    if (used + sz > room) break;
    used += sz;
  }
  return i;
}

export interface Announcement {
  /** Attributes shared by every prefix; no mpReachNlri / mpUnreachNlri here. */
  readonly attributes: PathAttributes;
  readonly prefixes: PrefixList;
  /** SAFI of the prefixes (default unicast). */
  readonly safi?: number;
  /**
   * For IPv6 prefixes, or IPv4 ones over an IPv6 next hop (RFC 8950), the next hop
   * written in MP_REACH_NLRI. IPv4 prefixes with `attributes.nextHop` use the NLRI field.
   */
  readonly mpNextHop?: string;
  readonly mpLinkLocalNextHop?: string;
}

/**
 * Packs the prefixes of one attribute set into as few UPDATEs as fit the session's
 * message size, each carrying the attributes once.
 */
export function packAnnouncements(ann: Announcement, ctx: CodecContext): Uint8Array[] {
  const { prefixes } = ann;
  const safi = ann.safi ?? Safi.Unicast;
  const max = maxMessageLength(ctx);
  const addPath = hasAddPath(ctx, prefixes.afi, safi);
  const attrs = encodeAttributes(ann.attributes, ctx);
  const out: Uint8Array[] = [];
  const useNlriField = prefixes.afi === Afi.Ipv4 && safi === Safi.Unicast && ann.mpNextHop === undefined;
  if (useNlriField) {
    if (ann.attributes.nextHop === undefined) throw new TypeError('IPv4 announcement without nextHop');
    const fixed = HEADER_LENGTH + 4 + attrs.length;
    const room = max - fixed;
    for (let i = 0; i < prefixes.length;) {
      const j = fitPrefixes(prefixes, i, room, addPath);
      if (j === i) throw new RangeError('attributes leave no room for a prefix');
      const nlriLen = prefixes.slice(i, j).encodedLength(addPath);
      const msg = new Uint8Array(fixed + nlriLen);
      putHeader(msg, 0, MessageType.Update, msg.length - HEADER_LENGTH);
      // withdrawn length 0 at 19..20
      msg[21] = attrs.length >>> 8;
      msg[22] = attrs.length;
      msg.set(attrs, 23);
      encodePrefixes(prefixes, i, j, addPath, msg, fixed);
      out.push(msg);
      i = j;
    }
    return out;
  }
  if (ann.mpNextHop === undefined) throw new TypeError('MP announcement without mpNextHop');
  const nh = new Writer(40);
  writeNextHop(nh, prefixes.afi, ann.mpNextHop, ann.mpLinkLocalNextHop);
  const nhBytes = nh.finish();
  const mpFixed = 3 + nhBytes.length + 1; // AFI, SAFI, next hop length+address, Reserved
  // Assume a 4-byte (extended length) attribute header when sizing; a short value gets 3.
  const fixed = HEADER_LENGTH + 4 + 4 + mpFixed + attrs.length;
  const room = max - fixed;
  for (let i = 0; i < prefixes.length;) {
    const j = fitPrefixes(prefixes, i, room, addPath);
    if (j === i) throw new RangeError('attributes leave no room for a prefix');
    const nlriLen = prefixes.slice(i, j).encodedLength(addPath);
    const valueLen = mpFixed + nlriLen;
    const hdr = valueLen > 255 ? 4 : 3;
    const attrTotal = hdr + valueLen + attrs.length;
    const msg = new Uint8Array(HEADER_LENGTH + 4 + attrTotal);
    putHeader(msg, 0, MessageType.Update, msg.length - HEADER_LENGTH);
    msg[21] = attrTotal >>> 8;
    msg[22] = attrTotal;
    const w = new Writer(8);
    writeAttrHeader(w, AttrFlag.Optional, 14, valueLen);
    const h = w.finish();
    let o = 23;
    msg.set(h, o);
    o += h.length;
    msg[o] = prefixes.afi >>> 8;
    msg[o + 1] = prefixes.afi;
    msg[o + 2] = safi;
    msg.set(nhBytes, o + 3);
    o += 3 + nhBytes.length;
    msg[o++] = 0; // Reserved
    o = encodePrefixes(prefixes, i, j, addPath, msg, o);
    msg.set(attrs, o);
    out.push(msg);
    i = j;
  }
  return out;
}

/** Packs withdrawals: the Withdrawn Routes field for IPv4 unicast, MP_UNREACH_NLRI otherwise. */
export function packWithdrawals(
  prefixes: PrefixList,
  ctx: CodecContext,
  safi: number = Safi.Unicast,
): Uint8Array[] {
  const max = maxMessageLength(ctx);
  const addPath = hasAddPath(ctx, prefixes.afi, safi);
  const out: Uint8Array[] = [];
  if (prefixes.afi === Afi.Ipv4 && safi === Safi.Unicast) {
    const room = max - HEADER_LENGTH - 4;
    for (let i = 0; i < prefixes.length;) {
      const j = fitPrefixes(prefixes, i, room, addPath);
      const len = prefixes.slice(i, j).encodedLength(addPath);
      const msg = new Uint8Array(HEADER_LENGTH + 4 + len);
      putHeader(msg, 0, MessageType.Update, msg.length - HEADER_LENGTH);
      msg[19] = len >>> 8;
      msg[20] = len;
      encodePrefixes(prefixes, i, j, addPath, msg, 21);
      out.push(msg);
      i = j;
    }
    return out;
  }
  const room = max - HEADER_LENGTH - 4 - 4 - 3;
  for (let i = 0; i < prefixes.length;) {
    const j = fitPrefixes(prefixes, i, room, addPath);
    const chunk = prefixes.slice(i, j);
    const u: UpdateMessage = {
      type: 'update',
      withdrawnRoutes: PrefixList.empty(Afi.Ipv4),
      pathAttributes: {
        mpUnreachNlri: { kind: 'prefixes', afi: prefixes.afi, safi, withdrawnRoutes: chunk },
      },
      nlri: PrefixList.empty(Afi.Ipv4),
    };
    out.push(encodeUpdate(u, ctx));
    i = j;
  }
  return out;
}

export type { MpReachNlri, MpUnreachNlri, PrefixAfi };
