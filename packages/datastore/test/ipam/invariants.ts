// IPAM invariants over a whole store, written independently of src/ipam so a bug there
// cannot hide itself: every problem comes back as a sentence naming the objects.
import type { Backend } from '../../src/store/backend.js';
import type { BlockAffinity, IPAMBlock, IPAMHandle } from '../../src/resources/ipam.js';
import { affinityName, blockName } from '../../src/resources/ipam.js';
import { cidrSize, cidrsOverlap, formatIp, parseCidr } from '../../src/schema/ip.js';

export interface Snapshot {
  readonly blocks: IPAMBlock[];
  readonly handles: IPAMHandle[];
  readonly affinities: BlockAffinity[];
}

export async function snapshot(b: Backend): Promise<Snapshot> {
  return {
    blocks: (await b.list('IPAMBlock')).items as IPAMBlock[],
    handles: (await b.list('IPAMHandle')).items as IPAMHandle[],
    affinities: (await b.list('BlockAffinity')).items as BlockAffinity[],
  };
}

/** Every allocated address → its handle ('' when none). */
export function allocated(s: Snapshot): Map<string, string> {
  const out = new Map<string, string>();
  for (const b of s.blocks) {
    const c = parseCidr(b.spec.cidr)!;
    b.spec.allocations.forEach((idx, o) => {
      if (idx === null) return;
      out.set(
        formatIp({ family: c.family, value: c.value + BigInt(o) }),
        b.spec.attributes[idx]?.handle_id ?? '',
      );
    });
  }
  return out;
}

export function problems(s: Snapshot): string[] {
  const out: string[] = [];
  // Blocks: well formed, named after their CIDR, not overlapping, no address twice.
  const seen = new Map<string, string>();
  const counts = new Map<string, Map<string, number>>(); // handle → block → count
  s.blocks.forEach((b, i) => {
    const c = parseCidr(b.spec.cidr);
    if (c === undefined) return void out.push(`block ${b.metadata.name} has cidr ${b.spec.cidr}`);
    if (b.metadata.name !== blockName(b.spec.cidr)) out.push(`block ${b.metadata.name} is misnamed`);
    for (const other of s.blocks.slice(i + 1)) {
      const d = parseCidr(other.spec.cidr);
      if (d !== undefined && cidrsOverlap(c, d))
        out.push(`blocks ${b.spec.cidr} and ${other.spec.cidr} overlap`);
    }
    const n = Number(cidrSize(c));
    if (b.spec.allocations.length !== n)
      out.push(`block ${b.spec.cidr} has ${b.spec.allocations.length} slots`);
    const free = new Set(b.spec.unallocated);
    if (free.size !== b.spec.unallocated.length) out.push(`block ${b.spec.cidr} lists a free ordinal twice`);
    b.spec.allocations.forEach((idx, o) => {
      if ((idx === null) !== free.has(o))
        out.push(
          `block ${b.spec.cidr} ordinal ${o} is ${idx === null ? 'free but not listed free' : 'allocated and listed free'}`,
        );
      if (idx === null) return;
      const ip = formatIp({ family: c.family, value: c.value + BigInt(o) });
      const prev = seen.get(ip);
      if (prev !== undefined) out.push(`${ip} is allocated in ${prev} and ${b.spec.cidr}`);
      seen.set(ip, b.spec.cidr);
      const h = b.spec.attributes[idx]?.handle_id;
      if (b.spec.attributes[idx] === undefined)
        out.push(`block ${b.spec.cidr} ordinal ${o} has no attribute`);
      if (h === undefined) return void out.push(`${ip} has no handle`);
      const m = counts.get(h) ?? new Map<string, number>();
      m.set(b.spec.cidr, (m.get(b.spec.cidr) ?? 0) + 1);
      counts.set(h, m);
    });
  });
  // Handles count exactly what the blocks hold.
  const handles = new Map(s.handles.map((h) => [h.metadata.name, h]));
  for (const [h, m] of counts) {
    const obj = handles.get(h);
    if (obj === undefined) {
      out.push(`handle ${h} holds addresses but has no IPAMHandle`);
      continue;
    }
    for (const [blk, n] of m)
      if (obj.spec.block[blk] !== n)
        out.push(`handle ${h} counts ${obj.spec.block[blk] ?? 0} in ${blk}, the block holds ${n}`);
  }
  for (const h of s.handles) {
    if (Object.keys(h.spec.block).length === 0) out.push(`handle ${h.metadata.name} is empty but exists`);
    for (const [blk, n] of Object.entries(h.spec.block))
      if ((counts.get(h.metadata.name)?.get(blk) ?? 0) !== n)
        out.push(
          `handle ${h.metadata.name} counts ${n} in ${blk}, the block holds ${counts.get(h.metadata.name)?.get(blk) ?? 0}`,
        );
  }
  // Affinities and blocks agree both ways.
  const blocks = new Map(s.blocks.map((b) => [b.spec.cidr, b]));
  const affs = new Set<string>();
  for (const a of s.affinities) {
    affs.add(a.metadata.name);
    if (a.metadata.name !== affinityName(a.spec.node, a.spec.cidr))
      out.push(`affinity ${a.metadata.name} is misnamed`);
    const b = blocks.get(a.spec.cidr);
    if (b === undefined)
      out.push(`node ${a.spec.node} has a ${a.spec.state} affinity for ${a.spec.cidr}, which does not exist`);
    else if (b.spec.affinity !== `host:${a.spec.node}`)
      out.push(
        `node ${a.spec.node} has a ${a.spec.state} affinity for ${a.spec.cidr}, which is ${b.spec.affinity ?? 'unowned'}`,
      );
    else if (a.spec.state !== 'confirmed') out.push(`affinity ${a.metadata.name} is left ${a.spec.state}`);
  }
  for (const b of s.blocks) {
    if (b.spec.affinity === undefined) continue;
    const n = b.spec.affinity.replace(/^host:/, '');
    if (!affs.has(affinityName(n, b.spec.cidr)))
      out.push(`block ${b.spec.cidr} is ${b.spec.affinity} but has no BlockAffinity`);
  }
  return out;
}
