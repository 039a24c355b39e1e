import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PathAttributes, UpdateMessage } from '../src/wire/index.js';
import {
  AttrFlag,
  ErrorCode,
  IPV4_UNICAST,
  IPV6_UNICAST,
  PrefixList,
  UpdateSubcode,
  asn,
  decodeFrame,
  encodeMessage,
  endOfRib,
  forReadvertisement,
  makeContext,
  makeEndOfRib,
  mergeAs4Path,
  packAnnouncements,
  packWithdrawals,
  withdrawnBy,
} from '../src/wire/index.js';
import type { Asn, CodecContext } from '../src/wire/index.js';
import { attr, frame, notificationOf, updateBody } from './helpers.js';

const ctx = makeContext();
const as2 = makeContext({ as4: false });
const v4 = (...p: string[]) => PrefixList.parse(1, p);
const v6 = (...p: string[]) => PrefixList.parse(2, p);
const seq = (...asns: number[]) => ({ type: 'sequence' as const, asns: asns as Asn[] });

function update(pathAttributes: PathAttributes, nlri = v4(), withdrawnRoutes = v4()): UpdateMessage {
  return { type: 'update', withdrawnRoutes, pathAttributes, nlri };
}

function decodeUpdate(body: Uint8Array, c: CodecContext = ctx): UpdateMessage {
  const m = decodeFrame(frame(2, body), c);
  assert.equal(m.type, 'update');
  return m;
}

const FULL: PathAttributes = {
  origin: 'egp',
  asPath: [seq(65001, 4200000000), { type: 'set', asns: [1, 2] as Asn[] }],
  nextHop: '192.0.2.1',
  multiExitDisc: 50,
  localPref: 200,
  atomicAggregate: true,
  aggregator: { asn: asn(4200000000), address: '192.0.2.9' },
  communities: [0xfde80064, 0xffffff01],
  originatorId: '10.0.0.1',
  clusterList: ['10.0.0.2', '10.0.0.3'],
  extendedCommunities: [0x0002fde800000064n],
  largeCommunities: [{ globalAdministrator: 4200000000, localData1: 1, localData2: 2 }],
  unknown: [{ flags: 0xc0, typeCode: 99, value: Uint8Array.of(1, 2) }],
};

// The mandatory attributes of an announcement, as bytes.
const ORIGIN = attr(0x40, 1, [0]);
const AS_PATH_EMPTY = attr(0x40, 2, []);
const NEXT_HOP = attr(0x40, 3, [192, 0, 2, 1]);
const MANDATORY = [...ORIGIN, ...AS_PATH_EMPTY, ...NEXT_HOP];
const NLRI_10_24 = [24, 10, 0, 0];

describe('UPDATE round trips', () => {
  it('carries every attribute of RFC 4271, 1997, 4360, 4456 and 8092', () => {
    const u = update(FULL, v4('10.0.0.0/24', '10.1.0.0/16', '0.0.0.0/0', '10.2.3.4/32'), v4('172.16.0.0/12'));
    assert.deepEqual(decodeUpdate(encodeMessage(u, ctx).subarray(19)), u);
  });

  it('carries IPv6 in MP_REACH_NLRI with a link-local second next hop, and MP_UNREACH_NLRI', () => {
    const u = update({
      mpReachNlri: {
        kind: 'prefixes',
        afi: 2,
        safi: 1,
        nextHop: '2001:db8::1',
        linkLocalNextHop: 'fe80::1:2',
        nlri: v6('2001:db8:1::/48', '::/0', '2001:db8::1/128'),
      },
      mpUnreachNlri: { kind: 'prefixes', afi: 2, safi: 1, withdrawnRoutes: v6('2001:db8:2::/64') },
      origin: 'igp',
      asPath: [],
    });
    assert.deepEqual(decodeUpdate(encodeMessage(u, ctx).subarray(19)), u);
  });

  it('carries IPv4 NLRI over an IPv6 next hop (RFC 8950)', () => {
    const u = update({
      mpReachNlri: { kind: 'prefixes', afi: 1, safi: 1, nextHop: '2001:db8::1', nlri: v4('10.0.0.0/8') },
      origin: 'igp',
      asPath: [],
    });
    assert.deepEqual(decodeUpdate(encodeMessage(u, ctx).subarray(19)), u);
  });

  it('keeps MP_REACH_NLRI of an unknown family as bytes and writes them back unchanged', () => {
    const u = update({
      mpReachNlri: {
        kind: 'opaque',
        afi: 1,
        safi: 128,
        nextHop: new Uint8Array(12),
        nlri: Uint8Array.of(1, 2, 3),
      },
      origin: 'igp',
      asPath: [],
    });
    assert.deepEqual(decodeUpdate(encodeMessage(u, ctx).subarray(19)), u);
  });

  it('carries ADD-PATH path identifiers where the context says so (RFC 7911)', () => {
    const ap = makeContext({ addPath: new Set([IPV4_UNICAST, IPV6_UNICAST]) });
    const u = update(
      {
        origin: 'igp',
        asPath: [],
        nextHop: '192.0.2.1',
        mpReachNlri: {
          kind: 'prefixes',
          afi: 2,
          safi: 1,
          nextHop: '2001:db8::1',
          nlri: PrefixList.parse(2, ['2001:db8::/32'], [7]),
        },
      },
      PrefixList.parse(1, ['10.0.0.0/24', '10.0.0.0/24'], [1, 2]),
      PrefixList.parse(1, ['10.9.0.0/16'], [0xffffffff]),
    );
    assert.deepEqual(decodeUpdate(encodeMessage(u, ap).subarray(19), ap), u);
  });

  it('clears trailing bits past the prefix length (RFC 4271 §4.3: they are irrelevant)', () => {
    const u = decodeUpdate(updateBody([], MANDATORY, [20, 10, 0, 0x1f]));
    assert.deepEqual(u.nlri.toStrings(), ['10.0.16.0/20']);
  });

  it('splits AS_PATH segments longer than 255 ASNs', () => {
    const long = Array.from({ length: 300 }, (_, i) => i + 1);
    const u = decodeUpdate(
      encodeMessage(update({ origin: 'igp', asPath: [seq(...long)] }), ctx).subarray(19),
    );
    assert.deepEqual(u.pathAttributes.asPath, [seq(...long.slice(0, 255)), seq(...long.slice(255))]);
  });
});

describe('End-of-RIB (RFC 4724 §2)', () => {
  it('is an empty UPDATE for IPv4 unicast and an empty MP_UNREACH_NLRI otherwise', () => {
    for (const [afi, safi] of [
      [1, 1],
      [2, 1],
      [1, 2],
      [25, 65],
    ] as const) {
      const bytes = encodeMessage(makeEndOfRib(afi, safi), ctx);
      if (afi === 1 && safi === 1) assert.equal(bytes.length, 23);
      assert.deepEqual(endOfRib(decodeUpdate(bytes.subarray(19))), { afi, safi });
    }
  });
  it('is not claimed for an UPDATE with content', () => {
    assert.equal(endOfRib(update({}, v4(), v4('10.0.0.0/8'))), undefined);
    assert.equal(endOfRib(update({ origin: 'igp' })), undefined);
  });
});

describe('RFC 6793 on a 2-octet session', () => {
  it('sends AS_TRANS in AS_PATH and the real path in AS4_PATH, and merges them back', () => {
    const a: PathAttributes = {
      origin: 'igp',
      asPath: [seq(65001, 4200000000, 65002)],
      nextHop: '192.0.2.1',
      aggregator: { asn: asn(4200000001), address: '10.0.0.1' },
    };
    const bytes = encodeMessage(update(a, v4('10.0.0.0/8')), as2);
    const body = bytes.subarray(19);
    const hexs = Buffer.from(body).toString('hex');
    assert.ok(hexs.includes('40020802' + '03' + 'fde9' + '5ba0' + 'fdea'), 'AS_PATH with AS_TRANS');
    assert.ok(hexs.includes('c0110e0203' + '0000fde9' + 'fa56ea00' + '0000fdea'), 'AS4_PATH');
    assert.ok(hexs.includes('c00706' + '5ba0' + '0a000001'), 'AGGREGATOR with AS_TRANS');
    assert.ok(hexs.includes('c01208' + 'fa56ea01' + '0a000001'), 'AS4_AGGREGATOR');
    assert.deepEqual(decodeUpdate(body, as2).pathAttributes, a);
  });

  it('sends no AS4_PATH when every ASN fits in 2 octets', () => {
    const bytes = encodeMessage(update({ origin: 'igp', asPath: [seq(1, 2)] }), as2);
    assert.ok(!Buffer.from(bytes).toString('hex').includes('c011'));
  });

  it('prepends the ASNs an old speaker added in front of AS4_PATH (§4.2.3)', () => {
    // An old speaker (AS 100) prepended itself twice to a path that came in with AS4_PATH.
    assert.deepEqual(mergeAs4Path([seq(100, 100, 23456, 23456)], [seq(4200000000, 4200000001)]), [
      seq(100, 100, 4200000000, 4200000001),
    ]);
    // A set counts as one; confederation segments count zero and stay in front.
    assert.deepEqual(
      mergeAs4Path(
        [
          { type: 'confedSequence', asns: [1] as Asn[] },
          seq(100, 23456),
          { type: 'set', asns: [5, 6] as Asn[] },
        ],
        [seq(4200000000), { type: 'set', asns: [5, 6] as Asn[] }],
      ),
      [
        { type: 'confedSequence', asns: [1] as Asn[] },
        seq(100, 4200000000),
        { type: 'set', asns: [5, 6] as Asn[] },
      ],
    );
  });

  it('ignores an AS4_PATH longer than AS_PATH', () => {
    assert.deepEqual(mergeAs4Path([seq(23456)], [seq(1, 2)]), [seq(23456)]);
  });

  it('ignores AS4_PATH and AS4_AGGREGATOR when AGGREGATOR holds a real ASN (§4.2.3)', () => {
    const attrs = [
      ...ORIGIN,
      ...attr(0x40, 2, [2, 1, 0x5b, 0xa0]),
      ...NEXT_HOP,
      ...attr(0xc0, 7, [0, 100, 10, 0, 0, 1]),
      ...attr(0xc0, 17, [2, 1, 0xfa, 0x56, 0xea, 0]),
      ...attr(0xc0, 18, [0xfa, 0x56, 0xea, 0, 10, 0, 0, 1]),
    ];
    const u = decodeUpdate(updateBody([], attrs, NLRI_10_24), as2);
    assert.deepEqual(u.pathAttributes.asPath, [seq(23456)]);
    assert.deepEqual(u.pathAttributes.aggregator, { asn: 100, address: '10.0.0.1' });
  });

  it('discards AS4_PATH and AS4_AGGREGATOR from a 4-octet peer (§4.1)', () => {
    const attrs = [
      ...MANDATORY,
      ...attr(0xc0, 17, [2, 1, 0, 0, 0, 5]),
      ...attr(0xc0, 18, [0, 0, 0, 5, 1, 1, 1, 1]),
    ];
    const u = decodeUpdate(updateBody([], attrs, NLRI_10_24));
    assert.deepEqual(u.pathAttributes, { origin: 'igp', asPath: [], nextHop: '192.0.2.1' });
    assert.equal(u.malformed, undefined);
  });
});

describe('RFC 7606 error handling', () => {
  type Case = [
    name: string,
    attrs: number[],
    action: 'treat-as-withdraw' | 'attribute-discard',
    subcode: number,
    data?: number[],
  ];
  const cases: Case[] = [
    [
      'ORIGIN of length 2 (§7.1)',
      [...attr(0x40, 1, [0, 0]), ...AS_PATH_EMPTY, ...NEXT_HOP],
      'treat-as-withdraw',
      UpdateSubcode.AttributeLengthError,
      [0x40, 1, 2, 0, 0],
    ],
    [
      'ORIGIN value 3 (§7.1)',
      [...attr(0x40, 1, [3]), ...AS_PATH_EMPTY, ...NEXT_HOP],
      'treat-as-withdraw',
      UpdateSubcode.InvalidOriginAttribute,
      [0x40, 1, 1, 3],
    ],
    [
      'AS_PATH with a zero-length segment (§7.2)',
      [...ORIGIN, ...attr(0x40, 2, [2, 0]), ...NEXT_HOP],
      'treat-as-withdraw',
      UpdateSubcode.MalformedAsPath,
    ],
    [
      'AS_PATH with segment type 5 (§7.2)',
      [...ORIGIN, ...attr(0x40, 2, [5, 1, 0, 0, 0, 1]), ...NEXT_HOP],
      'treat-as-withdraw',
      UpdateSubcode.MalformedAsPath,
    ],
    [
      'AS_PATH segment overrunning (§7.2)',
      [...ORIGIN, ...attr(0x40, 2, [2, 2, 0, 0, 0, 1]), ...NEXT_HOP],
      'treat-as-withdraw',
      UpdateSubcode.MalformedAsPath,
    ],
    [
      'NEXT_HOP of length 5 (§7.3)',
      [...ORIGIN, ...AS_PATH_EMPTY, ...attr(0x40, 3, [1, 2, 3, 4, 5])],
      'treat-as-withdraw',
      UpdateSubcode.AttributeLengthError,
    ],
    [
      'NEXT_HOP 0.0.0.0 (RFC 4271 §6.3)',
      [...ORIGIN, ...AS_PATH_EMPTY, ...attr(0x40, 3, [0, 0, 0, 0])],
      'treat-as-withdraw',
      UpdateSubcode.InvalidNextHopAttribute,
      [0x40, 3, 4, 0, 0, 0, 0],
    ],
    [
      'NEXT_HOP 224.0.0.5, multicast (RFC 4271 §6.3)',
      [...ORIGIN, ...AS_PATH_EMPTY, ...attr(0x40, 3, [224, 0, 0, 5])],
      'treat-as-withdraw',
      UpdateSubcode.InvalidNextHopAttribute,
    ],
    [
      'NEXT_HOP 255.255.255.255 (RFC 4271 §6.3)',
      [...ORIGIN, ...AS_PATH_EMPTY, ...attr(0x40, 3, [255, 255, 255, 255])],
      'treat-as-withdraw',
      UpdateSubcode.InvalidNextHopAttribute,
    ],
    [
      'MULTI_EXIT_DISC of length 3 (§7.4)',
      [...MANDATORY, ...attr(0x80, 4, [0, 0, 1])],
      'treat-as-withdraw',
      UpdateSubcode.AttributeLengthError,
    ],
    [
      'LOCAL_PREF of length 5 (§7.5)',
      [...MANDATORY, ...attr(0x40, 5, [0, 0, 0, 0, 1])],
      'treat-as-withdraw',
      UpdateSubcode.AttributeLengthError,
    ],
    [
      'ATOMIC_AGGREGATE of length 1 (§7.6)',
      [...MANDATORY, ...attr(0x40, 6, [1])],
      'attribute-discard',
      UpdateSubcode.AttributeLengthError,
    ],
    [
      'AGGREGATOR of length 7 (§7.7)',
      [...MANDATORY, ...attr(0xc0, 7, [0, 0, 0, 1, 1, 1, 1])],
      'attribute-discard',
      UpdateSubcode.AttributeLengthError,
    ],
    [
      'COMMUNITIES of length 5 (§7.8)',
      [...MANDATORY, ...attr(0xc0, 8, [0, 0, 0, 1, 2])],
      'treat-as-withdraw',
      UpdateSubcode.AttributeLengthError,
    ],
    [
      'COMMUNITIES of length 0 (§7.8)',
      [...MANDATORY, ...attr(0xc0, 8, [])],
      'treat-as-withdraw',
      UpdateSubcode.AttributeLengthError,
    ],
    [
      'ORIGINATOR_ID of length 3 (§7.9)',
      [...MANDATORY, ...attr(0x80, 9, [1, 1, 1])],
      'treat-as-withdraw',
      UpdateSubcode.AttributeLengthError,
    ],
    [
      'CLUSTER_LIST of length 6 (§7.10)',
      [...MANDATORY, ...attr(0x80, 10, [1, 1, 1, 1, 2, 2])],
      'treat-as-withdraw',
      UpdateSubcode.AttributeLengthError,
    ],
    [
      'EXTENDED_COMMUNITIES of length 7 (§7.14)',
      [...MANDATORY, ...attr(0xc0, 16, [0, 2, 0, 1, 0, 0, 0])],
      'treat-as-withdraw',
      UpdateSubcode.AttributeLengthError,
    ],
    [
      'LARGE_COMMUNITY of length 8 (RFC 8092 §6)',
      [...MANDATORY, ...attr(0xc0, 32, [0, 0, 0, 1, 0, 0, 0, 1])],
      'treat-as-withdraw',
      UpdateSubcode.AttributeLengthError,
    ],
    [
      'ORIGIN with the optional bit set (§3 c)',
      [...attr(0xc0, 1, [0]), ...AS_PATH_EMPTY, ...NEXT_HOP],
      'treat-as-withdraw',
      UpdateSubcode.AttributeFlagsError,
      [0xc0, 1, 1, 0],
    ],
    [
      'COMMUNITIES without the transitive bit (§3 c)',
      [...MANDATORY, ...attr(0x80, 8, [0, 0, 0, 1])],
      'treat-as-withdraw',
      UpdateSubcode.AttributeFlagsError,
    ],
    [
      'a missing ORIGIN (§3 d)',
      [...AS_PATH_EMPTY, ...NEXT_HOP],
      'treat-as-withdraw',
      UpdateSubcode.MissingWellKnownAttribute,
      [1],
    ],
    [
      'a missing AS_PATH (§3 d)',
      [...ORIGIN, ...NEXT_HOP],
      'treat-as-withdraw',
      UpdateSubcode.MissingWellKnownAttribute,
      [2],
    ],
    [
      'a missing NEXT_HOP with NLRI (§3 d)',
      [...ORIGIN, ...AS_PATH_EMPTY],
      'treat-as-withdraw',
      UpdateSubcode.MissingWellKnownAttribute,
      [3],
    ],
    [
      'a repeated MULTI_EXIT_DISC (§3 g)',
      [...MANDATORY, ...attr(0x80, 4, [0, 0, 0, 1]), ...attr(0x80, 4, [0, 0, 0, 2])],
      'attribute-discard',
      UpdateSubcode.MalformedAttributeList,
    ],
    [
      'an attribute overrunning the attribute field (§4)',
      [...MANDATORY, 0x80, 4, 9, 0, 0],
      'treat-as-withdraw',
      UpdateSubcode.MalformedAttributeList,
    ],
    [
      'two trailing bytes too few for an attribute (§4)',
      [...MANDATORY, 0x80, 4],
      'treat-as-withdraw',
      UpdateSubcode.MalformedAttributeList,
    ],
    [
      'an extended-length header cut short (§4)',
      [...MANDATORY, 0x90, 4, 0],
      'treat-as-withdraw',
      UpdateSubcode.MalformedAttributeList,
    ],
  ];
  for (const [name, attrs, action, subcode, data] of cases) {
    it(`survives ${name} with ${action}`, () => {
      const u = decodeUpdate(updateBody([], attrs, NLRI_10_24));
      assert.ok(u.malformed !== undefined, 'malformed is reported');
      assert.equal(u.malformed.action, action);
      const e = u.malformed.errors[0]!;
      assert.equal(e.code, ErrorCode.UpdateMessage);
      assert.equal(e.subcode, subcode, e.message);
      if (data !== undefined) assert.deepEqual([...e.data], data);
      if (action === 'treat-as-withdraw')
        assert.deepEqual(
          withdrawnBy(u).flatMap((p) => p.toStrings()),
          ['10.0.0.0/24'],
        );
    });
  }

  it('keeps the first of a repeated attribute and the rest of the message', () => {
    const u = decodeUpdate(
      updateBody(
        [],
        [...MANDATORY, ...attr(0x80, 4, [0, 0, 0, 1]), ...attr(0x80, 4, [0, 0, 0, 2])],
        NLRI_10_24,
      ),
    );
    assert.equal(u.pathAttributes.multiExitDisc, 1);
    assert.deepEqual(u.nlri.toStrings(), ['10.0.0.0/24']);
    assert.deepEqual(withdrawnBy(u), []);
  });

  it('lets the strongest action decide when several errors occur', () => {
    const u = decodeUpdate(
      updateBody([], [...MANDATORY, ...attr(0x40, 6, [1]), ...attr(0x80, 4, [1])], NLRI_10_24),
    );
    assert.equal(u.malformed?.action, 'treat-as-withdraw');
    assert.equal(u.malformed.errors.length, 2);
  });

  it('withdraws MP_REACH_NLRI prefixes too under treat-as-withdraw (§2)', () => {
    const mp = attr(
      0x80,
      14,
      [0, 2, 1, 16, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 32, 0x20, 1, 0x0d, 0xb8],
    );
    const u = decodeUpdate(updateBody([], [...mp, ...attr(0x40, 1, [7]), ...AS_PATH_EMPTY], []));
    assert.equal(u.malformed?.action, 'treat-as-withdraw');
    assert.deepEqual(
      withdrawnBy(u).flatMap((p) => p.toStrings()),
      ['2001:db8::/32'],
    );
  });

  it('does not require NEXT_HOP when only MP_REACH_NLRI announces (RFC 4760 §3)', () => {
    const mp = attr(
      0x80,
      14,
      [0, 2, 1, 16, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 32, 0x20, 1, 0x0d, 0xb8],
    );
    assert.equal(decodeUpdate(updateBody([], [...mp, ...ORIGIN, ...AS_PATH_EMPTY], [])).malformed, undefined);
  });

  it('passes unknown optional attributes through, and rejects unknown well-known ones', () => {
    const u = decodeUpdate(
      updateBody([], [...MANDATORY, ...attr(0xe0, 200, [9]), ...attr(0x80, 201, [8])], NLRI_10_24),
    );
    assert.deepEqual(u.pathAttributes.unknown, [
      { flags: 0xe0, typeCode: 200, value: Uint8Array.of(9) },
      { flags: 0x80, typeCode: 201, value: Uint8Array.of(8) },
    ]);
    const e = notificationOf(() =>
      decodeUpdate(updateBody([], [...MANDATORY, ...attr(0x40, 202, [1])], NLRI_10_24)),
    );
    assert.equal(e.subcode, UpdateSubcode.UnrecognizedWellKnownAttribute);
    assert.deepEqual([...e.data], [0x40, 202, 1, 1]);
  });

  it('marks passed-on unknown transitive attributes Partial and drops non-transitive ones (RFC 4271 §5)', () => {
    const a = forReadvertisement({
      origin: 'igp',
      unknown: [
        { flags: 0xc0, typeCode: 200, value: Uint8Array.of(1) },
        { flags: 0x80, typeCode: 201, value: Uint8Array.of(2) },
      ],
    });
    assert.deepEqual(a, {
      origin: 'igp',
      unknown: [{ flags: 0xc0 | AttrFlag.Partial, typeCode: 200, value: Uint8Array.of(1) }],
    });
  });

  const resets: [string, Uint8Array, number][] = [
    [
      'withdrawn routes length past the message',
      Uint8Array.of(0, 9, 0, 0),
      UpdateSubcode.MalformedAttributeList,
    ],
    [
      'total attribute length past the message',
      updateBody([], [], []).fill(9, 3, 4),
      UpdateSubcode.MalformedAttributeList,
    ],
    [
      'an NLRI prefix of length 33',
      updateBody([], MANDATORY, [33, 1, 1, 1, 1, 1]),
      UpdateSubcode.InvalidNetworkField,
    ],
    [
      'an NLRI prefix overrunning the message',
      updateBody([], MANDATORY, [24, 10, 0]),
      UpdateSubcode.InvalidNetworkField,
    ],
    [
      'a withdrawn prefix of length 40',
      updateBody([40, 1, 1, 1, 1, 1], [], []),
      UpdateSubcode.InvalidNetworkField,
    ],
    [
      'two MP_REACH_NLRI (§3 g)',
      updateBody(
        [],
        [...attr(0x80, 14, [0, 1, 1, 4, 1, 1, 1, 1, 0]), ...attr(0x80, 14, [0, 1, 1, 4, 1, 1, 1, 1, 0])],
        [],
      ),
      UpdateSubcode.MalformedAttributeList,
    ],
    [
      'two MP_UNREACH_NLRI (§3 g)',
      updateBody([], [...attr(0x80, 15, [0, 2, 1]), ...attr(0x80, 15, [0, 2, 1])], []),
      UpdateSubcode.MalformedAttributeList,
    ],
    [
      'an MP_REACH_NLRI next hop of length 15 (§7.11)',
      updateBody([], attr(0x80, 14, [0, 2, 1, 15, ...new Array<number>(15).fill(0), 0]), []),
      UpdateSubcode.OptionalAttributeError,
    ],
    [
      'an MP_REACH_NLRI next hop overrunning it (§7.11)',
      updateBody([], attr(0x80, 14, [0, 2, 1, 16, 0, 0]), []),
      UpdateSubcode.OptionalAttributeError,
    ],
    [
      'an MP_REACH_NLRI prefix of length 129 (§5.3)',
      updateBody([], attr(0x80, 14, [0, 2, 1, 16, ...new Array<number>(16).fill(0), 0, 129]), []),
      UpdateSubcode.OptionalAttributeError,
    ],
    [
      'an MP_UNREACH_NLRI of length 2',
      updateBody([], attr(0x80, 15, [0, 2]), []),
      UpdateSubcode.OptionalAttributeError,
    ],
    [
      'MP_REACH_NLRI with the transitive bit (§3 c)',
      updateBody([], attr(0xc0, 14, [0, 1, 1, 4, 1, 1, 1, 1, 0]), []),
      UpdateSubcode.AttributeFlagsError,
    ],
  ];
  for (const [name, body, subcode] of resets) {
    it(`resets the session for ${name}`, () => {
      const e = notificationOf(() => decodeUpdate(body));
      assert.equal(e.code, ErrorCode.UpdateMessage);
      assert.equal(e.subcode, subcode, e.message);
      assert.equal(e.action, 'session-reset');
    });
  }
});

describe('UPDATE packing', () => {
  const many = (n: number, len = 24) =>
    PrefixList.parse(
      1,
      Array.from({ length: n }, (_, i) => `${10 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.0/${len}`),
    );

  function totalPrefixes(msgs: Uint8Array[], c: CodecContext = ctx): string[] {
    return msgs.flatMap((m) => {
      const u = decodeUpdate(m.subarray(19), c);
      const re = u.pathAttributes.mpReachNlri;
      const un = u.pathAttributes.mpUnreachNlri;
      return [
        ...u.nlri.toStrings(),
        ...u.withdrawnRoutes.toStrings(),
        ...(re?.kind === 'prefixes' ? re.nlri.toStrings() : []),
        ...(un?.kind === 'prefixes' ? un.withdrawnRoutes.toStrings() : []),
      ];
    });
  }

  it('fills each IPv4 UPDATE so that the next prefix would not fit', () => {
    const p = many(5000);
    const attrs: PathAttributes = { origin: 'igp', asPath: [seq(65001)], nextHop: '192.0.2.1' };
    const msgs = packAnnouncements({ attributes: attrs, prefixes: p }, ctx);
    assert.deepEqual(totalPrefixes(msgs), p.toStrings());
    for (const m of msgs.slice(0, -1))
      assert.ok(m.length <= 4096 && m.length > 4096 - 4, `length ${m.length}`);
    for (const m of msgs) assert.deepEqual(decodeUpdate(m.subarray(19)).pathAttributes, attrs);
  });

  it('packs IPv6 into MP_REACH_NLRI and withdrawals into MP_UNREACH_NLRI, each full', () => {
    const p = PrefixList.parse(
      2,
      Array.from({ length: 3000 }, (_, i) => `2001:db8:${i.toString(16)}::/48`),
    );
    const msgs = packAnnouncements(
      {
        attributes: { origin: 'igp', asPath: [] },
        prefixes: p,
        mpNextHop: '2001:db8::1',
        mpLinkLocalNextHop: 'fe80::1',
      },
      ctx,
    );
    assert.deepEqual(totalPrefixes(msgs), p.toStrings());
    for (const m of msgs.slice(0, -1)) assert.ok(m.length > 4096 - 8, `length ${m.length}`);
    const w = packWithdrawals(p, ctx);
    assert.deepEqual(totalPrefixes(w), p.toStrings());
    for (const m of w.slice(0, -1)) assert.ok(m.length > 4096 - 8 && m.length <= 4096, `length ${m.length}`);
  });

  it('packs IPv4 withdrawals into full Withdrawn Routes fields', () => {
    const p = many(3000, 32);
    const w = packWithdrawals(p, ctx);
    assert.deepEqual(totalPrefixes(w), p.toStrings());
    for (const m of w.slice(0, -1)) assert.ok(m.length > 4096 - 5 && m.length <= 4096);
  });

  it('packs with path identifiers on an ADD-PATH session', () => {
    const ap = makeContext({ addPath: new Set([IPV4_UNICAST]) });
    const p = PrefixList.parse(
      1,
      many(2000).toStrings(),
      Array.from({ length: 2000 }, (_, i) => i),
    );
    const msgs = packAnnouncements(
      { attributes: { origin: 'igp', asPath: [], nextHop: '1.1.1.1' }, prefixes: p },
      ap,
    );
    assert.deepEqual(totalPrefixes(msgs, ap), p.toStrings());
    for (const m of msgs.slice(0, -1)) assert.ok(m.length > 4096 - 9);
  });

  it('produces exactly what encodeUpdate produces for a batch that fits one message', () => {
    const attrs: PathAttributes = { origin: 'igp', asPath: [seq(1)], nextHop: '1.1.1.1', communities: [1] };
    const p = many(10);
    assert.deepEqual(packAnnouncements({ attributes: attrs, prefixes: p }, ctx), [
      encodeMessage(update(attrs, p), ctx),
    ]);
  });
});
