// Address parsing (src/schema/ip.ts), checked against node:net's isIP for which strings are
// addresses and against the WHATWG URL serializer (RFC 5952 text) for what they mean, with
// fast-check: random strings over the characters addresses are made of, and real addresses
// in every spelling fast-check generates.
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatIp, parseCidr, parseIp } from '../src/schema/ip.js';

/** The canonical text of a valid address, by another implementation. */
const canonical = (s: string): string =>
  s.includes(':') ? new URL(`http://[${s}]/`).hostname.slice(1, -1) : s;

const chars = fc.constantFrom(...'0123456789abcdefABCDEF:.'.split(''));
/** Near-addresses: groups (empty, hex, too long, decimal) joined by colons, maybe a quad tail. */
const nearV6 = fc
  .tuple(
    fc.array(fc.oneof(fc.constant(''), fc.stringMatching(/^[0-9a-fA-F]{1,5}$/)), { maxLength: 10 }),
    fc.option(fc.array(fc.stringMatching(/^\d{1,3}$/), { minLength: 3, maxLength: 5 })),
  )
  .map(([gs, quad]) => gs.join(':') + (quad === null ? '' : `:${quad.join('.')}`));

describe('parseIp', () => {
  it('accepts_exactly_what_node_isIP_accepts_save_zone_ids', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: chars, maxLength: 45 }), nearV6), (s) => {
        assert.equal(parseIp(s) !== undefined, isIP(s) !== 0, JSON.stringify(s));
      }),
      { numRuns: 20_000 },
    );
  });

  it('reads_every_spelling_of_an_address_as_the_url_serializer_does', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (s) => {
        const a = parseIp(s);
        assert.ok(a !== undefined, s);
        assert.equal(a.family, s.includes(':') ? 6 : 4);
        assert.equal(formatIp(a), canonical(s));
        assert.deepEqual(parseIp(formatIp(a)), a);
      }),
      { numRuns: 5_000 },
    );
  });

  it('reads_the_forms_of_rfc_4291_and_refuses_the_near_misses', () => {
    const v6 = (s: string): string | undefined => parseIp(s)?.value.toString(16);
    assert.equal(v6('::'), '0');
    assert.equal(v6('1::'), '10000000000000000000000000000');
    assert.equal(v6('::ffff:1.2.3.4'), 'ffff01020304');
    assert.equal(v6('1:2:3:4:5:6:1.2.3.4'), '10002000300040005000601020304');
    assert.equal(v6('FD00::A'), 'fd00000000000000000000000000000a');
    assert.equal(v6('1:2:3:4:5:6:7::'), '10002000300040005000600070000');
    for (const bad of [
      '',
      ':',
      ':::',
      '1:::2',
      '1::2::3',
      ':1::',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7:8::',
      '12345::',
      '1.2.3.4::',
      '::1.2.3',
      '::01.2.3.4',
      '01.2.3.4',
      '1.2.3.256',
      '1.2.3.4.5',
      'fe80::1%eth0',
      ' 1.2.3.4',
    ])
      assert.equal(parseIp(bad), undefined, JSON.stringify(bad));
  });

  it('parses_cidrs_through_it', () => {
    assert.deepEqual(parseCidr('10.65.1.7/26'), { family: 4, value: 0x0a410100n, len: 26, hostBits: true });
    assert.equal(parseCidr('fd00::/129'), undefined);
    assert.equal(parseCidr('fd00::'), undefined);
  });
});
