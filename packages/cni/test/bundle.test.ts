// The bundle (tools/bundle.mjs, made by `npm run build`): what each executable loads at
// start (esbuild's metafile), and what the path to the node daemon loads (no datastore);
// and the bundle run as an installed copy would be, from a directory of its own far from
// node_modules: tabby-ipam on a YAML datastore (the flock addon loaded from beside the
// bundle), tabby-ipam through a node daemon with the datastore's files deleted, VERSION,
// and the errors of a missing addon.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { AnyResource } from '@tabby/datastore';
import { openBackend } from '@tabby/datastore';
import { FakeNode } from './node-fake.js';
import { attachEnv } from './support.js';

const BUNDLE = fileURLToPath(new URL('../bundle', import.meta.url));

interface Meta {
  readonly outdir: string;
  readonly outputs: Record<
    string,
    {
      readonly entryPoint?: string;
      readonly inputs: Record<string, unknown>;
      readonly imports: readonly { path: string; kind: string; external?: boolean }[];
    }
  >;
}

function meta(): Meta {
  const f = `${BUNDLE}.meta.json`;
  assert.ok(existsSync(f), `${f} is missing: run \`npm run bundle:cni\` (npm run build does)`);
  return JSON.parse(readFileSync(f, 'utf8')) as Meta;
}

/** The source files an output and its static imports hold: what loads before any dynamic import. */
function eagerInputs(m: Meta, out: string): string[] {
  const files = new Set([out]);
  for (const f of files)
    for (const i of m.outputs[f]?.imports ?? [])
      if (i.kind === 'import-statement' && i.external !== true) files.add(i.path);
  return [...files].flatMap((f) => Object.keys(m.outputs[f]?.inputs ?? {}));
}

/** The output built from an entry point (a path below the package). */
const entryOf = (m: Meta, entryPoint: string): string => {
  const o = Object.entries(m.outputs).find(([, v]) => v.entryPoint === entryPoint);
  assert.ok(o, `no bundle output for ${entryPoint}`);
  return o[0];
};

/** The output holding an input file (a package's source by its path suffix). */
const holding = (m: Meta, suffix: string): string => {
  const o = Object.entries(m.outputs).find(([, v]) => Object.keys(v.inputs).some((i) => i.endsWith(suffix)));
  assert.ok(o, `no bundle output holds ${suffix}`);
  return o[0];
};

const HEAVY = [/node_modules\/etcd3\//, /node_modules\/@kubernetes\//, /node_modules\/@grpc\//];

describe('the bundle', () => {
  it('starts_tabby_as_one_commonjs_file_that_loads_the_plugin_only_when_the_daemon_does_not_run_it', () => {
    // tabby: the way to tabby-node (src/entry.ts, node-api/delegate.ts) in one CommonJS file,
    // nothing of the plugin's commands; the plugin proper, tabby-main.mjs, only by dynamic import.
    const m = meta();
    const out = entryOf(m, 'tools/tabby-entry.mjs');
    assert.equal(out, 'dist/bundle/tabby.cjs');
    assert.deepEqual(
      Object.keys(m.outputs[out]?.inputs ?? {})
        .map((i) => i.replace(/^.*dist\/src\//, ''))
        .sort(),
      [
        'compile-cache.js',
        'entry.js',
        'node-api/connection.js',
        'node-api/delegate.js',
        'node-api/protocol.js',
        'spec/errors.js',
        'tools/tabby-entry.mjs',
      ],
    );
    const own = (m.outputs[out]?.imports ?? []).filter((i) => !i.path.startsWith('node:'));
    assert.deepEqual(own, [{ path: './tabby-main.mjs', kind: 'dynamic-import', external: true }]);
    assert.ok(existsSync(join(BUNDLE, 'tabby-main.mjs')), 'tabby.cjs imports ./tabby-main.mjs: it is there');
    assert.equal(entryOf(m, 'dist/src/main.js'), 'dist/bundle/tabby-main.mjs');
  });

  it('starts_the_plugin_and_tabby_ipam_without_the_datastore_the_kernel_dataplane_or_any_client', () => {
    const m = meta();
    // tabby-ipam turns the compile cache on, then imports the plugin: nothing else first.
    const ipam = entryOf(m, 'bin/tabby-ipam.js');
    const first = eagerInputs(m, ipam);
    assert.ok(first.some((i) => i.endsWith('dist/src/compile-cache.js')));
    assert.ok(
      !first.some((i) => i.endsWith('dist/src/commands/skel.js')),
      'the plugin loads after the cache',
    );
    const dynamic = (m.outputs[ipam]?.imports ?? []).filter((i) => i.kind === 'dynamic-import');
    assert.deepEqual(
      dynamic.map((i) => i.path),
      [entryOf(m, 'dist/src/main.js')],
      "tabby-ipam's dynamic import is the plugin",
    );
    for (const [name, eager] of [
      ['tabby-ipam', [...first, ...eagerInputs(m, dynamic[0]!.path)]],
      ['the plugin (tabby-main.mjs)', eagerInputs(m, entryOf(m, 'dist/src/main.js'))],
    ] as const) {
      assert.ok(
        eager.some((i) => i.endsWith('dist/src/commands/skel.js')),
        `the dispatcher is in ${name}'s start-up files`,
      );
      for (const bad of [...HEAVY, /node_modules\/yaml\//, /datastore\/dist\//, /netlink\/dist\//])
        assert.deepEqual(
          eager.filter((i) => bad.test(i)),
          [],
          `${name} loads ${String(bad)} at start`,
        );
    }
  });

  it('keeps_the_etcd_and_kubernetes_clients_out_of_the_yaml_datastore_path', () => {
    const m = meta();
    for (const suffix of ['datastore/dist/src/core.js', 'datastore/dist/src/backends/yaml/backend.js']) {
      const eager = eagerInputs(m, holding(m, suffix));
      for (const bad of HEAVY)
        assert.deepEqual(
          eager.filter((i) => bad.test(i)),
          [],
          `${suffix} loads ${String(bad)} with it`,
        );
    }
    // and they are there, for the datastores that need them
    for (const suffix of ['node_modules/etcd3/lib/index.js', 'backends/kubernetes/backend.js'])
      assert.notEqual(holding(m, suffix), holding(m, 'datastore/dist/src/core.js'));
  });

  it('loads_with_the_datastore_only_what_the_plugin_uses', () => {
    // @tabby/datastore has no side effects and datastore-client imports names, not the
    // namespace: what it loads, statically or by dynamic import short of the backend a
    // config picks and the manifest parser, is IPAM, the store and the backend switch.
    const m = meta();
    const lazy = [/datastore\/dist\/src\/backends\/(yaml|etcd|kubernetes)\//, /node_modules\/yaml\//];
    const files = new Set([holding(m, 'dist/src/ipam/datastore-client.js')]);
    for (const f of files)
      for (const i of m.outputs[f]?.imports ?? []) {
        if (i.external === true) continue;
        const loads = eagerInputs(m, i.path);
        if (i.kind === 'dynamic-import' && loads.some((x) => lazy.some((re) => re.test(x)))) continue;
        files.add(i.path);
      }
    const eager = [...files].flatMap((f) => Object.keys(m.outputs[f]?.inputs ?? {}));
    assert.ok(eager.some((i) => i.endsWith('datastore/dist/src/ipam/ipam.js')));
    for (const bad of [
      /datastore\/dist\/src\/cli\//,
      /datastore\/dist\/src\/ipam\/cli\.js$/,
      /datastore\/dist\/src\/resources\/crds/,
      /datastore\/dist\/src\/store\/memory\.js$/,
      /datastore\/dist\/src\/testing\//,
      /datastore\/dist\/src\/backends\/(yaml|etcd|kubernetes)\//,
      /node_modules\/yaml\//,
      ...HEAVY,
    ])
      assert.deepEqual(
        eager.filter((i) => bad.test(i)),
        [],
        `the datastore chunk loads ${String(bad)}`,
      );
  });

  it('loads_no_datastore_on_the_way_to_the_node_daemon', () => {
    // The daemon's client and what it imports at once: the ADD path when tabby-node answers.
    const m = meta();
    const eager = eagerInputs(m, holding(m, 'dist/src/node-api/client.js'));
    assert.ok(eager.some((i) => i.endsWith('dist/src/node-api/protocol.js')));
    for (const bad of [
      ...HEAVY,
      /node_modules\/yaml\//,
      /datastore\/dist\//,
      /netlink\/dist\//,
      /ipam\/datastore-client\.js$/,
    ])
      assert.deepEqual(
        eager.filter((i) => bad.test(i)),
        [],
        `the node daemon's client loads ${String(bad)} with it`,
      );
  });

  it('rewrites_the_addon_paths_to_files_beside_the_bundle', () => {
    for (const addon of ['tabby_netlink.node', 'tabby_flock.node']) {
      assert.ok(existsSync(join(BUNDLE, addon)), `${addon} is copied beside the bundle`);
      const m = meta();
      const loader = holding(m, addon === 'tabby_flock.node' ? 'yaml/lock.js' : 'client/native.js');
      const text = readFileSync(join(BUNDLE, '..', '..', loader), 'utf8');
      assert.ok(text.includes(`"./${addon}"`), `${loader} loads ./${addon}`);
      assert.ok(!text.includes('build/Release'), `${loader} still points into build/Release`);
    }
  });
});

describe('the bundle installed elsewhere', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tabby-cni-bundle-'));
  const bin = join(dir, 'bin');
  const ds = join(dir, 'datastore');
  const conf = JSON.stringify({
    cniVersion: '1.1.0',
    name: 'net1',
    type: 'tabby-ipam',
    nodename: 'node-1',
    datastore: { type: 'yaml', dir: ds },
    ipam: { type: 'tabby-ipam' },
  });
  const plugin = (
    file: string,
    env: Record<string, string>,
    stdin: string,
  ): { code: number | null; out: string; err: string } => {
    const r = spawnSync(process.execPath, [join(bin, file)], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env },
      input: stdin,
      encoding: 'utf8',
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };

  /** As `plugin`, without blocking this process (a stand-in daemon answers here). */
  const pluginAsync = (
    file: string,
    env: Record<string, string>,
    stdin: string,
  ): Promise<{ code: number | null; out: string; err: string }> =>
    new Promise((resolve, reject) => {
      const c = spawn(process.execPath, [file], {
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env },
      });
      let out = '';
      let err = '';
      c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      c.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      c.on('error', reject);
      c.on('close', (code) => resolve({ code, out, err }));
      c.stdin.end(stdin);
    });

  before(async () => {
    assert.ok(existsSync(BUNDLE), `${BUNDLE} is missing: run \`npm run bundle:cni\``);
    cpSync(BUNDLE, bin, { recursive: true });
    const b = await openBackend({ type: 'yaml', dir: ds });
    try {
      for (const r of [
        { kind: 'IPPool', metadata: { name: 'p' }, spec: { cidr: '10.80.0.0/30', blockSize: 30 } },
        { kind: 'Node', metadata: { name: 'node-1' }, spec: {} },
      ])
        await b.create({ apiVersion: 'tabby.dev/v1', ...r } as AnyResource);
    } finally {
      await b.close();
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('answers_VERSION', () => {
    const r = plugin('tabby.cjs', { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
    assert.equal(r.code, 0, r.err);
    assert.equal((JSON.parse(r.out) as { cniVersion: string }).cniVersion, '1.0.0');
  });

  it('allocates_and_releases_with_tabby_ipam_on_a_yaml_datastore', () => {
    const add = plugin('tabby-ipam.mjs', attachEnv('ADD', { CNI_CONTAINERID: 'b1' }), conf);
    assert.equal(add.code, 0, add.out + add.err);
    assert.deepEqual(JSON.parse(add.out), { cniVersion: '1.1.0', ips: [{ address: '10.80.0.0/32' }] });
    const del = plugin('tabby-ipam.mjs', attachEnv('DEL', { CNI_CONTAINERID: 'b1' }), conf);
    assert.equal(del.code, 0, del.out + del.err);
  });

  it('loads_the_etcd_backend_with_its_proto_files_from_beside_the_bundle', () => {
    // Nothing listens on port 1: the etcd chunk loaded (etcd3 reads rpc.proto as it loads,
    // once through __dirname, which an ES module lacks) and the plugin tried to connect.
    const etcdConf = JSON.stringify({
      ...JSON.parse(conf),
      datastore: { type: 'etcdv3', endpoints: ['http://127.0.0.1:1'] },
    });
    const r = plugin('tabby-ipam.mjs', { CNI_COMMAND: 'STATUS' }, etcdConf);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /UNAVAILABLE|ECONNREFUSED/, r.out + r.err);
    assert.doesNotMatch(r.out + r.err, /rpc\.proto|ENOENT/);
  });

  it('assigns_through_the_node_daemon_with_every_datastore_file_of_the_bundle_removed', async () => {
    // A copy without the chunks that hold @tabby/datastore: tabby-ipam ADD and DEL still
    // work through the daemon, so nothing on that path loads them; without the daemon the
    // same copy fails for want of them.
    const m = meta();
    const lean = join(dir, 'lean');
    cpSync(BUNDLE, lean, { recursive: true });
    const removed = Object.entries(m.outputs)
      .filter(([, o]) => Object.keys(o.inputs).some((i) => /datastore\/dist\//.test(i)))
      .map(([out]) => out.split('/').at(-1)!);
    assert.ok(removed.length > 0);
    for (const f of removed) unlinkSync(join(lean, f));
    const socket = join(dir, 'node.sock');
    const daemon = await FakeNode.start(socket);
    try {
      const withDaemon = JSON.stringify({ ...JSON.parse(conf), node_socket: socket });
      const add = await pluginAsync(
        join(lean, 'tabby-ipam.mjs'),
        attachEnv('ADD', { CNI_CONTAINERID: 'd1' }),
        withDaemon,
      );
      assert.equal(add.code, 0, add.out + add.err);
      assert.deepEqual(JSON.parse(add.out), { cniVersion: '1.1.0', ips: [{ address: '10.80.0.1/32' }] });
      const del = await pluginAsync(
        join(lean, 'tabby-ipam.mjs'),
        attachEnv('DEL', { CNI_CONTAINERID: 'd1' }),
        withDaemon,
      );
      assert.equal(del.code, 0, del.out + del.err);
      assert.deepEqual(daemon.cmds, ['cni.hello', 'cni.assign', 'cni.hello', 'cni.release']);
    } finally {
      await daemon.stop();
    }
    const alone = await pluginAsync(
      join(lean, 'tabby-ipam.mjs'),
      attachEnv('ADD', { CNI_CONTAINERID: 'd2' }),
      JSON.stringify({ ...JSON.parse(conf), node_socket: socket }),
    );
    assert.equal(alone.code, 1);
    assert.ok(
      removed.some((f) => alone.out.includes(join(lean, f))),
      `without the daemon it should miss a removed file: ${alone.out}`,
    );
  });

  it('names_the_missing_flock_addon_beside_the_bundle', () => {
    unlinkSync(join(bin, 'tabby_flock.node'));
    const r = plugin('tabby-ipam.mjs', attachEnv('ADD', { CNI_CONTAINERID: 'b2' }), conf);
    assert.equal(r.code, 1);
    const e = JSON.parse(r.out) as { code: number; details: string };
    assert.match(e.details, new RegExp(`${join(bin, 'tabby_flock.node')} is missing`));
  });
});
