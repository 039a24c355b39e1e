// tabby-node as separate processes on loopback, sharing a YAML-directory datastore: a mesh
// that grows and shrinks, and a cluster of ten behind two route reflectors that survives one
// reflector's death. Each node listens on its own 127.0.0.x; nothing here needs root (the
// dataplane is left out; kernel tests cover it).
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Datastore, openBackend } from '@tabby/datastore';
import type { DaemonStatus } from '../src/daemon/node-daemon.js';
import { ask } from '../src/daemon/server.js';
import { until as untilMs } from './support/until.js';

/** Processes and real daemons start slowly on a loaded machine: 30 s unless said. */
const until = (f: () => boolean | Promise<boolean>, what: string, ms = 30_000) => untilMs(f, what, ms);

const BIN = fileURLToPath(new URL('../../bin/tabby-node.js', import.meta.url));

class Cluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'tabby-cluster-'));
  readonly procs = new Map<string, ChildProcess>();
  readonly logs = new Map<string, string>();
  ds!: Datastore;
  private close!: () => Promise<void>;

  async open(port: number, mesh: boolean): Promise<void> {
    const backend = await openBackend({ type: 'yaml', dir: join(this.dir, 'datastore') });
    this.close = () => backend.close();
    this.ds = new Datastore(backend);
    await this.ds.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPConfiguration',
      metadata: { name: 'default' },
      spec: { listenPort: port, bindMode: 'NodeIP', nodeToNodeMeshEnabled: mesh },
    });
    await this.ds.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'IPPool',
      metadata: { name: 'pods' },
      spec: { cidr: '10.70.0.0/16' },
    });
  }

  async addNode(
    name: string,
    ip: string,
    block: string,
    extra: { labels?: Record<string, string>; rr?: string } = {},
  ) {
    await this.ds.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'Node',
      metadata: { name, ...(extra.labels !== undefined ? { labels: extra.labels } : {}) },
      spec: {
        bgp: {
          ipv4Address: `${ip}/8`,
          ...(extra.rr !== undefined ? { routeReflectorClusterID: extra.rr } : {}),
        },
      },
    });
    await this.ds.apply({
      apiVersion: 'crd.projectcalico.org/v1',
      kind: 'BlockAffinity',
      metadata: { name: `${name}-block` },
      spec: { state: 'confirmed', node: name, cidr: block, deleted: 'false' },
    });
  }

  private readonly orphans = () => {
    for (const p of this.procs.values()) p.kill('SIGKILL');
  };

  start(name: string): void {
    if (this.procs.size === 0) process.once('exit', this.orphans);
    const p = spawn(
      process.execPath,
      [
        BIN,
        '--node',
        name,
        '--datastore-dir',
        join(this.dir, 'datastore'),
        '--socket',
        this.sock(name),
        '--dataplane',
        'none',
        '--nodename-file',
        join(this.dir, `${name}.nodename`),
        '--http',
        'none',
        '--log-level',
        'warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.logs.set(name, '');
    const keep = (d: Buffer) => this.logs.set(name, (this.logs.get(name)! + d.toString()).slice(-20000));
    p.stdout.on('data', keep);
    p.stderr.on('data', keep);
    this.procs.set(name, p);
  }

  sock(name: string): string {
    return join(this.dir, `${name}.sock`);
  }

  async status(name: string): Promise<DaemonStatus> {
    const r = await ask(this.sock(name), { cmd: 'status' });
    if (!r.ok || !('status' in r)) throw new Error(JSON.stringify(r));
    return r.status;
  }

  async learned(name: string): Promise<Map<string, readonly string[]>> {
    const r = await ask(this.sock(name), { cmd: 'routes' });
    if (!r.ok || !('routes' in r)) throw new Error(JSON.stringify(r));
    return new Map(r.routes.learned.map((l) => [l.prefix, l.nextHops]));
  }

  async established(name: string): Promise<string[]> {
    return (await this.status(name)).peers
      .filter((p) => p.state === 'established')
      .map((p) => p.address)
      .sort();
  }

  kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.procs.get(name)!;
    this.procs.delete(name);
    return new Promise((r) => {
      if (p.exitCode !== null) return r();
      p.once('exit', () => r());
      p.kill(signal);
    });
  }

  async shutdown(): Promise<void> {
    for (const n of [...this.procs.keys()]) await this.kill(n, 'SIGTERM');
    process.removeListener('exit', this.orphans);
    await this.close?.();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

describe('tabby-node processes', () => {
  const clusters: Cluster[] = [];
  after(async () => {
    for (const c of clusters) await c.shutdown();
  });

  it('refuses a bad command line (exit 2) and a bad start-up setting (exit 1), naming them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tabby-node-bad-'));
    try {
      const run = (args: string[], env: Record<string, string> = {}) =>
        spawnSync(process.execPath, [BIN, ...args], {
          encoding: 'utf8',
          env: { ...process.env, ...env },
          timeout: 30000,
        });
      const usage = run(['--frobnicate', '1']);
      assert.equal(usage.status, 2);
      assert.match(usage.stderr, /unknown argument "--frobnicate"/);
      const bad = run(
        [
          '--node',
          'x',
          '--datastore-dir',
          join(dir, 'ds'),
          '--socket',
          join(dir, 's'),
          '--http',
          'none',
          '--nodename-file',
          join(dir, 'n'),
        ],
        { CALICO_IPV4POOL_BLOCK_SIZE: '33' },
      );
      assert.equal(bad.status, 1, bad.stderr);
      assert.match(bad.stderr, /start-up step settings failed: .*CALICO_IPV4POOL_BLOCK_SIZE/);
      // A failure after the speaker started (the control socket's directory missing): exit 1
      // with the reason, nothing left running (it once kept the process up without a socket).
      const noSocket = run([
        '--node',
        'y',
        '--ip',
        '127.0.0.119/8',
        '--dataplane',
        'none',
        '--datastore-dir',
        join(dir, 'ds2'),
        '--socket',
        join(dir, 'missing', 'dir', 's'),
        '--http',
        'none',
        '--nodename-file',
        join(dir, 'n2'),
      ]);
      assert.equal(noSocket.signal, null, 'tabby-node hung after a failed start');
      assert.equal(noSocket.status, 1, noSocket.stderr);
      assert.match(noSocket.stderr, /ENOENT|EACCES/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a three-node mesh exchanges blocks; a fourth joins; a killed node is dropped; SIGTERM exits cleanly', async () => {
    const c = new Cluster();
    clusters.push(c);
    await c.open(17370, true);
    const ips = ['127.0.0.111', '127.0.0.112', '127.0.0.113', '127.0.0.114'];
    for (let i = 0; i < 3; i++) await c.addNode(`m${i + 1}`, ips[i]!, `10.70.${i + 1}.0/26`);
    for (let i = 0; i < 3; i++) c.start(`m${i + 1}`);
    for (let i = 0; i < 3; i++)
      await until(
        async () => (await c.established(`m${i + 1}`)).length === 2,
        `m${i + 1} established with both others`,
      );
    await until(async () => {
      const l = await c.learned('m1');
      return l.get('10.70.2.0/26')?.[0] === ips[1] && l.get('10.70.3.0/26')?.[0] === ips[2];
    }, 'm1 learned both blocks via their nodes');

    await c.addNode('m4', ips[3]!, '10.70.4.0/26');
    c.start('m4');
    for (const n of ['m1', 'm2', 'm3', 'm4'])
      await until(async () => (await c.established(n)).length === 3, `${n} in a mesh of four`);
    await until(async () => (await c.learned('m2')).has('10.70.4.0/26'), "m4's block at m2");

    // A node dies: the others see the session go (its TCP connections close). As graceful-
    // restart helpers they keep its block, stale, for the restart time (it may come back).
    await c.kill('m3');
    await until(async () => (await c.established('m1')).length === 2, 'm1 lost m3');
    assert.ok((await c.learned('m1')).has('10.70.3.0/26'), 'kept while m3 may restart');
    // Removed from the datastore: the peering goes away, and with it the block.
    await c.ds.delete('Node', 'm3');
    await until(async () => (await c.status('m1')).peers.length === 2, 'm1 no longer configured with m3');
    await until(async () => !(await c.learned('m1')).has('10.70.3.0/26'), "m3's block withdrawn");

    // SIGTERM: a clean, prompt exit (code 0).
    const p = c.procs.get('m4')!;
    const code = await new Promise<number | null>((r) => {
      p.once('exit', (c) => r(c));
      p.kill('SIGTERM');
    });
    c.procs.delete('m4');
    assert.equal(code, 0, c.logs.get('m4'));
  });

  it('ten nodes behind two route reflectors: every block everywhere, and one reflector dying loses nothing', async () => {
    const c = new Cluster();
    clusters.push(c);
    await c.open(17371, false);
    const rrLabels = { 'route-reflector': 'true' };
    await c.addNode('rr1', '127.0.0.121', '10.70.101.0/26', { labels: rrLabels, rr: '224.0.0.1' });
    await c.addNode('rr2', '127.0.0.122', '10.70.102.0/26', { labels: rrLabels, rr: '224.0.0.1' });
    const clients = Array.from({ length: 8 }, (_, i) => `c${i + 1}`);
    for (const [i, n] of clients.entries()) await c.addNode(n, `127.0.0.${131 + i}`, `10.70.${11 + i}.0/26`);
    await c.ds.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPPeer',
      metadata: { name: 'to-reflectors' },
      spec: { nodeSelector: 'all()', peerSelector: "route-reflector == 'true'" },
    });
    for (const n of ['rr1', 'rr2', ...clients]) c.start(n);
    // Each client peers with both reflectors; each reflector with the other and the 8 clients.
    for (const n of clients)
      await until(async () => (await c.established(n)).length === 2, `${n} up with both reflectors`, 60000);
    await until(async () => (await c.established('rr1')).length === 9, 'rr1 up with everyone', 60000);
    const all = [...clients.map((_, i) => `10.70.${11 + i}.0/26`), '10.70.101.0/26', '10.70.102.0/26'];
    for (const n of clients) {
      const own = `10.70.${11 + clients.indexOf(n)}.0/26`;
      await until(async () => {
        const l = await c.learned(n);
        return all.every((p) => p === own || l.has(p));
      }, `${n} has every other block`);
    }
    const c2 = await c.learned('c2');
    assert.deepEqual(c2.get('10.70.11.0/26'), ['127.0.0.131'], 'next hop kept: the node, not the reflector');

    // rr1 dies, and is removed, so nothing of it is kept as stale: routes stay, through rr2.
    await c.kill('rr1');
    for (const n of clients)
      await until(async () => (await c.established(n)).length === 1, `${n} down to rr2`);
    await c.ds.delete('Node', 'rr1');
    for (const n of clients)
      await until(async () => (await c.status(n)).peers.length === 1, `${n} configured with rr2 only`);
    await until(async () => !(await c.learned('c1')).has('10.70.101.0/26'), "rr1's own block gone");
    for (const n of clients) {
      const l = await c.learned(n);
      const own = `10.70.${11 + clients.indexOf(n)}.0/26`;
      assert.deepEqual(
        all.filter((p) => p !== own && p !== '10.70.101.0/26' && !l.has(p)),
        [],
        `${n} lost nothing`,
      );
    }
  });
});
