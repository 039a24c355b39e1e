// An address with its prefix length, the host part kept ("192.168.1.11/24"): what Calico's
// cnet.IPNet holds after ParseCIDROrIP (libcalico-go lib/net/ipnet.go:113) and what a Node's
// spec.bgp.ipv4Address stores. Built on the datastore's (family, bigint) addresses.
import type { Address, Cidr } from '@tabby/datastore';
import { cidrContainsIp, familyBits, formatIp, parseCidr, parseIp } from '@tabby/datastore';

export interface IpNet {
  readonly address: Address;
  readonly prefixLen: number;
}

/**
 * "a.b.c.d/len" (host bits kept) or a bare address (then /32 or /128), as Calico's
 * ParseCIDROrIP; undefined when it is neither.
 */
export function parseIpNet(text: string): IpNet | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) {
    const a = parseIp(text);
    return a === undefined ? undefined : { address: a, prefixLen: familyBits(a.family) };
  }
  const address = parseIp(text.slice(0, slash));
  const c = parseCidr(text);
  return address === undefined || c === undefined ? undefined : { address, prefixLen: c.len };
}

/** "10.0.0.5/24", "fd00::5/64": the canonical text (IPNet.String() in Go). */
export function formatIpNet(n: IpNet): string {
  return `${formatIp(n.address)}/${n.prefixLen}`;
}

/** The address part of a Node address ("10.0.0.5/24" or "10.0.0.5"), canonical; undefined if not one. */
export function addressPart(text: string): string | undefined {
  const n = parseIpNet(text);
  return n === undefined ? undefined : formatIp(n.address);
}

export const sameAddress = (a: Address, b: Address): boolean => a.family === b.family && a.value === b.value;

const net = (text: string): Cidr => parseCidr(text)!;
const V4_BROADCAST = parseIp('255.255.255.255')!;
/** Go's net.IP.IsGlobalUnicast exclusions: unspecified, loopback, multicast, link-local unicast. */
const NOT_GLOBAL = {
  4: [net('0.0.0.0/32'), net('127.0.0.0/8'), net('224.0.0.0/4'), net('169.254.0.0/16')],
  6: [net('::/128'), net('::1/128'), net('ff00::/8'), net('fe80::/10')],
} as const;

/**
 * Go's net.IP.IsGlobalUnicast, which Calico's first-found uses to pass over addresses
 * (filtered.go:46): private ranges (10/8, fd00::/8) count as global unicast there.
 */
export function isGlobalUnicast(a: Address): boolean {
  if (a.family === 4 && a.value === V4_BROADCAST.value) return false;
  return !NOT_GLOBAL[a.family].some((c) => cidrContainsIp(c, a));
}
