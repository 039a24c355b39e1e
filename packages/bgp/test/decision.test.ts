import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Candidate, DecisionAttributes, RouteSource, StepName } from '../src/rib/index.js';
import { decide, decisionAttributes } from '../src/rib/index.js';
import type { Asn } from '../src/wire/index.js';

const BASE: DecisionAttributes = {
  localPref: 100,
  asPathLength: 2,
  origin: 0,
  med: 0,
  neighborAs: 65001,
  clusterListLength: 0,
  originatorId: undefined,
};
const SRC: RouteSource = {
  local: false,
  internal: false,
  routerId: 0x0a000001,
  address: Uint8Array.of(10, 0, 0, 1),
};

function cand(
  name: string,
  attrs: Partial<DecisionAttributes> = {},
  source: Partial<RouteSource> = {},
  igpCost = 0,
  pathId?: number,
) {
  const c: Candidate & { name: string } = {
    name,
    attrs: { ...BASE, ...attrs },
    source: { ...SRC, ...source },
    igpCost,
  };
  return pathId === undefined ? c : { ...c, pathId };
}

describe('decision process (RFC 4271 §9.1.2.2, RFC 4456 §9)', () => {
  // Each row: the better and the worse route differ only in the step named.
  const rows: [StepName, ReturnType<typeof cand>, ReturnType<typeof cand>][] = [
    ['localOrigin', cand('local', {}, { local: true }), cand('learned')],
    ['localPref', cand('lp200', { localPref: 200 }), cand('lp100')],
    ['asPathLength', cand('short', { asPathLength: 1 }), cand('long', { asPathLength: 3 })],
    ['origin', cand('igp', { origin: 0 }), cand('incomplete', { origin: 2 })],
    ['med', cand('med10', { med: 10 }), cand('med20', { med: 20 })],
    ['ebgpOverIbgp', cand('ebgp', {}, { internal: false }), cand('ibgp', {}, { internal: true })],
    ['igpCost', cand('near', {}, {}, 5), cand('far', {}, {}, 10)],
    ['clusterListLength', cand('cl1', { clusterListLength: 1 }), cand('cl2', { clusterListLength: 2 })],
    ['routerId', cand('id1', {}, { routerId: 1 }), cand('id2', {}, { routerId: 2 })],
    [
      'peerAddress',
      cand('addr1', {}, { address: Uint8Array.of(10, 0, 0, 1) }),
      cand('addr2', {}, { address: Uint8Array.of(10, 0, 0, 2) }),
    ],
    ['pathId', cand('p1', {}, {}, 0, 1), cand('p2', {}, {}, 0, 2)],
  ];
  for (const [step, better, worse] of rows) {
    it(`decides by ${step} when only ${step} differs, whatever the order`, () => {
      for (const order of [
        [better, worse],
        [worse, better],
      ]) {
        const d = decide(order);
        assert.equal(d.best.name, better.name);
        assert.equal(d.decidedBy, step);
      }
    });
  }

  it('uses ORIGINATOR_ID in place of the router ID when present (RFC 4456 §9)', () => {
    const reflected = cand('reflected', { originatorId: 5 }, { routerId: 100 });
    const direct = cand('direct', {}, { routerId: 50 });
    assert.equal(decide([direct, reflected]).best.name, 'reflected');
  });

  it('compares MED only between routes from the same neighbouring AS, as a set, so order does not matter', () => {
    // The classic non-transitive trio: A and C share AS 100 (A has the lower MED); B is
    // from AS 200. RFC: remove C (worse MED than A in AS 100), then the router ID picks
    // among A and B. A pairwise comparator gets a different answer for some orders.
    const A = cand('A', { neighborAs: 100, med: 10 }, { routerId: 3 });
    const B = cand('B', { neighborAs: 200, med: 50 }, { routerId: 2 });
    const C = cand('C', { neighborAs: 100, med: 20 }, { routerId: 1 });
    const perms = [
      [A, B, C],
      [A, C, B],
      [B, A, C],
      [B, C, A],
      [C, A, B],
      [C, B, A],
    ];
    for (const p of perms) {
      const d = decide(p);
      assert.equal(d.best.name, 'B', p.map((x) => x.name).join(''));
      assert.equal(d.decidedBy, 'routerId');
    }
    assert.equal(decide([A, B, C], { alwaysCompareMed: true }).best.name, 'A');
  });

  it('groups equal routes for ECMP: through the IGP cost, same neighbouring AS for eBGP', () => {
    const a = cand('a', {}, { routerId: 1 });
    const b = cand('b', {}, { routerId: 2 });
    const otherAs = cand('otherAs', { neighborAs: 65099 }, { routerId: 3 });
    const farther = cand('farther', {}, { routerId: 4 }, 7);
    const d = decide([b, farther, otherAs, a]);
    assert.equal(d.best.name, 'a');
    assert.deepEqual(d.multipath.map((c) => c.name).sort(), ['a', 'b']);
    const i1 = cand('i1', { neighborAs: 0 }, { internal: true, routerId: 1 });
    const i2 = cand('i2', { neighborAs: 0 }, { internal: true, routerId: 2 });
    assert.deepEqual(
      decide([i2, i1])
        .multipath.map((c) => c.name)
        .sort(),
      ['i1', 'i2'],
    );
    const only = decide([a]);
    assert.deepEqual([only.decidedBy, only.multipath.length], ['onlyCandidate', 1]);
  });

  it('picks the same route whatever order the candidates come in', () => {
    const arbCand = fc
      .record({
        lp: fc.integer({ min: 99, max: 101 }),
        len: fc.integer({ min: 1, max: 3 }),
        origin: fc.integer({ min: 0, max: 2 }),
        med: fc.integer({ min: 0, max: 2 }),
        nas: fc.integer({ min: 1, max: 3 }),
        internal: fc.boolean(),
        igp: fc.integer({ min: 0, max: 1 }),
        cl: fc.integer({ min: 0, max: 2 }),
        id: fc.integer({ min: 1, max: 1000 }),
      })
      .map((r) =>
        cand(
          `r${r.id}`,
          {
            localPref: r.lp,
            asPathLength: r.len,
            origin: r.origin,
            med: r.med,
            neighborAs: r.nas,
            clusterListLength: r.cl,
          },
          { internal: r.internal, routerId: r.id, address: Uint8Array.of(10, 0, r.id >> 8, r.id & 255) },
          r.igp,
        ),
      );
    fc.assert(
      fc.property(
        fc.uniqueArray(arbCand, { minLength: 1, maxLength: 8, selector: (c) => c.name }),
        fc.integer(),
        (cs, seed) => {
          const shuffled = [...cs].sort(
            (x, y) => ((x.source.routerId * 7919 + seed) % 101) - ((y.source.routerId * 7919 + seed) % 101),
          );
          assert.equal(decide(shuffled).best.name, decide(cs).best.name);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('decisionAttributes', () => {
  it('counts AS_SET as one and confederation segments as none, and finds the neighbouring AS', () => {
    const a = decisionAttributes({
      origin: 'egp',
      asPath: [
        { type: 'confedSequence', asns: [64512, 64513] as Asn[] },
        { type: 'sequence', asns: [65001, 65002] as Asn[] },
        { type: 'set', asns: [1, 2, 3] as Asn[] },
      ],
      multiExitDisc: 7,
      originatorId: '10.0.0.9',
      clusterList: ['1.1.1.1', '2.2.2.2'],
    });
    assert.deepEqual(a, {
      localPref: 100,
      asPathLength: 3,
      origin: 1,
      med: 7,
      neighborAs: 65001,
      clusterListLength: 2,
      originatorId: 0x0a000009,
    });
    assert.equal(decisionAttributes({ localPref: 300 }).localPref, 300);
    assert.equal(decisionAttributes({}).med, 0, 'absent MED is the best value');
  });
});
