// `npm run bench:ipam`: IPAM allocation throughput and latency per backend. For each
// backend, N allocations (one IPv4 address per call, nothing released) spread over NODES
// nodes (N/NODES pods per node: a cluster filling up, each node's allocations landing in
// its own /26 blocks as on real nodes), from one worker, then from 8 concurrent workers
// each serving an eighth of the nodes: 8 processes with their own clients for a shared
// store, 8 async workers in one process for the memory backend (it cannot be shared across
// processes). Prints allocations per second and p50/p99 latency per call.
//
// Calico's IPAM, like ours, walks a node's affine blocks in order on every request, so one
// node holding hundreds of blocks makes every call slower: --nodes 1 shows that case.
//
// Options: --n N (default 10000), --nodes NODES (default 100), --backends memory,yaml,etcd (default: all three; etcd
// when /usr/bin/etcd or $ETCD_BIN exists).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Backend } from '../src/store/backend.js';
import { node, pool } from '../test/ipam/fixtures.js';
import type { BackendDescriptor, StressResult } from '../test/ipam/stress.js';
import { openBackend, runStress } from '../test/ipam/stress.js';
import { startEtcd } from '../test/ipam/etcd.js';
import { ETCD_BIN } from '../src/testing/index.js';

const CHILD = fileURLToPath(new URL('../test/ipam/stress-child.js', import.meta.url));
const WORKERS = 8;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const N = Number(arg('n') ?? 10_000);
const NODES = Number(arg('nodes') ?? 100);
const nodeNames = Array.from({ length: NODES }, (_, i) => `node-${i}`);
/** Worker w's share of the nodes: every WORKERS-th one (one worker: all). */
const shareOf = (w: number, workers: number): string[] => nodeNames.filter((_, i) => i % workers === w);
const BACKENDS = (arg('backends') ?? (existsSync(ETCD_BIN) ? 'memory,yaml,etcd' : 'memory,yaml')).split(',');

async function seed(b: Backend): Promise<void> {
  // Room for N addresses in /26 blocks, whatever N is.
  await b.create(pool('bench', { cidr: '10.0.0.0/8' }));
  for (const n of nodeNames) await b.create(node(n));
}

function pct(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function report(backend: string, mode: string, ms: number, results: readonly StressResult[]): void {
  const lat = results.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const n = results.reduce((s, r) => s + r.allocations, 0);
  const failed = results.reduce((s, r) => s + r.exhausted, 0);
  console.log(
    `${backend.padEnd(7)} ${mode.padEnd(24)} ${String(n).padStart(6)} allocations in ${(ms / 1000).toFixed(2)} s: ` +
      `${Math.round((n * 1000) / ms)
        .toString()
        .padStart(6)}/s  p50 ${pct(lat, 50).toFixed(2)} ms  p99 ${pct(lat, 99).toFixed(2)} ms` +
      (failed > 0 ? `  (${failed} failed)` : ''),
  );
}

function child(
  desc: BackendDescriptor,
  nodeName: string,
  cycles: number,
  tag: string,
): Promise<StressResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(
      process.execPath,
      [CHILD, JSON.stringify(desc), nodeName, String(cycles), '1', tag, '0'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out) as StressResult)
        : reject(new Error(`child ${tag} exited ${code}`)),
    );
  });
}

async function benchMemory(): Promise<void> {
  for (const workers of [1, WORKERS]) {
    const b = await openBackend({ type: 'memory' });
    await seed(b);
    const t0 = performance.now();
    const results = await Promise.all(
      Array.from({ length: workers }, (_, i) =>
        runStress(b, {
          node: shareOf(i, workers)[0]!,
          nodes: shareOf(i, workers),
          cycles: Math.ceil(N / workers),
          seed: i,
          tag: `w${i}`,
          releaseRate: 0,
        }),
      ),
    );
    report(
      'memory',
      workers === 1 ? '1 worker' : `${workers} async workers`,
      performance.now() - t0,
      results,
    );
    await b.close();
  }
}

/** N allocations on a store shared between processes: one process, then 8 at once. */
async function benchShared(name: string, describe: () => BackendDescriptor): Promise<void> {
  for (const workers of [1, WORKERS]) {
    const desc = describe();
    const b = await openBackend(desc);
    await seed(b);
    const t0 = performance.now();
    const results =
      workers === 1
        ? [
            await runStress(b, {
              node: nodeNames[0]!,
              nodes: nodeNames,
              cycles: N,
              seed: 0,
              tag: 'w0',
              releaseRate: 0,
            }),
          ]
        : await Promise.all(
            Array.from({ length: workers }, (_, i) =>
              child(desc, shareOf(i, workers).join(','), Math.ceil(N / workers), `w${i}`),
            ),
          );
    // Timed from the first worker's start to the last one's end: process start-up is not IPAM.
    const ms =
      workers === 1
        ? performance.now() - t0
        : Math.max(...results.map((r) => r.endedAt)) - Math.min(...results.map((r) => r.startedAt));
    report(name, workers === 1 ? '1 process' : `${workers} processes`, ms, results);
    await b.close();
  }
}

async function benchEtcd(): Promise<void> {
  const etcd = await startEtcd();
  try {
    await benchShared('etcd', () => ({
      type: 'etcd',
      endpoint: etcd.endpoint,
      prefix: `/tabby-ipam-bench/${randomUUID()}`,
    }));
  } finally {
    await etcd.stop();
  }
}

async function benchYaml(): Promise<void> {
  const dirs: string[] = [];
  try {
    await benchShared('yaml', () => {
      const dir = mkdtempSync(join(tmpdir(), 'tabby-ipam-bench-'));
      dirs.push(dir);
      return { type: 'yaml', dir };
    });
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

for (const b of BACKENDS) {
  if (b === 'memory') await benchMemory();
  else if (b === 'yaml') await benchYaml();
  else if (b === 'etcd') await benchEtcd();
  else throw new Error(`unknown backend ${b} (memory, yaml, etcd)`);
}
