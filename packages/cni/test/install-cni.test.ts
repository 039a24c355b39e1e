// bin/install-cni.js, the chart's init container, run as the container runs it but with
// HOST_PREFIX=/ and the "host" directories in a temp dir, so the wrappers it writes can be
// executed for real: the plugins answer VERSION from the installed copy of the bundle.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, it } from 'node:test';

const INSTALL = fileURLToPath(new URL('../../bin/install-cni.js', import.meta.url));
const BUNDLE = fileURLToPath(new URL('../bundle', import.meta.url));
const TEMPLATE = JSON.stringify({
  cniVersion: '1.0.0',
  name: 'k8s-pod-network',
  plugins: [
    {
      type: 'tabby',
      nodename: '__NODENAME__',
      datastore: { type: 'kubernetes', kubeconfig: '__KUBECONFIG_FILEPATH__' },
      ipam: { type: 'tabby-ipam' },
    },
  ],
});

describe('install-cni', () => {
  let dir: string;
  let env: Record<string, string>;
  beforeEach(() => {
    assert.ok(existsSync(join(BUNDLE, 'tabby.cjs')), `no bundle at ${BUNDLE}: run npm run build`);
    dir = mkdtempSync(join(tmpdir(), 'tabby-install-cni-'));
    for (const d of ['bin', 'net.d', 'token', 'image']) mkdirSync(join(dir, d));
    cpSync(BUNDLE, join(dir, 'image/cni'), { recursive: true });
    writeFileSync(join(dir, 'token/token'), 'eyJhbGciOi.token\n');
    writeFileSync(
      join(dir, 'token/ca.crt'),
      '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
    );
    writeFileSync(join(dir, 'template'), TEMPLATE);
    env = {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOST_PREFIX: '/',
      CNI_BIN_DIR: join(dir, 'bin'),
      CNI_NET_DIR: join(dir, 'net.d'),
      TABBY_HOST_DIR: join(dir, 'opt-tabby'),
      CNI_BUNDLE_DIR: join(dir, 'image/cni'),
      CNI_TOKEN_DIR: join(dir, 'token'),
      CNI_NETWORK_CONFIG_FILE: join(dir, 'template'),
      KUBERNETES_NODE_NAME: 'node-1',
      KUBERNETES_SERVICE_HOST: 'fd00::1',
      KUBERNETES_SERVICE_PORT: '443',
    };
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const run = (e: Record<string, string> = env) =>
    spawnSync(process.execPath, [INSTALL], { env: e, encoding: 'utf8' });
  const versions = () => readdirSync(join(dir, 'opt-tabby')).sort();

  it('installs_the_bundle_wrappers_kubeconfig_and_conflist_and_the_plugins_run_from_the_copy', () => {
    const r = run();
    assert.equal(r.status, 0, r.stderr);
    const [version] = versions();
    assert.match(version ?? '', /^cni-[0-9a-f]{12}$/);
    for (const name of ['tabby', 'tabby-ipam']) {
      const wrapper = join(dir, 'bin', name);
      assert.equal(statSync(wrapper).mode & 0o777, 0o755);
      assert.match(
        readFileSync(wrapper, 'utf8'),
        new RegExp(`exec ${join(dir, 'opt-tabby', version!)}/node `),
      );
      const v = spawnSync(wrapper, [], {
        env: { CNI_COMMAND: 'VERSION' },
        input: '{"cniVersion":"1.0.0"}',
        encoding: 'utf8',
      });
      assert.equal(v.status, 0, v.stderr);
      assert.ok(
        (JSON.parse(v.stdout) as { supportedVersions: string[] }).supportedVersions.includes('1.0.0'),
      );
    }
    const kubeconfig = join(dir, 'net.d/tabby-kubeconfig');
    assert.equal(statSync(kubeconfig).mode & 0o777, 0o600);
    const kc = readFileSync(kubeconfig, 'utf8');
    assert.match(kc, /server: https:\/\/\[fd00::1\]:443/);
    assert.match(kc, /token: "eyJhbGciOi.token"/);
    assert.match(
      kc,
      new RegExp(
        `certificate-authority-data: ${Buffer.from(readFileSync(join(dir, 'token/ca.crt'))).toString('base64')}`,
      ),
    );
    const conf = join(dir, 'net.d/10-tabby.conflist');
    assert.equal(statSync(conf).mode & 0o777, 0o600);
    const plugin = (JSON.parse(readFileSync(conf, 'utf8')) as { plugins: Record<string, unknown>[] })
      .plugins[0]!;
    assert.equal(plugin['nodename'], 'node-1');
    assert.deepEqual(plugin['datastore'], { type: 'kubernetes', kubeconfig });
    assert.deepEqual(readdirSync(join(dir, 'net.d')).sort(), ['10-tabby.conflist', 'tabby-kubeconfig']);
  });

  it('keeps_one_previous_bundle_for_running_plugins_and_removes_older_ones', () => {
    assert.equal(run().status, 0);
    assert.equal(run().status, 0);
    const first = versions();
    assert.equal(first.length, 1, 'the same bundle is installed once');
    writeFileSync(join(dir, 'image/cni/extra.mjs'), 'export {};\n');
    assert.equal(run().status, 0);
    const second = versions();
    assert.equal(second.length, 2);
    writeFileSync(join(dir, 'image/cni/extra.mjs'), 'export const x = 1;\n');
    assert.equal(run().status, 0);
    const third = versions();
    assert.equal(third.length, 2);
    assert.ok(!third.includes(first[0]!), 'the oldest bundle is removed');
    const current = readFileSync(join(dir, 'bin/tabby'), 'utf8');
    assert.ok(third.every((v) => existsSync(join(dir, 'opt-tabby', v, 'node'))));
    assert.ok(
      third.some((v) => current.includes(v) && !second.includes(v)),
      'the wrappers name the newest',
    );
  });

  it('refuses_a_template_that_is_not_json_and_writes_no_conflist', () => {
    writeFileSync(join(dir, 'template'), '{"plugins": [');
    const r = run();
    assert.equal(r.status, 1);
    assert.match(r.stderr, /install-cni: the conflist is not valid JSON/);
    assert.ok(!existsSync(join(dir, 'net.d/10-tabby.conflist')));
  });

  it('names_what_is_missing', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ ...env, CNI_NETWORK_CONFIG_FILE: '' }, /CNI_NETWORK_CONFIG_FILE is not set/],
      [{ ...env, KUBERNETES_NODE_NAME: '' }, /__NODENAME__ but KUBERNETES_NODE_NAME is not set/],
      [{ ...env, CNI_TOKEN_DIR: join(dir, 'nothing') }, /__KUBECONFIG_FILEPATH__ but there is no/],
      [{ ...env, CNI_BIN_DIR: join(dir, 'not-mounted') }, /is not mounted/],
      [{ ...env, CNI_BUNDLE_DIR: join(dir, 'image') }, /the tabby plugin\) is missing from the bundle/],
    ];
    for (const [e, why] of cases) {
      const r = run(e);
      assert.equal(r.status, 1, `${String(why)}: ${r.stdout}`);
      assert.match(r.stderr, why);
    }
  });
});
