// The node's addresses (Calico's configureIPsAndSubnets) and its Node resource (create or
// update, conflicts with other Nodes, compare-and-swap retries), on the memory datastore.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AnyResource, Node, NodeSpec } from '@tabby/datastore';
import { Datastore, MemoryBackend, parseIp } from '@tabby/datastore';
import type { HostAddresses, Settings } from '../src/index.js';
import {
  AddressConflictError,
  AutodetectionError,
  configureAddresses,
  detectAddresses,
  NoAddressError,
  registerNode,
} from '../src/index.js';
import {
  datastore,
  iface,
  nodeOf,
  RecordingLogger,
  seed,
  settingsFrom,
  typicalHost,
} from './support/startup.js';

const eth0 = iface('eth0', '10.0.0.5/24', 'fd00::5/64');
const ens4 = iface('ens4', '192.168.9.4/24');
const detected = (ipv4?: string, ipv6?: string): HostAddresses => ({
  interfaces: [eth0, ens4],
  ipv4:
    ipv4 === undefined
      ? { ok: false, reason: 'no valid IPv4 addresses found on the host interfaces' }
      : {
          ok: true,
          cidr: { address: parseAddr(ipv4), prefixLen: Number(ipv4.split('/')[1]) },
          interface: 'eth0',
        },
  ipv6:
    ipv6 === undefined
      ? { ok: false, reason: 'no valid IPv6 addresses found on the host interfaces' }
      : {
          ok: true,
          cidr: { address: parseAddr(ipv6), prefixLen: Number(ipv6.split('/')[1]) },
          interface: 'eth0',
        },
});
const parseAddr = (cidr: string) => parseIp(cidr.split('/')[0]!)!;

function configure(
  env: Record<string, string>,
  spec: NodeSpec,
  host: HostAddresses,
): { spec: NodeSpec; changed: boolean; log: RecordingLogger } {
  const log = new RecordingLogger();
  const s = structuredClone(spec);
  s.bgp ??= {};
  const changed = configureAddresses(s, settingsFrom(env), host, log);
  return { spec: s, changed, log };
}

describe("the node's addresses (configureIPsAndSubnets)", () => {
  it('autodetects_ipv4_for_a_node_without_one_and_never_ipv6_unless_asked', () => {
    const r = configure({}, {}, detected('10.0.0.5/24', 'fd00::5/64'));
    assert.deepEqual(r.spec.bgp, { ipv4Address: '10.0.0.5/24' });
    assert.equal(r.spec.interfaces, undefined); // neither IP nor IP6 is set
    assert.equal(r.changed, true);
  });

  it('keeps_an_existing_ipv4_address_when_ip_is_unset', () => {
    const r = configure({}, { bgp: { ipv4Address: '10.0.0.99/24' } }, detected('10.0.0.5/24'));
    assert.deepEqual(r.spec.bgp, { ipv4Address: '10.0.0.99/24' });
    assert.equal(r.changed, false);
  });

  it('replaces_the_address_with_a_new_autodetected_one_and_lists_the_interfaces', () => {
    const r = configure(
      { IP: 'autodetect' },
      { bgp: { ipv4Address: '10.0.0.99/24' } },
      detected('10.0.0.5/24'),
    );
    assert.equal(r.spec.bgp?.ipv4Address, '10.0.0.5/24');
    assert.equal(r.changed, true);
    // sorted by name, addresses of the families set in IP/IP6 only, without prefix
    assert.deepEqual(r.spec.interfaces, [
      { name: 'ens4', addresses: ['192.168.9.4'] },
      { name: 'eth0', addresses: ['10.0.0.5'] },
    ]);
  });

  it('keeps_the_old_address_when_autodetection_fails_and_warns', () => {
    const r = configure({ IP: 'autodetect' }, { bgp: { ipv4Address: '10.7.7.7/24' } }, detected());
    assert.equal(r.spec.bgp?.ipv4Address, '10.7.7.7/24');
    assert.deepEqual(r.log.at('warn'), [
      'autodetection of an IPv4 address failed, keeping the existing one',
      'unable to confirm IPv4 address 10.7.7.7 is assigned to this host',
    ]);
  });

  it('fails_when_autodetection_finds_nothing_and_the_node_has_no_address', () => {
    assert.throws(
      () => configure({ IP: 'autodetect' }, {}, detected()),
      (e) =>
        e instanceof AutodetectionError &&
        e.family === 4 &&
        /could not autodetect an IPv4 address with first-found \(IP_AUTODETECTION_METHOD\): no valid IPv4 addresses found/.test(
          e.message,
        ),
    );
    assert.throws(() => configure({ IP6: 'autodetect' }, {}, detected('10.0.0.5/24')), AutodetectionError);
  });

  it('never_removes_an_address_for_none', () => {
    const r = configure(
      { IP: 'none', IP6: 'none' },
      { bgp: { ipv4Address: '10.0.0.5/24', ipv6Address: 'fd00::5/64' } },
      detected('10.0.0.6/24'),
    );
    assert.deepEqual(r.spec.bgp, { ipv4Address: '10.0.0.5/24', ipv6Address: 'fd00::5/64' });
    assert.equal(r.changed, false);
    assert.deepEqual(configure({ IP: 'none' }, {}, detected('10.0.0.6/24')).spec.bgp, {});
  });

  it('gives_an_explicit_ipv4_address_its_interfaces_prefix_and_an_ipv6_one_none', () => {
    const r = configure({ IP: '10.0.0.5', IP6: 'fd00::5' }, {}, detected());
    assert.deepEqual(r.spec.bgp, { ipv4Address: '10.0.0.5/24', ipv6Address: 'fd00::5/128' });
    assert.deepEqual(r.spec.interfaces, [
      { name: 'ens4', addresses: ['192.168.9.4'] },
      { name: 'eth0', addresses: ['10.0.0.5', 'fd00::5'] },
    ]);
    const away = configure({ IP: '203.0.113.9' }, {}, detected());
    assert.equal(away.spec.bgp?.ipv4Address, '203.0.113.9/32');
    assert.deepEqual(away.log.at('warn'), [
      'unable to confirm IPv4 address 203.0.113.9 is assigned to this host',
    ]);
    assert.equal(configure({ IP: '10.0.0.5/16' }, {}, detected()).spec.bgp?.ipv4Address, '10.0.0.5/16');
  });

  it('detects_only_what_the_settings_may_need', async () => {
    const host = typicalHost();
    const log = new RecordingLogger();
    const none = await detectAddresses(
      settingsFrom({ CALICO_NETWORKING_BACKEND: 'none' }),
      host,
      undefined,
      log,
    );
    assert.deepEqual(none, { interfaces: [], ipv4: undefined, ipv6: undefined });
    const fixed = await detectAddresses(
      settingsFrom({ IP: '10.0.0.5', IP6: 'autodetect' }),
      host,
      undefined,
      log,
    );
    assert.equal(fixed.ipv4, undefined);
    assert.equal(fixed.ipv6?.ok, true);
    const dflt = await detectAddresses(settingsFrom({}), host, undefined, log);
    assert.equal(dflt.ipv4?.ok, true);
    assert.equal(dflt.ipv6, undefined);
  });
});

/** A memory backend where another writer changes the Node just before our next update of it. */
class RacingBackend extends MemoryBackend {
  races = 0;
  override async update(obj: AnyResource): Promise<AnyResource> {
    if (obj.kind === 'Node' && this.races > 0) {
      this.races--;
      const cur = (await this.get({ kind: 'Node', name: obj.metadata.name }))!;
      cur.metadata.labels = { ...cur.metadata.labels, raced: String(this.races) };
      await super.update(cur);
    }
    return super.update(obj);
  }
}

async function register(
  ds: Datastore,
  env: Record<string, string>,
  host: HostAddresses = detected('10.0.0.5/24'),
  log = new RecordingLogger(),
) {
  const settings: Settings = settingsFrom(env);
  return registerNode({ datastore: ds, settings, host, log });
}

describe("this node's Node resource", () => {
  it('creates_the_node_with_its_address_and_as_number', async () => {
    const { ds } = datastore();
    const r = await register(ds, { AS: '64600' });
    assert.equal(r.written, 'created');
    const n = await nodeOf(ds);
    assert.deepEqual(n.spec.bgp, { ipv4Address: '10.0.0.5/24', asNumber: 64600 });
    assert.deepEqual(r.node, n);
  });

  it('keeps_labels_route_reflector_cluster_id_and_tunnel_addresses_on_update', async () => {
    const { ds } = datastore();
    await seed(
      ds,
      `apiVersion: projectcalico.org/v3
kind: Node
metadata: { name: node-a, labels: { rack: r1 } }
spec:
  bgp: { ipv4Address: 10.0.0.9/24, routeReflectorClusterID: 224.0.0.1, ipv4IPIPTunnelAddr: 10.65.0.1 }
  ipv4VXLANTunnelAddr: 10.65.0.2
`,
    );
    const r = await register(ds, { IP: 'autodetect', AS: '65001' });
    assert.equal(r.written, 'updated');
    const n = await nodeOf(ds);
    assert.deepEqual(n.metadata.labels, { rack: 'r1' });
    assert.deepEqual(n.spec.bgp, {
      ipv4Address: '10.0.0.5/24',
      routeReflectorClusterID: '224.0.0.1',
      ipv4IPIPTunnelAddr: '10.65.0.1',
      asNumber: 65001,
    });
    assert.equal(n.spec.ipv4VXLANTunnelAddr, '10.65.0.2');
  });

  it('writes_nothing_when_nothing_changed', async () => {
    const { ds } = datastore();
    await register(ds, {});
    const before = await nodeOf(ds);
    const r = await register(ds, {});
    assert.equal(r.written, 'unchanged');
    assert.equal((await nodeOf(ds)).metadata.resourceVersion, before.metadata.resourceVersion);
    // AS given means written, as configureASNumber does
    assert.equal((await register(ds, { AS: '64512' })).written, 'updated');
  });

  it('refuses_an_address_another_node_has_and_clears_it_only_when_autodetected', async () => {
    const { ds } = datastore();
    await seed(
      ds,
      `kind: Node\napiVersion: projectcalico.org/v3\nmetadata: { name: node-b }\nspec: { bgp: { ipv4Address: 10.0.0.5/16 } }\n`,
    );
    await seed(
      ds,
      `kind: Node\napiVersion: projectcalico.org/v3\nmetadata: { name: node-a }\nspec: { bgp: { ipv4Address: 10.0.0.77/24, ipv6Address: fd00::77/64 } }\n`,
    );
    await assert.rejects(register(ds, { IP: 'autodetect' }), (e) => {
      assert.ok(e instanceof AddressConflictError);
      assert.deepEqual(e.conflicts, [{ family: 4, address: '10.0.0.5', node: 'node-b' }]);
      assert.match(e.message, /IPv4 address 10\.0\.0\.5 of node node-a is already used by Node node-b/);
      return true;
    });
    // the stale autodetected address is gone, so another node may take it (startup.go:416)
    assert.deepEqual((await nodeOf(ds)).spec.bgp, { ipv6Address: 'fd00::77/64' });

    const { ds: ds2 } = datastore();
    await seed(
      ds2,
      `kind: Node\napiVersion: projectcalico.org/v3\nmetadata: { name: node-b }\nspec: { bgp: { ipv4Address: 10.0.0.5/24 } }\n`,
    );
    await seed(
      ds2,
      `kind: Node\napiVersion: projectcalico.org/v3\nmetadata: { name: node-a }\nspec: { bgp: { ipv4Address: 10.0.0.77/24 } }\n`,
    );
    await assert.rejects(register(ds2, { IP: '10.0.0.5' }), AddressConflictError);
    assert.deepEqual((await nodeOf(ds2)).spec.bgp, { ipv4Address: '10.0.0.77/24' });
    // unless the check is off
    assert.equal((await register(ds2, { IP: '10.0.0.5', DISABLE_NODE_IP_CHECK: 'true' })).written, 'updated');
  });

  it('warns_when_its_own_address_changes', async () => {
    const { ds } = datastore();
    await register(ds, { IP: '10.0.0.5' });
    const log = new RecordingLogger();
    await register(ds, { IP: '192.168.9.4' }, detected(), log);
    assert.ok(
      log
        .at('warn')
        .includes(
          'IPv4 address has changed; this could happen if there are multiple nodes with the same name',
        ),
    );
  });

  it('clears_autodetected_addresses_when_autodetection_fails_on_an_existing_node', async () => {
    const { ds } = datastore();
    await register(ds, { IP: 'autodetect' }, detected('10.0.0.5/24'));
    // IPv6 is asked for now and not found; the Node has none to keep: an error, and as in
    // startup.go:383 every autodetected family is cleared, IPv4 too.
    await assert.rejects(
      register(ds, { IP: 'autodetect', IP6: 'autodetect' }, detected('10.0.0.5/24')),
      AutodetectionError,
    );
    assert.equal((await nodeOf(ds)).spec.bgp, undefined);
    // a configured IPv4 address is not cleared
    await register(ds, { IP: '10.0.0.5' }, detected());
    await assert.rejects(register(ds, { IP: '10.0.0.5', IP6: 'autodetect' }, detected()), AutodetectionError);
    assert.deepEqual((await nodeOf(ds)).spec.bgp, { ipv4Address: '10.0.0.5/24' });
  });

  it('refuses_a_node_with_no_address_at_all', async () => {
    const { ds } = datastore();
    await assert.rejects(
      register(ds, { IP: 'none' }),
      (e) => e instanceof NoAddressError && /node node-a has no IPv4 or IPv6 address/.test(e.message),
    );
    assert.equal(await ds.get('Node', 'node-a'), undefined);
  });

  it('writes_no_bgp_details_with_networking_backend_none', async () => {
    const { ds } = datastore();
    const r = await register(ds, { CALICO_NETWORKING_BACKEND: 'none', AS: '65000' });
    assert.deepEqual(r, { node: undefined, written: 'unchanged' });
    await register(ds, { CALICO_NETWORKING_BACKEND: 'none', CALICO_K8S_NODE_REF: 'k8s-a' });
    assert.deepEqual((await nodeOf(ds)).spec, { orchRefs: [{ nodeName: 'k8s-a', orchestrator: 'k8s' }] });
  });

  it('reads_the_node_again_and_redoes_its_changes_when_another_writer_got_in_first', async () => {
    const backend = new RacingBackend();
    const ds = new Datastore(backend);
    await register(ds, {});
    backend.races = 2;
    const log = new RecordingLogger();
    const r = await register(ds, { AS: '65010' }, detected('10.0.0.5/24'), log);
    assert.equal(r.written, 'updated');
    const n: Node = await nodeOf(ds);
    assert.deepEqual(n.metadata.labels, { raced: '0' }); // the other writer's change survives
    assert.equal(n.spec.bgp?.asNumber, 65010); // and ours is in
    assert.equal(
      log.at('info').filter((m) => m.startsWith('the Node changed while it was being written')).length,
      2,
    );
  });

  it('gives_up_on_a_node_that_never_stops_changing', async () => {
    const backend = new RacingBackend();
    const ds = new Datastore(backend);
    await register(ds, {});
    backend.races = 1000;
    await assert.rejects(
      registerNode({
        datastore: ds,
        settings: settingsFrom({ AS: '1' }),
        host: detected('10.0.0.5/24'),
        log: new RecordingLogger(),
        maxAttempts: 3,
      }),
      /writing Node node-a: gave up after 3 attempts/,
    );
  });
});
