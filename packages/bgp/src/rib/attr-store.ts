// Interned attribute sets (BIRD's attribute cache, in spirit): routes hold a small integer,
// many prefixes share one set, equal sets are stored once. Keyed by the canonical encoding
// (wire/attributes-encode: MP attributes apart, ascending type code), reference-counted.

import type { PathAttributes } from '../wire/index.js';
import { PrefixList, encodeAttributes, makeContext } from '../wire/index.js';
import type { DecisionAttributes } from './decision.js';
import { decisionAttributes } from './decision.js';

const CANONICAL = makeContext({ as4: true });
const TEXT = new TextEncoder();

function fnv1a(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ (b[i] as number), 0x01000193);
  return h >>> 0;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The interning key: the canonical attributes, plus the MP family and next hop(s). */
export function attributeKey(a: PathAttributes): Uint8Array {
  const { mpReachNlri, mpUnreachNlri: _u, ...rest } = a;
  const body = encodeAttributes(rest, CANONICAL);
  if (mpReachNlri?.kind !== 'prefixes') return body;
  // The family too: an IPv4 route with an IPv6 next hop (RFC 8950) is not an IPv6 route.
  const nh = TEXT.encode(
    `|${mpReachNlri.afi}/${mpReachNlri.safi}|${mpReachNlri.nextHop}|${mpReachNlri.linkLocalNextHop ?? ''}`,
  );
  const key = new Uint8Array(body.length + nh.length);
  key.set(body);
  key.set(nh, body.length);
  return key;
}

export class AttrStore {
  private attrs: (PathAttributes | undefined)[] = [];
  private keys: (Uint8Array | undefined)[] = [];
  private hashes: number[] = [];
  private decisions: (DecisionAttributes | undefined)[] = [];
  private refs = new Int32Array(1024);
  /** Bumped each time an id is reused, so caches keyed by id can tell old from new. */
  private gens = new Int32Array(1024);
  private free: number[] = [];
  private buckets = new Map<number, number[]>();

  /** Live attribute sets. */
  get size(): number {
    return this.attrs.length - this.free.length;
  }

  /**
   * The id of this attribute set, adding it if new; the caller holds one reference.
   * The MP_REACH_NLRI prefixes are not part of a set; only its next hop is.
   */
  intern(a: PathAttributes): number {
    const key = attributeKey(a);
    const h = fnv1a(key);
    const bucket = this.buckets.get(h);
    if (bucket !== undefined) {
      for (const id of bucket) {
        if (sameBytes(this.keys[id]!, key)) {
          this.refs[id]!++;
          return id;
        }
      }
    }
    const id = this.free.pop() ?? this.attrs.length;
    if (id >= this.refs.length) {
      const r = new Int32Array(this.refs.length * 2);
      r.set(this.refs);
      this.refs = r;
      const g = new Int32Array(this.gens.length * 2);
      g.set(this.gens);
      this.gens = g;
    }
    this.gens[id]!++;
    const stored: PathAttributes =
      a.mpReachNlri?.kind === 'prefixes'
        ? { ...a, mpReachNlri: { ...a.mpReachNlri, nlri: EMPTY_OF[a.mpReachNlri.afi] } }
        : a;
    this.attrs[id] = stored;
    this.keys[id] = key;
    this.hashes[id] = h;
    this.decisions[id] = decisionAttributes(stored);
    this.refs[id] = 1;
    if (bucket === undefined) this.buckets.set(h, [id]);
    else bucket.push(id);
    return id;
  }

  retain(id: number): void {
    this.refs[id]!++;
  }

  /** Drops one reference; the set is forgotten when none is left. */
  release(id: number): void {
    if (--this.refs[id]! > 0) return;
    const h = this.hashes[id]!;
    const bucket = this.buckets.get(h)!;
    bucket.splice(bucket.indexOf(id), 1);
    if (bucket.length === 0) this.buckets.delete(h);
    this.attrs[id] = undefined;
    this.keys[id] = undefined;
    this.decisions[id] = undefined;
    this.free.push(id);
  }

  get(id: number): PathAttributes {
    const a = this.attrs[id];
    if (a === undefined) throw new RangeError(`attribute set ${id} is not live`);
    return a;
  }

  decision(id: number): DecisionAttributes {
    return this.decisions[id]!;
  }

  /** Changes whenever the id is given to a new set. */
  generation(id: number): number {
    return this.gens[id] ?? 0;
  }

  references(id: number): number {
    return this.refs[id] ?? 0;
  }
}

const EMPTY_OF = { 1: PrefixList.empty(1), 2: PrefixList.empty(2) } as const;
