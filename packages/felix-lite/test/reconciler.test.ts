// The reconciler against the in-memory kernel: programming, adoption, ownership, waiting for
// devices, drift repair, and convergence under every injected fault, on a manual clock.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { RouteInfo } from '@tabby/netlink';
import { TABBY_ROUTE_PROTOCOL } from '@tabby/netlink';
import type { FakeErrno, PassResult, Route } from '../src/index.js';
import {
  computeDesired,
  DeltaTracker,
  EndpointSysctls,
  endpointSysctls,
  describeRoute,
  FakeKernel,
  ManualClock,
  RouteReconciler,
  RT_SCOPE_LINK,
} from '../src/index.js';

const PROTO = TABBY_ROUTE_PROTOCOL;
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Lets time pass on the manual clock in small steps, flushing I/O callbacks between them. */
async function advance(clock: ManualClock, ms: number, step = 5): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(step);
    for (let i = 0; i < 4; i++) await tick();
  }
}

/** The kernel's routes of a protocol, as `ip route` would print them. */
async function view(k: FakeKernel, proto = PROTO): Promise<string[]> {
  const names = new Map((await k.links()).map((l) => [l.index, l.name]));
  return k
    .allRoutes()
    .filter((r) => r.protocol === proto)
    .map((r) => describeRoute(toRoute(r, names)))
    .sort();
}

function toRoute(r: RouteInfo, names: Map<number, string>): Route {
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
          }))
        : [],
  };
}

const desc = (routes: readonly Route[]): string[] => routes.map(describeRoute).sort();

/** A node's desired routes: two local pods, an own block, remote blocks direct, IPIP, ECMP and IPv6. */
function desiredRoutes(extraPods = 0): Route[] {
  return [
    ...computeDesired({
      hostInterfaces: [{ name: 'eth0', addresses: ['192.168.0.11/24', 'fd00::11/64'] }],
      pools: [{ cidr: '10.65.0.0/16', ipipMode: 'CrossSubnet' }, { cidr: 'fd10::/48' }],
      affineBlocks: ['10.65.1.0/26', 'fd10::100/122'],
      endpoints: [
        { interfaceName: 'cali1', addresses: ['10.65.1.7', 'fd10::107'] },
        { interfaceName: 'cali2', addresses: ['10.65.1.8'] },
        ...Array.from({ length: extraPods }, (_, i) => ({
          interfaceName: `calx${i}`,
          addresses: [`10.65.1.${20 + i}`],
        })),
      ],
      paths: [
        { prefix: '10.65.2.0/26', nextHops: ['192.168.0.12'] },
        { prefix: '10.65.3.0/26', nextHops: ['192.168.7.13'] },
        { prefix: '10.65.4.0/26', nextHops: ['192.168.0.12', '192.168.7.13'] },
        { prefix: 'fd10::200/122', nextHops: ['fd00::12'] },
      ],
    }).routes,
  ];
}

function node(): { kernel: FakeKernel; clock: ManualClock } {
  const kernel = new FakeKernel();
  for (const n of ['eth0', 'tunl0', 'cali1', 'cali2']) kernel.addLink(n);
  return { kernel, clock: new ManualClock() };
}

function reconciler(kernel: FakeKernel, clock: ManualClock, cleanupGraceMs = 0): RouteReconciler {
  return new RouteReconciler(
    { kernel, clock, random: () => 0.5 },
    { cleanupGraceMs, resyncIntervalMs: 30_000, debounceMs: 10 },
  );
}

async function started(kernel: FakeKernel, clock: ManualClock, routes: Route[], grace = 0) {
  const r = reconciler(kernel, clock, grace);
  r.setDesired(routes);
  r.start();
  await advance(clock, 50);
  return r;
}

describe('DeltaTracker', () => {
  it('tracks_pending_updates_and_deletions_as_either_side_changes', () => {
    const t = new DeltaTracker<string, number>((a, b) => a === b);
    t.desired.set('a', 1);
    t.desired.set('b', 2);
    t.dataplane.replaceAll([
      ['b', 2],
      ['c', 3],
    ]);
    assert.deepEqual([...t.pendingUpdates()], [['a', 1]]);
    assert.deepEqual([...t.pendingDeletions()], ['c']);
    t.dataplane.set('a', 1);
    t.dataplane.delete('c');
    assert.equal(t.inSync(), true);
    t.dataplane.set('b', 5);
    assert.deepEqual([...t.pendingUpdates()], [['b', 2]]);
    t.desired.replaceAll([['a', 1]]);
    assert.deepEqual([...t.pendingUpdates()], []);
    assert.deepEqual([...t.pendingDeletions()], ['b']);
    t.desired.delete('a');
    assert.deepEqual([...t.pendingDeletions()].sort(), ['a', 'b']);
  });
});

describe('RouteReconciler against the fake kernel', () => {
  it('uses_tabby_route_protocol_by_default', () => {
    assert.equal(new RouteReconciler({ kernel: new FakeKernel() }).protocol, 84);
    assert.equal(PROTO, 84);
  });

  it('programs_every_desired_route_into_an_empty_kernel_in_one_batch', async () => {
    const { kernel, clock } = node();
    const routes = desiredRoutes();
    const r = await started(kernel, clock, routes);
    assert.deepEqual(await view(kernel), desc(routes));
    assert.deepEqual(kernel.takeWrites(), { add: routes.length, replace: 0, delete: 0 });
    assert.equal(r.lastResult?.inSync, true);
    await r.stop();
  });

  it('writes_nothing_on_a_resync_when_nothing_changed', async () => {
    const { kernel, clock } = node();
    const r = await started(kernel, clock, desiredRoutes());
    kernel.takeWrites();
    r.requestResync();
    await advance(clock, 50);
    assert.equal(r.lastResult?.resynced, true);
    assert.deepEqual(kernel.takeWrites(), { add: 0, replace: 0, delete: 0 });
    await r.stop();
  });

  it('replaces_changed_routes_and_deletes_unwanted_ones_only', async () => {
    const { kernel, clock } = node();
    const routes = desiredRoutes();
    const r = await started(kernel, clock, routes);
    kernel.takeWrites();
    const next = routes
      .filter((x) => x.dst !== '10.65.3.0')
      .map((x) =>
        x.dst === '10.65.2.0'
          ? { ...x, nexthops: [{ dev: 'tunl0', gateway: '192.168.0.12', onlink: true }] }
          : x,
      );
    r.setDesired(next);
    await advance(clock, 50);
    assert.deepEqual(kernel.takeWrites(), { add: 0, replace: 1, delete: 1 });
    assert.deepEqual(await view(kernel), desc(next));
    await r.stop();
  });

  it('adopts_the_routes_of_a_previous_instance_without_rewriting_them', async () => {
    const { kernel, clock } = node();
    const routes = desiredRoutes();
    const first = await started(kernel, clock, routes);
    await first.stop();
    kernel.takeWrites();
    const second = await started(kernel, clock, routes);
    assert.deepEqual(kernel.takeWrites(), { add: 0, replace: 0, delete: 0 });
    assert.equal(second.lastResult?.inSync, true);
    await second.stop();
  });

  it('does_not_write_before_the_desired_routes_are_known', async () => {
    const { kernel, clock } = node();
    await started(kernel, clock, desiredRoutes()).then((r) => r.stop());
    kernel.takeWrites();
    const r = reconciler(kernel, clock);
    r.start();
    await advance(clock, 100);
    assert.deepEqual(kernel.takeWrites(), { add: 0, replace: 0, delete: 0 });
    assert.equal(r.lastResult?.resynced, true);
    r.setDesired([]);
    await advance(clock, 50);
    assert.equal(kernel.takeWrites().delete, desiredRoutes().length);
    await r.stop();
  });

  it('never_replaces_or_deletes_a_route_of_another_protocol', async () => {
    const { kernel, clock } = node();
    const eth0 = kernel.linkByName('eth0')!.index;
    // an operator's route on a key we want, and one we do not want
    kernel.addRouteByHand({
      family: 4,
      dst: '10.65.2.0',
      dstLen: 26,
      protocol: 4,
      nexthops: [{ oif: eth0 }],
    });
    kernel.addRouteByHand({
      family: 4,
      dst: '10.99.0.0',
      dstLen: 16,
      protocol: 4,
      nexthops: [{ oif: eth0 }],
    });
    const foreign = await view(kernel, 4);
    const r = await started(kernel, clock, desiredRoutes());
    await advance(clock, 2_000);
    assert.deepEqual(await view(kernel, 4), foreign);
    assert.equal(kernel.writes.filter((w) => w.op !== 'add').length, 0);
    assert.deepEqual(r.lastResult?.conflicts, ['4|254|10.65.2.0/26|0']);
    // the operator removes theirs: ours follows at once, not at the end of the backoff
    kernel.deleteRouteByHand({ family: 4, dst: '10.65.2.0', dstLen: 26, protocol: 4 });
    await advance(clock, 30);
    assert.deepEqual(await view(kernel), desc(desiredRoutes()));
    assert.equal(r.lastResult?.inSync, true);
    await r.stop();
  });

  it('waits_for_a_missing_device_without_failing_and_writes_when_it_appears', async () => {
    const { kernel, clock } = node();
    kernel.removeLink('cali2');
    const r = await started(kernel, clock, desiredRoutes());
    assert.deepEqual(
      r.lastResult?.waiting.map((w) => [w.dev, w.reason]),
      [['cali2', 'missing']],
    );
    assert.equal(r.lastError, undefined);
    assert.equal(kernel.writes.filter((w) => w.route.dst === '10.65.1.8').length, 0);
    await advance(clock, 5_000);
    assert.equal(
      kernel.writes.filter((w) => w.route.dst === '10.65.1.8').length,
      0,
      'no retries while waiting',
    );
    kernel.addLink('cali2');
    await advance(clock, 30);
    assert.deepEqual(await view(kernel), desc(desiredRoutes()));
    await r.stop();
  });

  it('waits_for_a_device_that_is_down_and_writes_when_it_comes_up', async () => {
    const { kernel, clock } = node();
    kernel.setLinkUp('cali2', false);
    const r = await started(kernel, clock, desiredRoutes());
    assert.deepEqual(
      r.lastResult?.waiting.map((w) => [w.dev, w.reason]),
      [['cali2', 'down']],
    );
    kernel.setLinkUp('cali2', true);
    await advance(clock, 30);
    assert.deepEqual(await view(kernel), desc(desiredRoutes()));
    await r.stop();
  });

  it('rewrites_routes_the_kernel_flushed_silently_with_a_removed_link', async () => {
    const { kernel, clock } = node();
    const r = await started(kernel, clock, desiredRoutes());
    kernel.removeLink('cali1'); // the kernel drops 10.65.1.7 and fd10::107 without RTM_DELROUTE
    kernel.addLink('cali1'); // the pod is rewired: a new index
    await advance(clock, 50);
    assert.deepEqual(await view(kernel), desc(desiredRoutes()));
    await r.stop();
  });

  it('repairs_a_route_deleted_by_hand_within_one_debounce', async () => {
    const { kernel, clock } = node();
    const r = await started(kernel, clock, desiredRoutes());
    kernel.takeWrites();
    kernel.deleteRouteByHand({ family: 4, dst: '10.65.1.0', dstLen: 26, protocol: PROTO });
    kernel.deleteRouteByHand({ family: 6, dst: 'fd10::200', dstLen: 122, protocol: PROTO, priority: 1024 });
    await advance(clock, 20);
    assert.deepEqual(kernel.takeWrites(), { add: 2, replace: 0, delete: 0 });
    assert.deepEqual(await view(kernel), desc(desiredRoutes()));
    await r.stop();
  });

  it('repairs_a_route_changed_by_hand_that_kept_our_protocol', async () => {
    const { kernel, clock } = node();
    const r = await started(kernel, clock, desiredRoutes());
    kernel.addRouteByHand(
      {
        family: 4,
        dst: '10.65.2.0',
        dstLen: 26,
        protocol: PROTO,
        nexthops: [{ oif: kernel.linkByName('eth0')!.index, gateway: '192.168.0.99' }],
      },
      true,
    );
    await advance(clock, 20);
    assert.deepEqual(await view(kernel), desc(desiredRoutes()));
    await r.stop();
  });

  it('finds_drift_the_events_missed_on_the_periodic_resync', async () => {
    const { kernel, clock } = node();
    const r = await started(kernel, clock, desiredRoutes());
    assert.equal(kernel.deleteRouteSilently(4, '10.65.1.0', 26), true);
    await advance(clock, 1_000);
    assert.notDeepEqual(await view(kernel), desc(desiredRoutes()));
    await advance(clock, 30_000, 50);
    assert.deepEqual(await view(kernel), desc(desiredRoutes()));
    await r.stop();
  });

  it('keeps_an_unwanted_route_through_a_new_pod_device_for_the_grace_period_only', async () => {
    const { kernel, clock } = node();
    const r = await started(kernel, clock, desiredRoutes(), 10_000);
    // the CNI plugin wires a pod before the datastore tells us about it
    const cali9 = kernel.addLink('cali9');
    kernel.addRouteByHand({
      family: 4,
      dst: '10.65.1.9',
      dstLen: 32,
      protocol: PROTO,
      scope: RT_SCOPE_LINK,
      nexthops: [{ oif: cali9.index }],
    });
    // a stale route of ours via the underlay is not a pod's: no grace
    kernel.addRouteByHand({
      family: 4,
      dst: '10.65.9.0',
      dstLen: 26,
      protocol: PROTO,
      nexthops: [{ oif: kernel.linkByName('eth0')!.index, gateway: '192.168.0.12' }],
    });
    await advance(clock, 5_000, 50);
    assert.equal(kernel.getRoute(4, '10.65.1.9', 32)?.protocol, PROTO);
    assert.equal(kernel.getRoute(4, '10.65.9.0', 26), undefined);
    assert.equal(r.lastResult?.deferredDeletions, 1);
    await advance(clock, 6_000, 50);
    assert.equal(kernel.getRoute(4, '10.65.1.9', 32), undefined);
    await r.stop();
  });

  it('backs_off_exponentially_while_passes_keep_failing', async () => {
    const { kernel, clock } = node();
    kernel.failDumps = 6;
    const r = reconciler(kernel, clock);
    const failedAt: number[] = [];
    r.onPass((x) => {
      if (x instanceof Error) failedAt.push(clock.now());
    });
    r.setDesired(desiredRoutes());
    r.start();
    await advance(clock, 10_000, 10);
    const gaps = failedAt.slice(1).map((t, i) => t - failedAt[i]!);
    assert.equal(failedAt.length, 6);
    for (let i = 1; i < gaps.length; i++) assert.ok(gaps[i]! > gaps[i - 1]!, `gaps ${gaps.join(',')}`);
    assert.deepEqual(await view(kernel), desc(desiredRoutes()));
    await r.stop();
  });

  const faults: { name: string; inject: (k: FakeKernel) => void }[] = [
    ...(['EEXIST', 'ENODEV', 'ENETDOWN', 'ENETUNREACH', 'EBUSY'] as FakeErrno[]).map((errno) => ({
      name: `${errno}_on_some_writes`,
      inject: (k: FakeKernel) => k.writeFaults.push({ errno, times: 3 }),
    })),
    { name: 'ESRCH_on_a_delete', inject: (k) => k.writeFaults.push({ errno: 'ESRCH', times: 5 }) },
    { name: 'EINTR_on_dumps', inject: (k) => (k.failDumps = 3) },
    { name: 'a_batch_with_an_unknown_outcome', inject: (k) => (k.failBatches = 2) },
    { name: 'lost_events', inject: (k) => (k.dropEvents = true) },
  ];
  for (const f of faults)
    it(`converges_after_${f.name}`, async () => {
      const { kernel, clock } = node();
      const eth0 = kernel.linkByName('eth0')!.index;
      kernel.addRouteByHand({
        family: 4,
        dst: '10.99.0.0',
        dstLen: 16,
        protocol: 4,
        nexthops: [{ oif: eth0 }],
      });
      const r = await started(kernel, clock, desiredRoutes());
      const half = desiredRoutes().filter((_, i) => i % 2 === 0);
      f.inject(kernel);
      r.setDesired(half); // deletions
      await advance(clock, 100);
      kernel.deleteRouteByHand({ family: 4, dst: half[0]!.dst, dstLen: half[0]!.dstLen, protocol: PROTO });
      f.inject(kernel);
      r.setDesired(desiredRoutes()); // additions
      await advance(clock, 100);
      kernel.dropEvents = false;
      kernel.addLink('late0'); // an event, so lost ones surface as an overrun
      await advance(clock, 15_000, 20);
      assert.deepEqual(await view(kernel), desc(desiredRoutes()));
      assert.deepEqual(await view(kernel, 4), ['10.99.0.0/16 dev eth0 scope link']);
      assert.equal(r.lastResult?.inSync, true, JSON.stringify(r.lastResult));
      await r.stop();
    });

  it('converges_from_any_start_under_random_faults', async () => {
    const all = desiredRoutes(6);
    await fc.assert(
      fc.asyncProperty(
        fc.subarray(all),
        fc.subarray(all),
        fc.array(fc.constantFrom<FakeErrno>('EEXIST', 'ENODEV', 'ENETDOWN', 'EBUSY', 'ESRCH'), {
          maxLength: 4,
        }),
        fc.nat(3),
        fc.nat(2),
        async (before, after, errnos, dumps, batches) => {
          const { kernel, clock } = node();
          for (let i = 0; i < 6; i++) kernel.addLink(`calx${i}`);
          const first = await started(kernel, clock, before);
          await first.stop();
          for (const errno of errnos) kernel.writeFaults.push({ errno, times: 2 });
          kernel.failDumps = dumps;
          kernel.failBatches = batches;
          const r = await started(kernel, clock, after);
          // worst case: eight refusals of one route back off 0.1+0.2+...+6.4+10 s = 22.7 s
          await advance(clock, 30_000, 50);
          assert.deepEqual(await view(kernel), desc(after));
          await r.stop();
        },
      ),
      { numRuns: 40 },
    );
  });

  it('reports_a_pass_result_with_counts', async () => {
    const { kernel, clock } = node();
    const r = reconciler(kernel, clock);
    r.setDesired(desiredRoutes());
    const res: PassResult = await r.apply();
    assert.equal(res.added, desiredRoutes().length);
    assert.deepEqual(r.counts, {
      desired: desiredRoutes().length,
      programmed: desiredRoutes().length,
      pendingUpdates: 0,
      pendingDeletions: 0,
    });
  });

  it('refuses_desired_routes_outside_its_table_or_with_duplicate_keys', () => {
    const r = reconciler(new FakeKernel(), new ManualClock());
    const [a] = desiredRoutes();
    assert.throws(() => r.setDesired([{ ...a!, table: 100 }]), /table 100/);
    assert.throws(() => r.setDesired([a!, a!]), /share the key/);
  });
});

describe('EndpointSysctls', () => {
  const tick2 = async (): Promise<void> => {
    for (let i = 0; i < 3; i++) await tick();
  };

  it('sets_the_host_veth_sysctls_of_present_and_later_devices_and_again_after_a_recreate', async () => {
    const kernel = new FakeKernel();
    kernel.addLink('cali1');
    const values = new Map<string, string>();
    const sysctl = {
      read: (p: string) => values.get(p) ?? 'kernel default',
      write: (p: string, v: string) => void values.set(p, v),
    };
    const s = new EndpointSysctls({ kernel, sysctl });
    s.start();
    await tick2();
    await s.setEndpoints(
      new Map<string, (4 | 6)[]>([
        ['cali1', [4, 6]],
        ['cali2', [4]],
      ]),
    );
    for (const [p, v] of endpointSysctls('cali1', [4, 6])) assert.equal(values.get(p), v, p);
    assert.equal(values.get('net/ipv4/conf/cali1/proxy_arp'), '1');
    assert.equal(values.get('net/ipv6/conf/cali1/proxy_ndp'), '1');
    assert.equal(s.writes, 8);
    kernel.addLink('cali2');
    await tick2();
    assert.equal(values.get('net/ipv4/conf/cali2/proxy_arp'), '1');
    assert.equal(values.get('net/ipv6/conf/cali2/proxy_ndp'), undefined);
    // the device is recreated: its sysctls are gone with it and are written again
    kernel.removeLink('cali2');
    for (const [p] of endpointSysctls('cali2', [4])) values.delete(p);
    kernel.addLink('cali2');
    await tick2();
    assert.equal(values.get('net/ipv4/conf/cali2/forwarding'), '1');
    const before = s.writes;
    await s.refresh();
    assert.equal(s.writes, before, 'nothing rewritten when already set');
    s.stop();
  });

  it('a_repeated_setEndpoints_reads_only_new_devices_and_a_family_change_configures_again', async () => {
    // The node daemon calls setEndpoints on every datastore change: with hundreds of pods,
    // reading every endpoint's sysctls each time would cost thousands of reads per pod start.
    const kernel = new FakeKernel();
    kernel.addLink('cali1');
    kernel.addLink('cali2');
    const values = new Map<string, string>();
    let reads = 0;
    const sysctl = {
      read: (p: string) => (reads++, values.get(p) ?? 'kernel default'),
      write: (p: string, v: string) => void values.set(p, v),
    };
    const s = new EndpointSysctls({ kernel, sysctl });
    s.start();
    await tick2();
    await s.setEndpoints(new Map<string, (4 | 6)[]>([['cali1', [4]]]));
    assert.equal(reads, endpointSysctls('cali1', [4]).length);
    reads = 0;
    await s.setEndpoints(new Map<string, (4 | 6)[]>([['cali1', [4]]]));
    assert.equal(reads, 0, 'an unchanged endpoint was read again');
    await s.setEndpoints(
      new Map<string, (4 | 6)[]>([
        ['cali1', [4]],
        ['cali2', [4]],
      ]),
    );
    assert.equal(reads, endpointSysctls('cali2', [4]).length, 'only the new device is read');
    reads = 0;
    await s.setEndpoints(
      new Map<string, (4 | 6)[]>([
        ['cali1', [4, 6]],
        ['cali2', [4]],
      ]),
    );
    assert.equal(reads, endpointSysctls('cali1', [4, 6]).length);
    assert.equal(values.get('net/ipv6/conf/cali1/proxy_ndp'), '1');
    s.stop();
  });
});
