// computeBgpConfig, table-driven over Calico's documented peering and export behaviour
// (docs.tigera.io "Configure BGP peering", confd client.go and the BIRD templates at v3.31.7).
// Calico's own confd scenarios are checked separately (calico-confd.test.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AnyKindResource } from '@tabby/datastore';
import { parseResource, readManifest } from '@tabby/datastore';
import type { BgpEnvironment, BgpConfig, KubernetesObjects, PeerConfig } from '../src/index.js';
import { bgpFilterFunctionName, computeBgpConfig, EMPTY_KUBERNETES, hashToIPv4 } from '../src/index.js';
import { kubernetesObjectsFrom } from '../src/bgpconfig/kubernetes.js';
import { snapshotOf } from '../src/bgpconfig/snapshot.js';

function resources(yaml: string): AnyKindResource[] {
  return readManifest(yaml).map((d, i) => {
    const r = parseResource(d.toJS(), `doc ${i + 1}`);
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    return r.resource;
  });
}

function render(
  yaml: string,
  node: string,
  env: BgpEnvironment = {},
  kube: KubernetesObjects = EMPTY_KUBERNETES,
): BgpConfig {
  return computeBgpConfig(snapshotOf(resources(yaml), kube), node, env);
}

const peer = (c: BgpConfig, name: string): PeerConfig => {
  const p = [...c.ipv4.peers, ...c.ipv6.peers].find((x) => x.name === name);
  assert.ok(p, `no peer ${name}; have ${[...c.ipv4.peers, ...c.ipv6.peers].map((x) => x.name).join(', ')}`);
  return p;
};
const names = (c: BgpConfig): string[] => [...c.ipv4.peers, ...c.ipv6.peers].map((p) => p.name);

const node = (name: string, ip: string, extra = ''): string => `---
apiVersion: projectcalico.org/v3
kind: Node
metadata: { name: ${name}${extra.startsWith('labels') ? `, ${extra}` : ''} }
spec: { bgp: { ipv4Address: ${ip}${extra.startsWith('labels') ? '' : extra} } }
`;
const three = node('a', '10.0.0.1/24') + node('b', '10.0.0.2/24') + node('c', '10.0.0.10/24');

describe('node-to-node mesh', () => {
  it('peers_with_every_other_node_and_the_higher_address_waits_for_the_lower', () => {
    const c = render(three, 'b');
    assert.deepEqual(names(c), ['Mesh_10_0_0_1', 'Mesh_10_0_0_10']);
    // Calico compares addresses as strings: "10.0.0.10" > "10.0.0.2" is false.
    assert.equal(peer(c, 'Mesh_10_0_0_1').passive, false);
    assert.equal(peer(c, 'Mesh_10_0_0_10').passive, false);
    assert.equal(peer(render(three, 'a'), 'Mesh_10_0_0_2').passive, true);
    const m = peer(c, 'Mesh_10_0_0_1');
    assert.equal(m.asNumber, 64512);
    assert.equal(m.sourceAddress, '10.0.0.2');
    assert.equal(m.internal, true);
    assert.equal(m.multihop, undefined);
    assert.equal(c.routerId, '10.0.0.2');
  });

  it('is_off_when_bgp_configuration_disables_it', () => {
    const c = render(
      `${three}---\napiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: { name: default }\nspec: { nodeToNodeMeshEnabled: false }\n`,
      'a',
    );
    assert.deepEqual(names(c), []);
    assert.equal(c.meshEnabled, false);
  });

  it('leaves_route_reflectors_out_and_a_reflector_leaves_the_mesh', () => {
    const y =
      node('a', '10.0.0.1/24') +
      node('b', '10.0.0.2/24') +
      node('rr', '10.0.0.9/24', ', routeReflectorClusterID: 1.0.0.1');
    const a = render(y, 'a');
    assert.deepEqual(names(a), ['Mesh_10_0_0_2']);
    assert.match(a.ipv4.skipped[0]!.reason, /route reflector with cluster ID 1\.0\.0\.1/);
    const rr = render(y, 'rr');
    assert.deepEqual(names(rr), []);
    assert.equal(rr.routeReflectorClusterId, '1.0.0.1');
  });

  it('takes_the_mesh_password_restart_time_and_the_peer_listen_port', () => {
    const c = render(
      `${three}---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: { name: default }
spec:
  nodeMeshMaxRestartTime: 90s
  listenPort: 1790
  nodeMeshPassword: { secretKeyRef: { name: bgp, key: mesh } }
`,
      'a',
      {},
      kubernetesObjectsFrom([
        {
          kind: 'Secret',
          metadata: { name: 'bgp' },
          data: { mesh: Buffer.from('s3cret').toString('base64') },
        },
      ]),
    );
    const m = peer(c, 'Mesh_10_0_0_2');
    assert.equal(m.port, 1790);
    assert.equal(m.gracefulRestartTime, 90);
    assert.equal(m.password, 's3cret');
    assert.equal(c.listenPort, 1790);
  });
});

describe('explicit peers', () => {
  const cfg = `---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: { name: default }
spec: { nodeToNodeMeshEnabled: false, asNumber: 64512 }
`;
  it('a_global_peer_applies_to_every_node_with_multihop_and_the_node_source_address', () => {
    const c = render(
      `${three}${cfg}---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: { name: tor }\nspec: { peerIP: 192.0.2.1, asNumber: 65001 }\n`,
      'c',
    );
    const p = peer(c, 'Global_192_0_2_1');
    assert.equal(p.type, 'global');
    assert.equal(p.internal, false);
    assert.equal(p.sourceAddress, '10.0.0.10');
    assert.deepEqual(p.multihop, {});
    assert.equal(p.passive, false);
    assert.equal(p.key, '/bgp/v1/global/peer_v4/192.0.2.1');
  });

  it('node_and_node_selector_limit_a_peer_to_some_nodes', () => {
    const y = `${node('a', '10.0.0.1/24', 'labels: { rack: r1 }')}${node('b', '10.0.0.2/24', 'labels: { rack: r2 }')}${cfg}---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: { name: tor-r1 }
spec: { nodeSelector: rack == 'r1', peerIP: 192.0.2.1, asNumber: 65001, ttlSecurity: 1 }
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: { name: only-b }
spec: { node: b, peerIP: 192.0.2.2, asNumber: 65002, sourceAddress: None }
`;
    const a = render(y, 'a');
    assert.deepEqual(names(a), ['Node_192_0_2_1']);
    assert.deepEqual(peer(a, 'Node_192_0_2_1').multihop, { ttlSecurity: 1 });
    assert.equal(peer(a, 'Node_192_0_2_1').type, 'node specific');
    const b = render(y, 'b');
    assert.deepEqual(names(b), ['Node_192_0_2_2']);
    assert.equal(peer(b, 'Node_192_0_2_2').sourceAddress, undefined);
  });

  it('a_node_specific_peering_is_dropped_when_a_global_one_has_the_same_address_and_port', () => {
    const c = render(
      `${three}${cfg}---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: { name: g }
spec: { peerIP: 192.0.2.1, asNumber: 65001 }
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: { name: node-a }
spec: { node: a, peerIP: 192.0.2.1, asNumber: 65009 }
`,
      'a',
    );
    assert.deepEqual(names(c), ['Global_192_0_2_1']);
    assert.equal(peer(c, 'Global_192_0_2_1').asNumber, 65001);
  });

  it('peer_selector_peers_with_the_selected_nodes_and_they_peer_back', () => {
    const y = `${node('a', '10.0.0.1/24', 'labels: { role: leaf }')}${node('rr', '10.0.0.9/24', 'labels: { role: rr }')}${cfg}---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: { name: to-rr }
spec: { nodeSelector: role == 'leaf', peerSelector: role == 'rr' }
`;
    const a = render(y, 'a');
    assert.deepEqual(names(a), ['Node_10_0_0_9']);
    // The reflector gets the reverse session automatically (reversePeering Auto).
    const rr = render(y, 'rr');
    assert.deepEqual(names(rr), ['Node_10_0_0_1']);
    const manual = render(
      y.replace("peerSelector: role == 'rr'", "peerSelector: role == 'rr', reversePeering: Manual"),
      'rr',
    );
    assert.deepEqual(names(manual), []);
  });

  it('labels_written_as_yaml_1_1_booleans_match_as_kubernetes_stores_them', () => {
    // kubectl reads `route-reflector: yes` as true and stores the label "true".
    const y = `${node('a', '10.0.0.1/24')}${node('rr', '10.0.0.9/24', 'labels: { route-reflector: yes }')}${cfg}---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: { name: to-rr }
spec: { peerSelector: route-reflector == 'true' }
`;
    assert.deepEqual(names(render(y, 'a')), ['Global_10_0_0_9']);
  });

  it('a_reflector_treats_ibgp_peers_as_clients_with_its_cluster_id', () => {
    const y = `${node('a', '10.0.0.1/24', 'labels: { role: leaf }')}${node('rr', '10.0.0.9/24', ', routeReflectorClusterID: 224.0.0.1')}${cfg}---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: { name: rr-to-leaves }
spec: { node: rr, peerSelector: role == 'leaf' }
`;
    const rr = render(y, 'rr');
    assert.deepEqual(peer(rr, 'Node_10_0_0_1').rrClient, { clusterId: '224.0.0.1' });
  });

  it('local_as_next_hop_modes_allowas_in_restart_time_and_filters', () => {
    const c = render(
      `${three}${cfg}---
apiVersion: projectcalico.org/v3
kind: BGPFilter
metadata: { name: only-pods }
spec:
  exportV4: [{ action: Accept, matchOperator: In, cidr: 10.65.0.0/16, prefixLength: { min: 26 } }, { action: Reject }]
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: { name: ebgp }
spec:
  peerIP: 192.0.2.1:1179
  asNumber: 65001
  localASNumber: 65100
  keepOriginalNextHop: true
  numAllowedLocalASNumbers: 2
  maxRestartTime: 2m
  keepaliveTime: 10s
  filters: [only-pods, missing]
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: { name: ibgp-self }
spec: { peerIP: 192.0.2.2, asNumber: 64512, nextHopMode: Self }
`,
      'a',
    );
    const e = peer(c, 'Global_192_0_2_1_port_1179');
    assert.equal(e.localAsNumber, 65100);
    assert.equal(e.localAsOverride, true);
    assert.equal(e.nextHop, 'keep');
    assert.equal(e.allowLocalAs, 2);
    assert.equal(e.gracefulRestartTime, 120);
    assert.equal(e.keepaliveTime, 10);
    assert.deepEqual(e.exportFilters, ['only-pods']);
    assert.deepEqual(e.importFilters, []);
    assert.ok(c.warnings.some((w) => /BGPFilter missing does not exist/.test(w)));
    assert.deepEqual(c.ipv4.filters, [
      {
        filter: 'only-pods',
        direction: 'export',
        functionName: 'bgp_only-pods_exportFilterV4',
        rules: [
          { action: 'accept', cidr: '10.65.0.0/16', operator: 'In', prefixLength: [26, 32] },
          { action: 'reject' },
        ],
      },
    ]);
    assert.equal(peer(c, 'Global_192_0_2_2').nextHop, 'self');
    assert.equal(peer(c, 'Global_192_0_2_2').internal, true);
  });

  it('a_missing_password_secret_is_a_warning_and_the_session_has_no_password', () => {
    const c = render(
      `${three}${cfg}---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: { name: p }\nspec: { peerIP: 192.0.2.1, asNumber: 65001, password: { secretKeyRef: { name: nope, key: k } } }\n`,
      'a',
    );
    assert.equal(peer(c, 'Global_192_0_2_1').password, undefined);
    assert.ok(c.warnings.some((w) => /Secret nope key k not found/.test(w)));
  });

  it('a_peer_at_our_own_address_is_skipped_and_if_it_names_our_as_every_node_peers_back', () => {
    const selfPeer = (as: number): string =>
      `${three}${cfg}---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: { name: self }\nspec: { peerIP: 10.0.0.1, asNumber: ${as} }\n`;
    const c = render(selfPeer(65000), 'a');
    assert.deepEqual(names(c), []);
    assert.deepEqual(c.ipv4.skipped, [{ key: '/bgp/v1/global/peer_v4/10.0.0.1', reason: 'it is this node' }]);
    // With our AS the peer IS node a, so Calico's automatic reverse peering makes a peer
    // with every node the BGPPeer applies to (all of them): the other two.
    assert.deepEqual(names(render(selfPeer(64512), 'a')), ['Node_10_0_0_10', 'Node_10_0_0_2']);
  });

  it('ipv6_peers_are_named_with_underscores_for_colons', () => {
    const c = render(
      `---\napiVersion: projectcalico.org/v3\nkind: Node\nmetadata: { name: a }\nspec: { bgp: { ipv4Address: 10.0.0.1/24, ipv6Address: 'fd00::1/64' } }\n${cfg}---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: { name: v6 }\nspec: { peerIP: '[fd00::99]:1790', asNumber: 65001 }\n`,
      'a',
    );
    assert.deepEqual(
      c.ipv6.peers.map((p) => [p.name, p.address, p.port, p.sourceAddress]),
      [['Global_fd00__99_port_1790', 'fd00::99', 1790, 'fd00::1']],
    );
  });
});

describe('peering with local workloads (localWorkloadSelector)', () => {
  const y = `${node('a', '10.0.0.1/24', 'labels: { rack: r1 }')}${node('b', '10.0.0.2/24')}---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: { name: default }
spec: { nodeToNodeMeshEnabled: false }
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: { name: z-global }
spec: { localWorkloadSelector: app == 'router', asNumber: 65010 }
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: { name: a-rack1 }
spec: { localWorkloadSelector: app == 'router', nodeSelector: rack == 'r1', asNumber: 65011, localASNumber: 65100 }
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: { name: a-k8s-router-eth0, namespace: net, labels: { app: router } }
spec: { node: a, ipNetworks: [10.65.1.5/32, 'fd00::5/128'], interfaceName: cali0123456789a }
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: { name: b-k8s-router-eth0, namespace: net, labels: { app: router } }
spec: { node: b, ipNetworks: [10.65.2.5/32], interfaceName: cali0123456789b }
`;
  it('a_workload_peers_with_the_first_active_bgp_peer_by_name_that_selects_it', () => {
    const a = render(
      y.replace('ipv4Address: 10.0.0.1/24 }', "ipv4Address: 10.0.0.1/24, ipv6Address: 'fd00::1/64' }"),
      'a',
    );
    // a-rack1 sorts first and selects node a: node-specific, passive, no source address.
    assert.deepEqual(
      [...a.ipv4.peers, ...a.ipv6.peers].map((p) => [
        p.name,
        p.type,
        p.asNumber,
        p.localAsNumber,
        p.passive,
        p.sourceAddress,
      ]),
      [
        ['Local_Workload_10_65_1_5', 'local workload', 65011, 65100, true, undefined],
        ['Local_Workload_fd00__5', 'local workload', 65011, 65100, true, undefined],
      ],
    );
    // On b, a-rack1 is not active (b is not in rack r1): the global one takes the workload.
    const b = render(y, 'b');
    assert.deepEqual(
      b.ipv4.peers.map((p) => [p.name, p.key, p.asNumber]),
      [['Local_Workload_10_65_2_5', '/bgp/v1/global/peer_v4/10.65.2.5', 65010]],
    );
  });
});

describe('router id, exports and service addresses', () => {
  it('router_id_comes_from_calico_router_id_or_a_hash_of_the_node_name', () => {
    assert.equal(render(three, 'a', { CALICO_ROUTER_ID: '1.2.3.4' }).routerId, '1.2.3.4');
    assert.equal(render(three, 'a', { CALICO_ROUTER_ID: 'hash' }).routerId, hashToIPv4('a'));
    // sha256("a") = ca978112...: 0xca = 202 stays (at most 223).
    assert.equal(hashToIPv4('a'), '202.151.129.18');
  });

  it('filter_function_names_longer_than_bird_allows_are_cut_and_hashed', () => {
    const long = 'x'.repeat(80);
    const n = bgpFilterFunctionName(long, 'import', 4);
    assert.equal(n.length, 64);
    assert.match(n, /^bgp_x+_[0-9A-F]{16}_importFilterV4$/);
    assert.equal(bgpFilterFunctionName('short', 'export', 6), 'bgp_short_exportFilterV6');
  });

  it('exports_affine_blocks_pools_and_communities', () => {
    const c = render(
      `${three}---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: { name: p }
spec: { cidr: 10.65.0.0/16, ipipMode: CrossSubnet }
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: { name: hidden }
spec: { cidr: 10.66.0.0/16, disableBGPExport: true }
---
apiVersion: crd.projectcalico.org/v1
kind: BlockAffinity
metadata: { name: a-10-65-1-0-26 }
spec: { state: confirmed, node: a, cidr: 10.65.1.0/26, deleted: 'false' }
---
apiVersion: crd.projectcalico.org/v1
kind: BlockAffinity
metadata: { name: b-10-65-2-0-26 }
spec: { state: confirmed, node: b, cidr: 10.65.2.0/26, deleted: 'false' }
---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: { name: default }
spec:
  communities: [{ name: pods, value: '65001:100' }]
  prefixAdvertisements: [{ cidr: 10.65.0.0/16, communities: [pods, '65001:1:2'] }]
`,
      'a',
    );
    assert.deepEqual(c.ipv4.exports.blocks, [{ cidr: '10.65.1.0/26', state: 'confirmed' }]);
    assert.deepEqual(
      c.ipv4.exports.pools.map((p) => [p.cidr, p.ipipMode, p.disableBGPExport]),
      [
        ['10.65.0.0/16', 'CrossSubnet', false],
        ['10.66.0.0/16', 'Never', true],
      ],
    );
    assert.deepEqual(c.ipv4.exports.prefixAdvertisements, [
      // Go's sort.Strings order (bytes): "65001:100" < "65001:1:2".
      { cidr: '10.65.0.0/16', communities: ['65001:100', '65001:1:2'] },
    ]);
  });

  it('service_ranges_from_every_node_and_local_service_addresses_only_where_an_endpoint_runs', () => {
    const y = `${three}---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: { name: default }
spec:
  serviceClusterIPs: [{ cidr: 10.96.0.0/12 }]
  serviceExternalIPs: [{ cidr: 192.0.2.0/24 }, { cidr: 198.51.100.7/32 }]
`;
    const kube = kubernetesObjectsFrom([
      {
        kind: 'Service',
        metadata: { name: 'web', namespace: 'shop' },
        spec: {
          clusterIP: '10.96.0.10',
          externalTrafficPolicy: 'Local',
          externalIPs: ['192.0.2.5', '203.0.113.1'],
        },
      },
      {
        kind: 'EndpointSlice',
        metadata: { name: 'web-x', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
        addressType: 'IPv4',
        endpoints: [
          { conditions: { ready: true }, nodeName: 'b' },
          { conditions: { ready: false }, nodeName: 'c' },
        ],
      },
      {
        kind: 'Service',
        metadata: { name: 'single', namespace: 'shop' },
        spec: { clusterIP: '10.96.0.11', externalIPs: ['198.51.100.7'] },
      },
    ]);
    const b = render(y, 'b', {}, kube);
    assert.deepEqual(b.ipv4.exports.serviceRoutes, [
      '10.96.0.0/12',
      '10.96.0.10/32',
      '10.96.0.11/32',
      '192.0.2.0/24',
      '192.0.2.5/32',
      '198.51.100.7/32',
    ]);
    assert.deepEqual(b.ipv4.exports.kernelRejects, ['10.96.0.0/12', '192.0.2.0/24']);
    // c's endpoint is not ready: only the ranges and the single external IP (a Cluster service).
    const c = render(y, 'c', {}, kube);
    assert.deepEqual(c.ipv4.exports.serviceRoutes, [
      '10.96.0.0/12',
      '10.96.0.11/32',
      '192.0.2.0/24',
      '198.51.100.7/32',
    ]);
    // A node excluded from load balancers advertises nothing but still refuses learned routes.
    const excl = render(
      y.replace(
        'name: c }',
        "name: c, labels: { node.kubernetes.io/exclude-from-external-load-balancers: 'true' } }",
      ),
      'c',
      {},
      kube,
    );
    assert.deepEqual(excl.ipv4.exports.serviceRoutes, []);
    assert.deepEqual(excl.ipv4.exports.kernelRejects, ['10.96.0.0/12', '192.0.2.0/24']);
  });

  it('a_node_without_a_node_resource_gets_a_warning_and_no_peers', () => {
    const c = render(three, 'ghost');
    assert.deepEqual(names(c), []);
    assert.ok(c.warnings.some((w) => /ghost has no Node resource/.test(w)));
    assert.equal(c.ipv4.nodeAddress, undefined);
  });
});
