// Pure operations on one IPAM block's spec (Calico's allocationBlock): which ordinals are
// free, who holds which address, allocate and release. Callers clone the stored block,
// change the copy with these functions, then write it back with compare-and-swap.
import type { IPAMBlockSpec } from '../resources/ipam.js';
import type { Address, Cidr } from '../schema/ip.js';
import { cidrContainsIp, cidrSize, formatCidr, formatIp, parseCidr, parseIp } from '../schema/ip.js';

/** The block's affinity string for a node, as Calico writes it. */
export const hostAffinity = (node: string): string => `host:${node}`;

/** The node a block affinity string names, or undefined for none / not a host affinity. */
export function affinityNode(affinity: string | undefined): string | undefined {
  return affinity?.startsWith('host:') === true ? affinity.slice(5) : undefined;
}

export function newBlockSpec(
  cidr: Cidr,
  affinity: string | undefined,
  claimTime: string,
  seq: number,
): IPAMBlockSpec {
  const n = Number(cidrSize(cidr));
  const spec: IPAMBlockSpec = {
    cidr: formatCidr(cidr),
    strictAffinity: false,
    allocations: new Array<number | null>(n).fill(null),
    unallocated: Array.from({ length: n }, (_, i) => i),
    attributes: [],
    // Seeded from the clock, as Calico: a block deleted and created again hands out
    // sequence numbers a client that saw the old block cannot mistake for the same allocation.
    sequenceNumber: seq,
    sequenceNumberForAllocation: {},
  };
  if (affinity !== undefined) {
    spec.affinity = affinity;
    spec.affinityClaimTime = claimTime;
  }
  return spec;
}

export function blockCidr(spec: IPAMBlockSpec): Cidr {
  const c = parseCidr(spec.cidr);
  if (c === undefined) throw new Error(`IPAM block with an invalid cidr ${JSON.stringify(spec.cidr)}`);
  return c;
}

export function addressOf(cidr: Cidr, ordinal: number): string {
  return formatIp({ family: cidr.family, value: cidr.value + BigInt(ordinal) });
}

export function ordinalOf(cidr: Cidr, a: Address): number | undefined {
  return cidrContainsIp(cidr, a) ? Number(a.value - cidr.value) : undefined;
}

/** The handle and attributes of an allocated ordinal; undefined when it is free. */
export function ownerOf(
  spec: IPAMBlockSpec,
  ordinal: number,
): { handle: string | undefined; attrs: Record<string, string> } | undefined {
  const idx = spec.allocations[ordinal];
  if (idx === null || idx === undefined) return undefined;
  const attr = spec.attributes[idx];
  return { handle: attr?.handle_id, attrs: { ...(attr?.secondary ?? {}) } };
}

export const freeCount = (spec: IPAMBlockSpec): number => spec.unallocated.length;

export function isEmpty(spec: IPAMBlockSpec): boolean {
  return spec.allocations.every((a) => a === null);
}

function sameAttrs(a: Record<string, string> | undefined, b: Record<string, string>): boolean {
  const ak = Object.keys(a ?? {});
  if (ak.length !== Object.keys(b).length) return false;
  return ak.every((k) => Object.hasOwn(b, k) && a?.[k] === b[k]);
}

function attributeIndex(spec: IPAMBlockSpec, handle: string, attrs: Record<string, string>): number {
  const i = spec.attributes.findIndex((a) => a.handle_id === handle && sameAttrs(a.secondary, attrs));
  if (i >= 0) return i;
  spec.attributes.push({ handle_id: handle, secondary: { ...attrs } });
  return spec.attributes.length - 1;
}

/** Takes up to `num` free ordinals in `unallocated` order; returns them (fewer when the block fills). */
export function allocate(
  spec: IPAMBlockSpec,
  num: number,
  handle: string,
  attrs: Record<string, string>,
): number[] {
  const take = spec.unallocated.slice(0, num);
  if (take.length === 0) return take;
  spec.unallocated = spec.unallocated.slice(take.length);
  const idx = attributeIndex(spec, handle, attrs);
  const seqs = (spec.sequenceNumberForAllocation ??= {});
  for (const o of take) {
    spec.allocations[o] = idx;
    seqs[String(o)] = spec.sequenceNumber ?? 0;
  }
  return take;
}

/** Assigns one given free ordinal (the caller checked ownerOf first). */
export function assignOrdinal(
  spec: IPAMBlockSpec,
  ordinal: number,
  handle: string,
  attrs: Record<string, string>,
): void {
  spec.allocations[ordinal] = attributeIndex(spec, handle, attrs);
  spec.unallocated = spec.unallocated.filter((o) => o !== ordinal);
  (spec.sequenceNumberForAllocation ??= {})[String(ordinal)] = spec.sequenceNumber ?? 0;
}

/**
 * Frees the given ordinals (those allocated); released ones go to the end of `unallocated`,
 * so a freed address is the last to be handed out again. Returns how many each handle lost.
 */
export function releaseOrdinals(spec: IPAMBlockSpec, ordinals: Iterable<number>): Map<string, number> {
  const byHandle = new Map<string, number>();
  const freed: number[] = [];
  for (const o of new Set(ordinals)) {
    const idx = spec.allocations[o];
    if (idx === null || idx === undefined) continue;
    const h = spec.attributes[idx]?.handle_id;
    if (h !== undefined) byHandle.set(h, (byHandle.get(h) ?? 0) + 1);
    spec.allocations[o] = null;
    freed.push(o);
    if (spec.sequenceNumberForAllocation !== undefined) delete spec.sequenceNumberForAllocation[String(o)];
  }
  spec.unallocated.push(...freed);
  compactAttributes(spec);
  return byHandle;
}

export function ordinalsOfHandle(spec: IPAMBlockSpec, handle: string): number[] {
  const out: number[] = [];
  spec.allocations.forEach((idx, o) => {
    if (idx !== null && spec.attributes[idx]?.handle_id === handle) out.push(o);
  });
  return out;
}

/** Frees every address of `handle`; returns how many. */
export function releaseHandle(spec: IPAMBlockSpec, handle: string): number {
  const ords = ordinalsOfHandle(spec, handle);
  if (ords.length > 0) releaseOrdinals(spec, ords);
  return ords.length;
}

/** Allocated addresses per handle (allocations without a handle under ''). */
export function handleCounts(spec: IPAMBlockSpec): Map<string, number> {
  const m = new Map<string, number>();
  for (const idx of spec.allocations) {
    if (idx === null) continue;
    const h = spec.attributes[idx]?.handle_id ?? '';
    m.set(h, (m.get(h) ?? 0) + 1);
  }
  return m;
}

/** Drops attributes no allocation refers to and renumbers the rest. */
function compactAttributes(spec: IPAMBlockSpec): void {
  const used = new Set<number>();
  for (const idx of spec.allocations) if (idx !== null) used.add(idx);
  if (used.size === spec.attributes.length) return;
  const remap = new Map<number, number>();
  const kept: IPAMBlockSpec['attributes'] = [];
  spec.attributes.forEach((a, i) => {
    if (used.has(i)) {
      remap.set(i, kept.length);
      kept.push(a);
    }
  });
  spec.attributes = kept;
  spec.allocations = spec.allocations.map((idx) => (idx === null ? null : (remap.get(idx) ?? null)));
}

/** Parses an address, or throws a plain Error naming it (callers wrap it). */
export function mustParseIp(text: string): Address {
  const a = parseIp(text);
  if (a === undefined) throw new Error(`${JSON.stringify(text)} is not an IP address`);
  return a;
}
