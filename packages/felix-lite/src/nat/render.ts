// NAT-outgoing as nftables text: computeDesired's `nat` (per family, the natOutgoing pools and
// every pool) becomes one transaction over the tables Tabby owns, `table ip tabby` and
// `table ip6 tabby`, and nothing else:
//
//   table ip tabby {}                 create it if missing, so the delete cannot fail
//   delete table ip tabby             drop whatever is there (ours, possibly edited by hand)
//   table ip tabby {                  and define it whole
//     set all-pools { type ipv4_addr; flags interval; elements = { 10.65.0.0/16, 10.70.0.0/16 } }
//     set nat-pools { type ipv4_addr; flags interval; elements = { 10.65.0.0/16 } }
//     chain postrouting {
//       type nat hook postrouting priority srcnat; policy accept;
//       ip saddr @nat-pools ip daddr != @all-pools counter masquerade fully-random comment "tabby:nat-outgoing"
//     }
//   }
//
// A family with no natOutgoing pool gets only the first two lines: its table goes away.
// `delete` rather than `flush table`: a flush empties the chains but keeps sets and their
// elements (and any set or chain someone added), so it would not restore the table; inside
// one `nft -f` transaction the replacement is atomic and established connections keep their
// NAT (it lives in conntrack, not in the rules).
//
// The rule is Calico's cali-nat-outgoing (felix/rules/nat.go, default natOutgoingExclusions
// IPPoolsOnly): source in a masquerading pool, destination outside every pool, disabled pools
// included (their pods keep their addresses), MASQUERADE with fully-random ports as felix
// programs it in nftables mode. Traffic to the node's own addresses never reaches postrouting
// (it is delivered locally), so it needs no exclusion. Calico's IPPoolsAndHostIPs option (do
// not NAT towards other nodes' addresses) has no input here yet.
import type { NatOutgoing } from '../desired/compute.js';
import type { Cidr, IpVersion } from '../routes/ip.js';
import { cidrText, containsCidr, parseCidr } from '../routes/ip.js';

export type NftFamily = 'ip' | 'ip6';

export const NAT_TABLE = 'tabby';
export const NAT_ALL_POOLS_SET = 'all-pools';
export const NAT_POOLS_SET = 'nat-pools';
export const NAT_CHAIN = 'postrouting';
/** The comment on our rule: how a reader of `nft list ruleset` finds who wrote it. */
export const NAT_RULE_COMMENT = 'tabby:nat-outgoing';

export interface NatRenderOptions {
  /** Table name in both families (default "tabby"). */
  readonly table?: string;
  /** MASQUERADE with fully random source ports, as Calico (default true). */
  readonly fullyRandom?: boolean;
}

/** What one family's table must hold. */
export interface NatTablePlan {
  readonly family: NftFamily;
  /** Canonical CIDRs, sorted by address, none inside another. */
  readonly natPools: readonly string[];
  readonly allPools: readonly string[];
}

/** The whole NAT state: a table per family that needs one; the other families' tables go. */
export interface NatPlan {
  readonly table: string;
  readonly fullyRandom: boolean;
  readonly tables: readonly NatTablePlan[];
  readonly absent: readonly NftFamily[];
}

/** Input that cannot be rendered (a malformed CIDR, one of the wrong family, two entries for a family). */
export class NatConfigError extends Error {
  override readonly name = 'NatConfigError';
}

export const nftFamily = (f: IpVersion): NftFamily => (f === 4 ? 'ip' : 'ip6');

const TABLE_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

/** Sorted by address, then shorter prefix first; prefixes inside another dropped (nft refuses overlapping intervals). */
function collapse(cidrs: readonly Cidr[]): Cidr[] {
  const sorted = [...cidrs].sort((a, b) =>
    a.value < b.value ? -1 : a.value > b.value ? 1 : a.prefixLen - b.prefixLen,
  );
  const out: Cidr[] = [];
  for (const c of sorted) {
    const last = out[out.length - 1];
    // sorted this way, a prefix inside an earlier one is inside the last kept one
    if (last !== undefined && containsCidr(last, c)) continue;
    out.push(c);
  }
  return out;
}

function parseFamilyCidrs(texts: readonly string[], family: IpVersion, what: string): Cidr[] {
  return texts.map((t) => {
    let c: Cidr;
    try {
      c = parseCidr(t);
    } catch (e) {
      throw new NatConfigError(`${what} ${JSON.stringify(t)}: ${(e as Error).message}`);
    }
    if (c.family !== family) throw new NatConfigError(`${what} ${t} is not IPv${family}`);
    return c;
  });
}

/** The plan for computeDesired's `nat`: pure, deterministic, throws NatConfigError on bad input. */
export function planNat(nat: readonly NatOutgoing[], opts: NatRenderOptions = {}): NatPlan {
  const table = opts.table ?? NAT_TABLE;
  if (!TABLE_NAME.test(table))
    throw new NatConfigError(`invalid nftables table name ${JSON.stringify(table)}`);
  const byFamily = new Map<IpVersion, NatTablePlan>();
  for (const n of nat) {
    if (byFamily.has(n.family)) throw new NatConfigError(`two NAT-outgoing entries for IPv${n.family}`);
    const sources = parseFamilyCidrs(n.sources, n.family, 'natOutgoing pool');
    if (sources.length === 0) continue;
    const all = parseFamilyCidrs(n.exceptDestinations, n.family, 'pool');
    // a source is a pool too: pod-to-pod traffic inside it is never NATed, whatever the input says
    byFamily.set(n.family, {
      family: nftFamily(n.family),
      natPools: collapse(sources).map(cidrText),
      allPools: collapse([...all, ...sources]).map(cidrText),
    });
  }
  const tables: NatTablePlan[] = [];
  const absent: NftFamily[] = [];
  for (const f of [4, 6] as const) {
    const t = byFamily.get(f);
    if (t === undefined) absent.push(nftFamily(f));
    else tables.push(t);
  }
  return { table, fullyRandom: opts.fullyRandom ?? true, tables, absent };
}

function setText(name: string, family: NftFamily, cidrs: readonly string[]): string[] {
  const lines = [
    `\tset ${name} {`,
    `\t\ttype ${family === 'ip' ? 'ipv4_addr' : 'ipv6_addr'}`,
    '\t\tflags interval',
  ];
  // nft refuses `elements = { }`; an empty set is legal and simply matches nothing
  if (cidrs.length > 0) lines.push(`\t\telements = { ${cidrs.join(', ')} }`);
  lines.push('\t}');
  return lines;
}

/** The `nft -f -` script making the kernel equal to the plan: one atomic transaction. */
export function renderNatScript(plan: NatPlan): string {
  const lines: string[] = [
    `# Tabby NAT-outgoing: tables ${plan.table} are rewritten whole, edits by hand are reverted`,
  ];
  const drop = (f: NftFamily): void => {
    lines.push(`table ${f} ${plan.table} {}`, `delete table ${f} ${plan.table}`);
  };
  for (const f of ['ip', 'ip6'] as const) {
    drop(f);
    const t = plan.tables.find((x) => x.family === f);
    if (t === undefined) continue;
    const masq = plan.fullyRandom ? 'masquerade fully-random' : 'masquerade';
    lines.push(
      `table ${t.family} ${plan.table} {`,
      ...setText(NAT_ALL_POOLS_SET, t.family, t.allPools),
      '',
      ...setText(NAT_POOLS_SET, t.family, t.natPools),
      '',
      `\tchain ${NAT_CHAIN} {`,
      '\t\ttype nat hook postrouting priority srcnat; policy accept;',
      `\t\t${t.family} saddr @${NAT_POOLS_SET} ${t.family} daddr != @${NAT_ALL_POOLS_SET} counter ${masq} comment "${NAT_RULE_COMMENT}"`,
      '\t}',
      '}',
    );
  }
  return lines.join('\n') + '\n';
}
