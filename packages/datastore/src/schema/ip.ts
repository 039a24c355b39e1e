// Addresses and CIDRs as (family, bigint) pairs: what validation and IPAM need. Parsing is
// our own (RFC 4291 §2.2 text forms, dotted-quad IPv4 without leading zeros, as node:net's
// isIP accepts them but without zone IDs); printing is RFC 5952's canonical text (the WHATWG
// URL serializer implements it, so IPv6 comes out as `fd00::1`, never `fd00:0:0:0:0:0:0:1`).
// Neither ip-num nor isIP: a short-lived process (the CNI plugin) paid milliseconds to load
// the one and to compile the other's IPv6 expression.

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

const DEC_OCTET = /^(?:0|[1-9]\d{0,2})$/;
const HEX16 = /^[0-9A-Fa-f]{1,4}$/;

/** A dotted quad as a number, or undefined (four decimal octets, no leading zeros). */
function v4Value(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0;
  for (const p of parts) {
    if (!DEC_OCTET.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = v * 256 + n;
  }
  return v;
}

/** The 16-bit groups of one side of `::`; the last may be a dotted quad (two groups). */
function groups(text: string, last: boolean): number[] | undefined {
  if (text === '') return [];
  const out: number[] = [];
  const parts = text.split(':');
  for (let i = 0; i < parts.length; i++) {
    const g = parts[i]!;
    if (last && i === parts.length - 1 && g.includes('.')) {
      const v = v4Value(g);
      if (v === undefined) return undefined;
      out.push(v >>> 16, v & 0xffff);
    } else if (HEX16.test(g)) out.push(parseInt(g, 16));
    else return undefined;
  }
  return out;
}

/** RFC 4291 §2.2 text (at most one `::`, an IPv4 tail allowed) as a number, or undefined. */
function v6Value(text: string): bigint | undefined {
  const gap = text.indexOf('::');
  let words: number[] | undefined;
  if (gap < 0) {
    words = groups(text, true);
    if (words?.length !== 8) return undefined;
  } else {
    if (text.includes('::', gap + 1)) return undefined;
    const head = groups(text.slice(0, gap), false);
    const tail = groups(text.slice(gap + 2), true);
    if (head === undefined || tail === undefined || head.length + tail.length > 7) return undefined;
    words = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  let v = 0n;
  for (const w of words) v = (v << 16n) | BigInt(w);
  return v;
}

/** Parses an address; undefined when it is not one (no zone IDs, no leading zeros in IPv4). */
export function parseIp(text: string): Address | undefined {
  if (text.includes(':')) {
    const v = v6Value(text);
    return v === undefined ? undefined : { family: 6, value: v };
  }
  const v = v4Value(text);
  return v === undefined ? undefined : { family: 4, value: BigInt(v) };
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
