import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { BestPathEvent, RouteSource } from '../src/rib/index.js';
import { AttrStore, LocRib, PREFIX_TABLE_MAX_VALUE, PrefixTable } from '../src/rib/index.js';
import type { Asn, PathAttributes } from '../src/wire/index.js';
import { PrefixList } from '../src/wire/index.js';

const v4 = (...p: string[]) => PrefixList.parse(1, p);
const brief = (e: BestPathEvent | undefined) => e && { type: e.type, afi: e.afi, prefix: e.prefix };
const src = (id: number, internal = false): RouteSource => ({
  local: false,
  internal,
  routerId: id,
  address: Uint8Array.of(10, 0, 0, id),
});
const path = (...asns: number[]): PathAttributes => ({
  origin: 'igp',
  asPath: [{ type: 'sequence', asns: asns as Asn[] }],
  nextHop: `10.0.0.${asns[0]! % 250}`,
});

describe('PrefixTable', () => {
  it('agrees with a Map through random inserts, updates and deletes (tombstones and rehash, the default route)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            op: fc.constantFrom('set', 'setIfAbsent', 'delete', 'get', 'deleteSlot'),
            a: fc.integer({ min: 0, max: 63 }),
            len: fc.constantFrom(0, 8, 16, 24, 32),
            v: fc.integer({ min: 0, max: 1e4 }),
          }),
          { maxLength: 600 },
        ),
        (ops) => {
          const t = new PrefixTable(1, 4);
          const m = new Map<string, number>();
          const slots = new Map<string, number>(); // where each key was last seen
          let serial = 0; // values unique, as the Loc-RIB's entry ids are (deleteSlot needs it)
          for (const o of ops) {
            const v = o.v * 1000 + (serial++ % 1000);
            const addr = o.len === 0 ? 0 : ((o.a << 24) >>> 0) & (o.len === 8 ? 0xff000000 : 0xffffffff);
            const list = new PrefixList(1, Uint32Array.of(addr >>> 0), Uint8Array.of(o.len));
            const k = `${addr}/${o.len}`;
            if (o.op === 'set') {
              assert.equal(t.set(list, 0, v), m.get(k) ?? -1);
              m.set(k, v);
              slots.set(k, t.lastSlot);
            } else if (o.op === 'setIfAbsent') {
              assert.equal(t.setIfAbsent(list, 0, v), m.get(k) ?? -1);
              if (!m.has(k)) m.set(k, v);
              slots.set(k, t.lastSlot);
            } else if (o.op === 'delete') {
              assert.equal(t.delete(list, 0), m.get(k) ?? -1);
              m.delete(k);
            } else if (o.op === 'deleteSlot') {
              // A slot seen earlier: it deletes the key only if the key is still there, with
              // its value (a rehash may have moved it since); otherwise nothing changes.
              const had = m.get(k);
              const done = had !== undefined && t.deleteSlot(slots.get(k) ?? -1, had);
              if (done) m.delete(k);
              assert.equal(t.get(list, 0), m.get(k) ?? -1);
            } else {
              assert.equal(t.get(list, 0), m.get(k) ?? -1);
              if (m.has(k)) slots.set(k, t.lastSlot);
            }
          }
          assert.equal(t.size, m.size);
          let n = 0;
          t.forEach(() => n++);
          assert.equal(n, m.size);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('holds IPv6 keys and a million IPv4 keys', () => {
    const t6 = new PrefixTable(2);
    const p6 = PrefixList.parse(2, ['2001:db8::/32', '2001:db8::/48', 'fd00::/8']);
    for (let i = 0; i < 3; i++) t6.set(p6, i, i);
    assert.deepEqual(
      [0, 1, 2].map((i) => t6.get(p6, i)),
      [0, 1, 2],
    );
    const n = 1_000_000;
    const addrs = new Uint32Array(n);
    const lens = new Uint8Array(n).fill(24);
    for (let i = 0; i < n; i++) addrs[i] = (0x01000000 + i * 256) >>> 0;
    const big = new PrefixList(1, addrs, lens);
    const t = new PrefixTable(1);
    for (let i = 0; i < n; i++) t.set(big, i, i);
    assert.equal(t.size, n);
    for (let i = 0; i < n; i += 9973) assert.equal(t.get(big, i), i);
    // Values are 24-bit (a row is 8 bytes): beyond that, a clear error rather than a wrong key.
    assert.throws(() => t.set(big, 0, PREFIX_TABLE_MAX_VALUE + 1), /out of 0\.\.16777215/);
    assert.equal(t.set(big, 0, PREFIX_TABLE_MAX_VALUE), 0);
    assert.equal(t.get(big, 0), PREFIX_TABLE_MAX_VALUE);
  });
});

describe('LocRib', () => {
  function rib() {
    const attrs = new AttrStore();
    const events: BestPathEvent[] = [];
    const r = new LocRib(1, attrs, { onChange: (e) => events.push(e) });
    r.addPeer(1, src(1));
    r.addPeer(2, src(2));
    r.addPeer(3, src(3, true));
    return { attrs, events, r };
  }

  it('emits add, replace and withdraw as routes come and go, and nothing for a repeat', () => {
    const { attrs, events, r } = rib();
    const a = attrs.intern(path(65001));
    r.announce(1, v4('10.0.0.0/24', '10.0.1.0/24'), a);
    attrs.release(a); // the RIB holds its own references
    assert.deepEqual(
      events.map((e) => [e.type, e.prefix]),
      [
        ['add', '10.0.0.0/24'],
        ['add', '10.0.1.0/24'],
      ],
    );
    const again = attrs.intern(path(65001));
    r.announce(1, v4('10.0.0.0/24'), again);
    attrs.release(again);
    assert.equal(events.length, 2, 'the same route again changes nothing');
    const b = attrs.intern(path(65001, 65005));
    r.announce(1, v4('10.0.0.0/24'), b);
    attrs.release(b);
    assert.deepEqual(events.at(-1)?.type, 'replace');
    r.withdraw(1, v4('10.0.0.0/24', '10.9.9.0/24'));
    assert.deepEqual(brief(events.at(-1)), { type: 'withdraw', afi: 1, prefix: '10.0.0.0/24' });
    r.withdraw(1, v4('10.0.1.0/24'));
    assert.equal(r.size, 0);
    assert.equal(attrs.size, 0, 'every attribute set released');
    assert.equal(r.routeCount, 0);
  });

  it('chooses across peers with the decision process, and fails over on withdraw', () => {
    const { attrs, events, r } = rib();
    const long = attrs.intern(path(65001, 65009, 65010));
    const short = attrs.intern(path(65002, 65010));
    r.announce(1, v4('192.0.2.0/24'), long);
    r.announce(2, v4('192.0.2.0/24'), short);
    const last = events.at(-1);
    assert.ok(last?.type === 'replace');
    assert.equal(last.best.peer, 2);
    assert.equal(last.decidedBy, 'asPathLength');
    assert.equal(r.lookup(v4('192.0.2.0/24'), 0)?.routes.length, 2);
    r.withdraw(2, v4('192.0.2.0/24'));
    const fail = events.at(-1);
    assert.ok(fail?.type === 'replace');
    assert.equal(fail.best.peer, 1);
    assert.equal(fail.decidedBy, 'onlyCandidate');
  });

  it('reports the ECMP group and a change in it', () => {
    const { attrs, events, r } = rib();
    const x = attrs.intern({ ...path(65001), nextHop: '10.0.0.1' });
    const y = attrs.intern({ ...path(65001), nextHop: '10.0.0.2' });
    r.announce(1, v4('10.65.0.0/26'), x);
    r.announce(2, v4('10.65.0.0/26'), y);
    const e = events.at(-1);
    assert.ok(e?.type === 'replace');
    assert.deepEqual(e.multipath.map((m) => m.attributes.nextHop).sort(), ['10.0.0.1', '10.0.0.2']);
    assert.equal(e.best.peer, 1, 'lower router ID among equals');
  });

  it('keeps ADD-PATH paths from one peer apart by path identifier', () => {
    const { attrs, r } = rib();
    const p = attrs.intern(path(65001));
    const q = attrs.intern(path(65001, 65002));
    r.announce(1, PrefixList.parse(1, ['10.1.0.0/16'], [1]), p);
    r.announce(1, PrefixList.parse(1, ['10.1.0.0/16'], [2]), q);
    assert.equal(r.lookup(v4('10.1.0.0/16'), 0)?.routes.length, 2);
    assert.equal(r.received(1), 2);
    r.withdraw(1, PrefixList.parse(1, ['10.1.0.0/16'], [1]));
    assert.equal(r.lookup(v4('10.1.0.0/16'), 0)?.best.attributes.asPath?.[0]?.asns.length, 2);
  });

  it("drops all of a peer's routes when its session goes down", () => {
    const { attrs, events, r } = rib();
    const a = attrs.intern(path(65001));
    r.announce(1, v4('10.0.0.0/24', '10.0.1.0/24', '10.0.2.0/24'), a);
    r.announce(2, v4('10.0.1.0/24'), a);
    r.dropPeer(1);
    assert.equal(r.size, 1);
    assert.equal(r.received(1), 0);
    assert.deepEqual(
      events
        .filter((e) => e.type === 'withdraw')
        .map((e) => e.prefix)
        .sort(),
      ['10.0.0.0/24', '10.0.2.0/24'],
    );
  });

  it('forgets a removed peer: its routes, then its index is unknown to announce', () => {
    const { attrs, r } = rib();
    const a = attrs.intern(path(65001));
    r.announce(1, v4('10.0.0.0/24'), a);
    attrs.release(a);
    r.removePeer(1);
    assert.equal(r.size, 0);
    assert.equal(attrs.size, 0, 'its attribute sets released');
    assert.throws(() => r.announce(1, v4('10.0.0.0/24'), a), /not known to the RIB/);
  });

  it('interns equal attribute sets once, and IPv6 next hops apart', () => {
    const attrs = new AttrStore();
    const a = attrs.intern(path(65001));
    const b = attrs.intern(path(65001));
    assert.equal(a, b);
    assert.equal(attrs.references(a), 2);
    const six = (nh: string): PathAttributes => ({
      origin: 'igp',
      asPath: [],
      mpReachNlri: {
        kind: 'prefixes',
        afi: 2,
        safi: 1,
        nextHop: nh,
        nlri: PrefixList.parse(2, ['2001:db8::/32']),
      },
    });
    assert.notEqual(attrs.intern(six('2001:db8::1')), attrs.intern(six('2001:db8::2')));
    assert.equal(
      attrs.intern(six('2001:db8::1')),
      attrs.intern({
        ...six('2001:db8::1'),
        mpReachNlri: {
          kind: 'prefixes',
          afi: 2,
          safi: 1,
          nextHop: '2001:db8::1',
          nlri: PrefixList.parse(2, ['fd00::/8']),
        },
      }),
    );
    // An IPv4 route with the same IPv6 next hop (RFC 8950) is another set.
    const rfc8950 = six('2001:db8::1');
    assert.ok(rfc8950.mpReachNlri?.kind === 'prefixes');
    const v4Id = attrs.intern({ ...rfc8950, mpReachNlri: { ...rfc8950.mpReachNlri, afi: 1 } });
    assert.notEqual(v4Id, attrs.intern(six('2001:db8::1')));
    assert.equal(attrs.get(v4Id).mpReachNlri?.afi, 1);
  });

  it('keeps stale routes until re-announced or swept (RFC 4724, RFC 7313)', () => {
    const { attrs, events, r } = rib();
    const a = attrs.intern(path(65001));
    r.announce(1, v4('10.0.0.0/24', '10.0.1.0/24', '10.0.2.0/24'), a);
    assert.equal(r.markStale(1), 3);
    r.announce(1, v4('10.0.0.0/24', '10.0.2.0/24'), a);
    const before = events.length;
    assert.equal(r.sweepStale(1), 1);
    assert.deepEqual(events.slice(before).map(brief), [{ type: 'withdraw', afi: 1, prefix: '10.0.1.0/24' }]);
    assert.equal(r.sweepStale(1), 0, 'nothing left stale');
    attrs.release(a);
  });
});
