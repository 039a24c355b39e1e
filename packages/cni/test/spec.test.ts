// The spec layer alone: version ordering, result parsing in every version and writing in
// every version (libcni's types/040 <-> types/100 conversions), and the names.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeResult, parseResult } from '../src/spec/result.js';
import { parseVersion, versionAtLeast } from '../src/spec/version.js';
import { containerOfHandle, hostVethName, ipamHandle } from '../src/spec/names.js';
import { parseCniArgs } from '../src/spec/env.js';

// SPEC.md's appendix result (bridge + host-local), as 1.1.0.
const spec110 = {
  cniVersion: '1.1.0',
  interfaces: [
    { name: 'cni0', mac: '00:11:22:33:44:55' },
    { name: 'veth3243', mac: '55:44:33:22:11:11' },
    { name: 'eth0', mac: '99:88:77:66:55:44', sandbox: '/var/run/netns/blue' },
  ],
  ips: [{ address: '10.1.0.5/16', gateway: '10.1.0.1', interface: 2 }],
  routes: [{ dst: '0.0.0.0/0' }],
  dns: { nameservers: ['10.1.0.1'] },
};

describe('results', () => {
  it('round_trips_the_spec_example_in_1_1_0', () => {
    assert.deepEqual(encodeResult(parseResult(spec110, '1.1.0', 'r'), '1.1.0'), spec110);
  });

  it('converts_down_to_0_4_0_with_ip_versions_and_back_up_without', () => {
    const r = parseResult(spec110, '1.1.0', 'r');
    const down = encodeResult(r, '0.4.0');
    assert.deepEqual(down['ips'], [
      { version: '4', address: '10.1.0.5/16', gateway: '10.1.0.1', interface: 2 },
    ]);
    assert.deepEqual(encodeResult(parseResult(down, '0.4.0', 'r'), '1.0.0'), {
      ...spec110,
      cniVersion: '1.0.0',
    });
  });

  it('drops_1_x_interface_fields_in_0_x_and_interfaces_in_an_ipam_result', () => {
    const r = parseResult(
      {
        cniVersion: '1.1.0',
        interfaces: [{ name: 'e', mtu: 9000, socketPath: '/s', pciID: '0000:00:01.0' }],
      },
      '1.1.0',
      'r',
    );
    assert.deepEqual(encodeResult(r, '0.3.1')['interfaces'], [{ name: 'e' }]);
    assert.deepEqual(encodeResult(r, '1.1.0')['interfaces'], [
      { name: 'e', mtu: 9000, socketPath: '/s', pciID: '0000:00:01.0' },
    ]);
    assert.deepEqual(encodeResult(parseResult(spec110, '1.1.0', 'r'), '1.1.0', true)['ips'], [
      { address: '10.1.0.5/16', gateway: '10.1.0.1' },
    ]);
  });

  it('takes_the_config_version_when_the_result_has_none', () => {
    const r = parseResult({ ips: [{ version: '6', address: 'fd00::5/64' }] }, '0.3.0', 'r');
    assert.deepEqual(r.ips, [{ address: 'fd00::5/64' }]);
    assert.throws(() => parseResult({ cniVersion: '0.2.0' }, '1.1.0', 'r'), { code: 1 });
  });

  it('rejects_bad_routes_and_gateways_naming_them', () => {
    assert.throws(() => parseResult({ routes: [{ dst: '0.0.0.0' }] }, '1.1.0', 'prevResult'), {
      code: 7,
      msg: 'invalid prevResult.routes[0].dst',
    });
    assert.throws(() => parseResult({ ips: [{ address: '10.0.0.1/8', gateway: 'fd00::1' }] }, '1.1.0', 'p'), {
      code: 7,
      msg: 'invalid p.ips[0].gateway',
    });
  });
});

describe('versions', () => {
  it('orders_versions_as_libcni', () => {
    assert.deepEqual(parseVersion(''), [0, 1, 0]);
    assert.equal(parseVersion('1.x'), undefined);
    assert.ok(versionAtLeast('1.1.0', '1.0.0'));
    assert.ok(versionAtLeast('0.4.0', '0.4.0'));
    assert.ok(!versionAtLeast('0.3.1', '0.4.0'));
    assert.ok(versionAtLeast('1.0', '0.4.0'));
  });
});

describe('names', () => {
  it('names_host_veths_as_calico_does', () => {
    // Vectors from python hashlib: 'cali' + sha1(key).hexdigest()[:11]
    const pod = (namespace: string, name: string) =>
      parseCniArgs(`K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${name}`);
    assert.equal(hostVethName('x', pod('default', 'nginx')), 'calic440f455693');
    assert.equal(hostVethName('x', pod('kube-system', 'coredns-5d78c9869d-abcde')), 'cali4d5f75c480c');
    assert.equal(hostVethName('0123456789abcdef', parseCniArgs('')), 'calife5567e8d76');
  });

  it('finds_the_container_of_a_handle_of_its_own_network_only', () => {
    assert.equal(ipamHandle('net', 'c1'), 'net.c1');
    assert.equal(containerOfHandle('net', 'net.c1'), 'c1');
    assert.equal(containerOfHandle('net', 'network.c1'), undefined);
    assert.equal(containerOfHandle('net', 'net.'), undefined);
  });
});
