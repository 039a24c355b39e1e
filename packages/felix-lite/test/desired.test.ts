// The desired-state function, table-driven over every encapsulation mode and family. This
// node: eth0 192.168.0.11/24 and fd00::11/64, eth1 172.16.5.11/24; its own block
// 10.65.1.0/26. Expected routes are written as `ip route` prints them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DataplaneInputs, EncapMode, PoolInput, ProblemKind } from '../src/index.js';
import { BestPathTable, computeDesired, describeNeighbour, describeRoute, parseCidr } from '../src/index.js';

const hostInterfaces = [
  { name: 'eth0', addresses: ['192.168.0.11/24', 'fd00::11/64'] },
  { name: 'eth1', addresses: ['172.16.5.11/24'] },
];
const vteps = [
  { nodeAddress: '192.168.0.12', tunnelAddress: '10.65.2.192', mac: '66:00:00:00:00:12' },
  { nodeAddress: '192.168.7.13', tunnelAddress: '10.65.3.192', mac: '66:00:00:00:00:13' },
  { nodeAddress: 'fd00::12', tunnelAddress: 'fd10::2:c0', mac: '66:00:00:00:06:12' },
];

const pool = (cidr: string, ipipMode: EncapMode = 'Never', vxlanMode: EncapMode = 'Never'): PoolInput => ({
  cidr,
  ipipMode,
  vxlanMode,
});

interface Case {
  readonly name: string;
  readonly inputs: Partial<DataplaneInputs>;
  readonly routes: readonly string[];
  readonly neighbours?: readonly string[];
  readonly problems?: readonly ProblemKind[];
}

const v4pool = (ipip: EncapMode, vxlan: EncapMode = 'Never'): PoolInput[] => [
  pool('10.65.0.0/16', ipip, vxlan),
];
const remote = (nextHops: string[], prefix = '10.65.2.0/26') => [{ prefix, nextHops }];

const cases: Case[] = [
  {
    name: 'local_ipv4_endpoint_gets_a_link_scoped_device_route',
    inputs: { endpoints: [{ interfaceName: 'cali1a2b3c4d5e6', addresses: ['10.65.1.7'] }] },
    routes: ['10.65.1.7/32 dev cali1a2b3c4d5e6 scope link'],
  },
  {
    name: 'local_ipv6_endpoint_gets_a_device_route_with_the_kernel_default_metric',
    inputs: { endpoints: [{ interfaceName: 'cali1a2b3c4d5e6', addresses: ['fd10:0:0:0::7/128'] }] },
    routes: ['fd10::7/128 dev cali1a2b3c4d5e6 metric 1024'],
  },
  {
    name: 'own_blocks_are_blackholed_in_both_families',
    inputs: { affineBlocks: ['10.65.1.0/26', 'fd10::100/122'] },
    routes: ['blackhole 10.65.1.0/26', 'blackhole fd10::100/122 metric 1024'],
  },
  {
    name: 'never_on_the_same_subnet_routes_directly_via_the_host_interface',
    inputs: { pools: v4pool('Never'), paths: remote(['192.168.0.12']) },
    routes: ['10.65.2.0/26 via 192.168.0.12 dev eth0'],
  },
  {
    name: 'never_picks_the_interface_whose_subnet_holds_the_next_hop',
    inputs: { pools: v4pool('Never'), paths: remote(['172.16.5.40']) },
    routes: ['10.65.2.0/26 via 172.16.5.40 dev eth1'],
  },
  {
    name: 'never_off_subnet_leaves_the_prefix_to_the_host_routes_and_says_so',
    inputs: { pools: v4pool('Never'), paths: remote(['192.168.7.13']) },
    routes: [],
    problems: ['no-route-to-next-hop'],
  },
  {
    name: 'ipip_always_on_the_same_subnet_uses_tunl0_onlink',
    inputs: { pools: v4pool('Always'), paths: remote(['192.168.0.12']) },
    routes: ['10.65.2.0/26 via 192.168.0.12 dev tunl0 onlink'],
  },
  {
    name: 'ipip_always_off_subnet_uses_tunl0_onlink',
    inputs: { pools: v4pool('Always'), paths: remote(['192.168.7.13']) },
    routes: ['10.65.2.0/26 via 192.168.7.13 dev tunl0 onlink'],
  },
  {
    name: 'ipip_cross_subnet_on_the_same_subnet_routes_directly',
    inputs: { pools: v4pool('CrossSubnet'), paths: remote(['192.168.0.12']) },
    routes: ['10.65.2.0/26 via 192.168.0.12 dev eth0'],
  },
  {
    name: 'ipip_cross_subnet_off_subnet_uses_tunl0_onlink',
    inputs: { pools: v4pool('CrossSubnet'), paths: remote(['192.168.7.13']) },
    routes: ['10.65.2.0/26 via 192.168.7.13 dev tunl0 onlink'],
  },
  {
    name: 'vxlan_always_routes_via_the_remote_vtep_with_its_arp_and_fdb_entries',
    inputs: { pools: v4pool('Never', 'Always'), paths: remote(['192.168.0.12']), vteps },
    routes: ['10.65.2.0/26 via 10.65.2.192 dev vxlan.calico onlink'],
    neighbours: [
      '10.65.2.192 lladdr 66:00:00:00:00:12 dev vxlan.calico PERMANENT',
      '66:00:00:00:00:12 dev vxlan.calico dst 192.168.0.12 self permanent',
    ],
  },
  {
    name: 'vxlan_cross_subnet_on_the_same_subnet_routes_directly_without_neighbours',
    inputs: { pools: v4pool('Never', 'CrossSubnet'), paths: remote(['192.168.0.12']), vteps },
    routes: ['10.65.2.0/26 via 192.168.0.12 dev eth0'],
    neighbours: [],
  },
  {
    name: 'vxlan_cross_subnet_off_subnet_uses_the_vtep',
    inputs: { pools: v4pool('Never', 'CrossSubnet'), paths: remote(['192.168.7.13']), vteps },
    routes: ['10.65.2.0/26 via 10.65.3.192 dev vxlan.calico onlink'],
    neighbours: [
      '10.65.3.192 lladdr 66:00:00:00:00:13 dev vxlan.calico PERMANENT',
      '66:00:00:00:00:13 dev vxlan.calico dst 192.168.7.13 self permanent',
    ],
  },
  {
    name: 'vxlan_without_a_known_vtep_gives_no_route_and_a_problem',
    inputs: { pools: v4pool('Never', 'Always'), paths: remote(['192.168.0.99']), vteps },
    routes: [],
    problems: ['missing-vtep'],
  },
  {
    name: 'ipv6_never_routes_directly_with_metric_1024',
    inputs: { pools: [pool('fd10::/48')], paths: remote(['fd00::12'], 'fd10::2:0/122') },
    routes: ['fd10::2:0/122 via fd00::12 dev eth0 metric 1024'],
  },
  {
    name: 'ipv6_vxlan_uses_vxlan_v6_calico_and_an_ndp_entry',
    inputs: {
      pools: [pool('fd10::/48', 'Never', 'Always')],
      paths: remote(['fd00::12'], 'fd10::2:0/122'),
      vteps,
    },
    routes: ['fd10::2:0/122 via fd10::2:c0 dev vxlan-v6.calico onlink metric 1024'],
    neighbours: [
      'fd10::2:c0 lladdr 66:00:00:00:06:12 dev vxlan-v6.calico PERMANENT',
      '66:00:00:00:06:12 dev vxlan-v6.calico dst fd00::12 self permanent',
    ],
  },
  {
    name: 'ipip_on_an_ipv6_pool_is_ignored_with_a_problem',
    inputs: { pools: [pool('fd10::/48', 'Always')], paths: remote(['fd00::12'], 'fd10::2:0/122') },
    routes: ['fd10::2:0/122 via fd00::12 dev eth0 metric 1024'],
    problems: ['ipip-on-ipv6'],
  },
  {
    name: 'ecmp_under_ipip_keeps_tunl0_on_every_next_hop',
    inputs: { pools: v4pool('Always'), paths: remote(['192.168.7.13', '192.168.0.12']) },
    routes: [
      '10.65.2.0/26 nexthop via 192.168.0.12 dev tunl0 onlink nexthop via 192.168.7.13 dev tunl0 onlink',
    ],
  },
  {
    name: 'ecmp_under_cross_subnet_mixes_direct_and_tunnelled_next_hops',
    inputs: { pools: v4pool('CrossSubnet'), paths: remote(['192.168.7.13', '192.168.0.12']) },
    routes: ['10.65.2.0/26 nexthop via 192.168.0.12 dev eth0 nexthop via 192.168.7.13 dev tunl0 onlink'],
  },
  {
    name: 'ecmp_under_vxlan_goes_via_each_vtep',
    inputs: { pools: v4pool('Never', 'Always'), paths: remote(['192.168.0.12', '192.168.7.13']), vteps },
    routes: [
      '10.65.2.0/26 nexthop via 10.65.2.192 dev vxlan.calico onlink nexthop via 10.65.3.192 dev vxlan.calico onlink',
    ],
  },
  {
    name: 'ecmp_with_one_unusable_next_hop_keeps_the_other',
    inputs: { pools: v4pool('Never'), paths: remote(['192.168.0.12', '192.168.7.13']) },
    routes: ['10.65.2.0/26 via 192.168.0.12 dev eth0'],
    problems: ['no-route-to-next-hop'],
  },
  {
    name: 'a_pod_borrowing_from_another_nodes_block_gets_its_host_route_and_no_blackhole',
    inputs: {
      pools: v4pool('Never'),
      affineBlocks: ['10.65.1.0/26'],
      endpoints: [{ interfaceName: 'cali0000000000b', addresses: ['10.65.2.9/32'] }],
      paths: remote(['192.168.0.12']),
    },
    routes: [
      'blackhole 10.65.1.0/26',
      '10.65.2.0/26 via 192.168.0.12 dev eth0',
      '10.65.2.9/32 dev cali0000000000b scope link',
    ],
  },
  {
    name: 'a_remote_pod_borrowing_from_our_block_is_routed_beside_our_blackhole',
    inputs: {
      pools: v4pool('Always'),
      affineBlocks: ['10.65.1.0/26'],
      paths: remote(['192.168.0.12'], '10.65.1.9/32'),
    },
    routes: ['blackhole 10.65.1.0/26', '10.65.1.9/32 via 192.168.0.12 dev tunl0 onlink'],
  },
  {
    name: 'a_path_for_our_own_block_is_ignored',
    inputs: {
      pools: v4pool('Never'),
      affineBlocks: ['10.65.1.0/26'],
      paths: remote(['192.168.0.12'], '10.65.1.0/26'),
    },
    routes: ['blackhole 10.65.1.0/26'],
    problems: ['path-for-own-block'],
  },
  {
    name: 'a_next_hop_that_is_this_node_is_dropped',
    inputs: { pools: v4pool('Never'), paths: remote(['192.168.0.11']) },
    routes: [],
    problems: ['next-hop-is-self'],
  },
  {
    name: 'a_local_endpoint_wins_over_a_learned_path_for_the_same_address',
    inputs: {
      pools: v4pool('Never'),
      endpoints: [{ interfaceName: 'cali0000000000c', addresses: ['10.65.2.9'] }],
      paths: remote(['192.168.0.12'], '10.65.2.9/32'),
    },
    routes: ['10.65.2.9/32 dev cali0000000000c scope link'],
    problems: ['duplicate-prefix'],
  },
  {
    name: 'a_prefix_outside_every_pool_is_routed_directly',
    inputs: { pools: v4pool('Always'), paths: remote(['192.168.0.12'], '203.0.113.0/24') },
    routes: ['203.0.113.0/24 via 192.168.0.12 dev eth0'],
  },
  {
    name: 'the_most_specific_pool_decides_the_mode',
    inputs: {
      pools: [pool('10.0.0.0/8', 'Always'), pool('10.65.0.0/16', 'Never')],
      paths: remote(['192.168.0.12']),
    },
    routes: ['10.65.2.0/26 via 192.168.0.12 dev eth0'],
  },
  {
    name: 'a_pool_asking_for_both_ipip_and_vxlan_uses_vxlan_and_says_so',
    inputs: { pools: v4pool('Always', 'Always'), paths: remote(['192.168.0.12']), vteps },
    routes: ['10.65.2.0/26 via 10.65.2.192 dev vxlan.calico onlink'],
    problems: ['conflicting-encapsulation'],
  },
  {
    name: 'a_local_endpoint_with_a_known_mac_gets_a_permanent_neighbour_entry_per_address',
    inputs: {
      endpoints: [
        { interfaceName: 'cali1a2b3c4d5e6', addresses: ['10.65.1.7', 'fd10::7'], mac: '0A:58:0A:41:01:07' },
        { interfaceName: 'cali0000000000e', addresses: ['10.65.1.8'] },
      ],
    },
    routes: [
      '10.65.1.7/32 dev cali1a2b3c4d5e6 scope link',
      'fd10::7/128 dev cali1a2b3c4d5e6 metric 1024',
      '10.65.1.8/32 dev cali0000000000e scope link',
    ],
    neighbours: [
      '10.65.1.7 lladdr 0a:58:0a:41:01:07 dev cali1a2b3c4d5e6 PERMANENT',
      'fd10::7 lladdr 0a:58:0a:41:01:07 dev cali1a2b3c4d5e6 PERMANENT',
    ],
  },
  {
    name: 'an_endpoint_mac_that_is_not_unicast_gives_no_entry_and_a_duplicate_address_none_on_the_loser',
    inputs: {
      endpoints: [
        { interfaceName: 'cali0000000000f', addresses: ['10.65.1.7'], mac: '01:00:5e:00:00:01' },
        { interfaceName: 'cali0000000000g', addresses: ['10.65.1.8'], mac: 'zz' },
        { interfaceName: 'cali0000000000h', addresses: ['10.65.1.9'], mac: '02:00:00:00:00:09' },
        { interfaceName: 'cali0000000000i', addresses: ['10.65.1.9'], mac: '02:00:00:00:00:99' },
      ],
    },
    routes: [
      '10.65.1.7/32 dev cali0000000000f scope link',
      '10.65.1.8/32 dev cali0000000000g scope link',
      '10.65.1.9/32 dev cali0000000000h scope link',
    ],
    neighbours: ['10.65.1.9 lladdr 02:00:00:00:00:09 dev cali0000000000h PERMANENT'],
    problems: ['invalid-input', 'invalid-input', 'duplicate-prefix'],
  },
  {
    name: 'malformed_inputs_are_skipped_and_reported_without_throwing',
    inputs: {
      pools: [pool('10.65.0.0/16'), pool('not-a-cidr')],
      endpoints: [
        { interfaceName: 'cali-name-far-too-long', addresses: ['10.65.1.8'] },
        { interfaceName: 'cali0000000000d', addresses: ['10.65.1.300', '10.65.1.9/24', '10.65.1.10'] },
      ],
      paths: [
        { prefix: '10.65.2.0/26', nextHops: ['fd00::12', '192.168.0.12'] },
        { prefix: '10.65.9.0/99', nextHops: ['192.168.0.12'] },
      ],
    },
    routes: ['10.65.1.10/32 dev cali0000000000d scope link', '10.65.2.0/26 via 192.168.0.12 dev eth0'],
    problems: [
      'invalid-input',
      'invalid-input',
      'invalid-input',
      'invalid-input',
      'invalid-input',
      'invalid-input',
    ],
  },
];

const base: DataplaneInputs = { paths: [], endpoints: [], affineBlocks: [], pools: [], hostInterfaces };

describe('computeDesired', () => {
  for (const c of cases)
    it(c.name, () => {
      const d = computeDesired({ ...base, ...c.inputs });
      assert.deepEqual(d.routes.map(describeRoute).sort(), [...c.routes].sort());
      if (c.neighbours !== undefined)
        assert.deepEqual(d.neighbours.map(describeNeighbour).sort(), [...c.neighbours].sort());
      assert.deepEqual(
        d.problems.map((p) => p.kind).sort(),
        [...(c.problems ?? [])].sort(),
        JSON.stringify(d.problems, null, 1),
      );
    });

  it('puts_routes_in_the_configured_table', () => {
    const d = computeDesired({ ...base, affineBlocks: ['10.65.1.0/26'], options: { table: 100 } });
    assert.deepEqual(d.routes.map(describeRoute), ['blackhole 10.65.1.0/26 table 100']);
    assert.equal(d.routes[0]!.table, 100);
  });

  it('gives_the_same_output_whatever_the_input_order', () => {
    const paths = [
      { prefix: '10.65.3.0/26', nextHops: ['192.168.0.13', '192.168.0.12'] },
      { prefix: '10.65.2.0/26', nextHops: ['192.168.0.12'] },
    ];
    const a = computeDesired({
      ...base,
      pools: v4pool('Always'),
      paths,
      affineBlocks: ['10.65.1.0/26', 'fd10::/122'],
    });
    const b = computeDesired({
      ...base,
      pools: v4pool('Always'),
      paths: [...paths].reverse().map((p) => ({ ...p, nextHops: [...p.nextHops].reverse() })),
      affineBlocks: ['fd10::/122', '10.65.1.0/26'],
    });
    assert.deepEqual(a, b);
  });

  it('describes_nat_outgoing_per_family_excluding_every_pool', () => {
    const d = computeDesired({
      ...base,
      pools: [
        { cidr: '10.65.0.0/16', natOutgoing: true },
        { cidr: '10.66.0.0/16' },
        { cidr: 'fd10::/48', natOutgoing: true },
      ],
    });
    assert.deepEqual(d.nat, [
      { family: 4, sources: ['10.65.0.0/16'], exceptDestinations: ['10.65.0.0/16', '10.66.0.0/16'] },
      { family: 6, sources: ['fd10::/48'], exceptDestinations: ['fd10::/48'] },
    ]);
  });

  it('keys_ipv6_prefixes_canonically_however_they_are_written', () => {
    const d = computeDesired({ ...base, affineBlocks: ['FD10:0000::0100/122'] });
    assert.equal(d.routes[0]!.dst, 'fd10::100');
    assert.throws(() => parseCidr('10.65.1.1/26'), /host bits/);
  });
});

describe('BestPathTable', () => {
  it('folds_updates_and_withdrawals_and_reports_only_real_changes', () => {
    const t = new BestPathTable();
    assert.equal(t.apply({ kind: 'update', prefix: '10.65.2.0/26', nextHops: ['192.168.0.12'] }), true);
    assert.equal(t.apply({ kind: 'update', prefix: '10.65.2.0/26', nextHops: ['192.168.0.12'] }), false);
    assert.equal(
      t.apply({ kind: 'update', prefix: '10.65.2.0/26', nextHops: ['192.168.0.13', '192.168.0.12'] }),
      true,
    );
    assert.equal(
      t.apply({ kind: 'update', prefix: '10.65.2.0/26', nextHops: ['192.168.0.12', '192.168.0.13'] }),
      false,
    );
    assert.equal(t.apply({ kind: 'update', prefix: 'fd10:0::2:0/122', nextHops: ['FD00::12'] }), true);
    assert.deepEqual(t.paths(), [
      { prefix: '10.65.2.0/26', nextHops: ['192.168.0.12', '192.168.0.13'] },
      { prefix: 'fd10::2:0/122', nextHops: ['fd00::12'] },
    ]);
    assert.equal(t.apply({ kind: 'withdraw', prefix: '10.65.2.0/26' }), true);
    assert.equal(t.apply({ kind: 'withdraw', prefix: '10.65.2.0/26' }), false);
    assert.equal(t.apply({ kind: 'update', prefix: 'fd10::2:0/122', nextHops: [] }), true);
    assert.equal(t.size, 0);
  });
});
