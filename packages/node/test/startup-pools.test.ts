// The default IP pools (Calico's configureIPPools, startup.go:902) on the memory datastore.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AnyResource, IPPool, Kind, ListResult } from '@tabby/datastore';
import { API_VERSION, Datastore, MemoryBackend } from '@tabby/datastore';
import type { DefaultPools, HostInterface } from '../src/index.js';
import {
  defaultIpv4PoolCidr,
  ensureDefaultPools,
  ipv6UlaPrefix,
  kubeadmPodCidrs,
  DEFAULT_IPV4_POOL_NAME,
  DEFAULT_IPV6_POOL_NAME,
} from '../src/index.js';
import { datastore, iface, RecordingLogger, seed, settingsFrom } from './support/startup.js';

const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => i + 1);

async function pools(
  ds: Datastore,
  env: Record<string, string> = {},
  opts: {
    interfaces?: HostInterface[];
    kubeadm?: Record<string, string>;
    ipv6Available?: boolean;
    log?: RecordingLogger;
  } = {},
): Promise<DefaultPools> {
  return ensureDefaultPools({
    datastore: ds,
    settings: settingsFrom(env),
    interfaces: () => Promise.resolve(opts.interfaces ?? [iface('eth0', '10.0.0.5/24')]),
    kubeadmConfig: opts.kubeadm,
    ipv6Available: opts.ipv6Available ?? true,
    randomBytes: bytes,
    log: opts.log ?? new RecordingLogger(),
  });
}

const stored = async (ds: Datastore): Promise<Record<string, IPPool['spec']>> =>
  Object.fromEntries((await ds.list('IPPool')).items.map((p) => [p.metadata.name, p.spec]));

describe('default IP pools', () => {
  it('creates_both_default_pools_with_calicos_names_and_defaults', async () => {
    const { ds } = datastore();
    const r = await pools(ds);
    assert.deepEqual(
      r.created.map((p) => p.metadata.name),
      [DEFAULT_IPV4_POOL_NAME, DEFAULT_IPV6_POOL_NAME],
    );
    const s = await stored(ds);
    assert.deepEqual(s['default-ipv4-ippool'], {
      cidr: '192.168.0.0/16',
      blockSize: 26,
      ipipMode: 'Never',
      vxlanMode: 'Never',
      natOutgoing: true,
      disableBGPExport: false,
      disabled: false,
      nodeSelector: 'all()',
      allowedUses: ['Workload', 'Tunnel'],
      assignmentMode: 'Automatic',
    });
    // a random unique local /48 (RFC 4193), from the injected random bytes
    assert.equal(s['default-ipv6-ippool']?.cidr, 'fd01:203:405::/48');
    assert.equal(s['default-ipv6-ippool']?.blockSize, 122);
    assert.equal(s['default-ipv6-ippool']?.natOutgoing, false);
    assert.equal(s['default-ipv6-ippool']?.ipipMode, 'Never');
  });

  it('creates_the_pools_the_environment_describes', async () => {
    const { ds } = datastore();
    await pools(ds, {
      CALICO_IPV4POOL_CIDR: '10.65.0.0/16',
      CALICO_IPV4POOL_BLOCK_SIZE: '24',
      CALICO_IPV4POOL_IPIP: 'CrossSubnet',
      CALICO_IPV4POOL_NAT_OUTGOING: 'false',
      CALICO_IPV4POOL_NODE_SELECTOR: "rack == 'r1'",
      CALICO_IPV4POOL_DISABLE_BGP_EXPORT: 'true',
      CALICO_IPV6POOL_CIDR: 'fd10::/64',
      CALICO_IPV6POOL_BLOCK_SIZE: '120',
      CALICO_IPV6POOL_VXLAN: 'Always',
      CALICO_IPV6POOL_NAT_OUTGOING: 'true',
    });
    const s = await stored(ds);
    const v4 = s['default-ipv4-ippool']!;
    assert.deepEqual(
      [
        v4.cidr,
        v4.blockSize,
        v4.ipipMode,
        v4.vxlanMode,
        v4.natOutgoing,
        v4.nodeSelector,
        v4.disableBGPExport,
      ],
      ['10.65.0.0/16', 24, 'CrossSubnet', 'Never', false, "rack == 'r1'", true],
    );
    const v6 = s['default-ipv6-ippool']!;
    assert.deepEqual(
      [v6.cidr, v6.blockSize, v6.vxlanMode, v6.natOutgoing],
      ['fd10::/64', 120, 'Always', true],
    );
  });

  it('picks_an_ipv4_default_that_holds_none_of_the_hosts_addresses', async () => {
    assert.equal(defaultIpv4PoolCidr(['10.0.0.5', 'fd00::1']), '192.168.0.0/16');
    assert.equal(defaultIpv4PoolCidr(['192.168.1.5']), '172.16.0.0/16');
    assert.equal(defaultIpv4PoolCidr(['192.168.1.5', '172.16.0.1', '172.17.9.9']), '172.18.0.0/16');
    const all = ['192.168.1.1', ...Array.from({ length: 16 }, (_, i) => `172.${16 + i}.0.1`)];
    assert.equal(defaultIpv4PoolCidr(all), '192.168.0.0/16'); // none free: Calico keeps the preferred one
    const { ds } = datastore();
    await pools(ds, {}, { interfaces: [iface('eth0', '192.168.1.5/24')] });
    assert.equal((await stored(ds))['default-ipv4-ippool']?.cidr, '172.16.0.0/16');
  });

  it('creates_nothing_for_a_family_that_has_a_pool_and_warns_about_unused_settings', async () => {
    const { ds } = datastore();
    await seed(
      ds,
      `apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: { name: mine }\nspec: { cidr: 10.70.0.0/16, disabled: true }\n`,
    );
    const log = new RecordingLogger();
    const r = await pools(
      ds,
      { CALICO_IPV4POOL_CIDR: '10.65.0.0/16', CALICO_IPV4POOL_IPIP: 'Always' },
      { log },
    );
    assert.deepEqual(
      r.created.map((p) => p.metadata.name),
      ['default-ipv6-ippool'],
    );
    assert.equal(r.skipped[4], 'IPv4 pools exist: mine');
    assert.deepEqual(log.at('warn'), [
      'IPv4 pools exist already, so the default pool settings are not used: ' +
        'environment variable CALICO_IPV4POOL_CIDR=10.65.0.0/16, environment variable CALICO_IPV4POOL_IPIP=Always',
    ]);
    assert.equal((await stored(ds))['mine']?.ipipMode, 'Never'); // untouched
  });

  it('skips_a_family_set_to_none_everything_with_no_default_pools_and_ipv6_without_support', async () => {
    const { ds } = datastore();
    const r = await pools(ds, { CALICO_IPV4POOL_CIDR: 'none' });
    assert.deepEqual(r.skipped, { 4: 'CALICO_IPV4POOL_CIDR is none' });
    assert.deepEqual(Object.keys(await stored(ds)), ['default-ipv6-ippool']);

    const a = datastore();
    assert.equal((await pools(a.ds, { NO_DEFAULT_POOLS: 'true' })).created.length, 0);
    assert.deepEqual(await stored(a.ds), {});

    const b = datastore();
    const noV6 = await pools(b.ds, { FELIX_IPV6SUPPORT: 'false' });
    assert.equal(noV6.skipped[6], 'FELIX_IPV6SUPPORT is false');
    const c = datastore();
    const noKernel = await pools(c.ds, {}, { ipv6Available: false });
    assert.equal(noKernel.skipped[6], 'IPv6 is not available on this host');
    assert.deepEqual(Object.keys(await stored(c.ds)), ['default-ipv4-ippool']);
  });

  it('takes_the_pod_subnets_from_kubeadms_config_map_unless_the_environment_sets_them', async () => {
    const kubeadm = {
      ClusterConfiguration:
        'apiVersion: kubeadm.k8s.io/v1beta3\nnetworking:\n  podSubnet: 10.244.0.7/16,fd10::/64\n',
    };
    const { ds } = datastore();
    await pools(ds, {}, { kubeadm });
    const s = await stored(ds);
    assert.equal(s['default-ipv4-ippool']?.cidr, '10.244.0.0/16'); // host bits cleared, as Calico's ParseCIDR
    assert.equal(s['default-ipv6-ippool']?.cidr, 'fd10::/64');
    const b = datastore();
    await pools(b.ds, { CALICO_IPV4POOL_CIDR: '10.9.0.0/16' }, { kubeadm });
    assert.equal((await stored(b.ds))['default-ipv4-ippool']?.cidr, '10.9.0.0/16');
  });

  it('reads_kubeadms_pod_subnet_line_as_calico_does', () => {
    assert.deepEqual(kubeadmPodCidrs({ a: 'x: 1', b: 'podSubnet: fd10::/64,10.244.0.0/16,10.9.0.0/16' }), {
      6: 'fd10::/64',
      4: '10.244.0.0/16',
    });
    // parsing stops at the first part that is not a CIDR (a space after the comma is one)
    assert.deepEqual(kubeadmPodCidrs({ c: 'podSubnet: 10.244.0.0/16, fd10::/64' }), { 4: '10.244.0.0/16' });
    assert.deepEqual(kubeadmPodCidrs({ c: 'serviceSubnet: 10.96.0.0/12' }), {});
  });

  it('makes_a_unique_local_ipv6_prefix_with_forty_random_bits', () => {
    assert.equal(
      ipv6UlaPrefix(() => Uint8Array.from([0, 0, 0, 0, 0])),
      'fd00::/48',
    );
    assert.equal(
      ipv6UlaPrefix(() => Uint8Array.from([0xab, 0xcd, 0xef, 0x01, 0x23])),
      'fdab:cdef:123::/48',
    );
  });

  it('takes_a_pool_another_node_created_first_as_done', async () => {
    class Racing extends MemoryBackend {
      raced = false;
      override async list(kind: Kind, opts?: { readonly namespace?: string }): Promise<ListResult> {
        const r = await super.list(kind, opts);
        if (kind === 'IPPool' && !this.raced) {
          this.raced = true;
          const pool: AnyResource = {
            apiVersion: API_VERSION,
            kind: 'IPPool',
            metadata: { name: DEFAULT_IPV4_POOL_NAME },
            spec: { cidr: '10.99.0.0/16', blockSize: 26 },
          };
          await this.create(pool);
        }
        return r;
      }
    }
    const ds = new Datastore(new Racing());
    const r = await pools(ds);
    assert.equal(r.skipped[4], 'default-ipv4-ippool was created by another node meanwhile');
    assert.equal((await stored(ds))['default-ipv4-ippool']?.cidr, '10.99.0.0/16');
  });
});
