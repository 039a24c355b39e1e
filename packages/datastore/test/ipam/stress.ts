// The IPAM stress workload and the backend descriptors it opens, shared by the child
// process (stress-child.ts), the in-process harness test and the benchmark.
import type { Backend } from '../../src/store/backend.js';
import { MemoryBackend } from '../../src/store/memory.js';
import { EtcdBackend } from '../../src/backends/etcd/index.js';
import { YamlDirBackend } from '../../src/backends/yaml/index.js';
import { Ipam, MaxBlocksReachedError, PoolExhaustedError } from '../../src/ipam/index.js';
import { seeded } from './fixtures.js';

/** Which store to open: `memory` only within one process; the others are shared. */
export type BackendDescriptor =
  | { readonly type: 'memory' }
  | { readonly type: 'etcd'; readonly endpoint: string; readonly prefix: string }
  | { readonly type: 'yaml'; readonly dir: string };

export async function openBackend(d: BackendDescriptor): Promise<Backend> {
  switch (d.type) {
    case 'memory':
      return new MemoryBackend();
    case 'etcd':
      return new EtcdBackend({ endpoints: [d.endpoint], prefix: d.prefix });
    case 'yaml':
      return YamlDirBackend.open({ root: d.dir });
  }
}

export interface StressOptions {
  readonly node: string;
  /** Round-robin over these nodes instead of `node` alone (a cluster's worth of CNI calls). */
  readonly nodes?: readonly string[];
  readonly cycles: number;
  readonly seed: number;
  /** Handle names start with this (unique per worker). */
  readonly tag: string;
  /** Chance that a cycle also releases one held handle. [Default: 0.5] */
  readonly releaseRate?: number;
}

export interface StressResult {
  readonly node: string;
  /** Handles still held at the end, with their addresses. */
  readonly held: Record<string, string[]>;
  readonly allocations: number;
  readonly releases: number;
  readonly exhausted: number;
  /** Milliseconds per successful autoAssign call. */
  readonly latencies: number[];
  /** Wall clock (ms since the epoch) around the cycles, without process start-up. */
  readonly startedAt: number;
  readonly endedAt: number;
}

/** `cycles` rounds of: assign one IPv4 address, and sometimes release a held handle. */
export async function runStress(backend: Backend, o: StressOptions): Promise<StressResult> {
  const rnd = seeded(o.seed);
  const ipam = new Ipam({ backend, random: rnd });
  const held = new Map<string, string[]>();
  const latencies: number[] = [];
  let allocations = 0;
  let releases = 0;
  let exhausted = 0;
  const startedAt = Date.now();
  for (let i = 0; i < o.cycles; i++) {
    const handle = `${o.tag}-${i}`;
    const t0 = performance.now();
    try {
      const node = o.nodes === undefined ? o.node : o.nodes[i % o.nodes.length]!;
      const r = await ipam.autoAssign({ handleId: handle, num4: 1, num6: 0, node });
      latencies.push(performance.now() - t0);
      held.set(
        handle,
        r.ipv4.map((a) => a.ip),
      );
      allocations++;
    } catch (e) {
      if (!(e instanceof PoolExhaustedError) && !(e instanceof MaxBlocksReachedError)) throw e;
      exhausted++;
    }
    if (held.size > 0 && rnd() < (o.releaseRate ?? 0.5)) {
      const keys = [...held.keys()];
      const h = keys[Math.floor(rnd() * keys.length)]!;
      await ipam.releaseByHandle(h);
      held.delete(h);
      releases++;
    }
  }
  return {
    node: o.node,
    held: Object.fromEntries(held),
    allocations,
    releases,
    exhausted,
    latencies,
    startedAt,
    endedAt: Date.now(),
  };
}
