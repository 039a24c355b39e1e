// The IPIP data path end to end in network namespaces (tlb-…, always removed), as
// ../shared/lab/ipip-demo.sh builds it: a router namespace joins two subnets and knows no pod
// IPs; nodes A (192.168.101.10) and C (192.168.101.11) share one subnet through a bridge in
// the router, node B (192.168.102.10) is on the other. Each node has a pod behind a cali veth,
// tunl0 from @tabby/ipip's TunnelManager, and routes from felix-lite's computeDesired
// programmed by the RouteReconciler (with EndpointSysctls for the veths). With ipipMode Always
// every remote block goes `via <node> dev tunl0 onlink` and the pods ping across tunl0; with
// CrossSubnet only the other subnet's block does, and A and C's pods talk directly over eth0
// (tunl0's counters show which way each ping went).
//
// The kernel needs the ipip module. This build host has none: the test then skips with the
// reason (even under CI=true, as @tabby/ipip's tunl0 tests do) and runs in the qemu lab
// (e2e/lab/run-ipip.sh), where LAB_GUEST=1 makes it required, as does TABBY_REQUIRE_IPIP=1.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { after, describe, it } from 'node:test';
import { desiredTunnels, NetlinkTunnelKernel, TunnelManager } from '@tabby/ipip';
import { openNetns, RtnlClient, writeSysctl } from '@tabby/netlink';
import type { PoolInput } from '../src/index.js';
import {
  computeDesired,
  EndpointSysctls,
  NetlinkKernel,
  netlinkSysctls,
  RouteReconciler,
} from '../src/index.js';
import { needKernel, TestNetns } from './netns.js';

const ALWAYS: PoolInput[] = [{ cidr: '10.65.0.0/16', ipipMode: 'Always' }];
const CROSS_SUBNET: PoolInput[] = [{ cidr: '10.65.0.0/16', ipipMode: 'CrossSubnet' }];

interface NodeSpec {
  readonly tag: string;
  readonly name: string;
  readonly ip: string;
  readonly gateway: string;
  /** The router's port towards this node (a bridge port for the shared subnet). */
  readonly routerPort: string;
  readonly block: string;
  readonly tunnel: string;
  readonly pod: string;
  readonly cali: string;
}

const A: NodeSpec = {
  tag: 'na',
  name: 'tlb-node-a',
  ip: '192.168.101.10',
  gateway: '192.168.101.1',
  routerPort: 'ra',
  block: '10.65.1.0/26',
  tunnel: '10.65.1.1',
  pod: '10.65.1.7',
  cali: 'calia0000000001',
};
const B: NodeSpec = {
  tag: 'nb',
  name: 'tlb-node-b',
  ip: '192.168.102.10',
  gateway: '192.168.102.1',
  routerPort: 'rb',
  block: '10.65.2.0/26',
  tunnel: '10.65.2.1',
  pod: '10.65.2.7',
  cali: 'calib0000000001',
};
const C: NodeSpec = {
  tag: 'nc',
  name: 'tlb-node-c',
  ip: '192.168.101.11',
  gateway: '192.168.101.1',
  routerPort: 'rc',
  block: '10.65.3.0/26',
  tunnel: '10.65.3.1',
  pod: '10.65.3.7',
  cali: 'calic0000000001',
};
const SPECS = [A, B, C] as const;

let ipipProbe: string | undefined | null = null;

/** Why this kernel cannot make ipip devices, or undefined when it can. */
function ipipUnavailable(): string | undefined {
  if (ipipProbe !== null) return ipipProbe;
  ipipProbe = undefined;
  const ns = TestNetns.create('probe', 'tlb');
  try {
    // Explicit endpoints: with the module loaded, an any-to-any ipip device would collide
    // with the fallback tunl0 (EEXIST) and look like a missing module.
    ns.ip('link', 'add', 'tlbprobe0', 'type', 'ipip', 'remote', '192.0.2.1', 'local', '192.0.2.2');
    ns.ip('link', 'show', 'dev', 'tunl0');
  } catch (e) {
    const msg = (e as { stderr?: string }).stderr?.trim() ?? (e as Error).message.split('\n')[0];
    ipipProbe = `this kernel cannot make ipip devices (${msg}); the IPIP data path runs in the qemu lab (e2e/lab/run-ipip.sh)`;
  } finally {
    ns.destroy();
  }
  return ipipProbe;
}

/** needKernel, then ipip: skips with the reason, or throws where ipip is required. */
function needIpip(t: TestContext): boolean {
  if (!needKernel(t)) return false;
  const why = ipipUnavailable();
  if (why === undefined) return true;
  if (process.env['LAB_GUEST'] === '1' || process.env['TABBY_REQUIRE_IPIP'] === '1')
    throw new Error(`IPIP test cannot run where ipip is required: ${why}`);
  console.log(`# skipping: ${why}`);
  t.skip(why);
  return false;
}

/** Polls (every 50 ms: in the emulated lab every `ip` costs a tenth of a second or more). */
async function waitUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<number> {
  const start = performance.now();
  for (;;) {
    if (cond()) return performance.now() - start;
    if (performance.now() - start > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function ipBatch(ns: TestNetns | undefined, lines: readonly string[]): void {
  const args = ns === undefined ? ['-batch', '-'] : ['-n', ns.name, '-batch', '-'];
  execFileSync('ip', args, { input: lines.join('\n') + '\n', stdio: ['pipe', 'pipe', 'pipe'] });
}

/** A pod: a veth whose host end (cali…) stays in the node and whose eth0 goes to the pod. */
async function makePod(node: TestNetns, pod: TestNetns, n: NodeSpec): Promise<void> {
  const c = RtnlClient.open({ netns: node.path });
  const fd = openNetns(pod.path);
  try {
    await c.createLink({ kind: 'veth', name: n.cali, up: true, peer: { name: 'tlbeth0', netnsFd: fd } });
  } finally {
    closeSync(fd);
    c.close();
  }
  const p = RtnlClient.open({ netns: pod.path });
  try {
    await p.setLink('lo', { up: true });
    const eth0 = (await p.getLink('tlbeth0')).index;
    await p.setLink(eth0, { name: 'eth0', up: true });
    await p.addAddress({ family: 4, index: eth0, address: n.pod, prefixLen: 32 });
    await p.addRoute({ family: 4, dst: '169.254.1.1', dstLen: 32, scope: 253, nexthops: [{ oif: eth0 }] });
    await p.addRoute({
      family: 4,
      dst: '0.0.0.0',
      dstLen: 0,
      nexthops: [{ oif: eth0, gateway: '169.254.1.1' }],
    });
  } finally {
    p.close();
  }
}

/** A node's dataplane: tunl0, routes and endpoint sysctls, reconciled; pools can change. */
class NodeDataplane {
  private readonly tunnelKernel: NetlinkTunnelKernel;
  private readonly tunnels: TunnelManager;
  private readonly routeKernel: NetlinkKernel;
  private readonly routes: RouteReconciler;
  private readonly sysctls: EndpointSysctls;

  constructor(
    readonly ns: TestNetns,
    private readonly self: NodeSpec,
    private readonly peers: readonly NodeSpec[],
    pools: readonly PoolInput[],
  ) {
    this.tunnelKernel = new NetlinkTunnelKernel({ netns: ns.path });
    this.tunnels = new TunnelManager({ kernel: this.tunnelKernel });
    this.routeKernel = new NetlinkKernel({ netns: ns.path });
    this.routes = new RouteReconciler({ kernel: this.routeKernel }, { cleanupGraceMs: 0, families: [4] });
    this.sysctls = new EndpointSysctls({ kernel: this.routeKernel, sysctl: netlinkSysctls(ns.path) });
    this.setPools(pools);
    this.tunnels.start();
    this.routes.start();
    this.sysctls.start();
    void this.sysctls.setEndpoints(new Map([[self.cali, [4 as const]]]));
  }

  /** What the node daemon does when an IP pool changes: new tunnel plan, new routes. */
  setPools(pools: readonly PoolInput[]): void {
    this.tunnels.setPlan(
      desiredTunnels({
        nodeName: this.self.name,
        nodeAddress: this.self.ip,
        pools,
        ipipTunnelAddress: this.self.tunnel,
        hostMtu: 1500,
      }),
    );
    const desired = computeDesired({
      hostInterfaces: [{ name: 'eth0', addresses: [`${this.self.ip}/24`] }],
      pools,
      affineBlocks: [this.self.block],
      endpoints: [{ interfaceName: this.self.cali, addresses: [this.self.pod] }],
      paths: this.peers.map((p) => ({ prefix: p.block, nextHops: [p.ip] })),
    });
    assert.deepEqual(desired.problems, []);
    this.routes.setDesired(desired.routes);
  }

  async stop(): Promise<void> {
    this.sysctls.stop();
    await Promise.all([this.tunnels.stop(), this.routes.stop()]);
    this.tunnelKernel.close();
    this.routeKernel.close();
  }
}

interface Lab {
  readonly nodes: ReadonlyMap<NodeSpec, TestNetns>;
  readonly pods: ReadonlyMap<NodeSpec, TestNetns>;
  readonly dataplanes: NodeDataplane[];
}

const made: TestNetns[] = [];
let lab: Lab | undefined;

after(async () => {
  if (lab !== undefined) for (const d of lab.dataplanes) await d.stop();
  for (const ns of made.reverse()) ns.destroy();
});

/** The namespaces, links, addresses and pods; built once, shared by the tests. */
async function theLab(): Promise<Lab> {
  if (lab !== undefined) return lab;
  const create = (tag: string): TestNetns => {
    const ns = TestNetns.create(tag, 'tlb');
    made.push(ns);
    return ns;
  };
  const router = create('rt');
  const nodes = new Map(SPECS.map((s) => [s, create(s.tag)] as const));
  const pods = new Map(SPECS.map((s) => [s, create(`p${s.tag.slice(1)}`)] as const));
  const nodeOf = (s: NodeSpec): TestNetns => nodes.get(s)!;
  // each node's eth0 is a veth into the router; A and C share 192.168.101.0/24 on a bridge
  ipBatch(
    undefined,
    SPECS.map(
      (s) => `link add eth0 netns ${nodeOf(s).name} type veth peer name ${s.routerPort} netns ${router.name}`,
    ),
  );
  ipBatch(router, [
    'link set lo up',
    'link add br0 type bridge',
    `link set ${A.routerPort} master br0`,
    `link set ${C.routerPort} master br0`,
    'addr add 192.168.101.1/24 dev br0',
    `addr add 192.168.102.1/24 dev ${B.routerPort}`,
    'link set br0 up',
    ...SPECS.map((s) => `link set ${s.routerPort} up`),
  ]);
  writeSysctl('net.ipv4.ip_forward', '1', router.path);
  for (const s of SPECS) {
    const ns = nodeOf(s);
    // the default route also makes proxy ARP answer for the pods' gateway 169.254.1.1
    ipBatch(ns, [
      'link set lo up',
      `addr add ${s.ip}/24 dev eth0`,
      'link set eth0 up',
      `route add default via ${s.gateway} dev eth0`,
    ]);
    writeSysctl('net.ipv4.ip_forward', '1', ns.path);
    await makePod(ns, pods.get(s)!, s);
  }
  lab = { nodes, pods, dataplanes: [] };
  return lab;
}

/** Starts the nodes' dataplanes with these pools, or moves running ones to them. */
function usePools(l: Lab, pools: readonly PoolInput[]): void {
  if (l.dataplanes.length === 0)
    for (const s of SPECS)
      l.dataplanes.push(
        new NodeDataplane(
          l.nodes.get(s)!,
          s,
          SPECS.filter((p) => p !== s),
          pools,
        ),
      );
  else for (const d of l.dataplanes) d.setPools(pools);
}

const tunnelRoute = (peer: NodeSpec): string => `${peer.block} via ${peer.ip} dev tunl0 proto 84 onlink`;
const directRoute = (peer: NodeSpec): string => `${peer.block} via ${peer.ip} dev eth0 proto 84`;

/** True when every node's routes to the other blocks are exactly `want(self, peer)`. */
function routesAre(l: Lab, want: (self: NodeSpec, peer: NodeSpec) => string): boolean {
  return SPECS.every((s) =>
    SPECS.every((p) => p === s || l.nodes.get(s)!.routes(4, p.block).join() === want(s, p)),
  );
}

interface Tunl0 {
  readonly mtu: number;
  readonly up: boolean;
  readonly tx: number;
  readonly rx: number;
}

function tunl0(ns: TestNetns): Tunl0 {
  const l = (
    JSON.parse(ns.ip('-j', '-s', 'link', 'show', 'dev', 'tunl0')) as {
      mtu: number;
      flags: string[];
      stats64: { tx: { packets: number }; rx: { packets: number } };
    }[]
  )[0]!;
  return { mtu: l.mtu, up: l.flags.includes('UP'), tx: l.stats64.tx.packets, rx: l.stats64.rx.packets };
}

/** Two echo requests answered within 10 s (the lab is slow), or the ping's own output. */
function ping(from: TestNetns, to: string): void {
  try {
    execFileSync('ip', ['netns', 'exec', from.name, 'ping', '-c', '2', '-i', '0.2', '-w', '10', '-q', to], {
      stdio: 'pipe',
    });
  } catch (e) {
    const out = (e as { stdout?: Buffer }).stdout?.toString().trim() ?? (e as Error).message;
    assert.fail(`ping from ${from.name} to ${to} failed: ${out}`);
  }
}

/** Pings from `from`'s pod to `to`'s pod; returns the change in `from`'s tunl0 counters. */
function podPing(l: Lab, from: NodeSpec, to: NodeSpec): { tx: number; rx: number } {
  const node = l.nodes.get(from)!;
  const before = tunl0(node);
  ping(l.pods.get(from)!, to.pod);
  const afterPing = tunl0(node);
  return { tx: afterPing.tx - before.tx, rx: afterPing.rx - before.rx };
}

describe('IPIP data path between namespace nodes on two subnets', () => {
  it('pods_ping_each_other_across_tunl0_with_ipip_always_on_both_subnets', async (t) => {
    if (!needIpip(t)) return;
    const l = await theLab();
    usePools(l, ALWAYS);
    const ms = await waitUntil(() => routesAre(l, (_s, p) => tunnelRoute(p)), 30_000, 'IPIP Always routes');
    console.log(`# IPIP Always: all three nodes programmed ${ms.toFixed(0)} ms after start`);
    for (const s of SPECS) {
      const tun = tunl0(l.nodes.get(s)!);
      assert.deepEqual([tun.mtu, tun.up], [1480, true], `tunl0 on ${s.name}`);
      assert.deepEqual(
        l.nodes.get(s)!.ip('-4', '-br', 'addr', 'show', 'dev', 'tunl0').trim().split(/\s+/)[2],
        `${s.tunnel}/32`,
      );
    }
    // the router has no route to 10.65.0.0/16: only encapsulated packets get across
    for (const [from, to] of [
      [A, B],
      [B, A],
      [A, C],
    ] as const) {
      const d = podPing(l, from, to);
      assert.ok(
        d.tx >= 2 && d.rx >= 2,
        `${from.pod} -> ${to.pod}: tunl0 on ${from.name} sent ${d.tx}, received ${d.rx}`,
      );
    }
  });

  it('cross_subnet_tunnels_to_the_other_subnet_and_sends_same_subnet_traffic_direct', async (t) => {
    if (!needIpip(t)) return;
    const l = await theLab();
    usePools(l, CROSS_SUBNET);
    const sameSubnet = (s: NodeSpec, p: NodeSpec): boolean => s.gateway === p.gateway;
    const ms = await waitUntil(
      () => routesAre(l, (s, p) => (sameSubnet(s, p) ? directRoute(p) : tunnelRoute(p))),
      30_000,
      'IPIP CrossSubnet routes',
    );
    console.log(`# IPIP CrossSubnet: all three nodes programmed ${ms.toFixed(0)} ms after the pool changed`);
    for (const [from, to] of [
      [A, B],
      [B, C],
    ] as const) {
      const d = podPing(l, from, to);
      assert.ok(
        d.tx >= 2 && d.rx >= 2,
        `${from.pod} -> ${to.pod}: tunl0 on ${from.name} sent ${d.tx}, received ${d.rx}`,
      );
    }
    for (const [from, to] of [
      [A, C],
      [C, A],
    ] as const) {
      const d = podPing(l, from, to);
      assert.deepEqual(
        d,
        { tx: 0, rx: 0 },
        `${from.pod} -> ${to.pod} on one subnet goes direct, not through tunl0`,
      );
    }
  });
});
