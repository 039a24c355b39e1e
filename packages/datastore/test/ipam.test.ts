// IPAM rules, one by one, on the memory backend: affine blocks first, claims (and their
// write order), borrowing and strictAffinity, maxBlocksPerHost, pool eligibility (disabled,
// Manual, nodeSelector, namespaceSelector, allowedUses), IPv6 and dual stack, tunnel
// addresses, explicit assignment, release (idempotent, empty blocks, affinities) and the
// repair of what a crash leaves. Every test ends by checking the store's invariants.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Backend } from '../src/store/backend.js';
import { ConflictError } from '../src/store/errors.js';
import { MemoryBackend } from '../src/store/memory.js';
import type { BlockAffinity, IPAMBlock, IPAMHandle } from '../src/resources/ipam.js';
import { affinityName, blockName } from '../src/resources/ipam.js';
import { parseCidr, parseIp, cidrContainsIp } from '../src/schema/ip.js';
import {
  AddressInUseError,
  AddressNotInPoolError,
  AffinityMismatchError,
  type Ipam,
  MaxBlocksReachedError,
  NoEligiblePoolError,
  NodeNotFoundError,
  PoolExhaustedError,
  RetriesExhaustedError,
  tunnelHandle,
} from '../src/ipam/index.js';
import { ipamConfig, node, pool, res, setup } from './ipam/fixtures.js';
import { allocated, problems, snapshot } from './ipam/invariants.js';
import { HookBackend } from './ipam/wrappers.js';

async function healthy(b: Backend): Promise<void> {
  assert.deepEqual(problems(await snapshot(b)), []);
}

const inCidr = (ip: string, cidr: string): boolean => cidrContainsIp(parseCidr(cidr)!, parseIp(ip)!);

async function block(b: Backend, cidr: string): Promise<IPAMBlock | undefined> {
  return (await b.get({ kind: 'IPAMBlock', name: blockName(cidr) })) as IPAMBlock | undefined;
}

async function affinities(b: Backend): Promise<BlockAffinity[]> {
  return (await b.list('BlockAffinity')).items as BlockAffinity[];
}

const one = (ipam: Ipam, handleId: string, n = 'n1', num4 = 1) =>
  ipam.autoAssign({ handleId, num4, num6: 0, node: n });

describe('ipam auto-assign', () => {
  it('claims_a_block_for_the_node_then_keeps_using_it', async () => {
    const { backend, ipam } = await setup([pool('p', { cidr: '10.65.0.0/16' }), node('n1')]);
    const a = await one(ipam, 'h1');
    const b = await one(ipam, 'h2');
    assert.equal(a.ipv4.length, 1);
    assert.equal(a.ipv4[0]!.block, b.ipv4[0]!.block);
    assert.equal(a.ipv4[0]!.pool, '10.65.0.0/16');
    assert.match(a.ipv4[0]!.block, /\/26$/);
    assert.ok(inCidr(a.ipv4[0]!.ip, a.ipv4[0]!.block));
    assert.notEqual(a.ipv4[0]!.ip, b.ipv4[0]!.ip);
    const blk = await block(backend, a.ipv4[0]!.block);
    assert.equal(blk?.spec.affinity, 'host:n1');
    const affs = await affinities(backend);
    assert.deepEqual(
      affs.map((x) => [x.metadata.name, x.spec.state, x.spec.node]),
      [[affinityName('n1', a.ipv4[0]!.block), 'confirmed', 'n1']],
    );
    await healthy(backend);
  });

  it('writes_the_affinity_pending_then_the_block_then_the_affinity_confirmed', async () => {
    const mem = new MemoryBackend();
    const hb = new HookBackend(mem);
    const { ipam } = await setup([pool('p', { cidr: '10.65.0.0/16' }), node('n1')], { backend: hb });
    hb.calls.length = 0;
    await one(ipam, 'h1');
    const claim = hb.calls
      .filter((c) => c.kind === 'BlockAffinity' || c.kind === 'IPAMBlock')
      .map((c) => `${c.op} ${c.kind}${c.state === undefined ? '' : ' ' + c.state}`);
    assert.deepEqual(claim.slice(0, 3), [
      'create BlockAffinity pending',
      'create IPAMBlock',
      'update BlockAffinity confirmed',
    ]);
    // Then the handle before the block that takes the address.
    const rest = hb.calls
      .slice(hb.calls.findIndex((c) => c.state === 'confirmed') + 1)
      .map((c) => `${c.op} ${c.kind}`);
    assert.deepEqual(rest, ['create IPAMHandle', 'update IPAMBlock']);
    await healthy(mem);
  });

  it('claims_another_block_when_the_affine_one_is_full', async () => {
    const { backend, ipam } = await setup([pool('p', { cidr: '10.65.0.0/24', blockSize: 30 }), node('n1')]);
    const r = await one(ipam, 'h', 'n1', 6);
    const blocks = new Set(r.ipv4.map((a) => a.block));
    assert.equal(blocks.size, 2);
    assert.equal(new Set(r.ipv4.map((a) => a.ip)).size, 6);
    const h = (await backend.get({ kind: 'IPAMHandle', name: 'h' })) as IPAMHandle;
    assert.deepEqual(Object.values(h.spec.block).sort(), [2, 4]);
    await healthy(backend);
  });

  it('borrows_from_another_nodes_block_when_no_block_is_left_to_claim', async () => {
    const { backend, ipam } = await setup([
      pool('p', { cidr: '10.65.0.0/30', blockSize: 30 }),
      node('n1'),
      node('n2'),
    ]);
    const a = await one(ipam, 'a', 'n1');
    const b = await one(ipam, 'b', 'n2');
    assert.equal(b.ipv4[0]!.block, a.ipv4[0]!.block);
    assert.equal((await block(backend, a.ipv4[0]!.block))?.spec.affinity, 'host:n1');
    assert.deepEqual(
      (await affinities(backend)).map((x) => x.spec.node),
      ['n1'],
    );
    await healthy(backend);
  });

  it('strict_affinity_refuses_to_borrow_and_names_node_and_pool', async () => {
    const { backend, ipam } = await setup([
      pool('p', { cidr: '10.65.0.0/30', blockSize: 30 }),
      node('n1'),
      node('n2'),
      ipamConfig({ strictAffinity: true }),
    ]);
    await one(ipam, 'a', 'n1');
    await assert.rejects(one(ipam, 'b', 'n2'), (e: unknown) => {
      assert.ok(e instanceof PoolExhaustedError);
      assert.match(e.message, /node n2/);
      assert.match(e.message, /p \(10\.65\.0\.0\/30\)/);
      assert.match(e.message, /strictAffinity/);
      return true;
    });
    assert.equal(allocated(await snapshot(backend)).size, 1);
    assert.equal(await backend.get({ kind: 'IPAMHandle', name: 'b' }), undefined);
    await healthy(backend);
  });

  it('stops_at_max_blocks_per_host_and_keeps_nothing_of_the_request', async () => {
    const { backend, ipam } = await setup([
      pool('p', { cidr: '10.65.0.0/24', blockSize: 30 }),
      node('n1'),
      ipamConfig({ strictAffinity: true, maxBlocksPerHost: 1 }),
    ]);
    await one(ipam, 'first', 'n1', 3);
    await assert.rejects(one(ipam, 'h', 'n1', 2), (e: unknown) => {
      assert.ok(e instanceof MaxBlocksReachedError);
      assert.equal(e.node, 'n1');
      assert.equal(e.limit, 1);
      return true;
    });
    // The one address the request got before the limit was given back.
    assert.equal(allocated(await snapshot(backend)).size, 3);
    assert.equal(await backend.get({ kind: 'IPAMHandle', name: 'h' }), undefined);
    await healthy(backend);
  });

  it('has_no_block_limit_without_ipam_config', async () => {
    const { backend, ipam } = await setup([pool('p', { cidr: '10.65.0.0/24', blockSize: 30 }), node('n1')]);
    const r = await one(ipam, 'h', 'n1', 100);
    assert.equal(new Set(r.ipv4.map((a) => a.block)).size, 25);
    await healthy(backend);
  });

  it('borrows_without_claiming_when_auto_allocate_blocks_is_off', async () => {
    const { backend, ipam } = await setup([
      pool('p', { cidr: '10.65.0.0/24', blockSize: 30 }),
      node('n1'),
      node('n2'),
    ]);
    await one(ipam, 'a', 'n1');
    await backend.create(ipamConfig({ autoAllocateBlocks: false }));
    const r = await one(ipam, 'b', 'n2');
    assert.equal((await block(backend, r.ipv4[0]!.block))?.spec.affinity, 'host:n1');
    await assert.rejects(
      one(ipam, 'c', 'n2', 4),
      (e: unknown) => e instanceof PoolExhaustedError && /autoAllocateBlocks/.test(e.message),
    );
    await healthy(backend);
  });

  it('skips_disabled_pools', async () => {
    const { backend, ipam } = await setup([
      pool('a-off', { cidr: '10.1.0.0/16', disabled: true }),
      pool('b-on', { cidr: '10.2.0.0/16' }),
      node('n1'),
    ]);
    const r = await one(ipam, 'h');
    assert.equal(r.ipv4[0]!.pool, '10.2.0.0/16');
    const b = await backend.get({ kind: 'IPPool', name: 'b-on' });
    (b!.spec as { disabled: boolean }).disabled = true;
    await backend.update(b!);
    await assert.rejects(one(ipam, 'h2'), (e: unknown) => {
      assert.ok(e instanceof NoEligiblePoolError);
      assert.match(e.message, /node n1/);
      assert.match(e.message, /a-off \(10\.1\.0\.0\/16\): disabled/);
      return true;
    });
    await healthy(backend);
  });

  it('skips_manual_pools_unless_requested_by_cidr', async () => {
    const { ipam } = await setup([
      pool('m', { cidr: '10.1.0.0/16', assignmentMode: 'Manual' }),
      pool('z', { cidr: '10.2.0.0/16' }),
      node('n1'),
    ]);
    assert.equal((await one(ipam, 'h')).ipv4[0]!.pool, '10.2.0.0/16');
    const r = await ipam.autoAssign({ handleId: 'h2', num4: 1, num6: 0, node: 'n1', pools: ['10.1.0.0/16'] });
    assert.equal(r.ipv4[0]!.pool, '10.1.0.0/16');
    await assert.rejects(
      ipam.autoAssign({ handleId: 'h3', num4: 1, num6: 0, node: 'n1', pools: ['10.9.0.0/16'] }),
      /requested pool 10\.9\.0\.0\/16 does not exist/,
    );
  });

  it('follows_the_pool_node_selector', async () => {
    const { backend, ipam } = await setup([
      pool('rack-a', { cidr: '10.1.0.0/16', nodeSelector: "rack == 'a'" }),
      node('na', { rack: 'a' }),
      node('nb', { rack: 'b' }),
    ]);
    assert.equal((await one(ipam, 'h', 'na')).ipv4[0]!.pool, '10.1.0.0/16');
    await assert.rejects(
      one(ipam, 'h2', 'nb'),
      (e: unknown) => e instanceof NoEligiblePoolError && /nodeSelector does not match/.test(e.message),
    );
    await assert.rejects(one(ipam, 'h3', 'nobody'), NodeNotFoundError);
    await healthy(backend);
  });

  it('releases_an_empty_affine_block_whose_pool_no_longer_selects_the_node', async () => {
    const { backend, ipam } = await setup([
      pool('a', { cidr: '10.1.0.0/16', nodeSelector: "rack == 'a'" }),
      pool('b', { cidr: '10.2.0.0/16' }),
      node('n1', { rack: 'a' }),
    ]);
    const r = await one(ipam, 'h', 'n1');
    await ipam.releaseByHandle('h');
    assert.ok(await block(backend, r.ipv4[0]!.block), 'the empty affine block is kept');
    const n = await backend.get({ kind: 'Node', name: 'n1' });
    n!.metadata.labels = { rack: 'b' };
    await backend.update(n!);
    const r2 = await one(ipam, 'h2', 'n1');
    assert.equal(r2.ipv4[0]!.pool, '10.2.0.0/16');
    assert.equal(await block(backend, r.ipv4[0]!.block), undefined);
    await healthy(backend);
  });

  it('follows_the_pool_namespace_selector', async () => {
    const { ipam } = await setup([
      pool('prod', { cidr: '10.1.0.0/16', namespaceSelector: "env == 'prod'", allowedUses: ['Workload'] }),
      pool('rest', { cidr: '10.2.0.0/16', namespaceSelector: "env != 'prod'", allowedUses: ['Workload'] }),
      node('n1'),
    ]);
    const a = await ipam.autoAssign({
      handleId: 'a',
      num4: 1,
      num6: 0,
      node: 'n1',
      namespace: { labels: { env: 'prod' } },
    });
    const b = await ipam.autoAssign({
      handleId: 'b',
      num4: 1,
      num6: 0,
      node: 'n1',
      namespace: { labels: { env: 'dev' } },
    });
    assert.equal(a.ipv4[0]!.pool, '10.1.0.0/16');
    assert.equal(b.ipv4[0]!.pool, '10.2.0.0/16');
  });

  it('asks_for_namespace_labels_only_when_a_candidate_pool_has_a_namespace_selector', async () => {
    const asked: (readonly string[])[] = [];
    const namespaceLabels = (pools: readonly string[]) => {
      asked.push(pools);
      return Promise.resolve({ env: 'prod' });
    };
    const req = { num4: 1, num6: 0, node: 'n1', namespaceLabels };
    // No pool selects by namespace: no call (the CNI plugin's common path reads no API).
    const plain = await setup([pool('p', { cidr: '10.1.0.0/16' }), node('n1')]);
    await plain.ipam.autoAssign({ ...req, handleId: 'a' });
    assert.deepEqual(asked, []);
    // Pools that could not serve anyway (disabled, Manual, another node, another family,
    // Tunnel only) do not make it ask either.
    const { ipam } = await setup([
      pool('off', { cidr: '10.2.0.0/16', namespaceSelector: 'all()', disabled: true }),
      pool('manual', { cidr: '10.3.0.0/16', namespaceSelector: 'all()', assignmentMode: 'Manual' }),
      pool('rack-b', { cidr: '10.4.0.0/16', namespaceSelector: 'all()', nodeSelector: "rack == 'b'" }),
      pool('v6', { cidr: 'fd00::/64', namespaceSelector: 'all()' }),
      pool('tunnel', { cidr: '10.5.0.0/16', namespaceSelector: 'all()', allowedUses: ['Tunnel'] }),
      pool('z-any', { cidr: '10.9.0.0/16' }),
      node('n1'),
    ]);
    assert.equal((await ipam.autoAssign({ ...req, handleId: 'b' })).ipv4[0]!.pool, '10.9.0.0/16');
    assert.deepEqual(asked, []);
    // Named pools ignore selectors: no call either.
    const sel = await setup([
      pool('prod', { cidr: '10.1.0.0/16', namespaceSelector: "env == 'prod'" }),
      pool('rest', { cidr: '10.2.0.0/16', namespaceSelector: "env != 'prod'" }),
      node('n1'),
    ]);
    const named = await sel.ipam.autoAssign({ ...req, handleId: 'c', pools: ['10.2.0.0/16'] });
    assert.equal(named.ipv4[0]!.pool, '10.2.0.0/16');
    assert.deepEqual(asked, []);
    // A candidate selects by namespace: one call, naming them, and its labels decide.
    const got = await sel.ipam.autoAssign({ ...req, handleId: 'd' });
    assert.deepEqual(asked, [['prod (10.1.0.0/16)', 'rest (10.2.0.0/16)']]);
    assert.equal(got.ipv4[0]!.pool, '10.1.0.0/16');
    // Labels given up front win; the function is not called.
    const given = await sel.ipam.autoAssign({ ...req, handleId: 'e', namespace: { labels: { env: 'dev' } } });
    assert.equal(given.ipv4[0]!.pool, '10.2.0.0/16');
    assert.equal(asked.length, 1);
  });

  it('fails_the_request_with_the_namespace_label_readers_error_holding_nothing', async () => {
    const { backend, ipam } = await setup([
      pool('prod', { cidr: '10.1.0.0/16', namespaceSelector: "env == 'prod'" }),
      node('n1'),
    ]);
    await assert.rejects(
      ipam.autoAssign({
        handleId: 'a',
        num4: 1,
        num6: 0,
        node: 'n1',
        namespaceLabels: () => Promise.reject(new Error('no kubeconfig')),
      }),
      /no kubeconfig/,
    );
    assert.deepEqual((await backend.list('IPAMHandle')).items, []);
    await healthy(backend);
  });

  it('follows_allowed_uses', async () => {
    const { ipam } = await setup([
      pool('t', { cidr: '10.1.0.0/16', allowedUses: ['Tunnel'], ipipMode: 'Always' }),
      node('n1'),
    ]);
    await assert.rejects(
      one(ipam, 'h'),
      (e: unknown) =>
        e instanceof NoEligiblePoolError && /allowedUses Tunnel exclude Workload/.test(e.message),
    );
    const t = await ipam.assignTunnelAddress('n1', 'ipip');
    assert.equal(t.pool, '10.1.0.0/16');
  });

  it('assigns_ipv6_and_both_families_in_one_call', async () => {
    const { backend, ipam } = await setup([
      pool('v4', { cidr: '10.65.0.0/16' }),
      pool('v6', { cidr: 'fd00:65::/112' }),
      node('n1'),
    ]);
    const r = await ipam.autoAssign({ handleId: 'pod', num4: 1, num6: 2, node: 'n1' });
    assert.equal(r.ipv4.length, 1);
    assert.equal(r.ipv6.length, 2);
    for (const a of r.ipv6) {
      assert.match(a.block, /^fd00:65::[0-9a-f:]*\/122$/);
      assert.ok(inCidr(a.ip, a.block));
      assert.equal(a.pool, 'fd00:65::/112');
    }
    const h = (await backend.get({ kind: 'IPAMHandle', name: 'pod' })) as IPAMHandle;
    assert.equal(Object.keys(h.spec.block).length, 2);
    await ipam.releaseByHandle('pod');
    assert.equal(allocated(await snapshot(backend)).size, 0);
    await healthy(backend);
  });

  it('gives_back_ipv4_when_ipv6_fails', async () => {
    const { backend, ipam } = await setup([pool('v4', { cidr: '10.65.0.0/16' }), node('n1')]);
    await assert.rejects(
      ipam.autoAssign({ handleId: 'pod', num4: 1, num6: 1, node: 'n1' }),
      NoEligiblePoolError,
    );
    assert.equal(allocated(await snapshot(backend)).size, 0);
    assert.equal(await backend.get({ kind: 'IPAMHandle', name: 'pod' }), undefined);
    await healthy(backend);
  });

  it('stores_node_and_caller_attributes_with_the_allocation', async () => {
    const { ipam } = await setup([pool('p', { cidr: '10.65.0.0/16' }), node('n1')]);
    const r = await ipam.autoAssign({
      handleId: 'k8s-pod-network.abc',
      num4: 1,
      num6: 0,
      node: 'n1',
      attrs: { namespace: 'default', pod: 'web-0' },
    });
    const info = await ipam.addressInfo(r.ipv4[0]!.ip);
    assert.deepEqual(info, {
      handle: 'k8s-pod-network.abc',
      attrs: { node: 'n1', namespace: 'default', pod: 'web-0' },
      block: r.ipv4[0]!.block,
    });
  });
});

describe('ipam tunnel addresses', () => {
  it('assigns_once_per_node_and_kind_with_calicos_handles', async () => {
    const { backend, ipam } = await setup([
      pool('ipip', { cidr: '10.1.0.0/16', ipipMode: 'Always' }),
      pool('vx', { cidr: '10.2.0.0/16', vxlanMode: 'CrossSubnet' }),
      pool('vx6', { cidr: 'fd00:2::/112', vxlanMode: 'Always' }),
      node('n1'),
    ]);
    const ipip = await ipam.assignTunnelAddress('n1', 'ipip');
    assert.equal(ipip.pool, '10.1.0.0/16');
    assert.deepEqual(await ipam.assignTunnelAddress('n1', 'ipip'), ipip);
    const vx = await ipam.assignTunnelAddress('n1', 'vxlan');
    assert.equal(vx.pool, '10.2.0.0/16');
    const vx6 = await ipam.assignTunnelAddress('n1', 'vxlan-v6');
    assert.equal(vx6.pool, 'fd00:2::/112');
    assert.equal(tunnelHandle('n1', 'ipip'), 'ipip-tunnel-addr-n1');
    for (const h of ['ipip-tunnel-addr-n1', 'vxlan-tunnel-addr-n1', 'vxlan-v6-tunnel-addr-n1'])
      assert.ok(await backend.get({ kind: 'IPAMHandle', name: h }), h);
    assert.equal((await ipam.addressInfo(vx.ip))?.attrs['type'], 'vxlanTunnelAddress');
    assert.equal(allocated(await snapshot(backend)).size, 3);
    await healthy(backend);
  });

  it('uses_only_pools_with_the_encapsulation_that_allow_tunnel_use', async () => {
    const { ipam } = await setup([
      pool('plain', { cidr: '10.1.0.0/16' }),
      pool('wl', { cidr: '10.3.0.0/16', ipipMode: 'Always', allowedUses: ['Workload'] }),
      node('n1'),
    ]);
    await assert.rejects(ipam.assignTunnelAddress('n1', 'ipip'), (e: unknown) => {
      assert.ok(e instanceof NoEligiblePoolError);
      assert.match(e.message, /plain \(10\.1\.0\.0\/16\): ipipMode is Never/);
      assert.match(e.message, /wl \(10\.3\.0\.0\/16\): allowedUses exclude Tunnel/);
      return true;
    });
  });
});

describe('ipam explicit assignment', () => {
  it('assigns_a_given_address_claiming_its_block', async () => {
    const { backend, ipam } = await setup([pool('p', { cidr: '10.65.0.0/16' }), node('n1')]);
    const a = await ipam.assignIp({ ip: '10.65.3.7', handleId: 'h', node: 'n1' });
    assert.deepEqual(a, { ip: '10.65.3.7', block: '10.65.3.0/26', pool: '10.65.0.0/16' });
    assert.equal((await block(backend, '10.65.3.0/26'))?.spec.affinity, 'host:n1');
    await healthy(backend);
  });

  it('refuses_a_taken_address_naming_its_owner', async () => {
    const { backend, ipam } = await setup([pool('p', { cidr: '10.65.0.0/16' }), node('n1')]);
    await ipam.assignIp({ ip: '10.65.3.7', handleId: 'owner-1', node: 'n1', attrs: { pod: 'web-0' } });
    await assert.rejects(ipam.assignIp({ ip: '10.65.3.7', handleId: 'other', node: 'n1' }), (e: unknown) => {
      assert.ok(e instanceof AddressInUseError);
      assert.equal(e.owner, 'owner-1');
      assert.match(e.message, /10\.65\.3\.7 is already assigned to handle owner-1 \(node=n1, pod=web-0\)/);
      return true;
    });
    assert.equal(await backend.get({ kind: 'IPAMHandle', name: 'other' }), undefined);
    await assert.rejects(
      ipam.assignIp({ ip: '192.168.0.1', handleId: 'x', node: 'n1' }),
      AddressNotInPoolError,
    );
    await healthy(backend);
  });

  it('refuses_another_nodes_block_under_strict_affinity', async () => {
    const { ipam } = await setup([
      pool('p', { cidr: '10.65.0.0/16' }),
      node('n1'),
      node('n2'),
      ipamConfig({ strictAffinity: true }),
    ]);
    await ipam.assignIp({ ip: '10.65.3.7', handleId: 'h', node: 'n1' });
    await assert.rejects(
      ipam.assignIp({ ip: '10.65.3.8', handleId: 'h2', node: 'n2' }),
      AffinityMismatchError,
    );
  });
});

describe('ipam release', () => {
  it('release_by_handle_is_idempotent_and_deletes_the_handle', async () => {
    const { backend, ipam } = await setup([pool('p', { cidr: '10.65.0.0/16' }), node('n1')]);
    const r = await one(ipam, 'h', 'n1', 3);
    await ipam.releaseByHandle('h');
    await ipam.releaseByHandle('h');
    await ipam.releaseByHandle('never-existed');
    assert.equal(await backend.get({ kind: 'IPAMHandle', name: 'h' }), undefined);
    assert.equal(allocated(await snapshot(backend)).size, 0);
    // The node keeps its (now empty) affine block, as Calico.
    assert.equal((await block(backend, r.ipv4[0]!.block))?.spec.affinity, 'host:n1');
    await healthy(backend);
  });

  it('release_ips_returns_the_addresses_that_were_not_allocated', async () => {
    const { backend, ipam } = await setup([pool('p', { cidr: '10.65.0.0/16' }), node('n1')]);
    const r = await one(ipam, 'h', 'n1', 2);
    const [a, b] = r.ipv4.map((x) => x.ip);
    const left = await ipam.releaseIps([a!, '10.65.200.1', '172.16.0.1']);
    assert.deepEqual(left.sort(), ['10.65.200.1', '172.16.0.1']);
    const h = (await backend.get({ kind: 'IPAMHandle', name: 'h' })) as IPAMHandle;
    assert.deepEqual(Object.values(h.spec.block), [1]);
    assert.deepEqual(await ipam.releaseIps([a!]), [a]);
    await ipam.releaseIps([b!]);
    assert.equal(await backend.get({ kind: 'IPAMHandle', name: 'h' }), undefined);
    await healthy(backend);
  });

  it('deletes_a_block_without_affinity_when_its_last_address_goes', async () => {
    const { backend, ipam } = await setup([pool('p', { cidr: '10.65.0.0/16' }), node('n1')]);
    const r = await one(ipam, 'h', 'n1', 2);
    const cidr = r.ipv4[0]!.block;
    assert.deepEqual(await ipam.releaseAffinity('n1', cidr), [cidr]);
    const blk = await block(backend, cidr);
    assert.equal(blk?.spec.affinity, undefined, 'in use: kept, without affinity');
    assert.equal(allocated(await snapshot(backend)).size, 2);
    assert.deepEqual(await affinities(backend), []);
    await ipam.releaseIps([r.ipv4[0]!.ip]);
    assert.ok(await block(backend, cidr));
    await ipam.releaseIps([r.ipv4[1]!.ip]);
    assert.equal(await block(backend, cidr), undefined);
    await healthy(backend);
  });

  it('release_host_affinities_deletes_empty_blocks_and_unowns_used_ones', async () => {
    const { backend, ipam } = await setup([pool('p', { cidr: '10.65.0.0/24', blockSize: 30 }), node('n1')]);
    const r = await one(ipam, 'h', 'n1', 6); // two blocks: 4 + 2
    const blocks = [...new Set(r.ipv4.map((a) => a.block))];
    await ipam.releaseIps(r.ipv4.filter((a) => a.block === blocks[1]).map((a) => a.ip));
    const released = await ipam.releaseHostAffinities('n1');
    assert.deepEqual(released.sort(), [...blocks].sort());
    assert.equal(await block(backend, blocks[1]!), undefined);
    assert.equal((await block(backend, blocks[0]!))?.spec.affinity, undefined);
    assert.deepEqual(await affinities(backend), []);
    await healthy(backend);
  });

  it('release_empty_affine_blocks_keeps_the_requested_number', async () => {
    const { backend, ipam } = await setup([pool('p', { cidr: '10.65.0.0/24', blockSize: 30 }), node('n1')]);
    await one(ipam, 'h', 'n1', 12); // three blocks
    await ipam.releaseByHandle('h');
    assert.equal((await affinities(backend)).length, 3);
    const gone = await ipam.releaseEmptyAffineBlocks('n1', 1);
    assert.equal(gone.length, 2);
    assert.equal((await affinities(backend)).length, 1);
    assert.equal((await backend.list('IPAMBlock')).items.length, 1);
    await healthy(backend);
  });
});

describe('ipam repair of what a crash leaves', () => {
  it('adopts_its_own_pending_affinity_without_a_block', async () => {
    const { backend, ipam } = await setup([pool('p', { cidr: '10.65.0.0/16' }), node('n1')]);
    await backend.create(
      res('BlockAffinity', affinityName('n1', '10.65.9.0/26'), {
        state: 'pending',
        node: 'n1',
        type: 'host',
        cidr: '10.65.9.0/26',
        deleted: 'false',
      }),
    );
    const r = await one(ipam, 'h');
    assert.equal(r.ipv4[0]!.block, '10.65.9.0/26');
    await healthy(backend);
  });

  it('confirms_a_pending_affinity_whose_block_names_the_node', async () => {
    const { backend, ipam } = await setup([pool('p', { cidr: '10.65.0.0/16' }), node('n1')]);
    const r = await one(ipam, 'h');
    const aff = (await affinities(backend))[0]!;
    aff.spec.state = 'pending';
    await backend.update(aff);
    const r2 = await one(ipam, 'h2');
    assert.equal(r2.ipv4[0]!.block, r.ipv4[0]!.block);
    assert.equal((await affinities(backend))[0]!.spec.state, 'confirmed');
    await healthy(backend);
  });

  it('deletes_a_pending_affinity_for_a_block_another_node_took', async () => {
    const { backend, ipam } = await setup([pool('p', { cidr: '10.65.0.0/16' }), node('n1'), node('n2')]);
    const r = await one(ipam, 'h', 'n2');
    const cidr = r.ipv4[0]!.block;
    await backend.create(
      res('BlockAffinity', affinityName('n1', cidr), {
        state: 'pending',
        node: 'n1',
        type: 'host',
        cidr,
        deleted: 'false',
      }),
    );
    const r1 = await one(ipam, 'h1', 'n1');
    assert.notEqual(r1.ipv4[0]!.block, cidr);
    assert.equal(await backend.get({ kind: 'BlockAffinity', name: affinityName('n1', cidr) }), undefined);
    await healthy(backend);
  });

  it('release_by_handle_repairs_a_handle_that_over_counts', async () => {
    const { backend, ipam } = await setup([pool('p', { cidr: '10.65.0.0/16' }), node('n1')]);
    const r = await one(ipam, 'h');
    const h = (await backend.get({ kind: 'IPAMHandle', name: 'h' })) as IPAMHandle;
    h.spec.block[r.ipv4[0]!.block] = 5; // a crash between handle and block writes
    h.spec.block['10.65.77.0/26'] = 1; // and one for a block that was never written
    await backend.update(h);
    await ipam.releaseByHandle('h');
    assert.equal(await backend.get({ kind: 'IPAMHandle', name: 'h' }), undefined);
    await healthy(backend);
  });

  it('undoes_the_handle_when_the_block_write_fails', async () => {
    const mem = new MemoryBackend();
    const hb = new HookBackend(mem);
    const { ipam } = await setup([pool('p', { cidr: '10.65.0.0/16' }), node('n1')], {
      backend: hb,
      maxAttempts: 3,
    });
    await one(ipam, 'warm');
    hb.fault = (c) =>
      c.op === 'update' && c.kind === 'IPAMBlock'
        ? new ConflictError({ kind: 'IPAMBlock', name: c.name ?? '' }, '1', '2')
        : undefined;
    await assert.rejects(one(ipam, 'h'), (e: unknown) => {
      assert.ok(e instanceof RetriesExhaustedError);
      assert.match(e.message, /IPAMBlock 10-65-/);
      assert.match(e.message, /after 3 attempts/);
      assert.match(e.message, /was modified/);
      return true;
    });
    assert.equal(await mem.get({ kind: 'IPAMHandle', name: 'h' }), undefined);
    await healthy(mem);
  });
});
