// The neighbour reconciler on the in-memory kernel: the VXLAN ARP and FDB entries
// computeDesired produces programmed and read back equal, nothing written before the desired
// set or on a no-change resync, entries of other devices and kernel-made entries untouched,
// stale permanent entries removed, drift repaired from the events alone, waiting for a
// missing or down device, reprogramming after the device is recreated, refused writes retried
// with backoff, and interrupted dumps survived.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NTF_SELF, NUD_REACHABLE } from '@tabby/netlink/codec';
import type { Neighbour, NeighbourPassResult } from '../src/index.js';
import { computeDesired, FakeNeighbourKernel, ManualClock, NeighbourReconciler } from '../src/index.js';

const settle = async (rounds = 5): Promise<void> => {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
};

const VTEPS = [
  { nodeAddress: '192.168.0.12', tunnelAddress: '10.65.2.192', mac: '66:00:00:00:00:12' },
  { nodeAddress: '192.168.7.13', tunnelAddress: '10.65.3.192', mac: '66:00:00:00:00:13' },
];

function desired(vteps = VTEPS): readonly Neighbour[] {
  return computeDesired({
    hostInterfaces: [{ name: 'eth0', addresses: ['192.168.0.11/24'] }],
    pools: [{ cidr: '10.65.0.0/16', vxlanMode: 'Always' }],
    affineBlocks: [],
    endpoints: [],
    paths: vteps.map((v, i) => ({ prefix: `10.65.${i + 2}.0/26`, nextHops: [v.nodeAddress] })),
    vteps,
  }).neighbours;
}

const EXPECTED = [
  'arp 10.65.2.192 66:00:00:00:00:12',
  'arp 10.65.3.192 66:00:00:00:00:13',
  'fdb 66:00:00:00:00:12 dst 192.168.0.12',
  'fdb 66:00:00:00:00:13 dst 192.168.7.13',
];

function setup(): { kernel: FakeNeighbourKernel; clock: ManualClock; r: NeighbourReconciler; vx: number } {
  const kernel = new FakeNeighbourKernel();
  const vx = kernel.addLink('vxlan.calico').index;
  kernel.addLink('eth0');
  const clock = new ManualClock();
  const r = new NeighbourReconciler({ kernel, clock, random: () => 0.5 });
  return { kernel, clock, r, vx };
}

describe('NeighbourReconciler on a fake kernel', () => {
  it('programs_the_vxlan_arp_and_fdb_entries_and_a_resync_then_writes_nothing', async () => {
    const { kernel, r } = setup();
    r.setDesired(desired());
    const res = await r.apply();
    assert.deepEqual([res.set, res.deleted, res.inSync], [4, 0, true]);
    assert.deepEqual(kernel.entriesOf('vxlan.calico'), EXPECTED);
    const writes = kernel.writes.length;
    r.requestResync();
    const again = await r.apply();
    assert.equal(again.resynced, true);
    assert.equal(kernel.writes.length, writes);
    assert.equal(again.inSync, true);
  });

  it('writes_nothing_before_the_desired_set_and_adopts_what_is_there', async () => {
    const { kernel, r, vx } = setup();
    kernel.setByHand({ family: 4, index: vx, dst: '10.65.2.192', lladdr: '66:00:00:00:00:12' });
    const before = await r.apply();
    assert.deepEqual([before.set, before.deleted, before.inSync], [0, 0, false]);
    assert.equal(kernel.writes.length, 0);
    r.setDesired(desired());
    const res = await r.apply();
    assert.equal(res.set, 3); // the ARP entry already there is kept as it is
    assert.ok(!kernel.writes.some((w) => w.spec.dst === '10.65.2.192' && w.spec.family === 4));
  });

  it('removes_stale_permanent_entries_and_leaves_kernel_made_ones_and_other_devices_alone', async () => {
    const { kernel, r, vx } = setup();
    const eth0 = kernel.byName('eth0')!.index;
    kernel.setByHand({ family: 4, index: vx, dst: '10.65.9.192', lladdr: '66:00:00:00:00:99' });
    kernel.setByHand({
      family: 'bridge',
      index: vx,
      dst: '192.168.0.99',
      lladdr: '66:00:00:00:00:99',
      flags: NTF_SELF,
    });
    kernel.setByHand({
      family: 4,
      index: vx,
      dst: '10.65.8.1',
      lladdr: '66:00:00:00:00:88',
      state: NUD_REACHABLE,
    });
    kernel.setByHand({ family: 4, index: eth0, dst: '192.168.0.1', lladdr: '02:00:00:00:00:01' });
    r.setDesired(desired());
    const res = await r.apply();
    assert.equal(res.deleted, 2);
    assert.deepEqual(kernel.entriesOf('vxlan.calico'), [
      ...EXPECTED.slice(0, 2),
      'arp 10.65.8.1 66:00:00:00:00:88 state 2',
      ...EXPECTED.slice(2),
    ]);
    assert.deepEqual(kernel.entriesOf('eth0'), ['arp 192.168.0.1 02:00:00:00:00:01']);
    assert.ok(!kernel.writes.some((w) => w.spec.index === eth0));
  });

  it('refuses_entries_on_devices_it_does_not_own', () => {
    const { r } = setup();
    assert.throws(
      () =>
        r.setDesired([{ kind: 'arp', family: 4, dev: 'eth0', ip: '192.168.0.1', mac: '02:00:00:00:00:01' }]),
      TypeError,
    );
  });

  it('repairs_entries_deleted_or_changed_by_hand_from_the_events_alone', async () => {
    const { kernel, clock, r, vx } = setup();
    r.setDesired(desired());
    r.start();
    clock.advance(0);
    await settle();
    assert.deepEqual(kernel.entriesOf('vxlan.calico'), EXPECTED);
    const dumps = kernel.dumps;
    kernel.deleteByHand({ family: 'bridge', index: vx, lladdr: '66:00:00:00:00:12' });
    kernel.setByHand({ family: 4, index: vx, dst: '10.65.3.192', lladdr: '66:00:00:00:00:77' });
    await settle();
    clock.advance(10);
    await settle();
    assert.deepEqual(kernel.entriesOf('vxlan.calico'), EXPECTED);
    assert.equal(kernel.dumps, dumps, 'repaired from events, without a dump');
    // an entry the kernel turned into a non-permanent one is made permanent again
    kernel.setByHand({
      family: 4,
      index: vx,
      dst: '10.65.2.192',
      lladdr: '66:00:00:00:00:12',
      state: NUD_REACHABLE,
    });
    await settle();
    clock.advance(10);
    await settle();
    assert.deepEqual(kernel.entriesOf('vxlan.calico'), EXPECTED);
    await r.stop();
  });

  it('waits_for_a_missing_or_down_device_and_reprograms_a_recreated_one', async () => {
    const kernel = new FakeNeighbourKernel();
    const clock = new ManualClock();
    const r = new NeighbourReconciler({ kernel, clock, random: () => 0.5 });
    const passes: (NeighbourPassResult | Error)[] = [];
    r.onPass((p) => passes.push(p));
    r.setDesired(desired());
    r.start();
    clock.advance(0);
    await settle();
    assert.deepEqual((passes.at(-1) as NeighbourPassResult).waiting, [
      { dev: 'vxlan.calico', reason: 'missing' },
    ]);
    assert.equal(r.lastError, undefined);
    kernel.addLink('vxlan.calico', false);
    await settle();
    clock.advance(10);
    await settle();
    assert.deepEqual((passes.at(-1) as NeighbourPassResult).waiting, [
      { dev: 'vxlan.calico', reason: 'down' },
    ]);
    kernel.setLinkUp('vxlan.calico', true);
    await settle();
    clock.advance(10);
    await settle();
    assert.deepEqual(kernel.entriesOf('vxlan.calico'), EXPECTED);
    // down flushes the entries without an event per entry; up again: all back
    kernel.setLinkUp('vxlan.calico', false);
    kernel.setLinkUp('vxlan.calico', true);
    await settle();
    clock.advance(10);
    await settle();
    assert.deepEqual(kernel.entriesOf('vxlan.calico'), EXPECTED);
    // recreated with a new index
    kernel.removeLink('vxlan.calico');
    kernel.addLink('vxlan.calico');
    await settle();
    clock.advance(10);
    await settle();
    assert.deepEqual(kernel.entriesOf('vxlan.calico'), EXPECTED);
    await r.stop();
  });

  it('follows_vtep_changes_and_retries_refused_writes_with_backoff', async () => {
    const { kernel, clock, r } = setup();
    r.setDesired(desired());
    r.start();
    clock.advance(0);
    await settle();
    kernel.writeFaults.push({ errno: 'EBUSY', times: 1, match: (o) => o.op === 'set' });
    // node 13 moves to a new address and MAC; node 12 leaves
    r.setDesired(
      desired([{ nodeAddress: '192.168.7.14', tunnelAddress: '10.65.3.192', mac: '66:00:00:00:00:14' }]),
    );
    clock.advance(10);
    await settle();
    assert.equal(r.lastResult?.failed.length, 1);
    clock.advance(100);
    await settle();
    assert.deepEqual(kernel.entriesOf('vxlan.calico'), [
      'arp 10.65.3.192 66:00:00:00:00:14',
      'fdb 66:00:00:00:00:14 dst 192.168.7.14',
    ]);
    assert.equal(r.lastResult?.inSync, true);
    await r.stop();
  });

  it('programs_the_pods_entries_on_their_veths_and_keeps_them_through_a_recreated_veth', async () => {
    const { kernel, clock, r } = setup();
    const eth0 = kernel.byName('eth0')!.index;
    const caliA = kernel.addLink('caliaaaaaaaaaaa').index;
    const pods = (macB = '0a:58:0a:41:01:08'): readonly Neighbour[] =>
      computeDesired({
        hostInterfaces: [{ name: 'eth0', addresses: ['192.168.0.11/24'] }],
        pools: [],
        affineBlocks: [],
        paths: [],
        endpoints: [
          { interfaceName: 'caliaaaaaaaaaaa', addresses: ['10.65.1.7', 'fd10::7'], mac: '0a:58:0a:41:01:07' },
          { interfaceName: 'calibbbbbbbbbbb', addresses: ['10.65.1.8'], mac: macB },
        ],
      }).neighbours;
    // an old entry of ours on a pod veth, and the kernel's own entries: only the first goes
    kernel.setByHand({ family: 4, index: caliA, dst: '10.65.1.99', lladdr: '0a:58:0a:41:01:99' });
    kernel.setByHand({
      family: 6,
      index: caliA,
      dst: 'fe80::1',
      lladdr: '0a:58:0a:41:01:07',
      state: NUD_REACHABLE,
    });
    kernel.setByHand({ family: 4, index: eth0, dst: '192.168.0.1', lladdr: '02:00:00:00:00:01' });
    r.setDesired(pods());
    r.start();
    clock.advance(0);
    await settle();
    const first = r.lastResult!;
    assert.deepEqual([first.set, first.deleted], [2, 1]);
    assert.deepEqual(first.waiting, [{ dev: 'calibbbbbbbbbbb', reason: 'missing' }]);
    assert.deepEqual(kernel.entriesOf('caliaaaaaaaaaaa'), [
      'arp 10.65.1.7 0a:58:0a:41:01:07',
      'arp fd10::7 0a:58:0a:41:01:07',
      'arp fe80::1 0a:58:0a:41:01:07 state 2',
    ]);
    assert.deepEqual(kernel.entriesOf('eth0'), ['arp 192.168.0.1 02:00:00:00:00:01']);
    // one dump per family for every veth, and FDB only on the VXLAN device
    assert.equal(kernel.dumps, 3);
    // the second pod's veth appears
    kernel.addLink('calibbbbbbbbbbb');
    await settle();
    clock.advance(10);
    await settle();
    assert.deepEqual(kernel.entriesOf('calibbbbbbbbbbb'), ['arp 10.65.1.8 0a:58:0a:41:01:08']);
    assert.equal(r.lastResult?.inSync, true);
    // the pod is recreated: a new veth of the same name and a new MAC
    kernel.removeLink('calibbbbbbbbbbb');
    kernel.addLink('calibbbbbbbbbbb');
    r.setDesired(pods('0a:58:0a:41:01:88'));
    await settle();
    clock.advance(10);
    await settle();
    assert.deepEqual(kernel.entriesOf('calibbbbbbbbbbb'), ['arp 10.65.1.8 0a:58:0a:41:01:88']);
    await r.stop();
  });

  it('refuses_fdb_entries_on_a_pod_veth', () => {
    const { r } = setup();
    assert.throws(
      () =>
        r.setDesired([
          { kind: 'fdb', dev: 'cali0123456789a', mac: '66:00:00:00:00:12', dst: '192.168.0.12' },
        ]),
      TypeError,
    );
  });

  it('survives_an_interrupted_dump_by_dumping_again', async () => {
    const { kernel, clock, r } = setup();
    kernel.failDumps = 1;
    r.setDesired(desired());
    r.start();
    clock.advance(0);
    await settle();
    assert.match(r.lastError?.message ?? '', /EINTR/);
    clock.advance(100);
    await settle();
    assert.equal(r.lastError, undefined);
    assert.deepEqual(kernel.entriesOf('vxlan.calico'), EXPECTED);
    await r.stop();
  });
});
