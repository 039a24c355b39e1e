// Address text in the kernel's canonical form, so addresses from the datastore compare equal
// to those the kernel reports ("fd00:0::11" and "fd00::11" are one address).
import type { IpVersion } from '@tabby/netlink/codec';
import { formatIp, ipVersionOf, writeIp } from '@tabby/netlink/codec';

/** The canonical text of an IPv4 or IPv6 address; throws a TypeError when it is not one. */
export function canonicalIp(text: string): string {
  let version: IpVersion;
  const buf = Buffer.alloc(16);
  try {
    version = ipVersionOf(text);
    writeIp(buf, 0, version, text);
  } catch (e) {
    throw new TypeError(`invalid IP address ${JSON.stringify(text)}`, { cause: e });
  }
  const out = formatIp(buf, 0, version === 4 ? 4 : 16);
  if (out === undefined) throw new TypeError(`invalid IP address ${JSON.stringify(text)}`);
  return out;
}

/** The address part of "10.65.1.0/32" or "10.65.1.0", canonical. */
export function bareIp(text: string): string {
  const slash = text.indexOf('/');
  return canonicalIp(slash < 0 ? text : text.slice(0, slash));
}
