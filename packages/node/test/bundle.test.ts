// The daemon bundle (tools/bundle.mjs, made by `npm run build`) run as the image installs
// it, from a directory of its own far from node_modules and reached through bin/ symlinks:
// each entry runs, the three addons load from beside it, the CLI works on a YAML directory
// and on a real etcd (etcd3 reads its .proto files as it loads), tabby-node starts and
// answers `tabby status`, and nothing is printed on stderr that is not the program's own.
// Root is not needed (no dataplane); scripts/test-image.mjs runs the same files in the image.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EtcdServer, etcdSkipReason } from '@tabby/datastore/testing';
import { until } from './support/until.js';

const BUNDLE = fileURLToPath(new URL('../bundle', import.meta.url));
const ENTRIES = ['tabby-node', 'tabby', 'bgp-ts'];
const ADDONS = ['tabby_netlink.node', 'tabby_flock.node', 'bgp_sockopt.node'];

describe('the daemon bundle installed elsewhere', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tabby-node-bundle-'));
  const lib = join(dir, 'lib');
  const bin = join(dir, 'bin');

  /** An entry by its bin/ name, with a clean environment; exit status and output. */
  const exec = (name: string, ...args: string[]) => {
    const r = spawnSync(process.execPath, [join(bin, name), ...args], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };

  before(() => {
    assert.ok(existsSync(BUNDLE), `${BUNDLE} is missing: run \`npm run bundle:node\` (npm run build does)`);
    cpSync(BUNDLE, lib, { recursive: true });
    mkdirSync(bin);
    for (const e of ENTRIES) symlinkSync(join('..', 'lib', `${e}.mjs`), join(bin, e));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs_each_entry_through_its_symlink', () => {
    const node = exec('tabby-node', '--help');
    assert.equal(node.code, 0, node.err);
    assert.match(node.out, /^usage: tabby-node/);
    const cli = exec('tabby', 'help');
    assert.equal(cli.code, 0, cli.err);
    assert.match(cli.out, /^usage: tabby/);
    const bgp = exec('bgp-ts', 'help');
    assert.equal(bgp.code, 0, bgp.err);
    assert.match(bgp.out, /bgp-ts decode/);
    assert.equal(node.err + cli.err + bgp.err, '');
  });

  it('loads_each_addon_from_beside_the_bundle', () => {
    for (const a of ADDONS) {
      const m = { exports: {} as Record<string, unknown> };
      process.dlopen(m, join(lib, a));
      assert.ok(Object.keys(m.exports).length > 0, `${a} exports nothing`);
    }
  });

  it('reads_and_writes_a_yaml_datastore_with_the_cli', () => {
    const ds = join(dir, 'yaml');
    const manifest = join(dir, 'pool.yaml');
    writeFileSync(
      manifest,
      'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: pool-yaml\nspec:\n  cidr: 10.81.0.0/16\n',
    );
    const apply = exec('tabby', 'apply', '-f', manifest, '--datastore-dir', ds);
    assert.equal(apply.code, 0, apply.err);
    const get = exec('tabby', 'get', 'ippools', '-o', 'json', '--datastore-dir', ds);
    assert.equal(get.code, 0, get.err);
    assert.match(get.out, /"pool-yaml"/);
  });

  it('reads_and_writes_etcd_with_the_cli', { skip: etcdSkipReason() }, async () => {
    const etcd = await EtcdServer.start();
    try {
      const flags = ['--datastore-type', 'etcdv3', '--etcd-endpoints', etcd.endpoint];
      const manifest = join(dir, 'pool-etcd.yaml');
      writeFileSync(
        manifest,
        'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: pool-etcd\nspec:\n  cidr: 10.82.0.0/16\n',
      );
      const apply = exec('tabby', 'apply', '-f', manifest, ...flags);
      assert.equal(apply.code, 0, apply.err);
      const get = exec('tabby', 'get', 'ippools', '-o', 'json', ...flags);
      assert.equal(get.code, 0, get.err);
      assert.match(get.out, /"pool-etcd"/);
    } finally {
      await etcd.stop();
    }
  });

  it('starts_tabby_node_which_answers_tabby_status_with_only_json_logs', async () => {
    const socket = join(dir, 'node.sock');
    let out = '';
    const p: ChildProcess = spawn(
      process.execPath,
      [
        join(bin, 'tabby-node'),
        '--node',
        'n1',
        '--ip',
        '127.0.0.1/8',
        '--datastore-dir',
        join(dir, 'daemon-ds'),
        '--socket',
        socket,
        '--nodename-file',
        join(dir, 'nodename'),
        '--mtu-file',
        join(dir, 'mtu'),
        '--dataplane',
        'none',
        '--http',
        'none',
        '--bgp-listen',
        '127.0.0.1',
      ],
      { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    p.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
    try {
      let status = exec('tabby', 'status', '--socket', socket);
      await until(
        () => {
          status = exec('tabby', 'status', '--socket', socket);
          return status.code === 0;
        },
        'tabby status to reach the bundled daemon',
        30_000,
        200,
      );
      assert.match(status.out, /tabby-node is running on n1/);
    } finally {
      await new Promise<void>((resolve) => {
        if (p.exitCode !== null) return resolve();
        p.once('exit', () => resolve());
        p.kill('SIGTERM');
      });
    }
    assert.equal(p.exitCode, 0, out);
    // pino's JSON only: a warning from Node or a dependency would show here (DEP0040, the
    // built-in punycode, warns from Node 21: caught when test:lts runs this on Node 24)
    for (const line of out.split('\n').filter((l) => l !== ''))
      assert.doesNotThrow(() => JSON.parse(line), `a line that is not a JSON log record: ${line}`);
  });
});
