// npm run bench:cluster: how long from a block claimed on one node (its BlockAffinity written
// to the datastore) until every other node's dataplane has the route, for clusters of 3, 50
// and 200 simulated nodes, through the full mesh and through two route reflectors; and the
// memory each node daemon adds (JavaScript heap and buffers after GC, shared runtime excluded).
//
// Every node is a real NodeDaemon with a real bgp-ts speaker on its own 127.1.x.y address,
// all in this one process, sharing one in-memory datastore (the datastore's own latency is
// not the subject). "The dataplane has the route" is the moment the daemon hands felix-lite a
// view containing it; programming one route into the kernel adds well under a millisecond
// (npm run bench:dataplane). A 200-node full mesh is 19,900 sessions in one process: it runs
// with --full only.
//
//   npm run bench:cluster [-- --trials N] [-- --full] [-- --sizes 3,50]
import { spawnSync } from 'node:child_process';
import { Speaker } from 'bgp-ts/speaker';
import { Datastore, MemoryBackend } from '@tabby/datastore';
import type { DataplaneView } from '../src/daemon/node-daemon.js';
import { NodeDaemon } from '../src/daemon/node-daemon.js';

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const TRIALS = Number(arg('trials') ?? 20);
const FULL = args.includes('--full');
const SIZES = (arg('sizes') ?? '3,50,200').split(',').map(Number);
const PORT = 17390;

const ipOf = (i: number): string => `127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`;
/** A /26 of its own for every trial. */
const blockOf = (t: number): string => `10.${200 + (t >> 10)}.${(t >> 2) & 255}.${(t & 3) * 64}/26`;

async function until(f: () => boolean, what: string, ms: number): Promise<void> {
  const t0 = performance.now();
  while (!f()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}

interface Result {
  readonly topology: string;
  readonly nodes: number;
  readonly sessions: number;
  readonly convergeS: number;
  readonly p50: number;
  readonly p99: number;
  readonly perNodeP50: number;
  readonly mbPerDaemon: number;
}

async function run(topology: 'mesh' | 'reflectors', n: number): Promise<Result> {
  const heap = (): number => {
    global.gc?.();
    const m = process.memoryUsage();
    return m.heapUsed + m.external; // RSS never shrinks back between runs; the heap does
  };
  const heap0 = heap();
  const backend = new MemoryBackend();
  const ds = new Datastore(backend);
  await ds.apply({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPConfiguration',
    metadata: { name: 'default' },
    spec: { listenPort: PORT, bindMode: 'NodeIP', nodeToNodeMeshEnabled: topology === 'mesh' },
  });
  await ds.apply({
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: { name: 'p' },
    spec: { cidr: '10.128.0.0/9', blockSize: 26 },
  });
  const names: string[] = [];
  const total = topology === 'reflectors' ? n + 2 : n;
  for (let i = 0; i < total; i++) {
    const rr = topology === 'reflectors' && i >= n;
    const name = rr ? `rr${i - n + 1}` : `node${i}`;
    names.push(name);
    await ds.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'Node',
      metadata: { name, ...(rr ? { labels: { 'route-reflector': 'true' } } : {}) },
      spec: { bgp: { ipv4Address: `${ipOf(i)}/8`, ...(rr ? { routeReflectorClusterID: '224.0.0.1' } : {}) } },
    });
  }
  if (topology === 'reflectors')
    await ds.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPPeer',
      metadata: { name: 'to-reflectors' },
      spec: { nodeSelector: 'all()', peerSelector: "route-reflector == 'true'" },
    });

  // Per node: when its dataplane first saw each prefix.
  const seen = new Map<string, Map<string, number>>();
  const daemons: NodeDaemon[] = [];
  for (const name of names) {
    const mine = new Map<string, number>();
    seen.set(name, mine);
    const d = new NodeDaemon({
      datastore: new Datastore(backend),
      nodeName: name,
      createSpeaker: (c, e) => new Speaker(c, {}, e),
      dataplane: {
        update: (v: DataplaneView) => {
          const now = performance.now();
          for (const p of v.paths.keys()) if (!mine.has(p)) mine.set(p, now);
        },
      },
    });
    daemons.push(d);
    d.start();
  }
  const t0 = performance.now();
  const expected = (name: string): number =>
    topology === 'mesh' ? n - 1 : name.startsWith('rr') ? n + 1 : 2;
  await until(
    () =>
      daemons.every(
        (d, i) => d.status().peers.filter((p) => p.state === 'established').length === expected(names[i]!),
      ),
    `${topology} of ${n}: every session Established`,
    300_000,
  );
  const convergeS = (performance.now() - t0) / 1000;
  const sessions = daemons.reduce((s, d) => s + d.status().peers.length, 0) / 2;
  const mbPerDaemon = (heap() - heap0) / total / 1e6;

  const worst: number[] = [];
  const each: number[] = [];
  for (let t = 0; t < TRIALS; t++) {
    const i = t % n;
    const block = blockOf(t);
    const start = performance.now();
    await ds.apply({
      apiVersion: 'crd.projectcalico.org/v1',
      kind: 'BlockAffinity',
      metadata: { name: `node${i}-${block.replace(/[./]/g, '-')}` },
      spec: { state: 'confirmed', node: `node${i}`, cidr: block, deleted: 'false' },
    });
    const others = names.filter((x) => x !== `node${i}`);
    await until(() => others.every((o) => seen.get(o)!.has(block)), `block ${block} everywhere`, 60_000);
    const times = others.map((o) => seen.get(o)!.get(block)! - start);
    worst.push(Math.max(...times));
    each.push(...times);
  }
  for (const d of daemons) await d.stop();
  return {
    topology,
    nodes: n,
    sessions,
    convergeS,
    p50: pct(worst, 50),
    p99: pct(worst, 99),
    perNodeP50: pct(each, 50),
    mbPerDaemon,
  };
}

// Each configuration runs in a fresh process, so one run's garbage and closing sockets do
// not blur the next one's memory figure.
const one = arg('one');
if (one !== undefined) {
  const [topology, n] = one.split(':');
  const r = await run(topology as 'mesh' | 'reflectors', Number(n));
  process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
} else {
  const results: Result[] = [];
  for (const topology of ['mesh', 'reflectors'] as const)
    for (const n of SIZES) {
      if (topology === 'mesh' && n > 50 && !FULL) {
        console.log(`mesh of ${n}: skipped (${(n * (n - 1)) / 2} sessions in one process; --full runs it)`);
        continue;
      }
      const child = spawnSync(
        process.execPath,
        ['--expose-gc', process.argv[1]!, '--one', `${topology}:${n}`, '--trials', String(TRIALS)],
        { encoding: 'utf8', maxBuffer: 1 << 26 },
      );
      const line = child.stdout.split('\n').find((l) => l.startsWith('RESULT '));
      if (line === undefined) {
        console.log(`${topology} of ${n}: failed\n${child.stderr}`);
        process.exitCode = 1;
        continue;
      }
      const r = JSON.parse(line.slice(7)) as Result;
      results.push(r);
      console.log(
        `${r.topology.padEnd(10)} ${String(r.nodes).padStart(4)} nodes  ${String(r.sessions).padStart(6)} sessions  ` +
          `up in ${r.convergeS.toFixed(1)} s  block->every node p50 ${r.p50.toFixed(1)} ms p99 ${r.p99.toFixed(1)} ms  ` +
          `(per node p50 ${r.perNodeP50.toFixed(1)} ms)  ${r.mbPerDaemon.toFixed(2)} MB per daemon`,
      );
    }
  console.log(
    '\n| topology | nodes | sessions | all up | block to every node p50 | p99 | per node p50 | memory per daemon |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of results)
    console.log(
      `| ${r.topology} | ${r.nodes} | ${r.sessions} | ${r.convergeS.toFixed(1)} s | ${r.p50.toFixed(1)} ms | ${r.p99.toFixed(1)} ms | ${r.perNodeP50.toFixed(1)} ms | ${r.mbPerDaemon.toFixed(2)} MB |`,
    );
}
