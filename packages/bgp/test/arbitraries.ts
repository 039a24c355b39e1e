// fast-check generators for every message kind, shared by the property tests and
// the fuzz runner. They produce only what the encoder accepts and the decoder gives
// back unchanged: canonical attribute sets (no empty lists, unknown attributes sorted).

import fc from 'fast-check';

/** fc.record builds null-prototype objects; deepStrictEqual compares prototypes. */
function rec<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model).map((r) => ({ ...r }));
}
import type {
  AfiSafiKey,
  AsPathSegment,
  Asn,
  BgpMessage,
  Capability,
  CodecContext,
  MpReachNlri,
  MpUnreachNlri,
  PathAttributes,
  UnknownAttribute,
} from '../src/wire/index.js';
import {
  IPV4_UNICAST,
  IPV6_UNICAST,
  PrefixList,
  formatIpv4,
  formatIpv6Words,
  makeContext,
} from '../src/wire/index.js';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u8 = fc.integer({ min: 0, max: 255 });
const ipv4 = u32.map(formatIpv4);
/** A NEXT_HOP must be a host address (RFC 4271 §6.3): first octet 1..223. */
const hostIpv4 = fc.integer({ min: 0x01000000, max: 0xdfffffff }).map(formatIpv4);
const ipv6 = fc.tuple(u32, u32, u32, u32).map(([a, b, c, d]) => formatIpv6Words(a, b, c, d));

export const contextArb: fc.Arbitrary<CodecContext> = fc
  .record({ as4: fc.boolean(), v4: fc.boolean(), v6: fc.boolean() })
  .map(({ as4, v4, v6 }) => {
    const addPath = new Set<AfiSafiKey>();
    if (v4) addPath.add(IPV4_UNICAST);
    if (v6) addPath.add(IPV6_UNICAST);
    return makeContext({ as4, addPath, extendedMessage: true });
  });

function mask(word: number, bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? word >>> 0 : (word & (0xffffffff << (32 - bits))) >>> 0;
}

export function prefixListArb(afi: 1 | 2, withIds: boolean, max = 20): fc.Arbitrary<PrefixList> {
  const one = fc.tuple(
    fc.integer({ min: 0, max: afi === 1 ? 32 : 128 }),
    fc.array(u32, { minLength: 4, maxLength: 4 }),
    u32,
  );
  return fc.array(one, { maxLength: max }).map((items) => {
    const w = afi === 1 ? 1 : 4;
    const addrs = new Uint32Array(items.length * w);
    const lens = new Uint8Array(items.length);
    const ids = new Uint32Array(items.length);
    items.forEach(([len, words, id], i) => {
      lens[i] = len;
      ids[i] = id;
      for (let k = 0; k < w; k++) addrs[i * w + k] = mask(words[k]!, len - 32 * k);
    });
    return new PrefixList(afi, addrs, lens, withIds ? ids : null);
  });
}

function asnArb(as4: boolean): fc.Arbitrary<Asn> {
  return (as4 ? u32 : fc.oneof(u16, u32)) as fc.Arbitrary<Asn>;
}

/** On a 2-octet session only leading confederation segments of 2-octet ASNs survive (RFC 6793 §5). */
function asPathArb(as4: boolean): fc.Arbitrary<AsPathSegment[]> {
  const seg = (type: AsPathSegment['type'], a: fc.Arbitrary<Asn>) =>
    fc.array(a, { minLength: 1, maxLength: 12 }).map((asns) => ({ type, asns }));
  const plain = fc.oneof(seg('sequence', asnArb(as4)), seg('set', asnArb(as4)));
  const confedAsn = (as4 ? u32 : u16) as fc.Arbitrary<Asn>;
  const confed = fc.oneof(seg('confedSequence', confedAsn), seg('confedSet', confedAsn));
  return fc
    .tuple(fc.array(confed, { maxLength: 2 }), fc.array(plain, { maxLength: 4 }))
    .map(([c, p]) => [...c, ...p]);
}

const KNOWN_TYPES = new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 32]);
const unknownArb: fc.Arbitrary<UnknownAttribute[]> = fc
  .uniqueArray(
    rec({
      flags: fc.constantFrom(0x80, 0xc0, 0xe0, 0xa0),
      typeCode: u8.filter((t) => !KNOWN_TYPES.has(t)),
      value: fc.uint8Array({ maxLength: 300 }),
    }),
    { selector: (x) => x.typeCode, maxLength: 3 },
  )
  .map((xs) => xs.sort((a, b) => a.typeCode - b.typeCode));

function mpReachArb(ctx: CodecContext): fc.Arbitrary<MpReachNlri> {
  const prefixes = fc.constantFrom<1 | 2>(1, 2).chain((afi) =>
    fc
      .record({
        safi: fc.constantFrom(1, 2),
        v6nh: fc.boolean(),
        ll: fc.option(ipv6, { nil: undefined }),
        nh4: ipv4,
        nh6: ipv6,
      })
      .chain(({ safi, v6nh, ll, nh4, nh6 }) =>
        prefixListArb(afi, ctx.addPath.has(((afi << 8) | safi) as AfiSafiKey)).map((nlri): MpReachNlri => {
          const useV6 = afi === 2 || v6nh;
          const base = { kind: 'prefixes' as const, afi, safi, nextHop: useV6 ? nh6 : nh4, nlri };
          return useV6 && ll !== undefined ? { ...base, linkLocalNextHop: ll } : base;
        }),
      ),
  );
  const opaque = fc
    .record({
      afi: u16,
      safi: u8.filter((s) => s !== 1 && s !== 2),
      nextHop: fc.uint8Array({ maxLength: 24 }),
      nlri: fc.uint8Array({ maxLength: 40 }),
    })
    .map((r): MpReachNlri => ({ kind: 'opaque', ...r }));
  return fc.oneof(prefixes, opaque);
}

function mpUnreachArb(ctx: CodecContext): fc.Arbitrary<MpUnreachNlri> {
  const prefixes = fc
    .tuple(fc.constantFrom<1 | 2>(1, 2), fc.constantFrom(1, 2))
    .chain(([afi, safi]) =>
      prefixListArb(afi, ctx.addPath.has(((afi << 8) | safi) as AfiSafiKey)).map(
        (withdrawnRoutes): MpUnreachNlri => ({ kind: 'prefixes', afi, safi, withdrawnRoutes }),
      ),
    );
  const opaque = fc
    .record({
      afi: u16,
      safi: u8.filter((s) => s !== 1 && s !== 2),
      withdrawnRoutes: fc.uint8Array({ maxLength: 40 }),
    })
    .map((r): MpUnreachNlri => ({ kind: 'opaque', ...r }));
  return fc.oneof(prefixes, opaque);
}

function nonEmpty<T>(a: fc.Arbitrary<T>, max = 6) {
  return fc.option(fc.array(a, { minLength: 1, maxLength: max }), { nil: undefined });
}

function attributesArb(
  ctx: CodecContext,
  announcing: boolean,
  v4Nlri: boolean,
): fc.Arbitrary<PathAttributes> {
  return fc
    .record({
      origin: fc.constantFrom<'igp' | 'egp' | 'incomplete'>('igp', 'egp', 'incomplete'),
      asPath: asPathArb(ctx.as4),
      nextHop: fc.option(hostIpv4, { nil: undefined }),
      multiExitDisc: fc.option(u32, { nil: undefined }),
      localPref: fc.option(u32, { nil: undefined }),
      atomicAggregate: fc.option(fc.constant(true as const), { nil: undefined }),
      aggregator: fc.option(rec({ asn: asnArb(ctx.as4), address: ipv4 }), { nil: undefined }),
      communities: nonEmpty(u32),
      originatorId: fc.option(ipv4, { nil: undefined }),
      clusterList: nonEmpty(ipv4),
      mpReachNlri: fc.option(mpReachArb(ctx), { nil: undefined }),
      mpUnreachNlri: fc.option(mpUnreachArb(ctx), { nil: undefined }),
      extendedCommunities: nonEmpty(fc.bigInt({ min: 0n, max: 0xffffffffffffffffn })),
      largeCommunities: nonEmpty(rec({ globalAdministrator: u32, localData1: u32, localData2: u32 })),
      unknown: unknownArb,
      withOrigin: fc.boolean(),
    })
    .map((r) => {
      const { withOrigin, unknown, ...rest } = r;
      const a: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(rest)) if (v !== undefined) a[k] = v;
      if (unknown.length > 0) a['unknown'] = unknown;
      // An announcement must carry the well-known mandatory attributes (RFC 4271 §5.1),
      // NEXT_HOP only for the NLRI field; a pure withdrawal may carry anything.
      const announces = announcing || (rest.mpReachNlri !== undefined && mpCount(rest.mpReachNlri) > 0);
      if (!announces && !withOrigin) {
        delete a['origin'];
        delete a['asPath'];
      }
      if (v4Nlri && rest.nextHop === undefined) a['nextHop'] = '192.0.2.1';
      return a;
    });
}

function mpCount(m: MpReachNlri): number {
  return m.nlri.length;
}

export function updateArb(ctx: CodecContext): fc.Arbitrary<BgpMessage> {
  const v4ids = ctx.addPath.has(IPV4_UNICAST);
  return fc.tuple(prefixListArb(1, v4ids, 30), prefixListArb(1, v4ids, 30)).chain(([withdrawnRoutes, nlri]) =>
    attributesArb(ctx, nlri.length > 0, nlri.length > 0).map((pathAttributes): BgpMessage => ({
      type: 'update',
      withdrawnRoutes,
      pathAttributes,
      nlri,
    })),
  );
}

const capabilityArb: fc.Arbitrary<Capability> = fc.oneof(
  rec({ afi: u16, safi: u8 }).map((f): Capability => ({ kind: 'multiprotocol', ...f })),
  fc.constant<Capability>({ kind: 'routeRefresh' }),
  fc.constant<Capability>({ kind: 'enhancedRouteRefresh' }),
  fc.constant<Capability>({ kind: 'extendedMessage' }),
  (u32 as fc.Arbitrary<Asn>).map((asn): Capability => ({ kind: 'fourOctetAs', asn })),
  fc
    .record({
      restarting: fc.boolean(),
      notification: fc.boolean(),
      restartTime: fc.integer({ min: 0, max: 4095 }),
      families: fc.array(rec({ afi: u16, safi: u8, forwardingPreserved: fc.boolean() }), { maxLength: 5 }),
    })
    .map((g): Capability => ({ kind: 'gracefulRestart', ...g })),
  fc
    .array(
      rec({
        afi: u16,
        safi: u8,
        mode: fc.constantFrom<'receive' | 'send' | 'both'>('receive', 'send', 'both'),
      }),
      {
        minLength: 1,
        maxLength: 5,
      },
    )
    .map((families): Capability => ({ kind: 'addPath', families })),
  fc
    .array(rec({ afi: u16, safi: u16, nextHopAfi: u16 }), { minLength: 1, maxLength: 5 })
    .map((families): Capability => ({ kind: 'extendedNextHop', families })),
  fc
    .record({ hostname: fc.string({ maxLength: 30 }), domainName: fc.string({ maxLength: 30 }) })
    .map((f): Capability => ({ kind: 'fqdn', ...f })),
  fc
    .record({
      code: u8.filter((c) => ![1, 2, 5, 6, 64, 65, 69, 70, 73].includes(c)),
      value: fc.uint8Array({ maxLength: 40 }),
    })
    .map((u): Capability => ({ kind: 'unknown', ...u })),
);

export const openArb: fc.Arbitrary<BgpMessage> = fc
  .record({
    myAutonomousSystem: u16,
    holdTime: fc.oneof(fc.constant(0), fc.integer({ min: 3, max: 0xffff })),
    bgpIdentifier: fc.integer({ min: 1, max: 0xffffffff }).map(formatIpv4),
    capabilities: fc.array(capabilityArb, { maxLength: 40 }),
  })
  .map((o): BgpMessage => ({ type: 'open', version: 4, ...o }));

export const notificationArb: fc.Arbitrary<BgpMessage> = fc
  .record({ code: u8, subcode: u8, data: fc.uint8Array({ maxLength: 64 }) })
  .map((n): BgpMessage => ({ type: 'notification', ...n }));

export const routeRefreshArb: fc.Arbitrary<BgpMessage> = fc.oneof(
  fc
    .record({
      afi: u16,
      safi: u8,
      orf: fc.option(fc.uint8Array({ minLength: 1, maxLength: 20 }), { nil: undefined }),
    })
    .map(({ afi, safi, orf }): BgpMessage =>
      orf === undefined
        ? { type: 'routeRefresh', afi, safi, subtype: 0 }
        : { type: 'routeRefresh', afi, safi, subtype: 0, orf },
    ),
  fc
    .record({ afi: u16, safi: u8, subtype: u8.filter((s) => s !== 0) })
    .map((r): BgpMessage => ({ type: 'routeRefresh', ...r })),
);

export function messageArb(ctx: CodecContext): fc.Arbitrary<BgpMessage> {
  return fc.oneof(
    { arbitrary: updateArb(ctx), weight: 4 },
    openArb,
    notificationArb,
    routeRefreshArb,
    fc.constant<BgpMessage>({ type: 'keepalive' }),
  );
}
