// runStartup end to end on the memory datastore with a host table: settings → addresses →
// register → pools → nodename file → tunnel addresses, and each step's failure named.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Kind, ListResult } from '@tabby/datastore';
import { Datastore, Ipam, MemoryBackend, UnavailableError } from '@tabby/datastore';
import type { StartupDeps, StartupStep, StartupSystem } from '../src/index.js';
import { AutodetectionError, runStartup, SettingsError, StartupStepError } from '../src/index.js';
import { nodeOf, RecordingLogger, typicalHost } from './support/startup.js';

class TableSystem implements StartupSystem {
  readonly files = new Map<string, string>();
  failWrites = false;
  readFile(path: string): string | undefined {
    return this.files.get(path);
  }
  writeFile(path: string, text: string): void {
    if (this.failWrites) throw new Error(`EROFS: read-only file system, open '${path}'`);
    this.files.set(path, text);
  }
  hostname(): string {
    return 'Host-1';
  }
  ipv6Available(): boolean {
    return true;
  }
}

function deps(
  env: Record<string, string>,
  over: Partial<StartupDeps> = {},
): StartupDeps & { system: TableSystem } {
  const backend = new MemoryBackend();
  return {
    env,
    datastore: new Datastore(backend),
    ipam: new Ipam({ backend, clock: { now: () => 0, sleep: () => Promise.resolve() } }),
    host: typicalHost({ '8.8.8.8': '10.0.0.5' }),
    system: new TableSystem(),
    randomBytes: (n) => new Uint8Array(n),
    logger: new RecordingLogger(),
    ...over,
  } as StartupDeps & { system: TableSystem };
}

async function failsAt(d: StartupDeps, step: StartupStep): Promise<unknown> {
  let cause: unknown;
  await assert.rejects(runStartup(d), (e) => {
    assert.ok(e instanceof StartupStepError, String(e));
    assert.equal(e.step, step);
    assert.ok(e.message.startsWith(`start-up step ${step} failed: `), e.message);
    cause = e.cause;
    return true;
  });
  return cause;
}

describe('runStartup', () => {
  it('brings_a_node_up_on_an_empty_datastore', async () => {
    const d = deps({
      NODENAME: 'node-a',
      AS: '64600',
      CALICO_IPV4POOL_CIDR: '10.65.0.0/16',
      CALICO_IPV4POOL_IPIP: 'Always',
      IP_AUTODETECTION_METHOD: 'can-reach=8.8.8.8',
    });
    const r = await runStartup(d);
    assert.equal(r.nodeName, 'node-a');
    assert.deepEqual(r.ipv4, { address: '10.0.0.5', prefixLen: 24, cidr: '10.0.0.5/24' });
    assert.equal(r.ipv6, undefined);
    assert.equal(r.asNumber, 64600);
    assert.equal(r.registration, 'created');
    assert.deepEqual(
      r.pools.created.map((p) => [p.metadata.name, p.spec.cidr]),
      [
        ['default-ipv4-ippool', '10.65.0.0/16'],
        ['default-ipv6-ippool', 'fd00::/48'],
      ],
    );
    const tunl = r.tunnelAddresses?.ipv4IPIPTunnelAddr;
    assert.ok(tunl?.startsWith('10.65.'), String(tunl));
    const stored = await nodeOf(d.datastore);
    assert.deepEqual(r.node, stored);
    assert.deepEqual(stored.spec.bgp, {
      ipv4Address: '10.0.0.5/24',
      asNumber: 64600,
      ipv4IPIPTunnelAddr: tunl,
    });
    assert.deepEqual([...d.system.files], [['/var/lib/calico/nodename', 'node-a']]);
  });

  it('finds_its_name_in_the_nodename_file_on_the_next_start_and_changes_nothing', async () => {
    const d = deps({ NODENAME: 'node-a', CALICO_IPV4POOL_VXLAN: 'Always' });
    const first = await runStartup(d);
    const second = await runStartup({ ...d, env: { HOSTNAME: 'renamed-host' } });
    assert.equal(second.nodeName, 'node-a');
    assert.equal(second.settings.nodeNameSource, 'nodename file /var/lib/calico/nodename');
    assert.equal(second.registration, 'unchanged');
    assert.equal(second.pools.created.length, 0);
    assert.equal(second.tunnelAddresses?.ipv4VXLANTunnelAddr, first.tunnelAddresses?.ipv4VXLANTunnelAddr);
    assert.equal(second.node?.metadata.resourceVersion, first.node?.metadata.resourceVersion);
  });

  it('reads_the_kubernetes_node_named_by_calico_k8s_node_ref', async () => {
    const asked: string[] = [];
    const d = deps(
      {
        NODENAME: 'node-a',
        CALICO_K8S_NODE_REF: 'k8s-a',
        IP_AUTODETECTION_METHOD: 'kubernetes-internal-ip',
        NO_DEFAULT_POOLS: 'true',
      },
      {
        kubernetes: {
          nodeAddresses: (name) => {
            asked.push(name);
            return Promise.resolve([{ type: 'InternalIP', address: '10.0.0.5' }]);
          },
          kubeadmConfig: () => Promise.resolve(undefined),
        },
      },
    );
    const r = await runStartup(d);
    assert.deepEqual(asked, ['k8s-a']);
    assert.equal(r.ipv4?.cidr, '10.0.0.5/24');
    assert.deepEqual(r.node?.spec.orchRefs, [{ nodeName: 'k8s-a', orchestrator: 'k8s' }]);
  });

  it('leaves_out_the_node_and_its_tunnel_addresses_with_networking_backend_none', async () => {
    const d = deps({ NODENAME: 'node-a', CALICO_NETWORKING_BACKEND: 'none' });
    const r = await runStartup(d);
    assert.equal(r.node, undefined);
    assert.equal(r.tunnelAddresses, undefined);
    assert.equal(r.pools.created.length, 2); // Calico still makes the default pools
  });

  it('names_the_step_that_failed_with_its_typed_error_as_cause', async () => {
    const bad = await failsAt(deps({ NODENAME: 'node-a', CALICO_IPV4POOL_BLOCK_SIZE: '8' }), 'settings');
    assert.ok(bad instanceof SettingsError);
    assert.match(bad.message, /CALICO_IPV4POOL_BLOCK_SIZE/);

    const miss = await failsAt(
      deps({ NODENAME: 'node-a', IP_AUTODETECTION_METHOD: 'interface=wlan.*' }),
      'register',
    );
    assert.ok(miss instanceof AutodetectionError);

    const broken = deps(
      { NODENAME: 'node-a' },
      {
        host: {
          interfaces: () => Promise.reject(new Error('netlink socket: EPERM')),
          sourceAddressFor: () => Promise.reject(new Error('unused')),
        },
      },
    );
    assert.match(String(await failsAt(broken, 'addresses')), /EPERM/);

    class DownForPools extends MemoryBackend {
      override list(kind: Kind, opts?: { readonly namespace?: string }): Promise<ListResult> {
        if (kind === 'IPPool') return Promise.reject(new UnavailableError('etcd: deadline exceeded'));
        return super.list(kind, opts);
      }
    }
    const down = new DownForPools();
    const cause = await failsAt(
      deps({ NODENAME: 'node-a' }, { datastore: new Datastore(down), ipam: new Ipam({ backend: down }) }),
      'pools',
    );
    assert.ok(cause instanceof UnavailableError);

    const ro = deps({ NODENAME: 'node-a' });
    ro.system.failWrites = true;
    assert.match(String(await failsAt(ro, 'nodename-file')), /EROFS/);
  });
});
