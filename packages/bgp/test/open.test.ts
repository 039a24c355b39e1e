import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Capability, OpenMessage } from '../src/wire/index.js';
import {
  AS_TRANS,
  ErrorCode,
  OpenSubcode,
  asn,
  decodeFrame,
  encodeMessage,
  makeOpen,
  openAsn,
  toHex,
} from '../src/wire/index.js';
import { frame, hex, notificationOf } from './helpers.js';

const ALL_CAPS: Capability[] = [
  { kind: 'multiprotocol', afi: 1, safi: 1 },
  { kind: 'multiprotocol', afi: 2, safi: 1 },
  { kind: 'routeRefresh' },
  { kind: 'enhancedRouteRefresh' },
  { kind: 'fourOctetAs', asn: asn(4200000000) },
  {
    kind: 'gracefulRestart',
    restarting: true,
    notification: true,
    restartTime: 4095,
    families: [
      { afi: 1, safi: 1, forwardingPreserved: true },
      { afi: 2, safi: 1, forwardingPreserved: false },
    ],
  },
  {
    kind: 'addPath',
    families: [
      { afi: 1, safi: 1, mode: 'both' },
      { afi: 2, safi: 1, mode: 'receive' },
    ],
  },
  { kind: 'extendedMessage' },
  { kind: 'extendedNextHop', families: [{ afi: 1, safi: 1, nextHopAfi: 2 }] },
  { kind: 'fqdn', hostname: 'node-1', domainName: 'example.com' },
  { kind: 'unknown', code: 128, value: new Uint8Array(0) },
  { kind: 'unknown', code: 200, value: Uint8Array.of(1, 2, 3) },
];

function openBody(params: number[], opts: { version?: number; hold?: number; id?: number[] } = {}): number[] {
  return [opts.version ?? 4, 0xfd, 0xe8, 0, opts.hold ?? 90, ...(opts.id ?? [1, 2, 3, 4]), ...params];
}

describe('OPEN', () => {
  it('round-trips every capability kind', () => {
    const open: OpenMessage = {
      type: 'open',
      version: 4,
      myAutonomousSystem: AS_TRANS,
      holdTime: 90,
      bgpIdentifier: '10.0.0.1',
      capabilities: ALL_CAPS,
    };
    assert.deepEqual(decodeFrame(encodeMessage(open)), open);
  });

  it('puts AS_TRANS in the 2-octet field for a 4-octet ASN and reads the ASN back from the capability', () => {
    const o = makeOpen({ asn: asn(4200000001), holdTime: 9, bgpIdentifier: '1.1.1.1', capabilities: [] });
    assert.equal(o.myAutonomousSystem, 23456);
    const back = decodeFrame(encodeMessage(o));
    assert.equal(back.type === 'open' && openAsn(back), 4200000001);
    const small = makeOpen({ asn: asn(65001), holdTime: 9, bgpIdentifier: '1.1.1.1', capabilities: [] });
    assert.equal(small.myAutonomousSystem, 65001);
  });

  it('decodes capabilities split over several optional parameters', () => {
    // Two Capabilities parameters, as some older speakers send: MP IPv4 and route refresh.
    const body = openBody([12, 2, 6, 1, 4, 0, 1, 0, 1, 2, 2, 2, 0]);
    const m = decodeFrame(frame(1, body));
    assert.equal(m.type, 'open');
    assert.deepEqual(m.type === 'open' && m.capabilities, [
      { kind: 'multiprotocol', afi: 1, safi: 1 },
      { kind: 'routeRefresh' },
    ]);
  });

  it('uses RFC 9072 extended optional parameters only when they exceed 255 bytes', () => {
    const many: Capability[] = Array.from({ length: 70 }, (_, i) => ({
      kind: 'multiprotocol',
      afi: 1,
      safi: i + 1,
    }));
    const o = makeOpen({ asn: asn(65000), holdTime: 90, bgpIdentifier: '1.1.1.1', capabilities: many });
    const bytes = encodeMessage(o);
    assert.equal(bytes[28], 255, 'Non-Ext OP Len');
    assert.equal(bytes[29], 255, 'Non-Ext OP Type');
    assert.deepEqual(decodeFrame(bytes), o);
    const few = encodeMessage(
      makeOpen({ asn: asn(65000), holdTime: 90, bgpIdentifier: '1.1.1.1', capabilities: [] }),
    );
    assert.notEqual(few[28], 255);
  });

  it('decodes an RFC 9072 OPEN with a small extended parameter', () => {
    // Non-Ext OP Len 255, Non-Ext OP Type 255, Ext length 7, param type 2 len 4: route refresh + ERR.
    const body = openBody([255, 255, 0, 7, 2, 0, 4, 2, 0, 70, 0]);
    const m = decodeFrame(frame(1, body));
    assert.deepEqual(m.type === 'open' && m.capabilities, [
      { kind: 'routeRefresh' },
      { kind: 'enhancedRouteRefresh' },
    ]);
  });

  const errors: [string, number[], number, number, number[]?][] = [
    [
      'version 3',
      openBody([0], { version: 3 }),
      ErrorCode.OpenMessage,
      OpenSubcode.UnsupportedVersionNumber,
      [0, 4],
    ],
    ['hold time 1', openBody([0], { hold: 1 }), ErrorCode.OpenMessage, OpenSubcode.UnacceptableHoldTime],
    ['hold time 2', openBody([0], { hold: 2 }), ErrorCode.OpenMessage, OpenSubcode.UnacceptableHoldTime],
    [
      'BGP identifier 0',
      openBody([0], { id: [0, 0, 0, 0] }),
      ErrorCode.OpenMessage,
      OpenSubcode.BadBgpIdentifier,
    ],
    [
      'an authentication parameter',
      openBody([3, 1, 1, 0]),
      ErrorCode.OpenMessage,
      OpenSubcode.UnsupportedOptionalParameter,
    ],
    ['params length past the end', openBody([10, 2, 2, 2, 0]), ErrorCode.OpenMessage, 0],
    ['params length short of the end', openBody([2, 2, 0, 99]), ErrorCode.OpenMessage, 0],
    ['a parameter overrunning', openBody([4, 2, 9, 2, 0]), ErrorCode.OpenMessage, 0],
    ['a capability overrunning its parameter', openBody([4, 2, 2, 1, 4]), ErrorCode.OpenMessage, 0],
    ['MP capability of length 3', openBody([5, 2, 3, 1, 3, 0]), ErrorCode.OpenMessage, 0],
    ['4-octet AS capability of length 2', openBody([6, 2, 4, 65, 2, 0, 1]), ErrorCode.OpenMessage, 0],
    ['route refresh capability with a value', openBody([5, 2, 3, 2, 1, 0]), ErrorCode.OpenMessage, 0],
    ['graceful restart of length 3', openBody([7, 2, 5, 64, 3, 0, 0, 0]), ErrorCode.OpenMessage, 0],
    ['ADD-PATH mode 4', openBody([8, 2, 6, 69, 4, 0, 1, 1, 4]), ErrorCode.OpenMessage, 0],
    ['RFC 9072 length past the end', openBody([255, 255, 0, 9, 2, 0, 2, 2, 0]), ErrorCode.OpenMessage, 0],
    ['FQDN with trailing bytes', openBody([7, 2, 5, 73, 3, 0, 0, 9]), ErrorCode.OpenMessage, 0],
  ];
  for (const [name, body, code, subcode, data] of errors) {
    it(`rejects ${name} with ${code}/${subcode}`, () => {
      const e = notificationOf(() => decodeFrame(frame(1, body)));
      assert.equal(e.code, code);
      assert.equal(e.subcode, subcode, e.message);
      assert.equal(e.action, 'session-reset');
      if (data !== undefined) assert.deepEqual([...e.data], data);
    });
  }

  it('keeps an unknown capability as bytes', () => {
    const m = decodeFrame(frame(1, openBody([6, 2, 4, 99, 2, 0xab, 0xcd])));
    assert.deepEqual(m.type === 'open' && m.capabilities, [
      { kind: 'unknown', code: 99, value: hex('abcd') },
    ]);
  });

  it('encodes a minimal OPEN field by field (RFC 4271 §4.2)', () => {
    const o: OpenMessage = {
      type: 'open',
      version: 4,
      myAutonomousSystem: 64512,
      holdTime: 180,
      bgpIdentifier: '10.0.0.1',
      capabilities: [],
    };
    assert.equal(toHex(encodeMessage(o)), 'ffffffffffffffffffffffffffffffff001d0104fc0000b40a00000100');
  });
});
