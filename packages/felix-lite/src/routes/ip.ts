// Addresses and prefixes as numbers (bigint), so "is this next hop on that subnet" and "is
// this /32 inside that block" are exact comparisons. Text out is canonical (IPv6 per
// RFC 5952, as the kernel's dumps decode it), so a prefix written two ways is one key.
import type { IpVersion } from '@tabby/netlink/codec';
import { formatIpv6, writeIpv4, writeIpv6 } from '@tabby/netlink/codec';

export type { IpVersion };

export interface IpAddress {
  readonly family: IpVersion;
  readonly value: bigint;
  /** Canonical text. */
  readonly text: string;
}

/** A network prefix with its host bits zero. */
export interface Cidr {
  readonly family: IpVersion;
  /** The network address, canonical text. */
  readonly address: string;
  readonly prefixLen: number;
  readonly value: bigint;
}

const scratch = Buffer.alloc(16);

const bitsOf = (f: IpVersion): number => (f === 4 ? 32 : 128);

function toText(family: IpVersion, value: bigint): string {
  if (family === 4) {
    const v = Number(value);
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  for (let i = 15; i >= 0; i--) {
    scratch[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return formatIpv6(scratch, 0);
}

/** Parses an IPv4 or IPv6 address; throws TypeError on anything else. */
export function parseIp(text: string): IpAddress {
  if (text.includes(':')) {
    writeIpv6(scratch, 0, text);
    let v = 0n;
    for (let i = 0; i < 16; i++) v = (v << 8n) | BigInt(scratch[i]!);
    return { family: 6, value: v, text: toText(6, v) };
  }
  writeIpv4(scratch, 0, text);
  const v = BigInt(scratch.readUInt32BE(0));
  return { family: 4, value: v, text: toText(4, v) };
}

function mask(family: IpVersion, prefixLen: number): bigint {
  const bits = bitsOf(family);
  return ((1n << BigInt(prefixLen)) - 1n) << BigInt(bits - prefixLen);
}

/**
 * Parses "a.b.c.d/n" or "x::y/n" (a bare address is a host prefix). Host bits must be zero
 * unless `lenient` (then they are cleared, e.g. an interface address "192.168.0.1/24" gives
 * its subnet 192.168.0.0/24).
 */
export function parseCidr(text: string, opts: { readonly lenient?: boolean } = {}): Cidr {
  const slash = text.indexOf('/');
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  const bits = bitsOf(ip.family);
  let prefixLen = bits;
  if (slash >= 0) {
    const lenText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lenText)) throw new TypeError(`invalid prefix ${JSON.stringify(text)}`);
    prefixLen = Number(lenText);
    if (prefixLen > bits) throw new TypeError(`invalid prefix length in ${JSON.stringify(text)}`);
  }
  const value = ip.value & mask(ip.family, prefixLen);
  if (value !== ip.value && opts.lenient !== true)
    throw new TypeError(`prefix ${JSON.stringify(text)} has host bits set`);
  return { family: ip.family, address: toText(ip.family, value), prefixLen, value };
}

/** The host prefix (/32 or /128) of an address. */
export function hostCidr(ip: IpAddress): Cidr {
  return { family: ip.family, address: ip.text, prefixLen: bitsOf(ip.family), value: ip.value };
}

export function cidrText(c: Cidr): string {
  return `${c.address}/${c.prefixLen}`;
}

export function containsIp(c: Cidr, ip: IpAddress): boolean {
  return c.family === ip.family && (ip.value & mask(c.family, c.prefixLen)) === c.value;
}

/** True when inner lies inside outer (equal prefixes included). */
export function containsCidr(outer: Cidr, inner: Cidr): boolean {
  return (
    outer.family === inner.family &&
    inner.prefixLen >= outer.prefixLen &&
    (inner.value & mask(outer.family, outer.prefixLen)) === outer.value
  );
}

export function sameCidr(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.prefixLen === b.prefixLen && a.value === b.value;
}
