// WorkloadEndpoints over the in-memory fakes: Calico's names, what ADD writes (as its last
// step, rolled back with the rest), CHECK (each field compared and named), DEL (absent is
// fine), GC (this node's endpoints of this network only), and one datastore session per
// invocation.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WorkloadEndpointDoc } from '../src/commands/interfaces.js';
import { FakeIpam } from '../src/fakes/ipam.js';
import { workloadEndpointName } from '../src/spec/names.js';
import type { JsonObject } from '../src/spec/result.js';
import { assertError, attachEnv, CID, conf, NETNS, text, World } from './support.js';

const VETH = 'calic440f455693'; // sha1("default.nginx"), as in plugin.test.ts
const NAME = 'node--1-k8s-nginx-eth0';

describe('workloadEndpointName', () => {
  it('matches_calicos_own_test_vectors', () => {
    // libcalico-go v3.31.7 lib/names/workloadendpoint_test.go
    assert.equal(workloadEndpointName('node-1', 'k8s', 'pod-name', 'eth0'), 'node--1-k8s-pod--name-eth0');
    assert.equal(
      workloadEndpointName('node-1', 'cni', 'abcdefa0123456', 'eth0'),
      'node--1-cni-abcdefa0123456-eth0',
    );
  });

  it('refuses_empty_parts_and_parts_beginning_or_ending_with_a_dash', () => {
    assert.throws(() => workloadEndpointName('', 'k8s', 'p', 'eth0'), /node is empty/);
    assert.throws(() => workloadEndpointName('n', 'k8s', '-p', 'eth0'), /pod "-p" must not begin or end/);
    assert.throws(() => workloadEndpointName('n-', 'k8s', 'p', 'eth0'), /node "n-"/);
  });
});

describe('ADD and the WorkloadEndpoint', () => {
  it('writes_the_endpoint_with_calicos_name_labels_and_spec', async () => {
    const w = new World();
    const out = await w.add();
    const mac = (out['interfaces'] as JsonObject[])[1]!['mac'];
    assert.deepEqual(
      [...w.endpoints.items.values()],
      [
        {
          namespace: 'default',
          name: NAME,
          labels: {
            'projectcalico.org/namespace': 'default',
            'projectcalico.org/orchestrator': 'k8s',
            'cni.tabby.dev/network': 'k8s-pod-network',
          },
          spec: {
            orchestrator: 'k8s',
            node: 'node-1',
            containerID: CID,
            pod: 'nginx',
            endpoint: 'eth0',
            interfaceName: VETH,
            ipNetworks: ['10.65.0.1/32'],
            mac,
          },
        },
      ],
    );
    assert.deepEqual(w.sessions, { opened: 1, closed: 1 });
  });

  it('puts_dual_stack_addresses_in_ipNetworks', async () => {
    const w = new World();
    w.ipam = new FakeIpam({ ipv4: true, ipv6: true });
    await w.add();
    assert.deepEqual(w.endpoints.items.get(`default/${NAME}`)?.spec.ipNetworks, [
      '10.65.0.1/32',
      'fd00:65::1/128',
    ]);
  });

  it('uses_the_pod_namespace_and_without_pod_args_the_cni_orchestrator', async () => {
    const w = new World();
    await w.add(conf(), { CNI_ARGS: 'K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=core-dns-1' });
    await w.add(conf(), { CNI_ARGS: '', CNI_CONTAINERID: 'abc123', CNI_NETNS: NETNS, CNI_IFNAME: 'net1' });
    const cni = w.endpoints.items.get('default/node--1-cni-abc123-net1');
    assert.ok(w.endpoints.items.has('kube-system/node--1-k8s-core--dns--1-eth0'));
    assert.equal(cni?.spec.orchestrator, 'cni');
    assert.equal(cni?.spec.workload, 'abc123');
    assert.equal(cni?.spec.pod, undefined);
    assert.equal(cni?.labels['projectcalico.org/orchestrator'], 'cni');
  });

  it('rolls_back_veth_and_address_when_the_endpoint_cannot_be_written', async () => {
    const w = new World();
    w.endpoints.fail('put', new Error('etcd said no'));
    assertError(
      await w.invoke(attachEnv('ADD'), conf()),
      100,
      /WorkloadEndpoint default\/node--1.*etcd said no/,
    );
    assert.deepEqual(w.ipam.inUse, []);
    assert.equal(w.dataplane.hostVeths.size, 0);
    assert.equal(w.endpoints.items.size, 0);
    assert.deepEqual(w.sessions, { opened: 1, closed: 1 });
  });

  it('answers_11_when_the_datastore_is_busy', async () => {
    const w = new World();
    w.endpoints.fail('put', Object.assign(new Error('lock timeout'), { code: 'Unavailable' }));
    assertError(await w.invoke(attachEnv('ADD'), conf()), 11, /lock timeout/);
    assert.deepEqual(w.ipam.inUse, []);
  });

  it('refuses_a_pod_name_calico_cannot_name_before_doing_anything', async () => {
    const w = new World();
    const r = await w.invoke(
      attachEnv('ADD', { CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=bad-' }),
      conf(),
    );
    assertError(r, 4, /pod "bad-"/);
    assert.deepEqual(w.ipam.calls, []);
    assert.deepEqual(w.dataplane.calls, []);
  });
});

describe('DEL and the WorkloadEndpoint', () => {
  it('deletes_it_and_succeeds_when_it_is_already_gone', async () => {
    const w = new World();
    await w.add();
    for (let i = 0; i < 2; i++) assert.equal((await w.invoke(attachEnv('DEL'), conf())).code, 0);
    assert.equal(w.endpoints.items.size, 0);
    assert.deepEqual(
      w.endpoints.calls.filter((c) => c.startsWith('delete')),
      [`delete default/${NAME}`, `delete default/${NAME}`],
    );
  });

  it('still_removes_veth_and_address_when_the_delete_fails_and_reports_it', async () => {
    const w = new World();
    await w.add();
    w.endpoints.fail('delete', new Error('apiserver 500'));
    assertError(await w.invoke(attachEnv('DEL'), conf()), 100, /deleting WorkloadEndpoint.*apiserver 500/);
    assert.equal(w.dataplane.hostVeths.size, 0);
    assert.deepEqual(w.ipam.inUse, []);
    assert.equal((await w.invoke(attachEnv('DEL'), conf())).code, 0, 'a retry finishes the job');
    assert.equal(w.endpoints.items.size, 0);
  });
});

describe('CHECK and the WorkloadEndpoint', () => {
  const KEY = `default/${NAME}`;
  async function added(w: World): Promise<JsonObject> {
    return conf({ prevResult: await w.add() });
  }
  /** Changes the stored endpoint's spec as another writer (or a bad edit) would. */
  function edit(w: World, spec: Partial<WorkloadEndpointDoc['spec']>): void {
    const cur = w.endpoints.items.get(KEY)!;
    w.endpoints.items.set(KEY, { ...cur, spec: { ...cur.spec, ...spec } });
  }

  it('passes_when_the_stored_endpoint_is_what_ADD_wrote', async () => {
    const w = new World();
    w.ipam = new FakeIpam({ ipv4: true, ipv6: true });
    const c = await added(w);
    const r = await w.invoke(attachEnv('CHECK'), c);
    assert.equal(r.code, 0, r.stdout);
    assert.ok(w.endpoints.calls.includes(`get ${KEY}`));
  });

  it('fails_with_106_when_the_endpoint_is_missing', async () => {
    const w = new World();
    const c = await added(w);
    w.endpoints.items.clear();
    assertError(
      await w.invoke(attachEnv('CHECK'), c),
      106,
      /WorkloadEndpoint default\/node--1-k8s-nginx-eth0 is missing from the datastore/,
    );
  });

  // One row per compared field: the change, and what the message must name.
  const mismatches: [string, Partial<WorkloadEndpointDoc['spec']>, RegExp][] = [
    ['container_id', { containerID: 'other' }, /spec\.containerID is "other", not "c0ffee01"/],
    ['node', { node: 'node-2' }, /spec\.node is "node-2", not "node-1"/],
    ['endpoint', { endpoint: 'eth9' }, /spec\.endpoint is "eth9", not "eth0"/],
    ['interface_name', { interfaceName: 'cali00000000000' }, /spec\.interfaceName is "cali00000000000"/],
    ['ip_networks', { ipNetworks: ['10.65.0.99/32'] }, /spec\.ipNetworks is \["10\.65\.0\.99\/32"\]/],
    ['an_extra_ip_network', { ipNetworks: ['10.65.0.1/32', 'fd00::1/128'] }, /spec\.ipNetworks/],
    ['mac', { mac: '02:aa:bb:cc:dd:ee' }, /spec\.mac is "02:aa:bb:cc:dd:ee", not "02:00:00:00:00:01"/],
  ];
  for (const [name, change, re] of mismatches)
    it(`fails_with_106_naming_a_different_${name}`, async () => {
      const w = new World();
      const c = await added(w);
      edit(w, change);
      assertError(await w.invoke(attachEnv('CHECK'), c), 106, re);
    });

  it('names_every_field_that_differs_at_once', async () => {
    const w = new World();
    const c = await added(w);
    edit(w, { node: 'node-2', mac: '02:aa:bb:cc:dd:ee' });
    const r = await w.invoke(attachEnv('CHECK'), c);
    assertError(r, 106, /spec\.node/);
    assert.match(text(r.out?.['details']), /spec\.mac/);
  });

  it('compares_addresses_not_their_spelling_and_a_mac_in_any_case', async () => {
    const w = new World();
    w.ipam = new FakeIpam({ ipv4: true, ipv6: true });
    const c = await added(w);
    const cur = w.endpoints.items.get(KEY)!;
    edit(w, {
      ipNetworks: ['fd00:0065:0000::0001/128', '10.65.0.1/32'],
      mac: cur.spec.mac.toUpperCase(),
    });
    assert.equal((await w.invoke(attachEnv('CHECK'), c)).code, 0);
  });

  it('skips_the_mac_when_the_endpoint_holds_none', async () => {
    const w = new World();
    const c = await added(w);
    edit(w, { mac: '' });
    assert.equal((await w.invoke(attachEnv('CHECK'), c)).code, 0);
  });

  it('answers_11_when_the_datastore_is_busy_and_100_when_it_fails', async () => {
    const w = new World();
    const c = await added(w);
    w.endpoints.fail('get', Object.assign(new Error('lock timeout'), { code: 'Unavailable' }));
    assertError(await w.invoke(attachEnv('CHECK'), c), 11, /reading WorkloadEndpoint.*lock timeout/);
    w.endpoints.fail('get', new Error('stored object is invalid'));
    assertError(await w.invoke(attachEnv('CHECK'), c), 100, /reading WorkloadEndpoint.*invalid/);
  });
});

describe('GC and WorkloadEndpoints', () => {
  const gcEnv = { CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' };
  async function pods(w: World): Promise<void> {
    for (const id of ['a1', 'b2', 'c3']) {
      w.dataplane.addNetns(`/run/netns/${id}`);
      await w.add(conf(), { CNI_CONTAINERID: id, CNI_NETNS: `/run/netns/${id}`, CNI_ARGS: '' });
    }
    // another node's, and another network's, endpoint: GC leaves both alone
    const a1 = w.endpoints.items.get('default/node--1-cni-a1-eth0')!;
    await w.endpoints.put({ ...a1, name: 'node--2-cni-x-eth0', spec: { ...a1.spec, node: 'node-2' } });
    await w.endpoints.put({
      ...a1,
      name: 'node--1-cni-y-eth0',
      labels: { ...a1.labels, 'cni.tabby.dev/network': 'other-net' },
    });
  }

  it('deletes_this_nodes_endpoints_of_this_network_not_in_the_valid_attachments', async () => {
    const w = new World();
    await pods(w);
    const r = await w.invoke(
      gcEnv,
      conf({
        'cni.dev/valid-attachments': [
          { containerID: 'b2', ifname: 'eth0' },
          // the same container under another interface name is not this endpoint
          { containerID: 'c3', ifname: 'eth1' },
        ],
      }),
    );
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual([...w.endpoints.items.keys()].sort(), [
      'default/node--1-cni-b2-eth0',
      'default/node--1-cni-y-eth0',
      'default/node--2-cni-x-eth0',
    ]);
    assert.deepEqual([...w.ipam.handles.keys()].sort(), ['k8s-pod-network.b2', 'k8s-pod-network.c3']);
  });

  it('keeps_going_after_a_failed_delete_and_reports_it_as_108', async () => {
    const w = new World();
    await pods(w);
    w.endpoints.fail('delete', new Error('apiserver 500'));
    const r = await w.invoke(gcEnv, conf({ 'cni.dev/valid-attachments': [] }));
    assertError(r, 108, /WorkloadEndpoint default\/node--1-cni-a1-eth0.*apiserver 500/);
    assert.deepEqual([...w.endpoints.items.keys()].sort(), [
      'default/node--1-cni-a1-eth0',
      'default/node--1-cni-y-eth0',
      'default/node--2-cni-x-eth0',
    ]);
    assert.deepEqual([...w.ipam.handles.keys()], [], 'every address was still released');
  });
});
