// Listen ranges (dynamic peers): the prefix matcher and the settings of a dynamic peer.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ListenRange } from '../src/speaker/index.js';
import {
  ListenRanges,
  covers,
  dynamicPeerSettings,
  parseIpAddress,
  parseIpPrefix,
} from '../src/speaker/index.js';
import { asn } from '../src/wire/index.js';

const AS = 65000;

const range = (name: string, prefix: string, extra: Partial<ListenRange> = {}): ListenRange => ({
  name,
  prefix,
  peer: { asn: asn(AS) },
  ...extra,
});

describe('listen ranges: matching', () => {
  it('picks the most specific range holding the address, IPv4 and IPv6', () => {
    const t = new ListenRanges([
      range('wide', '10.0.0.0/8'),
      range('narrow', '10.1.2.0/24'),
      range('host', '10.1.2.3/32'),
      range('all6', '::/0'),
      range('six', 'fd00::/16'),
      range('six-narrow', 'fd00:1:2:3::/64'),
    ]);
    const m = (a: string) => t.match(a)?.name;
    assert.equal(m('10.1.2.3'), 'host');
    assert.equal(m('10.1.2.4'), 'narrow');
    assert.equal(m('10.200.0.1'), 'wide');
    assert.equal(m('11.0.0.1'), undefined);
    assert.equal(m('fd00:1:2:3::9'), 'six-narrow');
    assert.equal(m('fd00:1:2:4::1'), 'six');
    assert.equal(m('2001:db8::1'), 'all6');
    assert.equal(m('not an address'), undefined);
    assert.equal(new ListenRanges([]).match('10.0.0.1'), undefined);
  });

  it('compares words, across word boundaries', () => {
    const p = (s: string) => parseIpPrefix(s)!;
    const a = (s: string) => parseIpAddress(s)!;
    assert.ok(covers(p('2001:db8:8000::/33'), a('2001:db8:ffff::1')));
    assert.ok(!covers(p('2001:db8:8000::/33'), a('2001:db8:7fff::1')));
    assert.ok(covers(p('fd00::1:0:0/96'), a('fd00::1:7f00:1')));
    assert.ok(!covers(p('fd00::1:0:0/96'), a('fd00::2:7f00:1')));
    assert.ok(covers(p('127.0.9.2/31'), a('127.0.9.3')));
    assert.ok(!covers(p('127.0.9.2/31'), a('127.0.9.4')));
    assert.ok(covers(p('0.0.0.0/0'), a('255.255.255.255')));
    assert.ok(!covers(p('0.0.0.0/0'), a('::1')), 'families never mix');
    assert.ok(!covers(p('10.0.0.0/24'), p('10.0.0.0/16')), 'a wider prefix is not inside');
  });

  it('refuses a prefix that is none, host bits, and one prefix twice', () => {
    assert.throws(() => new ListenRanges([range('a', '10.0.0.1/24')]), TypeError);
    assert.throws(() => new ListenRanges([range('a', '10.0.0.0/33')]), TypeError);
    assert.throws(() => new ListenRanges([range('a', 'fd00::/16'), range('b', 'fd00:0::/16')]), TypeError);
    assert.throws(() => new ListenRanges([range('a', '10.0.0.0/8'), range('a', '11.0.0.0/8')]), TypeError);
  });

  it('keeps a dynamic peer only under a range of the same name and settings; diffs by name', () => {
    const dyn = range('dyn', '10.0.0.0/24');
    const before = new ListenRanges([dyn, range('gone', '10.9.0.0/24')]);
    const after = new ListenRanges([
      { ...dyn, prefix: '10.0.0.0/16', maxPeers: 3 },
      range('narrow', '10.0.0.0/28', { peer: { asn: asn(65001) } }),
      range('new', '10.8.0.0/24'),
    ]);
    assert.equal(after.keeps(dyn, '10.0.0.200'), true, 'a new prefix or maxPeers alone');
    assert.equal(after.keeps(dyn, '10.0.0.2'), false, 'a more specific range took the address');
    assert.equal(after.keeps(dyn, '10.9.0.2'), false);
    const held = new ListenRanges([range('dyn', '10.0.0.0/24', { peer: { asn: asn(AS), holdTime: 30 } })]);
    assert.equal(held.keeps(dyn, '10.0.0.200'), false, 'other peer settings');
    const d = before.diff(after);
    assert.deepEqual(
      [d.added.map((r) => r.name), d.removed.map((r) => r.name), d.changed.map((c) => c.after.name)],
      [['narrow', 'new'], ['gone'], ['dyn']],
    );
  });

  it('makes a passive peer named range_address from the template', () => {
    const r = range('dyn', '10.0.0.0/24', { peer: { asn: asn(AS), holdTime: 30 } });
    assert.deepEqual(dynamicPeerSettings(r, '10.0.0.7', '10.0.0.1'), {
      name: 'dyn_10.0.0.7',
      address: '10.0.0.7',
      localAddress: '10.0.0.1',
      asn: AS,
      holdTime: 30,
      passive: true,
    });
    const own = range('dyn', '10.0.0.0/24', { peer: { asn: asn(AS), localAddress: '10.0.0.254' } });
    assert.equal(dynamicPeerSettings(own, '10.0.0.7', '10.0.0.1').localAddress, '10.0.0.254');
  });
});
