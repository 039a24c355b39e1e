// IP pools as IPAM sees them: stored pools with Calico's defaults filled in, which of them
// may serve a request (enabled, assignment mode, node and namespace selectors, allowed use),
// and the order in which a node walks a pool's blocks when it looks for one to claim.
import { createHash } from 'node:crypto';
import type { AnyResource } from '../store/backend.js';
import type { IPPool, IPPoolSpec } from '../resources/ippool.js';
import { IPPoolKind, defaultBlockSize } from '../resources/ippool.js';
import { validateSpec } from '../resources/define.js';
import type { Cidr, Family } from '../schema/ip.js';
import { cidrContainsIp, familyBits, formatCidr, parseCidr, prefixMask } from '../schema/ip.js';
import type { Address } from '../schema/ip.js';
import type { Selector } from '../selector/index.js';
import { matches, parseSelector } from '../selector/index.js';

export type AllowedUse = 'Workload' | 'Tunnel' | 'LoadBalancer';
const isUse = (u: string): u is AllowedUse => u === 'Workload' || u === 'Tunnel' || u === 'LoadBalancer';

/** A pool with every default applied and its CIDR and selectors parsed. */
export interface Pool {
  readonly name: string;
  readonly cidr: Cidr;
  /** Canonical text of `cidr`. */
  readonly cidrText: string;
  readonly blockSize: number;
  readonly disabled: boolean;
  readonly manual: boolean;
  readonly allowedUses: readonly AllowedUse[];
  readonly nodeSelector: Selector;
  readonly namespaceSelector: Selector | undefined;
  readonly spec: IPPoolSpec;
}

const selectorCache = new Map<string, Selector>();
function selector(text: string): Selector {
  let s = selectorCache.get(text);
  if (s === undefined) {
    s = parseSelector(text);
    if (selectorCache.size > 1000) selectorCache.clear();
    selectorCache.set(text, s);
  }
  return s;
}

/**
 * Stored IPPool objects as Pools, sorted by name (Calico's order). An invalid pool is left
 * out and reported through `warn`: IPAM must not hand out addresses from it.
 */
export function toPools(items: readonly AnyResource[], warn: (msg: string) => void): Pool[] {
  const out: Pool[] = [];
  for (const item of items) {
    const r = item as IPPool;
    const issues = validateSpec(IPPoolKind, r);
    const c = typeof r.spec?.cidr === 'string' ? parseCidr(r.spec.cidr) : undefined;
    if (issues.length > 0 || c === undefined) {
      warn(
        `IPPool ${r.metadata.name} is invalid and not used: ${issues.map((i) => `${i.path}: ${i.reason}`).join('; ')}`,
      );
      continue;
    }
    const cidr: Cidr = { family: c.family, value: c.value, len: c.len };
    const spec = r.spec;
    try {
      out.push({
        name: r.metadata.name,
        cidr,
        cidrText: formatCidr(cidr),
        blockSize: spec.blockSize ?? defaultBlockSize(c.family),
        disabled: spec.disabled === true,
        manual: spec.assignmentMode === 'Manual',
        allowedUses: (spec.allowedUses ?? ['Workload', 'Tunnel']).filter(isUse),
        nodeSelector: selector(
          spec.nodeSelector === undefined || spec.nodeSelector === '' ? 'all()' : spec.nodeSelector,
        ),
        namespaceSelector:
          spec.namespaceSelector === undefined || spec.namespaceSelector === ''
            ? undefined
            : selector(spec.namespaceSelector),
        spec,
      });
    } catch (e) {
      warn(
        `IPPool ${r.metadata.name} is invalid and not used: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function poolForAddress(pools: readonly Pool[], a: Address): Pool | undefined {
  return pools.find((p) => cidrContainsIp(p.cidr, a));
}

/** The block of `pool` that holds address `a`. */
export function blockFor(pool: Pool, a: Address): Cidr {
  return { family: a.family, value: a.value & prefixMask(a.family, pool.blockSize), len: pool.blockSize };
}

export const selectsNode = (p: Pool, labels: Readonly<Record<string, string>>): boolean =>
  matches(p.nodeSelector, labels);

export const selectsNamespace = (p: Pool, labels: Readonly<Record<string, string>> | undefined): boolean =>
  p.namespaceSelector === undefined || matches(p.namespaceSelector, labels ?? {});

/**
 * The pools of `families` whose namespaceSelector would decide a request: enabled, Automatic,
 * selecting the node and allowing the use (the checks Calico's determinePools makes before
 * the namespace one), with a namespaceSelector. Named `<name> (<cidr>)`. A family whose
 * request names its pools is not passed here: named pools ignore selectors.
 */
export function namespaceSelecting(
  pools: readonly Pool[],
  families: readonly Family[],
  nodeLabels: Readonly<Record<string, string>>,
  use: AllowedUse,
): string[] {
  return pools
    .filter(
      (p) =>
        families.includes(p.cidr.family) &&
        p.namespaceSelector !== undefined &&
        !p.disabled &&
        !p.manual &&
        p.allowedUses.includes(use) &&
        selectsNode(p, nodeLabels),
    )
    .map((p) => `${p.name} (${p.cidrText})`);
}

export const poolFamily = (p: Pool): Family => p.cidr.family;

/** How many blocks the pool is cut into. */
export function blockCount(p: Pool): bigint {
  return 1n << BigInt(p.blockSize - p.cidr.len);
}

/**
 * The pool's blocks, each once, from a start that depends on the node's name and wrapping
 * round (Calico's randomBlockGenerator): processes on one node that race for a new block
 * pick the same one (one creates it, the others find it theirs), while different nodes
 * spread over the pool. For blocks of one address the start is random instead.
 */
export function* blocksFrom(p: Pool, node: string, random: () => number): Generator<Cidr> {
  const n = blockCount(p);
  if (n <= 0n) return;
  let start: bigint;
  if (p.blockSize === familyBits(p.cidr.family)) start = BigInt(Math.floor(random() * Number(n))) % n;
  else start = BigInt('0x' + createHash('sha256').update(node).digest('hex').slice(0, 32)) % n;
  const step = 1n << BigInt(familyBits(p.cidr.family) - p.blockSize);
  for (let i = 0n; i < n; i++) {
    const idx = (start + i) % n;
    yield { family: p.cidr.family, value: p.cidr.value + idx * step, len: p.blockSize };
  }
}
