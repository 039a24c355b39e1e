// The tabby_dataplane_* metrics move as the reconcilers work (on the in-memory kernels):
// writes, refusals, failed passes, drift repairs, the last sync time, desired and programmed
// counts; reconcilers share one registry; the docs table lists exactly these metrics.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { Neighbour, Route } from '../src/index.js';
import {
  computeDesired,
  DATAPLANE_METRICS,
  FakeKernel,
  FakeNeighbourKernel,
  ManualClock,
  NeighbourReconciler,
  RouteReconciler,
} from '../src/index.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
async function advance(clock: ManualClock, ms: number, step = 5): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(step);
    for (let i = 0; i < 4; i++) await tick();
  }
}

/** One sample's value (0 when the labels have none yet). */
async function value(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
  sample?: string,
): Promise<number> {
  const m = registry.getSingleMetric(name);
  assert.ok(m, `${name} is registered`);
  const got = await m.get();
  const v = got.values.find(
    (x) =>
      (sample === undefined || (x as { metricName?: string }).metricName === sample) &&
      Object.entries(labels).every(([k, want]) => String((x.labels as Record<string, unknown>)[k]) === want),
  );
  return v?.value ?? 0;
}

const DURATION = 'tabby_dataplane_reconcile_duration_seconds';

function routes(extra: { interfaceName: string; addresses: string[] }[] = []): Route[] {
  return [
    ...computeDesired({
      hostInterfaces: [{ name: 'eth0', addresses: ['192.168.0.11/24'] }],
      pools: [{ cidr: '10.65.0.0/16' }],
      affineBlocks: ['10.65.1.0/26'],
      endpoints: [{ interfaceName: 'cali1', addresses: ['10.65.1.7'] }, ...extra],
      paths: [
        { prefix: '10.65.2.0/26', nextHops: ['192.168.0.12'] },
        { prefix: '10.65.3.0/26', nextHops: ['192.168.0.13'] },
      ],
    }).routes,
  ];
}

describe('dataplane metrics', () => {
  it('route_metrics_move_with_writes_refusals_failed_passes_drift_and_sync', async () => {
    const registry = new Registry();
    const kernel = new FakeKernel();
    for (const n of ['eth0', 'cali1']) kernel.addLink(n);
    const clock = new ManualClock();
    const r = new RouteReconciler(
      { kernel, clock, random: () => 0.5, registry },
      { cleanupGraceMs: 0, debounceMs: 10 },
    );
    const before = Date.now() / 1000;
    r.setDesired(routes());
    r.start();
    await advance(clock, 50);
    assert.equal(
      await value(registry, 'tabby_dataplane_writes_total', { reconciler: 'routes', op: 'add' }),
      4,
    );
    assert.equal(await value(registry, 'tabby_dataplane_routes_desired'), 4);
    assert.equal(await value(registry, 'tabby_dataplane_routes_programmed'), 4);
    const synced = await value(registry, 'tabby_dataplane_last_sync_timestamp_seconds', {
      reconciler: 'routes',
    });
    assert.ok(synced >= before && synced <= Date.now() / 1000 + 1, `last sync ${synced}`);
    assert.ok(
      (await value(registry, DURATION, { reconciler: 'routes', resync: 'true' }, `${DURATION}_count`)) >= 1,
    );

    // a pod whose veth does not exist yet: waiting, not programmed
    r.setDesired(routes([{ interfaceName: 'cali9', addresses: ['10.65.1.9'] }]));
    await advance(clock, 50);
    assert.equal(await value(registry, 'tabby_dataplane_routes_desired'), 5);
    assert.equal(await value(registry, 'tabby_dataplane_routes_programmed'), 4);
    assert.equal(await value(registry, 'tabby_dataplane_routes_waiting'), 1);

    // a refused write, then an interrupted dump (a failed pass)
    kernel.writeFaults.push({ errno: 'EBUSY', times: 1 });
    kernel.addLink('cali9');
    await advance(clock, 50);
    assert.equal(
      await value(registry, 'tabby_dataplane_reconcile_errors_total', {
        reconciler: 'routes',
        kind: 'write',
        errno: 'EBUSY',
      }),
      1,
    );
    await advance(clock, 500);
    assert.equal(await value(registry, 'tabby_dataplane_routes_programmed'), 5);
    kernel.failDumps = 1;
    r.requestResync();
    await advance(clock, 300);
    assert.equal(
      await value(registry, 'tabby_dataplane_reconcile_errors_total', {
        reconciler: 'routes',
        kind: 'pass',
        errno: 'EINTR',
      }),
      1,
    );

    // asked-for changes are not drift; a route deleted by hand and put back is
    r.setDesired(routes());
    await advance(clock, 50);
    assert.equal(await value(registry, 'tabby_dataplane_drift_repairs_total', { reconciler: 'routes' }), 0);
    kernel.deleteRouteByHand({ family: 4, dst: '10.65.2.0', dstLen: 26 });
    await advance(clock, 50);
    assert.equal(await value(registry, 'tabby_dataplane_drift_repairs_total', { reconciler: 'routes' }), 1);
    assert.equal(
      await value(registry, 'tabby_dataplane_writes_total', { reconciler: 'routes', op: 'delete' }),
      1,
    );
    await r.stop();
    // a stopped reconciler is no longer counted
    assert.equal(await value(registry, 'tabby_dataplane_routes_desired'), 0);
  });

  it('neighbour_metrics_move_and_two_reconcilers_share_one_registry', async () => {
    const registry = new Registry();
    const kernel = new FakeNeighbourKernel();
    const vx = kernel.addLink('vxlan.calico').index;
    const clock = new ManualClock();
    const n = new NeighbourReconciler({ kernel, clock, random: () => 0.5, registry });
    // a route reconciler on the same registry registers nothing twice
    const routesToo = new RouteReconciler({ kernel: new FakeKernel(), clock, registry });
    const wanted: Neighbour[] = [
      { kind: 'arp', family: 4, dev: 'vxlan.calico', ip: '10.65.2.192', mac: '66:00:00:00:00:12' },
      { kind: 'fdb', dev: 'vxlan.calico', mac: '66:00:00:00:00:12', dst: '192.168.0.12' },
    ];
    n.setDesired(wanted);
    n.start();
    routesToo.start();
    await advance(clock, 50);
    assert.equal(
      await value(registry, 'tabby_dataplane_writes_total', { reconciler: 'neighbours', op: 'set' }),
      2,
    );
    assert.equal(await value(registry, 'tabby_dataplane_neighbours_desired'), 2);
    assert.equal(await value(registry, 'tabby_dataplane_neighbours_programmed'), 2);
    assert.ok(
      (await value(registry, 'tabby_dataplane_last_sync_timestamp_seconds', { reconciler: 'neighbours' })) >
        0,
    );
    kernel.deleteByHand({ family: 'bridge', index: vx, lladdr: '66:00:00:00:00:12' });
    await advance(clock, 50);
    assert.equal(
      await value(registry, 'tabby_dataplane_drift_repairs_total', { reconciler: 'neighbours' }),
      1,
    );
    kernel.writeFaults.push({ errno: 'EBUSY', times: 1 });
    kernel.setByHand({ family: 4, index: vx, dst: '10.65.2.192', lladdr: '66:00:00:00:00:77' });
    await advance(clock, 50);
    assert.equal(
      await value(registry, 'tabby_dataplane_reconcile_errors_total', {
        reconciler: 'neighbours',
        kind: 'write',
        errno: 'EBUSY',
      }),
      1,
    );
    await advance(clock, 500);
    assert.equal(
      await value(registry, 'tabby_dataplane_drift_repairs_total', { reconciler: 'neighbours' }),
      2,
    );
    await Promise.all([n.stop(), routesToo.stop()]);
  });

  it('are_listed_in_the_docs_table_with_their_type_and_labels_and_nothing_else', () => {
    const doc = readFileSync(new URL('../../../../docs/metrics.md', import.meta.url), 'utf8');
    const rows = new Map<string, string[]>();
    for (const line of doc.split('\n')) {
      const m = /^\|\s*`(tabby_dataplane_[a-z_]+)`\s*\|([^|]*)\|([^|]*)\|/.exec(line);
      if (m !== null) rows.set(m[1]!, [m[2]!.trim(), m[3]!.trim()]);
    }
    assert.deepEqual([...rows.keys()].sort(), DATAPLANE_METRICS.map((m) => m.name).sort());
    for (const m of DATAPLANE_METRICS) {
      const [type, labels] = rows.get(m.name)!;
      assert.equal(type, m.type, m.name);
      assert.equal(labels, m.labels.length === 0 ? '' : m.labels.map((l) => `\`${l}\``).join(', '), m.name);
    }
  });
});
