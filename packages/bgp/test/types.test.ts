import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  PrefixList,
  asn,
  formatIpv6Bytes,
  formatIpv4,
  parseAfiSafiName,
  parseIpv4,
  parseIpv6,
  parsePrefix,
} from '../src/wire/index.js';

describe('addresses and prefixes', () => {
  it('parses dotted-quad IPv4 strictly', () => {
    assert.equal(parseIpv4('0.0.0.0'), 0);
    assert.equal(parseIpv4('255.255.255.255'), 0xffffffff);
    assert.equal(parseIpv4('192.0.2.1'), 0xc0000201);
    for (const bad of [
      '',
      '1.2.3',
      '1.2.3.4.5',
      '256.0.0.1',
      '01.2.3.4',
      '1..2.3',
      '1.2.3.4 ',
      'a.b.c.d',
      '1.2.3.-4',
      '.1.2.3',
    ]) {
      assert.equal(parseIpv4(bad), undefined, JSON.stringify(bad));
    }
    assert.equal(formatIpv4(0xc0000201), '192.0.2.1');
  });

  it('parses IPv6 in every RFC 4291 §2.2 form and prints RFC 5952 text', () => {
    const cases: [string, string][] = [
      ['2001:db8::1', '2001:db8::1'],
      ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
      ['::', '::'],
      ['::1', '::1'],
      ['fe80::', 'fe80::'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
      ['::ffff:192.0.2.1', '::ffff:c000:201'],
      ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ];
    for (const [input, canonical] of cases) {
      const b = parseIpv6(input);
      assert.ok(b !== undefined, input);
      assert.equal(formatIpv6Bytes(b, 0), canonical, input);
    }
    for (const bad of ['', ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', 'g::1', '1:2:3:4:5:6:7']) {
      assert.equal(parseIpv6(bad), undefined, JSON.stringify(bad));
    }
  });

  it('parses prefixes and refuses host bits', () => {
    assert.deepEqual(parsePrefix('10.0.0.0/8'), { afi: 1, words: [0x0a000000], len: 8 });
    assert.equal(parsePrefix('10.0.0.1/8'), undefined);
    assert.equal(parsePrefix('10.0.0.0/33'), undefined);
    assert.equal(parsePrefix('2001:db8::/32')?.afi, 2);
    assert.equal(parsePrefix('2001:db8::1/64'), undefined);
    assert.throws(() => PrefixList.parse(1, ['2001:db8::/32']), /not an IPv4 prefix/);
    assert.throws(() => PrefixList.parse(1, ['10.0.0.0/8'], [1, 2]), /one path identifier per prefix/);
  });

  it('brands ASNs only in range', () => {
    assert.equal(asn(4294967295), 4294967295);
    assert.throws(() => asn(4294967296), RangeError);
    assert.throws(() => asn(-1), RangeError);
    assert.throws(() => asn(1.5), RangeError);
  });

  it('names families', () => {
    assert.deepEqual(parseAfiSafiName('ipv6-unicast'), { afi: 2, safi: 1 });
    assert.deepEqual(parseAfiSafiName('afi25-safi65'), { afi: 25, safi: 65 });
    assert.equal(parseAfiSafiName('ipv5-unicast'), undefined);
  });
});
