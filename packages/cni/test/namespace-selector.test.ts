// IPPool namespaceSelector in the tabby and tabby-ipam plugins, on real datastores (a YAML
// directory; a Kubernetes one on the in-process API server) with the Namespace the API
// server answers taken from @tabby/datastore/testing's recorded bodies. The labels are read
// only when a pool needs them; without a kubeconfig that is an error naming the pool.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AnyResource } from '@tabby/datastore';
import { openBackend } from '@tabby/datastore';
import { FakeApiServer, recorded } from '@tabby/datastore/testing';
import {
  openDatastoreIpam,
  openDatastoreSession,
  readNamespaceLabels,
} from '../src/ipam/datastore-client.js';
import { runIpam } from '../src/ipam/tabby-ipam.js';
import type { JsonObject } from '../src/spec/result.js';
import { assertError, attachEnv, conf, World } from './support.js';

const PORT = 17700; // this worker's range: 17700-17799
const TOKEN = 'cni-namespace-test';
const tmp = mkdtempSync(join(tmpdir(), 'tabby-cni-nssel-'));
const kubeconfig = join(tmp, 'kubeconfig');
let server: FakeApiServer;

before(async () => {
  server = await FakeApiServer.start({ port: PORT, token: TOKEN });
  // What GET /api/v1/namespaces/development answers: labels name=development and the
  // control plane's kubernetes.io/metadata.name=development.
  server.putNamespace(recorded('namespace-development.json') as Record<string, unknown>);
  writeFileSync(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      // client-node refuses plain http unless TLS verification is off (there is no TLS).
      `- name: fake\n  cluster:\n    server: ${server.url}\n    insecure-skip-tls-verify: true`,
      `users:\n- name: cni\n  user:\n    token: ${TOKEN}`,
      'contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: cni',
      'current-context: fake',
      '',
    ].join('\n'),
  );
});
after(async () => {
  await server.close();
  rmSync(tmp, { recursive: true, force: true });
});

const res = (kind: string, name: string, spec: unknown): AnyResource =>
  ({ apiVersion: 'tabby.dev/v1', kind, metadata: { name }, spec }) as AnyResource;

const PROD = { cidr: '10.70.1.0/24', namespaceSelector: "environment == 'production'" };
const DEV = { cidr: '10.70.2.0/24', namespaceSelector: "kubernetes.io/metadata.name == 'development'" };

/** The datastores used here, as a config's `datastore` and as openBackend's argument. */
type Ds = { type: 'yaml'; dir: string } | { type: 'kubernetes'; kubeconfig: string };

let n = 0;
/** A fresh datastore holding `pools` and Node node-1. */
async function store(pools: Record<string, unknown>, type: 'yaml' | 'kubernetes' = 'yaml'): Promise<Ds> {
  const cfg: Ds = type === 'yaml' ? { type, dir: join(tmp, `ds-${++n}`) } : { type, kubeconfig };
  const b = await openBackend(cfg);
  try {
    for (const [name, spec] of Object.entries(pools)) await b.create(res('IPPool', name, spec));
    if ((await b.get({ kind: 'Node', name: 'node-1' })) === undefined)
      await b.create(res('Node', 'node-1', {}));
  } finally {
    await b.close();
  }
  return cfg;
}

/** The tabby plugin with Tabby's IPAM on `ds` and the real namespace reader; the kernel faked. */
const world = (): World =>
  new World({
    datastore: (c, log) => openDatastoreSession(c.datastore, {}, log),
    readNamespace: readNamespaceLabels,
  });

const nsConf = (ds: Ds, extra: JsonObject = {}): JsonObject =>
  conf({ nodename: 'node-1', datastore: { ...ds }, kubernetes: { kubeconfig }, ...extra });

const podIn = (namespace: string, pod = 'web'): Record<string, string> => ({
  CNI_ARGS: `K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${pod}`,
});

const namespaceGets = (): string[] =>
  server.requests.filter((r) => r.path.startsWith('/api/v1/namespaces/')).map((r) => r.path);

const addressOf = (out: JsonObject): string => (out['ips'] as { address: string }[])[0]!.address;

describe('IPPool namespaceSelector', () => {
  it('gives_a_pod_an_address_of_the_pool_selecting_its_namespace_from_one_api_read', async () => {
    const ds = await store({ prod: PROD, dev: DEV });
    const before = namespaceGets().length;
    const out = await world().add(nsConf(ds), podIn('development'));
    assert.match(addressOf(out), /^10\.70\.2\.\d+\/32$/);
    assert.deepEqual(namespaceGets().slice(before), ['/api/v1/namespaces/development']);
    assert.equal(server.requests.at(-1)?.authorization, `Bearer ${TOKEN}`);
  });

  it('reads_no_namespace_when_no_pool_selects_by_namespace', async () => {
    const ds = await store({ plain: { cidr: '10.70.3.0/24' } });
    const before = server.requests.length;
    const out = await world().add(nsConf(ds), podIn('development'));
    assert.match(addressOf(out), /^10\.70\.3\.\d+\/32$/);
    assert.equal(server.requests.length, before, 'no request to the API server at all');
    // and needs no kubeconfig
    await world().add(nsConf(ds, { kubernetes: {} }), {
      ...podIn('development', 'web2'),
      CNI_CONTAINERID: 'c2',
    });
  });

  it('ignores_selectors_for_pools_the_config_names_as_calico_does', async () => {
    const ds = await store({ prod: PROD, dev: DEV });
    const before = namespaceGets().length;
    const c = nsConf(ds, { ipam: { type: 'tabby-ipam', ipv4_pools: [PROD.cidr] } });
    assert.match(addressOf(await world().add(c, podIn('development'))), /^10\.70\.1\.\d+\/32$/);
    assert.equal(namespaceGets().length, before);
  });

  it('fails_with_7_naming_the_pool_and_kubernetes_kubeconfig_when_there_is_none', async () => {
    const ds = await store({ plain: { cidr: '10.70.3.0/24', disabled: true }, dev: DEV });
    const w = world();
    const r = await w.invoke(attachEnv('ADD', podIn('development')), nsConf(ds, { kubernetes: {} }));
    assertError(
      r,
      7,
      /invalid network config: kubernetes\.kubeconfig: IPPool dev \(10\.70\.2\.0\/24\) selects namespaces .*namespace development.*no kubernetes\.kubeconfig/,
    );
    const b = await openBackend(ds);
    try {
      assert.deepEqual((await b.list('IPAMHandle')).items, [], 'nothing allocated');
    } finally {
      await b.close();
    }
    assert.deepEqual(w.dataplane.calls, []);
  });

  it('matches_the_api_servers_labels_only_not_calicos_projectcalico_org_name_policy_label', async () => {
    const ds = await store({
      byname: { cidr: '10.70.4.0/24', namespaceSelector: "projectcalico.org/name == 'development'" },
    });
    const r = await world().invoke(attachEnv('ADD', podIn('development')), nsConf(ds));
    assertError(r, 101, /byname \(10\.70\.4\.0\/24\): namespaceSelector does not match/);
  });

  it('matches_against_no_labels_and_reads_nothing_for_a_container_that_is_no_pod', async () => {
    const ds = await store({
      prod: PROD,
      rest: { cidr: '10.70.5.0/24', namespaceSelector: '!has(environment)' },
    });
    const before = namespaceGets().length;
    const out = await world().add(nsConf(ds, { kubernetes: {} }), { CNI_ARGS: '' });
    assert.match(addressOf(out), /^10\.70\.5\.\d+\/32$/);
    assert.equal(namespaceGets().length, before);
  });

  it('fails_with_102_for_a_namespace_the_api_server_does_not_have_and_11_while_it_is_down', async () => {
    const ds = await store({ prod: PROD, dev: DEV });
    assertError(
      await world().invoke(attachEnv('ADD', podIn('staging')), nsConf(ds)),
      102,
      /reading the labels of namespace staging .*Namespace staging not found/,
    );
    server.failNext(20, 503);
    try {
      assertError(
        await world().invoke(attachEnv('ADD', podIn('development')), nsConf(ds)),
        11,
        /reading the labels of namespace development .*503/,
      );
    } finally {
      server.failNext(0);
    }
  });

  it('uses_the_kubernetes_datastores_kubeconfig_when_the_config_has_no_kubernetes_section', async () => {
    const ds = await store({ 'k8s-prod': PROD, 'k8s-dev': DEV }, 'kubernetes');
    const before = namespaceGets().length;
    const out = await world().add(conf({ nodename: 'node-1', datastore: { ...ds } }), podIn('development'));
    assert.match(addressOf(out), /^10\.70\.2\.\d+\/32$/);
    assert.deepEqual(namespaceGets().slice(before), ['/api/v1/namespaces/development']);
  });

  it('applies_in_the_tabby_ipam_plugin_too', async () => {
    const ds = await store({ prod: PROD, dev: DEV });
    let stdout = '';
    const code = await runIpam(
      {
        env: attachEnv('ADD', podIn('development')),
        stdin: JSON.stringify(nsConf(ds)),
        stdout: { write: (s: string) => (stdout += s) },
        stderr: { write: () => true },
      },
      {
        tabbyIpam: (c, i, log) => openDatastoreIpam(c.datastore, i, {}, log),
        nodename: () => Promise.resolve('node-1'),
        readNamespace: readNamespaceLabels,
      },
    );
    assert.equal(code, 0, stdout);
    assert.match(addressOf(JSON.parse(stdout) as JsonObject), /^10\.70\.2\.\d+\/32$/);
  });
});

describe('the kubernetes section of the config', () => {
  it('refuses_calicos_other_keys_and_a_relative_kubeconfig', async () => {
    const w = new World();
    assertError(
      await w.invoke(attachEnv('ADD'), conf({ kubernetes: { k8s_api_root: 'https://x' } })),
      2,
      /kubernetes\.k8s_api_root/,
    );
    assertError(
      await w.invoke(attachEnv('ADD'), conf({ kubernetes: { kubeconfig: 'kubeconfig' } })),
      7,
      /kubernetes\.kubeconfig: must be an absolute path/,
    );
  });
});
