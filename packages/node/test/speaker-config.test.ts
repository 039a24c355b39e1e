// speakerConfigFor: the BGP configuration as bgp-ts settings, and Calico's export filter
// (calico_export_to_bgp_peers) evaluated prefix by prefix through the speaker's own policy engine.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compilePolicy } from 'bgp-ts/policy';
import type { PathAttributes } from 'bgp-ts/wire';
import { parsePrefix } from 'bgp-ts/wire';
import type { AnyKindResource } from '@tabby/datastore';
import { parseResource, readManifest } from '@tabby/datastore';
import { computeBgpConfig } from '../src/index.js';
import { snapshotOf } from '../src/bgpconfig/snapshot.js';
import { speakerConfigFor } from '../src/bgp/speaker-config.js';

function resources(yaml: string): AnyKindResource[] {
  return readManifest(yaml).map((d) => {
    const r = parseResource(d.toJS());
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    return r.resource;
  });
}

const cluster = `apiVersion: projectcalico.org/v3
kind: Node
metadata: { name: a }
spec: { bgp: { ipv4Address: 10.0.0.1/24 } }
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: { name: b }
spec: { bgp: { ipv4Address: 10.0.0.2/24 } }
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: { name: pods }
spec: { cidr: 10.65.0.0/16 }
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: { name: private }
spec: { cidr: 10.66.0.0/16, disableBGPExport: true }
---
apiVersion: crd.projectcalico.org/v1
kind: BlockAffinity
metadata: { name: a-10-65-1-0-26 }
spec: { state: confirmed, node: a, cidr: 10.65.1.0/26, deleted: 'false' }
---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: { name: default }
spec:
  serviceClusterIPs: [{ cidr: 10.96.0.0/12 }]
  prefixAdvertisements: [{ cidr: 10.65.0.0/16, communities: ['65000:7', '65000:1:2'] }]
---
apiVersion: projectcalico.org/v3
kind: BGPFilter
metadata: { name: no-long }
spec:
  exportV4: [{ action: Reject, matchOperator: In, cidr: 10.65.0.0/16, prefixLength: { min: 30 } }]
  importV4:
    - { action: Accept, matchOperator: Equal, cidr: 0.0.0.0/0 }
    - { action: Reject, source: RemotePeers }
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: { name: tor }
spec: { peerIP: 192.0.2.1, asNumber: 65001, filters: [no-long], keepaliveTime: 10s, ttlSecurity: 1 }
`;

const attrs: PathAttributes = { origin: 0, asPath: [] } as unknown as PathAttributes;
function verdict(policy: ReturnType<typeof compilePolicy>, prefix: string, learned = true) {
  const p = parsePrefix(prefix)!;
  return policy.evaluate({ afi: p.afi, words: p.words, offset: 0, len: p.len }, attrs, learned);
}

describe('speakerConfigFor', () => {
  const cfg = computeBgpConfig(snapshotOf(resources(cluster)), 'a');
  const sc = speakerConfigFor(cfg);

  it('opens_one_session_per_peer_with_the_configured_knobs', () => {
    assert.equal(sc.routerId, '10.0.0.1');
    assert.equal(sc.localAsn, 64512);
    assert.deepEqual(sc.listen, { host: '::', port: 179 });
    assert.deepEqual(
      sc.peers.map((p) => [p.name, p.address, p.asn, p.passive, p.localAddress, p.families]),
      [
        ['Mesh_10_0_0_2', '10.0.0.2', 64512, true, '10.0.0.1', ['ipv4-unicast']],
        ['Global_192_0_2_1', '192.0.2.1', 65001, false, '10.0.0.1', ['ipv4-unicast']],
      ],
    );
    const tor = sc.peers[1]!;
    assert.equal(tor.keepaliveTime, 10);
    assert.equal(tor.holdTime, 30);
    assert.equal(tor.ttlSecurity, 1);
    assert.deepEqual(tor.gracefulRestart, { restartTime: 120 });
    assert.equal(tor.addPath, 'both');
    assert.deepEqual(sc.originate, [{ prefix: '10.65.1.0/26' }, { prefix: '10.96.0.0/12' }]);
  });

  it('exports_as_calico_does_the_aggregate_not_what_is_beneath_and_only_pool_and_service_routes', () => {
    const mesh = compilePolicy(sc.peers[0]!.exportPolicy!);
    assert.equal(verdict(mesh, '10.65.1.0/26', false).verdict, 'accept'); // our block
    assert.equal(verdict(mesh, '10.65.1.5/32', false).verdict, 'reject'); // inside our block
    assert.equal(verdict(mesh, '10.65.2.0/26').verdict, 'accept'); // another node's block
    assert.equal(verdict(mesh, '10.65.9.9/32', false).verdict, 'accept'); // a borrowed address
    assert.equal(verdict(mesh, '10.66.0.0/26').verdict, 'reject'); // disableBGPExport
    assert.equal(verdict(mesh, '10.96.0.0/12', false).verdict, 'accept'); // service range
    assert.equal(verdict(mesh, '0.0.0.0/0').verdict, 'reject'); // not ours
    const ok = verdict(mesh, '10.65.1.0/26', false);
    assert.ok(ok.verdict === 'accept');
    assert.deepEqual(ok.attributes.communities?.length, 1);
    assert.equal(ok.attributes.largeCommunities?.length, 1);
  });

  it('a_bgp_filter_rule_on_an_interface_never_matches_in_our_speaker', () => {
    // Deliberate difference (docs/migrating-from-calico.md): BIRD matches `interface` against
    // kernel and device routes, which our speaker never holds.
    const y = `${cluster}---
apiVersion: projectcalico.org/v3
kind: BGPFilter
metadata: { name: by-iface }
spec:
  exportV4: [{ action: Reject, interface: 'eth*' }, { action: Reject, interface: 'eth*', matchOperator: In, cidr: 10.65.0.0/16 }]
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: { name: tor2 }
spec: { peerIP: 192.0.2.2, asNumber: 65002, filters: [by-iface] }
`;
    const c = speakerConfigFor(computeBgpConfig(snapshotOf(resources(y)), 'a'));
    const tor2 = compilePolicy(c.peers.find((p) => p.name === 'Global_192_0_2_2')!.exportPolicy!);
    assert.equal(verdict(tor2, '10.65.1.0/26', false).verdict, 'accept');
    assert.equal(verdict(tor2, '10.65.2.0/26', true).verdict, 'accept');
  });

  it('runs_the_peer_bgp_filters_first', () => {
    const tor = compilePolicy(sc.peers[1]!.exportPolicy!);
    assert.equal(verdict(tor, '10.65.1.0/26', false).verdict, 'accept');
    assert.equal(verdict(tor, '10.65.3.0/30').verdict, 'reject'); // no-long: /30 and longer
    const imp = compilePolicy(sc.peers[1]!.importPolicy!);
    assert.equal(verdict(imp, '0.0.0.0/0').verdict, 'accept'); // Equal 0.0.0.0/0
    assert.equal(verdict(imp, '10.1.0.0/16').verdict, 'reject'); // source RemotePeers
  });
});
