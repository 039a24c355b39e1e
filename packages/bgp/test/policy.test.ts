import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Policy, PolicyPrefix } from '../src/policy/index.js';
import { PolicyError, compilePolicy } from '../src/policy/index.js';
import type { Asn, PathAttributes } from '../src/wire/index.js';
import { parsePrefix } from '../src/wire/index.js';

function px(text: string): PolicyPrefix {
  const p = parsePrefix(text)!;
  return { afi: p.afi, words: p.words, offset: 0, len: p.len };
}
const A: PathAttributes = {
  origin: 'igp',
  asPath: [{ type: 'sequence', asns: [65001, 65002] as Asn[] }],
  nextHop: '192.0.2.1',
  communities: [((65000 << 16) | 1) >>> 0],
};

describe('policy', () => {
  it('matches prefix lists with ge/le as Cisco-style lists do', () => {
    const p = compilePolicy({
      rules: [
        { match: [{ prefix: [{ prefix: '10.0.0.0/8', ge: 24, le: 26 }] }], then: { verdict: 'accept' } },
      ],
      default: 'reject',
    });
    const v = (t: string) => p.evaluate(px(t), A).verdict;
    assert.equal(v('10.1.2.0/24'), 'accept');
    assert.equal(v('10.1.2.64/26'), 'accept');
    assert.equal(v('10.1.2.0/27'), 'reject');
    assert.equal(v('10.0.0.0/8'), 'reject');
    assert.equal(v('11.0.0.0/24'), 'reject');
    const exact = compilePolicy({
      rules: [{ match: [{ prefix: [{ prefix: '10.0.0.0/8' }] }], then: { verdict: 'reject' } }],
      default: 'accept',
    });
    assert.equal(exact.evaluate(px('10.0.0.0/8'), A).verdict, 'reject');
    assert.equal(exact.evaluate(px('10.0.0.0/9'), A).verdict, 'accept');
    const six = compilePolicy({
      rules: [{ match: [{ prefix: [{ prefix: 'fd00::/8', le: 64 }] }], then: { verdict: 'accept' } }],
      default: 'reject',
    });
    assert.equal(six.evaluate(px('fd00:1::/48'), A).verdict, 'accept');
    assert.equal(six.evaluate(px('fd00:1::/96'), A).verdict, 'reject');
  });

  it('first match wins; rules without a verdict change attributes and go on', () => {
    const p = compilePolicy({
      rules: [
        {
          name: 'tag',
          match: [{ community: '65000:1' }],
          then: { localPref: 200, addCommunities: ['65000:99'] },
        },
        { name: 'long', match: [{ asPathLength: { min: 3 } }], then: { verdict: 'reject' } },
        { name: 'ok', match: [{ asPathContains: 65002 }], then: { med: 5, verdict: 'accept' } },
        { name: 'never', match: [], then: { verdict: 'reject' } },
      ],
      default: 'reject',
    });
    const r = p.evaluate(px('10.0.0.0/24'), A);
    assert.ok(r.verdict === 'accept');
    assert.equal(r.rule, 'ok');
    assert.equal(r.attributes.localPref, 200);
    assert.equal(r.attributes.multiExitDisc, 5);
    assert.deepEqual(r.attributes.communities, [((65000 << 16) | 1) >>> 0, ((65000 << 16) | 99) >>> 0]);
    const long: PathAttributes = { ...A, asPath: [{ type: 'sequence', asns: [1, 2, 3] as Asn[] }] };
    assert.deepEqual(p.evaluate(px('10.0.0.0/24'), long), { verdict: 'reject', rule: 'long' });
  });

  it('prepends, removes and adds communities, matches large communities and negation', () => {
    const p = compilePolicy({
      rules: [
        {
          match: [{ not: { largeCommunity: '65000:1:1' } }],
          then: {
            prepend: { asn: 65010, count: 2 },
            removeCommunities: ['65000:1'],
            addLargeCommunities: ['65000:2:2'],
            verdict: 'accept',
          },
        },
      ],
      default: 'reject',
    });
    const r = p.evaluate(px('10.0.0.0/24'), A);
    assert.ok(r.verdict === 'accept');
    assert.deepEqual(r.attributes.asPath, [{ type: 'sequence', asns: [65010, 65010, 65001, 65002] }]);
    assert.equal(r.attributes.communities, undefined);
    assert.deepEqual(r.attributes.largeCommunities, [
      { globalAdministrator: 65000, localData1: 2, localData2: 2 },
    ]);
    assert.equal(
      p.evaluate(px('10.0.0.0/24'), {
        ...A,
        largeCommunities: [{ globalAdministrator: 65000, localData1: 1, localData2: 1 }],
      }).verdict,
      'reject',
    );
  });

  it('tells routes learned from a peer from those this speaker originated', () => {
    const p = compilePolicy({
      rules: [
        {
          match: [{ learned: true }, { prefix: [{ prefix: '10.0.0.0/8', ge: 8, le: 32 }] }],
          then: { verdict: 'reject' },
        },
      ],
      default: 'accept',
    });
    assert.equal(p.evaluate(px('10.1.0.0/16'), A).verdict, 'reject'); // learned by default (imports)
    assert.equal(p.evaluate(px('10.1.0.0/16'), A, true).verdict, 'reject');
    assert.equal(p.evaluate(px('10.1.0.0/16'), A, false).verdict, 'accept');
    const own = compilePolicy({
      rules: [{ match: [{ not: { learned: true } }], then: { verdict: 'reject' } }],
      default: 'accept',
    });
    assert.equal(own.evaluate(px('10.1.0.0/16'), A, false).verdict, 'reject');
    assert.equal(own.evaluate(px('10.1.0.0/16'), A, true).verdict, 'accept');
  });

  it('knows when it accepts everything unchanged, or can accept nothing', () => {
    const flags = (p: Policy) => {
      const c = compilePolicy(p);
      return [c.acceptsAll, c.rejectsAll, c.usesPrefix];
    };
    assert.deepEqual(flags({ rules: [], default: 'accept' }), [true, false, false]);
    assert.deepEqual(flags({ rules: [], default: 'reject' }), [false, true, false]);
    const deny = { match: [{ prefix: [{ prefix: '10.0.0.0/8' }] }], then: { verdict: 'reject' as const } };
    assert.deepEqual(flags({ rules: [deny], default: 'reject' }), [false, true, true]);
    // A rule without a verdict changes attributes and goes on; the default may still accept.
    const tag = { match: [], then: { med: 5 } };
    assert.deepEqual(flags({ rules: [tag], default: 'reject' }), [false, false, false]);
    assert.deepEqual(flags({ rules: [deny], default: 'accept' }), [false, false, true]);
  });

  it('names the rule and field of a bad policy', () => {
    const bad: [Policy, RegExp][] = [
      [
        { rules: [{ match: [{ prefix: [{ prefix: '10.0.0.1/8' }] }], then: {} }], default: 'accept' },
        /rules\[0\]\.match\[0\]\.prefix\[0\]: not a prefix/,
      ],
      [
        { rules: [{ match: [{ prefix: [{ prefix: '10.0.0.0/8', ge: 4 }] }], then: {} }], default: 'accept' },
        /ge <= le/,
      ],
      [
        { rules: [{ name: 'x', match: [], then: { addCommunities: ['1:2:3'] } }], default: 'accept' },
        /rules\[0\] \(x\)\.then\.addCommunities\[0\]/,
      ],
      [{ rules: [{ match: [], then: { localPref: -1 } }], default: 'accept' }, /then\.localPref/],
    ];
    for (const [p, re] of bad)
      assert.throws(
        () => compilePolicy(p),
        (e: unknown) => e instanceof PolicyError && re.test(e.message),
      );
  });
});
