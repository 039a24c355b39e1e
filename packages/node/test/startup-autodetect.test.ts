// Address autodetection over a host described by a table: Calico's methods
// (autodetection_methods.go, filtered.go, interfaces.go, reachaddr.go at v3.31.7), including
// its quirks (interfaces walked from the highest index down; interface= and cidr= ignore the
// default exclusions).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseIp } from '@tabby/datastore';
import type { Detection, KubernetesNodeAddress } from '../src/index.js';
import {
  autodetect,
  DEFAULT_INTERFACES_TO_EXCLUDE,
  filterInterfaces,
  formatIpNet,
  isGlobalUnicast,
  localCidr,
  parseAutodetectionMethod,
  StaticHostNetwork,
} from '../src/index.js';
import { iface } from './support/startup.js';

const host = new StaticHostNetwork(
  [
    iface('lo', '127.0.0.1/8', '::1/128'),
    iface('eth0', '10.0.0.5/24', 'fe80::1/64', 'fd00::5/64'),
    iface('eth1', '169.254.3.3/16', '192.168.7.9/24'),
    iface('docker0', '172.17.0.1/16'),
    iface('cali0123456789a'),
    iface('vxlan.calico', '10.65.0.1/32'),
  ],
  { '8.8.8.8': '10.0.0.5', '192.0.2.1': '198.51.100.7', '2001:db8::1': 'fd00::5' },
);

async function detect(
  method: string,
  family: 4 | 6 = 4,
  kubernetesAddresses?: readonly KubernetesNodeAddress[],
): Promise<string> {
  const m = parseAutodetectionMethod(method, family);
  if (typeof m === 'string') assert.fail(m);
  const d: Detection = await autodetect(m, family, {
    interfaces: await host.interfaces(),
    host,
    kubernetesAddresses,
  });
  return d.ok ? `${formatIpNet(d.cidr)} ${d.interface ?? '?'}` : `miss: ${d.reason}`;
}

describe('address autodetection methods', () => {
  it('first_found_walks_interfaces_from_the_highest_index_and_skips_calicos_exclusions', async () => {
    // eth1 comes after eth0, so Calico's reverse walk reaches it first; its link-local
    // address is passed over.
    assert.equal(await detect('first-found'), '192.168.7.9/24 eth1');
    assert.equal(await detect(''), '192.168.7.9/24 eth1');
    assert.equal(await detect('first-found', 6), 'fd00::5/64 eth0');
  });

  it('interface_matches_any_of_its_regexes_without_the_default_exclusions', async () => {
    assert.equal(await detect('interface=eth0'), '10.0.0.5/24 eth0');
    assert.equal(await detect('interface=eth.*'), '192.168.7.9/24 eth1');
    assert.equal(await detect('interface=nomatch, eth0'), '10.0.0.5/24 eth0');
    assert.equal(await detect('interface=docker0'), '172.17.0.1/16 docker0');
    // unanchored, as Go's MatchString
    assert.equal(await detect('interface=th0'), '10.0.0.5/24 eth0');
    assert.equal(await detect('interface=wlan.*'), 'miss: no valid host interfaces found');
    assert.equal(await detect('interface=lo'), 'miss: no valid IPv4 addresses found on the host interfaces');
  });

  it('skip_interface_adds_its_regexes_to_the_default_exclusions', async () => {
    assert.equal(await detect('skip-interface=eth1'), '10.0.0.5/24 eth0');
    assert.equal(await detect('skip-interface=eth.*'), 'miss: no valid host interfaces found');
  });

  it('cidr_takes_the_first_global_unicast_address_inside_one_of_the_cidrs', async () => {
    assert.equal(await detect('cidr=10.0.0.0/24'), '10.0.0.5/24 eth0');
    assert.equal(await detect('cidr=172.16.0.0/12,10.0.0.0/16'), '172.17.0.1/16 docker0');
    assert.equal(await detect('cidr=fd00::/8', 6), 'fd00::5/64 eth0');
    // Calico applies no exclusions here: a CIDR wide enough to cover the pool takes
    // vxlan.calico's address (the highest index) before eth0's.
    assert.equal(await detect('cidr=10.0.0.0/8'), '10.65.0.1/32 vxlan.calico');
    assert.equal(
      await detect('cidr=203.0.113.0/24'),
      'miss: no valid IPv4 addresses found on the host interfaces within 203.0.113.0/24',
    );
  });

  it('can_reach_takes_the_kernels_source_address_with_its_interfaces_prefix', async () => {
    assert.equal(await detect('can-reach=8.8.8.8'), '10.0.0.5/24 eth0');
    assert.equal(await detect('can-reach=2001:db8::1', 6), 'fd00::5/64 eth0');
    assert.equal(
      await detect('can-reach=192.0.2.1'),
      'miss: autodetected IPv4 address does not match any addresses found on local interfaces: 198.51.100.7',
    );
    assert.match(
      await detect('can-reach=203.0.113.9'),
      /^miss: cannot reach 203\.0\.113\.9: connect: network is unreachable/,
    );
  });

  it('kubernetes_internal_ip_takes_the_first_internal_ip_of_the_family_with_its_interfaces_prefix', async () => {
    const node: KubernetesNodeAddress[] = [
      { type: 'Hostname', address: 'node-a' },
      { type: 'ExternalIP', address: '192.168.7.9' },
      { type: 'InternalIP', address: 'fd00::5' },
      { type: 'InternalIP', address: '10.0.0.5' },
    ];
    assert.equal(await detect('kubernetes-internal-ip', 4, node), '10.0.0.5/24 eth0');
    assert.equal(await detect('kubernetes-internal-ip', 6, node), 'fd00::5/64 eth0');
    // The first InternalIP decides even when it is on no interface (autodetection_methods.go:178).
    assert.equal(
      await detect('kubernetes-internal-ip', 4, [
        { type: 'InternalIP', address: '10.9.9.9' },
        { type: 'InternalIP', address: '10.0.0.5' },
      ]),
      "miss: the Kubernetes Node's InternalIP 10.9.9.9 is on no interface of this host",
    );
    assert.equal(
      await detect('kubernetes-internal-ip', 4, [{ type: 'ExternalIP', address: '10.0.0.5' }]),
      'miss: the Kubernetes Node has no IPv4 InternalIP',
    );
    assert.match(
      await detect('kubernetes-internal-ip', 4, undefined),
      /needs the Kubernetes Node, and there is none/,
    );
  });
});

describe('host interfaces as Calico filters them', () => {
  it('excludes_calicos_default_interfaces_in_calicos_order', () => {
    assert.deepEqual(DEFAULT_INTERFACES_TO_EXCLUDE, [
      '^docker.*',
      '^cbr.*',
      '^dummy.*',
      '^podman.*',
      '^virbr.*',
      '^lxcbr.*',
      '^veth.*',
      '^lo',
      '^br-.*',
      '^cali.*',
      '^tunl.*',
      '^flannel.*',
      '^kube-ipvs.*',
      '^cni.*',
      '^vxlan\\.calico.*',
      '^vxlan-v6\\.calico.*',
      '^wireguard\\.cali.*',
      '^wg-v6\\.cali.*',
      '^nodelocaldns.*',
    ]);
  });

  it('lists_interfaces_in_reverse_index_order_with_addresses_of_the_asked_families', async () => {
    const got = filterInterfaces(await host.interfaces(), undefined, DEFAULT_INTERFACES_TO_EXCLUDE, [4, 6]);
    assert.deepEqual(
      got.map((i) => [i.name, i.cidrs.map(formatIpNet)]),
      [
        ['eth1', ['169.254.3.3/16', '192.168.7.9/24']],
        ['eth0', ['10.0.0.5/24', 'fe80::1/64', 'fd00::5/64']],
      ],
    );
    assert.deepEqual(
      filterInterfaces(await host.interfaces(), ['^eth0$'], undefined, [6]).map((i) =>
        i.cidrs.map(formatIpNet),
      ),
      [['fe80::1/64', 'fd00::5/64']],
    );
  });

  it('gives_an_address_without_prefix_the_prefix_of_the_interface_that_has_it', async () => {
    const ifs = await host.interfaces();
    assert.equal(formatIpNet(localCidr('192.168.7.9', 4, ifs).cidr), '192.168.7.9/24');
    assert.equal(localCidr('192.168.7.9', 4, ifs).interface, 'eth1');
    assert.equal(formatIpNet(localCidr('192.168.7.9/16', 4, ifs).cidr), '192.168.7.9/16');
    assert.equal(formatIpNet(localCidr('203.0.113.4', 4, ifs).cidr), '203.0.113.4/32');
  });

  it('counts_as_global_unicast_what_go_does', () => {
    const g = (a: string) => isGlobalUnicast(parseIp(a)!);
    for (const a of ['10.0.0.1', '192.168.1.1', '8.8.8.8', 'fd00::1', '2001:db8::1', '100.64.0.1'])
      assert.ok(g(a), a);
    for (const a of [
      '0.0.0.0',
      '127.0.0.1',
      '169.254.1.1',
      '224.0.0.5',
      '255.255.255.255',
      '::',
      '::1',
      'fe80::1',
      'ff02::1',
    ])
      assert.ok(!g(a), a);
  });
});
