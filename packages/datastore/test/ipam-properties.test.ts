// IPAM under concurrency, with fast-check: several nodes (and two requesters on one node)
// allocate and release at once on one memory backend, every backend call's completion
// ordered by fc.scheduler so reads go stale and compare-and-swap writes really conflict;
// a second property adds a wrapper that fails writes and reads at random (ConflictError,
// UnavailableError) before they happen. After every run: no address twice, exactly the
// successful, unreleased requests hold addresses, handles count exactly what blocks hold,
// affinities and blocks agree; after releasing everything, nothing is allocated.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MemoryBackend } from '../src/store/memory.js';
import { ConflictError, UnavailableError } from '../src/store/errors.js';
import { Ipam, MaxBlocksReachedError, PoolExhaustedError } from '../src/ipam/index.js';
import { ipamConfig, node, pool, seeded } from './ipam/fixtures.js';
import { allocated, problems, snapshot } from './ipam/invariants.js';
import { scheduled } from './ipam/wrappers.js';

type Step =
  | { readonly op: 'alloc'; readonly num4: number; readonly num6: number }
  | { readonly op: 'releaseHandle'; readonly pick: number }
  | { readonly op: 'releaseIp'; readonly pick: number }
  | { readonly op: 'assignIp'; readonly offset: number }
  | { readonly op: 'releaseAffinities' };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('alloc' as const),
      num4: fc.integer({ min: 0, max: 3 }),
      num6: fc.integer({ min: 0, max: 2 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('releaseHandle' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('releaseIp' as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('assignIp' as const), offset: fc.integer({ min: 0, max: 31 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'releaseAffinities' as const }) },
);

const scenario = fc.record({
  // Per requester: [node index, its steps]. Two requesters may share a node, as two
  // CNI invocations on one host do.
  requesters: fc.array(
    fc.tuple(fc.integer({ min: 0, max: 2 }), fc.array(step, { minLength: 1, maxLength: 6 })),
    {
      minLength: 2,
      maxLength: 4,
    },
  ),
  strict: fc.boolean(),
  seed: fc.integer(),
});

interface Held {
  readonly handle: string;
  ips: string[];
}

async function runScenario(
  sc: fc.Scheduler,
  input: { requesters: [number, Step[]][]; strict: boolean; seed: number },
  faultRate: number,
): Promise<void> {
  const mem = new MemoryBackend();
  // A /27 in blocks of 4 and an IPv6 /123 in blocks of 8: few enough that nodes run out,
  // borrow and meet each other in the same blocks.
  await mem.create(pool('v4', { cidr: '10.0.0.0/27', blockSize: 30 }));
  await mem.create(pool('v6', { cidr: 'fd00::/123', blockSize: 125 }));
  for (const n of ['n0', 'n1', 'n2']) await mem.create(node(n));
  if (input.strict) await mem.create(ipamConfig({ strictAffinity: true }));

  const backend = scheduled(mem, sc);
  const rnd = seeded(input.seed);
  if (faultRate > 0)
    backend.fault = (c) => {
      if (rnd() >= faultRate) return undefined;
      const key = { kind: c.kind, name: c.name ?? '' };
      return rnd() < 0.5 && (c.op === 'update' || c.op === 'delete')
        ? new ConflictError(key, 'stale')
        : new UnavailableError(`injected: ${c.op} ${c.kind}`);
    };
  const clock = { now: () => 1_700_000_000_000, sleep: () => sc.schedule(Promise.resolve(), 'backoff') };
  const ipam = new Ipam({ backend, clock, random: seeded(input.seed + 1) });

  const held = new Map<string, Held>();
  let n = 0;
  const run = async (r: number, nodeIdx: number, steps: readonly Step[]): Promise<void> => {
    const nodeName = `n${nodeIdx}`;
    const mine: Held[] = [];
    for (const s of steps) {
      switch (s.op) {
        case 'alloc': {
          if (s.num4 + s.num6 === 0) break;
          const handle = `r${r}-${n++}`;
          try {
            const got = await ipam.autoAssign({
              handleId: handle,
              num4: s.num4,
              num6: s.num6,
              node: nodeName,
            });
            assert.equal(got.ipv4.length, s.num4);
            assert.equal(got.ipv6.length, s.num6);
            const h = { handle, ips: [...got.ipv4, ...got.ipv6].map((a) => a.ip) };
            held.set(handle, h);
            mine.push(h);
          } catch (e) {
            if (!(e instanceof PoolExhaustedError) && !(e instanceof MaxBlocksReachedError)) throw e;
          }
          break;
        }
        case 'assignIp': {
          const handle = `r${r}-${n++}`;
          const ip = `10.0.0.${s.offset}`;
          try {
            await ipam.assignIp({ ip, handleId: handle, node: nodeName });
            const h = { handle, ips: [ip] };
            held.set(handle, h);
            mine.push(h);
          } catch (e) {
            if (
              !(e instanceof Error) ||
              !['AddressInUse', 'AffinityMismatch'].includes((e as { code?: string }).code ?? '')
            )
              throw e;
          }
          break;
        }
        case 'releaseHandle': {
          const h = mine.splice(s.pick % Math.max(1, mine.length), 1)[0];
          if (h === undefined) break;
          await ipam.releaseByHandle(h.handle);
          held.delete(h.handle);
          break;
        }
        case 'releaseIp': {
          const h = mine[s.pick % Math.max(1, mine.length)];
          const ip = h?.ips.pop();
          if (h === undefined || ip === undefined) break;
          assert.deepEqual(await ipam.releaseIps([ip]), []);
          break;
        }
        case 'releaseAffinities':
          await ipam.releaseHostAffinities(nodeName);
          break;
      }
    }
  };
  await sc.waitFor(Promise.all(input.requesters.map(([nodeIdx, steps], r) => run(r, nodeIdx, steps))));

  const snap = await snapshot(mem);
  assert.deepEqual(problems(snap), []);
  const expected = new Map<string, string>();
  for (const h of held.values())
    for (const ip of h.ips) {
      assert.equal(expected.get(ip), undefined, `${ip} handed to ${expected.get(ip)} and ${h.handle}`);
      expected.set(ip, h.handle);
    }
  assert.deepEqual(new Map([...allocated(snap)].sort()), new Map([...expected].sort()));

  backend.fault = () => undefined;
  await sc.waitFor(Promise.all([...held.keys()].map((h) => ipam.releaseByHandle(h))));
  const after = await snapshot(mem);
  assert.deepEqual(problems(after), []);
  assert.equal(allocated(after).size, 0);
  assert.deepEqual(after.handles, []);
}

describe('ipam properties', () => {
  it('concurrent_requests_never_share_an_address_or_leak', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), scenario, (sc, input) => runScenario(sc, input, 0)),
      { numRuns: 150 },
    );
  });

  it('injected_conflicts_and_unavailability_leave_the_store_consistent', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), scenario, fc.constantFrom(0.05, 0.2), (sc, input, rate) =>
        runScenario(sc, input, rate),
      ),
      { numRuns: 150 },
    );
  });
});
