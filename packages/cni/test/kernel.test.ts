// The tabby executable against the real kernel: a "node" namespace standing for the host
// (the plugin runs inside it, as a runtime runs it), pod namespaces, and Tabby's IPAM on a
// YAML-directory datastore in a temp dir. Pods get their addresses and routes, ping each
// other and the node; CHECK, DEL, GC and the rollback of a failed ADD are checked in the
// kernel (with `ip`, not our client) and in the datastore. Dual-stack when the kernel has IPv6.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AnyResource } from '@tabby/datastore';
import { Datastore, openBackend } from '@tabby/datastore';
import { TABBY_ROUTE_PROTOCOL } from '@tabby/netlink';
import type { JsonObject } from '../src/spec/result.js';
import type { PluginRun } from './kernel-support.js';
import { text } from './support.js';
import {
  ipv6Available,
  kernelUnavailable,
  needKernel,
  NODE4,
  NODE6,
  nodeNetns,
  runPlugin,
  TestNetns,
} from './kernel-support.js';

const NET = 'tcn-net';
const POOL4 = '10.66.0.0/24';
const POOL6 = 'fd66::/120';
/** A /30 in one /30 block: four addresses, each one shadowed by a host route in one test. */
const SMALL4 = '10.67.0.0/30';
const NODE = 'tcn-node';
const MTU = 1400;

const vethOf = (pod: string): string =>
  `cali${createHash('sha1').update(`default.${pod}`).digest('hex').slice(0, 11)}`;

const res = (kind: string, name: string, spec: unknown): AnyResource =>
  ({ apiVersion: 'tabby.dev/v1', kind, metadata: { name }, spec }) as AnyResource;

interface Pod {
  readonly name: string;
  readonly ns: TestNetns;
  readonly cid: string;
  readonly veth: string;
  result?: JsonObject;
}

/** `ip` output as trimmed lines, sorted. */
const lines = (out: string): string[] =>
  out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .sort();

/** The error text a runtime would log: msg and details. */
const errText = (r: PluginRun): string => `${text(r.out?.['msg'])}: ${text(r.out?.['details'] ?? '')}`;

describe('the tabby plugin on the kernel', () => {
  const v6 = ipv6Available();
  const dir = mkdtempSync(join(tmpdir(), 'tcn-datastore-'));
  let node: TestNetns | undefined;
  const pods = new Map<string, Pod>();
  /** A pod an earlier test made (node:test runs these in order). */
  const made = (tag: string): Pod => {
    const p = pods.get(tag);
    assert.ok(p?.result, `${tag} was added by an earlier test`);
    return p;
  };

  const conf = (extra: JsonObject = {}, ipam: JsonObject = {}): JsonObject => ({
    cniVersion: '1.1.0',
    name: NET,
    type: 'tabby',
    mtu: MTU,
    nodename: NODE,
    log_level: 'debug',
    datastore: { type: 'yaml', dir },
    ipam: {
      type: 'tabby-ipam',
      assign_ipv4: 'true',
      assign_ipv6: v6 ? 'true' : 'false',
      ipv4_pools: [POOL4],
      ...(v6 ? { ipv6_pools: [POOL6] } : {}),
      ...ipam,
    },
    ...extra,
  });

  const env = (command: string, pod: Pod, extra: Record<string, string> = {}): Record<string, string> => ({
    CNI_COMMAND: command,
    CNI_CONTAINERID: pod.cid,
    CNI_NETNS: pod.ns.path,
    CNI_IFNAME: 'eth0',
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod.name}`,
    CNI_PATH: '/nonexistent',
    ...extra,
  });

  const newPod = (tag: string): Pod => {
    const ns = TestNetns.create(tag);
    const name = `${tag}-${process.pid}`;
    const pod: Pod = { name, ns, cid: `c-${ns.name}`, veth: vethOf(name) };
    pods.set(tag, pod);
    return pod;
  };

  /** The IPAM handles (`<network>.<container ID>`) and WorkloadEndpoints (by container ID) now. */
  async function ipam(): Promise<{ handles: string[]; weps: string[] }> {
    const b = await openBackend({ type: 'yaml', dir });
    try {
      return {
        handles: (await b.list('IPAMHandle')).items.map((h) => h.metadata.name).sort(),
        weps: (await new Datastore(b).list('WorkloadEndpoint')).items
          .map((w) => w.spec.containerID ?? '')
          .sort(),
      };
    } finally {
      await b.close();
    }
  }

  before(async () => {
    if (kernelUnavailable() !== undefined) return;
    if (!v6) console.log('# this kernel has no IPv6: testing IPv4 only');
    const b = await openBackend({ type: 'yaml', dir });
    try {
      await b.create(res('IPPool', 'tcn-pool4', { cidr: POOL4, blockSize: 26 }));
      if (v6) await b.create(res('IPPool', 'tcn-pool6', { cidr: POOL6, blockSize: 122 }));
      await b.create(res('IPPool', 'tcn-small', { cidr: SMALL4, blockSize: 30 }));
      await b.create(res('Node', NODE, {}));
    } finally {
      await b.close();
    }
    node = nodeNetns(v6);
  });

  after(() => {
    for (const p of pods.values()) p.ns.destroy();
    node?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const add = async (pod: Pod, c: JsonObject = conf()): Promise<JsonObject> => {
    const r = await runPlugin(node!, env('ADD', pod), c);
    assert.equal(r.code, 0, `ADD ${pod.name}: ${r.stdout} ${r.stderr}`);
    pod.result = r.out!;
    return r.out!;
  };

  const ping = (from: Pod, to: string): void => {
    try {
      from.ns.exec('ping', ...(to.includes(':') ? ['-6'] : []), '-c1', '-W1', to);
    } catch (e) {
      assert.fail(`${from.name} cannot ping ${to}: ${(e as { stdout?: string }).stdout ?? String(e)}`);
    }
  };

  const addressesOf = (p: Pod): string[] =>
    ((p.result?.['ips'] ?? []) as { address: string }[]).map((i) => i.address.split('/')[0]!);

  it('ADD_wires_two_pods_with_addresses_veths_routes_and_sysctls', async (t) => {
    if (!needKernel(t)) return;
    for (const tag of ['pod1', 'pod2']) {
      const pod = newPod(tag);
      const out = await add(pod);
      const ifaces = out['interfaces'] as JsonObject[];
      const podMac = pod.ns.ipJson<{ address: string }>('link', 'show', 'eth0')[0]!.address;
      assert.deepEqual(ifaces, [
        { name: pod.veth, mac: 'ee:ee:ee:ee:ee:ee' },
        { name: 'eth0', mac: podMac, mtu: MTU, sandbox: pod.ns.path },
      ]);
      const ips = out['ips'] as { address: string; gateway: string; interface: number }[];
      assert.equal(ips.length, v6 ? 2 : 1);
      assert.match(ips[0]!.address, /^10\.66\.0\.\d+\/32$/);
      assert.equal(ips[0]!.gateway, '169.254.1.1');
      const ll = node!
        .ipJson<{ addr_info: { local: string; scope: string }[] }>('-6', 'addr', 'show', 'dev', pod.veth)[0]
        ?.addr_info.find((a) => a.scope === 'link')?.local;
      if (v6) {
        assert.match(ips[1]!.address, /^fd66::[0-9a-f]+\/128$/);
        assert.equal(ips[1]!.gateway, ll, 'the IPv6 gateway is the host veth link-local address');
      }
      for (const ip of ips) assert.equal(ip.interface, 1);
      assert.deepEqual(out['routes'], [
        { dst: '0.0.0.0/0', gw: '169.254.1.1' },
        ...(v6 ? [{ dst: '::/0', gw: ll }] : []),
      ]);

      // the pod side, as `ip` sees it
      const eth0 = pod.ns.ipJson<{
        mtu: number;
        operstate: string;
        addr_info: { local: string; prefixlen: number }[];
      }>('addr', 'show', 'dev', 'eth0')[0]!;
      assert.equal(eth0.mtu, MTU);
      assert.equal(eth0.operstate, 'UP');
      const have = eth0.addr_info.map((a) => `${a.local}/${a.prefixlen}`);
      for (const ip of ips) assert.ok(have.includes(ip.address), `${ip.address} on eth0: ${have.join(' ')}`);
      assert.deepEqual(lines(pod.ns.ip('route', 'show')), [
        `169.254.1.1 dev eth0 proto ${TABBY_ROUTE_PROTOCOL} scope link`,
        `default via 169.254.1.1 dev eth0 proto ${TABBY_ROUTE_PROTOCOL}`,
      ]);
      if (v6)
        assert.ok(
          pod.ns
            .ip('-6', 'route', 'show', 'default')
            .startsWith(`default via ${ll} dev eth0 proto ${TABBY_ROUTE_PROTOCOL} `),
        );

      // the host side
      const veth = node!.ipJson<{ mtu: number; address: string; flags: string[] }>(
        'link',
        'show',
        pod.veth,
      )[0]!;
      assert.equal(veth.mtu, MTU);
      assert.equal(veth.address, 'ee:ee:ee:ee:ee:ee');
      assert.ok(veth.flags.includes('UP'));
      assert.deepEqual(lines(node!.ip('route', 'show', 'dev', pod.veth)), [
        `${ips[0]!.address.split('/')[0]} proto ${TABBY_ROUTE_PROTOCOL} scope link`,
      ]);
      if (v6)
        assert.ok(
          node!
            .ip('-6', 'route', 'show', 'proto', String(TABBY_ROUTE_PROTOCOL))
            .includes(`${ips[1]!.address.split('/')[0]} dev ${pod.veth} metric 1024`),
        );
      const want: [string, string][] = [
        [`net.ipv4.conf.${pod.veth}.proxy_arp`, '1'],
        [`net.ipv4.conf.${pod.veth}.forwarding`, '1'],
        [`net.ipv4.conf.${pod.veth}.route_localnet`, '1'],
        [`net.ipv4.neigh.${pod.veth}.proxy_delay`, '0'],
        [`net.ipv6.conf.${pod.veth}.accept_ra`, '0'],
        ...(v6
          ? ([
              [`net.ipv6.conf.${pod.veth}.forwarding`, '1'],
              [`net.ipv6.conf.${pod.veth}.proxy_ndp`, '1'],
            ] as [string, string][])
          : []),
      ];
      for (const [k, v] of want) assert.equal(node!.sysctl(k), v, k);
    }
    assert.notDeepEqual(addressesOf(made('pod1')), addressesOf(made('pod2')));
  });

  it('the_pods_ping_each_other_and_the_node', (t) => {
    if (!needKernel(t)) return;
    const [p1, p2] = [made('pod1'), made('pod2')];
    for (const [from, to] of [
      [p1, p2],
      [p2, p1],
    ] as const)
      for (const a of addressesOf(to)) ping(from, a);
    for (const p of [p1, p2]) {
      ping(p, NODE4);
      if (v6) ping(p, NODE6);
    }
  });

  it('CHECK_passes_then_names_a_route_deleted_by_hand', async (t) => {
    if (!needKernel(t)) return;
    const p1 = made('pod1');
    const check = () => runPlugin(node!, env('CHECK', p1), conf({ prevResult: p1.result! }));
    let r = await check();
    assert.equal(r.code, 0, `${r.stdout} ${r.stderr}`);
    assert.equal(r.stdout, '');

    p1.ns.ip('route', 'del', 'default');
    r = await check();
    assert.equal(r.code, 1);
    assert.equal(r.out?.['code'], 106, r.stdout);
    assert.equal(r.out?.['msg'], 'CHECK failed: route 0.0.0.0/0 via 169.254.1.1 missing in the pod');

    const ip4 = addressesOf(p1)[0]!;
    node!.ip('route', 'del', `${ip4}/32`, 'dev', p1.veth);
    r = await check();
    assert.equal(r.out?.['code'], 106, r.stdout);
    assert.match(
      errText(r),
      new RegExp(`host route ${ip4.replaceAll('.', '\\.')}/32 dev ${p1.veth} missing`),
    );
  });

  it('DEL_succeeds_twice_and_leaves_no_veth_route_or_address', async (t) => {
    if (!needKernel(t)) return;
    const p1 = made('pod1');
    const handle = `${NET}.${p1.cid}`;
    assert.ok((await ipam()).handles.includes(handle));
    assert.ok((await ipam()).weps.includes(p1.cid), 'ADD wrote the WorkloadEndpoint');
    for (let i = 0; i < 2; i++) {
      const r = await runPlugin(node!, env('DEL', p1), conf());
      assert.equal(r.code, 0, `DEL #${i + 1}: ${r.stdout} ${r.stderr}`);
      assert.equal(r.stdout, '');
    }
    assert.ok(!node!.links().includes(p1.veth), 'host veth gone');
    assert.deepEqual(p1.ns.links(), ['lo'], 'pod side gone');
    for (const a of addressesOf(p1))
      assert.ok(!node!.ip('route', 'show', 'table', 'all').includes(a), `no route to ${a} left`);
    assert.ok(!(await ipam()).handles.includes(handle), 'address released');
    assert.ok(!(await ipam()).weps.includes(p1.cid), 'WorkloadEndpoint deleted');
    // and DEL after the runtime removed the namespace too
    p1.ns.destroy();
    const r = await runPlugin(node!, env('DEL', p1), conf());
    assert.equal(r.code, 0, `${r.stdout} ${r.stderr}`);
  });

  it('GC_releases_an_attachment_not_in_the_valid_list', async (t) => {
    if (!needKernel(t)) return;
    const p2 = made('pod2');
    const p3 = newPod('pod3');
    await add(p3);
    // The runtime loses the container without DEL: its namespace (and so the veth) go.
    // The kernel tears a namespace down in the background: wait for the veth to go.
    p3.ns.destroy();
    const deadline = Date.now() + 10_000;
    while (node!.links().includes(p3.veth)) {
      assert.ok(Date.now() < deadline, `${p3.veth} outlived its namespace by 10 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const gcConf = conf({ 'cni.dev/valid-attachments': [{ containerID: p2.cid, ifname: 'eth0' }] });
    const r = await runPlugin(node!, { CNI_COMMAND: 'GC', CNI_PATH: '/nonexistent' }, gcConf);
    assert.equal(r.code, 0, `${r.stdout} ${r.stderr}`);
    const { handles, weps } = await ipam();
    assert.ok(!handles.includes(`${NET}.${p3.cid}`), 'the stale attachment is released');
    assert.ok(
      !weps.includes(p3.cid) && weps.includes(p2.cid),
      'its WorkloadEndpoint deleted, the valid one kept',
    );
    assert.ok(handles.includes(`${NET}.${p2.cid}`), 'the valid one is kept');
    ping(p2, NODE4);
    // CHECK of the lost container: nothing of it is left anywhere
    const r3 = await runPlugin(node!, env('CHECK', p3), conf({ prevResult: p3.result! }));
    assert.equal(r3.out?.['code'], 3, r3.stdout);
  });

  it('ADD_fails_with_103_when_the_host_veth_name_is_taken_and_leaves_it_alone', async (t) => {
    if (!needKernel(t)) return;
    const p2 = made('pod2');
    // Another sandbox of the same Kubernetes pod (same veth name) while the first still runs.
    const ns = TestNetns.create('pod2b');
    const again: Pod = { name: p2.name, ns, cid: `c-${ns.name}`, veth: p2.veth };
    pods.set('pod2b', again);
    const r = await runPlugin(node!, env('ADD', again), conf());
    assert.equal(r.out?.['code'], 103, r.stdout);
    assert.match(errText(r), new RegExp(`interface ${p2.veth} already exists on the host`));
    assert.deepEqual(ns.links(), ['lo']);
    assert.ok(!(await ipam()).handles.includes(`${NET}.${again.cid}`), 'address released');
    // pod2's veth and routes still work: the node reaches it
    for (const a of addressesOf(p2)) node!.exec('ping', ...(a.includes(':') ? ['-6'] : []), '-c1', '-W1', a);
  });

  it('ADD_rolls_back_when_CNI_IFNAME_is_taken_in_the_pod', async (t) => {
    if (!needKernel(t)) return;
    const p4 = newPod('pod4');
    p4.ns.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'tcn-other');
    const before = node!.links();
    const r = await runPlugin(node!, env('ADD', p4), conf());
    assert.equal(r.code, 1, r.stdout);
    assert.equal(r.out?.['code'], 103, r.stdout);
    assert.match(errText(r), /interface eth0 already exists in the container/);
    assert.deepEqual(node!.links(), before, 'no veth left on the node');
    assert.deepEqual(p4.ns.links(), ['eth0', 'lo', 'tcn-other'], 'nothing added in the pod');
    assert.equal(
      p4.ns.ipJson<{ link: string }>('link', 'show', 'eth0')[0]?.link,
      'tcn-other',
      'eth0 untouched',
    );
    assert.ok(!(await ipam()).handles.includes(`${NET}.${p4.cid}`), 'address released');
  });

  it('ADD_rolls_back_the_veth_and_address_when_the_host_route_clashes', async (t) => {
    if (!needKernel(t)) return;
    // Every address of the small pool already routed elsewhere: configureHost fails after
    // the veth and the pod side are made, and rollback must remove them.
    for (let i = 0; i < 4; i++) node!.ip('route', 'add', `10.67.0.${i}/32`, 'dev', 'tcn-up0');
    const p5 = newPod('pod5');
    const before = node!.links();
    const r = await runPlugin(
      node!,
      env('ADD', p5),
      conf({}, { assign_ipv6: 'false', ipv4_pools: [SMALL4], ipv6_pools: [] }),
    );
    assert.equal(r.code, 1, r.stdout);
    assert.equal(r.out?.['code'], 105, r.stdout);
    assert.match(errText(r), /host route 10\.67\.0\.\d\/32 already exists dev tcn-up0 .*not through cali/);
    assert.match(errText(r), /configuring host side of cali/);
    assert.deepEqual(node!.links(), before, 'no veth left on the node');
    assert.deepEqual(p5.ns.links(), ['lo'], 'nothing left in the pod');
    const { handles } = await ipam();
    assert.ok(!handles.includes(`${NET}.${p5.cid}`), 'address released');
    for (let i = 0; i < 4; i++) node!.ip('route', 'del', `10.67.0.${i}/32`, 'dev', 'tcn-up0');
  });

  it('ADD_without_an_mtu_gives_both_veth_ends_the_mtu_files_and_CHECK_compares_the_endpoint', async (t) => {
    if (!needKernel(t)) return;
    // The node daemon's file, elsewhere than /var/lib/tabby/mtu (TABBY_MTU_FILE).
    const mtuFile = join(dir, 'mtu');
    writeFileSync(mtuFile, '1380\n');
    const p9 = newPod('pod9');
    const { mtu: _, ...noMtu } = conf();
    const r = await runPlugin(node!, env('ADD', p9, { TABBY_MTU_FILE: mtuFile }), noMtu);
    assert.equal(r.code, 0, `${r.stdout} ${r.stderr}`);
    p9.result = r.out!;
    assert.equal(p9.ns.ipJson<{ mtu: number }>('link', 'show', 'eth0')[0]?.mtu, 1380);
    assert.equal(node!.ipJson<{ mtu: number }>('link', 'show', p9.veth)[0]?.mtu, 1380);
    assert.equal((r.out!['interfaces'] as JsonObject[])[1]?.['mtu'], 1380);

    // CHECK reads the WorkloadEndpoint back from the YAML datastore and compares it.
    const check = () =>
      runPlugin(node!, env('CHECK', p9, { TABBY_MTU_FILE: mtuFile }), { ...noMtu, prevResult: p9.result! });
    let c = await check();
    assert.equal(c.code, 0, `${c.stdout} ${c.stderr}`);
    const b = await openBackend({ type: 'yaml', dir });
    try {
      const ds = new Datastore(b);
      const wep = (await ds.list('WorkloadEndpoint')).items.find((w) => w.spec.containerID === p9.cid)!;
      await ds.apply({ ...wep, spec: { ...wep.spec, node: 'another-node' } });
    } finally {
      await b.close();
    }
    c = await check();
    assert.equal(c.out?.['code'], 106, c.stdout);
    assert.match(errText(c), /spec\.node is "another-node", not "tcn-node"/);
    assert.equal((await runPlugin(node!, env('DEL', p9), noMtu)).code, 0);
  });

  it('concurrent_ADDs_on_one_node_get_distinct_addresses_and_veths_and_all_ping', async (t) => {
    if (!needKernel(t)) return;
    const batch = ['pod6', 'pod7', 'pod8'].map(newPod);
    await Promise.all(batch.map((p) => add(p)));
    const all = batch.flatMap(addressesOf);
    assert.equal(new Set(all).size, all.length, `distinct addresses: ${all.join(' ')}`);
    for (const p of batch) assert.ok(node!.links().includes(p.veth));
    for (const a of addressesOf(batch[2]!)) ping(batch[0]!, a);
    for (const a of addressesOf(made('pod2'))) ping(batch[1]!, a);
    await Promise.all(
      batch.map(async (p) => {
        const r = await runPlugin(node!, env('DEL', p), conf());
        assert.equal(r.code, 0, `${r.stdout} ${r.stderr}`);
      }),
    );
  });
});
