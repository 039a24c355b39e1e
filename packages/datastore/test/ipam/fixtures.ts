// Test support for IPAM: a store with pools, nodes and IPAMConfig, and quick constructors.
import type { AnyResource, Backend } from '../../src/store/backend.js';
import { MemoryBackend } from '../../src/store/memory.js';
import { API_VERSION } from '../../src/resources/meta.js';
import type { Kind } from '../../src/resources/kinds.js';
import type { IPPoolSpec } from '../../src/resources/ippool.js';
import type { IPAMConfigSpec } from '../../src/resources/ipam.js';
import type { IpamOptions } from '../../src/ipam/ipam.js';
import { Ipam } from '../../src/ipam/ipam.js';

export function res(
  kind: Kind,
  name: string,
  spec: unknown,
  labels?: Record<string, string>,
  namespace?: string,
): AnyResource {
  return {
    apiVersion: API_VERSION,
    kind,
    metadata: {
      name,
      ...(labels === undefined ? {} : { labels }),
      ...(namespace === undefined ? {} : { namespace }),
    },
    spec,
  };
}

export const pool = (name: string, spec: Partial<IPPoolSpec> & { cidr: string }): AnyResource =>
  res('IPPool', name, spec);

export const node = (name: string, labels: Record<string, string> = {}): AnyResource =>
  res('Node', name, {}, labels);

export const ipamConfig = (spec: Partial<IPAMConfigSpec>): AnyResource =>
  res('IPAMConfig', 'default', { strictAffinity: false, autoAllocateBlocks: true, ...spec });

/** A memory backend holding `objs`, and an Ipam over it that never sleeps. */
export async function setup(
  objs: readonly AnyResource[],
  opts: Partial<IpamOptions> = {},
): Promise<{ backend: Backend; ipam: Ipam }> {
  const backend = opts.backend ?? new MemoryBackend();
  for (const o of objs) await backend.create(o);
  const ipam = new Ipam({
    backend,
    clock: { now: () => Date.now(), sleep: () => Promise.resolve() },
    ...opts,
  });
  return { backend, ipam };
}

/** A deterministic PRNG (mulberry32) for tests. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
