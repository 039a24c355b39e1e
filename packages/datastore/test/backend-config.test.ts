// Datastore selection from environment and flags, with Calico's variable names.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_YAML_DIR, DatastoreConfigError, datastoreConfig } from '../src/backends/config.js';
import { openBackend } from '../src/backends/open.js';

describe('datastoreConfig', () => {
  it('defaults_to_the_yaml_directory', () => {
    assert.deepEqual(datastoreConfig({}), { type: 'yaml', dir: DEFAULT_YAML_DIR });
    assert.deepEqual(datastoreConfig({ TABBY_DATASTORE_DIR: '/tmp/x' }), { type: 'yaml', dir: '/tmp/x' });
  });

  it('reads_calico_etcd_variables_and_flags_win', () => {
    const env = {
      DATASTORE_TYPE: 'etcdv3',
      ETCD_ENDPOINTS: 'https://10.0.0.1:2379, https://10.0.0.2:2379',
      ETCD_CA_CERT_FILE: '/ca.pem',
      ETCD_CERT_FILE: '/cert.pem',
      ETCD_KEY_FILE: '/key.pem',
    };
    assert.deepEqual(datastoreConfig(env), {
      type: 'etcdv3',
      endpoints: ['https://10.0.0.1:2379', 'https://10.0.0.2:2379'],
      caFile: '/ca.pem',
      certFile: '/cert.pem',
      keyFile: '/key.pem',
    });
    const c = datastoreConfig(env, { 'etcd-endpoints': 'http://127.0.0.1:2379' });
    assert.ok(c.type === 'etcdv3');
    assert.deepEqual(c.endpoints, ['http://127.0.0.1:2379']);
  });

  it('kubernetes_with_and_without_a_kubeconfig', () => {
    assert.deepEqual(datastoreConfig({ DATASTORE_TYPE: 'kubernetes' }), { type: 'kubernetes' });
    assert.deepEqual(datastoreConfig({ DATASTORE_TYPE: 'kubernetes', KUBECONFIG: '/k' }), {
      type: 'kubernetes',
      kubeconfig: '/k',
    });
  });

  it('mistakes_name_the_variable', () => {
    assert.throws(() => datastoreConfig({ DATASTORE_TYPE: 'etcd' }), /needs ETCD_ENDPOINTS/);
    assert.throws(
      () => datastoreConfig({ DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: '10.0.0.1:2379' }),
      (e: unknown) =>
        e instanceof DatastoreConfigError &&
        /ETCD_ENDPOINTS: "10\.0\.0\.1:2379" is not an http/.test(e.message),
    );
    assert.throws(
      () => datastoreConfig({ DATASTORE_TYPE: 'consul' }),
      /must be yaml, etcdv3 or kubernetes, not "consul"/,
    );
  });
});

describe('openBackend', () => {
  it('opens_each_configured_backend_type', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tabby-open-'));
    try {
      const y = await openBackend({ type: 'yaml', dir: join(dir, 'store') });
      assert.equal(y.type, 'yaml');
      await y.close();
      const e = await openBackend({ type: 'etcdv3', endpoints: ['http://127.0.0.1:1'] });
      assert.equal(e.type, 'etcd');
      await e.close();
      const kc = join(dir, 'kubeconfig');
      writeFileSync(
        kc,
        [
          'apiVersion: v1',
          'kind: Config',
          'clusters: [{ name: c, cluster: { server: "http://127.0.0.1:1" } }]',
          'users: [{ name: u, user: { token: t } }]',
          'contexts: [{ name: x, context: { cluster: c, user: u } }]',
          'current-context: x',
        ].join('\n'),
      );
      const k = await openBackend({ type: 'kubernetes', kubeconfig: kc });
      assert.equal(k.type, 'kubernetes');
      await k.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
