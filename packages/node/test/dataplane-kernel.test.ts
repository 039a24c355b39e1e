// tabby-node with its kernel dataplane, in network namespaces: two nodes (each tabby-node
// process inside its own namespace, joined by a veth on one subnet), pods made by the CNI
// plugin exactly as a runtime calls it, and the routes between them coming from BGP through
// felix-lite. The pods ping each other; then one node's tabby-node is restarted while a pod
// pings across, and not one packet is lost (the kernel keeps the routes, the peer keeps ours
// by graceful restart, and the new process adopts what it finds).
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Datastore, openBackend } from '@tabby/datastore';
import { needKernel, setNetnsPrefix, TestNetns } from '@tabby/netlink/testing';
import { ask } from '../src/daemon/server.js';
import { until as untilMs } from './support/until.js';

/** Processes and real daemons start slowly on a loaded machine: 30 s unless said. */
const until = (f: () => boolean | Promise<boolean>, what: string, ms = 30_000) => untilMs(f, what, ms);

setNetnsPrefix('tnd');
const NODE_BIN = fileURLToPath(new URL('../../bin/tabby-node.js', import.meta.url));
const CNI_BIN = fileURLToPath(new URL('../../../cni/bin/tabby.js', import.meta.url));
const PORT = 17410;

describe('tabby-node with the kernel dataplane', () => {
  const cleanup: (() => void | Promise<void>)[] = [];
  after(async () => {
    if (process.env['TABBY_KEEP'] === '1') return;
    for (const c of cleanup.reverse()) await c();
  });

  it('pods on two nodes reach each other over BGP-learned routes, and a tabby-node restart loses no packet', async (t) => {
    if (!needKernel(t)) return;
    const dir = mkdtempSync(join(tmpdir(), 'tabby-dp-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const dsDir = join(dir, 'datastore');
    const backend = await openBackend({ type: 'yaml', dir: dsDir });
    cleanup.push(() => backend.close());
    const ds = new Datastore(backend);
    await ds.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPConfiguration',
      metadata: { name: 'default' },
      spec: { listenPort: PORT, bindMode: 'NodeIP' },
    });
    await ds.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'IPPool',
      metadata: { name: 'pods' },
      spec: { cidr: '10.78.0.0/16', blockSize: 26, ipipMode: 'Never', natOutgoing: false },
    });

    // Two nodes on one subnet.
    const nodes = [
      { name: 'ka', ip: '192.168.78.1', ns: TestNetns.create('a') },
      { name: 'kb', ip: '192.168.78.2', ns: TestNetns.create('b') },
    ] as const;
    for (const n of nodes) cleanup.push(() => n.ns.destroy());
    execFileSync('ip', [
      'link',
      'add',
      'tnd-veth-a',
      'netns',
      nodes[0].ns.name,
      'type',
      'veth',
      'peer',
      'name',
      'tnd-veth-b',
      'netns',
      nodes[1].ns.name,
    ]);
    for (const [n, dev] of [
      [nodes[0], 'tnd-veth-a'],
      [nodes[1], 'tnd-veth-b'],
    ] as const) {
      n.ns.ip('link', 'set', 'lo', 'up');
      n.ns.ip('link', 'set', dev, 'name', 'eth0');
      n.ns.ip('addr', 'add', `${n.ip}/24`, 'dev', 'eth0');
      n.ns.ip('link', 'set', 'eth0', 'up');
      // A host has a default route; proxy ARP (how pods reach 169.254.1.1) answers only for
      // addresses the host can route elsewhere.
      n.ns.ip('route', 'add', 'default', 'via', '192.168.78.254', 'dev', 'eth0');
      execFileSync('ip', ['netns', 'exec', n.ns.name, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      await ds.apply({
        apiVersion: 'projectcalico.org/v3',
        kind: 'Node',
        metadata: { name: n.name },
        spec: { bgp: { ipv4Address: `${n.ip}/24` } },
      });
    }

    // tabby-node in each node's namespace.
    const procs = new Map<string, ChildProcess>();
    const logs = new Map<string, string>();
    const startNode = (n: (typeof nodes)[number]) => {
      const p = spawn(
        'ip',
        [
          'netns',
          'exec',
          n.ns.name,
          process.execPath,
          NODE_BIN,
          '--node',
          n.name,
          '--datastore-dir',
          dsDir,
          '--socket',
          join(dir, `${n.name}.sock`),
          '--http',
          'none',
          '--dataplane',
          'kernel',
          '--mtu-file',
          join(dir, `${n.name}.mtu`),
          '--nodename-file',
          join(dir, `${n.name}.nodename`),
          '--log-level',
          'warn',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      logs.set(n.name, '');
      const keep = (d: Buffer) => logs.set(n.name, (logs.get(n.name)! + d.toString()).slice(-8000));
      p.stdout.on('data', keep);
      p.stderr.on('data', keep);
      procs.set(n.name, p);
      return p;
    };
    const stopNode = (name: string) =>
      new Promise<number | null>((r) => {
        const p = procs.get(name)!;
        procs.delete(name);
        p.once('exit', (code) => r(code));
        p.kill('SIGTERM');
      });
    cleanup.push(async () => {
      for (const name of [...procs.keys()]) await stopNode(name);
    });
    for (const n of nodes) startNode(n);

    // A pod on each node, through the CNI plugin as a runtime runs it (in the node's namespace).
    const pods = nodes.map((n, i) => {
      const pod = TestNetns.create(`p${i}`);
      cleanup.push(() => pod.destroy());
      const conf = JSON.stringify({
        cniVersion: '1.1.0',
        name: 'tabby',
        type: 'tabby',
        nodename: n.name,
        mtu: 1400,
        ipam: { type: 'tabby-ipam' },
        datastore: { type: 'yaml', dir: dsDir },
      });
      const r = spawnSync('ip', ['netns', 'exec', n.ns.name, process.execPath, CNI_BIN], {
        input: conf,
        encoding: 'utf8',
        env: {
          ...process.env,
          CNI_COMMAND: 'ADD',
          CNI_CONTAINERID: `ctr-${n.name}`,
          CNI_NETNS: pod.path,
          CNI_IFNAME: 'eth0',
          CNI_PATH: '/usr/lib/cni',
          CNI_ARGS: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-${n.name}`,
        },
      });
      assert.equal(r.status, 0, `CNI ADD on ${n.name}: ${r.stdout}${r.stderr}`);
      const ip = (JSON.parse(r.stdout) as { ips: { address: string }[] }).ips[0]!.address.split('/')[0]!;
      return { ns: pod, ip };
    });

    const ping = (from: TestNetns, to: string, count = 1) =>
      spawnSync('ip', ['netns', 'exec', from.name, 'ping', '-c', String(count), '-i', '0.2', '-W', '1', to], {
        encoding: 'utf8',
      }).status === 0;
    await until(
      () => ping(pods[0]!.ns, pods[1]!.ip),
      `pod on ka reaches pod on kb (${pods[1]!.ip})`,
      60000,
    ).catch((e: Error) => {
      throw new Error(
        `${e.message}\nka routes: ${nodes[0].ns.ip('route')}\nkb routes: ${nodes[1].ns.ip('route')}\nlogs: ${JSON.stringify([...logs])}`,
      );
    });
    assert.ok(ping(pods[1]!.ns, pods[0]!.ip), 'and back');
    // The route is felix-lite's (protocol 84), learned over BGP, through the other node.
    const blockRoute = nodes[0].ns
      .ip('route', 'show', 'proto', '84')
      .split('\n')
      .find((l) => l.includes(`via ${nodes[1].ip}`));
    assert.ok(blockRoute !== undefined, nodes[0].ns.ip('route'));
    const routes = await ask(join(dir, 'ka.sock'), { cmd: 'routes' });
    assert.ok(
      routes.ok &&
        'routes' in routes &&
        routes.routes.programmed !== undefined &&
        routes.routes.programmed.some((p) => p.state === 'programmed'),
    );

    // Restart ka's tabby-node while its pod pings kb's pod every 20 ms: nothing lost.
    const pinger = spawn(
      'ip',
      ['netns', 'exec', pods[0]!.ns.name, 'ping', '-i', '0.02', '-w', '12', pods[1]!.ip],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let pingOut = '';
    pinger.stdout.on('data', (d: Buffer) => (pingOut += d.toString()));
    const pingDone = new Promise<void>((r) => pinger.once('exit', () => r()));
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await stopNode('ka'), 0, logs.get('ka'));
    await new Promise((r) => setTimeout(r, 1000)); // down for a second: the kernel still routes
    startNode(nodes[0]);
    await until(async () => {
      const s = await ask(join(dir, 'ka.sock'), { cmd: 'status' });
      return s.ok && 'status' in s && s.status.peers.some((p) => p.state === 'established');
    }, 'ka back and Established');
    await pingDone;
    const m = /(\d+) packets transmitted, (\d+) received/.exec(pingOut);
    assert.ok(m !== null, pingOut);
    assert.ok(Number(m[1]) > 100, `enough pings sent: ${m[0]}`);
    assert.equal(m[2], m[1], `no packet lost across the restart: ${m[0]}`);
  });
});
