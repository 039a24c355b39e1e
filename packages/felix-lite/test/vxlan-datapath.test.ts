// The VXLAN data path end to end in network namespaces (tip-…, always removed): two node
// namespaces joined by a veth underlay (192.168.0.11 and .12), each with vxlan.calico made
// by @tabby/ipip's TunnelManager and a pod namespace behind a cali veth (test/pods.ts, as
// the CNI plugin wires one); felix-lite's computeDesired gives the routes (local pod, own blackhole,
// the remote block via the remote VTEP dev vxlan.calico onlink) and the ARP/FDB entries, the
// RouteReconciler, NeighbourReconciler and EndpointSysctls program them; the pods ping each
// other through the tunnel (the vxlan devices' counters show it). Then the state is broken
// by hand (an FDB entry deleted, an ARP entry changed, the vxlan device deleted) and comes
// back on its own, with the pods pinging again.
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

const POOLS: PoolInput[] = [{ cidr: '10.65.0.0/16', vxlanMode: 'Always' }];

interface NodeSpec {
  readonly name: string;
  readonly ip: string;
  readonly block: string;
  readonly vtep: string;
  readonly pod: string;
  readonly cali: string;
}

const A: NodeSpec = {
  name: 'tip-node-a',
  ip: '192.168.0.11',
  block: '10.65.1.0/26',
  vtep: '10.65.1.0',
  pod: '10.65.1.7',
  cali: 'calia0000000001',
};
const B: NodeSpec = {
  name: 'tip-node-b',
  ip: '192.168.0.12',
  block: '10.65.2.0/26',
  vtep: '10.65.2.0',
  pod: '10.65.2.7',
  cali: 'calib0000000001',
};

interface Running {
  readonly stop: () => Promise<void>;
}

/** The node's dataplane: tunnels, routes, neighbours and endpoint sysctls, all reconciled. */
function runNode(node: TestNetns, self: NodeSpec, peer: NodeSpec): Running {
  const tunnelKernel = new NetlinkTunnelKernel({ netns: node.path });
  const tunnels = new TunnelManager({ kernel: tunnelKernel });
  tunnels.setPlan(
    desiredTunnels({
      nodeName: self.name,
      nodeAddress: self.ip,
      pools: POOLS,
      vxlanTunnelAddress: self.vtep,
      hostMtu: 1500,
    }),
  );
  const desired = computeDesired({
    hostInterfaces: [{ name: 'eth0', addresses: [`${self.ip}/24`] }],
    pools: POOLS,
    affineBlocks: [self.block],
    endpoints: [{ interfaceName: self.cali, addresses: [self.pod] }],
    paths: [{ prefix: peer.block, nextHops: [peer.ip] }],
    vteps: [{ nodeAddress: peer.ip, tunnelAddress: peer.vtep, mac: vxlanMacForNode(peer.name) }],
  });
  assert.deepEqual(desired.problems, []);
  const routeKernel = new NetlinkKernel({ netns: node.path });
  const routes = new RouteReconciler({ kernel: routeKernel }, { cleanupGraceMs: 0, families: [4] });
  routes.setDesired(desired.routes);
  const neighbourKernel = new NetlinkNeighbourKernel({ netns: node.path });
  const neighbours = new NeighbourReconciler({ kernel: neighbourKernel });
  neighbours.setDesired(desired.neighbours);
  const sysctls = new EndpointSysctls({ kernel: routeKernel, sysctl: netlinkSysctls(node.path) });
  tunnels.start();
  routes.start();
  neighbours.start();
  sysctls.start();
  void sysctls.setEndpoints(new Map([[self.cali, [4 as const]]]));
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

function vxlanPackets(node: TestNetns): { tx: number; rx: number } {
  const l = (
    JSON.parse(node.ip('-j', '-s', 'link', 'show', 'dev', 'vxlan.calico')) as {
      stats64: { tx: { packets: number }; rx: { packets: number } };
    }[]
  )[0]!;
  return { tx: l.stats64.tx.packets, rx: l.stats64.rx.packets };
}

describe('VXLAN data path between two namespace nodes', () => {
  it('pods_on_two_nodes_ping_each_other_through_vxlan_calico_and_survive_breakage_by_hand', async (t) => {
    if (!needKernel(t)) return;
    const nodeA = TestNetns.create('na', 'tip');
    made.push(nodeA);
    const nodeB = TestNetns.create('nb', 'tip');
    made.push(nodeB);
    const podA = TestNetns.create('pa', 'tip');
    made.push(podA);
    const podB = TestNetns.create('pb', 'tip');
    made.push(podB);
    for (const ns of [nodeA, nodeB, podA, podB]) ns.ip('link', 'set', 'lo', 'up');
    // the underlay: one veth between the nodes
    nodeA.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'tipul0', 'netns', nodeB.name);
    nodeB.ip('link', 'set', 'tipul0', 'name', 'eth0');
    for (const [ns, n] of [
      [nodeA, A],
      [nodeB, B],
    ] as const) {
      ns.ip('addr', 'add', `${n.ip}/24`, 'dev', 'eth0');
      ns.ip('link', 'set', 'eth0', 'up');
      // as on a real node: the pods' gateway 169.254.1.1 is answered by proxy ARP only when
      // the node has a route to it, which its default route gives
      ns.ip('route', 'add', 'default', 'via', '192.168.0.254', 'dev', 'eth0');
      writeSysctl('net.ipv4.ip_forward', '1', ns.path);
    }
    await makePod(nodeA, podA, A.cali, [A.pod]);
    await makePod(nodeB, podB, B.cali, [B.pod]);

    const runA = runNode(nodeA, A, B);
    const runB = runNode(nodeB, B, A);
    try {
      const ready = (ns: TestNetns, peer: NodeSpec): boolean =>
        ns.routes(4, peer.block).join() ===
          `${peer.block} via ${peer.vtep} dev vxlan.calico proto 84 onlink` &&
        ns
          .ip('neigh', 'show', 'dev', 'vxlan.calico')
          .includes(`${peer.vtep} lladdr ${vxlanMacForNode(peer.name)} PERMANENT`);
      const ms = await waitFor(() => ready(nodeA, B) && ready(nodeB, A), 5000, 'both nodes programmed');
      console.log(`# both nodes programmed ${ms.toFixed(0)} ms after start`);
      const fdbA = execFileSync('bridge', ['-n', nodeA.name, 'fdb', 'show', 'dev', 'vxlan.calico'], {
        encoding: 'utf8',
      });
      assert.match(fdbA, new RegExp(`${vxlanMacForNode(B.name)} dst ${B.ip} self permanent`));

      const before = vxlanPackets(nodeA);
      assert.ok(ping(podA, B.pod), 'pod A reaches pod B');
      assert.ok(ping(podB, A.pod), 'pod B reaches pod A');
      const afterPing = vxlanPackets(nodeA);
      assert.ok(
        afterPing.tx - before.tx >= 4,
        `vxlan.calico on node A sent ${afterPing.tx - before.tx} packets`,
      );
      assert.ok(
        afterPing.rx - before.rx >= 4,
        `vxlan.calico on node A received ${afterPing.rx - before.rx} packets`,
      );

      // break it by hand: the FDB entry, then the ARP entry; both come back
      execFileSync('bridge', [
        '-n',
        nodeA.name,
        'fdb',
        'del',
        vxlanMacForNode(B.name),
        'dev',
        'vxlan.calico',
        'dst',
        B.ip,
      ]);
      nodeA.ip(
        'neigh',
        'replace',
        B.vtep,
        'lladdr',
        '02:00:00:00:00:01',
        'dev',
        'vxlan.calico',
        'nud',
        'permanent',
      );
      const repaired = await waitFor(
        () =>
          ready(nodeA, B) &&
          execFileSync('bridge', ['-n', nodeA.name, 'fdb', 'show', 'dev', 'vxlan.calico'], {
            encoding: 'utf8',
          }).includes(vxlanMacForNode(B.name)),
        1000,
        'ARP and FDB entries back',
      );
      console.log(`# ARP and FDB entries repaired after ${repaired.toFixed(1)} ms`);
      assert.ok(ping(podA, B.pod), 'pod A reaches pod B after the repair');

      // the whole device deleted: recreated, its route and entries back
      nodeA.ip('link', 'del', 'vxlan.calico');
      const back = await waitFor(() => ready(nodeA, B), 3000, 'vxlan.calico, its route and entries back');
      console.log(
        `# vxlan.calico deleted by hand: device, route and entries back after ${back.toFixed(0)} ms`,
      );
      assert.ok(ping(podA, B.pod), 'pod A reaches pod B after the device came back');
    } finally {
      await runA.stop();
      await runB.stop();
    }
  });
});
