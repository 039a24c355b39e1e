// npm run bench:netlink: the kernel benchmark. In namespaces made for the run:
//   1. program 10,000 remote-block routes into an empty namespace,
//   2. a resync of those 10,000 with nothing to change (dump + compare),
//   3. 1,000 changes (500 next-hop changes, 500 deletions),
// each by our client and by iproute2 (`ip -batch`, and `ip -json route show` + JSON.parse
// for the dump), in the same run; plus the cost of one request from a fresh process's point
// of view (open + one route vs. spawning `ip` once), which is the CNI plugin's case.
// Prints the median of RUNS runs and the ratios. Needs root.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { RtnlClient } from '../src/index.js';
import type { RouteInfo, RouteSpec } from '../src/index.js';
import { kernelUnavailable, TestNetns } from '../test/netns.js';

const N = Number(process.env['ROUTES'] ?? 10_000);
const CHANGES = Number(process.env['CHANGES'] ?? 1_000);
const RUNS = Number(process.env['RUNS'] ?? 5);
const PROTO = 80;

interface Want {
  readonly dst: string;
  readonly gateway: string;
}

function block(i: number): string {
  return `10.${64 + (i >> 10)}.${(i >> 2) & 255}.${(i & 3) * 64}`;
}

function nodeIp(i: number): string {
  const k = 2 + (i % 1000);
  return `192.168.${k >> 8}.${k & 255}`;
}

function desired(n: number): Want[] {
  return Array.from({ length: n }, (_, i) => ({ dst: block(i), gateway: nodeIp(i) }));
}

function spec(w: Want, oif: number): RouteSpec {
  return { family: 4, dst: w.dst, dstLen: 26, protocol: PROTO, nexthops: [{ gateway: w.gateway, oif }] };
}

/** A node namespace with h0 192.168.0.1/16 up (the underlay) and nothing else. */
function freshNode(): { ns: TestNetns; oif: number } {
  const ns = TestNetns.create('bench');
  ns.ip('link', 'add', 'name', 'h0', 'type', 'veth', 'peer', 'name', 'h1');
  ns.ip('link', 'set', 'h0', 'up');
  ns.ip('link', 'set', 'h1', 'up');
  ns.ip('addr', 'add', '192.168.0.1/16', 'dev', 'h0');
  const oif = Number(/^(\d+):/.exec(ns.ip('-o', 'link', 'show', 'h0'))![1]);
  return { ns, oif };
}

/** The reconciler's compare: what to add, change and remove so the kernel equals `want`. */
function diff(want: readonly Want[], have: readonly { dst: string; gateway: string | undefined }[]) {
  const have2 = new Map<string, string | undefined>();
  for (const h of have) have2.set(h.dst, h.gateway);
  let add = 0;
  let change = 0;
  const wanted = new Set<string>();
  for (const w of want) {
    wanted.add(w.dst);
    const g = have2.get(w.dst);
    if (g === undefined && !have2.has(w.dst)) add++;
    else if (g !== w.gateway) change++;
  }
  let remove = 0;
  for (const h of have) if (!wanted.has(h.dst)) remove++;
  return { add, change, remove };
}

function fromInfo(r: RouteInfo): { dst: string; gateway: string | undefined } {
  return { dst: r.dst, gateway: r.nexthops[0]?.gateway };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

const dir = mkdtempSync(join(tmpdir(), 'tnl-bench-'));

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
    console.error(`bench:netlink cannot run: ${why}`);
    process.exit(1);
  }
  const want = desired(N);
  const changed = want.map((w, i) => (i < CHANGES / 2 ? { dst: w.dst, gateway: nodeIp(i + 1) } : w));
  const results: Record<string, { ours: number[]; ip: number[] }> = {
    [`program ${N} routes`]: { ours: [], ip: [] },
    [`resync ${N} routes, no change`]: { ours: [], ip: [] },
    [`${CHANGES} changes`]: { ours: [], ip: [] },
    ['one route (socket open + request)']: { ours: [], ip: [] },
    ['one route from a new Node process (import + open + request)']: { ours: [], ip: [] },
  };
  const floor: number[] = [];
  const r = (k: string) => results[k]!;
  const keys = Object.keys(results);

  for (let run = 0; run < RUNS; run++) {
    // --- ours
    {
      const { ns, oif } = freshNode();
      try {
        let t0 = performance.now();
        const c = RtnlClient.open({ netns: ns.path });
        const b = c.batch();
        for (const w of want) b.addRoute(spec(w, oif));
        const failed = await b.commit();
        r(keys[0]!).ours.push(performance.now() - t0);
        if (failed.length > 0) throw failed[0]!.error;

        t0 = performance.now();
        const have = await c.routes({ family: 4, protocol: PROTO });
        const d = diff(want, have.map(fromInfo));
        r(keys[1]!).ours.push(performance.now() - t0);
        if (have.length !== N || d.add + d.change + d.remove !== 0)
          throw new Error(`resync found ${JSON.stringify(d)}`);

        t0 = performance.now();
        const ch = c.batch();
        for (let i = 0; i < CHANGES / 2; i++) ch.replaceRoute(spec(changed[i]!, oif));
        for (let i = N - CHANGES / 2; i < N; i++) ch.deleteRoute(spec(want[i]!, oif));
        const f2 = await ch.commit();
        r(keys[2]!).ours.push(performance.now() - t0);
        if (f2.length > 0) throw f2[0]!.error;
        c.close();

        t0 = performance.now();
        const c1 = RtnlClient.open({ netns: ns.path });
        await c1.addRoute({
          family: 4,
          dst: '10.255.0.0',
          dstLen: 26,
          protocol: PROTO,
          nexthops: [{ gateway: '192.168.0.2', oif }],
        });
        c1.close();
        r(keys[3]!).ours.push(performance.now() - t0);
      } finally {
        ns.destroy();
      }
    }
    // --- iproute2
    {
      const { ns } = freshNode();
      try {
        r(keys[0]!).ip.push(
          ipBatch(
            ns,
            want.map((w) => `route add ${w.dst}/26 via ${w.gateway} dev h0 proto ${PROTO}`),
          ),
        );
        const t0 = performance.now();
        const out = execFileSync(
          'ip',
          ['-n', ns.name, '-json', '-4', 'route', 'show', 'proto', String(PROTO)],
          {
            encoding: 'utf8',
            maxBuffer: 1 << 28,
          },
        );
        const parsed = JSON.parse(out) as { dst: string; gateway?: string }[];
        const d = diff(
          want,
          parsed.map((p) => ({ dst: p.dst.replace(/\/26$/, ''), gateway: p.gateway })),
        );
        r(keys[1]!).ip.push(performance.now() - t0);
        if (parsed.length !== N || d.add + d.change + d.remove !== 0)
          throw new Error(`ip resync found ${JSON.stringify(d)}`);
        const lines: string[] = [];
        for (let i = 0; i < CHANGES / 2; i++)
          lines.push(`route replace ${changed[i]!.dst}/26 via ${changed[i]!.gateway} dev h0 proto ${PROTO}`);
        for (let i = N - CHANGES / 2; i < N; i++) lines.push(`route del ${want[i]!.dst}/26 proto ${PROTO}`);
        r(keys[2]!).ip.push(ipBatch(ns, lines));
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
          'proto',
          String(PROTO),
        ]);
        const oneIp = performance.now() - t1;
        r(keys[3]!).ip.push(oneIp);
        r(keys[4]!).ip.push(oneIp);
        // the CNI plugin's view: a new Node process importing the package and adding one
        // route, beside a bare `node -e 0` (the floor of any Node plugin)
        const script =
          `import { RtnlClient } from ${JSON.stringify(new URL('../src/index.js', import.meta.url).href)};` +
          `const c = RtnlClient.open({ netns: ${JSON.stringify(ns.path)} });` +
          `await c.addRoute({ family: 4, dst: '10.255.1.0', dstLen: 26, protocol: ${PROTO}, nexthops: [{ gateway: '192.168.0.2' }] });` +
          `c.close();`;
        const t2 = performance.now();
        execFileSync(process.execPath, ['--input-type=module', '-e', script]);
        r(keys[4]!).ours.push(performance.now() - t2);
        const t3 = performance.now();
        execFileSync(process.execPath, ['-e', '0']);
        floor.push(performance.now() - t3);
      } finally {
        ns.destroy();
      }
    }
  }

  console.log(`bench:netlink: ${N} routes, ${CHANGES} changes, median of ${RUNS} runs (ms)`);
  console.log('| case | @tabby/netlink | iproute2 | ratio (ours / ip) |');
  console.log('|---|---:|---:|---:|');
  for (const k of keys) {
    const o = median(r(k).ours);
    const i = median(r(k).ip);
    console.log(`| ${k} | ${o.toFixed(1)} | ${i.toFixed(1)} | ${(o / i).toFixed(2)} |`);
  }
  console.log(`bare \`node -e 0\`: ${median(floor).toFixed(1)} ms (the floor for the last row)`);
  console.log(
    'iproute2 columns: `ip -force -batch` (program, changes), `ip -json route show` + JSON.parse + compare (resync), one `ip route add` spawn (last two rows)',
  );
  rmSync(dir, { recursive: true, force: true });
}

await main();
