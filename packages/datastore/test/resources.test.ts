// Resource parsing and validation: Calico manifests read unchanged, defaults filled in,
// and every problem named by resource, field path and reason.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { ParseResult, ResourceIssue } from '../src/resources/index.js';
import { API_VERSION, parseResource } from '../src/resources/index.js';

function ok(doc: unknown): Extract<ParseResult, { ok: true }>['resource'] {
  const r = parseResource(doc);
  if (!r.ok) assert.fail(r.issues.map((i) => `${i.resource}: ${i.path}: ${i.reason}`).join('\n'));
  return r.resource;
}

function issues(doc: unknown): ResourceIssue[] {
  const r = parseResource(doc);
  assert.equal(r.ok, false, 'the document should have been refused');
  return r.ok ? [] : [...r.issues];
}

/** The one issue at `path`; fails naming all issues otherwise. */
function issueAt(doc: unknown, path: string): ResourceIssue {
  const all = issues(doc);
  const hit = all.filter((i) => i.path === path);
  assert.equal(hit.length, 1, `one issue at ${path}, got: ${JSON.stringify(all)}`);
  return hit[0]!;
}

const pool = (spec: Record<string, unknown>, name = 'pool-a') => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'IPPool',
  metadata: { name },
  spec: { cidr: '10.65.0.0/16', ...spec },
});
const peer = (spec: Record<string, unknown>) => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'BGPPeer',
  metadata: { name: 'tor' },
  spec,
});

describe('Calico manifests', () => {
  it('a_calico_v3_ippool_is_read_with_our_apiVersion_and_calico_defaults', () => {
    const r = ok(pool({ ipipMode: 'CrossSubnet', natOutgoing: true }, 'default-ipv4-ippool'));
    assert.equal(r.apiVersion, API_VERSION);
    assert.deepEqual(r.spec, {
      cidr: '10.65.0.0/16',
      blockSize: 26,
      ipipMode: 'CrossSubnet',
      vxlanMode: 'Never',
      natOutgoing: true,
      disabled: false,
      disableBGPExport: false,
      nodeSelector: 'all()',
      allowedUses: ['Workload', 'Tunnel'],
      assignmentMode: 'Automatic',
    });
  });

  it('an_ipv6_pool_defaults_to_blocks_of_122_and_its_cidr_is_written_canonically', () => {
    const r = ok(pool({ cidr: 'FD00:0:0:0::/48' }));
    assert.equal(r.kind === 'IPPool' && r.spec.cidr, 'fd00::/48');
    assert.equal(r.kind === 'IPPool' && r.spec.blockSize, 122);
  });

  it('a_calico_bgppeer_with_asdot_as_number_and_secret_password_is_read', () => {
    const r = ok(
      peer({
        peerIP: '192.0.2.1:1790',
        asNumber: '1.10',
        nodeSelector: "rack == 'r1'",
        password: { secretKeyRef: { name: 'bgp', key: 'tor' } },
        keepaliveTime: '10s',
        maxRestartTime: '2m30s',
      }),
    );
    assert.equal(r.kind, 'BGPPeer');
  });

  it('crd_projectcalico_org_v1_ipam_objects_are_read', () => {
    const r = ok({
      apiVersion: 'crd.projectcalico.org/v1',
      kind: 'IPAMBlock',
      metadata: { name: '10-65-1-0-30' },
      spec: {
        cidr: '10.65.1.0/30',
        affinity: 'host:node-1',
        strictAffinity: false,
        allocations: [0, null, null, null],
        unallocated: [1, 2, 3],
        attributes: [{ handle_id: 'k8s-pod-network.abc', secondary: { node: 'node-1' } }],
      },
    });
    assert.equal(r.kind === 'IPAMBlock' && r.spec.sequenceNumber, 0, 'sequenceNumber defaults to 0');
  });

  it('yaml_booleans_and_numbers_in_labels_become_text_and_an_empty_spec_may_be_null', () => {
    const r = ok({
      apiVersion: 'projectcalico.org/v3',
      kind: 'Node',
      metadata: { name: 'kube-master', labels: { routeReflector: true, rack: 1 } },
      spec: null,
    });
    assert.deepEqual(r.metadata.labels, { routeReflector: 'true', rack: '1' });
    assert.deepEqual(r.spec, {});
    assert.match(
      issueAt({ ...pool({}), metadata: { name: 'p', labels: { a: { b: 1 } } } }, 'metadata.labels.a').reason,
      /must be a string/,
    );
  });

  it('server_set_metadata_is_dropped_and_status_ignored', () => {
    const r = ok({
      ...pool({}),
      metadata: { name: 'p', generation: 3, managedFields: [{}], uid: 'u-1', resourceVersion: '12' },
      status: { anything: true },
    });
    assert.deepEqual(r.metadata, { name: 'p', uid: 'u-1', resourceVersion: '12' });
    assert.equal('status' in r, false);
  });
});

describe('validation names the resource, the field and the reason', () => {
  it('a_block_size_out_of_range', () => {
    const i = issueAt(pool({ blockSize: 33 }), 'spec.blockSize');
    assert.equal(i.resource, 'IPPool pool-a');
    assert.equal(i.reason, 'must be between 20 and 32 for an IPv4 pool, not 33');
    assert.match(
      issueAt(pool({ blockSize: 19 }), 'spec.blockSize').reason,
      /between 20 and 32 for an IPv4 pool, not 19/,
    );
    assert.match(
      issueAt(pool({ cidr: 'fd00::/48', blockSize: 64 }), 'spec.blockSize').reason,
      /between 116 and 128 for an IPv6 pool/,
    );
  });

  it('a_pool_smaller_than_a_block', () => {
    assert.match(issueAt(pool({ cidr: '10.0.0.0/28' }), 'spec.blockSize').reason, /smaller than one block/);
  });

  it('a_pool_cidr_with_host_bits_names_the_network', () => {
    assert.match(
      issueAt(pool({ cidr: '10.65.1.1/16' }), 'spec.cidr').reason,
      /host bits set; the network is 10\.65\.0\.0\/16/,
    );
  });

  it('a_pool_in_link_local_space', () => {
    assert.match(issueAt(pool({ cidr: '169.254.0.0/20' }), 'spec.cidr').reason, /link-local/);
  });

  it('ipip_and_vxlan_both_enabled_and_ipip_on_ipv6', () => {
    assert.match(
      issueAt(pool({ ipipMode: 'Always', vxlanMode: 'CrossSubnet' }), 'spec.vxlanMode').reason,
      /cannot both be enabled/,
    );
    assert.match(
      issueAt(pool({ cidr: 'fd00::/48', ipipMode: 'Always' }), 'spec.ipipMode').reason,
      /IPv4 only/,
    );
  });

  it('peerIP_and_peerSelector_both_set', () => {
    const i = issueAt(peer({ peerIP: '10.0.0.1', peerSelector: 'all()' }), 'spec.peerSelector');
    assert.equal(i.reason, 'peerIP and peerSelector cannot both be set');
    assert.equal(i.resource, 'BGPPeer tor');
  });

  it('node_and_nodeSelector_both_set', () => {
    assert.equal(
      issueAt(
        peer({ peerIP: '10.0.0.1', asNumber: 65001, node: 'n1', nodeSelector: 'all()' }),
        'spec.nodeSelector',
      ).reason,
      'node and nodeSelector cannot both be set',
    );
  });

  it('a_bad_selector_says_where_and_what', () => {
    const i = issueAt(pool({ nodeSelector: "rack == 'r1' &&" }), 'spec.nodeSelector');
    assert.match(i.reason, /^bad selector "rack == 'r1' &&": expected .* at offset 15, found end of input/);
  });

  it('an_as_number_out_of_range_or_malformed', () => {
    assert.match(
      issueAt(peer({ peerIP: '10.0.0.1', asNumber: 4294967296 }), 'spec.asNumber').reason,
      /not an AS number/,
    );
    assert.match(
      issueAt(peer({ peerIP: '10.0.0.1', asNumber: 0 }), 'spec.asNumber').reason,
      /not an AS number/,
    );
    assert.match(
      issueAt(peer({ peerIP: '10.0.0.1', asNumber: '65536.1' }), 'spec.asNumber').reason,
      /not an AS number/,
    );
    ok(peer({ peerIP: '10.0.0.1', asNumber: 4294967295 }));
  });

  it('a_peer_address_that_is_not_one', () => {
    assert.match(
      issueAt(peer({ peerIP: '10.0.0.256', asNumber: 1 }), 'spec.peerIP').reason,
      /not an address/,
    );
    assert.match(
      issueAt(peer({ peerIP: 'fd00::1:179', asNumber: 1, reachableBy: '10.0.0.1' }), 'spec.reachableBy')
        .reason,
      /same address family/,
    );
  });

  it('a_misspelt_field_is_refused_not_dropped', () => {
    assert.equal(issueAt(pool({ ipipmode: 'Always' }), 'spec.ipipmode').reason, 'is not a known field');
  });

  it('a_wrong_type_an_unknown_enum_value_and_a_bad_duration', () => {
    assert.equal(
      issueAt(pool({ natOutgoing: 'yes' }), 'spec.natOutgoing').reason,
      'must be true or false, not the string "yes"',
    );
    assert.match(
      issueAt(pool({ vxlanMode: 'always' }), 'spec.vxlanMode').reason,
      /one of "Never", "Always", "CrossSubnet", not "always"/,
    );
    assert.match(
      issueAt(peer({ peerIP: '10.0.0.1', asNumber: 1, maxRestartTime: '2 minutes' }), 'spec.maxRestartTime')
        .reason,
      /not a duration/,
    );
  });

  it('apiVersion_kind_and_metadata_problems', () => {
    assert.match(issueAt({ ...pool({}), apiVersion: 'v1' }, 'apiVersion').reason, /tabby\.dev\/v1/);
    assert.match(issueAt({ ...pool({}), kind: 'IpPool' }, 'kind').reason, /one of .*IPPool/);
    assert.equal(issueAt({ ...pool({}), metadata: {} }, 'metadata.name').reason, 'is required');
    assert.match(
      issueAt({ ...pool({}), metadata: { name: 'Pool_A' } }, 'metadata.name').reason,
      /not a valid name/,
    );
    assert.match(
      issueAt({ ...pool({}), metadata: { name: 'p', namespace: 'x' } }, 'metadata.namespace').reason,
      /cluster-wide/,
    );
    assert.match(
      issueAt(
        { apiVersion: API_VERSION, kind: 'WorkloadEndpoint', metadata: { name: 'w' }, spec: {} },
        'metadata.namespace',
      ).reason,
      /namespaced/,
    );
  });

  it('bgp_filter_rules_check_family_and_pairs', () => {
    const f = (rule: Record<string, unknown>) => ({
      apiVersion: API_VERSION,
      kind: 'BGPFilter',
      metadata: { name: 'f' },
      spec: { exportV4: [{ action: 'Accept', ...rule }] },
    });
    assert.match(
      issueAt(f({ cidr: 'fd00::/64', matchOperator: 'In' }), 'spec.exportV4[0].cidr').reason,
      /IPv4/,
    );
    assert.equal(
      issueAt(f({ cidr: '10.0.0.0/8' }), 'spec.exportV4[0].matchOperator').reason,
      'cidr and matchOperator must both be set or both be empty',
    );
    assert.equal(
      issueAt(f({ prefixLength: { min: 24 } }), 'spec.exportV4[0].cidr').reason,
      'cidr is required when prefixLength is set',
    );
    assert.match(
      issueAt(
        f({ cidr: '10.0.0.0/8', matchOperator: 'In', prefixLength: { min: 28, max: 24 } }),
        'spec.exportV4[0].prefixLength',
      ).reason,
      /min \(28\) is greater than max \(24\)/,
    );
  });

  it('bgp_configuration_communities_and_mesh_rules', () => {
    const c = (spec: Record<string, unknown>, name = 'default') => ({
      apiVersion: API_VERSION,
      kind: 'BGPConfiguration',
      metadata: { name },
      spec,
    });
    ok(
      c({
        communities: [{ name: 'a', value: '65000:100' }],
        prefixAdvertisements: [{ cidr: '10.0.0.0/8', communities: ['a', '1:2:3'] }],
      }),
    );
    assert.match(
      issueAt(
        c({
          communities: [{ name: 'a', value: '65536:1' }],
          prefixAdvertisements: [{ cidr: '10.0.0.0/8', communities: ['a'] }],
        }),
        'spec.communities[0].value',
      ).reason,
      /not a community/,
    );
    assert.match(
      issueAt(
        c({ prefixAdvertisements: [{ cidr: '10.0.0.0/8', communities: ['nope'] }] }),
        'spec.prefixAdvertisements[0].communities[0]',
      ).reason,
      /neither/,
    );
    assert.match(
      issueAt(
        c({ nodeToNodeMeshEnabled: false, nodeMeshMaxRestartTime: '90s' }),
        'spec.nodeMeshMaxRestartTime',
      ).reason,
      /nodeToNodeMeshEnabled is false/,
    );
    assert.match(issueAt(c({}, 'other'), 'metadata.name').reason, /"default".*"node\.<node name>"/);
  });

  it('ipam_block_consistency', () => {
    const b = (spec: Record<string, unknown>) => ({
      apiVersion: API_VERSION,
      kind: 'IPAMBlock',
      metadata: { name: '10-65-1-0-30' },
      spec: { cidr: '10.65.1.0/30', strictAffinity: false, attributes: [], ...spec },
    });
    assert.match(
      issueAt(b({ allocations: [null, null], unallocated: [0, 1] }), 'spec.allocations').reason,
      /one entry per address \(4\)/,
    );
    assert.match(
      issueAt(b({ allocations: [null, null, null, 0], unallocated: [0, 1, 2] }), 'spec.allocations[3]')
        .reason,
      /refers to attribute 0/,
    );
    assert.match(
      issueAt(b({ allocations: [null, null, null, null], unallocated: [0, 0, 1, 2] }), 'spec.unallocated[1]')
        .reason,
      /listed twice/,
    );
  });
});

describe('properties', () => {
  it('no_input_makes_parseResource_throw', () => {
    fc.assert(
      fc.property(
        fc.jsonValue(),
        fc.constantFrom('IPPool', 'BGPPeer', 'IPAMBlock', 'Node', 'BGPConfiguration'),
        (spec, kind) => {
          parseResource({ apiVersion: API_VERSION, kind, metadata: { name: 'x' }, spec });
          parseResource(spec);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('parsing_is_idempotent_defaults_and_canonical_forms_are_fixed_points', () => {
    fc.assert(
      fc.property(
        fc.record(
          {
            cidr: fc.constantFrom('10.0.0.0/16', 'fd00:0::/48', '192.168.0.0/20'),
            ipipMode: fc.constantFrom('Never', 'CrossSubnet', undefined),
            natOutgoing: fc.boolean(),
            nodeSelector: fc.constantFrom("rack == 'a'", 'all()', '!has(x)'),
          },
          { requiredKeys: ['cidr'] },
        ),
        (spec) => {
          const r1 = parseResource(pool(JSON.parse(JSON.stringify(spec)) as Record<string, unknown>));
          if (!r1.ok) return; // IPIP on an IPv6 pool: refused, fine
          const r2 = parseResource(r1.resource);
          assert.ok(r2.ok);
          assert.deepEqual(r2.resource, r1.resource);
        },
      ),
    );
  });
});
