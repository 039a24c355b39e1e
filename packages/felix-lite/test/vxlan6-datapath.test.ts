// The IPv6 VXLAN data path end to end in network namespaces (tip-…, always removed): two
// dual-stack node namespaces joined by a veth underlay (192.168.0.11/.12 and fd00::11/::12),
// each with vxlan.calico and vxlan-v6.calico made by @tabby/ipip's TunnelManager (same VNI and
// port, one per family) and a dual-stack pod wired as the CNI plugin wires one. felix-lite's
// computeDesired gives the routes (the remote IPv6 block via the remote VTEP dev
// vxlan-v6.calico onlink), the NDP and FDB entries (FDB dst the remote node's IPv6 address)
// and the pods' own entries; the reconcilers program them. The pods ping each other over IPv6
// through vxlan-v6.calico (its counters show it) and over IPv4 through vxlan.calico; an FDB
// entry deleted by hand and the whole vxlan-v6.calico device deleted by hand come back.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { desiredTunnels, NetlinkTunnelKernel, TunnelManager, vxlanMacForNode } from '@tabby/ipip';
import { writeSysctl } from '@tabby/netlink';
import type { PoolInput } from '../src/index.js';
import {
  computeDesired,
  EndpointSysctls,
  NeighbourReconciler,
  NetlinkKernel,
  NetlinkNeighbourKernel,
  netlinkSysctls,
  RouteReconciler,
} from '../src/index.js';
import { needKernel, TestNetns, waitFor } from './netns.js';
import { makePod } from './pods.js';

const made: TestNetns[] = [];
after(() => {
  for (const ns of made.reverse()) ns.destroy();
});

const POOLS: PoolInput[] = [
  { cidr: '10.65.0.0/16', vxlanMode: 'Always' },
  { cidr: 'fd10::/48', vxlanMode: 'Always' },
];

interface NodeSpec {
  readonly name: string;
  readonly ip4: string;
  readonly ip6: string;
  readonly block4: string;
  readonly block6: string;
  readonly vtep4: string;
  readonly vtep6: string;
  readonly pod4: string;
  readonly pod6: string;
  readonly cali: string;
}

const A: NodeSpec = {
  name: 'tip-node-a',
  ip4: '192.168.0.11',
  ip6: 'fd00::11',
  block4: '10.65.1.0/26',
  block6: 'fd10:0:0:1::/122',
  vtep4: '10.65.1.0',
  vtep6: 'fd10:0:0:1::',
  pod4: '10.65.1.7',
  pod6: 'fd10:0:0:1::7',
  cali: 'calia0000000006',
};
const B: NodeSpec = {
  name: 'tip-node-b',
  ip4: '192.168.0.12',
  ip6: 'fd00::12',
  block4: '10.65.2.0/26',
  block6: 'fd10:0:0:2::/122',
  vtep4: '10.65.2.0',
  vtep6: 'fd10:0:0:2::',
  pod4: '10.65.2.7',
  pod6: 'fd10:0:0:2::7',
  cali: 'calib0000000006',
};

interface Running {
  readonly stop: () => Promise<void>;
}

/** The node's dataplane: both tunnels, routes, neighbours and endpoint sysctls, all reconciled. */
function runNode(node: TestNetns, self: NodeSpec, peer: NodeSpec, podMac: string): Running {
  const tunnelKernel = new NetlinkTunnelKernel({ netns: node.path });
  const tunnels = new TunnelManager({ kernel: tunnelKernel });
  tunnels.setPlan(
    desiredTunnels({
      nodeName: self.name,
      nodeAddress: self.ip4,
      nodeAddressV6: self.ip6,
      pools: POOLS,
      vxlanTunnelAddress: self.vtep4,
      vxlanTunnelAddressV6: self.vtep6,
      hostMtu: 1500,
    }),
  );
  const desired = computeDesired({
    hostInterfaces: [{ name: 'eth0', addresses: [`${self.ip4}/24`, `${self.ip6}/64`] }],
    pools: POOLS,
    affineBlocks: [self.block4, self.block6],
    endpoints: [{ interfaceName: self.cali, addresses: [self.pod4, self.pod6], mac: podMac }],
    paths: [
      { prefix: peer.block4, nextHops: [peer.ip4] },
      { prefix: peer.block6, nextHops: [peer.ip6] },
    ],
    vteps: [
      { nodeAddress: peer.ip4, tunnelAddress: peer.vtep4, mac: vxlanMacForNode(peer.name) },
      { nodeAddress: peer.ip6, tunnelAddress: peer.vtep6, mac: vxlanMacForNode(peer.name, 6) },
    ],
  });
  assert.deepEqual(desired.problems, []);
  const routeKernel = new NetlinkKernel({ netns: node.path });
  const routes = new RouteReconciler({ kernel: routeKernel }, { cleanupGraceMs: 0 });
  routes.setDesired(desired.routes);
  const neighbourKernel = new NetlinkNeighbourKernel({ netns: node.path });
  const neighbours = new NeighbourReconciler({ kernel: neighbourKernel });
  neighbours.setDesired(desired.neighbours);
  const sysctls = new EndpointSysctls({ kernel: routeKernel, sysctl: netlinkSysctls(node.path) });
  tunnels.start();
  routes.start();
  neighbours.start();
  sysctls.start();
  void sysctls.setEndpoints(new Map([[self.cali, [4, 6] as const]]));
  return {
    stop: async () => {
      sysctls.stop();
      await Promise.all([tunnels.stop(), routes.stop(), neighbours.stop()]);
      tunnelKernel.close();
      routeKernel.close();
      neighbourKernel.close();
    },
  };
}

function ping(from: TestNetns, to: string): boolean {
  try {
    execFileSync('ip', ['netns', 'exec', from.name, 'ping', '-c', '2', '-i', '0.2', '-W', '1', to], {
      stdio: 'pipe',
    });
    return true;
  } catch {
    return false;
  }
}

function packets(node: TestNetns, dev: string): { tx: number; rx: number } {
  const l = (
    JSON.parse(node.ip('-j', '-s', 'link', 'show', 'dev', dev)) as {
      stats64: { tx: { packets: number }; rx: { packets: number } };
    }[]
  )[0]!;
  return { tx: l.stats64.tx.packets, rx: l.stats64.rx.packets };
}

const fdb = (node: TestNetns): string =>
  execFileSync('bridge', ['-n', node.name, 'fdb', 'show', 'dev', 'vxlan-v6.calico'], { encoding: 'utf8' });

describe('IPv6 VXLAN data path between two namespace nodes', () => {
  it('pods_ping6_each_other_through_vxlan_v6_calico_beside_vxlan_calico_and_survive_breakage_by_hand', async (t) => {
    if (!needKernel(t)) return;
    const nodeA = TestNetns.create('na6', 'tip');
    made.push(nodeA);
    const nodeB = TestNetns.create('nb6', 'tip');
    made.push(nodeB);
    const podA = TestNetns.create('pa6', 'tip');
    made.push(podA);
    const podB = TestNetns.create('pb6', 'tip');
    made.push(podB);
    for (const ns of [nodeA, nodeB, podA, podB]) ns.ip('link', 'set', 'lo', 'up');
    nodeA.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'tipul0', 'netns', nodeB.name);
    nodeB.ip('link', 'set', 'tipul0', 'name', 'eth0');
    for (const [ns, n] of [
      [nodeA, A],
      [nodeB, B],
    ] as const) {
      ns.ip('addr', 'add', `${n.ip4}/24`, 'dev', 'eth0');
      ns.ip('-6', 'addr', 'add', `${n.ip6}/64`, 'dev', 'eth0', 'nodad');
      ns.ip('link', 'set', 'eth0', 'up');
      ns.ip('route', 'add', 'default', 'via', '192.168.0.254', 'dev', 'eth0');
      writeSysctl('net.ipv4.ip_forward', '1', ns.path);
      writeSysctl('net.ipv6.conf.all.forwarding', '1', ns.path);
    }
    const macA = await makePod(nodeA, podA, A.cali, [A.pod4, A.pod6]);
    const macB = await makePod(nodeB, podB, B.cali, [B.pod4, B.pod6]);

    const runA = runNode(nodeA, A, B, macA);
    const runB = runNode(nodeB, B, A, macB);
    try {
      const mac6 = (n: NodeSpec): string => vxlanMacForNode(n.name, 6);
      const ready = (ns: TestNetns, peer: NodeSpec): boolean =>
        ns.routes(6, peer.block6).join() ===
          `${peer.block6} via ${peer.vtep6} dev vxlan-v6.calico proto 84 metric 1024 onlink pref medium` &&
        ns.routes(4, peer.block4).join() ===
          `${peer.block4} via ${peer.vtep4} dev vxlan.calico proto 84 onlink` &&
        ns
          .ip('-6', 'neigh', 'show', 'dev', 'vxlan-v6.calico')
          .includes(`${peer.vtep6} lladdr ${mac6(peer)} PERMANENT`) &&
        fdb(ns).includes(`${mac6(peer)} dst ${peer.ip6} self permanent`);
      const ms = await waitFor(() => ready(nodeA, B) && ready(nodeB, A), 5000, 'both nodes programmed');
      console.log(`# both nodes programmed ${ms.toFixed(0)} ms after start`);
      const dev = nodeA.link('vxlan-v6.calico')!;
      assert.equal(dev.mtu, 1430);
      assert.equal(dev.linkinfo?.info_data?.local6, A.ip6);

      const before = packets(nodeA, 'vxlan-v6.calico');
      assert.ok(ping(podA, B.pod6), 'pod A reaches pod B over IPv6');
      assert.ok(ping(podB, A.pod6), 'pod B reaches pod A over IPv6');
      const after6 = packets(nodeA, 'vxlan-v6.calico');
      assert.ok(
        after6.tx - before.tx >= 4,
        `vxlan-v6.calico on node A sent ${after6.tx - before.tx} packets`,
      );
      assert.ok(
        after6.rx - before.rx >= 4,
        `vxlan-v6.calico on node A received ${after6.rx - before.rx} packets`,
      );
      const before4 = packets(nodeA, 'vxlan.calico');
      assert.ok(ping(podA, B.pod4), 'pod A reaches pod B over IPv4 beside it');
      assert.ok(packets(nodeA, 'vxlan.calico').tx - before4.tx >= 2, 'IPv4 went through vxlan.calico');

      // break it by hand: the FDB entry; it comes back
      execFileSync('bridge', [
        '-n',
        nodeA.name,
        'fdb',
        'del',
        mac6(B),
        'dev',
        'vxlan-v6.calico',
        'dst',
        B.ip6,
      ]);
      const repaired = await waitFor(() => ready(nodeA, B), 1000, 'the FDB entry back');
      console.log(`# IPv6 FDB entry repaired after ${repaired.toFixed(1)} ms`);
      assert.ok(ping(podA, B.pod6), 'pod A reaches pod B after the repair');

      // the whole device deleted: recreated, its route and entries back
      nodeA.ip('link', 'del', 'vxlan-v6.calico');
      const back = await waitFor(() => ready(nodeA, B), 3000, 'vxlan-v6.calico, its route and entries back');
      console.log(
        `# vxlan-v6.calico deleted by hand: device, route and entries back after ${back.toFixed(0)} ms`,
      );
      assert.ok(ping(podA, B.pod6), 'pod A reaches pod B after the device came back');
    } finally {
      await runA.stop();
      await runB.stop();
    }
  });
});
