// The tabby plugin as a function of (environment, stdin) -> (stdout, exit code), over the
// in-memory Dataplane and IpamClient: every command, every error code it can return,
// rollback after a failure at each ADD step, DEL twice, CHECK naming what differs, GC.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CniError } from '../src/spec/errors.js';
import { HOST_LINK_LOCAL6 } from '../src/fakes/dataplane.js';
import { FakeIpam } from '../src/fakes/ipam.js';
import type { JsonObject } from '../src/spec/result.js';
import { assertError, attachEnv, CID, conf, NETNS, text, World } from './support.js';

const VETH = 'calic440f455693'; // sha1("default.nginx"), computed independently (python hashlib)

describe('VERSION', () => {
  it('lists_the_supported_versions_and_echoes_the_asked_version', async () => {
    const r = await new World().invoke({ CNI_COMMAND: 'VERSION' }, { cniVersion: '0.4.0' });
    assert.equal(r.code, 0);
    assert.deepEqual(r.out, {
      cniVersion: '0.4.0',
      supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
    });
  });

  it('answers_with_the_current_version_when_stdin_is_not_a_config', async () => {
    const r = await new World().invoke({ CNI_COMMAND: 'VERSION' }, 'not json');
    assert.equal(r.code, 0);
    assert.equal(r.out?.['cniVersion'], '1.1.0');
  });
});

describe('environment errors (code 4)', () => {
  const w = new World();
  it('names_a_missing_CNI_COMMAND', async () => {
    assertError(await w.invoke({}, conf()), 4, /CNI_COMMAND/);
  });
  it('names_an_unknown_command', async () => {
    assertError(
      await w.invoke({ ...attachEnv('ADD'), CNI_COMMAND: 'UPDATE' }, conf()),
      4,
      /CNI_COMMAND.*UPDATE/,
    );
  });
  it('names_every_missing_attachment_variable', async () => {
    const r = await w.invoke({ CNI_COMMAND: 'ADD', CNI_NETNS: NETNS }, conf());
    assertError(r, 4, /\[CNI_CONTAINERID,CNI_IFNAME\]/);
  });
  it('lets_DEL_go_without_CNI_NETNS_but_not_without_CNI_IFNAME', async () => {
    const env = attachEnv('DEL');
    delete env['CNI_NETNS'];
    assert.equal((await w.invoke(env, conf())).code, 0);
    delete env['CNI_IFNAME'];
    assertError(await w.invoke(env, conf()), 4, /CNI_IFNAME/);
  });
  it('requires_CNI_PATH_for_GC', async () => {
    assertError(
      await w.invoke({ CNI_COMMAND: 'GC' }, conf({ 'cni.dev/valid-attachments': [] })),
      4,
      /CNI_PATH/,
    );
  });
  it('rejects_a_container_id_with_bad_characters', async () => {
    assertError(
      await w.invoke(attachEnv('ADD', { CNI_CONTAINERID: '-abc/def' }), conf()),
      4,
      /CNI_CONTAINERID/,
    );
  });
  it('rejects_interface_names_linux_would_refuse', async () => {
    for (const n of ['eth0-is-far-too-long', 'a/b', 'a b', '..'])
      assertError(await w.invoke(attachEnv('ADD', { CNI_IFNAME: n }), conf()), 4, /CNI_IFNAME/);
  });
  it('rejects_malformed_or_unknown_CNI_ARGS_unless_IgnoreUnknown', async () => {
    assertError(
      await w.invoke(attachEnv('ADD', { CNI_ARGS: 'K8S_POD_NAME' }), conf()),
      4,
      /CNI_ARGS.*K8S_POD_NAME/,
    );
    assertError(await w.invoke(attachEnv('ADD', { CNI_ARGS: 'FOO=1' }), conf()), 4, /CNI_ARGS.*FOO/);
    assertError(
      await w.invoke(attachEnv('ADD', { CNI_ARGS: 'IgnoreUnknown=maybe' }), conf()),
      4,
      /IgnoreUnknown/,
    );
    // podman's CNI backend passes K8S_POD_NAME alone: not a pod, the veth named from the container ID
    const podman = await new World().invoke(
      attachEnv('ADD', { CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web' }),
      conf(),
    );
    assert.equal(podman.code, 0, podman.stdout);
    const ifaces = podman.out?.['interfaces'] as { name: string }[];
    assert.equal(ifaces[0]?.name, 'cali72069b3a090'); // sha1("c0ffee01"), python hashlib
    const ok = await new World().invoke(attachEnv('ADD', { CNI_ARGS: 'IgnoreUnknown=true;FOO=1' }), conf());
    assert.equal(ok.code, 0, ok.stdout);
  });
});

describe('config errors (codes 1, 2, 5, 6, 7)', () => {
  const w = new World();
  it('fails_with_6_when_stdin_is_not_a_JSON_object', async () => {
    assertError(await w.invoke(attachEnv('ADD'), '{"name":'), 6);
    assertError(await w.invoke(attachEnv('ADD'), '[1]'), 6, /not a JSON object/);
  });
  it('fails_with_5_when_stdin_cannot_be_read', async () => {
    const broken: AsyncIterable<string> = {
      [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new Error('EIO')) }),
    };
    assertError(await w.invoke(attachEnv('ADD'), broken), 5, /EIO/);
  });
  it('fails_with_1_for_versions_it_does_not_speak', async () => {
    assertError(await w.invoke(attachEnv('ADD'), conf({ cniVersion: '0.2.0' })), 1, /0\.2\.0/);
    const noVersion = conf();
    delete noVersion['cniVersion'];
    assertError(await w.invoke(attachEnv('ADD'), noVersion), 1, /0\.1\.0/);
    assertError(await w.invoke(attachEnv('ADD'), conf({ cniVersion: '2.0.0' })), 1);
  });
  it('fails_with_1_for_CHECK_before_0_4_0_and_GC_or_STATUS_before_1_1_0', async () => {
    assertError(await w.invoke(attachEnv('CHECK'), conf({ cniVersion: '0.3.1' })), 1, /CHECK/);
    const gc = conf({ cniVersion: '1.0.0', 'cni.dev/valid-attachments': [] });
    assertError(await w.invoke({ CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' }, gc), 1, /GC/);
    assertError(await w.invoke({ CNI_COMMAND: 'STATUS' }, conf({ cniVersion: '1.0.0' })), 1, /STATUS/);
  });
  it('fails_with_7_naming_the_field', async () => {
    const cases: [JsonObject, RegExp][] = [
      [{ name: '' }, /name/],
      [{ name: 'a/b' }, /name/],
      [{ type: 7 }, /type/],
      [{ mtu: 20 }, /mtu/],
      [{ mtu: 'big' }, /mtu/],
      [{ ipam: {} }, /ipam\.type/],
      [{ ipam: { type: '../x' } }, /ipam\.type/],
      [{ ipam: { type: 'tabby-ipam', assign_ipv4: 'yes' } }, /ipam\.assign_ipv4/],
      [{ ipam: { type: 'tabby-ipam', assign_ipv4: false } }, /assign_ipv4/],
      [{ datastore: { type: 'zookeeper' } }, /datastore\.type/],
      [{ datastore: { type: 'yaml', dir: 'relative' } }, /datastore\.dir/],
      [{ datastore: { type: 'etcdv3', endpoints: 'ftp://x' } }, /datastore\.endpoints/],
      [{ log_level: 'loud' }, /log_level/],
      [{ nodename: '' }, /nodename/],
      [{ dns: { nameservers: '8.8.8.8' } }, /dns\.nameservers/],
      [
        { prevResult: { cniVersion: '1.1.0', ips: [{ address: '10.0.0.1' }] } },
        /prevResult\.ips\[0\]\.address/,
      ],
      [
        { prevResult: { cniVersion: '0.4.0', ips: [{ version: '6', address: '10.0.0.1/32' }] } },
        /ips\[0\]\.version/,
      ],
      [{ prevResult: { ips: [{ address: '10.0.0.1/32', interface: 2 }] } }, /ips\[0\]\.interface/],
    ];
    for (const [extra, re] of cases) assertError(await w.invoke(attachEnv('ADD'), conf(extra)), 7, re);
  });
  it('fails_ADD_with_7_without_an_ipam_section', async () => {
    const c = conf();
    delete c['ipam'];
    assertError(await w.invoke(attachEnv('ADD'), c), 7, /ipam/);
  });
  it('fails_with_2_for_fields_tabby_does_not_support_naming_key_and_value', async () => {
    assertError(
      await w.invoke(attachEnv('ADD'), conf({ policy: { type: 'k8s' } })),
      2,
      /policy=\{"type":"k8s"\}/,
    );
    assertError(
      await w.invoke(attachEnv('ADD'), conf({ datastore: { type: 'yaml', dir: '/x', endpionts: 'a' } })),
      2,
      /datastore\.endpionts="a"/,
    );
    assertError(
      await w.invoke(attachEnv('ADD'), conf({ ipam: { type: 'tabby-ipam', subnet: '10.0.0.0/8' } })),
      2,
      /ipam\.subnet/,
    );
  });
  it('answers_errors_in_the_version_of_the_config', async () => {
    const r = await w.invoke(attachEnv('ADD'), conf({ cniVersion: '0.4.0', mtu: 1 }));
    assert.equal(r.out?.['cniVersion'], '0.4.0');
  });
});

describe('ADD', () => {
  it('wires_the_pod_and_returns_a_1_1_0_result', async () => {
    const w = new World();
    const out = await w.add();
    assert.deepEqual(out, {
      cniVersion: '1.1.0',
      interfaces: [
        { name: VETH, mac: 'ee:ee:ee:ee:ee:ee' },
        { name: 'eth0', mac: '02:00:00:00:00:01', mtu: 1500, sandbox: NETNS },
      ],
      ips: [{ interface: 1, address: '10.65.0.1/32', gateway: '169.254.1.1' }],
      routes: [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }],
    });
    const link = w.dataplane.podLink(NETNS, 'eth0')!;
    assert.deepEqual([...link.addresses], ['10.65.0.1/32']);
    assert.deepEqual([...link.routes], ['169.254.1.1/32 scope link', '0.0.0.0/0 via 169.254.1.1']);
    const host = w.dataplane.hostVeths.get(VETH)!;
    assert.deepEqual([...host.routes], ['10.65.0.1/32']);
    assert.equal(host.sysctls.get(`net.ipv4.conf.${VETH}.proxy_arp`), '1');
    const h = w.ipam.handles.get(`k8s-pod-network.${CID}`)!;
    assert.equal(h.req.node, 'node-1');
    assert.deepEqual(h.req.attrs, {
      namespace: 'default',
      pod: 'nginx',
      timestamp: '2025-01-02T03:04:05.000Z',
    });
    // one datastore session for IPAM and the endpoint, closed at the end
    assert.deepEqual(w.sessions, { opened: 1, closed: 1 });
  });

  it('gives_ipv6_pods_a_default_route_via_the_host_veth_link_local_address', async () => {
    const w = new World();
    w.ipam = new FakeIpam({ ipv4: true, ipv6: true });
    const out = await w.add(conf({ mtu: 1440 }));
    assert.deepEqual(out['ips'], [
      { interface: 1, address: '10.65.0.1/32', gateway: '169.254.1.1' },
      { interface: 1, address: 'fd00:65::1/128', gateway: HOST_LINK_LOCAL6 },
    ]);
    assert.deepEqual(out['routes'], [
      { dst: '0.0.0.0/0', gw: '169.254.1.1' },
      { dst: '::/0', gw: HOST_LINK_LOCAL6 },
    ]);
    assert.equal(w.dataplane.podLink(NETNS, 'eth0')!.mtu, 1440);
  });

  it('writes_the_result_in_the_asked_version', async () => {
    for (const v of ['0.3.0', '0.3.1', '0.4.0']) {
      const out = await new World().add(conf({ cniVersion: v, mtu: 1400 }));
      assert.equal(out['cniVersion'], v);
      assert.deepEqual(out['ips'], [
        { version: '4', interface: 1, address: '10.65.0.1/32', gateway: '169.254.1.1' },
      ]);
      // 0.x interfaces have no mtu field
      assert.deepEqual((out['interfaces'] as JsonObject[])[1], {
        name: 'eth0',
        mac: '02:00:00:00:00:01',
        sandbox: NETNS,
      });
    }
    const out = await new World().add(conf({ cniVersion: '1.0.0' }));
    assert.deepEqual(out['ips'], [{ interface: 1, address: '10.65.0.1/32', gateway: '169.254.1.1' }]);
  });

  it('appends_to_a_prevResult_with_interface_indexes_shifted', async () => {
    const prevResult = {
      cniVersion: '0.4.0',
      interfaces: [{ name: 'other0', sandbox: '/run/netns/x' }],
      ips: [{ version: '4', address: '192.168.0.5/24', interface: 0 }],
      dns: { nameservers: ['10.96.0.10'] },
    };
    const out = await new World().add(conf({ prevResult }));
    assert.equal((out['interfaces'] as JsonObject[]).length, 3);
    assert.deepEqual(out['ips'], [
      { interface: 0, address: '192.168.0.5/24' },
      { interface: 2, address: '10.65.0.1/32', gateway: '169.254.1.1' },
    ]);
    assert.deepEqual(out['dns'], { nameservers: ['10.96.0.10'] });
  });

  it('names_the_host_veth_after_the_container_id_without_pod_args', async () => {
    const w = new World();
    const out = await w.add(conf(), { CNI_ARGS: '', CNI_CONTAINERID: '0123456789abcdef' });
    assert.equal((out['interfaces'] as JsonObject[])[0]!['name'], 'calife5567e8d76');
    assert.deepEqual(w.ipam.handles.get('k8s-pod-network.0123456789abcdef')!.req.attrs, {
      timestamp: '2025-01-02T03:04:05.000Z',
    });
  });

  it('takes_the_config_nodename_over_the_default', async () => {
    const w = new World();
    await w.add(conf({ nodename: 'node-7' }));
    assert.equal([...w.ipam.handles.values()][0]!.req.node, 'node-7');
  });
});

describe('ADD failures and rollback', () => {
  it('fails_with_101_when_no_address_is_left_and_changes_nothing', async () => {
    const w = new World();
    w.ipam = new FakeIpam({ size: 0 });
    assertError(await w.invoke(attachEnv('ADD'), conf()), 101, /exhausted/);
    assert.deepEqual(w.dataplane.calls, []);
  });

  it('fails_with_102_when_ipam_fails_otherwise', async () => {
    const w = new World();
    w.ipam.fail('allocate', new Error('node node-1 not found'));
    assertError(await w.invoke(attachEnv('ADD'), conf()), 102, /node-1 not found/);
  });

  it('passes_a_transient_ipam_error_through_as_11', async () => {
    const w = new World();
    w.ipam.fail('allocate', new CniError(11, 'IPAM allocation: the datastore is busy or unreachable'));
    assertError(await w.invoke(attachEnv('ADD'), conf()), 11);
  });

  it('fails_with_104_when_the_netns_does_not_exist_and_releases_the_address', async () => {
    const w = new World();
    assertError(await w.invoke(attachEnv('ADD', { CNI_NETNS: '/run/netns/gone' }), conf()), 104, /gone/);
    assert.deepEqual(w.ipam.inUse, []);
  });

  it('fails_with_103_when_the_interface_exists_in_the_pod_and_leaves_it_alone', async () => {
    const w = new World();
    await w.add();
    // A second ADD for another container in the same netns and ifname.
    const r = await w.invoke(attachEnv('ADD', { CNI_CONTAINERID: 'c2', CNI_ARGS: '' }), conf());
    assertError(r, 103, /eth0 already exists in the container/);
    assert.ok(w.dataplane.podLink(NETNS, 'eth0'), 'the first pod keeps its interface');
    assert.deepEqual(w.ipam.inUse, ['10.65.0.1/32'], 'only the first pod holds an address');
  });

  it('fails_with_103_when_the_host_veth_name_is_taken', async () => {
    const w = new World();
    w.dataplane.addNetns('/run/netns/pod2');
    await w.add();
    const r = await w.invoke(
      attachEnv('ADD', { CNI_CONTAINERID: 'c2', CNI_NETNS: '/run/netns/pod2' }),
      conf(),
    );
    assertError(r, 103, new RegExp(`${VETH} already exists on the host`));
    assert.ok(w.dataplane.hostVeths.get(VETH)?.netns === NETNS, 'the existing veth is untouched');
  });

  for (const step of ['createVeth', 'configurePod', 'configureHost'] as const) {
    it(`rolls_back_everything_after_${step}_fails`, async () => {
      const w = new World();
      w.dataplane.fail(step, new Error(`${step} exploded`));
      assertError(await w.invoke(attachEnv('ADD'), conf()), 105, new RegExp(`${step} exploded`));
      assert.deepEqual(w.ipam.inUse, [], 'address released');
      assert.equal(w.dataplane.hostVeths.size, 0, 'veth removed');
      assert.equal(w.dataplane.netns.get(NETNS)!.size, 0, 'pod side removed');
      assert.ok(w.ipam.calls.includes(`release k8s-pod-network.${CID}`));
      // and a retry succeeds
      await w.add();
    });
  }

  it('reports_what_rollback_could_not_undo', async () => {
    const w = new World();
    w.dataplane.fail('configureHost', new Error('sysctl denied'));
    w.dataplane.fail('removeVeth', new Error('netlink busy'));
    w.ipam.fail('release', new Error('datastore down'));
    const r = await w.invoke(attachEnv('ADD'), conf());
    assertError(
      r,
      105,
      /sysctl denied.*removal of veth.*netlink busy.*release of 10\.65\.0\.1\/32.*datastore down/,
    );
  });

  it('fails_with_100_on_an_unexpected_error_outside_the_steps', async () => {
    const w = new World({ nodename: () => Promise.reject(new Error('EACCES /var/lib/calico/nodename')) });
    assertError(await w.invoke(attachEnv('ADD'), conf()), 100, /EACCES/);
  });
});

describe('DEL', () => {
  it('removes_the_veth_and_releases_the_address_and_succeeds_twice', async () => {
    const w = new World();
    await w.add();
    for (let i = 0; i < 2; i++) {
      const r = await w.invoke(attachEnv('DEL'), conf());
      assert.equal(r.code, 0, r.stdout);
      assert.equal(r.stdout, '');
    }
    assert.equal(w.dataplane.hostVeths.size, 0);
    assert.deepEqual(w.ipam.inUse, []);
  });

  it('succeeds_when_the_netns_is_already_gone', async () => {
    const w = new World();
    await w.add();
    w.dataplane.deleteNetns(NETNS);
    assert.equal((await w.invoke(attachEnv('DEL'), conf())).code, 0);
    assert.deepEqual(w.ipam.inUse, []);
  });

  it('succeeds_for_a_container_it_never_saw', async () => {
    const w = new World();
    assert.equal((await w.invoke(attachEnv('DEL', { CNI_CONTAINERID: 'never' }), conf())).code, 0);
  });

  it('still_releases_the_address_when_removing_the_veth_fails_and_reports_it', async () => {
    const w = new World();
    await w.add();
    w.dataplane.fail('removeVeth', new Error('netlink busy'));
    assertError(await w.invoke(attachEnv('DEL'), conf()), 105, /netlink busy/);
    assert.deepEqual(w.ipam.inUse, []);
    assert.equal((await w.invoke(attachEnv('DEL'), conf())).code, 0, 'a retry finishes the job');
    assert.equal(w.dataplane.hostVeths.size, 0);
  });

  it('reports_both_failures_when_veth_and_ipam_fail', async () => {
    const w = new World();
    await w.add();
    w.dataplane.fail('removeVeth', new Error('netlink busy'));
    w.ipam.fail('release', new Error('datastore down'));
    assertError(await w.invoke(attachEnv('DEL'), conf()), 105, /netlink busy.*also:.*datastore down/);
  });
});

describe('CHECK', () => {
  async function added(w: World, extra: JsonObject = {}): Promise<JsonObject> {
    const prevResult = await w.add(conf(extra));
    return conf({ ...extra, prevResult });
  }

  it('passes_right_after_ADD', async () => {
    const w = new World();
    w.ipam = new FakeIpam({ ipv4: true, ipv6: true });
    const c = await added(w);
    const r = await w.invoke(attachEnv('CHECK'), c);
    assert.equal(r.code, 0, r.stdout);
  });

  it('fails_with_106_naming_a_route_deleted_by_hand', async () => {
    const w = new World();
    const c = await added(w);
    w.dataplane.podLink(NETNS, 'eth0')!.routes.delete('0.0.0.0/0 via 169.254.1.1');
    assertError(
      await w.invoke(attachEnv('CHECK'), c),
      106,
      /route 0\.0\.0\.0\/0 via 169\.254\.1\.1 missing in the pod/,
    );
  });

  it('names_a_missing_host_route_sysctl_address_and_ipam_reservation', async () => {
    const w = new World();
    const c = await added(w);
    const host = w.dataplane.hostVeths.get(VETH)!;
    host.routes.clear();
    host.sysctls.set(`net.ipv4.conf.${VETH}.proxy_arp`, '0');
    w.dataplane.podLink(NETNS, 'eth0')!.addresses.clear();
    w.ipam.handles.clear();
    const r = await w.invoke(attachEnv('CHECK'), c);
    assertError(r, 106);
    const details = text(r.out?.['details']);
    for (const re of [
      /address 10\.65\.0\.1\/32 missing on eth0/,
      /host route 10\.65\.0\.1\/32 dev calic440f455693 missing/,
      /sysctl net\.ipv4\.conf\.calic440f455693\.proxy_arp is not 1/,
      /address 10\.65\.0\.1\/32 is not reserved for handle k8s-pod-network\.c0ffee01/,
    ])
      assert.match(details, re);
  });

  it('fails_when_prevResult_does_not_describe_this_attachment', async () => {
    const w = new World();
    const c = await added(w);
    assertError(await w.invoke(attachEnv('CHECK', { CNI_IFNAME: 'eth1' }), c), 106, /no interface eth1/);
    assertError(await w.invoke(attachEnv('CHECK'), conf()), 7, /prevResult/);
  });

  it('fails_with_104_when_the_netns_is_gone_but_the_address_is_held', async () => {
    const w = new World();
    const c = await added(w);
    w.dataplane.deleteNetns(NETNS);
    assertError(await w.invoke(attachEnv('CHECK'), c), 104);
  });

  it('fails_with_3_when_nothing_of_the_container_is_left', async () => {
    const w = new World();
    const c = await added(w);
    w.dataplane.deleteNetns(NETNS);
    w.ipam.handles.clear();
    w.endpoints.items.clear();
    assertError(await w.invoke(attachEnv('CHECK'), c), 3, /unknown/);
  });

  it('fails_with_104_not_3_while_the_workload_endpoint_is_left', async () => {
    const w = new World();
    const c = await added(w);
    w.dataplane.deleteNetns(NETNS);
    w.ipam.handles.clear();
    // DEL still has work: the endpoint would keep felix-lite routing to a dead pod.
    assertError(await w.invoke(attachEnv('CHECK'), c), 104);
  });
});

describe('GC', () => {
  const gcEnv = { CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' };
  async function three(w: World): Promise<void> {
    for (const [id, ns] of [
      ['a1', '/run/netns/a1'],
      ['b2', '/run/netns/b2'],
      ['c3', '/run/netns/c3'],
    ] as const) {
      w.dataplane.addNetns(ns);
      await w.add(conf(), { CNI_CONTAINERID: id, CNI_NETNS: ns, CNI_ARGS: '' });
    }
    w.ipam.handles.set('other-net.zz9', {
      addresses: ['10.99.0.1/32'],
      req: w.ipam.handles.get('k8s-pod-network.a1')!.req,
    });
  }

  it('releases_every_handle_of_this_network_not_in_the_valid_attachments', async () => {
    const w = new World();
    await three(w);
    const r = await w.invoke(
      gcEnv,
      conf({ 'cni.dev/valid-attachments': [{ containerID: 'b2', ifname: 'eth0' }] }),
    );
    assert.equal(r.code, 0, r.stdout);
    assert.equal(r.stdout, '');
    assert.deepEqual([...w.ipam.handles.keys()].sort(), ['k8s-pod-network.b2', 'other-net.zz9']);
  });

  it('keeps_going_after_a_failed_release_and_reports_it_as_108', async () => {
    const w = new World();
    await three(w);
    w.ipam.fail('release', new Error('datastore down'));
    const r = await w.invoke(gcEnv, conf({ 'cni.dev/valid-attachments': [] }));
    assertError(r, 108, /k8s-pod-network\.a1.*datastore down/);
    assert.deepEqual([...w.ipam.handles.keys()].sort(), ['k8s-pod-network.a1', 'other-net.zz9']);
  });

  it('needs_the_valid_attachments_list', async () => {
    assertError(await new World().invoke(gcEnv, conf()), 7, /cni\.dev\/valid-attachments/);
  });
});

describe('STATUS', () => {
  const env = { CNI_COMMAND: 'STATUS' };
  it('succeeds_silently_when_ipam_can_serve', async () => {
    const r = await new World().invoke(env, conf());
    assert.equal(r.code, 0);
    assert.equal(r.stdout, '');
  });
  it('returns_50_or_51_as_ipam_reports', async () => {
    for (const code of [50, 51] as const) {
      const w = new World();
      w.ipam.statusResult = {
        ok: false,
        code,
        msg: 'pools exhausted',
        details: 'p1 (10.65.0.0/26): 64 of 64',
      };
      assertError(await w.invoke(env, conf()), code, /pools exhausted/);
    }
  });
  it('returns_50_when_ipam_cannot_be_asked', async () => {
    const w = new World();
    w.ipam.fail('status', new Error('ECONNREFUSED'));
    assertError(await w.invoke(env, conf()), 50, /ECONNREFUSED/);
  });
});
