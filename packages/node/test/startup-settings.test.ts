// resolveSettings: Calico's environment variables and defaults (startup.go, utils.go at
// v3.31.7), the YAML file and flags over them, and every invalid value named.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { SettingsInput, SettingsResult } from '../src/index.js';
import { HOSTNAME_ENV, resolveSettings, SETTINGS_FIELDS, SettingsError } from '../src/index.js';
import { settingsFrom } from './support/startup.js';

function resolve(
  env: Record<string, string>,
  extra: Partial<Omit<SettingsInput, 'env'>> = {},
): SettingsResult {
  return resolveSettings({
    env,
    readNodenameFile: () => undefined,
    hostname: () => 'Host-A.Example',
    ...extra,
  });
}

function problems(r: SettingsResult): string[] {
  assert.equal(r.ok, false, 'expected invalid settings');
  if (r.ok) return [];
  assert.ok(r.error instanceof SettingsError);
  return r.error.message.split('\n');
}

describe('start-up settings: Calico defaults', () => {
  it('defaults_every_setting_as_calico_node_does', () => {
    const r = resolve({});
    assert.ok(r.ok);
    const s = r.settings;
    assert.equal(s.nodeName, 'host-a.example');
    assert.equal(s.nodeNameSource, 'the host name');
    assert.equal(s.nodenameFile, '/var/lib/calico/nodename');
    assert.equal(s.kubernetesNodeName, 'host-a.example');
    assert.equal(s.networkingBackend, 'bird');
    assert.deepEqual(s.ipv4, { mode: 'unset' });
    assert.deepEqual(s.ipv6, { mode: 'unset' });
    assert.deepEqual(s.ipv4AutodetectionMethod, { kind: 'first-found' });
    assert.equal(s.asNumber, undefined);
    assert.equal(s.routerId, undefined);
    assert.equal(s.disableNodeIpCheck, false);
    assert.equal(s.ipv6Support, true);
    assert.equal(s.noDefaultPools, false);
    assert.deepEqual(s.ipv4Pool, {
      enabled: true,
      cidr: undefined,
      blockSize: 26,
      ipipMode: 'Never',
      vxlanMode: 'Never',
      natOutgoing: true,
      nodeSelector: undefined,
      disableBGPExport: false,
      given: [],
    });
    assert.equal(s.ipv6Pool.blockSize, 122);
    assert.equal(s.ipv6Pool.natOutgoing, false);
  });

  it('takes_an_empty_value_as_unset', () => {
    const s = settingsFrom({
      IP: '',
      AS: '',
      CALICO_IPV4POOL_CIDR: '',
      CALICO_IPV4POOL_DISABLE_BGP_EXPORT: '',
    });
    assert.deepEqual(s.ipv4, { mode: 'unset' });
    assert.equal(s.asNumber, undefined);
    assert.equal(s.ipv4Pool.cidr, undefined);
    assert.equal(s.ipv4Pool.disableBGPExport, false);
  });
});

describe('start-up settings: the node name', () => {
  const file = (text: string | undefined) => ({ readNodenameFile: () => text });

  it('prefers_nodename_then_the_nodename_file_then_hostname_then_the_host_name', () => {
    const name = (env: Record<string, string>, stored?: string) => {
      const r = resolve(env, file(stored));
      assert.ok(r.ok, r.ok ? '' : r.error.message);
      return [r.settings.nodeName, r.settings.nodeNameSource];
    };
    assert.deepEqual(name({ NODENAME: ' node-1 ', HOSTNAME: 'h' }, 'stored'), [
      'node-1',
      'environment variable NODENAME',
    ]);
    // Calico writes the file without a newline; one added by an editor is dropped.
    assert.deepEqual(name({ HOSTNAME: 'h' }, 'stored-name\n'), [
      'stored-name',
      'nodename file /var/lib/calico/nodename',
    ]);
    assert.deepEqual(name({ HOSTNAME: ' Web-1 ' }), ['web-1', 'environment variable HOSTNAME']);
    assert.deepEqual(name({}), ['host-a.example', 'the host name']);
  });

  it('reads_the_nodename_file_named_by_calico_nodename_file', () => {
    const seen: string[] = [];
    const r = resolve(
      { CALICO_NODENAME_FILE: '/run/tabby/nodename' },
      {
        readNodenameFile: (p) => {
          seen.push(p);
          return 'from-file';
        },
      },
    );
    assert.ok(r.ok);
    assert.deepEqual(seen, ['/run/tabby/nodename']);
    assert.equal(r.settings.nodeName, 'from-file');
    assert.equal(r.settings.nodenameFile, '/run/tabby/nodename');
  });

  it('refuses_a_nodename_file_it_cannot_read_and_a_name_that_is_not_a_dns_subdomain', () => {
    assert.deepEqual(
      problems(
        resolve(
          {},
          {
            readNodenameFile: () => {
              throw new Error('EACCES: permission denied');
            },
          },
        ),
      ),
      ['nodename file /var/lib/calico/nodename: cannot be read: EACCES: permission denied'],
    );
    assert.match(
      problems(resolve({ NODENAME: 'Node_1' }))[0]!,
      /^environment variable NODENAME: node name "Node_1" is not a DNS subdomain/,
    );
  });

  it('uses_calico_k8s_node_ref_for_the_kubernetes_node', () => {
    const s = settingsFrom({ CALICO_K8S_NODE_REF: 'k8s-node-7' });
    assert.equal(s.kubernetesNodeRef, 'k8s-node-7');
    assert.equal(s.kubernetesNodeName, 'k8s-node-7');
  });

  it('reads_hostname_from_the_environment_only', () => {
    assert.equal(HOSTNAME_ENV, 'HOSTNAME');
    assert.ok(!Object.values(SETTINGS_FIELDS).some((f) => (f.env as string) === HOSTNAME_ENV));
  });
});

describe('start-up settings: addresses and autodetection methods', () => {
  it('reads_ip_and_ip6_as_an_address_autodetect_or_none', () => {
    const s = settingsFrom({ IP: '10.0.0.5/24', IP6: 'fd00::5' });
    assert.equal(s.ipv4.mode, 'address');
    assert.equal(s.ipv4.mode === 'address' && s.ipv4.net.prefixLen, 24);
    assert.equal(s.ipv6.mode === 'address' && s.ipv6.net.prefixLen, 128);
    assert.deepEqual(settingsFrom({ IP: 'autodetect', IP6: 'none' }).ipv4, { mode: 'autodetect' });
    assert.deepEqual(settingsFrom({ IP: 'autodetect', IP6: 'none' }).ipv6, { mode: 'none' });
  });

  it('refuses_an_address_of_the_wrong_family_naming_the_variable', () => {
    assert.deepEqual(problems(resolve({ NODENAME: 'a', IP: 'fd00::1', IP6: '10.0.0.1' })), [
      'environment variable IP: "fd00::1" is not an IPv4 address (a.b.c.d or a.b.c.d/len), autodetect or none',
      'environment variable IP6: "10.0.0.1" is not an IPv6 address (an IPv6 address, with or without /len), autodetect or none',
    ]);
    // Calico compares with "autodetect" exactly.
    assert.equal(problems(resolve({ NODENAME: 'a', IP: 'AUTODETECT' })).length, 1);
  });

  it('parses_every_autodetection_method_as_calico_does', () => {
    const m = (v: string, family: 4 | 6 = 4) =>
      family === 4
        ? settingsFrom({ IP_AUTODETECTION_METHOD: v }).ipv4AutodetectionMethod
        : settingsFrom({ IP6_AUTODETECTION_METHOD: v }).ipv6AutodetectionMethod;
    assert.deepEqual(m('first-found'), { kind: 'first-found' });
    assert.deepEqual(m('interface=eth.*, ens3'), { kind: 'interface', patterns: ['eth.*', 'ens3'] });
    assert.deepEqual(m('skip-interface=br-.*,virbr.*'), {
      kind: 'skip-interface',
      patterns: ['br-.*', 'virbr.*'],
    });
    // Go's ParseCIDR clears the host bits.
    assert.deepEqual(m('cidr=10.0.0.7/24 , 192.168.0.0/16'), {
      kind: 'cidr',
      cidrs: ['10.0.0.0/24', '192.168.0.0/16'],
    });
    assert.deepEqual(m('can-reach=8.8.8.8'), { kind: 'can-reach', destination: '8.8.8.8' });
    assert.deepEqual(m('can-reach=www.example.com'), { kind: 'can-reach', destination: 'www.example.com' });
    assert.deepEqual(m('can-reach=2001:4860:4860::8888', 6), {
      kind: 'can-reach',
      destination: '2001:4860:4860::8888',
    });
    assert.deepEqual(m('kubernetes-internal-ip'), { kind: 'kubernetes-internal-ip' });
  });

  it('refuses_unknown_methods_bad_regexes_bad_cidrs_and_a_destination_of_the_wrong_family', () => {
    const lines = problems(
      resolve({
        NODENAME: 'a',
        IP_AUTODETECTION_METHOD: 'interface=(eth',
        IP6_AUTODETECTION_METHOD: 'can-reach=8.8.8.8',
      }),
    );
    assert.equal(lines.length, 2);
    assert.match(
      lines[0]!,
      /^environment variable IP_AUTODETECTION_METHOD: "\(eth" is not a valid regular expression/,
    );
    assert.equal(
      lines[1],
      'environment variable IP6_AUTODETECTION_METHOD: can-reach destination 8.8.8.8 is not an IPv6 address',
    );
    assert.match(
      problems(resolve({ NODENAME: 'a', IP_AUTODETECTION_METHOD: 'cidr=10.0.0.0' }))[0]!,
      /"10\.0\.0\.0" is not a CIDR/,
    );
    assert.match(
      problems(resolve({ NODENAME: 'a', IP_AUTODETECTION_METHOD: 'best-guess' }))[0]!,
      /IP_AUTODETECTION_METHOD: "best-guess" is not an autodetection method/,
    );
  });
});

describe('start-up settings: every value checked and named', () => {
  it('lists_every_invalid_variable_at_once', () => {
    const lines = problems(
      resolve({
        NODENAME: 'a',
        AS: '0',
        CALICO_ROUTER_ID: 'router-1',
        CALICO_NETWORKING_BACKEND: 'gobgp',
        DISABLE_NODE_IP_CHECK: 'True',
        NO_DEFAULT_POOLS: '1',
        FELIX_IPV6SUPPORT: 'maybe',
        CALICO_IPV4POOL_CIDR: '10.0.0.0',
        CALICO_IPV4POOL_BLOCK_SIZE: '33',
        CALICO_IPV4POOL_IPIP: 'sometimes',
        CALICO_IPV4POOL_NAT_OUTGOING: 'enabled',
        CALICO_IPV4POOL_NODE_SELECTOR: "rack == 'r1' &&",
        CALICO_IPV6POOL_BLOCK_SIZE: 'big',
      }),
    );
    const named = lines.map((l) => /^environment variable (\w+):/.exec(l)?.[1]);
    assert.deepEqual(named.sort(), [
      'AS',
      'CALICO_IPV4POOL_BLOCK_SIZE',
      'CALICO_IPV4POOL_CIDR',
      'CALICO_IPV4POOL_IPIP',
      'CALICO_IPV4POOL_NAT_OUTGOING',
      'CALICO_IPV4POOL_NODE_SELECTOR',
      'CALICO_IPV6POOL_BLOCK_SIZE',
      'CALICO_NETWORKING_BACKEND',
      'CALICO_ROUTER_ID',
      'DISABLE_NODE_IP_CHECK',
      'FELIX_IPV6SUPPORT',
      'NO_DEFAULT_POOLS',
    ]);
    assert.ok(
      lines.includes(
        'environment variable CALICO_IPV4POOL_BLOCK_SIZE: block size 33 is not between 20 and 32 for IPv4',
      ),
    );
  });

  it('reads_as_numbers_plain_and_asdot', () => {
    assert.equal(settingsFrom({ AS: '64512' }).asNumber, 64512);
    assert.equal(settingsFrom({ AS: '1.10' }).asNumber, 65546);
    assert.equal(settingsFrom({ AS: '4294967295' }).asNumber, 4294967295);
    assert.equal(problems(resolve({ NODENAME: 'a', AS: '4294967296' })).length, 1);
  });

  it('reads_booleans_as_calico_evaluate_env_bool_and_refuses_the_rest', () => {
    for (const [v, want] of [
      ['false', false],
      ['F', false],
      ['no', false],
      ['0', false],
      ['true', true],
      ['Y', true],
      ['1', true],
    ] as const)
      assert.equal(settingsFrom({ CALICO_IPV4POOL_NAT_OUTGOING: v }).ipv4Pool.natOutgoing, want, v);
  });

  it('reads_encapsulation_modes_in_any_case_with_calico_aliases', () => {
    for (const [v, want] of [
      ['Always', 'Always'],
      ['cross-subnet', 'CrossSubnet'],
      ['CrossSubnet', 'CrossSubnet'],
      ['off', 'Never'],
      ['Never', 'Never'],
    ] as const) {
      assert.equal(settingsFrom({ CALICO_IPV4POOL_IPIP: v }).ipv4Pool.ipipMode, want, v);
      assert.equal(settingsFrom({ CALICO_IPV6POOL_VXLAN: v }).ipv6Pool.vxlanMode, want, v);
    }
  });

  it('clears_host_bits_of_a_pool_cidr_and_reads_none_as_no_pool', () => {
    const s = settingsFrom({ CALICO_IPV4POOL_CIDR: '10.65.3.4/16', CALICO_IPV6POOL_CIDR: 'none' });
    assert.equal(s.ipv4Pool.cidr, '10.65.0.0/16');
    assert.equal(s.ipv6Pool.enabled, false);
    assert.deepEqual(s.ipv4Pool.given, ['environment variable CALICO_IPV4POOL_CIDR=10.65.3.4/16']);
  });

  it('refuses_what_creating_the_pool_would_fail_on', () => {
    assert.deepEqual(
      problems(
        resolve({
          NODENAME: 'a',
          CALICO_IPV4POOL_IPIP: 'Always',
          CALICO_IPV4POOL_VXLAN: 'CrossSubnet',
          CALICO_IPV4POOL_CIDR: '10.65.0.0/28',
        }),
      ),
      [
        'environment variable CALICO_IPV4POOL_VXLAN: cannot be CrossSubnet while CALICO_IPV4POOL_IPIP is Always: a pool has one encapsulation',
        'environment variable CALICO_IPV4POOL_CIDR: the pool /28 is smaller than one block (/26, CALICO_IPV4POOL_BLOCK_SIZE)',
      ],
    );
  });

  it('refuses_no_default_pools_together_with_a_pool_cidr_as_calico_does', () => {
    assert.deepEqual(
      problems(resolve({ NODENAME: 'a', NO_DEFAULT_POOLS: 'TRUE', CALICO_IPV6POOL_CIDR: 'none' })),
      [
        'environment variable NO_DEFAULT_POOLS: cannot be true while environment variable CALICO_IPV6POOL_CIDR is set (startup.go:908 refuses the combination)',
      ],
    );
    assert.equal(settingsFrom({ NO_DEFAULT_POOLS: 'true' }).noDefaultPools, true);
  });

  it('never_throws_and_names_a_known_variable_in_every_problem', () => {
    const vars: string[] = Object.values(SETTINGS_FIELDS).map((f) => f.env);
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...vars), fc.string({ maxLength: 12 })), (env) => {
        const r = resolve({ NODENAME: 'n', ...env });
        if (r.ok) return;
        for (const i of r.error.issues) {
          assert.equal(i.source.kind, 'env');
          assert.ok(i.source.kind === 'env' && vars.includes(i.source.name), JSON.stringify(i));
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('start-up settings: the YAML file and flags over the environment', () => {
  const file = (text: string) => ({ file: { path: '/etc/tabby/node.yaml', text } });

  it('overlays_the_file_on_the_environment_and_flags_on_both', () => {
    const r = resolve(
      { NODENAME: 'env-name', IP: '10.0.0.1', CALICO_IPV4POOL_BLOCK_SIZE: '24', AS: '65000' },
      {
        ...file(
          'nodeName: file-name\nip: autodetect\nasNumber: 64600\nipv4Pool:\n  blockSize: 28\n  natOutgoing: false\n  ipipMode: CrossSubnet\n',
        ),
        flags: { node: 'flag-name', 'ipv4pool-block-size': '30' },
      },
    );
    assert.ok(r.ok, r.ok ? '' : r.error.message);
    const s = r.settings;
    assert.equal(s.nodeName, 'flag-name');
    assert.equal(s.nodeNameSource, 'flag --node');
    assert.deepEqual(s.ipv4, { mode: 'autodetect' });
    assert.equal(s.asNumber, 64600);
    assert.equal(s.ipv4Pool.blockSize, 30);
    assert.equal(s.ipv4Pool.natOutgoing, false);
    assert.equal(s.ipv4Pool.ipipMode, 'CrossSubnet');
  });

  it('names_the_file_field_or_the_flag_at_fault', () => {
    assert.deepEqual(
      problems(
        resolve(
          { NODENAME: 'a' },
          {
            ...file('ipv4Pool:\n  blockSize: 40\n  ipipmode: Always\nip: 300.1.1.1\nasNumber: [1]\n'),
            flags: { ip6: 'nonsense', 'ip-autodetect': 'x' },
          },
        ),
      ),
      [
        'flag --ip-autodetect: is not a start-up setting',
        // a file that does not fit the schema is not used at all: its ip is not looked at
        '/etc/tabby/node.yaml: asNumber: must be an integer or a string, not a list',
        '/etc/tabby/node.yaml: ipv4Pool.ipipmode: is not a known field',
        'flag --ip6: "nonsense" is not an IPv6 address (an IPv6 address, with or without /len), autodetect or none',
      ],
    );
    assert.deepEqual(
      problems(
        resolve({ NODENAME: 'a' }, { ...file('ipv4Pool:\n  blockSize: 40\n'), flags: { ip6: 'nonsense' } }),
      ),
      [
        'flag --ip6: "nonsense" is not an IPv6 address (an IPv6 address, with or without /len), autodetect or none',
        '/etc/tabby/node.yaml: ipv4Pool.blockSize: block size 40 is not between 20 and 32 for IPv4',
      ],
    );
  });

  it('refuses_a_file_that_is_not_one_yaml_mapping', () => {
    assert.match(
      problems(resolve({ NODENAME: 'a' }, file('ip: [unclosed\n')))[0]!,
      /^\/etc\/tabby\/node\.yaml: \(document\): is not valid YAML/,
    );
    assert.match(
      problems(resolve({ NODENAME: 'a' }, file('- ip\n')))[0]!,
      /\(document\): must be an object, not a list/,
    );
    assert.match(
      problems(resolve({ NODENAME: 'a' }, file('ip: none\n---\nip6: none\n')))[0]!,
      /several YAML documents/,
    );
    assert.ok(resolve({ NODENAME: 'a' }, file('# nothing set\n')).ok);
  });

  it('reads_yaml_1_1_booleans_in_the_file_as_kubectl_does', () => {
    const r = resolve({ NODENAME: 'a' }, file('noDefaultPools: yes\n'));
    assert.ok(r.ok);
    assert.equal(r.settings.noDefaultPools, true);
  });
});
