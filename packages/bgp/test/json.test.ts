import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  JsonMessageError,
  decodeFrame,
  encodeMessage,
  formatExtendedCommunity,
  messageFromJson,
  messageToJson,
  parseCommunity,
  parseExtendedCommunity,
  parseLargeCommunity,
} from '../src/wire/index.js';

describe('JSON forms', () => {
  it('writes communities, large and extended communities as engineers do', () => {
    assert.equal(parseCommunity('65000:100'), 0xfde80064);
    assert.equal(parseCommunity('no-export'), 0xffffff01);
    assert.equal(parseCommunity('65536:1'), undefined);
    assert.deepEqual(parseLargeCommunity('4200000000:1:2'), {
      globalAdministrator: 4200000000,
      localData1: 1,
      localData2: 2,
    });
    for (const [text, value] of [
      ['rt:65000:100', 0x0002fde800000064n],
      ['soo:192.0.2.1:7', 0x0103c00002010007n],
      ['rt:4200000000L:5', 0x0202fa56ea000005n],
      ['0x8006000000000000', 0x8006000000000000n],
    ] as const) {
      assert.equal(parseExtendedCommunity(text), value, text);
      assert.equal(formatExtendedCommunity(value), text);
    }
  });

  it('round-trips a full UPDATE through JSON', () => {
    const json = {
      type: 'update',
      withdrawnRoutes: ['10.9.0.0/16'],
      pathAttributes: {
        mpReachNlri: {
          afi: 2,
          safi: 1,
          nextHop: '2001:db8::1',
          linkLocalNextHop: 'fe80::1',
          nlri: ['2001:db8::/32'],
        },
        mpUnreachNlri: { afi: 2, safi: 1, withdrawnRoutes: ['2001:db8:1::/48'] },
        origin: 'incomplete',
        asPath: [{ type: 'sequence', asns: [65001, 4200000000] }],
        nextHop: '192.0.2.1',
        multiExitDisc: 0,
        localPref: 100,
        atomicAggregate: true,
        aggregator: { asn: 65001, address: '192.0.2.2' },
        communities: ['65000:100'],
        originatorId: '1.1.1.1',
        clusterList: ['2.2.2.2'],
        extendedCommunities: ['rt:65000:100'],
        largeCommunities: ['65000:1:2'],
        unknown: [{ flags: 192, typeCode: 99, value: 'beef' }],
      },
      nlri: ['10.0.0.0/24'],
    };
    const m = messageFromJson(json);
    assert.deepEqual(messageToJson(m), json);
    assert.deepEqual(messageToJson(decodeFrame(encodeMessage(m))), json);
  });

  it('names the field at fault', () => {
    const bad: [unknown, RegExp][] = [
      [{ type: 'update', nlri: ['10.0.0.1/24'] }, /\$\.nlri\[0\]: not an IPv4 prefix/],
      [
        { type: 'update', pathAttributes: { asPath: [{ type: 'sequence', asns: [-1] }] } },
        /\$\.pathAttributes\.asPath\[0\]\.asns\[0\]/,
      ],
      [
        { type: 'update', pathAttributes: { communities: ['1:2:3'] } },
        /\$\.pathAttributes\.communities\[0\]/,
      ],
      [
        { type: 'update', pathAttributes: { colour: 'red' } },
        /\$\.pathAttributes\.colour: not a path attribute/,
      ],
      [
        { type: 'open', myAutonomousSystem: 1, holdTime: 90, bgpIdentifier: '1.1.1' },
        /\$\.bgpIdentifier: expected an IPv4/,
      ],
      [{ type: 'hello' }, /\$\.type: expected open/],
      [
        {
          type: 'open',
          myAutonomousSystem: 1,
          holdTime: 90,
          bgpIdentifier: '1.1.1.1',
          capabilities: [{ kind: 'x' }],
        },
        /capabilities\[0\]\.kind/,
      ],
    ];
    for (const [input, re] of bad) {
      assert.throws(
        () => messageFromJson(input),
        (e: unknown) => e instanceof JsonMessageError && re.test(e.message),
      );
    }
  });

  it('builds a shutdown NOTIFICATION from its text', () => {
    const m = messageFromJson({ type: 'notification', code: 6, subcode: 2, shutdownCommunication: 'bye' });
    assert.deepEqual(messageToJson(m), {
      type: 'notification',
      code: 6,
      subcode: 2,
      codeName: 'Cease',
      subcodeName: 'Administrative Shutdown',
      data: '03627965',
      shutdownCommunication: 'bye',
    });
  });
});
