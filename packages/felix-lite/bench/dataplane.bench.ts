// npm run bench:dataplane: the dataplane benchmark, through felix-lite's reconciler.
// In namespaces made for the run (tfl-bench-…, removed after):
//   1. program 10,000 remote-block routes into an empty namespace (setDesired + one pass:
//      links, an empty dump, one batch),
//   2. a resync of those 10,000 with nothing to change (links, dump, compare; a second one
//      right after it is printed apart),
//   3. 1,000 changes (500 next-hop changes, 500 deletions),
//   4. drift repair: a route deleted by `ip route del`, until the monitor sees it back,
// each beside iproute2 doing the same work in the same run (`ip -force -batch`; `ip -json
// route show` + JSON.parse + compare; for drift, one `ip route add` spawn: the floor of
// putting a route back by hand). The reconciler records its metrics on a registry, as a node
// runs it. Prints medians. Needs root. ROUTES, CHANGES, RUNS, DRIFTS override the sizes.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import { RtnlMonitor, TABBY_ROUTE_PROTOCOL } from '@tabby/netlink';
import type { BestPath, Route } from '../src/index.js';
import { computeDesired, NetlinkKernel, RouteReconciler } from '../src/index.js';
import { kernelUnavailable, TestNetns } from '../test/netns.js';

const N = Number(process.env['ROUTES'] ?? 10_000);
const CHANGES = Number(process.env['CHANGES'] ?? 1_000);
const RUNS = Number(process.env['RUNS'] ?? 5);
const DRIFTS = Number(process.env['DRIFTS'] ?? 20);
const PROTO = TABBY_ROUTE_PROTOCOL;

const block = (i: number): string => `10.${64 + (i >> 10)}.${(i >> 2) & 255}.${(i & 3) * 64}`;
const nodeIp = (i: number): string => {
  const k = 2 + (i % 1000);
  return `192.168.${k >> 8}.${k & 255}`;
};

function routesFor(paths: BestPath[]): Route[] {
  return [
    ...computeDesired({
      paths,
      endpoints: [],
      affineBlocks: [],
      pools: [{ cidr: '10.64.0.0/10' }],
      hostInterfaces: [{ name: 'h0', addresses: ['192.168.0.1/16'] }],
    }).routes,
  ];
}

/** A node namespace with h0 192.168.0.1/16 up (the underlay) and nothing else. */
function freshNode(): TestNetns {
  const ns = TestNetns.create('bench');
  ns.ip('link', 'add', 'name', 'h0', 'type', 'veth', 'peer', 'name', 'h1');
  ns.ip('link', 'set', 'h0', 'up');
  ns.ip('link', 'set', 'h1', 'up');
  ns.ip('addr', 'add', '192.168.0.1/16', 'dev', 'h0');
  return ns;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const dir = mkdtempSync(join(tmpdir(), 'tfl-bench-'));

function ipBatch(ns: TestNetns, lines: string[]): number {
  const file = join(dir, 'batch.txt');
  writeFileSync(file, lines.join('\n') + '\n');
  const t0 = performance.now();
  const r = spawnSync('ip', ['-n', ns.name, '-force', '-batch', file], { encoding: 'utf8' });
  const t = performance.now() - t0;
  if (r.status !== 0) throw new Error(`ip -batch failed: ${r.stderr}`);
  return t;
}

async function main(): Promise<void> {
  const why = kernelUnavailable();
  if (why !== undefined) {
    console.error(`bench:dataplane cannot run: ${why}`);
    process.exit(1);
  }
  const paths: BestPath[] = Array.from({ length: N }, (_, i) => ({
    prefix: `${block(i)}/26`,
    nextHops: [nodeIp(i)],
  }));
  const changedPaths = paths
    .slice(0, N - CHANGES / 2)
    .map((p, i) => (i < CHANGES / 2 ? { prefix: p.prefix, nextHops: [nodeIp(i + 1)] } : p));
  let t0 = performance.now();
  const want = routesFor(paths);
  const computeMs = performance.now() - t0;
  const changed = routesFor(changedPaths);
  if (want.length !== N) throw new Error(`computeDesired gave ${want.length} routes, not ${N}`);

  const keys = [
    `program ${N} routes`,
    `resync ${N} routes, no change`,
    `${CHANGES} changes`,
    'drift repair (one route deleted by hand)',
  ];
  const ours: number[][] = keys.map(() => []);
  const ip: number[][] = keys.map(() => []);
  const resyncAgain: number[] = [];

  for (let run = 0; run < RUNS; run++) {
    // --- felix-lite
    {
      const ns = freshNode();
      const kernel = new NetlinkKernel({ netns: ns.path });
      try {
        // with metrics on, as a node runs it
        const r = new RouteReconciler({ kernel, registry: new Registry() }, { families: [4] });
        t0 = performance.now();
        r.setDesired(want);
        const p1 = await r.apply();
        ours[0]!.push(performance.now() - t0);
        if (p1.added !== N || !p1.inSync) throw new Error(`program: ${JSON.stringify(p1)}`);

        t0 = performance.now();
        r.requestResync();
        const p2 = await r.apply();
        ours[1]!.push(performance.now() - t0);
        if (!p2.resynced || p2.added + p2.replaced + p2.deleted !== 0)
          throw new Error(`resync: ${JSON.stringify(p2)}`);
        // the same again: how much of the first was a cold start
        t0 = performance.now();
        r.requestResync();
        const p2b = await r.apply();
        resyncAgain.push(performance.now() - t0);
        if (!p2b.resynced || p2b.added + p2b.replaced + p2b.deleted !== 0)
          throw new Error(`second resync: ${JSON.stringify(p2b)}`);

        t0 = performance.now();
        r.setDesired(changed);
        const p3 = await r.apply();
        ours[2]!.push(performance.now() - t0);
        if (p3.replaced !== CHANGES / 2 || p3.deleted !== CHANGES / 2)
          throw new Error(`changes: ${JSON.stringify(p3)}`);

        // drift: the reconciler running, a route deleted by hand, timed until the monitor sees it back
        r.start();
        await new Promise((res) => setTimeout(res, 50));
        let back: (() => void) | undefined;
        const monitor = RtnlMonitor.open({
          netns: ns.path,
          groups: ['ipv4-route'],
          onMessage: (m) => {
            if (m.kind === 'route' && m.op === 'new' && m.route.protocol === PROTO) back?.();
          },
          onOverrun: (e) => {
            throw e;
          },
        });
        try {
          const drifts = run === 0 ? DRIFTS : Math.ceil(DRIFTS / RUNS);
          for (let d = 0; d < drifts; d++) {
            const victim = changed[(d * 97) % changed.length]!;
            const seen = new Promise<void>((res) => (back = res));
            execFileSync('ip', ['-n', ns.name, 'route', 'del', `${victim.dst}/26`]);
            const td = performance.now();
            await seen;
            ours[3]!.push(performance.now() - td);
          }
        } finally {
          monitor.close();
          await r.stop();
        }
      } finally {
        kernel.close();
        ns.destroy();
      }
    }
    // --- iproute2
    {
      const ns = freshNode();
      try {
        ip[0]!.push(
          ipBatch(
            ns,
            paths.map((p) => `route add ${p.prefix} via ${p.nextHops[0]} dev h0 proto ${PROTO}`),
          ),
        );
        t0 = performance.now();
        const out = execFileSync(
          'ip',
          ['-n', ns.name, '-json', '-4', 'route', 'show', 'proto', String(PROTO)],
          {
            encoding: 'utf8',
            maxBuffer: 1 << 28,
          },
        );
        const parsed = JSON.parse(out) as { dst: string; gateway?: string; dev?: string }[];
        const have = new Map(parsed.map((p) => [p.dst, `${p.gateway}|${p.dev}`]));
        let differ = 0;
        for (const p of paths) if (have.get(p.prefix) !== `${p.nextHops[0]}|h0`) differ++;
        ip[1]!.push(performance.now() - t0);
        if (parsed.length !== N || differ !== 0)
          throw new Error(`ip resync: ${parsed.length} routes, ${differ} differ`);
        const lines: string[] = [];
        for (let i = 0; i < CHANGES / 2; i++)
          lines.push(`route replace ${paths[i]!.prefix} via ${nodeIp(i + 1)} dev h0 proto ${PROTO}`);
        for (let i = N - CHANGES / 2; i < N; i++) lines.push(`route del ${paths[i]!.prefix} proto ${PROTO}`);
        ip[2]!.push(ipBatch(ns, lines));
        const t1 = performance.now();
        execFileSync('ip', [
          '-n',
          ns.name,
          'route',
          'add',
          '10.255.0.0/26',
          'via',
          '192.168.0.2',
          'dev',
          'h0',
        ]);
        ip[3]!.push(performance.now() - t1);
      } finally {
        ns.destroy();
      }
    }
  }

  console.log(`bench:dataplane: ${N} routes, ${CHANGES} changes, median of ${RUNS} runs (ms)`);
  console.log('| case | felix-lite | iproute2 | ratio (felix-lite / ip) |');
  console.log('|---|---:|---:|---:|');
  for (let k = 0; k < keys.length; k++) {
    const o = median(ours[k]!);
    const i = median(ip[k]!);
    console.log(`| ${keys[k]} | ${o.toFixed(1)} | ${i.toFixed(1)} | ${(o / i).toFixed(2)} |`);
  }
  console.log(`a second no-change resync right after the first: ${median(resyncAgain).toFixed(1)} ms`);
  const drift = [...ours[3]!].sort((a, b) => a - b);
  console.log(
    `drift repair over ${drift.length} deletions: p50 ${median(drift).toFixed(1)} ms, max ${drift[drift.length - 1]!.toFixed(1)} ms`,
  );
  console.log(`computeDesired for ${N} paths: ${computeMs.toFixed(1)} ms (not in the table)`);
  console.log(
    'iproute2 columns: `ip -force -batch` (program, changes), `ip -json route show` + JSON.parse + compare (resync), one `ip route add` spawn (drift)',
  );
  console.log(
    'goals (issue 8): programming within 1.5x of ip -batch; a no-change resync of 10,000 under 50 ms',
  );
  rmSync(dir, { recursive: true, force: true });
}

await main();
