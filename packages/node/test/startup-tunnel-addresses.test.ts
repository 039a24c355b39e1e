// The node's tunnel addresses from IPAM (Calico's allocateip at v3.31.7), on the memory
// datastore: assigned when a pool needs them, kept, moved, released, and Calico's older
// allocations (no handle, no attributes) repaired as Calico repairs them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AnyResource, IPAMBlock } from '@tabby/datastore';
import { cidrContainsIp, Datastore, Ipam, MemoryBackend, parseCidr, parseIp } from '@tabby/datastore';
import type { TunnelAddresses } from '../src/index.js';
import { enabledPoolCidrs, reconcileTunnelAddresses, tunnelAddressHandle } from '../src/index.js';
import { datastore, nodeOf, RecordingLogger, seed } from './support/startup.js';

const NODE = `apiVersion: projectcalico.org/v3
kind: Node
metadata: { name: node-a, labels: { rack: r1 } }
spec: { bgp: { ipv4Address: 10.0.0.5/24 } }
`;
const pool = (name: string, cidr: string, spec = ''): string =>
  `---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: { name: ${name} }\nspec: { cidr: ${cidr}, blockSize: ${cidr.includes(':') ? 122 : 26}${spec === '' ? '' : `, ${spec}`} }\n`;

async function setup(yaml: string): Promise<{ ds: Datastore; ipam: Ipam; backend: MemoryBackend }> {
  const d = datastore();
  await seed(d.ds, NODE + yaml);
  return d;
}

function reconcile(d: { ds: Datastore; ipam: Ipam }, log = new RecordingLogger()): Promise<TunnelAddresses> {
  return reconcileTunnelAddresses({ datastore: d.ds, ipam: d.ipam, nodeName: 'node-a', log });
}

async function setPool(ds: Datastore, name: string, change: Record<string, unknown>): Promise<void> {
  const p = (await ds.get('IPPool', name))!;
  await ds.update({ ...p, spec: { ...p.spec, ...change } });
}

async function setNode(
  ds: Datastore,
  change: (n: AnyResource & { spec: Record<string, unknown> }) => void,
): Promise<void> {
  const n = structuredClone(await nodeOf(ds)) as unknown as AnyResource & { spec: Record<string, unknown> };
  change(n);
  await ds.update(n);
}

/** Rewrites an allocation's attribute entry, as an older Calico wrote it. */
async function rewriteAllocation(
  backend: MemoryBackend,
  ip: string,
  attribute: Record<string, unknown>,
): Promise<void> {
  const a = parseIp(ip)!;
  for (const b of (await backend.list('IPAMBlock')).items as IPAMBlock[]) {
    const c = parseCidr(b.spec.cidr)!;
    if (!cidrContainsIp(c, a)) continue;
    const idx = b.spec.allocations[Number(a.value - c.value)]!;
    (b.spec.attributes as unknown[])[idx] = attribute;
    await backend.update(b);
    return;
  }
  assert.fail(`no block holds ${ip}`);
}

/** Who holds an address in IPAM (undefined: free). */
async function owner(ipam: Ipam, ip: string | undefined) {
  assert.ok(ip !== undefined, 'no address');
  const info = await ipam.addressInfo(ip);
  return info === undefined ? undefined : { handle: info.handle, attrs: info.attrs };
}

describe('tunnel addresses', () => {
  it('assigns_an_ipip_address_under_calicos_handle_and_attributes_and_keeps_it', async () => {
    const d = await setup(pool('p1', '10.65.0.0/16', 'ipipMode: Always'));
    const r = await reconcile(d);
    assert.ok(
      r.ipv4IPIPTunnelAddr !== undefined &&
        cidrContainsIp(parseCidr('10.65.0.0/16')!, parseIp(r.ipv4IPIPTunnelAddr)!),
    );
    assert.equal((await nodeOf(d.ds)).spec.bgp?.ipv4IPIPTunnelAddr, r.ipv4IPIPTunnelAddr);
    assert.deepEqual(await owner(d.ipam, r.ipv4IPIPTunnelAddr), {
      handle: 'ipip-tunnel-addr-node-a',
      attrs: { node: 'node-a', type: 'ipipTunnelAddress' },
    });
    assert.equal(r.ipv4VXLANTunnelAddr, undefined);
    const rv = (await nodeOf(d.ds)).metadata.resourceVersion;
    const again = await reconcile(d);
    assert.equal(again.ipv4IPIPTunnelAddr, r.ipv4IPIPTunnelAddr);
    assert.equal((await nodeOf(d.ds)).metadata.resourceVersion, rv, 'nothing to write');
  });

  it('assigns_vxlan_addresses_of_both_families_and_releases_them_when_no_pool_needs_them', async () => {
    const d = await setup(
      pool('p4', '10.65.0.0/16', 'vxlanMode: CrossSubnet') + pool('p6', 'fd10::/64', 'vxlanMode: Always'),
    );
    const r = await reconcile(d);
    assert.ok(r.ipv4VXLANTunnelAddr?.startsWith('10.65.'));
    assert.ok(r.ipv6VXLANTunnelAddr?.startsWith('fd10::'));
    assert.equal((await owner(d.ipam, r.ipv6VXLANTunnelAddr))?.handle, 'vxlan-v6-tunnel-addr-node-a');
    await setPool(d.ds, 'p4', { vxlanMode: 'Never' });
    await setPool(d.ds, 'p6', { disabled: true });
    const off = await reconcile(d);
    assert.equal(off.ipv4VXLANTunnelAddr, undefined);
    assert.equal(off.ipv6VXLANTunnelAddr, undefined);
    const n = await nodeOf(d.ds);
    assert.equal(n.spec.ipv4VXLANTunnelAddr, undefined);
    assert.equal(n.spec.ipv6VXLANTunnelAddr, undefined);
    assert.equal(await owner(d.ipam, r.ipv4VXLANTunnelAddr), undefined);
    assert.equal(await owner(d.ipam, r.ipv6VXLANTunnelAddr), undefined);
  });

  it('uses_only_pools_that_select_the_node_allow_tunnels_and_are_enabled', async () => {
    const d = await setup(
      pool('a-other-rack', '10.66.0.0/16', "ipipMode: Always, nodeSelector: rack == 'r2'") +
        pool('b-workload-only', '10.67.0.0/16', 'ipipMode: Always, allowedUses: [Workload]') +
        pool('c-disabled', '10.68.0.0/16', 'ipipMode: Always, disabled: true') +
        pool('d-vxlan', '10.69.0.0/16', 'vxlanMode: Always') +
        pool('e-ours', '10.70.0.0/16', "ipipMode: CrossSubnet, nodeSelector: rack == 'r1'"),
    );
    const node = await nodeOf(d.ds);
    const pools = (await d.ds.list('IPPool')).items;
    assert.deepEqual(enabledPoolCidrs(node, pools, 'ipipTunnelAddress'), ['10.70.0.0/16']);
    assert.deepEqual(enabledPoolCidrs(node, pools, 'vxlanTunnelAddress'), ['10.69.0.0/16']);
    assert.deepEqual(enabledPoolCidrs(node, pools, 'vxlanV6TunnelAddress'), []);
    assert.deepEqual(enabledPoolCidrs(node, pools, 'wireguardTunnelAddress'), []);
    const r = await reconcile(d);
    assert.ok(r.ipv4IPIPTunnelAddr?.startsWith('10.70.'));
  });

  it('moves_an_address_from_a_pool_that_no_longer_has_ipip_to_one_that_has', async () => {
    const d = await setup(pool('p1', '10.65.0.0/16', 'ipipMode: Always') + pool('p2', '10.66.0.0/16'));
    const first = (await reconcile(d)).ipv4IPIPTunnelAddr!;
    await setPool(d.ds, 'p1', { ipipMode: 'Never' });
    await setPool(d.ds, 'p2', { ipipMode: 'Always' });
    const log = new RecordingLogger();
    const second = (await reconcile(d, log)).ipv4IPIPTunnelAddr!;
    assert.ok(second.startsWith('10.66.'));
    assert.equal(await d.ipam.addressInfo(first), undefined);
    assert.deepEqual(
      (await d.ipam.ipsByHandle(tunnelAddressHandle('node-a', 'ipipTunnelAddress'))).map((a) => a.ip),
      [second],
    );
    assert.ok(
      log.at('info').includes('current tunnel address is not in a valid pool, release it and reassign'),
    );
  });

  it('reassigns_an_address_from_before_handles_with_its_handle_and_attributes', async () => {
    const d = await setup(pool('p1', '10.65.0.0/16', 'ipipMode: Always'));
    const ip = (await reconcile(d)).ipv4IPIPTunnelAddr!;
    // as an old Calico left it: no handle, no attributes, no IPAMHandle
    await rewriteAllocation(d.backend, ip, {});
    await d.backend.delete({ kind: 'IPAMHandle', name: 'ipip-tunnel-addr-node-a' });
    assert.deepEqual(await owner(d.ipam, ip), { handle: undefined, attrs: {} });
    const r = await reconcile(d);
    assert.equal(r.ipv4IPIPTunnelAddr, ip, 'the same address, now with metadata');
    assert.equal((await d.ipam.addressInfo(ip))?.handle, 'ipip-tunnel-addr-node-a');
  });

  it('leaves_a_workloads_address_alone_and_takes_a_new_one', async () => {
    const d = await setup(pool('p1', '10.65.0.0/16', 'ipipMode: Always'));
    const pod = await d.ipam.autoAssign({
      handleId: 'k8s-pod-network.abc',
      num4: 1,
      num6: 0,
      node: 'node-a',
    });
    const podIp = pod.ipv4[0]!.ip;
    await setNode(d.ds, (n) => ((n.spec['bgp'] as Record<string, unknown>)['ipv4IPIPTunnelAddr'] = podIp));
    const r = await reconcile(d);
    assert.notEqual(r.ipv4IPIPTunnelAddr, podIp);
    assert.equal((await d.ipam.addressInfo(podIp))?.handle, 'k8s-pod-network.abc');
    // the same for an old workload allocation with a handle but no attributes
    await rewriteAllocation(d.backend, podIp, { handle_id: 'k8s-pod-network.abc' });
    await setNode(d.ds, (n) => ((n.spec['bgp'] as Record<string, unknown>)['ipv4IPIPTunnelAddr'] = podIp));
    const again = await reconcile(d);
    assert.notEqual(again.ipv4IPIPTunnelAddr, podIp);
    assert.equal((await d.ipam.addressInfo(podIp))?.handle, 'k8s-pod-network.abc');
  });

  it('replaces_an_address_the_node_names_but_ipam_does_not_hold', async () => {
    const d = await setup(pool('p1', '10.65.0.0/16', 'ipipMode: Always'));
    await setNode(
      d.ds,
      (n) => ((n.spec['bgp'] as Record<string, unknown>)['ipv4IPIPTunnelAddr'] = '10.65.200.200'),
    );
    const r = await reconcile(d);
    assert.notEqual(r.ipv4IPIPTunnelAddr, '10.65.200.200');
    assert.equal((await d.ipam.addressInfo(r.ipv4IPIPTunnelAddr!))?.attrs['type'], 'ipipTunnelAddress');
  });

  it('releases_by_address_when_the_handle_object_was_lost', async () => {
    const d = await setup(pool('p1', '10.65.0.0/16', 'ipipMode: Always'));
    const ip = (await reconcile(d)).ipv4IPIPTunnelAddr!;
    await d.backend.delete({ kind: 'IPAMHandle', name: 'ipip-tunnel-addr-node-a' });
    await setPool(d.ds, 'p1', { ipipMode: 'Never' });
    const log = new RecordingLogger();
    await reconcile(d, log);
    assert.equal(await d.ipam.addressInfo(ip), undefined);
    assert.ok(log.at('info').includes('released tunnel address whose handle was missing'));
  });

  it('clears_wireguard_addresses_as_on_a_calico_node_without_a_wireguard_key', async () => {
    const d = await setup(pool('p1', '10.65.0.0/16'));
    const wg = await d.ipam.autoAssign({
      handleId: 'wireguard-tunnel-addr-node-a',
      num4: 1,
      num6: 0,
      node: 'node-a',
      attrs: { type: 'wireguardTunnelAddress' },
      use: 'Tunnel',
    });
    await setNode(d.ds, (n) => (n.spec['wireguard'] = { interfaceIPv4Address: wg.ipv4[0]!.ip }));
    await reconcile(d);
    assert.equal((await nodeOf(d.ds)).spec.wireguard, undefined);
    assert.equal(await d.ipam.addressInfo(wg.ipv4[0]!.ip), undefined);
  });

  it('gives_back_what_a_round_assigned_when_the_node_changed_and_runs_again', async () => {
    class Racing extends MemoryBackend {
      races = 1;
      override async update(obj: AnyResource): Promise<AnyResource> {
        if (obj.kind === 'Node' && this.races > 0) {
          this.races--;
          const cur = (await this.get({ kind: 'Node', name: 'node-a' }))!;
          cur.metadata.labels = { ...cur.metadata.labels, touched: 'yes' };
          await super.update(cur);
        }
        return super.update(obj);
      }
    }
    const backend = new Racing();
    const ds = new Datastore(backend);
    const ipam = new Ipam({ backend, clock: { now: () => 0, sleep: () => Promise.resolve() } });
    await seed(ds, NODE + pool('p1', '10.65.0.0/16', 'ipipMode: Always'));
    const log = new RecordingLogger();
    const r = await reconcileTunnelAddresses({ datastore: ds, ipam, nodeName: 'node-a', log });
    const n = await nodeOf(ds);
    assert.equal(n.metadata.labels?.['touched'], 'yes');
    assert.equal(n.spec.bgp?.ipv4IPIPTunnelAddr, r.ipv4IPIPTunnelAddr);
    // exactly one address under the handle: the first round's went back
    assert.deepEqual(
      (await ipam.ipsByHandle('ipip-tunnel-addr-node-a')).map((a) => a.ip),
      [r.ipv4IPIPTunnelAddr],
    );
    assert.equal((await ipam.check()).problems, 0);
  });

  it('needs_the_node_to_exist', async () => {
    const d = datastore();
    await assert.rejects(reconcile(d), /Node node-a not found/);
  });
});
