// Import and export policy: ordered rules, first match wins. A rule matches when all its
// conditions hold (prefix lists with ge/le, communities, large communities, AS_PATH length
// or content); its action may change attributes and then accept or reject. A rule without
// accept/reject applies its changes and evaluation goes on. Calico's BGPFilter compiles to
// this (the node daemon's job); the standalone daemon reads it from YAML.

import type { Asn, LargeCommunity, PathAttributes } from '../wire/index.js';
import { formatLargeCommunity, parseCommunity, parseLargeCommunity, parsePrefix } from '../wire/index.js';

/** A prefix list entry: "10.0.0.0/8" with optional ge/le bounds on the length (Cisco style). */
export interface PrefixMatch {
  readonly prefix: string;
  /** Match lengths from ge (default: the entry's own length). */
  readonly ge?: number;
  /** Match lengths up to le (default: ge if given, else the entry's own length). */
  readonly le?: number;
}

export type Condition =
  | { readonly prefix: readonly PrefixMatch[] }
  | { readonly community: string }
  | { readonly largeCommunity: string }
  | { readonly asPathLength: { readonly min?: number; readonly max?: number } }
  | { readonly asPathContains: number }
  /**
   * true: the route was learned from a BGP peer; false: this speaker originated it (Calico's
   * BGPFilter `source: RemotePeers`, BIRD's `source ~ [ RTS_BGP ]`).
   */
  | { readonly learned: boolean }
  | { readonly not: Condition };

export interface Action {
  readonly localPref?: number;
  readonly med?: number;
  readonly addCommunities?: readonly string[];
  readonly removeCommunities?: readonly string[];
  readonly addLargeCommunities?: readonly string[];
  /** Prepend this ASN count times (export). */
  readonly prepend?: { readonly asn: number; readonly count: number };
  /** Final verdict; absent: apply the changes and go on to the next rule. */
  readonly verdict?: 'accept' | 'reject';
}

export interface Rule {
  readonly name?: string;
  readonly match: readonly Condition[];
  readonly then: Action;
}

export interface Policy {
  readonly rules: readonly Rule[];
  /** When no rule gave a verdict. */
  readonly default: 'accept' | 'reject';
}

export const ACCEPT_ALL: Policy = { rules: [], default: 'accept' };

export type PolicyResult =
  | { readonly verdict: 'accept'; readonly attributes: PathAttributes; readonly rule: string | undefined }
  | { readonly verdict: 'reject'; readonly rule: string | undefined };

/** A policy error names the rule and field at fault. */
export class PolicyError extends TypeError {
  override readonly name = 'PolicyError';
}

interface CompiledPrefix {
  afi: 1 | 2;
  words: number[];
  len: number;
  ge: number;
  le: number;
}

type Compiled =
  | { k: 'prefix'; list: CompiledPrefix[] }
  | { k: 'community'; value: number }
  | { k: 'large'; value: LargeCommunity }
  | { k: 'len'; min: number; max: number }
  | { k: 'contains'; asn: number }
  | { k: 'learned'; value: boolean }
  | { k: 'not'; c: Compiled };

function compileCondition(c: Condition, where: string): Compiled {
  if ('prefix' in c) {
    return {
      k: 'prefix',
      list: c.prefix.map((m, i) => {
        const p = parsePrefix(m.prefix);
        if (p === undefined)
          throw new PolicyError(`${where}.prefix[${i}]: not a prefix: ${JSON.stringify(m.prefix)}`);
        const max = p.afi === 1 ? 32 : 128;
        const ge = m.ge ?? p.len;
        const le = m.le ?? (m.ge !== undefined ? max : p.len);
        if (ge < p.len || le < ge || le > max) {
          throw new PolicyError(
            `${where}.prefix[${i}]: need ${p.len} <= ge <= le <= ${max}, got ge ${ge} le ${le}`,
          );
        }
        return { afi: p.afi, words: p.words, len: p.len, ge, le };
      }),
    };
  }
  if ('community' in c) {
    const v = parseCommunity(c.community);
    if (v === undefined)
      throw new PolicyError(`${where}.community: not a community: ${JSON.stringify(c.community)}`);
    return { k: 'community', value: v };
  }
  if ('largeCommunity' in c) {
    const v = parseLargeCommunity(c.largeCommunity);
    if (v === undefined) throw new PolicyError(`${where}.largeCommunity: not a large community`);
    return { k: 'large', value: v };
  }
  if ('asPathLength' in c)
    return { k: 'len', min: c.asPathLength.min ?? 0, max: c.asPathLength.max ?? Infinity };
  if ('asPathContains' in c) return { k: 'contains', asn: c.asPathContains };
  if ('learned' in c) return { k: 'learned', value: c.learned };
  return { k: 'not', c: compileCondition(c.not, `${where}.not`) };
}

function mask(word: number, bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? word >>> 0 : (word & (0xffffffff << (32 - bits))) >>> 0;
}

function prefixMatches(
  m: CompiledPrefix,
  afi: 1 | 2,
  words: ArrayLike<number>,
  off: number,
  len: number,
): boolean {
  if (m.afi !== afi || len < m.ge || len > m.le) return false;
  for (let k = 0; k < m.words.length; k++) {
    if (mask(words[off + k] as number, m.len - 32 * k) !== m.words[k]) return false;
  }
  return true;
}

function pathLength(a: PathAttributes): number {
  let n = 0;
  for (const s of a.asPath ?? []) n += s.type === 'sequence' ? s.asns.length : s.type === 'set' ? 1 : 0;
  return n;
}

/** A prefix as the policy sees it: family, address words (with offset) and length. */
export interface PolicyPrefix {
  readonly afi: 1 | 2;
  readonly words: ArrayLike<number>;
  readonly offset: number;
  readonly len: number;
}

function holds(c: Compiled, p: PolicyPrefix, a: PathAttributes, learned: boolean): boolean {
  switch (c.k) {
    case 'prefix':
      return c.list.some((m) => prefixMatches(m, p.afi, p.words, p.offset, p.len));
    case 'community':
      return a.communities?.includes(c.value) ?? false;
    case 'large':
      return (
        a.largeCommunities?.some(
          (l) =>
            l.globalAdministrator === c.value.globalAdministrator &&
            l.localData1 === c.value.localData1 &&
            l.localData2 === c.value.localData2,
        ) ?? false
      );
    case 'len': {
      const n = pathLength(a);
      return n >= c.min && n <= c.max;
    }
    case 'contains':
      return a.asPath?.some((s) => s.asns.includes(c.asn as Asn)) ?? false;
    case 'learned':
      return learned === c.value;
    case 'not':
      return !holds(c.c, p, a, learned);
  }
}

function apply(a: PathAttributes, t: Action): PathAttributes {
  let out: { -readonly [K in keyof PathAttributes]: PathAttributes[K] } = { ...a };
  if (t.localPref !== undefined) out.localPref = t.localPref;
  if (t.med !== undefined) out.multiExitDisc = t.med;
  if (t.addCommunities !== undefined || t.removeCommunities !== undefined) {
    const remove = new Set((t.removeCommunities ?? []).map((c) => parseCommunity(c)!));
    const set = new Set((a.communities ?? []).filter((c) => !remove.has(c)));
    for (const c of t.addCommunities ?? []) set.add(parseCommunity(c)!);
    const list = [...set];
    if (list.length > 0) out.communities = list;
    else delete out.communities;
  }
  if (t.addLargeCommunities !== undefined) {
    const have = new Set((a.largeCommunities ?? []).map(formatLargeCommunity));
    const list = [...(a.largeCommunities ?? [])];
    for (const s of t.addLargeCommunities) if (!have.has(s)) list.push(parseLargeCommunity(s)!);
    out.largeCommunities = list;
  }
  if (t.prepend !== undefined && t.prepend.count > 0) {
    const extra = new Array<Asn>(t.prepend.count).fill(t.prepend.asn as Asn);
    const path = a.asPath ?? [];
    const first = path[0];
    out = {
      ...out,
      asPath:
        first?.type === 'sequence' && first.asns.length + extra.length <= 255
          ? [{ type: 'sequence', asns: [...extra, ...first.asns] }, ...path.slice(1)]
          : [{ type: 'sequence', asns: extra }, ...path],
    };
  }
  return out;
}

export interface CompiledPolicy {
  /** `learned`: the route came from a BGP peer (imports always; exports unless we originated it). */
  evaluate(p: PolicyPrefix, a: PathAttributes, learned?: boolean): PolicyResult;
  /** True when the policy accepts everything unchanged (the fast path can skip it). */
  readonly acceptsAll: boolean;
  /** True when nothing can be accepted (a receive-only peer's export): no need to ask. */
  readonly rejectsAll: boolean;
  /** True when some rule looks at the prefix: results cannot be shared across prefixes. */
  readonly usesPrefix: boolean;
}

/** Checks and compiles a policy; throws PolicyError naming the rule and field at fault. */
export function compilePolicy(policy: Policy, where = 'policy'): CompiledPolicy {
  const rules = policy.rules.map((r, i) => {
    const at = `${where}.rules[${i}]${r.name === undefined ? '' : ` (${r.name})`}`;
    const t = r.then;
    for (const [k, list] of [
      ['addCommunities', t.addCommunities],
      ['removeCommunities', t.removeCommunities],
    ] as const) {
      list?.forEach((c, j) => {
        if (parseCommunity(c) === undefined)
          throw new PolicyError(`${at}.then.${k}[${j}]: not a community: ${c}`);
      });
    }
    t.addLargeCommunities?.forEach((c, j) => {
      if (parseLargeCommunity(c) === undefined)
        throw new PolicyError(`${at}.then.addLargeCommunities[${j}]: ${c}`);
    });
    for (const k of ['localPref', 'med'] as const) {
      const v = t[k];
      if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 0xffffffff)) {
        throw new PolicyError(`${at}.then.${k}: not a 32-bit unsigned integer: ${v}`);
      }
    }
    return { name: r.name, match: r.match.map((c, j) => compileCondition(c, `${at}.match[${j}]`)), then: t };
  });
  const acceptsAll = rules.length === 0 && policy.default === 'accept';
  const looksAtPrefix = (c: Compiled): boolean => c.k === 'prefix' || (c.k === 'not' && looksAtPrefix(c.c));
  const usesPrefix = rules.some((r) => r.match.some(looksAtPrefix));
  const rejectsAll = policy.default === 'reject' && rules.every((r) => r.then.verdict === 'reject');
  return {
    acceptsAll,
    rejectsAll,
    usesPrefix,
    evaluate(p, a, learned = true) {
      let attrs = a;
      for (const r of rules) {
        if (!r.match.every((c) => holds(c, p, attrs, learned))) continue;
        attrs = apply(attrs, r.then);
        if (r.then.verdict === 'reject') return { verdict: 'reject', rule: r.name };
        if (r.then.verdict === 'accept') return { verdict: 'accept', attributes: attrs, rule: r.name };
      }
      return policy.default === 'accept'
        ? { verdict: 'accept', attributes: attrs, rule: undefined }
        : { verdict: 'reject', rule: undefined };
    },
  };
}
