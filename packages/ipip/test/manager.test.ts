// The TunnelManager against the in-memory kernel: devices created as planned, drift repaired
// in place, incompatible devices recreated, unwanted ones removed (tunl0 emptied and set
// down, since the kernel keeps it), no writes before a plan, waiting for the node address,
// faults retried with backoff, events driving repairs, and convergence from random states.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { LinkSpec } from '@tabby/netlink/codec';
import type { PoolEncap, TunnelPassResult, TunnelPlan } from '../src/index.js';
import { desiredTunnels, FakeTunnelKernel, TunnelManager, vxlanMacForNode } from '../src/index.js';
import { ManualClock, settle } from './clock.js';

const MAC = vxlanMacForNode('node-1');
const VXLAN_POOL: PoolEncap[] = [{ cidr: '10.65.0.0/16', vxlanMode: 'Always' }];
const IPIP_POOL: PoolEncap[] = [{ cidr: '10.65.0.0/16', ipipMode: 'Always' }];

function plan(pools: readonly PoolEncap[], extra: { hostMtu?: number } = {}): TunnelPlan {
  return desiredTunnels({
    nodeName: 'node-1',
    nodeAddress: '192.168.0.11',
    pools,
    ipipTunnelAddress: '10.65.1.1',
    vxlanTunnelAddress: '10.65.1.0',
    hostMtu: extra.hostMtu ?? 1500,
  });
}

function node(): { kernel: FakeTunnelKernel; eth0: number } {
  const kernel = new FakeTunnelKernel();
  const eth0 = kernel.addLinkByHand({ name: 'eth0', kind: 'veth', mtu: 1500, up: true }).index;
  kernel.addAddressByHand('eth0', '192.168.0.11/24');
  return { kernel, eth0 };
}

function manager(kernel: FakeTunnelKernel, clock = new ManualClock()): TunnelManager {
  return new TunnelManager({ kernel, clock, random: () => 0.5 });
}

function assertVxlanAsPlanned(kernel: FakeTunnelKernel, eth0: number): void {
  const vx = kernel.link('vxlan.calico');
  assert.ok(vx, 'vxlan.calico exists');
  assert.equal(vx.kind, 'vxlan');
  assert.deepEqual(vx.vxlan, { id: 4096, port: 4789, local: '192.168.0.11', learning: false, link: eth0 });
  assert.equal(vx.mtu, 1450);
  assert.equal(vx.address, MAC);
  assert.equal(vx.up, true);
  assert.deepEqual(kernel.addressesOf('vxlan.calico'), ['10.65.1.0/32']);
}

describe('TunnelManager on a fake kernel', () => {
  it('creates_vxlan_calico_as_planned_and_a_second_pass_writes_nothing', async () => {
    const { kernel, eth0 } = node();
    const m = manager(kernel);
    m.setPlan(plan(VXLAN_POOL));
    const r = await m.apply();
    assert.deepEqual(r.actions, [
      'created vxlan.calico',
      'vxlan.calico: added 10.65.1.0/32',
      'vxlan.calico: up',
    ]);
    assert.equal(r.inSync, true);
    assertVxlanAsPlanned(kernel, eth0);
    assert.equal(kernel.link('tunl0'), undefined);
    kernel.takeWrites();
    const again = await m.apply();
    assert.deepEqual(again.actions, []);
    assert.deepEqual(kernel.takeWrites(), []);
  });

  it('writes_nothing_before_the_first_plan', async () => {
    const { kernel } = node();
    kernel.addLinkByHand({ name: 'vxlan.calico', kind: 'vxlan', vxlan: { id: 1 } });
    const m = manager(kernel);
    const r = await m.apply();
    assert.deepEqual(r, { actions: [], waiting: [], failed: [], inSync: false });
    assert.deepEqual(kernel.writes, []);
    assert.ok(kernel.link('vxlan.calico'));
  });

  it('repairs_mtu_mac_addresses_and_state_in_place_without_recreating', async () => {
    const { kernel, eth0 } = node();
    const m = manager(kernel);
    m.setPlan(plan(VXLAN_POOL));
    await m.apply();
    const index = kernel.link('vxlan.calico')!.index;
    kernel.setLinkByHand('vxlan.calico', { mtu: 1500, address: '02:00:00:00:00:99', up: false });
    kernel.deleteAddressByHand('vxlan.calico', '10.65.1.0/32');
    kernel.addAddressByHand('vxlan.calico', '10.99.0.1/24');
    kernel.takeWrites();
    const r = await m.apply();
    assert.deepEqual(r.actions, [
      'vxlan.calico: mtu 1500 -> 1450',
      `vxlan.calico: mac 02:00:00:00:00:99 -> ${MAC}`,
      'vxlan.calico: removed 10.99.0.1/24',
      'vxlan.calico: added 10.65.1.0/32',
      'vxlan.calico: up',
    ]);
    assert.equal(kernel.link('vxlan.calico')!.index, index);
    assert.ok(!kernel.writes.some((w) => w.startsWith('deleteLink') || w.startsWith('createLink')));
    assertVxlanAsPlanned(kernel, eth0);
  });

  it('recreates_a_device_of_another_kind_or_with_settings_the_kernel_cannot_change', async () => {
    const wrong: [string, Omit<Parameters<FakeTunnelKernel['addLinkByHand']>[0], 'name'>][] = [
      ['kind dummy, not vxlan', { kind: 'dummy' }],
      [
        'VNI 1, not 4096',
        { kind: 'vxlan', vxlan: { id: 1, port: 4789, local: '192.168.0.11', learning: false } },
      ],
      [
        'port 8472, not 4789',
        { kind: 'vxlan', vxlan: { id: 4096, port: 8472, local: '192.168.0.11', learning: false } },
      ],
      [
        'local 192.168.0.99, not 192.168.0.11',
        { kind: 'vxlan', vxlan: { id: 4096, port: 4789, local: '192.168.0.99', learning: false } },
      ],
      [
        'MAC learning on',
        { kind: 'vxlan', vxlan: { id: 4096, port: 4789, local: '192.168.0.11', learning: true, link: 2 } },
      ],
    ];
    for (const [why, spec] of wrong) {
      const { kernel, eth0 } = node();
      kernel.addLinkByHand({ name: 'vxlan.calico', ...spec });
      const m = manager(kernel);
      m.setPlan(plan(VXLAN_POOL));
      const r = await m.apply();
      assert.match(r.actions[0]!, new RegExp(`^deleted vxlan\\.calico: ${why.replace(/\./g, '\\.')}`), why);
      assert.equal(r.actions[1], 'created vxlan.calico');
      assertVxlanAsPlanned(kernel, eth0);
    }
  });

  it('switching_pools_from_vxlan_to_ipip_to_none_moves_and_removes_the_devices', async () => {
    const { kernel, eth0 } = node();
    const m = manager(kernel);
    m.setPlan(plan(VXLAN_POOL));
    await m.apply();
    assertVxlanAsPlanned(kernel, eth0);
    m.setPlan(plan(IPIP_POOL));
    const r = await m.apply();
    assert.deepEqual(r.actions, [
      'created tunl0',
      'tunl0: added 10.65.1.1/32',
      'tunl0: up',
      'deleted vxlan.calico: no pool uses VXLAN',
    ]);
    assert.equal(kernel.link('vxlan.calico'), undefined);
    const tunl0 = kernel.link('tunl0')!;
    assert.equal(tunl0.kind, 'ipip');
    assert.equal(tunl0.mtu, 1480);
    assert.equal(tunl0.up, true);
    assert.deepEqual(kernel.addressesOf('tunl0'), ['10.65.1.1/32']);
    m.setPlan(plan([{ cidr: '10.65.0.0/16' }]));
    const off = await m.apply();
    assert.deepEqual(off.actions, [
      'tunl0: removed 10.65.1.1/32 (no pool uses IPIP)',
      'tunl0: down (no pool uses IPIP)',
    ]);
    // the module's fallback device stays, empty and down
    assert.equal(kernel.link('tunl0')!.up, false);
    assert.deepEqual(kernel.addressesOf('tunl0'), []);
    assert.deepEqual((await m.apply()).actions, []);
  });

  it('leaves_a_device_of_another_kind_named_tunl0_alone_when_ipip_is_unwanted', async () => {
    const { kernel } = node();
    kernel.addLinkByHand({ name: 'tunl0', kind: 'veth', up: true });
    kernel.addAddressByHand('tunl0', '10.1.1.1/24');
    const m = manager(kernel);
    m.setPlan(plan(VXLAN_POOL));
    await m.apply();
    assert.equal(kernel.link('tunl0')!.up, true);
    assert.deepEqual(kernel.addressesOf('tunl0'), ['10.1.1.1/24']);
  });

  it('adopts_a_tunl0_the_ipip_module_created_while_we_were_creating_ours', async () => {
    class RacingKernel extends FakeTunnelKernel {
      override async createLink(spec: LinkSpec): Promise<void> {
        if (spec.kind === 'ipip' && this.link(spec.name) === undefined)
          this.addLinkByHand({ name: 'tunl0', kind: 'ipip' }, true); // module loaded on our request
        return super.createLink(spec);
      }
    }
    const kernel = new RacingKernel();
    const m = manager(kernel);
    m.setPlan(plan(IPIP_POOL));
    const r = await m.apply();
    assert.deepEqual(r.failed, []);
    assert.deepEqual(r.actions, ['tunl0: added 10.65.1.1/32', 'tunl0: up']);
    assert.equal(kernel.link('tunl0')!.mtu, 1480);
  });

  it('waits_for_the_node_address_and_configures_vxlan_when_it_appears', async () => {
    const kernel = new FakeTunnelKernel();
    kernel.addLinkByHand({ name: 'eth0', kind: 'veth', up: true });
    const clock = new ManualClock();
    const m = manager(kernel, clock);
    const passes: (TunnelPassResult | Error)[] = [];
    m.onPass((r) => passes.push(r));
    m.setPlan(plan(VXLAN_POOL));
    m.start();
    clock.advance(0);
    await settle();
    const first = passes.at(-1) as TunnelPassResult;
    assert.deepEqual(first.waiting, [
      { name: 'vxlan.calico', reason: 'the node address 192.168.0.11 is on no interface' },
    ]);
    assert.equal(first.inSync, false);
    assert.equal(kernel.link('vxlan.calico'), undefined);
    kernel.addAddressByHand('eth0', '192.168.0.11/24');
    await settle();
    clock.advance(10);
    await settle();
    assertVxlanAsPlanned(kernel, kernel.link('eth0')!.index);
    await m.stop();
  });

  it('repairs_a_device_deleted_or_changed_by_hand_from_the_events_alone', async () => {
    const { kernel, eth0 } = node();
    const clock = new ManualClock();
    const m = manager(kernel, clock);
    m.setPlan(plan(VXLAN_POOL));
    m.start();
    clock.advance(0);
    await settle();
    assertVxlanAsPlanned(kernel, eth0);
    kernel.deleteLinkByHand('vxlan.calico');
    await settle();
    clock.advance(10); // the debounce, far below the 30 s resync
    await settle();
    assertVxlanAsPlanned(kernel, eth0);
    kernel.setLinkByHand('vxlan.calico', { mtu: 9000 });
    await settle();
    clock.advance(10);
    await settle();
    assert.equal(kernel.link('vxlan.calico')!.mtu, 1450);
    await m.stop();
  });

  it('retries_refused_writes_with_backoff_until_they_succeed', async () => {
    const { kernel, eth0 } = node();
    const clock = new ManualClock();
    const m = manager(kernel, clock);
    kernel.faults.push({ op: 'addAddress', errno: 'EBUSY', times: 2 });
    const passes: (TunnelPassResult | Error)[] = [];
    m.onPass((r) => passes.push(r));
    m.setPlan(plan(VXLAN_POOL));
    m.start();
    clock.advance(0);
    await settle();
    assert.equal((passes.at(-1) as TunnelPassResult).failed[0]?.name, 'vxlan.calico');
    assert.match((passes.at(-1) as TunnelPassResult).failed[0]!.error.message, /EBUSY/);
    // events from our own writes run one more pass at once (it fails too); after that
    // nothing runs until the backoff is over
    clock.advance(10);
    await settle();
    const failedPasses = passes.length;
    assert.equal(kernel.writes.filter((w) => w.startsWith('addAddress')).length, 2);
    clock.advance(50);
    await settle();
    assert.equal(passes.length, failedPasses);
    clock.advance(1000);
    await settle();
    assert.equal(kernel.writes.filter((w) => w.startsWith('addAddress')).length, 3);
    assert.equal((passes.at(-1) as TunnelPassResult).inSync, true);
    assertVxlanAsPlanned(kernel, eth0);
    await m.stop();
  });

  it('reports_a_kernel_without_ipip_and_keeps_retrying_with_growing_backoff', async () => {
    const { kernel } = node();
    kernel.ipipSupported = false;
    const clock = new ManualClock();
    const m = manager(kernel, clock);
    const passes: (TunnelPassResult | Error)[] = [];
    m.onPass((r) => passes.push(r));
    m.setPlan(plan(IPIP_POOL));
    m.start();
    clock.advance(0);
    await settle();
    const r = passes.at(-1) as TunnelPassResult;
    assert.equal(r.failed[0]?.name, 'tunl0');
    assert.match(r.failed[0].error.message, /no ipip support.*Unknown device type/);
    for (const wait of [100, 200, 400, 800]) {
      clock.advance(wait);
      await settle();
    }
    assert.equal(passes.length, 5);
    assert.equal(kernel.writes.filter((w) => w === 'createLink tunl0').length, 5);
    await m.stop();
  });

  it('runs_vxlan_v6_calico_beside_vxlan_calico_on_the_interface_holding_the_node_ipv6_address', async () => {
    const { kernel, eth0 } = node();
    // the IPv6 underlay on another interface than the IPv4 one
    const eth1 = kernel.addLinkByHand({ name: 'eth1', kind: 'veth', mtu: 9000, up: true }).index;
    kernel.addAddressByHand('eth1', 'fd00::11/64');
    const dual: PoolEncap[] = [...VXLAN_POOL, { cidr: 'fd10::/48', vxlanMode: 'Always' }];
    const planOf = (pools: readonly PoolEncap[]): TunnelPlan =>
      desiredTunnels({
        nodeName: 'node-1',
        nodeAddress: '192.168.0.11',
        nodeAddressV6: 'fd00::11',
        pools,
        vxlanTunnelAddress: '10.65.1.0',
        vxlanTunnelAddressV6: 'fd10:0:0:1::',
        hostMtu: 1500,
      });
    const clock = new ManualClock();
    const m = manager(kernel, clock);
    m.setPlan(planOf(dual));
    const r = await m.apply();
    assert.deepEqual(r.actions, [
      'created vxlan.calico',
      'vxlan.calico: added 10.65.1.0/32',
      'vxlan.calico: up',
      'created vxlan-v6.calico',
      'vxlan-v6.calico: added fd10:0:0:1::/128',
      'vxlan-v6.calico: up',
    ]);
    assertVxlanAsPlanned(kernel, eth0);
    const v6 = kernel.link('vxlan-v6.calico')!;
    assert.deepEqual(v6.vxlan, { id: 4096, port: 4789, local: 'fd00::11', learning: false, link: eth1 });
    assert.equal(v6.mtu, 1430);
    assert.equal(v6.address, vxlanMacForNode('node-1', 6));
    assert.deepEqual(kernel.addressesOf('vxlan-v6.calico'), ['fd10:0:0:1::/128']);

    // the kernel's link-local address stays; an address added by hand goes; an IPv4 one is not ours to judge
    kernel.addAddressByHand('vxlan-v6.calico', 'fe80::6400:1ff:fe02:304/64');
    kernel.addAddressByHand('vxlan-v6.calico', 'fd99::1/64');
    m.start();
    await settle();
    clock.advance(10);
    await settle();
    assert.deepEqual(kernel.addressesOf('vxlan-v6.calico'), [
      'fd10:0:0:1::/128',
      'fe80::6400:1ff:fe02:304/64',
    ]);
    // the node's IPv6 address moves to eth0: the device follows it (a parent cannot change in place)
    kernel.deleteAddressByHand('eth1', 'fd00::11/64');
    kernel.addAddressByHand('eth0', 'fd00::11/64');
    await settle();
    clock.advance(10);
    await settle();
    assert.equal(kernel.link('vxlan-v6.calico')!.vxlan?.link, eth0);
    await m.stop();

    // no IPv6 pool uses VXLAN any more: only vxlan-v6.calico goes
    m.setPlan(planOf(VXLAN_POOL));
    const off = await m.apply();
    assert.deepEqual(off.actions, ['deleted vxlan-v6.calico: no IPv6 pool uses VXLAN']);
    assert.equal(kernel.link('vxlan-v6.calico'), undefined);
    assertVxlanAsPlanned(kernel, eth0);
  });

  it('a_plan_naming_one_device_twice_is_refused', () => {
    const m = manager(new FakeTunnelKernel());
    assert.throws(
      () =>
        m.setPlan({
          devices: [],
          unwanted: [{ kind: 'vxlan', name: 'x' }],
          waiting: [{ name: 'x', reason: '' }],
        }),
      TypeError,
    );
  });

  it('converges_in_one_pass_from_any_starting_state_and_then_writes_nothing', async () => {
    const start = fc.record({
      pools: fc.constantFrom(VXLAN_POOL, IPIP_POOL, [{ cidr: '10.65.0.0/16' }]),
      vx: fc.option(
        fc.record({
          kind: fc.constantFrom('vxlan', 'dummy'),
          id: fc.constantFrom(4096, 7),
          learning: fc.boolean(),
          mtu: fc.constantFrom(1450, 1500),
          up: fc.boolean(),
        }),
      ),
      tunl0: fc.option(fc.record({ mtu: fc.constantFrom(1480, 1400), up: fc.boolean() })),
      extra: fc.subarray(['10.65.1.0/32', '10.65.1.1/32', '10.9.9.9/24']),
      hostMtu: fc.constantFrom(1500, 9001),
    });
    await fc.assert(
      fc.asyncProperty(start, async (s) => {
        const { kernel } = node();
        if (s.vx !== null) {
          kernel.addLinkByHand({
            name: 'vxlan.calico',
            kind: s.vx.kind,
            mtu: s.vx.mtu,
            up: s.vx.up,
            ...(s.vx.kind === 'vxlan'
              ? {
                  vxlan: { id: s.vx.id, port: 4789, local: '192.168.0.11', learning: s.vx.learning, link: 2 },
                }
              : {}),
          });
          for (const a of s.extra) kernel.addAddressByHand('vxlan.calico', a);
        }
        if (s.tunl0 !== null) {
          kernel.addLinkByHand({ name: 'tunl0', kind: 'ipip', ...s.tunl0 }, true);
          for (const a of s.extra) kernel.addAddressByHand('tunl0', a);
        }
        const m = manager(kernel);
        const p = plan(s.pools, { hostMtu: s.hostMtu });
        m.setPlan(p);
        const first = await m.apply();
        assert.equal(first.inSync, true);
        const second = await m.apply();
        assert.deepEqual(second.actions, []);
        for (const d of p.devices) {
          const l = kernel.link(d.name)!;
          assert.equal(l.mtu, d.mtu);
          assert.equal(l.up, true);
          assert.deepEqual(kernel.addressesOf(d.name), [`${d.address}/32`]);
        }
        for (const u of p.unwanted) {
          const l = kernel.link(u.name);
          if (u.kind === 'vxlan') assert.equal(l, undefined);
          else if (l !== undefined) {
            assert.equal(l.up, false);
            assert.deepEqual(kernel.addressesOf(u.name), []);
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});
