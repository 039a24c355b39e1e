// Addresses and CIDRs as (family, bigint) pairs: what validation and IPAM need. Parsing goes
// through ip-num; printing is RFC 5952's canonical text (the WHATWG URL serializer
// implements it, so IPv6 comes out as `fd00::1`, never `fd00:0:0:0:0:0:0:1`).
import { isIP } from 'node:net';
import { IPv4, IPv6 } from 'ip-num';

export type Family = 4 | 6;

export interface Address {
  readonly family: Family;
  readonly value: bigint;
}

export interface Cidr extends Address {
  /** Prefix length. */
  readonly len: number;
}

export const familyBits = (f: Family): number => (f === 4 ? 32 : 128);

/** Parses an address; undefined when it is not one (no zone IDs, no leading zeros in IPv4). */
export function parseIp(text: string): Address | undefined {
  const f = isIP(text);
  if (f === 4) return { family: 4, value: IPv4.fromString(text).value };
  if (f === 6) return { family: 6, value: IPv6.fromString(text).value };
  return undefined;
}

export interface ParsedCidr extends Cidr {
  /** True when bits past the prefix length were set in the text (10.0.0.1/16). */
  readonly hostBits: boolean;
}

/** Parses `addr/len`; a bare address is not a CIDR here. */
export function parseCidr(text: string): ParsedCidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const addr = parseIp(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (addr === undefined || !/^\d{1,3}$/.test(lenText)) return undefined;
  const len = Number(lenText);
  const bits = familyBits(addr.family);
  if (len > bits) return undefined;
  const value = addr.value & prefixMask(addr.family, len);
  return { family: addr.family, value, len, hostBits: value !== addr.value };
}

export function prefixMask(family: Family, len: number): bigint {
  const bits = BigInt(familyBits(family));
  const all = (1n << bits) - 1n;
  return all ^ ((1n << (bits - BigInt(len))) - 1n);
}

export function formatIp(a: Address): string {
  if (a.family === 4) {
    const v = Number(a.value);
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  const parts: string[] = [];
  for (let i = 7; i >= 0; i--) parts.push(((a.value >> BigInt(i * 16)) & 0xffffn).toString(16));
  return new URL(`http://[${parts.join(':')}]/`).hostname.slice(1, -1);
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c)}/${c.len}`;
}

/** Number of addresses in the prefix. */
export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt(familyBits(c.family) - c.len);
}

export function cidrContainsIp(c: Cidr, a: Address): boolean {
  return c.family === a.family && (a.value & prefixMask(c.family, c.len)) === c.value;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const len = Math.min(a.len, b.len);
  const m = prefixMask(a.family, len);
  return (a.value & m) === (b.value & m);
}

/** `inner` lies entirely within `outer`. */
export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  return inner.len >= outer.len && cidrContainsIp(outer, inner);
}
