// What `ipam show` and `ipam check` print, computed from one read of the store: usage per
// pool, block and node, and every inconsistency between blocks, handles, affinities and
// the addresses workloads and nodes actually use (calicoctl's checks, plus handle counts
// and affinities, which calicoctl leaves to the reader).
import type { Backend } from '../store/backend.js';
import type { BlockAffinity, IPAMBlock, IPAMHandle } from '../resources/ipam.js';
import { affinityName } from '../resources/ipam.js';
import type { Node } from '../resources/node.js';
import type { WorkloadEndpoint } from '../resources/workload-endpoint.js';
import type { Cidr } from '../schema/ip.js';
import { cidrContainsIp, cidrSize, cidrsOverlap, formatIp, parseCidr, parseIp } from '../schema/ip.js';
import { addressOf, affinityNode, blockCidr, handleCounts } from './block.js';
import type { Pool } from './pools.js';
import { toPools } from './pools.js';

export interface IpamSnapshot {
  readonly pools: Pool[];
  readonly blocks: IPAMBlock[];
  readonly handles: IPAMHandle[];
  readonly affinities: BlockAffinity[];
  readonly nodes: Node[];
  readonly workloads: WorkloadEndpoint[];
}

export async function loadSnapshot(
  backend: Backend,
  warn: (m: string) => void = () => {},
): Promise<IpamSnapshot> {
  const [pools, blocks, handles, affinities, nodes, workloads] = await Promise.all(
    (['IPPool', 'IPAMBlock', 'IPAMHandle', 'BlockAffinity', 'Node', 'WorkloadEndpoint'] as const).map(
      async (k) => (await backend.list(k)).items,
    ),
  );
  return {
    pools: toPools(pools ?? [], warn),
    blocks: ((blocks ?? []) as IPAMBlock[]).filter((b) => parseCidr(b.spec.cidr) !== undefined),
    handles: (handles ?? []) as IPAMHandle[],
    affinities: (affinities ?? []) as BlockAffinity[],
    nodes: (nodes ?? []) as Node[],
    workloads: (workloads ?? []) as WorkloadEndpoint[],
  };
}

export interface BlockUsage {
  readonly cidr: string;
  /** The block's affinity as stored ("host:<node>"), absent when no node owns it. */
  readonly affinity?: string;
  readonly capacity: number;
  readonly inUse: number;
  readonly free: number;
}

export interface PoolUsage {
  readonly name: string;
  readonly cidr: string;
  readonly disabled: boolean;
  /** Addresses in the pool (a float above 2^53, as calicoctl's). */
  readonly capacity: number;
  readonly inUse: number;
  readonly free: number;
  readonly blocks: BlockUsage[];
}

export interface NodeUsage {
  readonly node: string;
  /** Blocks affine to the node. */
  readonly blocks: number;
  /** Addresses allocated for the node (the allocation's `node` attribute). */
  readonly inUse: number;
  /** Of those, how many lie in blocks not affine to it. */
  readonly borrowed: number;
}

export interface Utilization {
  readonly pools: PoolUsage[];
  /** Blocks in no pool (the pool was deleted while they held addresses). */
  readonly orphanBlocks: BlockUsage[];
  readonly nodes: NodeUsage[];
}

const byText = (a: { cidr: string }, b: { cidr: string }): number => {
  const x = parseCidr(a.cidr)!;
  const y = parseCidr(b.cidr)!;
  return x.family !== y.family ? x.family - y.family : x.value < y.value ? -1 : x.value > y.value ? 1 : 0;
};

export function utilization(s: IpamSnapshot): Utilization {
  const pools = s.pools.map((p) => ({ pool: p, blocks: [] as BlockUsage[] }));
  const orphanBlocks: BlockUsage[] = [];
  const nodes = new Map<string, { blocks: number; inUse: number; borrowed: number }>();
  const nodeOf = (n: string) => {
    let e = nodes.get(n);
    if (e === undefined) nodes.set(n, (e = { blocks: 0, inUse: 0, borrowed: 0 }));
    return e;
  };
  for (const b of s.blocks) {
    const c = blockCidr(b.spec);
    const inUse = b.spec.allocations.filter((a) => a !== null).length;
    const u: BlockUsage = {
      cidr: b.spec.cidr,
      ...(b.spec.affinity === undefined ? {} : { affinity: b.spec.affinity }),
      capacity: b.spec.allocations.length,
      inUse,
      free: b.spec.allocations.length - inUse,
    };
    const owner = affinityNode(b.spec.affinity);
    if (owner !== undefined) nodeOf(owner).blocks++;
    for (const idx of b.spec.allocations) {
      if (idx === null) continue;
      const n = b.spec.attributes[idx]?.secondary?.['node'];
      if (n === undefined) continue;
      const e = nodeOf(n);
      e.inUse++;
      if (n !== owner) e.borrowed++;
    }
    const p = pools.find((x) => cidrContainsIp(x.pool.cidr, c));
    if (p === undefined) orphanBlocks.push(u);
    else p.blocks.push(u);
  }
  return {
    pools: pools.map(({ pool, blocks }) => {
      const capacity = Number(cidrSize(pool.cidr));
      const inUse = blocks.reduce((n, b) => n + b.inUse, 0);
      return {
        name: pool.name,
        cidr: pool.cidrText,
        disabled: pool.disabled,
        capacity,
        inUse,
        free: capacity - inUse,
        blocks: blocks.sort(byText),
      };
    }),
    orphanBlocks: orphanBlocks.sort(byText),
    nodes: [...nodes]
      .map(([node, e]) => ({ node, ...e }))
      .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0)),
  };
}

export interface AllocationInfo {
  readonly ip: string;
  readonly block: string;
  readonly handle?: string;
  readonly attrs: Record<string, string>;
}

export interface CheckReport {
  readonly blocks: number;
  readonly allocations: number;
  readonly activePools: string[];
  readonly nodeTunnelIps: number;
  readonly workloadIps: number;
  /** Distinct addresses workloads and nodes use. */
  readonly inUseIps: number;
  readonly allocationsByNode: { node: string; allocations: number }[];
  /** Allocated in IPAM, used by no workload endpoint or node (calicoctl: leaked). */
  readonly allocatedNotInUse: AllocationInfo[];
  /** Used by a workload or node inside an active pool, but not allocated. */
  readonly inUseNotAllocated: { ip: string; owners: string[] }[];
  /** Used by a workload or node outside every active pool. */
  readonly inUseOutsidePools: { ip: string; owners: string[] }[];
  /** Addresses that two workloads or nodes claim. */
  readonly multipleOwners: { ip: string; owners: string[] }[];
  /** IPAMHandles none of whose blocks hold an address of theirs. */
  readonly leakedHandles: string[];
  /** Handles that blocks mention but that have no IPAMHandle. */
  readonly missingHandles: { handle: string; ips: string[] }[];
  /** Allocations with no handle at all. */
  readonly allocationsWithoutHandle: AllocationInfo[];
  /** A handle's count for a block differs from what the block holds. */
  readonly handleCountMismatches: { handle: string; block: string; counted: number; actual: number }[];
  /** BlockAffinities for missing blocks, for blocks another node (or none) owns, or not confirmed. */
  readonly badAffinities: { name: string; node: string; cidr: string; state: string; reason: string }[];
  /** Blocks claimed by more than one BlockAffinity. */
  readonly duplicateAffinities: { cidr: string; nodes: string[] }[];
  /** Blocks whose affinity names a node without a matching BlockAffinity. */
  readonly blocksWithoutAffinity: { cidr: string; affinity: string }[];
  readonly overlappingBlocks: { a: string; b: string }[];
  readonly problems: number;
}

/** The address part of "10.65.1.7/32" or "10.65.1.7", canonical; undefined if neither. */
function addrText(t: string): string | undefined {
  const a = parseIp(t) ?? parseCidr(t);
  return a === undefined ? undefined : formatIp(a);
}

export function checkIpam(s: IpamSnapshot): CheckReport {
  const allocations = new Map<string, AllocationInfo>();
  const perNode = new Map<string, number>();
  const countsByHandle = new Map<string, Map<string, number>>();
  const allocationsWithoutHandle: AllocationInfo[] = [];
  for (const b of s.blocks) {
    const c = blockCidr(b.spec);
    b.spec.allocations.forEach((idx, o) => {
      if (idx === null) return;
      const attr = b.spec.attributes[idx];
      const info: AllocationInfo = {
        ip: addressOf(c, o),
        block: b.spec.cidr,
        ...(attr?.handle_id === undefined ? {} : { handle: attr.handle_id }),
        attrs: { ...(attr?.secondary ?? {}) },
      };
      allocations.set(info.ip, info);
      if (info.handle === undefined) allocationsWithoutHandle.push(info);
      const n = info.attrs['node'];
      if (n !== undefined) perNode.set(n, (perNode.get(n) ?? 0) + 1);
    });
    for (const [h, n] of handleCounts(b.spec)) {
      if (h === '') continue;
      const m = countsByHandle.get(h) ?? new Map<string, number>();
      m.set(b.spec.cidr, n);
      countsByHandle.set(h, m);
    }
  }

  const active = s.pools.filter((p) => !p.disabled);
  const inUse = new Map<string, string[]>();
  const use = (ip: string | undefined, owner: string) => {
    if (ip === undefined) return;
    inUse.set(ip, [...(inUse.get(ip) ?? []), owner]);
  };
  let nodeTunnelIps = 0;
  for (const n of s.nodes) {
    for (const t of [
      n.spec.bgp?.ipv4IPIPTunnelAddr,
      n.spec.ipv4VXLANTunnelAddr,
      n.spec.ipv6VXLANTunnelAddr,
    ]) {
      if (t === undefined || t === '') continue;
      use(addrText(t), `Node(${n.metadata.name})`);
      nodeTunnelIps++;
    }
  }
  let workloadIps = 0;
  for (const w of s.workloads)
    for (const t of w.spec.ipNetworks ?? []) {
      use(addrText(t), `Workload(${w.metadata.namespace ?? ''}/${w.metadata.name})`);
      workloadIps++;
    }

  const allocatedNotInUse = [...allocations.values()].filter((a) => !inUse.has(a.ip));
  const inUseNotAllocated: { ip: string; owners: string[] }[] = [];
  const inUseOutsidePools: { ip: string; owners: string[] }[] = [];
  const multipleOwners: { ip: string; owners: string[] }[] = [];
  for (const [ip, owners] of inUse) {
    if (owners.length > 1) multipleOwners.push({ ip, owners });
    if (allocations.has(ip)) continue;
    const a = parseIp(ip)!;
    if (active.some((p) => cidrContainsIp(p.cidr, a))) inUseNotAllocated.push({ ip, owners });
    else inUseOutsidePools.push({ ip, owners });
  }

  const handleNames = new Set(s.handles.map((h) => h.metadata.name));
  const leakedHandles = s.handles
    .filter((h) => !countsByHandle.has(h.metadata.name))
    .map((h) => h.metadata.name);
  const missingHandles = [...countsByHandle.keys()]
    .filter((h) => !handleNames.has(h))
    .map((h) => ({
      handle: h,
      ips: [...allocations.values()].filter((a) => a.handle === h).map((a) => a.ip),
    }));
  const handleCountMismatches: CheckReport['handleCountMismatches'] = [];
  for (const h of s.handles) {
    const actual = countsByHandle.get(h.metadata.name) ?? new Map<string, number>();
    const blocks = new Set([...Object.keys(h.spec.block), ...actual.keys()]);
    if (!countsByHandle.has(h.metadata.name)) continue; // reported as leaked
    for (const block of blocks) {
      const counted = h.spec.block[block] ?? 0;
      const n = actual.get(block) ?? 0;
      if (counted !== n) handleCountMismatches.push({ handle: h.metadata.name, block, counted, actual: n });
    }
  }

  const blocksByCidr = new Map(s.blocks.map((b) => [b.spec.cidr, b]));
  const badAffinities: CheckReport['badAffinities'] = [];
  const byCidr = new Map<string, string[]>();
  const affNames = new Set<string>();
  for (const a of s.affinities) {
    affNames.add(a.metadata.name);
    byCidr.set(a.spec.cidr, [...(byCidr.get(a.spec.cidr) ?? []), a.spec.node]);
    const b = blocksByCidr.get(a.spec.cidr);
    const base = { name: a.metadata.name, node: a.spec.node, cidr: a.spec.cidr, state: a.spec.state };
    if (b === undefined) badAffinities.push({ ...base, reason: 'the block does not exist' });
    else if (b.spec.affinity !== `host:${a.spec.node}`)
      badAffinities.push({ ...base, reason: `the block is ${b.spec.affinity ?? 'affine to no node'}` });
    else if (a.spec.state !== 'confirmed')
      badAffinities.push({
        ...base,
        reason: `left ${a.spec.state} (a claim or release in progress or cut short)`,
      });
  }
  const duplicateAffinities = [...byCidr]
    .filter(([, nodes]) => nodes.length > 1)
    .map(([cidr, nodes]) => ({ cidr, nodes: nodes.sort() }));
  const blocksWithoutAffinity: CheckReport['blocksWithoutAffinity'] = [];
  for (const b of s.blocks) {
    const n = affinityNode(b.spec.affinity);
    if (n !== undefined && !affNames.has(affinityName(n, b.spec.cidr)))
      blocksWithoutAffinity.push({ cidr: b.spec.cidr, affinity: b.spec.affinity! });
  }
  const cidrs: Cidr[] = s.blocks.map((b) => blockCidr(b.spec));
  const overlappingBlocks: CheckReport['overlappingBlocks'] = [];
  for (let i = 0; i < cidrs.length; i++)
    for (let j = i + 1; j < cidrs.length; j++)
      if (cidrsOverlap(cidrs[i]!, cidrs[j]!))
        overlappingBlocks.push({ a: s.blocks[i]!.spec.cidr, b: s.blocks[j]!.spec.cidr });

  const problems =
    allocatedNotInUse.length +
    inUseNotAllocated.length +
    inUseOutsidePools.length +
    multipleOwners.length +
    leakedHandles.length +
    missingHandles.length +
    allocationsWithoutHandle.length +
    handleCountMismatches.length +
    badAffinities.length +
    duplicateAffinities.length +
    blocksWithoutAffinity.length +
    overlappingBlocks.length;
  return {
    blocks: s.blocks.length,
    allocations: allocations.size,
    activePools: active.map((p) => p.cidrText),
    nodeTunnelIps,
    workloadIps,
    inUseIps: inUse.size,
    allocationsByNode: [...perNode]
      .map(([node, n]) => ({ node, allocations: n }))
      .sort((a, b) => b.allocations - a.allocations || (a.node < b.node ? -1 : 1)),
    allocatedNotInUse,
    inUseNotAllocated,
    inUseOutsidePools,
    multipleOwners,
    leakedHandles: leakedHandles.sort(),
    missingHandles,
    allocationsWithoutHandle,
    handleCountMismatches,
    badAffinities,
    duplicateAffinities,
    blocksWithoutAffinity,
    overlappingBlocks,
    problems,
  };
}
