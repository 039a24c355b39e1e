// The resync's comparison in integer form (DesiredRouteIndex over RouteViews) against the
// route model's own equality (routesEqual): for random desired routes and random kernel
// states, the reconciler writes exactly the routes routesEqual calls different, through a
// kernel with a dump visitor (FakeKernel.scanRoutes) and through one without (routes() only).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { NextHop, RouteInfo } from '@tabby/netlink';
import { RouteView, TABBY_ROUTE_PROTOCOL } from '@tabby/netlink';
import type { Kernel, Route, RouteKeyId, RouteNextHop } from '../src/index.js';
import {
  DesiredRouteIndex,
  FakeKernel,
  ManualClock,
  RouteReconciler,
  routeKeyId,
  routesEqual,
  RT_SCOPE_LINK,
  RT_SCOPE_UNIVERSE,
  sortNextHops,
} from '../src/index.js';

const PROTO = TABBY_ROUTE_PROTOCOL;
const DEVS = ['eth0', 'eth1', 'tunl0', 'cali1', 'cali2'] as const;

/** A kernel with only the required methods: the reconciler reads routes() into a view. */
function withoutVisitor(k: FakeKernel): Kernel {
  return {
    links: () => k.links(),
    routes: (f) => k.routes(f),
    applyRoutes: (ops) => k.applyRoutes(ops),
    watch: (fn) => k.watch(fn),
  };
}

const hopArb = (family: 4 | 6, multi: boolean): fc.Arbitrary<RouteNextHop> =>
  fc
    .record({
      dev: fc.constantFrom(...DEVS),
      gw: fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
      onlink: fc.boolean(),
      weight: multi ? fc.integer({ min: 1, max: 3 }) : fc.constant(1),
    })
    .map(({ dev, gw, onlink, weight }) => {
      const hop: { -readonly [K in keyof RouteNextHop]: RouteNextHop[K] } = { dev };
      if (gw !== undefined) hop.gateway = family === 4 ? `192.168.0.${gw}` : `fd00::${gw}`;
      if (onlink && gw !== undefined) hop.onlink = true;
      if (weight !== 1) hop.weight = weight;
      return hop;
    });

/** A route with key i (distinct prefixes), unicast (1-3 next hops) or blackhole. */
const routeArb = (i: number): fc.Arbitrary<Route> =>
  fc
    .record({ family: fc.constantFrom(4 as const, 6 as const), kind: fc.nat(9) })
    .chain(({ family, kind }) => {
      const base = {
        family,
        table: 254,
        dst: family === 4 ? `10.${65 + (i >> 8)}.${i & 255}.0` : `fd10:${(i + 1).toString(16)}::`,
        dstLen: family === 4 ? 26 : 122,
        metric: family === 6 ? 1024 : 0,
      };
      if (kind === 0)
        return fc.constant<Route>({ ...base, type: 'blackhole', scope: RT_SCOPE_UNIVERSE, nexthops: [] });
      return fc.integer({ min: 1, max: 3 }).chain((n) =>
        fc
          .uniqueArray(hopArb(family, n > 1), {
            minLength: n,
            maxLength: n,
            selector: (h) => `${h.gateway ?? ''}|${h.dev}`,
          })
          .map((hops): Route => {
            const gateway = hops.some((h) => h.gateway !== undefined);
            return {
              ...base,
              type: 'unicast',
              scope: family === 4 && !gateway ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE,
              nexthops: hops.length > 1 ? sortNextHops(hops) : hops,
            };
          }),
      );
    });

/**
 * What the kernel holds for a desired route: the same (hops in any order), one field of it
 * changed, another random route on its key, or nothing.
 */
type Start =
  | { readonly kind: 'same'; readonly shuffle: boolean }
  | { readonly kind: 'absent' }
  | { readonly kind: 'tweak'; readonly field: number; readonly hop: number }
  | { readonly kind: 'other'; readonly route: Route };

/** The desired route with one field changed (which may or may not matter to the kernel). */
function tweak(r: Route, field: number, hopAt: number): Route {
  const i = hopAt % Math.max(1, r.nexthops.length);
  const hops = [...r.nexthops];
  const hop = hops[i];
  const setHop = (h: RouteNextHop): Route => {
    hops[i] = h;
    return { ...r, nexthops: hops };
  };
  switch (field) {
    case 0:
      return { ...r, scope: r.scope === RT_SCOPE_LINK ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK };
    case 1:
      return r.type === 'blackhole'
        ? { ...r, type: 'unicast', nexthops: [{ dev: 'eth0' }] }
        : { ...r, type: 'blackhole', nexthops: [] };
    case 2:
      return hop === undefined
        ? { ...r, nexthops: [{ dev: 'lo' }] }
        : setHop({ ...hop, dev: hop.dev === 'eth0' ? 'eth1' : 'eth0' });
    case 3: {
      if (hop === undefined) return r;
      const { onlink: _, ...rest } = hop;
      return setHop(hop.onlink === true ? rest : { ...hop, onlink: true });
    }
    case 4:
      return hop === undefined || hops.length < 2 ? r : setHop({ ...hop, weight: (hop.weight ?? 1) + 1 });
    case 5:
      return hop === undefined ? r : setHop({ ...hop, gateway: r.family === 4 ? '192.168.9.9' : 'fd00::99' });
    default:
      return hop === undefined || hops.length < 2 ? r : { ...r, nexthops: hops.filter((_, k) => k !== i) };
  }
}

function toInfo(r: Route, index: ReadonlyMap<string, number>): RouteInfo {
  const info: { -readonly [K in keyof RouteInfo]: RouteInfo[K] } = {
    family: r.family,
    dst: r.dst,
    dstLen: r.dstLen,
    table: r.table,
    protocol: PROTO,
    scope: r.scope,
    type: r.type,
    flags: r.nexthops.length === 1 && r.nexthops[0]!.onlink === true ? 4 : 0,
    nexthops: r.nexthops.map((nh) => {
      const o: { -readonly [K in keyof NextHop]: NextHop[K] } = { oif: index.get(nh.dev)! };
      if (nh.gateway !== undefined) o.gateway = nh.gateway;
      if (nh.onlink === true) o.onlink = true;
      if (nh.weight !== undefined && nh.weight !== 1) o.weight = nh.weight;
      return o;
    }),
  };
  if (r.metric !== 0) info.priority = r.metric;
  return info;
}

/** A kernel route in the route model, as the reconciler reads one. */
function fromInfo(r: RouteInfo, names: ReadonlyMap<number, string>): Route {
  return {
    family: r.family,
    table: r.table,
    dst: r.dst,
    dstLen: r.dstLen,
    metric: r.priority ?? 0,
    type: r.type,
    scope: r.scope,
    nexthops:
      r.type === 'unicast'
        ? r.nexthops.map((nh) => ({
            dev: names.get(nh.oif ?? -1) ?? '?',
            ...(nh.gateway !== undefined ? { gateway: nh.gateway } : {}),
            ...(nh.onlink === true ? { onlink: true } : {}),
            ...(nh.weight !== undefined && nh.weight !== 1 ? { weight: nh.weight } : {}),
          }))
        : [],
  };
}

describe('resync comparison in integer form', () => {
  it('writes_exactly_the_routes_routes_equal_calls_different_with_and_without_a_dump_visitor', async () => {
    const caseArb = fc.integer({ min: 1, max: 12 }).chain((n) =>
      fc.tuple(
        fc.tuple(...Array.from({ length: n }, (_, i) => routeArb(i))),
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant('same' as const), shuffle: fc.boolean() }),
            fc.record({ kind: fc.constant('absent' as const) }),
            fc.record({ kind: fc.constant('tweak' as const), field: fc.nat(6), hop: fc.nat(2) }),
            fc.record({ kind: fc.constant('tweak' as const), field: fc.nat(6), hop: fc.nat(2) }),
            routeArb(0).map((r) => ({ kind: 'other' as const, route: r })),
          ),
          { minLength: n, maxLength: n },
        ),
        fc.array(routeArb(0), { maxLength: 3 }),
        fc.boolean(),
      ),
    );
    await fc.assert(
      fc.asyncProperty(caseArb, async ([desired, starts, extras, visitor]) => {
        const fake = new FakeKernel();
        for (const d of DEVS) fake.addLink(d);
        const index = new Map((await fake.links()).map((l) => [l.name, l.index]));
        const names = new Map([...index].map(([n, i]) => [i, n]));
        let replaced = 0;
        let added = 0;
        desired.forEach((want, i) => {
          const s = starts[i] as Start;
          // a route of the other family cannot hold this key: that start is an absent route
          if (s.kind === 'absent' || (s.kind === 'other' && s.route.family !== want.family)) {
            added++;
            return;
          }
          // a changed route keeps the desired one's key
          const have: Route =
            s.kind === 'other'
              ? { ...s.route, dst: want.dst, dstLen: want.dstLen, metric: want.metric }
              : s.kind === 'tweak'
                ? tweak(want, s.field, s.hop)
                : { ...want, nexthops: s.shuffle ? [...want.nexthops].reverse() : want.nexthops };
          fake.addRouteByHand({ ...toInfo(have, index), protocol: PROTO });
          // as the kernel keeps it (the fake, like the kernel, gives IPv6 routes universe scope)
          const kept = fake.getRoute(want.family, want.dst, want.dstLen)!;
          if (!routesEqual(want, fromInfo(kept, names))) replaced++;
        });
        // unwanted routes of ours, on keys nobody wants
        extras.forEach((x, j) => {
          const r = { ...x, dst: x.family === 4 ? `10.200.${j}.0` : `fd20:${j + 1}::` };
          fake.addRouteByHand({ ...toInfo(r, index), protocol: PROTO });
        });
        const r = new RouteReconciler(
          { kernel: visitor ? fake : withoutVisitor(fake), clock: new ManualClock() },
          { cleanupGraceMs: 0 },
        );
        r.setDesired(desired);
        fake.takeWrites();
        const p = await r.apply();
        assert.equal(p.resynced, true);
        assert.deepEqual(
          { added: p.added, replaced: p.replaced, deleted: p.deleted },
          { added, replaced, deleted: extras.length },
        );
        // and a second resync finds nothing to do
        r.requestResync();
        const again = await r.apply();
        assert.equal(again.added + again.replaced + again.deleted, 0);
      }),
      { numRuns: 300 },
    );
  });
});

describe('DesiredRouteIndex', () => {
  const links = new Map([
    ['eth0', 2],
    ['tunl0', 3],
  ]);
  const entry = (r: Route): [RouteKeyId, Route] => [routeKeyId(r), r];
  const index = (entries: [RouteKeyId, Route][]): DesiredRouteIndex => {
    const idx = new DesiredRouteIndex();
    for (const [k, r] of entries) idx.upsert(k, r);
    return idx;
  };
  const ecmp: Route = {
    family: 4,
    table: 254,
    dst: '10.65.2.0',
    dstLen: 26,
    metric: 0,
    type: 'unicast',
    scope: RT_SCOPE_UNIVERSE,
    nexthops: [
      { dev: 'eth0', gateway: '192.168.0.12' },
      { dev: 'tunl0', gateway: '192.168.7.13', onlink: true },
    ],
  };
  const blackhole6: Route = {
    family: 6,
    table: 254,
    dst: 'fd10::100',
    dstLen: 122,
    metric: 1024,
    type: 'blackhole',
    scope: RT_SCOPE_UNIVERSE,
    nexthops: [],
  };

  it('finds_a_route_by_its_kernel_key_and_matches_ecmp_hops_in_any_order', () => {
    const idx = index([entry(ecmp), entry(blackhole6)]);
    idx.resolveDevices((n) => links.get(n));
    const v = new RouteView().assign({
      ...toInfo({ ...ecmp, nexthops: [...ecmp.nexthops].reverse() }, links),
      protocol: PROTO,
    });
    const e = idx.find(v);
    assert.equal(idx.key(e), routeKeyId(ecmp));
    assert.equal(idx.matches(e, v), true);
    // another metric is another key
    assert.equal(idx.find(new RouteView().assign({ ...toInfo(ecmp, links), priority: 5 })), -1);
  });

  it('ignores_a_blackholes_next_hops_as_the_kernel_reports_ipv6_blackholes_via_lo', () => {
    const idx = index([entry(blackhole6)]);
    idx.resolveDevices(() => undefined);
    const v = new RouteView().assign({ ...toInfo(blackhole6, links), nexthops: [{ oif: 1 }] });
    assert.equal(idx.matches(idx.find(v), v), true);
  });

  it('matches_no_route_through_a_device_that_does_not_exist_now', () => {
    const idx = index([entry(ecmp)]);
    idx.resolveDevices((n) => (n === 'tunl0' ? undefined : links.get(n)));
    const v = new RouteView().assign(toInfo(ecmp, links));
    assert.equal(idx.matches(idx.find(v), v), false);
  });

  it('follows_upserts_and_removals_like_a_map_through_hash_growth_and_hop_compaction', () => {
    // many routes coming and going (pods, ECMP paths changing): the index must find exactly
    // the live ones, with their current next hops, however its slots and hop arrays moved
    const op = fc.record({
      key: fc.nat(255),
      remove: fc.boolean(),
      hops: fc.integer({ min: 1, max: 4 }),
      gw: fc.nat(250),
    });
    fc.assert(
      fc.property(fc.array(op, { minLength: 1500, maxLength: 4000 }), (ops) => {
        const idx = new DesiredRouteIndex();
        const model = new Map<RouteKeyId, Route>();
        const routeFor = (key: number, hops: number, gw: number): Route => ({
          family: key % 3 === 0 ? 6 : 4,
          table: 254,
          dst: key % 3 === 0 ? `fd10:${(key + 1).toString(16)}::` : `10.65.${key}.0`,
          dstLen: key % 3 === 0 ? 122 : 26,
          metric: key % 3 === 0 ? 1024 : 0,
          type: 'unicast',
          scope: RT_SCOPE_UNIVERSE,
          nexthops: Array.from({ length: hops }, (_, i) => ({
            dev: i % 2 === 0 ? 'eth0' : 'tunl0',
            gateway: key % 3 === 0 ? `fd00::${(gw + i + 1).toString(16)}` : `192.168.${i}.${gw}`,
          })),
        });
        for (const o of ops) {
          const r = routeFor(o.key, o.hops, o.gw);
          const k = routeKeyId(r);
          if (o.remove) {
            idx.remove(k);
            model.delete(k);
          } else {
            idx.upsert(k, r);
            model.set(k, r);
          }
        }
        assert.equal(idx.size, model.size);
        idx.resolveDevices((n) => links.get(n));
        for (const [k, r] of model) {
          const v = new RouteView().assign(toInfo(r, links));
          const e = idx.find(v);
          assert.equal(idx.key(e), k);
          assert.equal(idx.matches(e, v), true, k);
        }
        for (let key = 0; key < 256; key++) {
          const r = routeFor(key, 1, 0);
          if (!model.has(routeKeyId(r))) assert.equal(idx.find(new RouteView().assign(toInfo(r, links))), -1);
        }
      }),
      { numRuns: 25 },
    );
  });

  it('leaves_routes_with_addresses_not_in_canonical_form_to_the_string_comparison', () => {
    const odd6 = { ...blackhole6, dst: 'fd10:0::100' };
    const oddGateway: Route = {
      ...ecmp,
      nexthops: [{ dev: 'eth0', gateway: '192.168.0.12' }],
      dst: '10.65.3.0',
    };
    const idx = index([
      entry(odd6),
      entry(blackhole6),
      entry({ ...oddGateway, nexthops: [{ dev: 'eth0', gateway: '192.168.000.12' }] }),
    ]);
    idx.resolveDevices((n) => links.get(n));
    // never found, so never taken as in sync without the reconciler's own comparison
    assert.equal(idx.find(new RouteView().assign(toInfo(blackhole6, links))), 1);
    assert.equal(idx.find(new RouteView().assign(toInfo(oddGateway, links))), -1);
    assert.equal(idx.size, 3);
  });
});
