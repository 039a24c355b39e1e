// Listen ranges (dynamic peers): a connection from an address that is no configured peer but
// lies inside a configured prefix becomes a passive peer with that range's settings, for as
// long as its session lasts. BIRD's `neighbor range ... dynamic name`, FRR's `bgp listen
// range ... peer-group`, GoBGP's dynamic-neighbors. Matching is on address words, not text.

import type { PrefixAfi } from '../wire/index.js';
import { formatIpv4, formatIpv6Words, parseIpv4, parseIpv6, parsePrefix, readU32 } from '../wire/index.js';
import type { PeerSettings } from './speaker.js';

/**
 * What a range's dynamic peers share: a peer's settings without who it is. No `port` (a
 * dynamic peer is never dialled) and no `passive` (it always is).
 */
export type PeerTemplate = Omit<PeerSettings, 'name' | 'address' | 'port' | 'passive'>;

export interface ListenRange {
  /** The template's name; its dynamic peers are named `${name}_${address}` (dynamicPeerName). */
  readonly name: string;
  /** '10.0.0.0/24' or 'fd00::/64', host bits zero. */
  readonly prefix: string;
  readonly peer: PeerTemplate;
  /** Dynamic peers from this range at once; connections beyond it are refused before OPEN. */
  readonly maxPeers?: number;
}

/** An address or prefix as 32-bit words, most significant first: one for IPv4, four for IPv6. */
export interface IpPrefix {
  readonly afi: PrefixAfi;
  readonly words: readonly number[];
  /** Prefix length in bits (32 or 128 for an address). */
  readonly length: number;
}

/** "10.0.0.0/24" or "fd00::/64" with zero host bits; undefined when it is not one. */
export function parseIpPrefix(s: string): IpPrefix | undefined {
  const p = parsePrefix(s);
  return p === undefined ? undefined : { afi: p.afi, words: p.words, length: p.len };
}

/** An IPv4 or IPv6 address as a host prefix (/32, /128); undefined when it is not one. */
export function parseIpAddress(s: string): IpPrefix | undefined {
  const v4 = parseIpv4(s);
  if (v4 !== undefined) return { afi: 1, words: [v4], length: 32 };
  const b = parseIpv6(s);
  if (b === undefined) return undefined;
  return { afi: 2, words: [readU32(b, 0), readU32(b, 4), readU32(b, 8), readU32(b, 12)], length: 128 };
}

/** The prefix's network address as text (for the kernel's TCP-MD5 prefix key). */
export function networkAddress(p: IpPrefix): string {
  const w = (i: number) => p.words[i] ?? 0;
  return p.afi === 1 ? formatIpv4(w(0)) : formatIpv6Words(w(0), w(1), w(2), w(3));
}

/** One text per prefix, however it was written ("fd00:0::/16" is "fd00::/16"). */
export function formatIpPrefix(p: IpPrefix): string {
  return `${networkAddress(p)}/${p.length}`;
}

/** Whether `outer` holds all of `inner` (an address is a host prefix). */
export function covers(outer: IpPrefix, inner: IpPrefix): boolean {
  if (outer.afi !== inner.afi || outer.length > inner.length) return false;
  for (let i = 0, bits = outer.length; bits > 0; i++, bits -= 32) {
    const mask = bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
    if ((((outer.words[i] ?? 0) ^ (inner.words[i] ?? 0)) & mask) >>> 0 !== 0) return false;
  }
  return true;
}

/** A dynamic peer's name: the range's, an underscore, the address ("dyn_10.0.0.7"). */
export function dynamicPeerName(range: ListenRange, address: string): string {
  return `${range.name}_${address}`;
}

/**
 * A dynamic peer's settings: the template, passive, for this address. Without a
 * localAddress in the template the session's own (where the peer called us) is used, so
 * that next hop "self" is an address the peer reaches.
 */
export function dynamicPeerSettings(
  range: ListenRange,
  address: string,
  localAddress: string | undefined,
): PeerSettings {
  return {
    name: dynamicPeerName(range, address),
    address,
    ...(localAddress === undefined ? {} : { localAddress }),
    ...range.peer,
    passive: true,
  };
}

/** The configured ranges, most specific first. */
export class ListenRanges {
  private readonly entries: readonly { readonly range: ListenRange; readonly prefix: IpPrefix }[];

  /** @throws TypeError for a prefix that is not one, a name or prefix used twice. */
  constructor(readonly ranges: readonly ListenRange[]) {
    const names = new Set<string>();
    const prefixes = new Set<string>();
    const entries = ranges.map((range) => {
      const prefix = parseIpPrefix(range.prefix);
      if (prefix === undefined)
        throw new TypeError(`listen range ${range.name}: not a prefix: ${JSON.stringify(range.prefix)}`);
      // Nested ranges are fine (the most specific wins); the same prefix twice is ambiguous.
      const key = formatIpPrefix(prefix);
      if (names.has(range.name)) throw new TypeError(`listen range ${range.name}: name used twice`);
      if (prefixes.has(key)) throw new TypeError(`listen range ${range.name}: prefix ${key} used twice`);
      names.add(range.name);
      prefixes.add(key);
      return { range, prefix };
    });
    this.entries = entries.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  /** The most specific range holding the address, if any. */
  match(address: string): ListenRange | undefined {
    const a = parseIpAddress(address);
    if (a === undefined) return undefined;
    return this.entries.find((e) => covers(e.prefix, a))?.range;
  }

  /** A range by name. */
  get(name: string): ListenRange | undefined {
    return this.entries.find((e) => e.range.name === name)?.range;
  }

  /**
   * Whether a dynamic peer that came in by `range` may stay under these ranges: the most
   * specific one for its address has the same name and peer settings (a new prefix or
   * maxPeers alone changes nothing for it).
   */
  keeps(range: ListenRange, address: string): boolean {
    const now = this.match(address);
    return now?.name === range.name && JSON.stringify(now.peer) === JSON.stringify(range.peer);
  }

  /** Ranges (by name) only here, only in `next`, and in both but different. */
  diff(next: ListenRanges): {
    added: ListenRange[];
    removed: ListenRange[];
    changed: { before: ListenRange; after: ListenRange }[];
  } {
    const same = (a: ListenRange, b: ListenRange) => JSON.stringify(a) === JSON.stringify(b);
    const changed: { before: ListenRange; after: ListenRange }[] = [];
    for (const before of this.ranges) {
      const after = next.get(before.name);
      if (after !== undefined && !same(before, after)) changed.push({ before, after });
    }
    return {
      added: next.ranges.filter((r) => this.get(r.name) === undefined),
      removed: this.ranges.filter((r) => next.get(r.name) === undefined),
      changed,
    };
  }
}
