// A real runtime as the client: Debian's podman 4.3 with its CNI network backend runs two
// containers from a local busybox-static image on a Tabby network (conflist with `tabby`
// and `tabby-ipam`, Tabby's IPAM on a YAML-directory datastore in a temp dir). They get
// addresses from the pool on cali* veths in the node's namespace and ping each other;
// removing them releases the addresses (through podman's CNI DEL) and the veths. Podman's
// state lives under a temp dir (see podman/support.ts). Root only; with CI=true a missing
// podman, runc or busybox-static fails the test instead of skipping it.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { BlockList } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AnyResource } from '@tabby/datastore';
import { openBackend } from '@tabby/datastore';
import { TABBY_ROUTE_PROTOCOL } from '@tabby/netlink';
import type { TestNetns } from './kernel-support.js';
import { ipv6Available, needKernel, nodeNetns } from './kernel-support.js';
import { Podman, podmanUnavailable } from './podman/support.js';

const NET = 'tabby-podman';
const NODE = 'tcn-podman-node';
const POOL4 = { net: '10.71.0.0', prefix: 24 };
const POOL6 = { net: 'fd71::', prefix: 120 };
const MTU = 1400;
const IMAGE = 'localhost/tabby-busybox:test';

const res = (kind: string, name: string, spec: unknown): AnyResource =>
  ({ apiVersion: 'tabby.dev/v1', kind, metadata: { name }, spec }) as AnyResource;

/**
 * The host veth's name. Podman passes CNI_ARGS `IgnoreUnknown=1;K8S_POD_NAME=<container
 * name>` and no K8S_POD_NAMESPACE, so this is not a Kubernetes pod: the name comes from
 * sha1(CNI_CONTAINERID) (docs/cni.md).
 */
const vethOf = (containerId: string): string =>
  `cali${createHash('sha1').update(containerId).digest('hex').slice(0, 11)}`;

interface Container {
  readonly name: string;
  readonly id: string;
  readonly v4: string;
  readonly v6: string | undefined;
  readonly sandbox: string;
}

interface NetworkSettings {
  SandboxKey: string;
  Networks: Record<
    string,
    {
      IPAddress: string;
      IPPrefixLen: number;
      Gateway: string;
      GlobalIPv6Address: string;
      GlobalIPv6PrefixLen: number;
    }
  >;
}

describe('podman with its CNI backend on a tabby network', () => {
  const v6 = ipv6Available();
  const dir = mkdtempSync(join(tmpdir(), 'tcn-podman-'));
  const datastore = join(dir, 'datastore');
  const pool = new BlockList();
  pool.addSubnet(POOL4.net, POOL4.prefix, 'ipv4');
  pool.addSubnet(POOL6.net, POOL6.prefix, 'ipv6');
  let node: TestNetns | undefined;
  let podman: Podman | undefined;
  const containers: Container[] = [];
  const need = (t: Parameters<typeof needKernel>[0]): boolean => needKernel(t, podmanUnavailable);

  async function handles(): Promise<string[]> {
    const b = await openBackend({ type: 'yaml', dir: datastore });
    try {
      return (await b.list('IPAMHandle')).items.map((h) => h.metadata.name).sort();
    } finally {
      await b.close();
    }
  }

  const caliLinks = (): string[] => node!.links().filter((l) => l.startsWith('cali'));

  before(async () => {
    if (podmanUnavailable() !== undefined) return;
    const b = await openBackend({ type: 'yaml', dir: datastore });
    try {
      await b.create(
        res('IPPool', 'tcn-podman-pool4', { cidr: `${POOL4.net}/${POOL4.prefix}`, blockSize: 26 }),
      );
      if (v6)
        await b.create(
          res('IPPool', 'tcn-podman-pool6', { cidr: `${POOL6.net}/${POOL6.prefix}`, blockSize: 122 }),
        );
      await b.create(res('Node', NODE, {}));
    } finally {
      await b.close();
    }
    node = nodeNetns(v6);
    podman = await Podman.start({
      dir,
      node,
      conflist: {
        // libcni in podman 4.3 (containernetworking/cni 1.1) speaks CNI up to 1.0.0
        cniVersion: '1.0.0',
        name: NET,
        plugins: [
          {
            type: 'tabby',
            mtu: MTU,
            nodename: NODE,
            log_level: 'info',
            datastore: { type: 'yaml', dir: datastore },
            ipam: { type: 'tabby-ipam', assign_ipv4: 'true', assign_ipv6: v6 ? 'true' : 'false' },
          },
        ],
      },
    });
  });

  after(async () => {
    const problems = (await podman?.close()) ?? [];
    node?.destroy();
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(problems, [], 'podman cleanup');
  });

  it('two_containers_get_addresses_from_the_pool_on_tabby_veths', async (t) => {
    if (!need(t)) return;
    const p = podman!;
    await p.importBusybox(IMAGE);
    assert.match(
      await p.ok('network', 'ls', '--format', '{{.Name}} {{.Driver}}'),
      new RegExp(`^${NET} tabby$`, 'm'),
    );
    for (const name of ['tabby-a', 'tabby-b']) {
      const r = await p.podman(
        'run',
        '--detach',
        '--name',
        name,
        '--network',
        NET,
        '--cgroup-parent',
        p.cgroupParent,
        '--cgroups',
        'no-conmon',
        // root's defaults (nofile 1048576) need CAP_SYS_RESOURCE above the current hard limit
        '--ulimit',
        'nofile=1024:1024',
        '--ulimit',
        'nproc=1024:1024',
        '--cap-add',
        'NET_RAW',
        IMAGE,
        'sleep',
        '600',
      );
      assert.equal(r.code, 0, `podman run ${name} (the plugin's error, if any, is in podman's): ${r.stderr}`);
      const id = r.stdout.trim();
      const ns = JSON.parse(
        await p.ok('inspect', '--format', '{{json .NetworkSettings}}', name),
      ) as NetworkSettings;
      const net = ns.Networks[NET];
      assert.ok(net, `${name} is on ${NET}: ${JSON.stringify(ns.Networks)}`);
      assert.ok(pool.check(net.IPAddress, 'ipv4'), `${net.IPAddress} is in ${POOL4.net}/${POOL4.prefix}`);
      assert.equal(net.IPPrefixLen, 32);
      assert.equal(net.Gateway, '169.254.1.1');
      if (v6) {
        assert.ok(pool.check(net.GlobalIPv6Address, 'ipv6'), `${net.GlobalIPv6Address} is in the v6 pool`);
        assert.equal(net.GlobalIPv6PrefixLen, 128);
      } else assert.equal(net.GlobalIPv6Address, '');
      const c: Container = {
        name,
        id,
        v4: net.IPAddress,
        v6: v6 ? net.GlobalIPv6Address : undefined,
        sandbox: ns.SandboxKey,
      };
      containers.push(c);

      // inside the container, as its own `ip` sees it
      const eth0 = await p.ok('exec', name, 'ip', '-o', 'addr', 'show', 'dev', 'eth0');
      const global = [...eth0.matchAll(/ inet6? (\S+) scope global/g)].map((m) => m[1]).sort();
      assert.deepEqual(global, [`${c.v4}/32`, ...(c.v6 === undefined ? [] : [`${c.v6}/128`])].sort());
      assert.match(await p.ok('exec', name, 'ip', 'link', 'show', 'dev', 'eth0'), new RegExp(` mtu ${MTU} `));
      assert.match(
        await p.ok('exec', name, 'ip', 'route', 'show', 'default'),
        /^default via 169\.254\.1\.1 dev eth0/,
      );

      // in the node: the veth named from the container ID, the /32 host route
      const veth = vethOf(id);
      assert.ok(node!.links().includes(veth), `${veth} in the node: ${node!.links().join(' ')}`);
      assert.match(
        node!.ip('route', 'show', 'proto', String(TABBY_ROUTE_PROTOCOL)),
        new RegExp(`^${c.v4.replaceAll('.', '\\.')} dev ${veth} `, 'm'),
      );
    }
    const [a, b] = containers;
    assert.notEqual(a!.v4, b!.v4);
    if (v6) assert.notEqual(a!.v6, b!.v6);
    assert.deepEqual(await handles(), containers.map((c) => `${NET}.${c.id}`).sort(), 'one IPAM handle each');
    assert.equal(caliLinks().length, 2);
  });

  it('the_containers_ping_each_other', async (t) => {
    if (!need(t)) return;
    assert.equal(containers.length, 2, 'the containers were started by the previous test');
    const [a, b] = containers as [Container, Container];
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const)
      for (const addr of [to.v4, ...(to.v6 === undefined ? [] : [to.v6])]) {
        const r = await podman!.podman('exec', from.name, 'ping', '-c', '1', '-W', '2', addr);
        assert.equal(r.code, 0, `${from.name} pings ${addr}: ${r.stdout}${r.stderr}`);
      }
  });

  it('removing_the_containers_releases_their_addresses_and_veths', async (t) => {
    if (!need(t)) return;
    assert.equal(containers.length, 2, 'the containers were started by the first test');
    await podman!.ok('rm', '--force', '--time', '0', ...containers.map((c) => c.name));
    assert.equal((await podman!.ok('ps', '--all', '--quiet')).trim(), '');
    assert.deepEqual(await handles(), [], 'every address released');
    assert.deepEqual(caliLinks(), [], 'no cali veth left');
    for (const family of v6 ? ['-4', '-6'] : ['-4'])
      assert.equal(node!.ip(family, 'route', 'show', 'proto', String(TABBY_ROUTE_PROTOCOL)).trim(), '');
    for (const c of containers) assert.ok(!existsSync(c.sandbox), `${c.sandbox} removed`);
  });
});
