// The tabby-ipam plugin and the datastore IpamClient on a real YAML-directory datastore in a
// temp dir: ADD returns a pool address, DEL releases by handle, CHECK, GC, STATUS; and the
// tabby plugin with its IPAM in-process on the same store (Dataplane still the fake).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AnyResource, Backend } from '@tabby/datastore';
import { Datastore, openBackend } from '@tabby/datastore';
import { ipamError, openDatastoreIpam, openDatastoreSession } from '../src/ipam/datastore-client.js';
import { runIpam } from '../src/ipam/tabby-ipam.js';
import type { TabbyIpamConf } from '../src/spec/config.js';
import type { JsonObject } from '../src/spec/result.js';
import { assertError, attachEnv, conf, World } from './support.js';
import type { Invocation } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'tabby-cni-yaml-'));
let backend: Backend;

const res = (kind: string, name: string, spec: unknown): AnyResource =>
  ({ apiVersion: 'tabby.dev/v1', kind, metadata: { name }, spec }) as AnyResource;

before(async () => {
  backend = await openBackend({ type: 'yaml', dir });
  // A /30 pool in /30 blocks: four addresses, so exhaustion is quick to reach.
  await backend.create(res('IPPool', 'small', { cidr: '10.70.0.0/30', blockSize: 30 }));
  await backend.create(res('Node', 'node-1', {}));
});
after(async () => {
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
});

const ipamConf = (extra: JsonObject = {}): JsonObject =>
  conf({
    type: 'tabby',
    ipam: { type: 'tabby-ipam' },
    datastore: { type: 'yaml', dir },
    nodename: 'node-1',
    ...extra,
  });

async function ipamPlugin(env: Record<string, string>, stdin: JsonObject): Promise<Invocation> {
  let stdout = '';
  let stderr = '';
  const code = await runIpam(
    {
      env,
      stdin: JSON.stringify(stdin),
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s) },
    },
    {
      tabbyIpam: (c, i, log) => openDatastoreIpam(c.datastore, i, {}, log),
      nodename: () => Promise.reject(new Error('config names the node')),
      readNamespace: (_k, ns) => Promise.reject(new Error(`unexpected read of namespace ${ns}`)),
    },
  );
  return { code, out: stdout.trim() === '' ? undefined : (JSON.parse(stdout) as JsonObject), stdout, stderr };
}

const handles = async (): Promise<string[]> =>
  (await backend.list('IPAMHandle')).items.map((h) => h.metadata.name).sort();

describe('tabby-ipam on the YAML directory', () => {
  it('ADD_returns_an_address_of_the_pool_without_interfaces', async () => {
    const r = await ipamPlugin(attachEnv('ADD', { CNI_CONTAINERID: 'p1' }), ipamConf());
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(r.out, { cniVersion: '1.1.0', ips: [{ address: '10.70.0.0/32' }] });
    assert.deepEqual(await handles(), ['k8s-pod-network.p1']);
  });

  it('ADD_in_0_4_0_carries_the_ip_version', async () => {
    const r = await ipamPlugin(
      attachEnv('ADD', { CNI_CONTAINERID: 'p2' }),
      ipamConf({ cniVersion: '0.4.0' }),
    );
    assert.deepEqual(r.out, { cniVersion: '0.4.0', ips: [{ version: '4', address: '10.70.0.1/32' }] });
  });

  it('CHECK_passes_for_the_reservation_and_names_a_foreign_address', async () => {
    const ok = await ipamPlugin(
      attachEnv('CHECK', { CNI_CONTAINERID: 'p1' }),
      ipamConf({ prevResult: { cniVersion: '1.1.0', ips: [{ address: '10.70.0.0/32' }] } }),
    );
    assert.equal(ok.code, 0, ok.stdout);
    const bad = await ipamPlugin(
      attachEnv('CHECK', { CNI_CONTAINERID: 'p1' }),
      ipamConf({ prevResult: { cniVersion: '1.1.0', ips: [{ address: '10.70.0.1/32' }] } }),
    );
    assertError(bad, 106, /10\.70\.0\.1\/32 is not reserved for handle k8s-pod-network\.p1/);
  });

  it('DEL_releases_by_handle_and_is_idempotent', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await ipamPlugin(attachEnv('DEL', { CNI_CONTAINERID: 'p2' }), ipamConf());
      assert.equal(r.code, 0, r.stdout);
    }
    assert.deepEqual(await handles(), ['k8s-pod-network.p1']);
  });

  it('fails_ADD_with_101_and_STATUS_with_50_when_the_pool_is_exhausted', async () => {
    for (const id of ['p3', 'p4', 'p5'])
      assert.equal((await ipamPlugin(attachEnv('ADD', { CNI_CONTAINERID: id }), ipamConf())).code, 0);
    assertError(await ipamPlugin(attachEnv('ADD', { CNI_CONTAINERID: 'p6' }), ipamConf()), 101, /small/);
    assertError(await ipamPlugin({ CNI_COMMAND: 'STATUS' }, ipamConf()), 50, /IPv4 pools exhausted/);
  });

  it('GC_releases_this_networks_handles_not_in_valid_attachments', async () => {
    await ipamPlugin(attachEnv('DEL', { CNI_CONTAINERID: 'p5' }), ipamConf());
    const other = await ipamPlugin(
      attachEnv('ADD', { CNI_CONTAINERID: 'o1' }),
      ipamConf({ name: 'other-net' }),
    );
    assert.equal(other.code, 0, other.stdout);
    const r = await ipamPlugin(
      { CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' },
      ipamConf({ 'cni.dev/valid-attachments': [{ containerID: 'p3', ifname: 'eth0' }] }),
    );
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual(await handles(), ['k8s-pod-network.p3', 'other-net.o1']);
    const s = await ipamPlugin({ CNI_COMMAND: 'STATUS' }, ipamConf());
    assert.equal(s.code, 0, s.stdout);
  });

  it('fails_with_102_for_a_node_the_datastore_does_not_know', async () => {
    assertError(
      await ipamPlugin(attachEnv('ADD', { CNI_CONTAINERID: 'p9' }), ipamConf({ nodename: 'node-9' })),
      102,
      /node-9/,
    );
  });

  it('needs_ipam_type_tabby_ipam', async () => {
    assertError(
      await ipamPlugin(attachEnv('ADD'), ipamConf({ ipam: { type: 'host-local' } })),
      7,
      /ipam\.type.*host-local/,
    );
  });
});

describe('the tabby plugin with its IPAM in-process', () => {
  it('allocates_from_the_datastore_and_releases_on_DEL', async () => {
    const w = new World({
      datastore: (c, log) => openDatastoreSession(c.datastore, {}, log),
    });
    const out = await w.add(ipamConf(), { CNI_CONTAINERID: 'k1' });
    const ip = (out['ips'] as JsonObject[])[0]!['address'];
    assert.match(JSON.stringify(ip), /^"10\.70\.0\.[0-3]\/32"$/);
    assert.ok((await handles()).includes('k8s-pod-network.k1'));
    const check = await w.invoke(attachEnv('CHECK', { CNI_CONTAINERID: 'k1' }), {
      ...ipamConf(),
      prevResult: out,
    });
    assert.equal(check.code, 0, check.stdout);
    assert.equal((await w.invoke(attachEnv('DEL', { CNI_CONTAINERID: 'k1' }), ipamConf())).code, 0);
    assert.ok(!(await handles()).includes('k8s-pod-network.k1'));
  });
});

describe('WorkloadEndpoints on the YAML directory', () => {
  const world = (): World => new World({ datastore: (c, log) => openDatastoreSession(c.datastore, {}, log) });
  const weps = async (): Promise<string[]> =>
    (await new Datastore(backend).list('WorkloadEndpoint')).items.map(
      (w) =>
        `${w.metadata.namespace}/${w.metadata.name} ${w.spec.containerID} ${w.spec.ipNetworks?.join(',')}`,
    );

  it('ADD_writes_a_valid_endpoint_that_DEL_removes', async () => {
    const w = world();
    const out = await w.add(ipamConf(), { CNI_CONTAINERID: 'w1' });
    const ip = (out['ips'] as { address: string }[])[0]!.address;
    const stored = await new Datastore(backend).get('WorkloadEndpoint', 'node--1-k8s-nginx-eth0', 'default');
    assert.ok(stored, 'the endpoint is stored and valid');
    assert.equal(stored.spec.node, 'node-1');
    assert.equal(stored.spec.pod, 'nginx');
    assert.equal(stored.spec.orchestrator, 'k8s');
    assert.equal(stored.spec.interfaceName, 'calic440f455693');
    assert.deepEqual(stored.spec.ipNetworks, [ip]);
    assert.match(stored.spec.mac ?? '', /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    assert.equal(stored.metadata.labels?.['projectcalico.org/namespace'], 'default');
    for (let i = 0; i < 2; i++)
      assert.equal((await w.invoke(attachEnv('DEL', { CNI_CONTAINERID: 'w1' }), ipamConf())).code, 0);
    assert.deepEqual(await weps(), []);
    assert.ok(!(await handles()).includes('k8s-pod-network.w1'));
  });

  it('GC_removes_the_endpoints_and_addresses_of_attachments_gone', async () => {
    const w = world();
    for (const id of ['g1', 'g2']) {
      w.dataplane.addNetns(`/run/netns/${id}`);
      await w.add(ipamConf(), {
        CNI_CONTAINERID: id,
        CNI_NETNS: `/run/netns/${id}`,
        CNI_ARGS: `K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod-${id}`,
      });
    }
    const r = await w.invoke(
      { CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' },
      ipamConf({ 'cni.dev/valid-attachments': [{ containerID: 'g2', ifname: 'eth0' }] }),
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(
      (await weps()).map((x) => x.split(' ').slice(0, 2).join(' ')),
      ['ns1/node--1-k8s-pod--g2-eth0 g2'],
    );
    assert.deepEqual(
      (await handles()).filter((h) => h.startsWith('k8s-pod-network.g')),
      ['k8s-pod-network.g2'],
    );
    // and the last one goes with an empty list
    await w.invoke(
      { CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' },
      ipamConf({ 'cni.dev/valid-attachments': [] }),
    );
    assert.deepEqual(await weps(), []);
  });
});

describe('ipamError', () => {
  it('maps_datastore_and_ipam_error_codes_to_cni_codes', () => {
    const e = (code: string) => Object.assign(new Error(code), { code });
    assert.equal(ipamError(e('PoolExhausted'), 'x').code, 101);
    assert.equal(ipamError(e('NoEligiblePool'), 'x').code, 101);
    assert.equal(ipamError(e('MaxBlocksReached'), 'x').code, 101);
    assert.equal(ipamError(e('Unavailable'), 'x').code, 11);
    assert.equal(ipamError(e('RetriesExhausted'), 'x').code, 11);
    assert.equal(ipamError(e('NodeNotFound'), 'x').code, 102);
    assert.equal(ipamError(new Error('?'), 'x').code, 102);
  });
});

describe('opening the datastore', () => {
  it('fails_with_7_when_the_environment_names_a_bad_datastore', async () => {
    const ipam: TabbyIpamConf = {
      type: 'tabby-ipam',
      assignIpv4: true,
      assignIpv6: false,
      ipv4Pools: [],
      ipv6Pools: [],
    };
    await assert.rejects(
      openDatastoreIpam(undefined, ipam, { DATASTORE_TYPE: 'zookeeper' }, () => {}),
      (e: { code?: number; message?: string }) => e.code === 7 && /datastore/.test(e.message ?? ''),
    );
  });
});
