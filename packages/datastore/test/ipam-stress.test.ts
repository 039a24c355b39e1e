// IPAM stress: several workers allocate and release at once against one store, then the
// store is checked: no address twice, exactly the workers' held addresses allocated, every
// handle and affinity consistent, nothing left after releasing everything. In-process on
// the memory backend (the harness itself), and as separate processes (test/ipam/
// stress-child.ts, each with its own client) on every shareable backend: the YAML directory
// and etcd.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import type { Backend } from '../src/store/backend.js';
import { Ipam } from '../src/ipam/index.js';
import { node, pool } from './ipam/fixtures.js';
import { allocated, problems, snapshot } from './ipam/invariants.js';
import type { BackendDescriptor, StressResult } from './ipam/stress.js';
import { openBackend, runStress } from './ipam/stress.js';
import { startEtcd } from './ipam/etcd.js';
import { etcdSkipReason } from '../src/testing/index.js';

const CHILD = fileURLToPath(new URL('./ipam/stress-child.js', import.meta.url));
// Three nodes, four workers (two share n0, as two CNI calls on one host do), a /24 in
// blocks of 16: they fill their blocks, claim, borrow and contend.
const WORKERS = [
  { node: 'n0', tag: 'w0' },
  { node: 'n0', tag: 'w1' },
  { node: 'n1', tag: 'w2' },
  { node: 'n2', tag: 'w3' },
];

async function seed(b: Backend): Promise<void> {
  await b.create(pool('p', { cidr: '10.80.0.0/24', blockSize: 28 }));
  for (const n of ['n0', 'n1', 'n2']) await b.create(node(n));
}

async function verify(b: Backend, results: readonly StressResult[]): Promise<void> {
  const snap = await snapshot(b);
  assert.deepEqual(problems(snap), []);
  const expected = new Map<string, string>();
  for (const r of results)
    for (const [h, ips] of Object.entries(r.held))
      for (const ip of ips) {
        assert.equal(expected.get(ip), undefined, `${ip} held by ${expected.get(ip)} and ${h}`);
        expected.set(ip, h);
      }
  assert.deepEqual(new Map([...allocated(snap)].sort()), new Map([...expected].sort()));
  assert.ok(results.reduce((n, r) => n + r.allocations, 0) > 0);
  const ipam = new Ipam({ backend: b });
  for (const r of results) for (const h of Object.keys(r.held)) await ipam.releaseByHandle(h);
  const after = await snapshot(b);
  assert.deepEqual(problems(after), []);
  assert.equal(allocated(after).size, 0);
  assert.deepEqual(after.handles, []);
}

function child(
  desc: BackendDescriptor,
  w: { node: string; tag: string },
  cycles: number,
  s: number,
): Promise<StressResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(
      process.execPath,
      [CHILD, JSON.stringify(desc), w.node, String(cycles), String(s), w.tag],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('exit', (code, signal) =>
      code === 0
        ? resolve(JSON.parse(out) as StressResult)
        : reject(new Error(`stress child ${w.tag} exited ${code ?? signal}: ${err}`)),
    );
  });
}

describe('ipam stress', () => {
  it('workers_in_one_process_share_a_memory_store_without_collisions', async () => {
    const b = await openBackend({ type: 'memory' });
    await seed(b);
    const results = await Promise.all(
      WORKERS.map((w, i) => runStress(b, { ...w, cycles: 80, seed: 1000 + i })),
    );
    await verify(b, results);
    await b.close();
  });

  it('four_processes_share_a_yaml_directory_without_collisions', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tabby-ipam-stress-'));
    const desc: BackendDescriptor = { type: 'yaml', dir };
    const b = await openBackend(desc);
    try {
      await seed(b);
      const results = await Promise.all(WORKERS.map((w, i) => child(desc, w, 40, 3000 + i)));
      await verify(b, results);
    } finally {
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const skip = etcdSkipReason();
  it('four_processes_share_an_etcd_store_without_collisions', { skip: skip ?? false }, async () => {
    const etcd = await startEtcd();
    const desc: BackendDescriptor = {
      type: 'etcd',
      endpoint: etcd.endpoint,
      prefix: `/tabby-ipam-stress/${randomUUID()}`,
    };
    const b = await openBackend(desc);
    try {
      await seed(b);
      const results = await Promise.all(WORKERS.map((w, i) => child(desc, w, 40, 2000 + i)));
      await verify(b, results);
    } finally {
      await b.close();
      await etcd.stop();
    }
  });
});
