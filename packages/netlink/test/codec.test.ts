import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  decodeAck,
  decodeAddress,
  decodeLink,
  decodeNeighbour,
  decodeRoute,
  decodeRouteView,
  decodeRtnl,
  encodeAddress,
  encodeNeighbour,
  encodeNewLink,
  encodeRoute,
  encodeRouteDump,
  encodeRouteGet,
  encodeSetLink,
  forEachMessage,
  formatIpv6,
  ipv4Value,
  NetlinkProtocolError,
  NlWriter,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  NLM_F_REQUEST,
  NLMSG_ERROR,
  NTF_SELF,
  NUD_NOARP,
  NUD_PERMANENT,
  RTM_DELROUTE,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWNEIGH,
  RTM_NEWROUTE,
  RouteView,
  writeIpv4,
  writeIpv6,
} from '../src/index.js';
import type { NlHeader, RouteQuery, RouteSpec } from '../src/index.js';
import { ipVector, seqOf } from './vectors.js';

const ADD = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
const SET = NLM_F_REQUEST | NLM_F_ACK;
const H0 = 3;
const H1 = 2;

function only(buf: Buffer): NlHeader {
  const hs: NlHeader[] = [];
  forEachMessage(buf, 0, buf.length, (h) => hs.push({ ...h }));
  assert.equal(hs.length, 1);
  return hs[0]!;
}

function encodeLike(command: string, fn: (w: NlWriter, seq: number) => void): { ours: Buffer; ip: Buffer } {
  const ip = ipVector(command);
  const w = new NlWriter(64);
  fn(w, seqOf(ip));
  return { ours: Buffer.from(w.view()), ip };
}

describe('route requests equal the bytes ip sends', () => {
  const cases: [string, number, number, RouteSpec][] = [
    [
      'ip route add 10.65.1.0/26 via 192.168.0.2 dev h0 proto 80',
      RTM_NEWROUTE,
      ADD,
      {
        family: 4,
        dst: '10.65.1.0',
        dstLen: 26,
        protocol: 80,
        nexthops: [{ gateway: '192.168.0.2', oif: H0 }],
      },
    ],
    [
      'ip route add blackhole 10.65.2.0/26 proto 80',
      RTM_NEWROUTE,
      ADD,
      { family: 4, dst: '10.65.2.0', dstLen: 26, protocol: 80, type: 'blackhole' },
    ],
    [
      'ip route add 10.65.3.0/26 via 172.16.0.9 dev h0 onlink proto 80',
      RTM_NEWROUTE,
      ADD,
      {
        family: 4,
        dst: '10.65.3.0',
        dstLen: 26,
        protocol: 80,
        nexthops: [{ gateway: '172.16.0.9', oif: H0, onlink: true }],
      },
    ],
    [
      'ip route add 10.65.4.0/26 proto 80 nexthop via 192.168.0.2 dev h0 weight 1 nexthop via 192.168.0.3 dev h0 weight 2',
      RTM_NEWROUTE,
      ADD,
      {
        family: 4,
        dst: '10.65.4.0',
        dstLen: 26,
        protocol: 80,
        nexthops: [
          { gateway: '192.168.0.2', oif: H0 },
          { gateway: '192.168.0.3', oif: H0, weight: 2 },
        ],
      },
    ],
    [
      'ip route add 10.65.5.7/32 dev h0 scope link proto 80',
      RTM_NEWROUTE,
      ADD,
      { family: 4, dst: '10.65.5.7', dstLen: 32, protocol: 80, nexthops: [{ oif: H0 }] },
    ],
    [
      'ip route add 10.65.6.0/26 via 192.168.0.2 dev h0 table 1000 metric 100 mtu 1400',
      RTM_NEWROUTE,
      ADD,
      {
        family: 4,
        dst: '10.65.6.0',
        dstLen: 26,
        table: 1000,
        priority: 100,
        metrics: { mtu: 1400 },
        nexthops: [{ gateway: '192.168.0.2', oif: H0 }],
      },
    ],
    [
      'ip route add fd00:65::/122 via fd00::2 dev h0 proto 80',
      RTM_NEWROUTE,
      ADD,
      { family: 6, dst: 'fd00:65::', dstLen: 122, protocol: 80, nexthops: [{ gateway: 'fd00::2', oif: H0 }] },
    ],
    [
      'ip route del 10.65.1.0/26 proto 80',
      RTM_DELROUTE,
      SET,
      { family: 4, dst: '10.65.1.0', dstLen: 26, protocol: 80 },
    ],
  ];
  for (const [command, type, flags, spec] of cases) {
    it(`encodes_${command.replace(/[^a-z0-9]+/gi, '_')}`, () => {
      const { ours, ip } = encodeLike(command, (w, seq) => encodeRoute(w, type, flags, seq, spec));
      assert.equal(ours.toString('hex'), ip.toString('hex'));
    });
  }

  it('decodes_what_it_encodes_for_every_captured_route', () => {
    for (const [command, , , spec] of cases) {
      const ip = ipVector(command);
      const r = decodeRoute(ip, only(ip));
      assert.ok(r, command);
      assert.equal(r.dst, spec.dst);
      assert.equal(r.dstLen, spec.dstLen);
      assert.equal(r.family, spec.family);
      assert.equal(r.protocol, spec.protocol ?? (command.includes(' del ') ? 0 : 3));
      assert.deepEqual(r.nexthops, spec.nexthops ?? []);
      assert.equal(r.type, spec.type ?? (command.includes(' del ') ? 'unspec' : 'unicast'));
      if (spec.table !== undefined) assert.equal(r.table, spec.table);
      if (spec.priority !== undefined) assert.equal(r.priority, spec.priority);
      if (spec.metrics !== undefined) assert.deepEqual(r.metrics, spec.metrics);
    }
  });
});

/** A view's fields as plain data, for comparing two views. */
function viewFields(v: RouteView): Record<string, unknown> {
  const hops = [];
  for (let i = 0; i < v.hopCount; i++)
    hops.push({
      oif: v.hopOif[i],
      onlink: v.onlink(i),
      weight: v.hopWeight[i],
      gateway:
        v.hopGatewayLen[i] === 0 ? [] : [...v.hopGateway.subarray(4 * i, 4 * i + v.hopGatewayLen[i]! / 4)],
    });
  return {
    family: v.family,
    dstLen: v.dstLen,
    table: v.table,
    protocol: v.protocol,
    scope: v.scope,
    type: v.type,
    flags: v.flags,
    priority: v.priority,
    dst: [...v.dst],
    hops,
    hasPrefsrc: v.hasPrefsrc,
    hasMetrics: v.hasMetrics,
  };
}

describe('route dump visitor (RouteView)', () => {
  const routeSpecArb: fc.Arbitrary<RouteSpec> = fc
    .record({
      family: fc.constantFrom(4 as const, 6 as const),
      a: fc.nat(0xffffff),
      dstLen: fc.integer({ min: 0, max: 32 }),
      table: fc.oneof(fc.constant(254), fc.integer({ min: 1, max: 5000 })),
      protocol: fc.integer({ min: 1, max: 255 }),
      type: fc.constantFrom('unicast' as const, 'blackhole' as const, 'unreachable' as const),
      priority: fc.option(fc.nat(), { nil: undefined }),
      mtu: fc.option(fc.integer({ min: 68, max: 9000 }), { nil: undefined }),
      prefsrc: fc.boolean(),
      hops: fc.array(
        fc.record({
          oif: fc.integer({ min: 1, max: 1000 }),
          gw: fc.option(fc.nat(0xffff), { nil: undefined }),
          onlink: fc.boolean(),
          weight: fc.integer({ min: 1, max: 256 }),
        }),
        { maxLength: 12 },
      ),
    })
    .map((x): RouteSpec => {
      const ip = (n: number): string =>
        x.family === 4
          ? `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`
          : `fd00:${(n >> 16).toString(16)}::${(n & 0xffff).toString(16)}`;
      const single = x.hops.length === 1;
      return {
        family: x.family,
        dst: ip(x.a),
        dstLen: x.family === 4 ? x.dstLen : 4 * x.dstLen,
        table: x.table,
        protocol: x.protocol,
        type: x.type,
        ...(x.priority !== undefined ? { priority: x.priority } : {}),
        ...(x.mtu !== undefined ? { metrics: { mtu: x.mtu } } : {}),
        ...(x.prefsrc ? { prefsrc: ip(1) } : {}),
        nexthops: x.hops.map((h) => ({
          oif: h.oif,
          ...(h.gw !== undefined ? { gateway: ip(h.gw + x.a) } : {}),
          ...(h.onlink ? { onlink: true } : {}),
          ...(single ? {} : { weight: h.weight }),
        })),
      };
    });

  it('decodes_every_captured_route_as_decode_route_reads_it', () => {
    for (const v of [
      'ip route add 10.65.1.0/26 via 192.168.0.2 dev h0 proto 80',
      'ip route add blackhole 10.65.2.0/26 proto 80',
      'ip route add 10.65.3.0/26 via 172.16.0.9 dev h0 onlink proto 80',
      'ip route add 10.65.4.0/26 proto 80 nexthop via 192.168.0.2 dev h0 weight 1 nexthop via 192.168.0.3 dev h0 weight 2',
      'ip route add 10.65.5.7/32 dev h0 scope link proto 80',
      'ip route add 10.65.6.0/26 via 192.168.0.2 dev h0 table 1000 metric 100 mtu 1400',
      'ip route add fd00:65::/122 via fd00::2 dev h0 proto 80',
      'ip route del 10.65.1.0/26 proto 80',
    ]) {
      const ip = ipVector(v);
      const h = only(ip);
      const view = new RouteView();
      assert.equal(decodeRouteView(ip, h, view), true, v);
      assert.deepEqual(viewFields(view), viewFields(new RouteView().assign(decodeRoute(ip, h)!)), v);
      assert.deepEqual(view.toInfo(), decodeRoute(ip, h), v);
    }
  });

  it('agrees_with_decode_route_on_random_routes_through_one_reused_view', () => {
    const view = new RouteView(); // reused, as a dump reuses it: nothing may leak between routes
    fc.assert(
      fc.property(routeSpecArb, (spec) => {
        const w = new NlWriter(64);
        encodeRoute(w, RTM_NEWROUTE, ADD, 1, spec);
        const b = Buffer.from(w.view());
        const h = only(b);
        assert.equal(decodeRouteView(b, h, view), true);
        const info = decodeRoute(b, h)!;
        assert.deepEqual(viewFields(view), viewFields(new RouteView().assign(info)));
        assert.deepEqual(view.toInfo(), info);
      }),
      { numRuns: 500 },
    );
  });

  it('fails_exactly_where_decode_route_fails_on_every_truncation', () => {
    const ip = ipVector(
      'ip route add 10.65.4.0/26 proto 80 nexthop via 192.168.0.2 dev h0 weight 1 nexthop via 192.168.0.3 dev h0 weight 2',
    );
    const mtu = ipVector('ip route add 10.65.6.0/26 via 192.168.0.2 dev h0 table 1000 metric 100 mtu 1400');
    for (const vector of [ip, mtu])
      for (let n = 16; n < vector.length; n++) {
        const b = Buffer.from(vector.subarray(0, n));
        b.writeUInt32LE(n, 0);
        const h = only(b);
        const outcome = (fn: () => unknown): string => {
          try {
            fn();
            return 'ok';
          } catch (e) {
            assert.ok(e instanceof NetlinkProtocolError, String(e));
            return 'protocol error';
          }
        };
        assert.equal(
          outcome(() => decodeRouteView(b, h, new RouteView())),
          outcome(() => decodeRoute(b, h)),
          `truncated to ${n} bytes`,
        );
      }
  });

  it('leaves_routes_of_other_families_to_the_caller', () => {
    const ip = Buffer.from(ipVector('ip route add blackhole 10.65.2.0/26 proto 80'));
    ip[16] = 28; // AF_MPLS
    assert.equal(decodeRouteView(ip, only(ip), new RouteView()), false);
  });
});

describe('link, address and neighbour requests equal the bytes ip sends', () => {
  it('encodes_a_veth_pair_like_ip_link_add_type_veth_peer', () => {
    const { ours, ip } = encodeLike('ip link add name cali1 type veth peer name eth9', (w, seq) =>
      encodeNewLink(w, RTM_NEWLINK, ADD, seq, { kind: 'veth', name: 'cali1', peer: { name: 'eth9' } }),
    );
    assert.equal(ours.toString('hex'), ip.toString('hex'));
  });

  it('encodes_a_vxlan_device_with_vni_port_local_and_learning_off', () => {
    const { ours, ip } = encodeLike(
      'ip link add name vx0 type vxlan id 4096 dstport 4789 local 192.168.0.1 nolearning',
      (w, seq) =>
        encodeNewLink(w, RTM_NEWLINK, ADD, seq, {
          kind: 'vxlan',
          name: 'vx0',
          vxlan: { id: 4096, port: 4789, local: '192.168.0.1', learning: false },
        }),
    );
    // ip writes the vxlan attributes in its own order; compare decoded, then the bytes of
    // everything but IFLA_INFO_DATA's order
    const a = decodeLink(ours, only(ours));
    const b = decodeLink(ip, only(ip));
    assert.deepEqual(a, b);
    assert.equal(ours.length, ip.length);
  });

  it('encodes_link_set_mtu_and_down_like_ip_link_set', () => {
    const mtu = encodeLike('ip link set h1 mtu 1450', (w, seq) =>
      encodeSetLink(w, RTM_NEWLINK, SET, seq, H1, { mtu: 1450 }),
    );
    assert.equal(mtu.ours.toString('hex'), mtu.ip.toString('hex'));
    const down = encodeLike('ip link set h1 down', (w, seq) =>
      encodeSetLink(w, RTM_NEWLINK, SET, seq, H1, { up: false }),
    );
    assert.equal(down.ours.toString('hex'), down.ip.toString('hex'));
  });

  it('encodes_an_address_like_ip_addr_add', () => {
    const { ours, ip } = encodeLike('ip addr add 10.0.0.1/32 dev h1', (w, seq) =>
      encodeAddress(w, RTM_NEWADDR, ADD, seq, { family: 4, index: H1, address: '10.0.0.1', prefixLen: 32 }),
    );
    assert.equal(ours.toString('hex'), ip.toString('hex'));
    assert.deepEqual(decodeAddress(ip, only(ip)), {
      family: 4,
      index: H1,
      address: '10.0.0.1',
      prefixLen: 32,
      scope: 0,
      flags: 0,
    });
  });

  it('encodes_a_permanent_arp_entry_like_ip_neigh_replace', () => {
    const { ours, ip } = encodeLike(
      'ip neigh replace 10.65.1.1 lladdr 66:77:88:99:aa:bb dev h0 nud permanent',
      (w, seq) =>
        encodeNeighbour(w, RTM_NEWNEIGH, SET | NLM_F_CREATE | NLM_F_REPLACE, seq, {
          family: 4,
          index: H0,
          dst: '10.65.1.1',
          lladdr: '66:77:88:99:aa:bb',
          state: NUD_PERMANENT,
        }),
    );
    assert.equal(ours.toString('hex'), ip.toString('hex'));
  });

  it('encodes_a_vxlan_fdb_entry_like_bridge_fdb_replace', () => {
    const { ours, ip } = encodeLike(
      'bridge fdb replace 66:77:88:99:aa:cc dev vx0 dst 192.168.0.9 self permanent',
      (w, seq) =>
        encodeNeighbour(w, RTM_NEWNEIGH, SET | NLM_F_CREATE | NLM_F_REPLACE, seq, {
          family: 'bridge',
          index: 6,
          lladdr: '66:77:88:99:aa:cc',
          dst: '192.168.0.9',
          state: NUD_PERMANENT | NUD_NOARP,
          flags: NTF_SELF,
        }),
    );
    // bridge(8) writes NDA_LLADDR before NDA_DST: compare decoded and length
    assert.deepEqual(decodeNeighbour(ours, only(ours)), decodeNeighbour(ip, only(ip)));
    assert.equal(ours.length, ip.length);
    const m = decodeRtnl(ip, only(ip));
    assert.equal(m.kind, 'neighbour');
  });
});

describe('acks and errors', () => {
  function errorMessage(errno: number, seq: number, tlvs: Buffer, capped: boolean): Buffer {
    const w = new NlWriter(64);
    const start = w.begin(NLMSG_ERROR, (capped ? 0x100 : 0) | (tlvs.length > 0 ? 0x200 : 0), seq);
    const at = w.fixed(4 + 16);
    w.buf.writeInt32LE(-errno, at);
    w.buf.writeUInt32LE(16, at + 4);
    w.buf.writeUInt16LE(RTM_NEWROUTE, at + 8);
    w.buf.writeUInt32LE(seq, at + 12);
    w.ensure(tlvs.length);
    tlvs.copy(w.buf, w.length);
    w.length += tlvs.length;
    w.end(start);
    return Buffer.from(w.view());
  }

  it('decodes_an_extended_ack_with_the_kernel_message_and_attribute_offset', () => {
    const w = new NlWriter(64);
    w.string(1, 'Nexthop has invalid gateway');
    w.u32(2, 36);
    const b = errorMessage(22, 77, Buffer.from(w.view()), true);
    assert.deepEqual(decodeAck(b, only(b)), {
      error: -22,
      seq: 77,
      message: 'Nexthop has invalid gateway',
      offset: 36,
    });
  });

  it('decodes_a_plain_ack', () => {
    const b = errorMessage(0, 5, Buffer.alloc(0), true);
    assert.deepEqual(decodeAck(b, only(b)), { error: 0, seq: 5 });
  });
});

describe('bounded readers', () => {
  it('refuses_a_message_whose_length_overruns_the_datagram', () => {
    const ip = Buffer.from(ipVector('ip route add blackhole 10.65.2.0/26 proto 80'));
    ip.writeUInt32LE(ip.length + 4, 0);
    assert.throws(() => forEachMessage(ip, 0, ip.length, () => undefined), NetlinkProtocolError);
  });

  it('refuses_an_attribute_whose_length_overruns_its_message', () => {
    const ip = Buffer.from(ipVector('ip route add 10.65.1.0/26 via 192.168.0.2 dev h0 proto 80'));
    ip.writeUInt16LE(200, 28); // RTA_DST's nla_len
    assert.throws(() => decodeRoute(ip, only(ip)), NetlinkProtocolError);
  });

  it('never_reads_out_of_bounds_on_arbitrary_bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const b = Buffer.from(bytes);
        try {
          forEachMessage(b, 0, b.length, (h) => {
            decodeRtnl(b, h);
          });
        } catch (e) {
          if (!(e instanceof NetlinkProtocolError)) throw e;
        }
      }),
    );
  });

  it('decodes_every_truncation_of_a_valid_route_as_an_error_or_a_route', () => {
    const ip = ipVector(
      'ip route add 10.65.4.0/26 proto 80 nexthop via 192.168.0.2 dev h0 weight 1 nexthop via 192.168.0.3 dev h0 weight 2',
    );
    for (let n = 0; n < ip.length; n++) {
      const b = Buffer.from(ip.subarray(0, n));
      if (n >= 16) b.writeUInt32LE(n, 0);
      try {
        forEachMessage(b, 0, b.length, (h) => decodeRtnl(b, h));
      } catch (e) {
        assert.ok(e instanceof NetlinkProtocolError, String(e));
      }
    }
  });
});

describe('addresses', () => {
  it('formats_ipv6_canonically_and_round_trips', () => {
    const b = Buffer.alloc(16);
    for (const [text, canon] of [
      ['fd00:65::', 'fd00:65::'],
      ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
      ['::', '::'],
      ['::1', '::1'],
      ['1:0:0:1:0:0:0:1', '1:0:0:1::1'],
      ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'],
      ['::ffff:10.1.2.3', '::ffff:10.1.2.3'],
      ['fe80::1:2', 'fe80::1:2'],
    ] as const) {
      writeIpv6(b, 0, text);
      assert.equal(formatIpv6(b, 0), canon);
    }
  });

  it('round_trips_random_ipv6_addresses', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
        const b = Buffer.from(bytes);
        const out = Buffer.alloc(16);
        writeIpv6(out, 0, formatIpv6(b, 0));
        assert.deepEqual(out, b);
      }),
    );
  });

  it('rejects_malformed_addresses', () => {
    const w = new NlWriter(64);
    for (const dst of ['10.1.2', '10.1.2.256', '10.01.2.3', '1.2.3.4.5', 'x', '']) {
      assert.throws(
        () => encodeRoute(w, RTM_NEWROUTE, ADD, 1, { family: 4, dst, dstLen: 32 }),
        TypeError,
        dst,
      );
    }
    for (const dst of [':::', '1::2::3', '1:2:3:4:5:6:7:8:9', 'g::1', '1:2:3:4:5:6:7']) {
      assert.throws(
        () => encodeRoute(w, RTM_NEWROUTE, ADD, 1, { family: 6, dst, dstLen: 128 }),
        TypeError,
        dst,
      );
    }
    assert.throws(
      () => encodeRoute(w, RTM_NEWROUTE, ADD, 1, { family: 4, dst: '10.0.0.0', dstLen: 33 }),
      TypeError,
    );
  });

  it('reads_an_ipv4_address_as_a_number_exactly_where_write_ipv4_accepts_it', () => {
    const b = Buffer.alloc(4);
    const text = fc.oneof(
      fc.ipV4(),
      fc.stringMatching(/^[0-9.]{0,17}$/),
      fc.tuple(fc.nat(300), fc.nat(300), fc.nat(300), fc.nat(300)).map((p) => p.join('.')),
    );
    fc.assert(
      fc.property(text, (t) => {
        let written: number;
        try {
          writeIpv4(b, 0, t);
          written = b.readUInt32BE(0);
        } catch (e) {
          assert.ok(e instanceof TypeError);
          written = -1;
        }
        assert.equal(ipv4Value(t), written, t);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('dump requests', () => {
  it('puts_the_protocol_and_table_filters_in_the_rtmsg_header', () => {
    const w = new NlWriter(64);
    encodeRouteDump(w, 9, { family: 4, protocol: 80, table: 254 });
    const b = w.view();
    assert.equal(b.readUInt16LE(4), 26);
    assert.equal(b.readUInt16LE(6), 0x301);
    assert.deepEqual([...b.subarray(16, 28)], [2, 0, 0, 0, 254, 80, 0, 0, 0, 0, 0, 0]);
  });
});

describe('route lookups equal the bytes ip route get sends', () => {
  const cases: [string, RouteQuery][] = [
    ['ip route get 192.168.0.2', { family: 4, dst: '192.168.0.2' }],
    [
      'ip route get 192.168.0.2 ipproto udp dport 80',
      { family: 4, dst: '192.168.0.2', ipProto: 17, dport: 80 },
    ],
    ['ip -6 route get fd00::2 ipproto udp dport 80', { family: 6, dst: 'fd00::2', ipProto: 17, dport: 80 }],
  ];
  for (const [command, q] of cases) {
    it(`encodes_${command.replace(/[^a-z0-9]+/gi, '_')}`, () => {
      const { ours, ip } = encodeLike(command, (w, seq) => encodeRouteGet(w, NLM_F_REQUEST, seq, q));
      assert.equal(ours.toString('hex'), ip.toString('hex'));
    });
  }

  it('puts_source_interface_mark_and_uid_after_the_destination', () => {
    const w = new NlWriter(64);
    encodeRouteGet(w, NLM_F_REQUEST | NLM_F_ACK, 7, {
      family: 4,
      dst: '10.0.0.1',
      src: '10.0.0.2',
      oif: 3,
      mark: 9,
      uid: 1000,
      sport: 4000,
    });
    const b = w.view();
    assert.equal(b.readUInt16LE(4), 26);
    assert.equal(b.readUInt16LE(6), NLM_F_REQUEST | NLM_F_ACK);
    // family, dst_len 32, src_len 32 (a source is given), flags RTM_F_LOOKUP_TABLE
    assert.deepEqual([...b.subarray(16, 28)], [2, 32, 32, 0, 0, 0, 0, 0, 0, 0x10, 0, 0]);
    const attrs: [number, string][] = [];
    for (let p = 28; p < b.length;) {
      const len = b.readUInt16LE(p);
      attrs.push([b.readUInt16LE(p + 2), b.subarray(p + 4, p + len).toString('hex')]);
      p += (len + 3) & ~3;
    }
    assert.deepEqual(attrs, [
      [1, '0a000001'], // RTA_DST
      [2, '0a000002'], // RTA_SRC
      [4, '03000000'], // RTA_OIF
      [16, '09000000'], // RTA_MARK
      [25, 'e8030000'], // RTA_UID
      [28, '0fa0'], // RTA_SPORT, big-endian
    ]);
  });
});
