#!/usr/bin/env node
// The image step of `npm test`: builds the tabby image with images/tabby/build.sh (buildah,
// no registry) and runs it with podman to show it is complete: Node 24 and nft run, the
// daemon starts from the bundle and programs its NAT table, the CLI reaches it, each
// datastore backend's chunk loads, bgp-ts and install-cni run, the CNI plugin answers
// VERSION, the layout the chart relies on is there; and that the Containerfile declares the
// same configuration.
//
// Everything podman and buildah store goes under one temp dir (their storage.conf and
// containers.conf), removed at the end. It needs root, buildah, podman, runc and a Debian
// bookworm machine with apt sources; where one is missing it skips, saying why; under
// CI=true (where .ci/run installs them) that is a failure instead.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

const REPO = new URL('..', import.meta.url).pathname;
const IMAGE_DIR = join(REPO, 'images', 'tabby');

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

function missing() {
  if (process.platform !== 'linux') return `the image build needs Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'the image build needs root (buildah and podman storage)';
  const os = existsSync('/etc/os-release') ? readFileSync('/etc/os-release', 'utf8') : '';
  if (!/^VERSION_CODENAME=bookworm$/m.test(os))
    return 'rootfs.sh takes its libraries and nft from Debian bookworm apt sources; this is not bookworm';
  for (const c of ['buildah', 'podman', 'runc', 'apt-get', 'dpkg-deb'])
    if (!has(c)) return `${c} is not installed (Debian: apt-get install buildah podman runc)`;
  if (spawnSync('apt-cache', ['show', 'nftables'], { stdio: 'ignore' }).status !== 0)
    return 'apt has no package lists (rootfs.sh downloads from them): run apt-get update';
  return undefined;
}

const why = missing();
if (why !== undefined) {
  if (process.env['CI'] === 'true') {
    console.error(`test-image: cannot run under CI: ${why}`);
    process.exit(1);
  }
  console.log(`test-image: SKIPPED: ${why}`);
  process.exit(0);
}

/** KEY=value lines of images/tabby/versions.env. */
const versions = Object.fromEntries(
  readFileSync(join(IMAGE_DIR, 'versions.env'), 'utf8')
    .split('\n')
    .filter((l) => /^[A-Z0-9_]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);
const VERSION = JSON.parse(readFileSync(join(REPO, 'packages', 'node', 'package.json'), 'utf8')).version;

const dir = mkdtempSync(join(tmpdir(), 'tabby-image-'));
const IMAGE = `localhost/tabby-test:${process.pid}`;
const CGROUP_PARENT = `/tabby-image-test-${process.pid}`;
const env = {
  PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: dir,
  TMPDIR: join(dir, 'tmp'),
  CONTAINERS_CONF: join(dir, 'containers.conf'),
  CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf'),
};
for (const sub of ['tmp', 'storage', 'runroot', 'runc']) mkdirSync(join(dir, sub));
writeFileSync(
  env.CONTAINERS_STORAGE_CONF,
  `[storage]\ndriver = "vfs"\ngraphroot = ${JSON.stringify(join(dir, 'storage'))}\nrunroot = ${JSON.stringify(join(dir, 'runroot'))}\n`,
);
// runc, not Debian's crun 1.8 (it refuses hybrid cgroup hosts); root's default nofile limit
// (1048576) is above this machine's hard limit and needs CAP_SYS_RESOURCE.
writeFileSync(
  env.CONTAINERS_CONF,
  [
    '[containers]',
    'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]',
    '[engine]',
    'cgroup_manager = "cgroupfs"',
    'events_logger = "file"',
    'runtime = "runc"',
    `tmp_dir = ${JSON.stringify(join(dir, 'tmp'))}`,
    '',
  ].join('\n'),
);

/** podman with our storage; its exit code and output. */
function podman(...args) {
  const r = spawnSync('podman', ['--runtime-flag', `root=${join(dir, 'runc')}`, ...args], {
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return {
    code: r.status ?? -1,
    stdout: r.stdout ?? '',
    stderr: (r.stderr ?? '') + (r.error?.message ?? ''),
  };
}

/** `podman run --rm --network none` of the image with these podman flags, entrypoint and args. */
function run(flags, entrypoint, ...args) {
  return podman(
    'run',
    '--rm',
    '--network',
    'none',
    '--cgroup-parent',
    CGROUP_PARENT,
    ...flags,
    '--entrypoint',
    entrypoint,
    IMAGE,
    ...args,
  );
}

function ok(r, what) {
  assert.equal(r.code, 0, `${what} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

async function until(f, what, ms = 30_000) {
  const end = Date.now() + ms;
  for (;;) {
    if (f()) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The Containerfile's global ARG defaults, final-stage ENV, ENTRYPOINT and LABEL keys and values. */
function containerfile() {
  const text = readFileSync(join(IMAGE_DIR, 'Containerfile'), 'utf8').replace(/\\\n/g, ' ');
  const lines = text.split('\n').filter((l) => !l.startsWith('#'));
  const args = {};
  for (const l of lines) {
    const m = /^ARG (\w+)=(\S+)$/.exec(l.trim());
    if (m !== null) args[m[1]] = m[2];
  }
  const finalStage = lines.slice(lines.findLastIndex((l) => l.startsWith('FROM ')));
  const labels = {};
  for (const l of finalStage.filter((x) => x.startsWith('LABEL ')))
    for (const m of l.slice(6).matchAll(/([\w.]+)=("[^"]*"|\S+)/g))
      labels[m[1]] = m[2].replace(/^"(.*)"$/, '$1');
  const envLine = finalStage.find((l) => l.startsWith('ENV PATH='));
  const entry = finalStage.find((l) => l.startsWith('ENTRYPOINT '));
  return {
    args,
    labels,
    path: envLine?.slice('ENV PATH='.length),
    entrypoint: entry && JSON.parse(entry.slice(11)),
  };
}

describe('the tabby image', () => {
  let buildSeconds = 0;
  before(() => {
    const t0 = Date.now();
    // test-image runs after `npm run build` in `npm test`
    execFileSync('bash', [join(IMAGE_DIR, 'build.sh'), '--tag', IMAGE], {
      env: { ...process.env, ...env },
      stdio: 'inherit',
    });
    buildSeconds = (Date.now() - t0) / 1000;
  });

  after(() => {
    podman('rm', '--all', '--force', '--time', '0');
    podman('rmi', '--force', IMAGE);
    // podman leaves a libpod-<id> and a conmon cgroup below the parent in each hierarchy
    // (cgroupfs: rmdir only, leaves first)
    const removeTree = (d) => {
      for (const e of readdirSync(d, { withFileTypes: true }))
        if (e.isDirectory()) removeTree(join(d, e.name));
      rmdirSync(d);
    };
    for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
      const [, mnt, type] = line.split(' ');
      if (mnt === undefined || (type !== 'cgroup' && type !== 'cgroup2')) continue;
      const parent = join(mnt, CGROUP_PARENT);
      if (!existsSync(parent)) continue;
      try {
        removeTree(parent);
      } catch (e) {
        console.error(`test-image: cannot remove ${parent}: ${e.message}`);
        process.exitCode = 1;
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('builds_without_a_registry_and_reports_its_size', () => {
    const size = Number(
      ok(podman('image', 'inspect', '--format', '{{.Size}}', IMAGE), 'podman image inspect').trim(),
    );
    console.log(
      `test-image: built in ${buildSeconds.toFixed(0)} s, ${(size / 1e6).toFixed(0)} MB uncompressed`,
    );
    // Node's binary is ~127 MB of it; a bundle that picked up node_modules would double it.
    assert.ok(size < 200e6, `the image is ${size} bytes`);
  });

  it('runs_the_pinned_node_24', () => {
    assert.equal(ok(run([], 'node', '--version'), 'node --version').trim(), `v${versions['NODE_VERSION']}`);
  });

  it('runs_tabby_node_as_its_entrypoint', () => {
    const r = podman('run', '--rm', '--network', 'none', '--cgroup-parent', CGROUP_PARENT, IMAGE, '--help');
    assert.match(ok(r, 'tabby-node --help'), /^usage: tabby-node/);
  });

  it('has_the_layout_the_chart_uses', () => {
    const paths = [
      '/opt/tabby/bin/tabby-node',
      '/opt/tabby/bin/tabby',
      '/opt/tabby/bin/bgp-ts',
      '/opt/tabby/bin/install-cni',
      '/opt/tabby/cni/tabby.cjs',
      '/opt/tabby/cni/tabby-ipam.mjs',
      '/opt/tabby/cni/tabby_netlink.node',
      '/opt/tabby/cni/tabby_flock.node',
      '/opt/tabby/lib/tabby_netlink.node',
      '/opt/tabby/lib/tabby_flock.node',
      '/opt/tabby/lib/bgp_sockopt.node',
      '/opt/tabby/lib/etcd3-proto/rpc.proto',
      '/opt/tabby/IMAGE-CONTENTS',
      '/usr/sbin/nft',
    ];
    const js = `const fs=require('fs');for(const p of ${JSON.stringify(paths)})fs.accessSync(p, p.includes('/bin/')?fs.constants.X_OK:fs.constants.R_OK);console.log('ok')`;
    ok(run([], 'node', '-e', js), 'the layout check');
  });

  it('loads_each_native_addon_of_the_daemon_bundle', () => {
    const js = `for(const a of ['tabby_netlink','tabby_flock','bgp_sockopt'])process.dlopen({exports:{}},'/opt/tabby/lib/'+a+'.node');console.log('ok')`;
    ok(run([], 'node', '-e', js), 'dlopen of the addons');
  });

  it('runs_nft_with_its_libraries', () => {
    assert.match(ok(run([], 'nft', '--version'), 'nft --version'), /^nftables v1\./);
    const r = run(['--cap-add', 'NET_ADMIN'], 'nft', '-j', 'list', 'ruleset');
    assert.match(ok(r, 'nft -j list ruleset'), /"nftables"/);
  });

  it('runs_the_cli_on_each_datastore_backend', () => {
    assert.match(ok(run([], 'tabby', 'help'), 'tabby help'), /^usage: tabby/);
    const yaml = run([], 'tabby', 'get', 'ippools', '--datastore-type', 'yaml', '--datastore-dir', '/tmp/ds');
    ok(yaml, 'tabby get ippools on a YAML directory');
    // Nothing listens there: the etcd chunk loaded (with its .proto files) and tried to connect.
    const etcd = run(
      [],
      'tabby',
      'get',
      'ippools',
      '--datastore-type',
      'etcdv3',
      '--etcd-endpoints',
      'http://127.0.0.1:1',
    );
    assert.notEqual(etcd.code, 0);
    assert.match(etcd.stderr, /UNAVAILABLE|ECONNREFUSED/, etcd.stderr);
    const k8s = run(
      [],
      'tabby',
      'get',
      'ippools',
      '--datastore-type',
      'kubernetes',
      '--kubeconfig',
      '/nonexistent',
    );
    assert.notEqual(k8s.code, 0);
    assert.match(k8s.stderr, /nonexistent/, k8s.stderr);
    assert.doesNotMatch(
      etcd.stderr + k8s.stderr,
      /Cannot find (module|package)|ERR_MODULE_NOT_FOUND|rpc\.proto/,
    );
  });

  it('runs_bgp_ts_and_install_cni_by_name', () => {
    assert.match(ok(run([], 'bgp-ts', 'help'), 'bgp-ts help'), /bgp-ts decode/);
    // its contract's first check: it loaded, with nothing but Node's own modules
    const r = run([], 'install-cni');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^install-cni: CNI_NETWORK_CONFIG_FILE is not set/);
  });

  it('answers_cni_version_from_the_cni_bundle', () => {
    const r = run(['--env', 'CNI_COMMAND=VERSION'], 'node', '/opt/tabby/cni/tabby.cjs');
    assert.ok(JSON.parse(ok(r, 'tabby CNI VERSION')).supportedVersions.includes('1.0.0'));
  });

  it('starts_the_daemon_on_a_read_only_root_with_net_admin_and_net_bind_service_only', async () => {
    const name = `tabby-image-test-${process.pid}`;
    ok(
      podman(
        'run',
        '--detach',
        '--name',
        name,
        '--network',
        'none',
        '--cgroup-parent',
        CGROUP_PARENT,
        // what docs/image.md tells the chart it may do: every other capability dropped, the
        // root read-only (podman mounts tmpfs on /tmp and /run; the control socket's
        // directory is a host mount in a cluster, a tmpfs here)
        '--cap-drop',
        'ALL',
        '--cap-add',
        'NET_ADMIN',
        '--cap-add',
        'NET_BIND_SERVICE',
        '--read-only',
        '--tmpfs',
        '/run/tabby',
        IMAGE,
        '--node',
        'n1',
        '--ip',
        '10.99.0.1/24',
        '--ipv4pool-cidr',
        '10.98.0.0/16',
        '--datastore-dir',
        '/tmp/ds',
        '--nodename-file',
        '/tmp/nodename',
        // host mounts in a cluster; on the read-only root, the dataplane would stall on it
        '--mtu-file',
        '/tmp/mtu',
        '--http',
        '127.0.0.1:9099',
      ),
      'podman run the daemon',
    );
    const untilOrLog = async (f, what) => {
      try {
        await until(f, what);
      } catch (e) {
        const l = podman('logs', name);
        throw new Error(`${e.message}; tabby-node's log:\n${l.stdout}${l.stderr}`, { cause: e });
      }
    };
    await untilOrLog(
      () => podman('exec', name, 'tabby', 'status').code === 0,
      'tabby status to reach the daemon',
    );
    // the default pool has natOutgoing: felix-lite ran nft in the container's namespace
    await untilOrLog(
      () => podman('exec', name, 'nft', 'list', 'table', 'ip', 'tabby').code === 0,
      'the NAT table',
    );
    const metrics = ok(
      podman(
        'exec',
        name,
        'node',
        '-e',
        "fetch('http://127.0.0.1:9099/metrics').then(r=>r.text()).then(t=>process.stdout.write(t))",
      ),
      'GET /metrics',
    );
    assert.match(metrics, /^tabby_/m);
    ok(podman('stop', '--time', '10', name), 'podman stop');
    const logs = podman('logs', name);
    // Every line is a pino JSON record: no warnings from Node or a dependency on stderr.
    for (const line of (logs.stdout + logs.stderr).split('\n').filter((l) => l !== ''))
      assert.doesNotThrow(() => JSON.parse(line), `a log line that is not JSON: ${line}`);
    const state = ok(podman('inspect', '--format', '{{.State.ExitCode}}', name), 'podman inspect').trim();
    assert.equal(state, '0', 'tabby-node exits 0 on SIGTERM');
  });

  it('is_configured_as_the_containerfile_declares', () => {
    const cf = containerfile();
    for (const k of ['NODE_VERSION', 'NODE_INTEGRITY_X64', 'NODE_INTEGRITY_ARM64', 'DEBIAN_SUITE'])
      assert.equal(cf.args[k], versions[k], `Containerfile ARG ${k} differs from versions.env`);
    assert.equal(
      cf.args['VERSION'],
      VERSION,
      'Containerfile ARG VERSION differs from packages/node/package.json',
    );
    const cfg = JSON.parse(ok(podman('image', 'inspect', IMAGE), 'podman image inspect'))[0].Config;
    assert.deepEqual(cfg.Entrypoint, cf.entrypoint);
    assert.ok(cfg.Env.includes(`PATH=${cf.path}`), JSON.stringify(cfg.Env));
    const expected = { ...cf.labels };
    for (const [k, v] of Object.entries(expected))
      expected[k] = v.replace(/^\$(\w+)$/, (_, a) =>
        a === 'REVISION' ? cfg.Labels[k] : a === 'VERSION' ? VERSION : versions[a],
      );
    // buildah (and so podman build) adds io.buildah.version; docker adds nothing
    const { 'io.buildah.version': _buildah, ...labels } = cfg.Labels;
    assert.deepEqual(labels, expected);
  });
});
