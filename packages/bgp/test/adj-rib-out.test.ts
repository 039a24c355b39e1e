// The Adj-RIB-Out shared by an update group: every member must end up holding exactly the
// group's routes minus its own (split horizon), whatever the order of changes and however
// the sends are sliced; a private table (one peer) must hold everything it was given.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AttrStore, LocRib } from '../src/rib/index.js';
import type { OutSink } from '../src/speaker/index.js';
import { AdjRibOut } from '../src/speaker/index.js';
import type { PathAttributes } from '../src/wire/index.js';
import { PrefixList, decodeFrame, makeContext, withdrawnBy } from '../src/wire/index.js';

const CTX = makeContext({ as4: true });
const attrs = (med: number): PathAttributes => ({
  origin: 'igp',
  asPath: [],
  nextHop: '192.0.2.1',
  localPref: 100,
  multiExitDisc: med,
});
const prefixOf = (n: number) => `10.${n >> 8}.${n & 255}.0/24`;

/** A Loc-RIB holding one route for each of `n` prefixes (the entries the table is indexed by). */
function ribOf(n: number) {
  const entries = new Map<string, number>();
  const ribAttrs = new AttrStore();
  const rib = new LocRib(1, ribAttrs, {
    onBest: (list, peer, _a, e) => {
      if (peer >= 0) entries.set(list.format(0), e);
    },
  });
  rib.addPeer(1, { local: false, internal: false, routerId: 1, address: Uint8Array.of(10, 0, 0, 1) });
  const id = ribAttrs.intern(attrs(0));
  for (let i = 0; i < n; i++) rib.announce(1, PrefixList.parse(1, [prefixOf(i)]), id);
  return { rib, entries, entry: (p: string) => entries.get(p)! };
}

/** Receivers that decode what they get into prefix -> MED, as a peer's Adj-RIB-In would. */
class Receivers implements OutSink {
  readonly ribs = new Map<number, Map<string, number>>();
  readonly messages = new Map<number, number>();
  constructor(readonly members: number[]) {
    for (const m of members) this.ribs.set(m, new Map());
  }
  private apply(m: number, bytes: Uint8Array): void {
    this.messages.set(m, (this.messages.get(m) ?? 0) + 1);
    const msg = decodeFrame(bytes, CTX);
    assert.equal(msg.type, 'update');
    const rib = this.ribs.get(m)!;
    for (const l of withdrawnBy(msg)) for (let i = 0; i < l.length; i++) rib.delete(l.format(i));
    for (let i = 0; i < msg.nlri.length; i++) rib.set(msg.nlri.format(i), msg.pathAttributes.multiExitDisc!);
  }
  all(bytes: Uint8Array, except: number): void {
    for (const m of this.members) if (m !== except) this.apply(m, bytes);
  }
  one(peer: number, bytes: Uint8Array): void {
    if (this.ribs.has(peer)) this.apply(peer, bytes);
  }
}

describe('AdjRibOut', () => {
  it('gives every group member the table minus its own routes, through any changes and slicing', () => {
    const members = [1, 2, 3];
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            prefix: fc.integer({ min: 0, max: 15 }),
            // A best route from a member (1..3), from our own (0) or a non-member (9), or none.
            source: fc.constantFrom(-1, 0, 1, 2, 3, 9),
            med: fc.integer({ min: 0, max: 3 }),
            build: fc.integer({ min: 0, max: 5 }),
          }),
          { maxLength: 120 },
        ),
        (ops) => {
          const store = new AttrStore();
          const { rib, entry } = ribOf(16);
          const out = new AdjRibOut(1, rib, store, CTX);
          const rx = new Receivers(members);
          const table = new Map<string, { med: number; source: number }>();
          for (const op of ops) {
            const p = prefixOf(op.prefix);
            if (op.source < 0) {
              table.delete(p);
              out.enqueue(entry(p), -1);
            } else {
              table.set(p, { med: op.med, source: op.source });
              out.enqueue(entry(p), store.intern(attrs(op.med)), op.source);
            }
            if (op.build > 0) out.build(op.build, rx);
          }
          while (out.waiting > 0) out.build(7, rx);
          for (const m of members) {
            const want = new Map([...table].filter(([, r]) => r.source !== m).map(([p, r]) => [p, r.med]));
            assert.deepEqual(rx.ribs.get(m), want, `member ${m}`);
            assert.equal(out.advertisedTo(m), want.size);
          }
          assert.equal(out.advertised, table.size);
          out.clear();
          assert.equal(store.size, 0, 'every reference released');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('encodes one UPDATE per set and source for all members, and withdraws from the source what it had', () => {
    const store = new AttrStore();
    const { rib, entry } = ribOf(2);
    const out = new AdjRibOut(1, rib, store, CTX);
    const rx = new Receivers([1, 2, 3]);
    const [p0, p1] = [entry('10.0.0.0/24'), entry('10.0.1.0/24')];
    // Learned from member 2: members 1 and 3 get one UPDATE each, member 2 nothing.
    out.enqueue(p0, store.intern(attrs(1)), 2);
    out.enqueue(p1, store.intern(attrs(1)), 2);
    out.build(10, rx);
    assert.deepEqual(
      [...rx.messages],
      [
        [1, 1],
        [3, 1],
      ],
    );
    assert.equal(rx.ribs.get(2)!.size, 0);
    // The best moves to member 3's route: 1 and 2 get it; 3, which had 2's, gets a withdrawal.
    out.enqueue(p0, store.intern(attrs(2)), 3);
    out.build(10, rx);
    assert.deepEqual(rx.ribs.get(3), new Map([['10.0.1.0/24', 1]]));
    assert.deepEqual(rx.ribs.get(2), new Map([['10.0.0.0/24', 2]]));
    assert.deepEqual(
      rx.ribs.get(1),
      new Map([
        ['10.0.0.0/24', 2],
        ['10.0.1.0/24', 1],
      ]),
    );
    // Re-queuing what every member already has sends nothing.
    const before = [...rx.messages.values()].reduce((a, b) => a + b);
    out.enqueue(p1, store.intern(attrs(1)), 2);
    assert.equal(out.waiting, 0);
    assert.equal(
      [...rx.messages.values()].reduce((a, b) => a + b),
      before,
    );
    out.clear();
    assert.equal(store.size, 0);
  });

  it("keeps a withdrawn prefix's Loc-RIB entry until its withdrawal has gone out, then lets it go", () => {
    const store = new AttrStore();
    const ribAttrs = new AttrStore();
    const best: [string, number, number][] = [];
    const rib = new LocRib(1, ribAttrs, { onBest: (l, peer, _a, e) => best.push([l.format(0), peer, e]) });
    rib.addPeer(1, { local: false, internal: false, routerId: 1, address: Uint8Array.of(10, 0, 0, 1) });
    const out = new AdjRibOut(1, rib, store, CTX);
    const rx = new Receivers([1]);
    const a = ribAttrs.intern(attrs(0));
    rib.announce(1, PrefixList.parse(1, ['10.0.0.0/24']), a);
    const e = best[0]![2];
    out.enqueue(e, store.intern(attrs(0)), 9);
    out.build(10, rx);
    // The route goes: the withdrawal waits, and the entry (the prefix) with it.
    rib.withdraw(1, PrefixList.parse(1, ['10.0.0.0/24']));
    assert.deepEqual(best[1], ['10.0.0.0/24', -1, e]);
    out.enqueue(e, -1);
    assert.equal(rib.size, 0);
    // A new prefix now gets another entry: e is still taken.
    rib.announce(1, PrefixList.parse(1, ['10.0.9.0/24']), a);
    assert.notEqual(best[2]![2], e);
    out.build(10, rx);
    assert.deepEqual(rx.ribs.get(1), new Map());
    // Withdrawn everywhere: e is free, and the next new prefix takes it.
    rib.announce(1, PrefixList.parse(1, ['10.0.8.0/24']), a);
    assert.deepEqual(best[3], ['10.0.8.0/24', 1, e]);
    out.clear();
    assert.equal(store.size, 0);
  });
});
