// How the Kubernetes backend finds and authenticates to its API server: in-cluster (service
// account token and CA under a temporary root, over real TLS), a kubeconfig file with a
// bearer token, the default loading rules ($KUBECONFIG), and what a 401 looks like.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KubernetesBackend, SERVICE_ACCOUNT_DIR } from '../src/backends/kubernetes/index.js';
import type { Watch, WatchEvent } from '../src/store/backend.js';
import { UnavailableError } from '../src/store/errors.js';
import { res } from './conformance/suite.js';
import { FakeApiServer } from '../src/testing/fake-apiserver.js';

const FAST = { backoffInitialMs: 20, backoffMaxMs: 200, requestTimeoutMs: 3000, readAttempts: 2 };
const tmp = mkdtempSync(join(tmpdir(), 'tabby-k8s-auth-'));
const closers: { close(): Promise<void> }[] = [];
after(async () => {
  for (const c of closers.reverse()) await c.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function firstEvent(w: Watch, ms = 5000): Promise<WatchEvent> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    w[Symbol.asyncIterator]().next(),
    new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms))),
  ]);
  clearTimeout(timer);
  if (r === 'timeout' || r.done === true) assert.fail('no watch event');
  return r.value;
}

/** Runs `fn` with these environment variables set, then puts the old values back. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const old = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const set = (v: Record<string, string | undefined>): void => {
    for (const [k, x] of Object.entries(v))
      if (x === undefined) delete process.env[k];
      else process.env[k] = x;
  };
  set(vars);
  try {
    return await fn();
  } finally {
    set(old);
  }
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

/** A CA and a server certificate for 127.0.0.1 signed by it, made with the openssl CLI. */
function makeCerts(dir: string, ca = 'ca'): { ca: string; key: string; cert: string } {
  mkdirSync(dir, { recursive: true });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    ['req', '-x509', ...ec, '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '1', '-subj', `/CN=${ca}`],
    dir,
  );
  openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'], dir);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      `${ca}.crt`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-out',
      'server.crt',
      '-days',
      '1',
      '-extfile',
      'ext.cnf',
    ],
    dir,
  );
  return {
    ca: readFileSync(join(dir, `${ca}.crt`), 'utf8'),
    key: readFileSync(join(dir, 'server.key'), 'utf8'),
    cert: readFileSync(join(dir, 'server.crt'), 'utf8'),
  };
}

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
const noOpenssl = 'the openssl CLI is not installed (needed to make a CA and server certificate)';
if (!hasOpenssl) {
  if (process.env['CI'] === 'true') throw new Error(`CI=true and ${noOpenssl}`);
  console.log(`kubernetes-backend-auth: SKIPPING the in-cluster TLS tests: ${noOpenssl}`);
}

describe('Kubernetes backend: in-cluster config', { skip: hasOpenssl ? false : noOpenssl }, () => {
  let server: FakeApiServer;
  let root: string;
  let ca: string;

  function serviceAccountRoot(name: string, token: string, caPem: string): string {
    const r = join(tmp, name);
    const sa = join(r, SERVICE_ACCOUNT_DIR);
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), token);
    writeFileSync(join(sa, 'ca.crt'), caPem);
    writeFileSync(join(sa, 'namespace'), 'kube-system');
    return r;
  }

  before(async () => {
    const certs = makeCerts(join(tmp, 'pki'));
    ca = certs.ca;
    server = await FakeApiServer.start({ tls: { key: certs.key, cert: certs.cert }, token: 'sa-token-1' });
    closers.push(server);
    root = serviceAccountRoot('pod', 'sa-token-1', ca);
  });

  const env = (): Record<string, string> => ({
    KUBERNETES_SERVICE_HOST: '127.0.0.1',
    KUBERNETES_SERVICE_PORT: String(server.port),
  });

  it('the_service_account_token_and_CA_reach_the_API_server_over_TLS', async () => {
    await withEnv(env(), async () => {
      const b = new KubernetesBackend({ inCluster: true, root }, FAST);
      closers.push(b);
      assert.equal(b.server, `https://127.0.0.1:${server.port}`);
      await b.create(res('IPPool', 'pool', { cidr: '10.65.0.0/16' }));
      assert.equal((await b.get({ kind: 'IPPool', name: 'pool' }))?.metadata.name, 'pool');
      const w = b.watch('IPPool');
      try {
        const e = await firstEvent(w);
        assert.equal(e.type, 'resync');
      } finally {
        w.close();
      }
      const seen = server.requests.filter((r) => r.status !== 401);
      assert.ok(seen.length >= 3);
      for (const r of seen) assert.equal(r.authorization, 'Bearer sa-token-1');
    });
  });

  it('a_server_certificate_from_another_CA_is_refused', async () => {
    const other = makeCerts(join(tmp, 'pki-other'), 'other-ca');
    const wrong = serviceAccountRoot('pod-wrong-ca', 'sa-token-1', other.ca);
    await withEnv(env(), async () => {
      const b = new KubernetesBackend({ inCluster: true, root: wrong }, FAST);
      closers.push(b);
      await assert.rejects(b.get({ kind: 'IPPool', name: 'pool' }), (e: unknown) => {
        assert.ok(e instanceof UnavailableError);
        assert.match(e.message, /certificate/i);
        return true;
      });
    });
  });

  it('a_wrong_token_is_a_401_that_names_authentication', async () => {
    const stale = serviceAccountRoot('pod-stale-token', 'expired-token', ca);
    await withEnv(env(), async () => {
      const b = new KubernetesBackend({ inCluster: true, root: stale }, FAST);
      closers.push(b);
      await assert.rejects(b.list('IPPool'), (e: unknown) => {
        assert.ok(e instanceof UnavailableError);
        assert.match(e.message, /401 Unauthorized: authentication failed/);
        return true;
      });
    });
  });

  it('outside_a_pod_the_error_says_what_is_missing', async () => {
    await withEnv({ KUBERNETES_SERVICE_HOST: undefined, KUBERNETES_SERVICE_PORT: undefined }, () => {
      assert.throws(() => new KubernetesBackend({ inCluster: true, root }), /KUBERNETES_SERVICE_HOST/);
      return Promise.resolve();
    });
    await withEnv(env(), () => {
      assert.throws(
        () => new KubernetesBackend({ inCluster: true, root: join(tmp, 'no-such-root') }),
        /serviceaccount\/token/,
      );
      return Promise.resolve();
    });
  });
});

describe('Kubernetes backend: kubeconfig file', () => {
  let server: FakeApiServer;
  before(async () => {
    server = await FakeApiServer.start({ token: 's3cret' });
    closers.push(server);
  });

  function kubeconfig(name: string, users: Record<string, string | undefined>, current: string): string {
    const p = join(tmp, name);
    const userYaml = Object.entries(users)
      .map(([u, tok]) => `- name: ${u}\n  user:${tok === undefined ? ' {}' : `\n    token: ${tok}`}`)
      .join('\n');
    const contexts = Object.keys(users)
      .map((u) => `- name: ${u}\n  context:\n    cluster: fake\n    user: ${u}`)
      .join('\n');
    writeFileSync(
      p,
      `apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: ${server.url}
    insecure-skip-tls-verify: true
users:
${userYaml}
contexts:
${contexts}
current-context: ${current}
`,
    );
    return p;
  }

  it('a_bearer_token_from_the_file_is_sent_and_accepted', async () => {
    const path = kubeconfig('good.yaml', { tabby: 's3cret' }, 'tabby');
    const b = new KubernetesBackend({ kubeconfigPath: path }, FAST);
    closers.push(b);
    await b.create(res('BGPPeer', 'tor', { peerIP: '10.0.0.1' }));
    assert.equal((await b.list('BGPPeer')).items.length, 1);
    assert.equal(server.requests.at(-1)?.authorization, 'Bearer s3cret');
  });

  it('without_the_token_reads_writes_and_watches_fail_naming_authentication', async () => {
    const path = kubeconfig('anon.yaml', { anonymous: undefined }, 'anonymous');
    const b = new KubernetesBackend({ kubeconfigPath: path }, FAST);
    closers.push(b);
    const auth = /401 Unauthorized: authentication failed/;
    await assert.rejects(
      b.get({ kind: 'BGPPeer', name: 'tor' }),
      (e: unknown) => e instanceof UnavailableError && auth.test(e.message),
    );
    await assert.rejects(
      b.create(res('BGPPeer', 'x', {})),
      (e: unknown) => e instanceof UnavailableError && auth.test(e.message),
    );
    const w = b.watch('BGPPeer');
    try {
      const e = await firstEvent(w);
      assert.ok(e.type === 'error' && auth.test(e.error.message), JSON.stringify(e));
    } finally {
      w.close();
    }
  });

  it('a_named_context_is_used_and_an_unknown_one_is_refused', async () => {
    const path = kubeconfig('two.yaml', { anonymous: undefined, tabby: 's3cret' }, 'anonymous');
    const b = new KubernetesBackend({ kubeconfigPath: path, context: 'tabby' }, FAST);
    closers.push(b);
    assert.equal(await b.get({ kind: 'BGPPeer', name: 'nope' }), undefined);
    assert.throws(
      () => new KubernetesBackend({ kubeconfigPath: path, context: 'nope' }),
      /no context named nope/,
    );
  });

  it('the_default_loading_rules_follow_KUBECONFIG', async () => {
    const path = kubeconfig('env.yaml', { tabby: 's3cret' }, 'tabby');
    await withEnv({ KUBECONFIG: path }, async () => {
      const b = new KubernetesBackend({ defaults: true }, FAST);
      closers.push(b);
      assert.equal(b.server, server.url);
      assert.equal(await b.get({ kind: 'Node', name: 'none' }), undefined);
    });
  });
});
