// JSON forms of messages, for `bgp-ts decode` / `bgp-ts encode`, logs and tests.
//
// Names follow the RFCs in camelCase; prefixes are "10.0.0.0/24" (objects with a
// pathId under ADD-PATH), ASNs numbers, communities "65000:100", large communities
// "65000:1:2", extended communities "rt:65000:100" / "soo:192.0.2.1:7" /
// "rt:4200000000L:5" (4-octet AS, the L as in Junos) or "0x" and 16 hex digits.
// fromJson() reverses toJson() and names the field at fault in every error.

import type {
  Aggregator,
  AsPathSegment,
  LargeCommunity,
  MpReachNlri,
  MpUnreachNlri,
  Origin,
  PathAttributes,
  UnknownAttribute,
} from './attributes.js';
import { SEGMENT_TYPES } from './attributes.js';
import { errorCodeName, errorSubcodeName } from './errors.js';
import type { BgpMessage } from './message.js';
import { KEEPALIVE } from './message.js';
import type { NotificationMessage } from './notification.js';
import { hardResetCause, shutdownCommunication } from './notification.js';
import type { AddPathMode, Capability, OpenMessage } from './open.js';
import type { PrefixAfi } from './prefix.js';
import { PrefixList } from './prefix.js';
import type { Asn } from './types.js';
import { formatIpv4, fromHex, parseIpv4, toHex } from './types.js';
import type { UpdateMessage } from './update.js';
import { endOfRib } from './update.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

// ---------- communities ----------

export function formatCommunity(c: number): string {
  return `${c >>> 16}:${c & 0xffff}`;
}

/** RFC 1997 and IANA well-known communities, accepted by name on input. */
const WELL_KNOWN_COMMUNITIES: ReadonlyMap<string, number> = new Map([
  ['graceful-shutdown', 0xffff0000],
  ['blackhole', 0xffff029a],
  ['llgr-stale', 0xffff0006],
  ['no-llgr', 0xffff0007],
  ['no-export', 0xffffff01],
  ['no-advertise', 0xffffff02],
  ['no-export-subconfed', 0xffffff03],
  ['no-peer', 0xffffff04],
]);

export function parseCommunity(s: string): number | undefined {
  const named = WELL_KNOWN_COMMUNITIES.get(s.toLowerCase());
  if (named !== undefined) return named;
  const m = /^(\d{1,5}):(\d{1,5})$/.exec(s);
  if (m === null) return undefined;
  const hi = Number(m[1]);
  const lo = Number(m[2]);
  if (hi > 0xffff || lo > 0xffff) return undefined;
  return ((hi << 16) | lo) >>> 0;
}

export function formatLargeCommunity(c: LargeCommunity): string {
  return `${c.globalAdministrator}:${c.localData1}:${c.localData2}`;
}

export function parseLargeCommunity(s: string): LargeCommunity | undefined {
  const m = /^(\d{1,10}):(\d{1,10}):(\d{1,10})$/.exec(s);
  if (m === null) return undefined;
  const [g, l1, l2] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (g > 0xffffffff || l1 > 0xffffffff || l2 > 0xffffffff) return undefined;
  return { globalAdministrator: g, localData1: l1, localData2: l2 };
}

// RFC 4360 §4 types (transitive): 0x00 two-octet AS, 0x01 IPv4 address; RFC 5668: 0x02
// four-octet AS. Subtypes 0x02 route target, 0x03 route origin.
const EC_SUBTYPES = new Map([
  [2, 'rt'],
  [3, 'soo'],
]);

export function formatExtendedCommunity(c: bigint): string {
  const hi = Number(c >> 32n);
  const lo = Number(c & 0xffffffffn);
  const type = hi >>> 24;
  const name = EC_SUBTYPES.get((hi >>> 16) & 0xff);
  if (name !== undefined) {
    if (type === 0x00) return `${name}:${hi & 0xffff}:${lo}`;
    if (type === 0x01)
      return `${name}:${formatIpv4((((hi & 0xffff) << 16) | (lo >>> 16)) >>> 0)}:${lo & 0xffff}`;
    if (type === 0x02) return `${name}:${(((hi & 0xffff) << 16) | (lo >>> 16)) >>> 0}L:${lo & 0xffff}`;
  }
  return `0x${c.toString(16).padStart(16, '0')}`;
}

export function parseExtendedCommunity(s: string): bigint | undefined {
  if (/^0x[0-9a-fA-F]{1,16}$/.test(s)) return BigInt(s);
  const m = /^(rt|soo):([^:]+):(\d{1,10})$/.exec(s);
  if (m === null) return undefined;
  const subtype = m[1] === 'rt' ? 2 : 3;
  const admin = m[2] as string;
  const local = Number(m[3]);
  const ip = parseIpv4(admin);
  let type: number;
  let value: bigint; // the 6 bytes after type and subtype
  if (ip !== undefined) {
    if (local > 0xffff) return undefined;
    type = 0x01;
    value = (BigInt(ip) << 16n) | BigInt(local);
  } else if (/^\d{1,10}L$/.test(admin)) {
    const as = Number(admin.slice(0, -1));
    if (as > 0xffffffff || local > 0xffff) return undefined;
    type = 0x02;
    value = (BigInt(as) << 16n) | BigInt(local);
  } else if (/^\d{1,5}$/.test(admin)) {
    const as = Number(admin);
    if (as > 0xffff || local > 0xffffffff) return undefined;
    type = 0x00;
    value = (BigInt(as) << 32n) | BigInt(local);
  } else {
    return undefined;
  }
  return (BigInt(type) << 56n) | (BigInt(subtype) << 48n) | value;
}

// ---------- to JSON ----------

function prefixesToJson(p: PrefixList): Json[] {
  const out: Json[] = [];
  for (let i = 0; i < p.length; i++) {
    out.push(p.pathIds === null ? p.format(i) : { prefix: p.format(i), pathId: p.pathIds[i] as number });
  }
  return out;
}

function capabilityToJson(c: Capability): JsonObject {
  switch (c.kind) {
    case 'unknown':
      return { kind: c.kind, code: c.code, value: toHex(c.value) };
    case 'gracefulRestart':
      return { ...c, families: c.families.map((f) => ({ ...f })) };
    case 'addPath':
      return { ...c, families: c.families.map((f) => ({ ...f })) };
    case 'extendedNextHop':
      return { ...c, families: c.families.map((f) => ({ ...f })) };
    default:
      return { ...c };
  }
}

function mpReachToJson(m: MpReachNlri): JsonObject {
  if (m.kind === 'opaque')
    return { afi: m.afi, safi: m.safi, nextHopHex: toHex(m.nextHop), nlriHex: toHex(m.nlri) };
  const o: JsonObject = { afi: m.afi, safi: m.safi, nextHop: m.nextHop };
  if (m.linkLocalNextHop !== undefined) o['linkLocalNextHop'] = m.linkLocalNextHop;
  o['nlri'] = prefixesToJson(m.nlri);
  return o;
}

function mpUnreachToJson(m: MpUnreachNlri): JsonObject {
  if (m.kind === 'opaque') return { afi: m.afi, safi: m.safi, withdrawnRoutesHex: toHex(m.withdrawnRoutes) };
  return { afi: m.afi, safi: m.safi, withdrawnRoutes: prefixesToJson(m.withdrawnRoutes) };
}

export function attributesToJson(a: PathAttributes): JsonObject {
  const o: JsonObject = {};
  if (a.mpReachNlri !== undefined) o['mpReachNlri'] = mpReachToJson(a.mpReachNlri);
  if (a.mpUnreachNlri !== undefined) o['mpUnreachNlri'] = mpUnreachToJson(a.mpUnreachNlri);
  if (a.origin !== undefined) o['origin'] = a.origin;
  if (a.asPath !== undefined) o['asPath'] = a.asPath.map((s) => ({ type: s.type, asns: [...s.asns] }));
  if (a.nextHop !== undefined) o['nextHop'] = a.nextHop;
  if (a.multiExitDisc !== undefined) o['multiExitDisc'] = a.multiExitDisc;
  if (a.localPref !== undefined) o['localPref'] = a.localPref;
  if (a.atomicAggregate !== undefined) o['atomicAggregate'] = true;
  if (a.aggregator !== undefined) o['aggregator'] = { asn: a.aggregator.asn, address: a.aggregator.address };
  if (a.communities !== undefined) o['communities'] = a.communities.map(formatCommunity);
  if (a.originatorId !== undefined) o['originatorId'] = a.originatorId;
  if (a.clusterList !== undefined) o['clusterList'] = [...a.clusterList];
  if (a.extendedCommunities !== undefined)
    o['extendedCommunities'] = a.extendedCommunities.map(formatExtendedCommunity);
  if (a.largeCommunities !== undefined) o['largeCommunities'] = a.largeCommunities.map(formatLargeCommunity);
  if (a.unknown !== undefined) {
    o['unknown'] = a.unknown.map((u) => ({ flags: u.flags, typeCode: u.typeCode, value: toHex(u.value) }));
  }
  return o;
}

export function notificationToJson(n: { code: number; subcode: number; data: Uint8Array }): JsonObject {
  return {
    code: n.code,
    subcode: n.subcode,
    codeName: errorCodeName(n.code),
    subcodeName: errorSubcodeName(n.code, n.subcode),
    data: toHex(n.data),
  };
}

export function messageToJson(m: BgpMessage): JsonObject {
  switch (m.type) {
    case 'open':
      return {
        type: 'open',
        version: m.version,
        myAutonomousSystem: m.myAutonomousSystem,
        holdTime: m.holdTime,
        bgpIdentifier: m.bgpIdentifier,
        capabilities: m.capabilities.map(capabilityToJson),
      };
    case 'update': {
      const o: JsonObject = {
        type: 'update',
        withdrawnRoutes: prefixesToJson(m.withdrawnRoutes),
        pathAttributes: attributesToJson(m.pathAttributes),
        nlri: prefixesToJson(m.nlri),
      };
      const eor = endOfRib(m);
      if (eor !== undefined) o['endOfRib'] = { afi: eor.afi, safi: eor.safi };
      if (m.malformed !== undefined) {
        o['malformed'] = {
          action: m.malformed.action,
          errors: m.malformed.errors.map((e) => ({
            ...notificationToJson(e),
            action: e.action,
            reason: e.reason,
          })),
        };
      }
      return o;
    }
    case 'notification': {
      const o: JsonObject = { type: 'notification', ...notificationToJson(m) };
      const text = shutdownCommunication(m);
      if (text !== undefined) o['shutdownCommunication'] = text;
      const cause = hardResetCause(m);
      if (cause !== undefined) o['hardResetCause'] = notificationToJson(cause);
      return o;
    }
    case 'keepalive':
      return { type: 'keepalive' };
    case 'routeRefresh': {
      const o: JsonObject = { type: 'routeRefresh', afi: m.afi, safi: m.safi, subtype: m.subtype };
      if (m.orf !== undefined) o['orf'] = toHex(m.orf);
      return o;
    }
  }
}

// ---------- from JSON ----------

/** A JSON message that does not describe a valid message; `path` names the field. */
export class JsonMessageError extends TypeError {
  override readonly name = 'JsonMessageError';
  constructor(
    readonly path: string,
    problem: string,
  ) {
    super(`${path}: ${problem}`);
  }
}

class In {
  constructor(
    readonly v: unknown,
    readonly path: string,
  ) {}
  fail(problem: string): never {
    throw new JsonMessageError(this.path, problem);
  }
  obj(): Record<string, unknown> {
    if (typeof this.v !== 'object' || this.v === null || Array.isArray(this.v))
      this.fail('expected an object');
    return this.v as Record<string, unknown>;
  }
  field(k: string): In {
    return new In(this.obj()[k], `${this.path}.${k}`);
  }
  has(k: string): boolean {
    return this.obj()[k] !== undefined;
  }
  arr(): In[] {
    if (!Array.isArray(this.v)) this.fail('expected an array');
    return (this.v as unknown[]).map((x, i) => new In(x, `${this.path}[${i}]`));
  }
  str(): string {
    if (typeof this.v !== 'string') this.fail('expected a string');
    return this.v;
  }
  bool(): boolean {
    if (typeof this.v !== 'boolean') this.fail('expected true or false');
    return this.v;
  }
  int(max: number): number {
    if (typeof this.v !== 'number' || !Number.isInteger(this.v) || this.v < 0 || this.v > max) {
      this.fail(`expected an integer in 0..${max}`);
    }
    return this.v;
  }
  hex(): Uint8Array {
    try {
      return fromHex(this.str());
    } catch {
      this.fail('expected a hex string');
    }
  }
  ipv4(): string {
    const s = this.str();
    if (parseIpv4(s) === undefined) this.fail('expected an IPv4 address');
    return s;
  }
  optional<T>(k: string, f: (x: In) => T): T | undefined {
    return this.has(k) ? f(this.field(k)) : undefined;
  }
}

function prefixesFromJson(x: In, afi: PrefixAfi): PrefixList {
  const items = x.arr();
  const withIds = items.some((i) => typeof i.v === 'object' && i.v !== null);
  const texts: string[] = [];
  const ids: number[] = [];
  for (const i of items) {
    const text = withIds ? i.field('prefix').str() : i.str();
    if (withIds) ids.push(i.field('pathId').int(0xffffffff));
    try {
      PrefixList.parse(afi, [text]);
    } catch (e) {
      i.fail((e as Error).message);
    }
    texts.push(text);
  }
  return PrefixList.parse(afi, texts, withIds ? ids : undefined);
}

function prefixAfi(x: In): PrefixAfi | undefined {
  const afi = x.int(0xffff);
  return afi === 1 || afi === 2 ? afi : undefined;
}

function capabilityFromJson(x: In): Capability {
  const kind = x.field('kind').str();
  const fam = (f: In) => ({ afi: f.field('afi').int(0xffff), safi: f.field('safi').int(0xff) });
  switch (kind) {
    case 'multiprotocol':
      return { kind, ...fam(x) };
    case 'routeRefresh':
    case 'enhancedRouteRefresh':
    case 'extendedMessage':
      return { kind };
    case 'fourOctetAs':
      return { kind, asn: x.field('asn').int(0xffffffff) as Asn };
    case 'gracefulRestart':
      return {
        kind,
        restarting: x.field('restarting').bool(),
        notification: x.field('notification').bool(),
        restartTime: x.field('restartTime').int(4095),
        families: x
          .field('families')
          .arr()
          .map((f) => ({ ...fam(f), forwardingPreserved: f.field('forwardingPreserved').bool() })),
      };
    case 'addPath':
      return {
        kind,
        families: x
          .field('families')
          .arr()
          .map((f) => {
            const mode = f.field('mode').str();
            if (mode !== 'receive' && mode !== 'send' && mode !== 'both') {
              f.field('mode').fail('expected receive, send or both');
            }
            return { ...fam(f), mode: mode as AddPathMode };
          }),
      };
    case 'extendedNextHop':
      return {
        kind,
        families: x
          .field('families')
          .arr()
          .map((f) => ({
            afi: f.field('afi').int(0xffff),
            safi: f.field('safi').int(0xffff),
            nextHopAfi: f.field('nextHopAfi').int(0xffff),
          })),
      };
    case 'fqdn':
      return { kind, hostname: x.field('hostname').str(), domainName: x.field('domainName').str() };
    case 'unknown':
      return { kind, code: x.field('code').int(255), value: x.field('value').hex() };
    default:
      return x.field('kind').fail(`unknown capability kind ${JSON.stringify(kind)}`);
  }
}

function asPathFromJson(x: In): AsPathSegment[] {
  return x.arr().map((s) => {
    const type = s.field('type').str() as AsPathSegment['type'];
    if (!SEGMENT_TYPES.includes(type)) s.field('type').fail(`expected one of ${SEGMENT_TYPES.join(', ')}`);
    const asns = s
      .field('asns')
      .arr()
      .map((a) => a.int(0xffffffff) as Asn);
    if (asns.length === 0) s.field('asns').fail('a segment needs at least one ASN');
    return { type, asns };
  });
}

function mpReachFromJson(x: In): MpReachNlri {
  const afi = x.field('afi').int(0xffff);
  const safi = x.field('safi').int(0xff);
  if (x.has('nextHopHex') || x.has('nlriHex')) {
    return {
      kind: 'opaque',
      afi,
      safi,
      nextHop: x.field('nextHopHex').hex(),
      nlri: x.field('nlriHex').hex(),
    };
  }
  const pa = prefixAfi(x.field('afi')) ?? x.field('afi').fail('prefixes need AFI 1 or 2 (else use nlriHex)');
  const nlri = prefixesFromJson(x.field('nlri'), pa);
  const nextHop = x.field('nextHop').str();
  const ll = x.optional('linkLocalNextHop', (v) => v.str());
  return ll === undefined
    ? { kind: 'prefixes', afi: pa, safi, nextHop, nlri }
    : { kind: 'prefixes', afi: pa, safi, nextHop, linkLocalNextHop: ll, nlri };
}

function mpUnreachFromJson(x: In): MpUnreachNlri {
  const afi = x.field('afi').int(0xffff);
  const safi = x.field('safi').int(0xff);
  if (x.has('withdrawnRoutesHex')) {
    return { kind: 'opaque', afi, safi, withdrawnRoutes: x.field('withdrawnRoutesHex').hex() };
  }
  const pa =
    prefixAfi(x.field('afi')) ??
    x.field('afi').fail('prefixes need AFI 1 or 2 (else use withdrawnRoutesHex)');
  return {
    kind: 'prefixes',
    afi: pa,
    safi,
    withdrawnRoutes: prefixesFromJson(x.field('withdrawnRoutes'), pa),
  };
}

const ATTRIBUTE_KEYS = new Set([
  'origin',
  'asPath',
  'nextHop',
  'multiExitDisc',
  'localPref',
  'atomicAggregate',
  'aggregator',
  'communities',
  'originatorId',
  'clusterList',
  'mpReachNlri',
  'mpUnreachNlri',
  'extendedCommunities',
  'largeCommunities',
  'unknown',
]);

export function attributesFromJson(x: In): PathAttributes {
  const o = x.obj();
  for (const k of Object.keys(o)) if (!ATTRIBUTE_KEYS.has(k)) x.field(k).fail('not a path attribute we know');
  const a: { -readonly [K in keyof PathAttributes]: PathAttributes[K] } = {};
  const origin = x.optional('origin', (v) => v.str());
  if (origin !== undefined) {
    if (origin !== 'igp' && origin !== 'egp' && origin !== 'incomplete') {
      x.field('origin').fail('expected igp, egp or incomplete');
    }
    a.origin = origin as Origin;
  }
  const asPath = x.optional('asPath', asPathFromJson);
  if (asPath !== undefined) a.asPath = asPath;
  const nextHop = x.optional('nextHop', (v) => v.ipv4());
  if (nextHop !== undefined) a.nextHop = nextHop;
  const med = x.optional('multiExitDisc', (v) => v.int(0xffffffff));
  if (med !== undefined) a.multiExitDisc = med;
  const lp = x.optional('localPref', (v) => v.int(0xffffffff));
  if (lp !== undefined) a.localPref = lp;
  if (x.optional('atomicAggregate', (v) => v.bool()) === true) a.atomicAggregate = true;
  const agg = x.optional('aggregator', (v): Aggregator => ({
    asn: v.field('asn').int(0xffffffff) as Asn,
    address: v.field('address').ipv4(),
  }));
  if (agg !== undefined) a.aggregator = agg;
  const comms = x.optional('communities', (v) =>
    v.arr().map((c) => parseCommunity(c.str()) ?? c.fail('expected "AS:value" with both parts 0..65535')),
  );
  if (comms !== undefined) a.communities = comms;
  const oid = x.optional('originatorId', (v) => v.ipv4());
  if (oid !== undefined) a.originatorId = oid;
  const cl = x.optional('clusterList', (v) => v.arr().map((c) => c.ipv4()));
  if (cl !== undefined) a.clusterList = cl;
  const reach = x.optional('mpReachNlri', mpReachFromJson);
  if (reach !== undefined) a.mpReachNlri = reach;
  const unreach = x.optional('mpUnreachNlri', mpUnreachFromJson);
  if (unreach !== undefined) a.mpUnreachNlri = unreach;
  const ext = x.optional('extendedCommunities', (v) =>
    v
      .arr()
      .map(
        (c) => parseExtendedCommunity(c.str()) ?? c.fail('expected rt:/soo: form or 0x and 16 hex digits'),
      ),
  );
  if (ext !== undefined) a.extendedCommunities = ext;
  const large = x.optional('largeCommunities', (v) =>
    v
      .arr()
      .map(
        (c) => parseLargeCommunity(c.str()) ?? c.fail('expected "global:local1:local2", each 0..4294967295'),
      ),
  );
  if (large !== undefined) a.largeCommunities = large;
  const unknown = x.optional('unknown', (v) =>
    v.arr().map((u): UnknownAttribute => ({
      flags: u.field('flags').int(255),
      typeCode: u.field('typeCode').int(255),
      value: u.field('value').hex(),
    })),
  );
  if (unknown !== undefined) a.unknown = unknown;
  return a;
}

export function messageFromJson(value: unknown): BgpMessage {
  const x = new In(value, '$');
  const type = x.field('type').str();
  switch (type) {
    case 'open':
      return {
        type,
        version: x.optional('version', (v) => v.int(255)) ?? 4,
        myAutonomousSystem: x.field('myAutonomousSystem').int(0xffff),
        holdTime: x.field('holdTime').int(0xffff),
        bgpIdentifier: x.field('bgpIdentifier').ipv4(),
        capabilities: x.optional('capabilities', (v) => v.arr().map(capabilityFromJson)) ?? [],
      } satisfies OpenMessage;
    case 'update':
      return {
        type,
        withdrawnRoutes: x.optional('withdrawnRoutes', (v) => prefixesFromJson(v, 1)) ?? PrefixList.empty(1),
        pathAttributes: x.optional('pathAttributes', attributesFromJson) ?? {},
        nlri: x.optional('nlri', (v) => prefixesFromJson(v, 1)) ?? PrefixList.empty(1),
      } satisfies UpdateMessage;
    case 'notification': {
      const text = x.optional('shutdownCommunication', (v) => v.str());
      let data = x.optional('data', (v) => v.hex()) ?? new Uint8Array(0);
      if (text !== undefined && !x.has('data')) {
        const t = new TextEncoder().encode(text);
        if (t.length > 255) x.field('shutdownCommunication').fail('at most 255 bytes of UTF-8 (RFC 9003)');
        data = Uint8Array.of(t.length, ...t);
      }
      return {
        type,
        code: x.field('code').int(255),
        subcode: x.field('subcode').int(255),
        data,
      } satisfies NotificationMessage;
    }
    case 'keepalive':
      return KEEPALIVE;
    case 'routeRefresh': {
      const orf = x.optional('orf', (v) => v.hex());
      const base = {
        type,
        afi: x.field('afi').int(0xffff),
        safi: x.field('safi').int(255),
        subtype: x.optional('subtype', (v) => v.int(255)) ?? 0,
      } as const;
      return orf === undefined ? base : { ...base, orf };
    }
    default:
      return x.field('type').fail('expected open, update, notification, keepalive or routeRefresh');
  }
}
