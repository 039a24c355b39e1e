// Listen ranges (dynamic peers): the prefix matcher, then a speaker on 127.0.9.1 taking
// bgp-ts speakers that dial it from 127.0.9.x over loopback TCP: routes both ways, the
// status table, strangers reset before OPEN, Bad Peer AS, maxPeers, a dynamic peer's end
// (with and without graceful restart), reconfiguration, and a TCP-MD5 prefix key with GTSM.

import assert from 'node:assert/strict';
import net from 'node:net';
import { afterEach, describe, it } from 'node:test';
import type { BestPathEvent } from '../src/rib/index.js';
import type { ListenRange, PeerSettings, SpeakerConfig } from '../src/speaker/index.js';
import {
  ListenRanges,
  Speaker,
  covers,
  dynamicPeerSettings,
  parseIpAddress,
  parseIpPrefix,
} from '../src/speaker/index.js';
import { asn } from '../src/wire/index.js';
import { until } from './helpers.js';

const HUB = '127.0.9.1';
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

/** A speaker with what the tests look at. */
class Node {
  readonly best = new Map<string, BestPathEvent>();
  /** NOTIFICATIONs received, as "code/subcode". */
  readonly notifications: string[] = [];
  /** Types of the messages received but KEEPALIVE. */
  readonly inbound: string[] = [];
  /** "address reason" per refused connection. */
  readonly refused: string[] = [];
  /** "+name" / "-name" as dynamic peers come and go. */
  readonly dynamic: string[] = [];
  readonly speaker: Speaker;
  constructor(config: SpeakerConfig) {
    this.speaker = new Speaker(
      config,
      {},
      {
        bestPath: (e) => {
          if (e.type === 'withdraw') this.best.delete(e.prefix);
          else this.best.set(e.prefix, e);
        },
        message: (_name, dir, type, _bytes, m) => {
          if (dir !== 'in' || type === 'keepalive') return;
          this.inbound.push(type);
          if (m?.type === 'notification') this.notifications.push(`${m.code}/${m.subcode}`);
        },
        refused: (address, reason) => this.refused.push(`${address} ${reason}`),
        dynamicPeer: (name, _range, change) => this.dynamic.push(`${change === 'added' ? '+' : '-'}${name}`),
      },
    );
  }
  state(name: string): string | undefined {
    return this.speaker.status().find((s) => s.name === name)?.state;
  }
  names(): string[] {
    return this.speaker.status().map((s) => s.name);
  }
}

describe('listen ranges over loopback TCP', () => {
  let nodes: Node[] = [];
  afterEach(async () => {
    for (const n of nodes) await n.speaker.stop();
    nodes = [];
  });

  async function hub(ranges: ListenRange[], originate = ['10.90.0.0/24']): Promise<Node> {
    const n = new Node({
      routerId: '10.9.0.1',
      localAsn: asn(AS),
      listen: { host: HUB, port: 0 },
      peers: [],
      listenRanges: ranges,
      originate: originate.map((prefix) => ({ prefix })),
    });
    nodes.push(n);
    await n.speaker.start();
    return n;
  }

  /** A speaker dialling the hub from `address` (127.0.9.x). */
  async function dialer(
    h: Node,
    address: string,
    localAs: number,
    originate: string[],
    extra: Partial<PeerSettings> = {},
  ): Promise<Node> {
    const n = new Node({
      routerId: `10.9.0.${address.split('.')[3]}`,
      localAsn: asn(localAs),
      peers: [
        {
          name: 'hub',
          address: HUB,
          port: h.speaker.port,
          localAddress: address,
          asn: asn(AS),
          holdTime: 9,
          connectRetryTime: 1,
          ...extra,
        },
      ],
      originate: originate.map((prefix) => ({ prefix })),
    });
    nodes.push(n);
    await n.speaker.start();
    return n;
  }

  /** Bytes a raw connection from `from` gets before it is closed (we close after a header). */
  async function firstBytes(from: string, port: number): Promise<Buffer> {
    const s = net.connect({ host: HUB, port, localAddress: from });
    let got = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 19) s.destroy();
    });
    s.on('error', () => {});
    await new Promise((resolve) => s.on('close', resolve));
    return got;
  }

  it('takes speakers from its range, reflects routes between them, lists them; resets a stranger before OPEN', async () => {
    const h = await hub([range('dyn', '127.0.9.0/28', { peer: { asn: asn(AS), reflectorClient: true } })]);
    const d2 = await dialer(h, '127.0.9.2', AS, ['10.92.0.0/24']);
    const d3 = await dialer(h, '127.0.9.3', AS, ['10.93.0.0/24']);
    await until(
      () => d2.best.has('10.93.0.0/24') && d3.best.has('10.92.0.0/24') && d2.best.has('10.90.0.0/24'),
      'routes through the hub',
    );
    // Reflected with the client's next hop; the hub's own with the address it was called on.
    const r = d2.best.get('10.93.0.0/24')!;
    assert.equal(r.type !== 'withdraw' && r.best.attributes.nextHop, '127.0.9.3');
    assert.equal(r.type !== 'withdraw' && r.best.attributes.originatorId, '10.9.0.3');
    const own = d3.best.get('10.90.0.0/24')!;
    assert.equal(own.type !== 'withdraw' && own.best.attributes.nextHop, HUB);
    assert.deepEqual(
      h.speaker.status().map((s) => [s.name, s.address, s.asn, s.state, s.listenRange]),
      [
        ['dyn_127.0.9.2', '127.0.9.2', AS, 'established', 'dyn'],
        ['dyn_127.0.9.3', '127.0.9.3', AS, 'established', 'dyn'],
      ],
    );
    assert.deepEqual(h.dynamic, ['+dyn_127.0.9.2', '+dyn_127.0.9.3']);

    // From outside the range: reset, not one byte (no OPEN). From inside: our OPEN at once.
    const outside = await firstBytes('127.0.9.20', h.speaker.port);
    assert.equal(outside.length, 0, 'nothing sent to a stranger');
    assert.deepEqual(h.refused, ['127.0.9.20 unknown']);
    const inside = await firstBytes('127.0.9.4', h.speaker.port);
    assert.equal(inside[18], 1, 'an OPEN to a caller from the range');
    // That caller went without a session: its dynamic peer goes too.
    await until(() => h.dynamic.includes('-dyn_127.0.9.4'), 'the half-open caller removed');
    assert.deepEqual(h.names(), ['dyn_127.0.9.2', 'dyn_127.0.9.3']);
  });

  it('sends OPEN Message Error / Bad Peer AS to a caller of another AS, and keeps no peer for it', async () => {
    const h = await hub([range('dyn', '127.0.9.0/28')]);
    const d5 = await dialer(h, '127.0.9.5', 65999, []);
    await until(() => d5.notifications.includes('2/2'), 'Bad Peer AS at the caller');
    assert.ok(h.dynamic.includes('+dyn_127.0.9.5'));
    await until(() => h.dynamic.includes('-dyn_127.0.9.5'), 'its dynamic peer removed');
    assert.equal(d5.state('hub') === 'established', false);
    assert.equal(h.speaker.ribs[1].size, 1, 'only our own route');
  });

  it('refuses callers past maxPeers; a session that ends takes its peer and its routes along', async () => {
    const h = await hub([range('dyn', '127.0.9.0/28', { maxPeers: 2 })], []);
    const d2 = await dialer(h, '127.0.9.2', AS, ['10.92.0.0/24']);
    const d3 = await dialer(h, '127.0.9.3', AS, ['10.93.0.0/24']);
    await until(
      () => h.state('dyn_127.0.9.2') === 'established' && h.state('dyn_127.0.9.3') === 'established',
      'two sessions',
    );
    const d4 = await dialer(h, '127.0.9.4', AS, ['10.94.0.0/24']);
    await until(() => h.refused.includes('127.0.9.4 maxPeers'), 'the third caller refused');
    assert.equal(d4.inbound.includes('open'), false, 'refused before OPEN');
    assert.deepEqual(h.names(), ['dyn_127.0.9.2', 'dyn_127.0.9.3']);

    // d3 leaves: its peer goes, and with it its route (iBGP: the hub re-advertises nothing
    // of d2's to d3, so look at the hub's RIB); the free place goes to d4 on its next try.
    assert.ok(h.best.has('10.93.0.0/24'));
    await d3.speaker.stop();
    await until(() => !h.names().includes('dyn_127.0.9.3'), 'd3 removed');
    assert.equal(h.best.has('10.93.0.0/24'), false, 'its route withdrawn');
    await until(() => h.state('dyn_127.0.9.4') === 'established', 'd4 in the freed place');
    await until(() => h.best.has('10.94.0.0/24'), "d4's route");
    assert.equal(h.state('dyn_127.0.9.2'), 'established', 'd2 untouched');
    assert.equal(d2.notifications.length, 0);
  });

  it("keeps a graceful-restart caller's routes until its restart time, then removes it", async () => {
    const gr = { gracefulRestart: { restartTime: 1 } };
    const h = await hub([range('dyn', '127.0.9.0/28', { peer: { asn: asn(AS), ...gr } })], []);
    const d2 = await dialer(h, '127.0.9.2', AS, ['10.92.0.0/24'], gr);
    await until(() => h.best.has('10.92.0.0/24'), 'route from d2');
    await d2.speaker.stop(undefined, { keepRoutes: true }); // gone without a NOTIFICATION
    await until(() => h.state('dyn_127.0.9.2') !== 'established', 'the hub sees d2 go');
    assert.equal(h.best.has('10.92.0.0/24'), true, 'kept stale');
    assert.deepEqual(h.names(), ['dyn_127.0.9.2'], 'the peer stays while its routes are kept');
    await until(() => h.names().length === 0, 'removed after the restart time', 5000);
    assert.equal(h.best.has('10.92.0.0/24'), false, 'swept');
  });

  it('reconfigures: a new maxPeers keeps sessions, new settings restart them, a configured peer takes the address, removal stops them', async () => {
    const dyn = range('dyn', '127.0.9.0/28', { peer: { asn: asn(AS), holdTime: 9 } });
    const h = await hub([dyn], []);
    const d2 = await dialer(h, '127.0.9.2', AS, ['10.92.0.0/24']);
    await until(() => h.state('dyn_127.0.9.2') === 'established', 'session');

    let r = h.speaker.reconfigure({ peers: [], listenRanges: [{ ...dyn, maxPeers: 5 }] });
    assert.deepEqual(r.ranges, { added: [], removed: [], changed: ['dyn'] });
    assert.equal(h.state('dyn_127.0.9.2'), 'established', 'maxPeers alone ends no session');

    const changed = { ...dyn, peer: { ...dyn.peer, holdTime: 12 } };
    r = h.speaker.reconfigure({ peers: [], listenRanges: [changed] });
    assert.deepEqual(r.ranges, { added: [], removed: [], changed: ['dyn'] });
    await until(() => d2.notifications.includes('6/6'), 'Cease / Other Configuration Change');
    await until(() => h.state('dyn_127.0.9.2') === 'established', 'back with the new settings');
    assert.deepEqual(h.dynamic, ['+dyn_127.0.9.2', '-dyn_127.0.9.2', '+dyn_127.0.9.2']);

    // A configured peer for the address wins over the range: the dynamic one makes way.
    const d2Peer: PeerSettings = { name: 'd2', address: '127.0.9.2', asn: asn(AS), passive: true };
    r = h.speaker.reconfigure({ peers: [d2Peer], listenRanges: [changed] });
    assert.deepEqual(r.added, ['d2']);
    await until(() => d2.notifications.filter((n) => n === '6/6').length === 2, 'the dynamic peer stopped');
    await until(() => h.state('d2') === 'established', 'the configured peer up');
    assert.deepEqual(h.names(), ['d2']);
    assert.equal(h.speaker.status()[0]?.listenRange, undefined);

    // Back to the range alone, then no range: Cease / Peer De-configured, and refused after.
    h.speaker.reconfigure({ peers: [], listenRanges: [changed] });
    await until(() => h.state('dyn_127.0.9.2') === 'established', 'dynamic again');
    const before = d2.notifications.filter((n) => n === '6/3').length;
    r = h.speaker.reconfigure({ peers: [], listenRanges: [] });
    assert.deepEqual(r.ranges, { added: [], removed: ['dyn'], changed: [] });
    await until(
      () => d2.notifications.filter((n) => n === '6/3').length === before + 1,
      'Peer De-configured',
    );
    assert.deepEqual(h.names(), []);
    await until(() => h.refused.includes('127.0.9.2 unknown'), 'its next try refused');
  });

  it('peers with the range key (TCP-MD5 prefix key) and GTSM, never with a wrong or missing key or a low TTL', async () => {
    const secure = { password: 'range-key', ttlSecurity: 1 };
    const h = await hub([range('dyn', '127.0.9.0/28', { peer: { asn: asn(AS), ...secure } })], []);
    const right = await dialer(h, '127.0.9.2', AS, ['10.92.0.0/24'], secure);
    // A connect retry longer than the dial's 5 s timeout, so that the timeout shows.
    const slow = { connectRetryTime: 10 };
    const wrong = await dialer(h, '127.0.9.3', AS, [], { ...secure, ...slow, password: 'wrong' });
    const none = await dialer(h, '127.0.9.4', AS, [], { ttlSecurity: 1, ...slow });
    const lowTtl = await dialer(h, '127.0.9.5', AS, [], { password: 'range-key' });
    await until(() => h.best.has('10.92.0.0/24'), 'route over the MD5 + GTSM session');
    assert.equal(right.state('hub'), 'established');
    // The kernel drops their SYNs: the dials time out, and the hub never sees them.
    const timedOut = (n: Node) => /timed out/.test(n.speaker.status()[0]?.lastError ?? '');
    await until(() => timedOut(wrong) && timedOut(none), 'both dials time out', 10_000);
    // Sent with TTL 64: the connection is accepted and our OPEN reaches the caller, but
    // its segments are dropped once the accepted socket has its minimum TTL, so the session
    // never comes up on our side. (Its OPEN may get in first: it can arrive before the
    // option is set, as with FRR's accept-then-set; its KEEPALIVE never does.)
    await until(() => lowTtl.inbound.includes('open'), 'the low-TTL caller got our OPEN');
    await new Promise((resolve) => setTimeout(resolve, 300)); // loopback takes microseconds
    assert.match(h.state('dyn_127.0.9.5') ?? '', /^open(Sent|Confirm)$/, 'held back by GTSM');
    assert.deepEqual(h.names().sort(), ['dyn_127.0.9.2', 'dyn_127.0.9.5']);
    assert.deepEqual(h.refused, []);
  });
});
