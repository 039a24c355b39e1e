// NLRI: lists of IP prefixes in the <length, prefix> encoding of RFC 4271 §4.3 and
// RFC 4760 §5, with the RFC 7911 §3 path identifier in front when ADD-PATH applies.
//
// A PrefixList stores prefixes column-wise in typed arrays (IPv4: one uint32 word each,
// IPv6: four), so a million-prefix table is a few typed arrays, not a million objects.

import type { BgpNotification } from './errors.js';
import type { Brand } from './types.js';
import { formatIpv4, formatIpv6Words, parseIpv4, parseIpv6, readU32 } from './types.js';

/** A prefix in text form, "10.0.0.0/24" or "2001:db8::/32", host bits zero. */
export type Prefix = Brand<string, 'Prefix'>;

export type PrefixAfi = 1 | 2;

export function wordsPerPrefix(afi: PrefixAfi): 1 | 4 {
  return afi === 1 ? 1 : 4;
}

/** Mask keeping the top `bits` bits of a 32-bit word (bits in 0..32). */
function maskWord(bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
}

export class PrefixList {
  constructor(
    readonly afi: PrefixAfi,
    /** Address words, `wordsPerPrefix(afi)` per prefix, most significant first. */
    readonly addrs: Uint32Array,
    /** Prefix lengths in bits. Its length is the number of prefixes. */
    readonly lens: Uint8Array,
    /** RFC 7911 path identifiers, present exactly when the list was built for ADD-PATH. */
    readonly pathIds: Uint32Array | null = null,
  ) {
    if (addrs.length !== lens.length * wordsPerPrefix(afi)) {
      throw new RangeError('PrefixList: addrs and lens lengths disagree');
    }
    if (pathIds !== null && pathIds.length !== lens.length) {
      throw new RangeError('PrefixList: pathIds and lens lengths disagree');
    }
  }

  static empty(afi: PrefixAfi): PrefixList {
    return new PrefixList(afi, new Uint32Array(0), new Uint8Array(0));
  }

  /** Parses text prefixes; throws TypeError naming the first bad one. */
  static parse(afi: PrefixAfi, items: readonly string[], pathIds?: readonly number[]): PrefixList {
    const w = wordsPerPrefix(afi);
    const addrs = new Uint32Array(items.length * w);
    const lens = new Uint8Array(items.length);
    items.forEach((item, i) => {
      const p = parsePrefix(item);
      if (p?.afi !== afi) {
        throw new TypeError(`not an ${afi === 1 ? 'IPv4' : 'IPv6'} prefix: ${JSON.stringify(item)}`);
      }
      addrs.set(p.words, i * w);
      lens[i] = p.len;
    });
    let ids: Uint32Array | null = null;
    if (pathIds !== undefined) {
      if (pathIds.length !== items.length) throw new TypeError('one path identifier per prefix is needed');
      ids = new Uint32Array(pathIds.length);
      pathIds.forEach((id, i) => {
        if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) {
          throw new TypeError(`path identifier out of range: ${id}`);
        }
        ids![i] = id;
      });
    }
    return new PrefixList(afi, addrs, lens, ids);
  }

  get length(): number {
    return this.lens.length;
  }

  /** Prefixes start..end-1 as a view sharing this list's memory. */
  slice(start: number, end: number): PrefixList {
    const w = wordsPerPrefix(this.afi);
    return new PrefixList(
      this.afi,
      this.addrs.subarray(start * w, end * w),
      this.lens.subarray(start, end),
      this.pathIds?.subarray(start, end) ?? null,
    );
  }

  /** The prefixes at these indices, in that order, as a new list. */
  pick(idx: readonly number[]): PrefixList {
    if (idx.length === this.length) return this;
    const w = wordsPerPrefix(this.afi);
    const addrs = new Uint32Array(idx.length * w);
    const lens = new Uint8Array(idx.length);
    const ids = this.pathIds === null ? null : new Uint32Array(idx.length);
    for (let k = 0; k < idx.length; k++) {
      const i = idx[k] as number;
      for (let j = 0; j < w; j++) addrs[k * w + j] = this.addrs[i * w + j] as number;
      lens[k] = this.lens[i] as number;
      if (ids !== null) ids[k] = this.pathIds![i] as number;
    }
    return new PrefixList(this.afi, addrs, lens, ids);
  }

  format(i: number): Prefix {
    const len = this.lens[i] as number;
    if (this.afi === 1) return `${formatIpv4(this.addrs[i] as number)}/${len}` as Prefix;
    const a = this.addrs;
    const o = i * 4;
    return `${formatIpv6Words(a[o] as number, a[o + 1] as number, a[o + 2] as number, a[o + 3] as number)}/${len}` as Prefix;
  }

  toStrings(): Prefix[] {
    const out: Prefix[] = [];
    for (let i = 0; i < this.length; i++) out.push(this.format(i));
    return out;
  }

  /** Bytes this list takes on the wire. */
  encodedLength(addPath: boolean): number {
    let n = addPath ? 4 * this.length : 0;
    for (let i = 0; i < this.length; i++) n += 1 + (((this.lens[i] as number) + 7) >> 3);
    return n;
  }
}

/** Parses "a.b.c.d/n" or "x::/n"; host bits must be zero. */
export function parsePrefix(s: string): { afi: PrefixAfi; words: number[]; len: number } | undefined {
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const lenText = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText)) return undefined;
  const len = Number(lenText);
  const addr = s.slice(0, slash);
  let afi: PrefixAfi;
  let words: number[];
  if (addr.includes(':')) {
    const b = parseIpv6(addr);
    if (b === undefined || len > 128) return undefined;
    afi = 2;
    words = [readU32(b, 0), readU32(b, 4), readU32(b, 8), readU32(b, 12)];
  } else {
    const v = parseIpv4(addr);
    if (v === undefined || len > 32) return undefined;
    afi = 1;
    words = [v];
  }
  for (let w = 0; w < words.length; w++) {
    const word = words[w] as number;
    if ((word & ~maskWord(len - 32 * w)) >>> 0 !== 0) return undefined; // host bits set
  }
  return { afi, words, len };
}

// Empty results share one list (typed arrays of length 0 cannot be written to).
const EMPTY: readonly PrefixList[] = [
  PrefixList.empty(1),
  new PrefixList(1, new Uint32Array(0), new Uint8Array(0), new Uint32Array(0)),
  PrefixList.empty(2),
  new PrefixList(2, new Uint32Array(0), new Uint8Array(0), new Uint32Array(0)),
];

// Scratch columns reused across decodes; results are copied out exactly sized.
let scratchAddrs = new Uint32Array(4096);
let scratchLens = new Uint8Array(4096);
let scratchIds = new Uint32Array(4096);

function growScratch(prefixes: number, words: number): void {
  if (scratchLens.length < prefixes) {
    scratchLens = new Uint8Array(prefixes);
    scratchIds = new Uint32Array(prefixes);
  }
  if (scratchAddrs.length < prefixes * words) scratchAddrs = new Uint32Array(prefixes * words);
}

/** MASK4[len]: the netmask of an IPv4 prefix of that length, as an int32. */
const MASK4 = Int32Array.from({ length: 33 }, (_, len) => (len === 0 ? 0 : -1 << (32 - len)));

/** The hot path: IPv4 without path identifiers, one branch-light loop. */
function decodeIpv4(
  b: Uint8Array,
  off: number,
  end: number,
  fail: (reason: string) => BgpNotification,
): PrefixList {
  const addrs = scratchAddrs;
  const lens = scratchLens;
  let n = 0;
  let i = off;
  while (i < end) {
    const len = b[i] as number;
    if (len > 32) throw fail(`prefix length ${len} exceeds 32`);
    const nb = (len + 7) >> 3;
    const j = i + 1;
    if (j + nb > end) throw fail(`prefix of length ${len} runs past the field end`);
    // Read the 4 bytes from j (those past the prefix are masked off); near the end of the
    // buffer, read only what is there.
    let a: number;
    if (j + 4 <= b.length) {
      a =
        ((b[j] as number) << 24) |
        ((b[j + 1] as number) << 16) |
        ((b[j + 2] as number) << 8) |
        (b[j + 3] as number);
    } else {
      a = 0;
      for (let k = 0; k < nb; k++) a |= (b[j + k] as number) << (24 - 8 * k);
    }
    addrs[n] = a & (MASK4[len] as number);
    lens[n] = len;
    n++;
    i = j + nb;
  }
  return new PrefixList(1, addrs.slice(0, n), lens.slice(0, n), null);
}

/**
 * Decodes the prefixes in b[off..end). Any syntax error (a length over the address
 * size, a prefix running past `end`) throws the error `fail` builds: the caller
 * knows which NOTIFICATION and RFC 7606 action apply to this field.
 * Trailing bits past the prefix length are cleared (RFC 4271 §4.3: "irrelevant").
 */
export function decodePrefixes(
  b: Uint8Array,
  off: number,
  end: number,
  afi: PrefixAfi,
  addPath: boolean,
  fail: (reason: string) => BgpNotification,
): PrefixList {
  if (end <= off) return EMPTY[(afi - 1) * 2 + (addPath ? 1 : 0)] as PrefixList;
  const max = end - off; // every prefix takes at least one byte
  const w = afi === 1 ? 1 : 4;
  growScratch(max, w);
  if (afi === 1 && !addPath) return decodeIpv4(b, off, end, fail);
  const addrs = scratchAddrs;
  const lens = scratchLens;
  const ids = scratchIds;
  const maxLen = afi === 1 ? 32 : 128;
  let n = 0;
  let i = off;
  while (i < end) {
    if (addPath) {
      if (i + 4 > end) throw fail(`path identifier runs past the field end at byte ${i - off}`);
      ids[n] = readU32(b, i);
      i += 4;
      if (i >= end) throw fail(`path identifier with no prefix at byte ${i - off}`);
    }
    const len = b[i] as number;
    if (len > maxLen) throw fail(`prefix length ${len} exceeds ${maxLen}`);
    const nb = (len + 7) >> 3;
    i++;
    if (i + nb > end) throw fail(`prefix of length ${len} runs past the field end`);
    if (w === 1) {
      let a = 0;
      switch (nb) {
        case 4:
          a =
            ((b[i] as number) << 24) |
            ((b[i + 1] as number) << 16) |
            ((b[i + 2] as number) << 8) |
            (b[i + 3] as number);
          break;
        case 3:
          a = ((b[i] as number) << 24) | ((b[i + 1] as number) << 16) | ((b[i + 2] as number) << 8);
          break;
        case 2:
          a = ((b[i] as number) << 24) | ((b[i + 1] as number) << 16);
          break;
        case 1:
          a = (b[i] as number) << 24;
          break;
      }
      addrs[n] = len === 0 ? 0 : (a & (0xffffffff << (32 - len))) >>> 0;
    } else {
      const base = n * 4;
      for (let k = 0; k < 4; k++) {
        let word = 0;
        for (let j = 0; j < 4; j++) {
          const bi = k * 4 + j;
          word = (word << 8) | (bi < nb ? (b[i + bi] as number) : 0);
        }
        addrs[base + k] = (word & maskWord(len - 32 * k)) >>> 0;
      }
    }
    lens[n] = len;
    i += nb;
    n++;
  }
  return new PrefixList(afi, addrs.slice(0, n * w), lens.slice(0, n), addPath ? ids.slice(0, n) : null);
}

/**
 * Writes prefixes start..end-1 at b[off..]; the caller has sized b with
 * encodedLength/prefixWireLength. Returns the offset after the last byte.
 */
export function encodePrefixes(
  list: PrefixList,
  start: number,
  end: number,
  addPath: boolean,
  b: Uint8Array,
  off: number,
): number {
  const { addrs, lens, pathIds } = list;
  let o = off;
  // An empty list (End-of-RIB, RFC 4724 §2) has no prefix to identify.
  if (addPath && pathIds === null && end > start)
    throw new TypeError('ADD-PATH session: every prefix needs a path identifier');
  for (let i = start; i < end; i++) {
    if (addPath) {
      const id = (pathIds as Uint32Array)[i] as number;
      b[o] = id >>> 24;
      b[o + 1] = id >>> 16;
      b[o + 2] = id >>> 8;
      b[o + 3] = id;
      o += 4;
    }
    const len = lens[i] as number;
    b[o++] = len;
    const nb = (len + 7) >> 3;
    if (list.afi === 1) {
      const a = addrs[i] as number;
      if (nb > 0) b[o] = a >>> 24;
      if (nb > 1) b[o + 1] = a >>> 16;
      if (nb > 2) b[o + 2] = a >>> 8;
      if (nb > 3) b[o + 3] = a;
    } else {
      for (let j = 0; j < nb; j++) {
        const word = addrs[i * 4 + (j >> 2)] as number;
        b[o + j] = word >>> (24 - 8 * (j & 3));
      }
    }
    o += nb;
  }
  return o;
}

/** Wire size of prefix i. */
export function prefixWireLength(list: PrefixList, i: number, addPath: boolean): number {
  return (addPath ? 5 : 1) + (((list.lens[i] as number) + 7) >> 3);
}
