// The client against the real kernel, in network namespaces the tests create and remove.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  isErrno,
  NetlinkError,
  NTF_SELF,
  NUD_NOARP,
  NUD_PERMANENT,
  openNetns,
  readSysctl,
  RtnlClient,
  RtnlMonitor,
  RouteView,
  setSysctlRoot,
  writeSysctl,
} from '../src/index.js';
import type { RouteInfo, RtnlMessage } from '../src/index.js';
import { kernelUnavailable, needKernel, TestNetns } from './netns.js';

const PROTO = 80;

/** A view's numbers as text (gateway words only as far as the gateway's length: the rest is stale). */
function viewNumbers(v: RouteView): string {
  const hops: string[] = [];
  for (let i = 0; i < v.hopCount; i++)
    hops.push(
      `${v.hopOif[i]}/${v.onlink(i)}/${v.hopWeight[i]}/${v.hopGatewayLen[i]}/${v.hopGateway.subarray(4 * i, 4 * i + v.hopGatewayLen[i]! / 4).join('.')}`,
    );
  return `${v.family} ${v.dstLen} ${v.table} ${v.protocol} ${v.scope} ${v.type} ${v.flags} ${v.priority} ${v.dst.join('.')} ${hops.join(',')} ${v.hasPrefsrc} ${v.hasMetrics}`;
}

describe('rtnetlink against the kernel', () => {
  let node: TestNetns | undefined;
  let pod: TestNetns | undefined;
  let c: RtnlClient | undefined;
  let h0 = 0;

  before(async () => {
    if (kernelUnavailable() !== undefined) return;
    node = TestNetns.create('node');
    pod = TestNetns.create('pod');
    c = RtnlClient.open({ netns: node.path });
    await c.createLink({ kind: 'veth', name: 'h0', peer: { name: 'h1' }, up: true });
    await c.setLink('h1', { up: true });
    h0 = (await c.getLink('h0')).index;
    await c.addAddress({ family: 4, index: h0, address: '192.168.0.1', prefixLen: 24 });
    await c.addAddress({ family: 6, index: h0, address: 'fd00::1', prefixLen: 64, flags: 0x02 /* nodad */ });
  });

  after(() => {
    c?.close();
    node?.destroy();
    pod?.destroy();
  });

  it('sees_only_the_links_of_its_own_namespace', async (t) => {
    if (!needKernel(t)) return;
    const names = (await c!.links()).map((l) => l.name).sort();
    assert.deepEqual(names, ['h0', 'h1', 'lo']);
  });

  it('creates_a_veth_and_moves_its_peer_into_another_namespace_with_mtu_and_mac', async (t) => {
    if (!needKernel(t)) return;
    const fd = openNetns(pod!.path);
    try {
      await c!.createLink({
        kind: 'veth',
        name: 'cali0123456789a',
        mtu: 1450,
        up: true,
        peer: { name: 'eth0', netnsFd: fd, mtu: 1450, address: 'ee:ee:ee:ee:ee:ee' },
      });
    } finally {
      closeSync(fd);
    }
    const host = await c!.getLink('cali0123456789a');
    assert.equal(host.kind, 'veth');
    assert.equal(host.mtu, 1450);
    assert.equal(host.up, true);
    const inPod = RtnlClient.open({ netns: pod!.path });
    try {
      const eth0 = await inPod.getLink('eth0');
      assert.equal(eth0.mtu, 1450);
      assert.equal(eth0.address, 'ee:ee:ee:ee:ee:ee');
      await inPod.setLink(eth0.index, { up: true });
      await inPod.addAddress({ family: 4, index: eth0.index, address: '10.65.1.7', prefixLen: 32 });
      await inPod.addRoute({ family: 4, dst: '169.254.1.1', dstLen: 32, nexthops: [{ oif: eth0.index }] });
      await inPod.addRoute({
        family: 4,
        dst: '0.0.0.0',
        dstLen: 0,
        nexthops: [{ gateway: '169.254.1.1', oif: eth0.index }],
      });
      assert.match(pod!.ip('route', 'show', 'default'), /default via 169\.254\.1\.1 dev eth0/);
      const addrs = await inPod.addresses({ family: 4, index: eth0.index });
      assert.deepEqual(
        addrs.map((a) => `${a.address}/${a.prefixLen}`),
        ['10.65.1.7/32'],
      );
    } finally {
      inPod.close();
    }
    await c!.deleteLink('cali0123456789a');
    assert.equal(await c!.linkIndex('cali0123456789a'), undefined);
  });

  it('programs_unicast_blackhole_onlink_multipath_and_ipv6_routes_and_dumps_them_back', async (t) => {
    if (!needKernel(t)) return;
    const b = c!.batch();
    b.addRoute({
      family: 4,
      dst: '10.65.1.0',
      dstLen: 26,
      protocol: PROTO,
      nexthops: [{ gateway: '192.168.0.2', oif: h0 }],
    });
    b.addRoute({ family: 4, dst: '10.65.2.0', dstLen: 26, protocol: PROTO, type: 'blackhole' });
    b.addRoute({
      family: 4,
      dst: '10.65.3.0',
      dstLen: 26,
      protocol: PROTO,
      nexthops: [{ gateway: '172.16.0.9', oif: h0, onlink: true }],
    });
    b.addRoute({
      family: 4,
      dst: '10.65.4.0',
      dstLen: 26,
      protocol: PROTO,
      nexthops: [
        { gateway: '192.168.0.2', oif: h0 },
        { gateway: '192.168.0.3', oif: h0, weight: 2 },
      ],
    });
    b.addRoute({
      family: 4,
      dst: '10.65.5.7',
      dstLen: 32,
      protocol: PROTO,
      nexthops: [{ oif: h0 }],
      priority: 10,
    });
    b.addRoute({
      family: 6,
      dst: 'fd00:65::',
      dstLen: 122,
      protocol: PROTO,
      nexthops: [{ gateway: 'fd00::2', oif: h0 }],
    });
    assert.deepEqual(await b.commit(), []);

    const ip = node!.ip('route', 'show', 'proto', String(PROTO));
    assert.match(ip, /blackhole 10\.65\.2\.0\/26/);
    assert.match(ip, /10\.65\.3\.0\/26 via 172\.16\.0\.9 dev h0 .*onlink/);
    assert.match(
      ip,
      /10\.65\.4\.0\/26 \n\s+nexthop via 192\.168\.0\.2 dev h0 weight 1 \n\s+nexthop via 192\.168\.0\.3 dev h0 weight 2/,
    );

    const v4 = await c!.routes({ family: 4, protocol: PROTO });
    const byDst = new Map(v4.map((r) => [`${r.dst}/${r.dstLen}`, r]));
    assert.deepEqual([...byDst.keys()].sort(), [
      '10.65.1.0/26',
      '10.65.2.0/26',
      '10.65.3.0/26',
      '10.65.4.0/26',
      '10.65.5.7/32',
    ]);
    assert.deepEqual(byDst.get('10.65.1.0/26')!.nexthops, [{ gateway: '192.168.0.2', oif: h0 }]);
    assert.equal(byDst.get('10.65.2.0/26')!.type, 'blackhole');
    assert.deepEqual(byDst.get('10.65.2.0/26')!.nexthops, []);
    assert.deepEqual(byDst.get('10.65.3.0/26')!.nexthops, [{ gateway: '172.16.0.9', oif: h0, onlink: true }]);
    assert.deepEqual(byDst.get('10.65.4.0/26')!.nexthops, [
      { gateway: '192.168.0.2', oif: h0 },
      { gateway: '192.168.0.3', oif: h0, weight: 2 },
    ]);
    const host = byDst.get('10.65.5.7/32')!;
    assert.equal(host.scope, 253);
    assert.equal(host.priority, 10);
    for (const r of v4) assert.equal(r.protocol, PROTO);
    const v6 = await c!.routes({ family: 6, protocol: PROTO });
    assert.deepEqual(
      v6.map((r: RouteInfo) => [r.dst, r.dstLen, r.nexthops]),
      [['fd00:65::', 122, [{ gateway: 'fd00::2', oif: h0 }]]],
    );
    // the kernel's own routes are not ours: the protocol filter leaves them out
    assert.ok((await c!.routes({ family: 4 })).some((r) => r.protocol === 2));
  });

  it('visits_the_routes_routes_returns_through_the_dump_visitor_in_the_same_order', async (t) => {
    if (!needKernel(t)) return;
    // the routes of the test above, every kind, plus the kernel's own (unfiltered dumps)
    for (const filter of [
      { family: 4 as const, protocol: PROTO },
      { family: 6 as const },
      { family: 4 as const },
    ]) {
      const infos = await c!.routes(filter);
      const seen: RouteInfo[] = [];
      const numbers: string[] = [];
      const n = await c!.scanRoutes(filter, (v) => {
        seen.push(v.toInfo());
        // the numbers the view holds are those of the route it copies out
        numbers.push(
          viewNumbers(v) === viewNumbers(new RouteView().assign(v.toInfo())) ? 'same' : v.toInfo().dst,
        );
      });
      assert.ok(infos.length > 0, JSON.stringify(filter));
      assert.equal(n, infos.length);
      assert.deepEqual(seen, infos);
      assert.deepEqual(
        numbers,
        infos.map(() => 'same'),
      );
    }
  });

  it('replaces_a_route_in_place_and_deletes_only_with_the_right_protocol', async (t) => {
    if (!needKernel(t)) return;
    const r = { family: 4, dst: '10.66.0.0', dstLen: 26, protocol: PROTO } as const;
    await c!.addRoute({ ...r, nexthops: [{ gateway: '192.168.0.2', oif: h0 }] });
    await c!.replaceRoute({ ...r, nexthops: [{ gateway: '192.168.0.4', oif: h0 }] });
    const got = (await c!.routes({ family: 4, protocol: PROTO })).filter((x) => x.dst === '10.66.0.0');
    assert.deepEqual(
      got.map((x) => x.nexthops),
      [[{ gateway: '192.168.0.4', oif: h0 }]],
    );
    await assert.rejects(c!.deleteRoute({ ...r, protocol: PROTO + 1 }), (e) => isErrno(e, 'ESRCH'));
    await c!.deleteRoute(r);
    assert.equal(node!.ip('route', 'show', '10.66.0.0/26'), '');
  });

  it('reports_kernel_refusals_as_typed_errors_with_errno_names_and_messages', async (t) => {
    if (!needKernel(t)) return;
    const r = { family: 4, dst: '10.67.0.0', dstLen: 26, protocol: PROTO, type: 'blackhole' } as const;
    await c!.addRoute(r);
    await assert.rejects(c!.addRoute(r), (e) => {
      assert.ok(e instanceof NetlinkError);
      assert.equal(e.code, 'EEXIST');
      assert.equal(e.errno, 17);
      assert.match(e.message, /RTM_NEWROUTE blackhole 10\.67\.0\.0\/26: EEXIST/);
      return true;
    });
    await assert.rejects(c!.deleteRoute({ family: 4, dst: '10.99.0.0', dstLen: 26 }), (e) =>
      isErrno(e, 'ESRCH'),
    );
    await assert.rejects(c!.getLink('no-such-link'), (e) => isErrno(e, 'ENODEV'));
    await assert.rejects(c!.setLink(99999, { up: true }), (e) => isErrno(e, 'ENODEV'));
    await assert.rejects(
      c!.addRoute({
        family: 4,
        dst: '10.68.0.0',
        dstLen: 26,
        nexthops: [{ gateway: '172.16.0.1', oif: h0 }],
      }),
      (e) => e instanceof NetlinkError && e.code === 'ENETUNREACH' && /gateway/i.test(e.kernelMessage ?? ''),
    );
    await c!.deleteRoute(r);
  });

  it('reports_each_failure_of_a_batch_at_its_index_and_applies_the_rest', async (t) => {
    if (!needKernel(t)) return;
    const b = c!.batch();
    const n = 5000;
    for (let i = 0; i < n; i++) {
      // every 1000th route repeats the one before it: EEXIST
      const k = i % 1000 === 999 ? i - 1 : i;
      b.addRoute({
        family: 4,
        dst: `10.${100 + (k >> 8)}.${k & 255}.0`,
        dstLen: 24,
        protocol: PROTO + 1,
        nexthops: [{ gateway: '192.168.0.2', oif: h0 }],
      });
    }
    const failures = await b.commit();
    assert.deepEqual(
      failures.map((f) => [f.index, f.error.code]),
      [999, 1999, 2999, 3999, 4999].map((i) => [i, 'EEXIST']),
    );
    assert.equal((await c!.routes({ family: 4, protocol: PROTO + 1 })).length, n - 5);
    const del = c!.batch();
    for (const r of await c!.routes({ family: 4, protocol: PROTO + 1 })) del.deleteRoute(r);
    assert.deepEqual(await del.commit(), []);
    assert.equal((await c!.routes({ family: 4, protocol: PROTO + 1 })).length, 0);
  });

  it('runs_concurrent_requests_and_dumps_on_one_socket', async (t) => {
    if (!needKernel(t)) return;
    const ops: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i++) {
      ops.push(
        c!.addRoute({ family: 4, dst: `10.69.${i}.0`, dstLen: 24, protocol: PROTO + 2, type: 'blackhole' }),
      );
      ops.push(c!.links());
    }
    await Promise.all(ops);
    assert.equal((await c!.routes({ protocol: PROTO + 2, family: 4 })).length, 20);
    const del = c!.batch();
    for (let i = 0; i < 20; i++)
      del.deleteRoute({ family: 4, dst: `10.69.${i}.0`, dstLen: 24, protocol: PROTO + 2, type: 'blackhole' });
    assert.deepEqual(await del.commit(), []);
  });

  it('sees_a_route_added_by_ip_through_the_monitor', async (t) => {
    if (!needKernel(t)) return;
    const seen: RtnlMessage[] = [];
    let wake: () => void = () => undefined;
    const got = new Promise<void>((resolve) => (wake = resolve));
    const mon = RtnlMonitor.open({
      netns: node!.path,
      groups: ['ipv4-route', 'link'],
      onMessage: (m) => {
        seen.push(m);
        if (m.kind === 'route' && m.route.dst === '10.70.0.0') wake();
      },
      onOverrun: (e) => assert.fail(e),
    });
    try {
      node!.ip('route', 'add', '10.70.0.0/26', 'via', '192.168.0.2', 'dev', 'h0', 'proto', String(PROTO));
      await Promise.race([
        got,
        new Promise((_, reject) => setTimeout(() => reject(new Error('no notification within 2 s')), 2000)),
      ]);
      const m = seen.find((x) => x.kind === 'route' && x.route.dst === '10.70.0.0');
      assert.ok(m && m.kind === 'route');
      assert.equal(m.op, 'new');
      assert.equal(m.route.protocol, PROTO);
      assert.deepEqual(m.route.nexthops, [{ gateway: '192.168.0.2', oif: h0 }]);
      node!.ip('route', 'del', '10.70.0.0/26');
    } finally {
      mon.close();
    }
  });

  it('creates_a_vxlan_device_and_programs_its_fdb_and_arp_entries', async (t) => {
    if (!needKernel(t)) return;
    await c!.createLink({
      kind: 'vxlan',
      name: 'vxlan.calico',
      mtu: 1450,
      address: '66:11:22:33:44:55',
      vxlan: { id: 4096, port: 4789, local: '192.168.0.1', learning: false },
    });
    const vx = await c!.getLink('vxlan.calico');
    assert.deepEqual(vx.vxlan, { id: 4096, port: 4789, local: '192.168.0.1', learning: false });
    assert.equal(vx.mtu, 1450);
    assert.equal(vx.address, '66:11:22:33:44:55');
    await c!.setLink(vx.index, { up: true });
    await c!.setNeighbour({
      family: 'bridge',
      index: vx.index,
      lladdr: '66:aa:bb:cc:dd:ee',
      dst: '192.168.0.9',
      state: NUD_PERMANENT | NUD_NOARP,
      flags: NTF_SELF,
    });
    await c!.setNeighbour({ family: 4, index: vx.index, dst: '10.65.9.0', lladdr: '66:aa:bb:cc:dd:ee' });
    const fdb = (await c!.neighbours({ family: 'bridge', index: vx.index })).filter(
      (n) => n.lladdr === '66:aa:bb:cc:dd:ee',
    );
    assert.equal(fdb.length, 1);
    assert.equal(fdb[0]!.dst, '192.168.0.9');
    const arp = (await c!.neighbours({ family: 4, index: vx.index })).filter((n) => n.dst === '10.65.9.0');
    assert.equal(arp.length, 1);
    assert.equal(arp[0]!.lladdr, '66:aa:bb:cc:dd:ee');
    assert.equal(arp[0]!.state, NUD_PERMANENT);
    await c!.deleteNeighbour({ family: 4, index: vx.index, dst: '10.65.9.0' });
    assert.equal(
      (await c!.neighbours({ family: 4, index: vx.index })).filter((n) => n.dst === '10.65.9.0').length,
      0,
    );
    await c!.deleteLink(vx.index);
  });

  it('reads_and_writes_sysctls_inside_the_namespace_only', (t) => {
    if (!needKernel(t)) return;
    const hostBefore = readSysctl('net.ipv4.conf.all.forwarding');
    writeSysctl('net.ipv4.conf.all.forwarding', hostBefore === '1' ? '0' : '1', node!.path);
    assert.equal(readSysctl('net/ipv4/conf/all/forwarding', node!.path), hostBefore === '1' ? '0' : '1');
    assert.equal(readSysctl('net.ipv4.conf.all.forwarding'), hostBefore);
    writeSysctl('net/ipv4/conf/h0/proxy_arp', '1', node!.path);
    assert.equal(
      execFileSync('ip', ['netns', 'exec', node!.name, 'cat', '/proc/sys/net/ipv4/conf/h0/proxy_arp'], {
        encoding: 'utf8',
      }).trim(),
      '1',
    );
    assert.throws(
      () => readSysctl('net.ipv4.conf.nope.proxy_arp', node!.path),
      (e) => isErrno(e, 'ENOENT'),
    );
  });

  it('writes_sysctls_through_a_bind_of_proc_sys_net_into_the_namespace_that_opens_them', (t) => {
    // What a container that is not privileged does (tabby-node --proc-sys): the host's
    // /proc/sys/net bound elsewhere; its entries follow the opener's network namespace.
    if (!needKernel(t)) return;
    const root = mkdtempSync(join(tmpdir(), 'tnl-procsys-'));
    mkdirSync(join(root, 'net'));
    execFileSync('mount', ['--bind', '/proc/sys/net', join(root, 'net')]);
    try {
      setSysctlRoot(root);
      writeSysctl('net/ipv4/conf/h0/proxy_arp', '0', node!.path);
      assert.equal(readSysctl('net.ipv4.conf.h0.proxy_arp', node!.path), '0');
      writeSysctl('net.ipv4.conf.h0.proxy_arp', '1', node!.path);
      assert.equal(
        execFileSync('ip', ['netns', 'exec', node!.name, 'cat', '/proc/sys/net/ipv4/conf/h0/proxy_arp'], {
          encoding: 'utf8',
        }).trim(),
        '1',
      );
      assert.throws(() => setSysctlRoot('proc/sys'), /absolute path/);
    } finally {
      setSysctlRoot('/proc/sys');
      execFileSync('umount', [join(root, 'net')]);
      rmSync(root, { recursive: true });
    }
  });

  it('looks_up_the_route_and_source_address_the_kernel_would_use_for_a_flow', async (t) => {
    if (!needKernel(t)) return;
    await c!.addAddress({ family: 4, index: h0, address: '192.168.0.9', prefixLen: 24 });
    await c!.addRoute({
      family: 4,
      dst: '10.70.0.0',
      dstLen: 16,
      protocol: PROTO,
      prefsrc: '192.168.0.9',
      nexthops: [{ gateway: '192.168.0.2', oif: h0 }],
    });
    try {
      const direct = await c!.getRoute({ family: 4, dst: '192.168.0.77', ipProto: 17, dport: 80 });
      assert.equal(direct.prefsrc, '192.168.0.1');
      assert.deepEqual(direct.nexthops, [{ oif: h0 }]);
      assert.equal(direct.table, 254);
      const via = await c!.getRoute({ family: 4, dst: '10.70.3.4', ipProto: 17, dport: 80 });
      assert.equal(via.prefsrc, '192.168.0.9');
      assert.deepEqual(via.nexthops, [{ gateway: '192.168.0.2', oif: h0 }]);
      const v6 = await c!.getRoute({ family: 6, dst: 'fd00::77', ipProto: 17, dport: 80 });
      assert.equal(v6.prefsrc, 'fd00::1');
      assert.equal(v6.nexthops[0]?.oif, h0);
      // as `ip route get` shows it
      assert.match(node!.ip('route', 'get', '10.70.3.4'), /via 192\.168\.0\.2 dev h0 src 192\.168\.0\.9/);
      await assert.rejects(c!.getRoute({ family: 4, dst: '198.51.100.1' }), (e) => isErrno(e, 'ENETUNREACH'));
    } finally {
      await c!.deleteRoute({ family: 4, dst: '10.70.0.0', dstLen: 16, protocol: PROTO });
      await c!.deleteAddress({ family: 4, index: h0, address: '192.168.0.9', prefixLen: 24 });
    }
  });

  it('fails_to_open_a_socket_in_a_namespace_that_does_not_exist', (t) => {
    if (!needKernel(t)) return;
    assert.throws(
      () => RtnlClient.open({ netns: '/var/run/netns/tnl-missing-namespace' }),
      (e) => isErrno(e, 'ENOENT'),
    );
  });
});
