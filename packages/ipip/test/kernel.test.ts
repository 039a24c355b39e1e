// The TunnelManager against the real kernel, in network namespaces the tests make and remove
// (tip-…): vxlan.calico created with Calico's settings and read back with `ip -d -j`, drift
// repaired within a second from the netlink monitor alone (MTU, MAC, address, down, deleted),
// an incompatible device recreated, the device removed when no pool needs it, host MTU
// detection from a namespace's routes and addresses; and tunl0, which needs the ipip module
// (skipped with the reason on this host, run in the qemu lab).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { PoolEncap, TunnelPassResult, TunnelPlan } from '../src/index.js';
import {
  desiredTunnels,
  NetlinkTunnelKernel,
  readHostMtu,
  TunnelManager,
  vxlanMacForNode,
} from '../src/index.js';
import { needIpip, needKernel, TestNetns, waitFor } from './netns.js';

const made: TestNetns[] = [];
after(() => {
  for (const ns of made) ns.destroy();
});

const MAC = vxlanMacForNode('tip-node-1');
const VXLAN: PoolEncap[] = [{ cidr: '10.65.0.0/16', vxlanMode: 'Always' }];
const IPIP: PoolEncap[] = [{ cidr: '10.65.0.0/16', ipipMode: 'CrossSubnet' }];
const NONE: PoolEncap[] = [{ cidr: '10.65.0.0/16' }];

function plan(pools: readonly PoolEncap[]): TunnelPlan {
  return desiredTunnels({
    nodeName: 'tip-node-1',
    nodeAddress: '192.168.0.11',
    pools,
    ipipTunnelAddress: '10.65.1.1',
    vxlanTunnelAddress: '10.65.1.0',
    hostMtu: 1500,
  });
}

/** A node namespace: eth0 (a veth, 192.168.0.11/24, up). */
function makeNode(tag: string): TestNetns {
  const ns = TestNetns.create(tag);
  made.push(ns);
  ns.ip('link', 'set', 'lo', 'up');
  ns.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0');
  ns.ip('addr', 'add', '192.168.0.11/24', 'dev', 'eth0');
  ns.ip('link', 'set', 'eth0', 'up');
  ns.ip('link', 'set', 'peer0', 'up');
  return ns;
}

function assertVxlan(ns: TestNetns): void {
  const l = ns.link('vxlan.calico');
  assert.ok(l, 'vxlan.calico exists');
  assert.equal(l.linkinfo?.info_kind, 'vxlan');
  const d = l.linkinfo.info_data!;
  assert.deepEqual([d.id, d.port, d.local, d.link, d.learning], [4096, 4789, '192.168.0.11', 'eth0', false]);
  assert.equal(l.mtu, 1450);
  assert.equal(l.address, MAC);
  assert.ok(l.flags.includes('UP'), `flags ${l.flags.join(',')}`);
  assert.deepEqual(ns.addresses('vxlan.calico'), ['10.65.1.0/32']);
}

async function started(
  ns: TestNetns,
  p: TunnelPlan,
): Promise<{ m: TunnelManager; close: () => Promise<void> }> {
  const kernel = new NetlinkTunnelKernel({ netns: ns.path });
  const m = new TunnelManager({ kernel });
  const first = new Promise<TunnelPassResult | Error>((resolve) => {
    const off = m.onPass((r) => {
      off();
      resolve(r);
    });
  });
  m.setPlan(p);
  m.start();
  const r = await first;
  if (r instanceof Error) throw r;
  return {
    m,
    close: async () => {
      await m.stop();
      kernel.close();
    },
  };
}

describe('TunnelManager against the kernel', () => {
  it('creates_vxlan_calico_with_calicos_settings_and_a_second_pass_writes_nothing', async (t) => {
    if (!needKernel(t)) return;
    const ns = makeNode('vx');
    const { m, close } = await started(ns, plan(VXLAN));
    try {
      assertVxlan(ns);
      assert.deepEqual((await m.apply()).actions, []);
    } finally {
      await close();
    }
  });

  it('repairs_mtu_mac_address_state_and_deletion_by_hand_within_a_second', async (t) => {
    if (!needKernel(t)) return;
    const ns = makeNode('drift');
    const { close } = await started(ns, plan(VXLAN));
    const repaired = (): boolean => {
      const l = ns.link('vxlan.calico');
      return (
        l !== undefined &&
        l.mtu === 1450 &&
        l.address === MAC &&
        l.flags.includes('UP') &&
        ns.addresses('vxlan.calico').join() === '10.65.1.0/32'
      );
    };
    try {
      const drifts: [string, string[][]][] = [
        ['mtu', [['link', 'set', 'vxlan.calico', 'mtu', '1400']]],
        ['mac', [['link', 'set', 'vxlan.calico', 'address', '02:11:22:33:44:55']]],
        ['down', [['link', 'set', 'vxlan.calico', 'down']]],
        [
          'addresses',
          [
            ['addr', 'del', '10.65.1.0/32', 'dev', 'vxlan.calico'],
            ['addr', 'add', '10.99.0.1/24', 'dev', 'vxlan.calico'],
          ],
        ],
        ['deleted', [['link', 'del', 'vxlan.calico']]],
      ];
      for (const [what, cmds] of drifts) {
        for (const c of cmds) ns.ip(...c);
        const ms = await waitFor(repaired, 1000, `vxlan.calico repaired after ${what}`);
        console.log(`# ${what} repaired after ${ms.toFixed(1)} ms`);
      }
      assertVxlan(ns);
    } finally {
      await close();
    }
  });

  it('recreates_a_vxlan_device_with_another_vni_and_removes_it_when_no_pool_needs_it', async (t) => {
    if (!needKernel(t)) return;
    const ns = makeNode('recreate');
    ns.ip(
      'link',
      'add',
      'vxlan.calico',
      'type',
      'vxlan',
      'id',
      '7',
      'dstport',
      '4789',
      'local',
      '192.168.0.11',
      'dev',
      'eth0',
    );
    const { m, close } = await started(ns, plan(VXLAN));
    try {
      assert.match(m.lastResult?.actions[0] ?? '', /^deleted vxlan\.calico: VNI 7, not 4096/);
      assertVxlan(ns);
      m.setPlan(plan(NONE));
      await waitFor(() => ns.link('vxlan.calico') === undefined, 1000, 'vxlan.calico to go');
      await m.apply();
      assert.equal(m.lastResult?.inSync, true);
    } finally {
      await close();
    }
  });

  it('runs_vxlan_v6_calico_beside_vxlan_calico_and_repairs_its_ipv6_address_from_events', async (t) => {
    if (!needKernel(t)) return;
    const ns = makeNode('v6');
    ns.ip('addr', 'add', 'fd00::11/64', 'dev', 'eth0', 'nodad');
    const dual = (v6: boolean): TunnelPlan =>
      desiredTunnels({
        nodeName: 'tip-node-1',
        nodeAddress: '192.168.0.11',
        nodeAddressV6: 'fd00::11',
        pools: [...VXLAN, ...(v6 ? [{ cidr: 'fd10::/48', vxlanMode: 'Always' as const }] : [])],
        vxlanTunnelAddress: '10.65.1.0',
        vxlanTunnelAddressV6: 'fd10:0:0:1::',
        hostMtu: 1500,
      });
    const v6Addresses = (): string[] =>
      (
        JSON.parse(ns.ip('-j', '-6', 'addr', 'show', 'dev', 'vxlan-v6.calico')) as {
          addr_info: { local: string; prefixlen: number; scope: string }[];
        }[]
      )[0]!.addr_info
        .filter((a) => a.scope !== 'link')
        .map((a) => `${a.local}/${a.prefixlen}`);
    const { m, close } = await started(ns, dual(true));
    try {
      assertVxlan(ns);
      const l = ns.link('vxlan-v6.calico');
      assert.ok(l, 'vxlan-v6.calico exists');
      assert.equal(l.linkinfo?.info_kind, 'vxlan');
      const d = l.linkinfo.info_data!;
      assert.deepEqual([d.id, d.port, d.local6, d.link, d.learning], [4096, 4789, 'fd00::11', 'eth0', false]);
      assert.equal(l.mtu, 1430);
      assert.equal(l.address, vxlanMacForNode('tip-node-1', 6));
      assert.ok(l.flags.includes('UP'), `flags ${l.flags.join(',')}`);
      assert.deepEqual(v6Addresses(), ['fd10:0:0:1::/128']);
      assert.deepEqual((await m.apply()).actions, []);

      ns.ip('addr', 'del', 'fd10:0:0:1::/128', 'dev', 'vxlan-v6.calico');
      const ms = await waitFor(
        () => v6Addresses().join() === 'fd10:0:0:1::/128',
        1000,
        'the VTEP address back on vxlan-v6.calico',
      );
      console.log(`# IPv6 VTEP address deleted by hand: back after ${ms.toFixed(1)} ms`);

      m.setPlan(dual(false));
      await waitFor(() => ns.link('vxlan-v6.calico') === undefined, 1000, 'vxlan-v6.calico to go');
      assertVxlan(ns);
    } finally {
      await close();
    }
  });

  it('detects_the_host_mtu_from_default_route_and_node_address_interfaces', async (t) => {
    if (!needKernel(t)) return;
    const ns = makeNode('mtu');
    ns.ip('link', 'set', 'eth0', 'mtu', '9000');
    ns.ip('link', 'add', 'uplink', 'type', 'veth', 'peer', 'name', 'uplinkp');
    ns.ip('link', 'set', 'uplink', 'mtu', '1400');
    ns.ip('link', 'set', 'uplink', 'up');
    ns.ip('link', 'set', 'uplinkp', 'up');
    ns.ip('addr', 'add', '172.16.0.2/30', 'dev', 'uplink');
    ns.ip('route', 'add', 'default', 'via', '172.16.0.1', 'dev', 'uplink');
    ns.ip('link', 'add', 'small0', 'type', 'veth', 'peer', 'name', 'small1'); // no default route, no node address
    ns.ip('link', 'set', 'small0', 'mtu', '1280', 'up');
    assert.deepEqual(await readHostMtu(['192.168.0.11'], { netns: ns.path }), {
      mtu: 1400,
      interfaces: ['eth0', 'uplink'],
    });
    ns.ip('route', 'del', 'default');
    assert.deepEqual(await readHostMtu(['192.168.0.11'], { netns: ns.path }), {
      mtu: 9000,
      interfaces: ['eth0'],
    });
    assert.equal(await readHostMtu(['10.0.0.9'], { netns: ns.path }), undefined);
  });

  it('configures_tunl0_for_ipip_and_empties_it_when_no_pool_needs_it', async (t) => {
    if (!needIpip(t)) return;
    const ns = makeNode('ipip');
    const { m, close } = await started(ns, plan(IPIP));
    try {
      const l = ns.link('tunl0');
      assert.equal(l?.linkinfo?.info_kind, 'ipip');
      assert.equal(l.mtu, 1480);
      assert.ok(l.flags.includes('UP'));
      assert.deepEqual(ns.addresses('tunl0'), ['10.65.1.1/32']);
      assert.equal(ns.link('vxlan.calico'), undefined);
      ns.ip('link', 'set', 'tunl0', 'mtu', '1300');
      await waitFor(() => ns.link('tunl0')?.mtu === 1480, 1000, 'tunl0 MTU repaired');
      m.setPlan(plan(NONE));
      await waitFor(
        () => ns.addresses('tunl0').length === 0 && !ns.link('tunl0')!.flags.includes('UP'),
        1000,
        'tunl0 emptied and down',
      );
    } finally {
      await close();
    }
  });
});
