// The pure parts: the encapsulation decision over every mode, family and subnet; the
// devices the pools need; the VXLAN MAC against Calico's own test vectors; host MTU
// detection, tunnel and pod MTUs, the MTU file; and the device plan.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { RouteInfo } from '@tabby/netlink/codec';
import type { EncapMode, Encapsulation, PoolEncap } from '../src/index.js';
import {
  desiredTunnels,
  detectHostMtu,
  ENCAP_MODES,
  encapsulationFor,
  normalizeMac,
  parseMtuText,
  podMtu,
  readMtuFile,
  tunnelMtus,
  tunnelsNeeded,
  vxlanMacForNode,
  writeMtuFile,
} from '../src/index.js';

describe('encapsulationFor', () => {
  // [ipipMode, vxlanMode, family, on subnet] -> expected
  const table: [EncapMode, EncapMode, 4 | 6, boolean, Encapsulation][] = [
    ['Never', 'Never', 4, true, 'none'],
    ['Never', 'Never', 4, false, 'none'],
    ['Always', 'Never', 4, true, 'ipip'],
    ['Always', 'Never', 4, false, 'ipip'],
    ['CrossSubnet', 'Never', 4, true, 'none'],
    ['CrossSubnet', 'Never', 4, false, 'ipip'],
    ['Never', 'Always', 4, true, 'vxlan'],
    ['Never', 'Always', 4, false, 'vxlan'],
    ['Never', 'CrossSubnet', 4, true, 'none'],
    ['Never', 'CrossSubnet', 4, false, 'vxlan'],
    ['Always', 'Always', 4, true, 'vxlan'],
    ['Always', 'CrossSubnet', 4, true, 'ipip'],
    ['Always', 'CrossSubnet', 4, false, 'vxlan'],
    ['CrossSubnet', 'Always', 4, true, 'vxlan'],
    ['Always', 'Never', 6, false, 'none'],
    ['CrossSubnet', 'Never', 6, false, 'none'],
    ['Never', 'Always', 6, true, 'vxlan'],
    ['Never', 'CrossSubnet', 6, true, 'none'],
    ['Never', 'CrossSubnet', 6, false, 'vxlan'],
  ];
  for (const [ipip, vxlan, family, onSubnet, want] of table)
    it(`ipip_${ipip}_vxlan_${vxlan}_ipv${family}_${onSubnet ? 'on' : 'off'}_subnet_gives_${want}`, () => {
      assert.equal(encapsulationFor({ ipipMode: ipip, vxlanMode: vxlan }, family, onSubnet), want);
    });

  it('no_pool_and_omitted_modes_mean_no_encapsulation', () => {
    assert.equal(encapsulationFor(undefined, 4, false), 'none');
    assert.equal(encapsulationFor({}, 4, false), 'none');
  });

  it('never_tunnels_on_a_local_subnet_unless_a_mode_says_always', () => {
    const mode = fc.constantFrom(...ENCAP_MODES);
    fc.assert(
      fc.property(mode, mode, fc.constantFrom<4 | 6>(4, 6), (ipipMode, vxlanMode, family) => {
        const e = encapsulationFor({ ipipMode, vxlanMode }, family, true);
        if (e === 'vxlan') return vxlanMode === 'Always';
        if (e === 'ipip') return ipipMode === 'Always' && family === 4;
        return true;
      }),
    );
  });
});

describe('tunnelsNeeded', () => {
  const pool = (
    cidr: string,
    ipipMode?: EncapMode,
    vxlanMode?: EncapMode,
    disabled?: boolean,
  ): PoolEncap => ({
    cidr,
    ...(ipipMode ? { ipipMode } : {}),
    ...(vxlanMode ? { vxlanMode } : {}),
    ...(disabled ? { disabled } : {}),
  });

  it('needs_nothing_without_tunnelled_pools', () => {
    assert.deepEqual(tunnelsNeeded([]), { ipip: false, vxlan: false, vxlanV6: false });
    assert.deepEqual(tunnelsNeeded([pool('10.65.0.0/16', 'Never', 'Never'), pool('fd10::/48')]), {
      ipip: false,
      vxlan: false,
      vxlanV6: false,
    });
  });

  it('needs_each_device_its_pools_ask_for_including_disabled_pools', () => {
    assert.deepEqual(tunnelsNeeded([pool('10.65.0.0/16', 'CrossSubnet', undefined, true)]), {
      ipip: true,
      vxlan: false,
      vxlanV6: false,
    });
    assert.deepEqual(
      tunnelsNeeded([pool('10.66.0.0/16', undefined, 'Always'), pool('fd10::/48', undefined, 'CrossSubnet')]),
      {
        ipip: false,
        vxlan: true,
        vxlanV6: true,
      },
    );
  });

  it('a_pool_asking_for_both_needs_only_vxlan_and_ipip_on_ipv6_needs_nothing', () => {
    assert.deepEqual(tunnelsNeeded([pool('10.65.0.0/16', 'Always', 'Always')]), {
      ipip: false,
      vxlan: true,
      vxlanV6: false,
    });
    assert.deepEqual(tunnelsNeeded([pool('fd10::/48', 'Always')]), {
      ipip: false,
      vxlan: false,
      vxlanV6: false,
    });
  });
});

describe('vxlanMacForNode', () => {
  it('matches_the_macs_in_calicos_own_felix_calc_tests', () => {
    // felix/calc/states_for_test.go (v3.31.7): remotehostname -> 66:3e:ca:a4:db:65,
    // remotehostname2 -> 66:40:18:59:1f:16
    assert.equal(vxlanMacForNode('remotehostname'), '66:3e:ca:a4:db:65');
    assert.equal(vxlanMacForNode('remotehostname2'), '66:40:18:59:1f:16');
  });

  it('is_a_locally_administered_unicast_mac_and_differs_for_ipv6', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 63 }), (name) => {
        const mac = vxlanMacForNode(name);
        const first = parseInt(mac.slice(0, 2), 16);
        return /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac) && (first & 0x02) !== 0 && (first & 0x01) === 0;
      }),
    );
    assert.notEqual(vxlanMacForNode('node-1', 6), vxlanMacForNode('node-1', 4));
    assert.equal(vxlanMacForNode('node-1', 6), vxlanMacForNode('node-1-v6', 4));
    assert.throws(() => vxlanMacForNode(''), TypeError);
  });

  it('normalizes_mac_text_and_refuses_what_is_not_one', () => {
    assert.equal(normalizeMac('66:3E:CA:A4:DB:65'), '66:3e:ca:a4:db:65');
    assert.equal(normalizeMac('66-3e-ca-a4-db-65'), '66:3e:ca:a4:db:65');
    assert.equal(normalizeMac('663ecaa4db65'), '66:3e:ca:a4:db:65');
    assert.equal(normalizeMac('66:3e:ca:a4:db'), undefined);
    assert.equal(normalizeMac('66:3e-ca:a4:db:65'), undefined);
  });
});

describe('MTU', () => {
  const links = [
    { index: 1, name: 'lo', mtu: 65536 },
    { index: 2, name: 'eth0', mtu: 9001 },
    { index: 3, name: 'eth1', mtu: 1500 },
    { index: 4, name: 'wg0', mtu: 1420 },
    { index: 5, name: 'ens5', mtu: 1450 },
  ];
  const route = (family: 4 | 6, dstLen: number, oifs: number[], table = 254): RouteInfo => ({
    family,
    dst: family === 4 ? '0.0.0.0' : '::',
    dstLen,
    table,
    protocol: 3,
    scope: 0,
    type: 'unicast',
    flags: 0,
    nexthops: oifs.map((oif) => ({ oif, gateway: family === 4 ? '192.168.0.1' : 'fe80::1' })),
  });

  it('takes_the_smallest_mtu_among_default_route_and_node_address_interfaces', () => {
    const r = detectHostMtu({
      links,
      routes: [route(4, 0, [2]), route(4, 24, [4]), route(6, 0, [2, 5]), route(4, 0, [4], 100)],
      addresses: [
        { index: 3, address: '172.16.0.5' },
        { index: 4, address: '10.9.0.1' },
      ],
      nodeAddresses: ['172.16.0.5/24'],
    });
    // wg0 has only a non-default route and a default route in another table: not considered
    assert.deepEqual(r, { mtu: 1450, interfaces: ['eth0', 'eth1', 'ens5'].sort() });
  });

  it('finds_nothing_without_a_default_route_or_the_node_address', () => {
    assert.equal(detectHostMtu({ links, routes: [], addresses: [], nodeAddresses: ['10.0.0.1'] }), undefined);
  });

  it('derives_tunnel_mtus_from_the_host_unless_configured', () => {
    assert.deepEqual(tunnelMtus(1500), { ipip: 1480, vxlan: 1450, vxlanV6: 1430 });
    assert.deepEqual(tunnelMtus(9001, { ipipMtu: 8981, vxlanMtu: 0 }), {
      ipip: 8981,
      vxlan: 8951,
      vxlanV6: 8931,
    });
    assert.throws(() => tunnelMtus(1500, { vxlanMtu: 40 }), RangeError);
    assert.throws(() => tunnelMtus(100), RangeError); // 100 - 50 is no MTU
  });

  it('gives_pods_the_smallest_mtu_of_the_tunnels_in_use_else_the_hosts', () => {
    const mtus = tunnelMtus(1500);
    assert.equal(podMtu(1500, { ipip: false, vxlan: false, vxlanV6: false }, mtus), 1500);
    assert.equal(podMtu(1500, { ipip: true, vxlan: false, vxlanV6: false }, mtus), 1480);
    assert.equal(podMtu(1500, { ipip: true, vxlan: true, vxlanV6: false }, mtus), 1450);
    assert.equal(podMtu(1500, { ipip: false, vxlan: true, vxlanV6: true }, mtus), 1430);
  });

  it('writes_the_mtu_file_atomically_and_only_when_it_changes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tabby-mtu-'));
    try {
      const path = join(dir, 'lib', 'tabby', 'mtu');
      assert.equal(readMtuFile(path), undefined);
      assert.equal(writeMtuFile(1450, path), true);
      assert.equal(readFileSync(path, 'utf8'), '1450\n');
      assert.equal(readMtuFile(path), 1450);
      const before = statSync(path).mtimeMs;
      assert.equal(writeMtuFile(1450, path), false);
      assert.equal(statSync(path).mtimeMs, before);
      assert.equal(writeMtuFile(1480, path), true);
      assert.equal(readMtuFile(path), 1480);
      writeFileSync(path, 'garbage');
      assert.equal(readMtuFile(path), undefined);
      assert.throws(() => writeMtuFile(20, path), RangeError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads_the_mtu_file_as_calico_does_a_decimal_number_with_whitespace_around_it', () => {
    assert.equal(parseMtuText('1440\n'), 1440);
    assert.equal(parseMtuText('  9000 \t\n'), 9000);
    assert.equal(parseMtuText('01500'), 1500);
    for (const bad of ['', '\n', '0', '67', '65536', '1440 1480', '-1440', '1e3', '0x5a0', 'abc'])
      assert.equal(parseMtuText(bad), undefined, JSON.stringify(bad));
  });
});

describe('desiredTunnels', () => {
  const base = { nodeName: 'node-1', nodeAddress: '192.168.0.11/24', hostMtu: 1500 };

  it('plans_vxlan_calico_with_calicos_settings_and_no_ipip', () => {
    const plan = desiredTunnels({
      ...base,
      pools: [{ cidr: '10.65.0.0/16', vxlanMode: 'Always' }],
      vxlanTunnelAddress: '10.65.1.0',
    });
    assert.deepEqual(plan, {
      devices: [
        {
          kind: 'vxlan',
          family: 4,
          name: 'vxlan.calico',
          mtu: 1450,
          address: '10.65.1.0',
          mac: vxlanMacForNode('node-1'),
          vni: 4096,
          port: 4789,
          local: '192.168.0.11',
        },
      ],
      unwanted: [
        { kind: 'ipip', name: 'tunl0' },
        { kind: 'vxlan', name: 'vxlan-v6.calico' },
      ],
      waiting: [],
    });
  });

  it('plans_tunl0_with_the_ipip_tunnel_address_and_mtu_and_removes_vxlan', () => {
    const plan = desiredTunnels({
      ...base,
      pools: [{ cidr: '10.65.0.0/16', ipipMode: 'CrossSubnet' }],
      ipipTunnelAddress: '10.65.1.1',
      mtu: { ipipMtu: 1400 },
    });
    assert.deepEqual(plan.devices, [{ kind: 'ipip', name: 'tunl0', mtu: 1400, address: '10.65.1.1' }]);
    assert.deepEqual(plan.unwanted, [
      { kind: 'vxlan', name: 'vxlan.calico' },
      { kind: 'vxlan', name: 'vxlan-v6.calico' },
    ]);
  });

  it('waits_without_a_tunnel_address_or_node_address_and_honours_a_configured_mac', () => {
    const pools = [
      { cidr: '10.65.0.0/16', ipipMode: 'Always' as const },
      { cidr: '10.66.0.0/16', vxlanMode: 'Always' as const },
    ];
    const plan = desiredTunnels({ nodeName: 'n', hostMtu: 1500, pools, vxlanTunnelAddress: '10.66.0.1' });
    assert.deepEqual(plan.devices, []);
    assert.deepEqual(
      plan.waiting.map((w) => w.name),
      ['tunl0', 'vxlan.calico'],
    );
    const withMac = desiredTunnels({
      ...base,
      pools,
      vxlanTunnelAddress: '10.66.0.1',
      vxlanMac: '02:AA:BB:CC:DD:EE',
    });
    const vx = withMac.devices.find((d) => d.kind === 'vxlan');
    assert.equal(vx?.kind === 'vxlan' ? vx.mac : undefined, '02:aa:bb:cc:dd:ee');
    assert.throws(
      () => desiredTunnels({ ...base, pools, vxlanTunnelAddress: '10.66.0.1', vxlanMac: 'nope' }),
      TypeError,
    );
    assert.throws(() => desiredTunnels({ ...base, pools, vxlanTunnelAddress: 'fd10::1' }), TypeError);
  });

  it('plans_vxlan_v6_calico_for_ipv6_pools_as_calico_does', () => {
    const plan = desiredTunnels({
      ...base,
      nodeAddressV6: 'fd00:0::11/64',
      pools: [
        { cidr: '10.65.0.0/16', vxlanMode: 'Always' },
        { cidr: 'fd10::/48', vxlanMode: 'CrossSubnet' },
      ],
      vxlanTunnelAddress: '10.65.1.0',
      vxlanTunnelAddressV6: 'fd10:0:0:1::',
    });
    assert.deepEqual(plan.devices, [
      {
        kind: 'vxlan',
        family: 4,
        name: 'vxlan.calico',
        mtu: 1450,
        address: '10.65.1.0',
        mac: vxlanMacForNode('node-1'),
        vni: 4096,
        port: 4789,
        local: '192.168.0.11',
      },
      {
        kind: 'vxlan',
        family: 6,
        name: 'vxlan-v6.calico',
        // felix's vxlanV6MTUOverhead: the IPv6 outer header is 20 bytes longer
        mtu: 1430,
        address: 'fd10:0:0:1::',
        mac: vxlanMacForNode('node-1', 6),
        vni: 4096,
        port: 4789,
        local: 'fd00::11',
      },
    ]);
    assert.deepEqual(plan.unwanted, [{ kind: 'ipip', name: 'tunl0' }]);
  });

  it('waits_for_the_ipv6_vtep_address_and_node_address_and_honours_a_configured_v6_mac', () => {
    const pools = [{ cidr: 'fd10::/48', vxlanMode: 'Always' as const }];
    assert.deepEqual(desiredTunnels({ ...base, pools }).waiting, [
      { name: 'vxlan-v6.calico', reason: 'no IPv6 VXLAN tunnel address allocated to this node yet' },
    ]);
    assert.deepEqual(desiredTunnels({ ...base, pools, vxlanTunnelAddressV6: 'fd10::1' }).waiting, [
      { name: 'vxlan-v6.calico', reason: 'this node has no IPv6 address for the IPv6 VXLAN source' },
    ]);
    const v6 = { ...base, pools, vxlanTunnelAddressV6: 'fd10::1', nodeAddressV6: 'fd00::11' };
    const d = desiredTunnels({ ...v6, vxlanMacV6: '02-AA-BB-CC-DD-EF', mtu: { vxlanMtuV6: 1400 } })
      .devices[0];
    assert.equal(d?.kind === 'vxlan' ? `${d.mac} ${d.mtu}` : undefined, '02:aa:bb:cc:dd:ef 1400');
    assert.throws(() => desiredTunnels({ ...v6, vxlanTunnelAddressV6: '10.65.1.0' }), TypeError);
    assert.throws(() => desiredTunnels({ ...v6, nodeAddressV6: '192.168.0.11' }), TypeError);
    assert.throws(() => desiredTunnels({ ...v6, vxlanMacV6: 'nope' }), TypeError);
  });
});
