// Branded scalar types and address helpers shared by every codec module.
//
// Hot paths (NLRI) keep addresses as plain uint32 words in typed arrays; the string
// forms here are for attributes (one per UPDATE, not per prefix), JSON and config.

declare const brand: unique symbol;
/** A nominal type: `Brand<number, 'Asn'>` is a number only `asn()` (or a decoder) makes. */
export type Brand<T, B extends string> = T & { readonly [brand]: B };

/** An autonomous system number, 0..4294967295 (RFC 6793). */
export type Asn = Brand<number, 'Asn'>;

/** RFC 6793 §9: AS_TRANS, the 2-octet stand-in for an ASN that does not fit. */
export const AS_TRANS = 23456 as Asn;

export function asn(n: number): Asn {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new RangeError(`ASN out of range (0..4294967295): ${n}`);
  }
  return n as Asn;
}

/** Address family identifiers (IANA "Address Family Numbers") the codec decodes in detail. */
export const Afi = { Ipv4: 1, Ipv6: 2 } as const;
/** Subsequent address family identifiers (IANA "SAFI Values") the codec decodes in detail. */
export const Safi = { Unicast: 1, Multicast: 2 } as const;

/** One integer per (AFI, SAFI), usable as a Set/Map key without strings. */
export type AfiSafiKey = Brand<number, 'AfiSafiKey'>;
export function afiSafiKey(afi: number, safi: number): AfiSafiKey {
  return ((afi << 8) | safi) as AfiSafiKey;
}
export const IPV4_UNICAST = afiSafiKey(Afi.Ipv4, Safi.Unicast);
export const IPV6_UNICAST = afiSafiKey(Afi.Ipv6, Safi.Unicast);

/** Families whose NLRI are plain prefixes (RFC 4271 §4.3 / RFC 4760 §5 encoding). */
export function isPrefixFamily(afi: number, safi: number): afi is 1 | 2 {
  return (afi === Afi.Ipv4 || afi === Afi.Ipv6) && (safi === Safi.Unicast || safi === Safi.Multicast);
}

export function afiSafiName(afi: number, safi: number): string {
  const a = afi === 1 ? 'ipv4' : afi === 2 ? 'ipv6' : `afi${afi}`;
  const s = safi === 1 ? 'unicast' : safi === 2 ? 'multicast' : `safi${safi}`;
  return `${a}-${s}`;
}

export function parseAfiSafiName(name: string): { afi: number; safi: number } | undefined {
  const m = /^(ipv4|ipv6|afi(\d+))-(unicast|multicast|safi(\d+))$/.exec(name);
  if (m === null) return undefined;
  const afi = m[1] === 'ipv4' ? 1 : m[1] === 'ipv6' ? 2 : Number(m[2]);
  const safi = m[3] === 'unicast' ? 1 : m[3] === 'multicast' ? 2 : Number(m[4]);
  if (afi > 0xffff || safi > 0xff) return undefined;
  return { afi, safi };
}

// ---- IPv4 ----

export function formatIpv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/**
 * Parses dotted-quad IPv4 to a uint32; undefined when it is not one. Strict: four decimal
 * parts of 0..255 without leading zeros (so "010.0.0.1" is rejected, not read as octal).
 */
export function parseIpv4(s: string): number | undefined {
  const n = s.length;
  if (n < 7 || n > 15) return undefined;
  let v = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  let lead0 = false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return undefined;
      v = v * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits === 0) lead0 = c === 48;
      else if (lead0) return undefined;
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return undefined;
    } else {
      return undefined;
    }
  }
  if (dots !== 3 || digits === 0) return undefined;
  return (v * 256 + part) >>> 0;
}

export function ipv4OrThrow(s: string, what: string): number {
  const v = parseIpv4(s);
  if (v === undefined) throw new TypeError(`${what}: not an IPv4 address: ${JSON.stringify(s)}`);
  return v;
}

// ---- IPv6 (four uint32 words, most significant first) ----

/** RFC 5952 canonical text form of four 32-bit words. */
export function formatIpv6Words(w0: number, w1: number, w2: number, w3: number): string {
  const h = [w0 >>> 16, w0 & 0xffff, w1 >>> 16, w1 & 0xffff, w2 >>> 16, w2 & 0xffff, w3 >>> 16, w3 & 0xffff];
  // RFC 5952 §4.2: compress the longest run (first if tied) of two or more zero groups.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (h[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && h[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = h.map((x) => x.toString(16));
  if (bestStart < 0) return hex.join(':');
  // RFC 5952 §5 would print IPv4-mapped addresses in dotted form; we keep hex for one spelling.
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

export function formatIpv6Bytes(b: Uint8Array, off: number): string {
  return formatIpv6Words(readU32(b, off), readU32(b, off + 4), readU32(b, off + 8), readU32(b, off + 12));
}

/** Parses an IPv6 address (with optional embedded dotted IPv4 tail) into 16 bytes. */
export function parseIpv6(s: string): Uint8Array | undefined {
  if (s.length === 0 || s.length > 45) return undefined;
  let head = s;
  let tail4: number | undefined;
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.', lastColon)) {
    tail4 = parseIpv4(s.slice(lastColon + 1));
    if (tail4 === undefined) return undefined;
    head = s.slice(0, lastColon + 1) + '0:0';
  }
  const dbl = head.indexOf('::');
  if (dbl !== head.lastIndexOf('::')) return undefined;
  const parseGroups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  let groups: number[];
  if (dbl >= 0) {
    const left = parseGroups(head.slice(0, dbl));
    const right = parseGroups(head.slice(dbl + 2));
    if (left === undefined || right === undefined || left.length + right.length > 7) return undefined;
    groups = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  } else {
    const all = parseGroups(head);
    if (all?.length !== 8) return undefined;
    groups = all;
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const g = groups[i] ?? 0;
    out[i * 2] = g >>> 8;
    out[i * 2 + 1] = g & 255;
  }
  if (tail4 !== undefined) writeU32(out, 12, tail4);
  return out;
}

export function ipv6OrThrow(s: string, what: string): Uint8Array {
  const v = parseIpv6(s);
  if (v === undefined) throw new TypeError(`${what}: not an IPv6 address: ${JSON.stringify(s)}`);
  return v;
}

// ---- byte helpers (callers have already checked bounds) ----

export function readU16(b: Uint8Array, off: number): number {
  return ((b[off] as number) << 8) | (b[off + 1] as number);
}

export function readU32(b: Uint8Array, off: number): number {
  return (
    (((b[off] as number) << 24) |
      ((b[off + 1] as number) << 16) |
      ((b[off + 2] as number) << 8) |
      (b[off + 3] as number)) >>>
    0
  );
}

export function writeU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v >>> 24;
  b[off + 1] = v >>> 16;
  b[off + 2] = v >>> 8;
  b[off + 3] = v;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
export function toHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += HEX[x] as string;
  return s;
}

/** Hex to bytes; whitespace is ignored. Throws TypeError naming the bad input. */
export function fromHex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, '');
  if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean)) {
    throw new TypeError(`not an even-length hex string: ${JSON.stringify(s.slice(0, 40))}`);
  }
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}
