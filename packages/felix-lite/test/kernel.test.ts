// The reconciler against the real kernel, in network namespaces the tests make and remove
// (tfl-…): routes and blackholes programmed, an in-sync resync that writes nothing, drift
// repaired within a second, foreign routes untouched, waiting for a pod's veth, and restart
// adoption checked with a monitor (no route deleted or re-added).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { RtnlMessage } from '@tabby/netlink';
import { readSysctl, RtnlMonitor, TABBY_ROUTE_PROTOCOL } from '@tabby/netlink';
import type { Kernel, KernelEvent, PassResult, Route, RouteOp } from '../src/index.js';
import {
  computeDesired,
  EndpointSysctls,
  endpointSysctls,
  NetlinkKernel,
  netlinkSysctls,
  RouteReconciler,
} from '../src/index.js';
import { needKernel, TestNetns, waitFor } from './netns.js';

const made: TestNetns[] = [];
after(() => {
  for (const ns of made) ns.destroy();
});

/** A node namespace: eth0 (192.168.0.11/24, fd00::11/64), tunl0 and two pod veths, all up. */
function makeNode(tag: string): TestNetns {
  const ns = TestNetns.create(tag);
  made.push(ns);
  ns.ip('link', 'set', 'lo', 'up');
  for (const [a, b] of [
    ['eth0', 'peer0'],
    ['tunl0', 'tunl0p'], // this host has no ipip module: a veth stands in for the device
    ['cali1', 'pod1'],
    ['cali2', 'pod2'],
  ] as const) {
    ns.ip('link', 'add', a, 'type', 'veth', 'peer', 'name', b);
    ns.ip('link', 'set', a, 'up');
    ns.ip('link', 'set', b, 'up');
  }
  ns.ip('addr', 'add', '192.168.0.11/24', 'dev', 'eth0');
  ns.ip('-6', 'addr', 'add', 'fd00::11/64', 'dev', 'eth0', 'nodad');
  return ns;
}

function desired(extra: { paths?: { prefix: string; nextHops: string[] }[]; pods?: string[] } = {}): Route[] {
  return [
    ...computeDesired({
      hostInterfaces: [{ name: 'eth0', addresses: ['192.168.0.11/24', 'fd00::11/64'] }],
      pools: [{ cidr: '10.65.0.0/16', ipipMode: 'CrossSubnet' }, { cidr: 'fd10::/48' }],
      affineBlocks: ['10.65.1.0/26', 'fd10::100/122'],
      endpoints: [
        { interfaceName: 'cali1', addresses: ['10.65.1.7', 'fd10::107'] },
        { interfaceName: 'cali2', addresses: ['10.65.1.8'] },
        ...(extra.pods ?? []).map((p, i) => ({ interfaceName: p, addresses: [`10.65.1.${20 + i}`] })),
      ],
      paths: [
        { prefix: '10.65.2.0/26', nextHops: ['192.168.0.12'] },
        { prefix: '10.65.3.0/26', nextHops: ['192.168.7.13'] },
        { prefix: '10.65.4.0/26', nextHops: ['192.168.0.12', '192.168.7.13'] },
        { prefix: 'fd10::200/122', nextHops: ['fd00::12'] },
        { prefix: 'fd10::300/122', nextHops: ['fd00::12', 'fd00::13'] },
        ...(extra.paths ?? []),
      ],
    }).routes,
  ];
}

const EXPECTED_V4 = [
  '10.65.1.7 dev cali1 scope link',
  '10.65.1.8 dev cali2 scope link',
  '10.65.2.0/26 via 192.168.0.12 dev eth0',
  '10.65.3.0/26 via 192.168.7.13 dev tunl0 onlink',
  '10.65.4.0/26',
  'blackhole 10.65.1.0/26',
];
const EXPECTED_V6 = [
  'blackhole fd10::100/122 dev lo metric 1024 pref medium',
  'fd10::107 dev cali1 metric 1024 pref medium',
  'fd10::200/122 via fd00::12 dev eth0 metric 1024 pref medium',
  'fd10::300/122 metric 1024 pref medium',
];

/** The real kernel, counting the writes that reach it. */
class CountingKernel implements Kernel {
  readonly writes: RouteOp[] = [];
  constructor(readonly inner: NetlinkKernel) {}
  links = () => this.inner.links();
  routes: Kernel['routes'] = (f) => this.inner.routes(f);
  applyRoutes = (ops: readonly RouteOp[]) => {
    this.writes.push(...ops);
    return this.inner.applyRoutes(ops);
  };
  watch = (fn: (e: KernelEvent) => void) => this.inner.watch(fn);
}

async function startReconciler(
  ns: TestNetns,
  routes: Route[],
): Promise<{ r: RouteReconciler; kernel: CountingKernel; close: () => Promise<void> }> {
  const netlink = new NetlinkKernel({ netns: ns.path });
  const kernel = new CountingKernel(netlink);
  const r = new RouteReconciler({ kernel }, { cleanupGraceMs: 0 });
  const firstPass = new Promise<PassResult | Error>((resolve) => {
    const off = r.onPass((x) => {
      if (x instanceof Error || x.inSync) {
        off();
        resolve(x);
      }
    });
  });
  r.setDesired(routes);
  r.start();
  const res = await firstPass;
  if (res instanceof Error) throw res;
  return {
    r,
    kernel,
    close: async () => {
      await r.stop();
      netlink.close();
    },
  };
}

/**
 * Routes as `ip route show` prints them (a `proto 84` selector drops the protocol from the
 * text); multipath next hops print on continuation lines: keep the first line.
 */
const firstLines = (ns: TestNetns, family: 4 | 6, ...sel: string[]): string[] =>
  ns.routes(family, ...sel).filter((l) => !l.startsWith('nexthop'));

describe('RouteReconciler against the kernel', () => {
  it('programs_routes_blackholes_ecmp_and_ipv6_and_a_resync_then_writes_nothing', async (t) => {
    if (!needKernel(t)) return;
    const ns = makeNode('prog');
    const { r, kernel, close } = await startReconciler(ns, desired());
    try {
      assert.deepEqual(firstLines(ns, 4, 'proto', '84'), EXPECTED_V4);
      assert.deepEqual(firstLines(ns, 6, 'proto', '84'), EXPECTED_V6);
      const ecmp4 = ns.ip('-4', 'route', 'show', '10.65.4.0/26');
      assert.match(ecmp4, /nexthop via 192\.168\.0\.12 dev eth0 weight 1/);
      assert.match(ecmp4, /nexthop via 192\.168\.7\.13 dev tunl0 weight 1 onlink/);
      const ecmp6 = ns.ip('-6', 'route', 'show', 'fd10::300/122');
      assert.match(ecmp6, /nexthop via fd00::12 dev eth0 weight 1/);
      assert.match(ecmp6, /nexthop via fd00::13 dev eth0 weight 1/);
      // the dump read back equals what we wrote: nothing to do on a full resync
      const before = kernel.writes.length;
      r.requestResync();
      const res = await r.apply();
      assert.equal(res.resynced, true);
      assert.equal(kernel.writes.length, before);
      assert.equal(res.inSync, true);
    } finally {
      await close();
    }
  });

  it('repairs_a_route_deleted_or_changed_by_hand_within_a_second', async (t) => {
    if (!needKernel(t)) return;
    const ns = makeNode('drift');
    const { close } = await startReconciler(ns, desired());
    try {
      ns.ip('route', 'del', '10.65.2.0/26');
      const ms = await waitFor(
        () => ns.routes(4, '10.65.2.0/26').length === 1,
        1000,
        '10.65.2.0/26 to come back',
      );
      console.log(`# deleted route back after ${ms.toFixed(1)} ms`);
      ns.ip('-6', 'route', 'del', 'blackhole', 'fd10::100/122');
      await waitFor(
        () => ns.routes(6, 'fd10::100/122').length === 1,
        1000,
        'the IPv6 blackhole to come back',
      );
      ns.ip('route', 'replace', '10.65.3.0/26', 'via', '192.168.0.99', 'dev', 'eth0', 'proto', '84');
      await waitFor(
        () => ns.routes(4, '10.65.3.0/26')[0] === '10.65.3.0/26 via 192.168.7.13 dev tunl0 proto 84 onlink',
        1000,
        '10.65.3.0/26 to be changed back',
      );
      assert.deepEqual(firstLines(ns, 4, 'proto', '84'), EXPECTED_V4);
      assert.deepEqual(firstLines(ns, 6, 'proto', '84'), EXPECTED_V6);
    } finally {
      await close();
    }
  });

  it('leaves_routes_of_other_protocols_alone_even_on_a_key_it_wants', async (t) => {
    if (!needKernel(t)) return;
    const ns = makeNode('foreign');
    ns.ip('route', 'add', '10.99.0.0/16', 'via', '192.168.0.1', 'dev', 'eth0', 'proto', 'static');
    ns.ip('route', 'add', '10.65.5.0/26', 'dev', 'eth0', 'proto', 'static');
    ns.ip('route', 'add', '10.65.6.0/26', 'via', '192.168.0.1', 'dev', 'eth0'); // proto boot
    const foreign = ns.routes(4, 'proto', 'static');
    const boot = ns.routes(4, 'proto', 'boot');
    const paths = [{ prefix: '10.65.5.0/26', nextHops: ['192.168.0.12'] }];
    const { r, kernel, close } = await startReconciler(ns, desired()).then(async (x) => {
      x.r.setDesired(desired({ paths }));
      await new Promise((res) => setTimeout(res, 300));
      return x;
    });
    try {
      assert.deepEqual(ns.routes(4, 'proto', 'static'), foreign);
      assert.deepEqual(ns.routes(4, 'proto', 'boot'), boot);
      assert.deepEqual(r.lastResult?.conflicts, ['4|254|10.65.5.0/26|0']);
      assert.equal(
        kernel.writes.some((w) => w.op !== 'add' && w.route.dst !== '10.65.5.0'),
        false,
      );
      // the operator removes theirs: ours takes the key
      ns.ip('route', 'del', '10.65.5.0/26', 'proto', 'static');
      await waitFor(
        () => ns.routes(4, '10.65.5.0/26')[0] === '10.65.5.0/26 via 192.168.0.12 dev eth0 proto 84',
        1000,
        'our 10.65.5.0/26',
      );
      assert.deepEqual(ns.routes(4, '10.99.0.0/16'), ['10.99.0.0/16 via 192.168.0.1 dev eth0 proto static']);
    } finally {
      await close();
    }
  });

  it('waits_for_a_pod_veth_that_does_not_exist_yet', async (t) => {
    if (!needKernel(t)) return;
    const ns = makeNode('wait');
    const { r, close } = await startReconciler(ns, desired({ pods: ['cali3'] }));
    try {
      assert.deepEqual(
        r.lastResult?.waiting.map((w) => w.dev),
        ['cali3'],
      );
      assert.equal(r.lastError, undefined);
      ns.ip('link', 'add', 'cali3', 'type', 'veth', 'peer', 'name', 'pod3');
      ns.ip('link', 'set', 'pod3', 'up');
      ns.ip('link', 'set', 'cali3', 'up');
      await waitFor(() => ns.routes(4, '10.65.1.20').length === 1, 1000, 'the route via cali3');
      assert.deepEqual(ns.routes(4, '10.65.1.20'), ['10.65.1.20 dev cali3 proto 84 scope link']);
    } finally {
      await close();
    }
  });

  it('a_second_instance_adopts_the_routes_without_deleting_or_re_adding_any', async (t) => {
    if (!needKernel(t)) return;
    const ns = makeNode('adopt');
    const first = await startReconciler(ns, desired());
    await first.close();
    const seen: RtnlMessage[] = [];
    const monitor = RtnlMonitor.open({
      netns: ns.path,
      groups: ['ipv4-route', 'ipv6-route'],
      onMessage: (m) => seen.push(m),
      onOverrun: (e) => assert.fail(e),
    });
    try {
      const second = await startReconciler(ns, desired());
      await new Promise((res) => setTimeout(res, 300));
      await second.close();
      assert.equal(second.kernel.writes.length, 0);
      assert.deepEqual(
        seen.filter((m) => m.kind === 'route' && m.route.protocol === TABBY_ROUTE_PROTOCOL),
        [],
      );
      assert.deepEqual(firstLines(ns, 4, 'proto', '84'), EXPECTED_V4);
      // and the monitor does see our writes: a deletion by hand and its repair
      const third = await startReconciler(ns, desired());
      ns.ip('route', 'del', '10.65.2.0/26');
      await waitFor(
        () => seen.filter((m) => m.kind === 'route' && m.op === 'new').length === 1,
        1000,
        'the repair on the monitor',
      );
      await third.close();
    } finally {
      monitor.close();
    }
  });

  it('sets_host_veth_sysctls_in_the_node_namespace_only', async (t) => {
    if (!needKernel(t)) return;
    const ns = makeNode('sysctl');
    const kernel = new NetlinkKernel({ netns: ns.path });
    const s = new EndpointSysctls({ kernel, sysctl: netlinkSysctls(ns.path) });
    try {
      s.start();
      await s.setEndpoints(
        new Map<string, (4 | 6)[]>([
          ['cali1', [4, 6]],
          ['cali4', [4]],
        ]),
      );
      for (const [p, v] of endpointSysctls('cali1', [4, 6])) assert.equal(readSysctl(p, ns.path), v, p);
      ns.ip('link', 'add', 'cali4', 'type', 'veth', 'peer', 'name', 'pod4');
      await waitFor(
        () => readSysctl('net/ipv4/conf/cali4/proxy_arp', ns.path) === '1',
        1000,
        'cali4 proxy_arp',
      );
      for (const [p, v] of endpointSysctls('cali4', [4])) assert.equal(readSysctl(p, ns.path), v, p);
      const writes = s.writes;
      await s.refresh();
      assert.equal(s.writes, writes);
    } finally {
      s.stop();
      kernel.close();
    }
  });
});
