// The pods' permanent neighbour entries on a real kernel (tfl-… namespaces, always removed):
// one node with two dual-stack pods wired as the CNI plugin wires them, both made deaf to ARP
// requests and IPv6 neighbour solicitations (nft in their namespaces), so the node reaches a
// pod only through the entry felix-lite writes from the endpoint's MAC. computeDesired gives
// the routes and entries, the RouteReconciler, NeighbourReconciler and EndpointSysctls
// (proxy_arp, proxy_ndp, forwarding) program them; the pods ping each other through the node,
// IPv4 and IPv6. An entry deleted by hand comes back; with the reconciler stopped and the
// entries gone, the node cannot reach the pod (the entries are what carries it).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, describe, it } from 'node:test';
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
import { needNft, TestNetns, waitFor } from './netns.js';
import { deafToNeighbourSolicitations, makePod } from './pods.js';

const made: TestNetns[] = [];
after(() => {
  for (const ns of made.reverse()) ns.destroy();
});

const POOLS: PoolInput[] = [{ cidr: '10.65.0.0/16' }, { cidr: 'fd10::/48' }];
const A = { cali: 'calia0000000001', v4: '10.65.1.7', v6: 'fd10::7' };
const B = { cali: 'calib0000000001', v4: '10.65.1.8', v6: 'fd10::8' };

function ping(from: TestNetns, to: string): boolean {
  try {
    execFileSync('ip', ['netns', 'exec', from.name, 'ping', '-c', '1', '-W', '2', to], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

/** `ip neigh show dev <dev>` lines for one address, e.g. "fd10::7 lladdr 0a:.. PERMANENT". */
function entry(node: TestNetns, dev: string, ip: string): string {
  return node
    .ip(ip.includes(':') ? '-6' : '-4', 'neigh', 'show', ip, 'dev', dev)
    .trim()
    .replace(/\s+/g, ' ');
}

describe('pod neighbour entries in the kernel', () => {
  it('pods_deaf_to_solicitations_reach_each_other_through_the_node_by_the_permanent_entries', async (t) => {
    if (!needNft(t)) return;
    const node = TestNetns.create('pn');
    made.push(node);
    const podA = TestNetns.create('pa');
    made.push(podA);
    const podB = TestNetns.create('pb');
    made.push(podB);
    for (const ns of [node, podA, podB]) ns.ip('link', 'set', 'lo', 'up');
    // an uplink with default routes: proxy ARP answers for 169.254.1.1 only when the node has a route to it
    node.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0');
    node.ip('addr', 'add', '192.168.0.11/24', 'dev', 'eth0');
    node.ip('-6', 'addr', 'add', 'fd00::11/64', 'dev', 'eth0', 'nodad');
    node.ip('link', 'set', 'eth0', 'up');
    node.ip('link', 'set', 'peer0', 'up');
    node.ip('route', 'add', 'default', 'via', '192.168.0.254', 'dev', 'eth0');
    writeSysctl('net.ipv4.ip_forward', '1', node.path);
    writeSysctl('net.ipv6.conf.all.forwarding', '1', node.path);
    const macA = await makePod(node, podA, A.cali, [A.v4, A.v6]);
    const macB = await makePod(node, podB, B.cali, [B.v4, B.v6]);
    deafToNeighbourSolicitations(podA);
    deafToNeighbourSolicitations(podB);

    const desired = computeDesired({
      hostInterfaces: [{ name: 'eth0', addresses: ['192.168.0.11/24', 'fd00::11/64'] }],
      pools: POOLS,
      affineBlocks: ['10.65.1.0/26', 'fd10::/122'],
      endpoints: [
        { interfaceName: A.cali, addresses: [A.v4, A.v6], mac: macA },
        { interfaceName: B.cali, addresses: [B.v4, B.v6], mac: macB },
      ],
      paths: [],
    });
    assert.deepEqual(desired.problems, []);
    assert.equal(desired.neighbours.length, 4);
    const routeKernel = new NetlinkKernel({ netns: node.path });
    const neighbourKernel = new NetlinkNeighbourKernel({ netns: node.path });
    const routes = new RouteReconciler({ kernel: routeKernel }, { cleanupGraceMs: 0 });
    const neighbours = new NeighbourReconciler({ kernel: neighbourKernel });
    const sysctls = new EndpointSysctls({ kernel: routeKernel, sysctl: netlinkSysctls(node.path) });
    try {
      routes.setDesired(desired.routes);
      neighbours.setDesired(desired.neighbours);
      routes.start();
      neighbours.start();
      sysctls.start();
      await sysctls.setEndpoints(
        new Map([
          [A.cali, [4, 6] as const],
          [B.cali, [4, 6] as const],
        ]),
      );
      const programmed = (): boolean =>
        entry(node, A.cali, A.v4) === `${A.v4} lladdr ${macA} PERMANENT` &&
        entry(node, A.cali, A.v6) === `${A.v6} lladdr ${macA} PERMANENT` &&
        entry(node, B.cali, B.v4) === `${B.v4} lladdr ${macB} PERMANENT` &&
        entry(node, B.cali, B.v6) === `${B.v6} lladdr ${macB} PERMANENT` &&
        node.routes(6, B.v6).length === 1;
      const ms = await waitFor(programmed, 5000, 'the pods’ routes and permanent entries');
      console.log(`# pods' neighbour entries programmed ${ms.toFixed(0)} ms after start`);

      assert.ok(ping(podA, B.v6), 'pod A reaches pod B over IPv6 through the node');
      assert.ok(ping(podB, A.v6), 'pod B reaches pod A over IPv6 through the node');
      assert.ok(ping(podA, B.v4), 'pod A reaches pod B over IPv4 through the node');
      assert.ok(programmed(), 'traffic leaves the entries permanent');

      // deleted by hand: back from the monitor's event
      node.ip('-6', 'neigh', 'del', B.v6, 'dev', B.cali);
      const back = await waitFor(programmed, 1000, 'the deleted entry back');
      console.log(`# an entry deleted by hand back after ${back.toFixed(1)} ms`);

      // the control: without the entry (reconciler stopped) the deaf pod is unreachable
      await neighbours.stop();
      node.ip('-6', 'neigh', 'del', B.v6, 'dev', B.cali);
      assert.equal(ping(podA, B.v6), false, 'pod B is unreachable without its entry');
      neighbours.start();
      await waitFor(programmed, 3000, 'the entry written again after a restart');
      assert.ok(ping(podA, B.v6), 'pod A reaches pod B again');
    } finally {
      sysctls.stop();
      await Promise.all([routes.stop(), neighbours.stop()]);
      routeKernel.close();
      neighbourKernel.close();
    }
  });
});
