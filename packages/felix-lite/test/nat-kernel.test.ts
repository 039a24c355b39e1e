// NAT-outgoing on a real kernel, in network namespaces (tnt-…, always removed):
//
//   pod (10.65.1.7/24, fd65::7/64) ── node (10.65.1.1, 192.0.2.2; fd65::1, 2001:db8::2) ── outside (192.0.2.1, 2001:db8::1;
//                                                                                       10.70.0.1 on lo: an address
//                                                                                       of a pool without NAT)
//
// The outside namespace runs a small TCP server that answers each connection with the peer
// address it saw; the pod connects to it. The NatReconciler (ExecNft inside the node
// namespace) writes table ip/ip6 tabby there. With natOutgoing the outside sees the node's
// address, without it the pod's; traffic to the other pool is never NATed; a table flushed
// by hand comes back; an operator's own table beside ours is never touched.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { PoolInput } from '../src/index.js';
import { computeDesired, ExecNft, NatReconciler, NftMissingError } from '../src/index.js';
import { needNft, nftUnavailable, TestNetns } from './netns.js';

const PORT = 18080; // inside the test's own namespaces only
const made: TestNetns[] = [];
let server: ChildProcess | undefined;
after(() => {
  if (server?.pid !== undefined) server.kill();
  for (const ns of made.reverse()) ns.destroy();
});

const nat = (pools: PoolInput[]) =>
  computeDesired({ pools, paths: [], endpoints: [], affineBlocks: [], hostInterfaces: [] }).nat;
const POOLS_NAT: PoolInput[] = [
  { cidr: '10.65.0.0/16', natOutgoing: true },
  { cidr: '10.70.0.0/16' },
  { cidr: 'fd65::/48', natOutgoing: true },
];
const POOLS_NO_NAT: PoolInput[] = POOLS_NAT.map((p) => ({ ...p, natOutgoing: false }));

const SERVER = `
const net = require('node:net');
for (const host of ['0.0.0.0', '::']) {
  const s = net.createServer((c) => c.end(c.remoteAddress.replace(/^::ffff:/, '') + '\\n'));
  s.listen({ host, port: ${PORT}, ipv6Only: host === '::' }, () => { if (host === '::') console.log('ready'); });
}`;
const CLIENT = `
const c = require('node:net').connect({ host: process.argv[1], port: ${PORT} });
let out = '';
c.on('data', (d) => (out += d));
c.on('end', () => process.stdout.write(out));
c.setTimeout(3000, () => { console.error('timeout'); process.exit(2); });`;

describe('NAT-outgoing in namespaces', () => {
  let pod: TestNetns;
  let node: TestNetns;
  let out: TestNetns;

  before(async () => {
    if (nftUnavailable() !== undefined) return;
    pod = TestNetns.create('pod', 'tnt');
    made.push(pod);
    node = TestNetns.create('node', 'tnt');
    made.push(node);
    out = TestNetns.create('out', 'tnt');
    made.push(out);
    node.ip('link', 'add', 'tntpod', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name);
    node.ip('link', 'add', 'tntout', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', out.name);
    for (const [ns, dev, addrs] of [
      [node, 'tntpod', ['10.65.1.1/24', 'fd65::1/64']],
      [node, 'tntout', ['192.0.2.2/24', '2001:db8::2/64']],
      [pod, 'eth0', ['10.65.1.7/24', 'fd65::7/64']],
      [out, 'eth0', ['192.0.2.1/24', '2001:db8::1/64']],
    ] as const) {
      for (const a of addrs) ns.ip('addr', 'add', a, 'dev', dev, ...(a.includes(':') ? ['nodad'] : []));
      ns.ip('link', 'set', dev, 'up');
      ns.ip('link', 'set', 'lo', 'up');
    }
    out.ip('addr', 'add', '10.70.0.1/32', 'dev', 'lo');
    pod.ip('route', 'add', 'default', 'via', '10.65.1.1');
    pod.ip('-6', 'route', 'add', 'default', 'via', 'fd65::1');
    node.ip('route', 'add', '10.70.0.0/16', 'via', '192.0.2.1');
    // the outside can answer pods directly (so without NAT it sees their addresses)
    out.ip('route', 'add', '10.65.0.0/16', 'via', '192.0.2.2');
    out.ip('-6', 'route', 'add', 'fd65::/48', 'via', '2001:db8::2');
    execFileSync('ip', ['netns', 'exec', node.name, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    execFileSync('ip', ['netns', 'exec', node.name, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
    // an operator's table beside ours: it must come through everything untouched
    execFileSync('ip', ['netns', 'exec', node.name, 'nft', '-f', '-'], {
      input:
        'table ip operator {\n\tchain out {\n\t\ttype filter hook output priority 0; policy accept;\n\t\tcounter\n\t}\n}\n',
    });
    const s = spawn('ip', ['netns', 'exec', out.name, process.execPath, '-e', SERVER], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    server = s;
    await new Promise<void>((resolve, reject) => {
      s.stdout?.on('data', (d: Buffer) => {
        if (d.toString().includes('ready')) resolve();
      });
      s.on('exit', (code) => reject(new Error(`test server exited with ${code}`)));
    });
  });

  /** The source address the outside namespace saw for a connection from the pod to `to`. */
  const seenFrom = (to: string): string =>
    execFileSync('ip', ['netns', 'exec', pod.name, process.execPath, '-e', CLIENT, to], {
      encoding: 'utf8',
      timeout: 10_000,
    }).trim();
  const tables = (): string =>
    execFileSync('ip', ['netns', 'exec', node.name, 'nft', 'list', 'tables'], { encoding: 'utf8' });
  const operatorTable = (): string =>
    execFileSync('ip', ['netns', 'exec', node.name, 'nft', 'list', 'table', 'ip', 'operator'], {
      encoding: 'utf8',
    }).replace(/packets \d+ bytes \d+/g, '');

  it('masquerades_pod_traffic_leaving_the_pools_and_only_that_and_repairs_a_flushed_table', async (t) => {
    if (!needNft(t)) return;
    const operator = operatorTable();
    const r = new NatReconciler({ nft: new ExecNft({ netns: node.name }) }, { resyncIntervalMs: 200 });
    try {
      // without natOutgoing: no table of ours, the outside sees the pod
      r.setDesired(nat(POOLS_NO_NAT));
      assert.equal((await r.apply()).written, false);
      assert.doesNotMatch(tables(), /tabby/);
      assert.equal(seenFrom('192.0.2.1'), '10.65.1.7');
      assert.equal(seenFrom('2001:db8::1'), 'fd65::7');

      // with it: the node's address, but never towards another pool
      r.setDesired(nat(POOLS_NAT));
      assert.equal((await r.apply()).written, true);
      assert.match(tables(), /table ip tabby/);
      assert.match(tables(), /table ip6 tabby/);
      assert.equal(seenFrom('192.0.2.1'), '192.0.2.2');
      assert.equal(seenFrom('2001:db8::1'), '2001:db8::2');
      assert.equal(seenFrom('10.70.0.1'), '10.65.1.7');
      const listed = execFileSync(
        'ip',
        ['netns', 'exec', node.name, 'nft', 'list', 'chain', 'ip', 'tabby', 'postrouting'],
        {
          encoding: 'utf8',
        },
      );
      // the IPv4 connection out was masqueraded (the rule sees a connection's first packet only), the one to the pool not
      assert.match(listed, /counter packets 1 bytes \d+ masquerade fully-random/);

      // drift: the table flushed by hand comes back on the next check
      // (start's first pass cannot run before the flush and the check below: both are synchronous)
      r.start();
      execFileSync('ip', ['netns', 'exec', node.name, 'nft', 'flush', 'table', 'ip', 'tabby']);
      assert.equal(seenFrom('192.0.2.1'), '10.65.1.7'); // really broken
      const repaired = new Promise<void>((resolve) => {
        const off = r.onPass((p) => {
          if (!(p instanceof Error) && p.written) {
            off();
            resolve();
          }
        });
      });
      const start = performance.now();
      await repaired;
      const ms = performance.now() - start;
      assert.ok(ms < 2000, `repaired after ${ms} ms`);
      assert.equal(
        r.lastResult?.differences.join('; '),
        'table ip tabby: chain postrouting holds 0 rules, wanted 1',
      );
      assert.equal(seenFrom('192.0.2.1'), '192.0.2.2');
      await r.stop();

      // no pool needs NAT any more: both tables go, the pod is seen again
      r.setDesired(nat(POOLS_NO_NAT));
      assert.equal((await r.apply()).written, true);
      assert.doesNotMatch(tables(), /tabby/);
      assert.equal(seenFrom('192.0.2.1'), '10.65.1.7');
      assert.equal(operatorTable(), operator);
    } finally {
      await r.stop();
    }
  });

  it('names_the_nftables_package_when_nft_is_missing', async (t) => {
    if (!needNft(t)) return;
    const missing = 'tnt-no-such-nft';
    for (const nft of [
      new ExecNft({ command: missing }),
      new ExecNft({ command: missing, netns: node.name }),
    ]) {
      const r = new NatReconciler({ nft });
      r.setDesired(nat(POOLS_NAT));
      await assert.rejects(
        r.apply(),
        (e: unknown) => e instanceof NftMissingError && /"nftables" package/.test(e.message),
      );
    }
  });
});
