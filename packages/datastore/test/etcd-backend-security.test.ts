// The etcd backend's connection options against an etcd that serves TLS with client
// certificates, then with username/password auth enabled: the right credentials work, and
// wrong or missing ones fail as UnavailableError (not a hang, not a crash).
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { EtcdBackend } from '../src/backends/etcd/index.js';
import type { EtcdBackendOptions } from '../src/backends/etcd/index.js';
import { UnavailableError } from '../src/store/errors.js';
import { res, take } from './conformance/suite.js';
import { EtcdServer, etcdSkipReason, makeTestPki } from '../src/testing/index.js';

function skipReason(): string | undefined {
  const etcd = etcdSkipReason();
  if (etcd !== undefined || existsSync('/usr/bin/openssl')) return etcd;
  const why = 'openssl not installed (apt install openssl)';
  if (process.env['CI'] === 'true') throw new Error(`${why}; CI=true, so this is a failure`);
  console.log(`# skipping etcd TLS tests: ${why}`);
  return why;
}

const skip = skipReason();
if (skip !== undefined) {
  it('etcd_security_tests_need_etcd_and_openssl', { skip }, () => {});
} else {
  const pki = makeTestPki();
  const server = await EtcdServer.start({ pki });
  const raw = new Etcd3({
    hosts: server.endpoint,
    credentials: {
      rootCertificate: readFileSync(pki.caFile),
      certChain: readFileSync(pki.clientCertFile),
      privateKey: readFileSync(pki.clientKeyFile),
    },
  });
  after(async () => {
    raw.close();
    await server.stop();
    rmSync(pki.dir, { recursive: true, force: true });
  });

  describe('etcd backend over TLS, then with auth', () => {
    const backends: EtcdBackend[] = [];
    const open = (extra: Partial<EtcdBackendOptions>): EtcdBackend => {
      const b = new EtcdBackend({
        endpoints: [server.endpoint],
        prefix: '/tabby-security',
        tls: { caFile: pki.caFile, certFile: pki.clientCertFile, keyFile: pki.clientKeyFile },
        dialTimeoutMs: 2000,
        ...extra,
      });
      backends.push(b);
      return b;
    };
    after(async () => {
      for (const b of backends) await b.close();
    });

    it('tls_with_a_client_certificate_reads_writes_and_watches', async () => {
      const b = open({});
      const { revision } = await b.list('Node');
      const w = b.watch('Node', { revision });
      try {
        const n = await b.create(res('Node', 'tls-node', { a: 1 }));
        assert.deepEqual(await b.get({ kind: 'Node', name: 'tls-node' }), n);
        assert.deepEqual(await take(w, 1), [
          { type: 'added', object: n, revision: n.metadata.resourceVersion },
        ]);
      } finally {
        w.close();
      }
    });

    it('tls_without_the_client_certificate_etcd_requires_fails_as_Unavailable', async () => {
      const b = open({ tls: { caFile: pki.caFile } });
      await assert.rejects(b.get({ kind: 'Node', name: 'tls-node' }), UnavailableError);
    });

    it('options_that_cannot_work_are_refused_up_front', () => {
      assert.throws(() => new EtcdBackend({ endpoints: [] }), /no endpoints/);
      assert.throws(
        () => new EtcdBackend({ endpoints: ['http://127.0.0.1:1'], tls: { caFile: pki.caFile } }),
        /http:\/\//,
      );
      assert.throws(
        () => new EtcdBackend({ endpoints: ['https://127.0.0.1:1', 'http://127.0.0.1:2'] }),
        /mix/,
      );
      assert.throws(
        () =>
          new EtcdBackend({ endpoints: ['https://127.0.0.1:1'], tls: { caFile: pki.caFile, certFile: 'x' } }),
        /both certFile and keyFile/,
      );
    });

    it('with_auth_enabled_the_right_password_works_and_a_wrong_or_missing_one_is_Unavailable', async () => {
      await raw.user('root').create('root-pw');
      await raw.user('root').addRole('root');
      await raw.auth.authEnable();
      const good = open({ auth: { username: 'root', password: 'root-pw' } });
      const made = await good.create(res('BGPPeer', 'authed', {}));
      assert.deepEqual(await good.get({ kind: 'BGPPeer', name: 'authed' }), made);
      const { revision } = await good.list('BGPPeer');
      const w = good.watch('BGPPeer', { revision });
      try {
        const more = await good.create(res('BGPPeer', 'authed-2', {}));
        assert.deepEqual(await take(w, 1), [
          { type: 'added', object: more, revision: more.metadata.resourceVersion },
        ]);
      } finally {
        w.close();
      }
      const wrong = open({ auth: { username: 'root', password: 'nope' } });
      await assert.rejects(wrong.get({ kind: 'BGPPeer', name: 'authed' }), UnavailableError);
      // With client certificates etcd takes the certificate's CN as the user: no such user.
      const none = open({});
      await assert.rejects(none.get({ kind: 'BGPPeer', name: 'authed' }), UnavailableError);
    });
  });
}
