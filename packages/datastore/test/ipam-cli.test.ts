// `ipam show`, `ipam check` and `ipam release` (runIpamCommand): calicoctl's tables and
// wording, `-o json`, exit codes, and each inconsistency `check` must find.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Backend } from '../src/store/backend.js';
import type { IPAMBlock, IPAMHandle } from '../src/resources/ipam.js';
import { affinityName, blockName } from '../src/resources/ipam.js';
import type { CheckReport, Utilization } from '../src/ipam/index.js';
import { runIpamCommand } from '../src/ipam/index.js';
import { node, pool, res, setup } from './ipam/fixtures.js';

async function run(backend: Backend, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runIpamCommand(argv, {
    backend,
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
  });
  return { code, out, err };
}

/** Two nodes with addresses at known places: n1 holds 3 in 10.65.1.0/26, n2 one in 10.65.2.0/26. */
async function cluster() {
  const s = await setup([pool('default-ipv4-ippool', { cidr: '10.65.0.0/16' }), node('n1'), node('n2')]);
  for (const ip of ['10.65.1.1', '10.65.1.2', '10.65.1.3'])
    await s.ipam.assignIp({
      ip,
      handleId: `k8s-pod-network.${ip}`,
      node: 'n1',
      attrs: { namespace: 'default', pod: `web-${ip.slice(-1)}` },
    });
  await s.ipam.assignIp({
    ip: '10.65.2.9',
    handleId: 'ipip-tunnel-addr-n2',
    node: 'n2',
    attrs: { type: 'ipipTunnelAddress' },
  });
  // n2 borrows one from n1's block.
  await s.ipam.assignIp({
    ip: '10.65.1.60',
    handleId: 'borrowed',
    node: 'n2',
    attrs: { namespace: 'kube-system', pod: 'dns' },
  });
  return s;
}

describe('ipam cli', () => {
  it('show_prints_pool_usage_like_calicoctl', async () => {
    const { backend } = await cluster();
    const r = await run(backend, 'show');
    assert.equal(r.code, 0);
    assert.equal(
      r.out,
      [
        '+----------+--------------+-----------+------------+--------------+',
        '| GROUPING |     CIDR     | IPS TOTAL | IPS IN USE |   IPS FREE   |',
        '+----------+--------------+-----------+------------+--------------+',
        '| IP Pool  | 10.65.0.0/16 |     65536 | 5 (0%)     | 65531 (100%) |',
        '+----------+--------------+-----------+------------+--------------+',
        '',
      ].join('\n'),
    );
  });

  it('show_blocks_adds_a_row_per_block', async () => {
    const { backend } = await cluster();
    const r = await run(backend, 'show', '--show-blocks');
    assert.match(r.out, /\| Block {4}\| 10\.65\.1\.0\/26 \| +64 \| 4 \(6%\) +\| 60 \(94%\) +\|/);
    assert.match(r.out, /\| Block {4}\| 10\.65\.2\.0\/26 \| +64 \| 1 \(2%\) +\| 63 \(98%\) +\|/);
  });

  it('show_nodes_and_borrowed_name_the_borrowing_node', async () => {
    const { backend } = await cluster();
    const nodes = await run(backend, 'show', '--show-nodes');
    assert.match(nodes.out, /\| n1 {3}\| +1 \| +3 \| +0 \|/);
    assert.match(nodes.out, /\| n2 {3}\| +1 \| +2 \| +1 \|/);
    const b = await run(backend, 'show', '--show-borrowed');
    assert.match(b.out, /\| 10\.65\.1\.60 \| n2 +\| 10\.65\.1\.0\/26 \| n1 +\| pod +\| kube-system\/dns \|/);
    assert.equal(b.out.split('\n').filter((l) => l.startsWith('| 10.')).length, 1);
  });

  it('show_ip_reports_owner_and_attributes', async () => {
    const { backend } = await cluster();
    const r = await run(backend, 'show', '--ip=10.65.2.9');
    assert.equal(
      r.out,
      'IP 10.65.2.9 is in use\nHandle: ipip-tunnel-addr-n2\nAttributes:\n  node: n2\n  type: ipipTunnelAddress\n',
    );
    assert.equal((await run(backend, 'show', '--ip', '10.65.9.9')).out, '10.65.9.9 is not assigned\n');
  });

  it('show_json_is_the_utilization', async () => {
    const { backend } = await cluster();
    const r = await run(backend, 'show', '-o', 'json');
    const u = JSON.parse(r.out) as Utilization;
    assert.equal(u.pools[0]!.inUse, 5);
    assert.deepEqual(
      u.pools[0]!.blocks.map((b) => [b.cidr, b.affinity, b.inUse]),
      [
        ['10.65.1.0/26', 'host:n1', 4],
        ['10.65.2.0/26', 'host:n2', 1],
      ],
    );
    assert.deepEqual(u.nodes, [
      { node: 'n1', blocks: 1, inUse: 3, borrowed: 0 },
      { node: 'n2', blocks: 1, inUse: 2, borrowed: 1 },
    ]);
  });

  it('check_of_a_consistent_store_with_workloads_finds_nothing', async () => {
    const { backend } = await cluster();
    for (const ip of ['10.65.1.1', '10.65.1.2', '10.65.1.3', '10.65.1.60'])
      await backend.create(
        res('WorkloadEndpoint', `w-${ip}`, { node: 'n1', ipNetworks: [`${ip}/32`] }, undefined, 'default'),
      );
    const n2 = await backend.get({ kind: 'Node', name: 'n2' });
    n2!.spec = { bgp: { ipv4IPIPTunnelAddr: '10.65.2.9' } };
    await backend.update(n2!);
    const r = await run(backend, 'check');
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^Checking IPAM for inconsistencies\.\.\.\n/);
    assert.match(r.out, /Found 1 node tunnel IPs\./);
    assert.match(r.out, /Found 4 workload IPs\./);
    assert.match(r.out, /Workloads and nodes are using 5 IPs\./);
    assert.match(r.out, /Check complete; found 0 problems\.\n$/);
  });

  it('check_finds_every_kind_of_inconsistency', async () => {
    const { backend } = await cluster();
    // A leaked handle, a handle that over-counts, an address whose handle is gone,
    // a dangling pending affinity, a block affine to a node without a BlockAffinity,
    // and a workload using an address IPAM never gave out.
    await backend.create(res('IPAMHandle', 'leaked', { handleID: 'leaked', block: { '10.65.7.0/26': 1 } }));
    const h = (await backend.get({ kind: 'IPAMHandle', name: 'borrowed' })) as IPAMHandle;
    h.spec.block['10.65.1.0/26'] = 2;
    await backend.update(h);
    await backend.delete({ kind: 'IPAMHandle', name: 'k8s-pod-network.10.65.1.1' });
    await backend.create(
      res('BlockAffinity', affinityName('n3', '10.65.3.0/26'), {
        state: 'pending',
        node: 'n3',
        type: 'host',
        cidr: '10.65.3.0/26',
        deleted: 'false',
      }),
    );
    await backend.delete({ kind: 'BlockAffinity', name: affinityName('n2', '10.65.2.0/26') });
    await backend.create(
      res('WorkloadEndpoint', 'ghost', { ipNetworks: ['10.65.50.5/32'] }, undefined, 'default'),
    );
    const r = await run(backend, 'check', '-o', 'json');
    assert.equal(r.code, 1);
    const c = JSON.parse(r.out) as CheckReport;
    assert.deepEqual(c.leakedHandles, ['leaked']);
    assert.deepEqual(c.handleCountMismatches, [
      { handle: 'borrowed', block: '10.65.1.0/26', counted: 2, actual: 1 },
    ]);
    assert.deepEqual(c.missingHandles, [{ handle: 'k8s-pod-network.10.65.1.1', ips: ['10.65.1.1'] }]);
    assert.deepEqual(
      c.badAffinities.map((a) => [a.node, a.cidr, a.reason]),
      [['n3', '10.65.3.0/26', 'the block does not exist']],
    );
    assert.deepEqual(c.blocksWithoutAffinity, [{ cidr: '10.65.2.0/26', affinity: 'host:n2' }]);
    assert.deepEqual(c.inUseNotAllocated, [{ ip: '10.65.50.5', owners: ['Workload(default/ghost)'] }]);
    assert.equal(c.allocatedNotInUse.length, 5);
    assert.equal(c.problems, 11);
    const text = await run(backend, 'check', '--show-problem-ips');
    assert.match(text.out, / {2}leaked doesn't have any active IPs\./);
    assert.match(text.out, / {2}borrowed counts 2 in 10\.65\.1\.0\/26, which holds 1 of its addresses\./);
    assert.match(
      text.out,
      / {2}BlockAffinity n3-10-65-3-0-26 \(pending\) for 10\.65\.3\.0\/26: the block does not exist\./,
    );
    assert.match(text.out, / {2}block 10\.65\.2\.0\/26 is host:n2 but has no BlockAffinity\./);
    assert.match(
      text.out,
      / {2}10\.65\.50\.5 in use by Workload\(default\/ghost\) and in active IPAM pool but has no IPAM allocation\./,
    );
    assert.match(text.out, /Check complete; found 11 problems\.\n$/);
  });

  it('check_finds_duplicate_affinities_and_overlapping_blocks', async () => {
    const { backend } = await cluster();
    await backend.create(
      res('BlockAffinity', affinityName('n2', '10.65.1.0/26'), {
        state: 'confirmed',
        node: 'n2',
        type: 'host',
        cidr: '10.65.1.0/26',
        deleted: 'false',
      }),
    );
    const b = (await backend.get({ kind: 'IPAMBlock', name: blockName('10.65.2.0/26') })) as IPAMBlock;
    const copy = structuredClone(b);
    copy.metadata = { name: blockName('10.65.2.0/27') };
    copy.spec.cidr = '10.65.2.0/27';
    copy.spec.allocations = copy.spec.allocations.slice(0, 32);
    copy.spec.unallocated = copy.spec.unallocated.filter((o) => o < 32);
    await backend.create(copy);
    const c = JSON.parse((await run(backend, 'check', '-o', 'json')).out) as CheckReport;
    assert.deepEqual(c.duplicateAffinities, [{ cidr: '10.65.1.0/26', nodes: ['n1', 'n2'] }]);
    assert.deepEqual(c.overlappingBlocks, [{ a: '10.65.2.0/26', b: '10.65.2.0/27' }]);
  });

  it('release_frees_an_address_once', async () => {
    const { backend } = await cluster();
    const r = await run(backend, 'release', '--ip=10.65.1.2');
    assert.deepEqual(r, { code: 0, out: 'Successfully released IP address 10.65.1.2\n', err: '' });
    const again = await run(backend, 'release', '--ip', '10.65.1.2');
    assert.deepEqual(again, { code: 1, out: '', err: 'IP address 10.65.1.2 is not assigned\n' });
    assert.equal(await backend.get({ kind: 'IPAMHandle', name: 'k8s-pod-network.10.65.1.2' }), undefined);
  });

  it('usage_errors_exit_2_with_the_usage', async () => {
    const { backend } = await setup([]);
    for (const argv of [
      [],
      ['bogus'],
      ['show', '--nope'],
      ['release'],
      ['release', '--ip=300.1.1.1'],
      ['show', '-o', 'yaml'],
      ['show', '--show-blocks', '--show-nodes'],
    ]) {
      const r = await run(backend, ...argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.match(r.err, /Usage:\n {2}ipam show/);
      assert.equal(r.out, '');
    }
  });

  it('show_configuration_prints_the_effective_config', async () => {
    const { backend } = await setup([
      res('IPAMConfig', 'default', { strictAffinity: true, autoAllocateBlocks: true, maxBlocksPerHost: 4 }),
    ]);
    const r = await run(backend, 'show', '--show-configuration', '-o', 'json');
    assert.deepEqual(JSON.parse(r.out), {
      strictAffinity: true,
      autoAllocateBlocks: true,
      maxBlocksPerHost: 4,
    });
    assert.match((await run(backend, 'show', '--show-configuration')).out, /\| MaxBlocksPerHost {3}\| +4 \|/);
  });
});
